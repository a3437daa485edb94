"""The workbook's input problems: every input cell against the rule it was declared with, so an edit that breaks a
rule shows a message and blanks the results that depend on it instead of computing a wrong number.

Each input's own range comes from :meth:`Builder.mark_input` (the same :class:`~dsxl.core.rules.Range` that set its
data validation); the rules that tie inputs together come from :data:`~dsxl.core.rules.MODEL_RULES`,
:data:`~dsxl.core.rules.GPU_RULES` and the article's own (decode_comm_sm below every SM count, GPU names unique).
"""

from __future__ import annotations

from typing import Any

from openpyxl.utils import get_column_letter

from dsxl.core.expr import Expr, concat, eq, where
from dsxl.data.catalog import generations
from dsxl.core.rules import GPU_RULES, MODEL_RULES, formula_ok, one_of
from dsxl.workbook import style
from dsxl.workbook.builder import TABLES_OK, Builder, Cursor

# sheet -> what its problems are called (and the prefix of its <group>_inputs_ok name)
GROUPS = {"Model": "model", "Hardware": "hardware", "Prefill": "scenario", "Decode": "scenario",
          "Constants": "constants"}
REFINED_OK = Expr("refined_inputs_ok")  # Predict, Planner, Validation: model, hardware and constants valid
PROBLEMS = Expr("input_problems")  # every shared sheet's problems, each prefixed by its sheet
SHARED_PROBLEMS = "the Model, Hardware or Constants sheet has input problems (see its Input problems cell)"


def shared_input_checks(b: Builder, calc: Any, cur: Cursor, model_names: list[dict[str, Expr]],
                        article_gpus: list[str], planner_gpu: str) -> None:
    """Write the checks of the shared input sheets into ``calc`` and define ``<group>_inputs_ok``,
    ``tables_inputs_ok``, ``refined_inputs_ok`` and ``input_problems``. ``model_names``: each block of model
    arguments by field (the article's, and a compressed-attention model's own block); ``article_gpus``: the GPUs
    whose article view the tables read (decode_comm_sm must leave each of them SMs)."""
    singles: dict[str, list[tuple[Any, Any]]] = {g: [] for g in GROUPS.values()}
    for sheet, rules in b.input_rules.items():
        if sheet in GROUPS:
            singles[GROUPS[sheet]] += rules
    cross: dict[str, list[tuple[Any, Any]]] = {g: [] for g in GROUPS.values()}
    for names in model_names:
        cross["model"] += [(rule.ok(names), rule.message) for rule in MODEL_RULES]

    for name, cells in b.datasheet_gpu_cells.items():  # each catalog row: a unique name, a known generation
        label = cells["gpu_name"]
        singles["hardware"].append((Expr(f'AND(ISTEXT({label.text}),COUNTIF(gpu_names,{label.text})=1)'),
                                    f"Hardware row {label.text.rsplit('$', 1)[1]}: each GPU needs a name no other "
                                    "row has"))
        singles["hardware"].append((formula_ok(cells["generation"], choices=generations()),
                                    concat(label, f".generation must be {one_of(generations())}")))
        cross["hardware"] += [(rule.ok(cells), concat(label, ".", rule.message)) for rule in GPU_RULES]

    singles["scenario"].append((Expr("ISNUMBER(MATCH(planner_gpu,gpu_names,0))"),
                                "planner_gpu must be a name in the Hardware catalog"))
    for g in [*article_gpus, planner_gpu]:
        sm = b.gpu_cells[g]["sm"]
        cross["scenario"].append((Expr("decode_comm_sm") < sm,
                                  concat("decode_comm_sm must be less than ", b.gpu_cells[g]["gpu_name"], "'s SMs")))

    texts = []
    for sheet, group in (("Model", "model"), ("Hardware", "hardware"), ("Prefill/Decode", "scenario"),
                         ("Constants", "constants")):
        text = input_problems(b, calc, cur, group, singles[group], cross[group])
        texts.append(where(eq(text, ""), "", concat(sheet, ": ", text)))
    ok = {g: Expr(f"{g}_inputs_ok") for g in ("model", "hardware", "scenario", "constants")}
    gates = b.materialize(calc, cur, "Shared inputs: which results may be computed", {
        TABLES_OK.text: Expr(f"AND({ok['model'].text},{ok['hardware'].text},{ok['scenario'].text})"),
        REFINED_OK.text: Expr(f"AND({ok['model'].text},{ok['hardware'].text},{ok['constants'].text})"),
        PROBLEMS.text: concat(*texts)})
    for name, cell in gates.items():
        b.define(name, cell.text)


def show_problems(b: Builder, ws: Any, row: int, col: int, problems: Expr, span: int, name: str | None = None) -> None:
    """A label and the problems text ("none" when every rule holds), wrapped in a merge of ``span`` columns and
    four lines tall, so a message is read whole on screen and on paper; ``name`` names the text cell."""
    ws.cell(row, col, "Input problems").font = style.LABEL_FONT
    ws.cell(row, col).alignment = style.TOP
    b.write(ws, row, col + 1, where(eq(problems, ""), "none", problems))
    ws.cell(row, col + 1).font = style.WARN_FONT
    ws.cell(row, col + 1).alignment = style.WRAP
    ws.merge_cells(start_row=row, start_column=col + 1, end_row=row, end_column=col + span)
    ws.row_dimensions[row].height = 60
    if name:
        b.define(name, f"'{ws.title}'!${get_column_letter(col + 1)}${row}")


def problems_cell(b: Builder, ws: Any, row: int, col: int, span: int = 4) -> None:
    """The shared input problems where a planner reads them."""
    show_problems(b, ws, row, col, PROBLEMS, span)


def input_problems(b: Builder, calc: Any, cur: Cursor, prefix: str, singles: list[tuple[Any, str]],
                   cross: list[tuple[Any, str]]) -> Expr:
    """One text of every broken rule (empty when all hold), each input's rule in a labelled cell of ``calc``;
    defines ``<prefix>_inputs_ok``. The cross rules are tested only once every single input is valid, so no rule
    sees text where a number belongs."""
    checks = b.materialize(calc, cur, f"{prefix.capitalize()} inputs: each against its declared rule", {
        f"input_ok_{i}": rule for i, (rule, _) in enumerate(singles)})
    single_ok = Expr("AND(" + ",".join(checks[f"input_ok_{i}"].text for i in range(len(singles))) + ")")
    joint = b.materialize(calc, cur, f"{prefix.capitalize()} inputs: the rules that tie them together", {
        f"cross_ok_{i}": where(single_ok, ok, True) for i, (ok, _) in enumerate(cross)})
    text = [where(checks[f"input_ok_{i}"], "", concat(msg, "; ")) for i, (_, msg) in enumerate(singles)]
    text += [where(joint[f"cross_ok_{i}"], "", concat(msg, "; ")) for i, (_, msg) in enumerate(cross)]
    cells = b.materialize(calc, cur, f"{prefix.capitalize()} inputs: problems", {"problems": concat(*text)})
    ok = b.materialize(calc, cur, f"{prefix.capitalize()} inputs: all valid", {"inputs_ok": eq(cells["problems"], "")})
    b.define(f"{prefix}_inputs_ok", ok["inputs_ok"].text)
    return cells["problems"]
