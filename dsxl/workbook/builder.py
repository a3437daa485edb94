"""Writes the shareable workbook: inputs as named cells, the calculation chain as formulas, the article's tables.

Formulas are never typed here: every calculated cell is a :class:`dsxl.chains.step.Step` evaluated
with :class:`dsxl.core.expr.Expr` arguments (defined names and cell references), the same steps Python
evaluates with numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from dsxl.data.catalog import Catalog, ModelArgs
from dsxl.core.expr import Expr, concat, where
from dsxl.article.layout import Cat, FilteredTable, Plan, Q, Table, Text, cell_decimals
from dsxl.chains.scope import Input, Key, Scope, scope_env
from dsxl.core.rules import GPU_FIELDS, MODEL_COUNT, MODEL_RANGES, SCENARIO_RANGES, Range, formula_ok
from dsxl.workbook import style

HARDWARE_COLUMNS = ("name", "kind", "generation") + GPU_FIELDS + ("source",)

TABLES_OK = Expr("tables_inputs_ok")  # the article's tables may compute: model, hardware and scenario inputs valid


def ref(ws: Worksheet | str, row: int, col: int, absolute: bool = True) -> Expr:
    title = ws if isinstance(ws, str) else ws.title
    c = f"${get_column_letter(col)}${row}" if absolute else f"{get_column_letter(col)}{row}"
    return Expr(f"{quote_sheetname(title)}!{c}")


def span(ws: Worksheet, r1: int, c1: int, r2: int, c2: int) -> str:
    return (f"{quote_sheetname(ws.title)}!${get_column_letter(c1)}${r1}:"
            f"${get_column_letter(c2)}${r2}")


@dataclass
class Cursor:
    row: int


class Builder:
    def __init__(self, catalog: Catalog, plan: Plan) -> None:
        self.catalog = catalog
        self.plan = plan
        self.wb = Workbook()
        self.wb.remove(self.wb.active)
        self.cells: dict[Key, dict[str, Expr]] = {}  # scope key -> quantity -> cell
        self.gpu_cells: dict[str, dict[str, Expr]] = {}  # GPU name -> field -> cell, as the article models it
        self.datasheet_gpu_cells: dict[str, dict[str, Expr]] = {}  # GPU name -> field -> catalog cell
        self.inputs: dict[str, Expr] = {}  # scenario/model input -> defined name
        self.list_inputs: dict[tuple[str, int], Expr] = {}  # (batch_sizes|ep, i) -> cell
        self.validations: dict[tuple[str, str], DataValidation] = {}
        self.table_pos: dict[str, tuple[Worksheet, int]] = {}
        self.datasheet_cells: dict[str, dict[str, Expr]] = {}
        self.hardware_rows = (0, 0)
        self.article_hardware_rows = (0, 0)
        self.input_rules: dict[str, list[tuple[Any, Any]]] = {}  # sheet -> (input's rule as a formula, message)
        self.helper: tuple[Worksheet, Cursor] | None = None  # where the SLA filters keep their helper rows
        self.fixed_widths: dict[str, dict[str, float]] = {}  # sheet -> column -> width a table chose to print

    # ---------------------------------------------------------------- basic writing
    def sheet(self, title: str, heading: str, intro: str = "") -> Worksheet:
        ws = self.wb.create_sheet(title)
        ws["A1"] = heading
        ws["A1"].font = style.TITLE_FONT
        if intro:
            ws["A2"] = intro
            ws["A2"].font = style.NOTE_FONT
        ws.column_dimensions["A"].width = 38
        ws.sheet_view.zoomScale = 100
        return ws

    def heading(self, ws: Worksheet, cur: Cursor, text: str, note: str = "") -> None:
        cur.row += 1
        ws.cell(cur.row, 1, text).font = style.H2_FONT
        if note:
            ws.cell(cur.row + 1, 1, note).font = style.NOTE_FONT
            cur.row += 1
        cur.row += 1

    def write(self, ws: Worksheet, row: int, col: int, value: Any, number_format: str | None = None,
              fill: Any = None) -> Expr:
        cell = ws.cell(row, col)
        if isinstance(value, Expr):
            cell.value = value.formula
        else:
            cell.value = value
        if number_format:
            cell.number_format = number_format
        if fill is not None:
            cell.fill = fill
        return ref(ws, row, col)

    def validation(self, ws: Worksheet, rng: Range, key: str) -> DataValidation:
        vkey = (ws.title, key)
        if vkey in self.validations:
            return self.validations[vkey]
        if rng.choices:
            dv = DataValidation(type="list", formula1='"' + ",".join(f"{c:g}" for c in rng.choices) + '"')
        else:
            kind = "whole" if rng.integer else "decimal"
            lo = rng.lo if rng.lo is not None else -1e300
            if rng.lo_open:
                lo_val = lo + (1 if rng.integer else 1e-12)
            else:
                lo_val = lo
            if rng.hi is not None:
                dv = DataValidation(type=kind, operator="between", formula1=f"{lo_val:g}", formula2=f"{rng.hi:g}")
            else:
                dv = DataValidation(type=kind, operator="greaterThanOrEqual", formula1=f"{lo_val:g}")
        dv.error = f"Enter {rng.describe()}."
        dv.errorTitle = "Invalid input"
        dv.showErrorMessage = True
        dv.allow_blank = False
        ws.add_data_validation(dv)
        self.validations[vkey] = dv
        return dv

    def mark_input(self, ws: Worksheet, row: int, col: int, rng: Range | None, key: str,
                   label: Any = None) -> None:
        """Style an input cell and give it its declared range: data validation on entry, and a check (in
        ``input_rules``, by sheet) that the input-problems cells read, since pasted or blank values bypass
        validation. ``label`` names the input in the message (default: ``key``)."""
        cell = ws.cell(row, col)
        if rng is not None:
            message = concat(key if label is None else label, f" must be {rng.describe()}")
            self.input_rules.setdefault(ws.title, []).append((formula_ok(ref(ws, row, col), rng), message))
        cell.font = style.INPUT_FONT
        cell.fill = style.INPUT_FILL
        cell.protection = style.UNLOCKED
        cell.border = style.BOX
        if rng is not None:
            self.validation(ws, rng, key).add(cell.coordinate)
            if rng.integer and not rng.choices and cell.number_format == "General":
                cell.number_format = "#,##0"  # whole-number inputs with thousands separators

    def define(self, name: str, target: str) -> None:
        self.wb.defined_names[name] = DefinedName(name, attr_text=target)

    def named_input(self, ws: Worksheet, row: int, name: str, value: Any, rng: Range, label: str,
                    unit: str = "") -> Expr:
        ws.cell(row, 1, label).font = style.LABEL_FONT
        ws.cell(row, 2, value)
        ws.cell(row, 3, name).font = style.NOTE_FONT
        ws.cell(row, 4, unit).font = style.NOTE_FONT
        self.mark_input(ws, row, 2, rng, name)
        self.define(name, f"{quote_sheetname(ws.title)}!$B${row}")
        return Expr(name)

    def gpu_choice(self, ws: Worksheet, row: int, col: int, name: str, default: str | None = None) -> Expr:
        """A named input cell choosing a catalog GPU from a dropdown of the hardware names (by default the
        catalog's default GPU)."""
        ws.cell(row, col, default or self.catalog.default_gpu)
        self.mark_input(ws, row, col, None, name)
        dv = DataValidation(type="list", formula1="gpu_names", allow_blank=False)
        dv.error, dv.errorTitle, dv.showErrorMessage = "Pick a GPU from the Hardware catalog.", "Unknown GPU", True
        ws.add_data_validation(dv)
        dv.add(ws.cell(row, col).coordinate)
        self.define(name, f"{quote_sheetname(ws.title)}!${get_column_letter(col)}${row}")
        return Expr(name)

    def gpu_lookup(self, gpu: Expr, rows: tuple[int, int]) -> dict[str, Expr]:
        """A GPU's catalog fields looked up by name in a block of Hardware rows (so renamed and spare rows work)."""
        top, bottom = rows
        out = {}
        for j, col in enumerate(HARDWARE_COLUMNS[:-1], start=1):
            letter = get_column_letter(j)
            out[col] = Expr(f"INDEX(Hardware!${letter}${top}:${letter}${bottom},MATCH({gpu.text},gpu_names,0),1)")
        return out

    def input_header(self, ws: Worksheet, cur: Cursor, title: str, note: str, unit_header: str = "Unit") -> None:
        self.heading(ws, cur, title, note)
        for col, text in enumerate(("Input", "Value", "Name", unit_header), start=1):
            self._header_cell(ws, cur.row, col, text)
        cur.row += 1

    def gpu_input_row(self, ws: Worksheet, cur: Cursor, name: str) -> Expr:
        """The first row of an input block: the GPU, by name, from the catalog."""
        ws.cell(cur.row, 1, "GPU").font = style.LABEL_FONT
        ws.cell(cur.row, 3, name).font = style.NOTE_FONT
        expr = self.gpu_choice(ws, cur.row, 2, name)
        cur.row += 1
        return expr

    def input_block(self, ws: Worksheet, cur: Cursor, title: str, items: list[tuple[str, Any, Range, str, str]],
                    note: str = "") -> None:
        self.heading(ws, cur, title, note)
        for col, text in enumerate(("Input", "Value", "Name", "Unit / meaning"), start=1):
            self._header_cell(ws, cur.row, col, text)
        cur.row += 1
        for name, value, rng, label, unit in items:
            self.inputs[name] = self.named_input(ws, cur.row, name, value, rng, label, unit)
            cur.row += 1

    def _header_cell(self, ws: Worksheet, row: int, col: int, value: Any) -> None:
        cell = ws.cell(row, col)
        cell.value = value.formula if isinstance(value, Expr) else value
        cell.font = style.HEADER_FONT
        cell.fill = style.HEADER_FILL
        cell.alignment = style.CENTER

    def materialize(self, ws: Worksheet, cur: Cursor, title: str, env: dict[str, Any], note: str = "") -> dict[str, Any]:
        """Write formula values of ``env`` into labelled cells once, so the chain refers to cells instead of
        repeating long lookups in every formula; returns the env with those values replaced by references."""
        self.heading(ws, cur, title, note)
        self._header_cell(ws, cur.row, 1, "Quantity")
        self._header_cell(ws, cur.row, 3, "Value")
        cur.row += 1
        out = {}
        for name, value in env.items():
            if isinstance(value, Expr) and ("(" in value.text or "!" in value.text):
                ws.cell(cur.row, 1, name)
                out[name] = self.write(ws, cur.row, 3, value, fill=style.CALC_FILL)
                cur.row += 1
            else:
                out[name] = value
        cur.row += 1
        return out

    # ---------------------------------------------------------------- scopes -> formula cells
    def scope_env(self, scope: Scope) -> dict[str, Any]:
        return scope_env(scope, self.inputs, self.cells, self.gpu_cells.__getitem__)

    def param_value(self, source: Any) -> Any:
        if isinstance(source, Input):
            return self.list_inputs[(source.name, source.index)]
        return source

    def calc_block(self, ws: Worksheet, cur: Cursor, title: str, scopes: list[Scope],
                   header: Callable[[Scope], Any], by_row: bool = False, note: str = "") -> None:
        """Write scopes side by side (one column each; one row each when ``by_row``), one cell per step."""
        self.heading(ws, cur, title, note)
        first = scopes[0]
        params = [name for name, _ in first.params]
        items = [(p, p.replace("_", " "), "") for p in params] + [(s.name, s.label, s.unit) for s in first.steps]
        top = cur.row
        if by_row:
            self._header_cell(ws, top, 1, "Configuration")
            for j, (_, label, unit) in enumerate(items):
                self._header_cell(ws, top, 2 + j, f"{label} ({unit})" if unit else label)
        else:
            self._header_cell(ws, top, 1, "Quantity")
            self._header_cell(ws, top, 2, "Unit")
        for i, scope in enumerate(scopes):
            env = self.scope_env(scope)
            out: dict[str, Expr] = {}

            def place(j: int, i: int = i) -> tuple[int, int]:
                return (top + 1 + i, 2 + j) if by_row else (top + 1 + j, 3 + i)

            hr, hc = (top + 1 + i, 1) if by_row else (top, 3 + i)
            h = header(scope)
            cell = ws.cell(hr, hc, h.formula if isinstance(h, Expr) else h)
            if by_row:
                cell.font = style.LABEL_FONT
            else:
                self._header_cell(ws, hr, hc, h)
            for j, (name, value) in enumerate(scope.params):
                v = self.param_value(value)
                out[name] = self.write(ws, *place(j), v, fill=style.CALC_FILL)
                env[name] = out[name]
            for j, step in enumerate(scope.steps, start=len(params)):
                value = step.evaluate(env)
                out[step.name] = self.write(ws, *place(j), value, self._calc_format(step.unit), style.CALC_FILL)
                env[step.name] = out[step.name]
            self.cells[scope.key] = out
        if not by_row:
            for j, (_, label, unit) in enumerate(items):
                ws.cell(top + 1 + j, 1, label)
                ws.cell(top + 1 + j, 2, unit).font = style.NOTE_FONT
            cur.row = top + len(items) + 2
        else:
            cur.row = top + len(scopes) + 2

    @staticmethod
    def _calc_format(unit: str) -> str:
        return {"ms": "0.000", "GFLOPs": "0.000000", "TFLOPS": "0.00", "GB/s": "0.00", "tokens/s per node": "0.0",
                "params": "#,##0", "bytes": "#,##0", "sequences": "0.0", "GB": "0.000", "KB": "0.000",
                "tokens/s per user": "0.00", "tokens/s per GPU": "#,##0.0", "tokens/s": "#,##0.0"}.get(unit, "General")

    # ---------------------------------------------------------------- article tables
    def resolve(self, cell: Any) -> Any:
        if isinstance(cell, Q):
            if cell.scope[0] == "gpu":
                return self.gpu_cells[cell.scope[1]][cell.name]
            if cell.scope[0] == "datasheet":
                return self.datasheet_cells[cell.scope[1]][cell.name]
            scope = self.cells[cell.scope]
            return scope[cell.name] if cell.name in scope else self.inputs[cell.name]
        if isinstance(cell, Cat):
            return concat(*[self.resolve(p) for p in cell.parts])
        if isinstance(cell, Text):
            q = self.resolve(cell.q)
            pattern = "0" if cell.decimals == 0 else "0." + "0" * cell.decimals
            return Expr(f'TEXT({(q / cell.scale).text},"{pattern}")&"{cell.suffix}"') if cell.suffix else \
                Expr(f'TEXT({(q / cell.scale).text},"{pattern}")')
        return cell

    @staticmethod
    def gated(value: Any) -> Any:
        """An article table's formula, shown only while the inputs it reads are valid ("—" otherwise)."""
        return where(TABLES_OK, value, "—") if isinstance(value, Expr) else value

    def table(self, ws: Worksheet, cur: Cursor, t: Table | FilteredTable) -> None:
        title = f"{t.title}" + (f"  [{t.unit}]" if t.unit else "") + f"   (tbl_{t.id})"  # its name, in the heading
        self.heading(ws, cur, title, t.note)
        self.table_pos[t.id] = (ws, cur.row)  # header row of the tbl_ range
        if isinstance(t, Table):
            self._static_table(ws, cur, t)
        else:
            self._filtered_table(ws, cur, t)

    def _value_format(self, t: Any, row_label: Any, col_label: Any) -> str:
        return style.number_format(cell_decimals(t.decimals, row_label, col_label))

    def _static_table(self, ws: Worksheet, cur: Cursor, t: Table) -> None:
        top = cur.row
        self._header_cell(ws, top, 1, t.index or "")
        for j, col in enumerate(t.columns):
            self._header_cell(ws, top, 2 + j, self.gated(self.resolve(col)))
        for i, (label, cells) in enumerate(t.rows):
            r = top + 1 + i
            lab = self.gated(self.resolve(label))
            ws.cell(r, 1, lab.formula if isinstance(lab, Expr) else lab).font = style.LABEL_FONT
            for j, cell in enumerate(cells):
                value = self.gated(self.resolve(cell))
                col_label = t.columns[j] if isinstance(t.columns[j], str) else None
                self.write(ws, r, 2 + j, value, self._value_format(t, label, col_label))
                ws.cell(r, 2 + j).border = style.BOX
        self._finish_table(ws, t, top, top + len(t.rows), 1 + len(t.columns))
        cur.row = top + len(t.rows) + 1

    def _filtered_table(self, ws: Worksheet, cur: Cursor, t: FilteredTable) -> None:
        """SLA-filtered configurations via a running count and INDEX/MATCH (no FILTER: all engines compute it)."""
        n = len(t.sources)
        top = cur.row
        # helper rows (the predicate per source and its running count) live on the chain sheet, labelled
        hws, hcur = self.helper if self.helper else (ws, Cursor(top + (len(t.fields) if t.by_column else n) + 2))
        self.heading(hws, hcur, f"SLA filter helpers for tbl_{t.id}")
        helper = hcur.row
        hws.cell(helper, 1, f"{t.keep} (source order)").font = style.NOTE_FONT
        hws.cell(helper + 1, 1, "running count of kept configurations").font = style.NOTE_FONT
        for k, key in enumerate(t.sources):
            keep = self.cells[key][t.keep]
            self.write(hws, helper, 2 + k, keep, fill=style.CALC_FILL)
            prev = ref(hws, helper + 1, 1 + k) if k else 0
            self.write(hws, helper + 1, 2 + k, Expr(f"IF({ref(hws, helper, 2 + k).text},1,0)") + prev,
                       fill=style.CALC_FILL)
        hcur.row = helper + 3
        counts = span(hws, helper + 1, 2, helper + 1, 1 + n)

        def pick(qname: str, slot: int) -> Expr:
            row = self._source_span(t.sources, qname)
            return self.gated(Expr(f'IFERROR(INDEX({row},1,MATCH({slot},{counts},0)),"")'))

        self._header_cell(ws, top, 1, t.index or "")
        if t.by_column:
            for s in range(n):
                self._header_cell(ws, top, 2 + s, pick(t.label, s + 1))
            for i, (head, qname) in enumerate(t.fields):
                ws.cell(top + 1 + i, 1, head).font = style.LABEL_FONT
                for s in range(n):
                    self.write(ws, top + 1 + i, 2 + s, pick(qname, s + 1), self._value_format(t, head, None))
            bottom, right = top + len(t.fields), 1 + n
        else:
            for j, (head, _) in enumerate(t.fields):
                self._header_cell(ws, top, 2 + j, head)
            for s in range(n):
                ws.cell(top + 1 + s, 1, pick(t.label, s + 1).formula).font = style.LABEL_FONT
                for j, (head, qname) in enumerate(t.fields):
                    self.write(ws, top + 1 + s, 2 + j, pick(qname, s + 1), self._value_format(t, None, head))
            bottom, right = top + n, 1 + len(t.fields)
        self._finish_table(ws, t, top, bottom, right)
        ws.cell(top, 1).comment = Comment(
            f"Configurations with {t.keep.replace('_', ' ')} (TPS_O > tps_threshold), in source order: each cell is "
            "INDEX(quantity row, 1, MATCH(slot, running count, 0)); unused slots stay blank. The running count is "
            "on Decode_chain.", "dsxl")
        cur.row = bottom + 2

    def _source_span(self, sources: tuple, qname: str) -> str:
        """The contiguous calc-block range holding ``qname`` for ``sources`` (laid out side by side)."""
        first, last = self.cells[sources[0]][qname].text, self.cells[sources[-1]][qname].text
        sheet, a = first.split("!")
        _, b = last.split("!")
        return f"{sheet}!{a}:{b}"

    def _finish_table(self, ws: Worksheet, t: Any, top: int, bottom: int, right: int) -> None:
        self.define(f"tbl_{t.id}", span(ws, top, 1, bottom, right))
        for c in range(2, right + 1):
            width = ws.column_dimensions[get_column_letter(c)].width or 0
            ws.column_dimensions[get_column_letter(c)].width = max(width, 13)

    # ---------------------------------------------------------------- model & scenario fields
    @staticmethod
    def model_inputs(model: ModelArgs) -> list[tuple[str, Any, Range, str, str]]:
        return [(f.name, getattr(model, f.name), MODEL_RANGES.get(f.name, MODEL_COUNT), f.name.replace("_", " "),
                 "") for f in fields(model)]

    @staticmethod
    def scenario_input(scenario: Any, name: str, label: str, unit: str) -> tuple[str, Any, Range, str, str]:
        return (name, getattr(scenario, name), SCENARIO_RANGES[name], label, unit)

