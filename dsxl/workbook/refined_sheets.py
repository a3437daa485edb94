"""The refined model's sheets: Constants (editable, with sources), Predict (pick a GPU and a configuration),
Predict_chain (every intermediate, one labelled cell each) and Validation (``tbl_validation``).

Formulas come from :mod:`dsxl.chains.refined` evaluated with cell references, like the article's sheets.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.pagebreak import Break

from dsxl.data.catalog import Catalog, attention_kernels, generations, load_engines, load_refined
from dsxl.chains.spread import spread, widened_band
from dsxl.refined.accuracy import combined_band, family_key, family_table, outside, parallel_shape, rules, spread_terms
from dsxl.core.expr import Expr, both, concat, eq, where
from dsxl.chains.scope import MODEL_KEY, Key, Scope
from dsxl.chains import aggregated, article as chain, breakdown, refined as refined_chain
from dsxl.chains.step import pin
from dsxl.physics.admission import dp_ranks
from dsxl.physics.attention import mean_decode_context
from dsxl.refined.predict import CONCURRENCY_ROUNDS, NO_ALL_TO_ALL
from dsxl.inputs.request import (CROSS_RULES, ENGINE_GENERATIONS_RULE, OPTIONS, constant_range, engine_numbers,
                                 engine_runs_on, fused_moe_env, normalise, option_env)
from dsxl.core.rules import formula_ok
from dsxl.refined.calibrated import near_band
from dsxl.refined.validation import relative_error, validate
from dsxl.workbook import style
from dsxl.workbook.builder import TABLES_OK, Builder, Cursor, ref, span
from dsxl.workbook.printing import wrapped_note
from dsxl.workbook.input_checks import REFINED_OK, SHARED_PROBLEMS, input_problems, show_problems

GPU_KEY = Key("predict_gpu")

# Switches the CLI leaves to the engine when omitted; the sheet's "auto" means the same: option -> engine number
ENGINE_FLAGS = {"tbo": "micro_batch_overlap"}
# Predict's aggregated serving: 128 requests in flight per attention rank of the default EP128, 1K in, 2K out
PREDICT_AGGREGATED = {"concurrency": 16384, "input_len": 1024, "output_len": 2048}


def constants_sheet(b: Builder, ws: Any, cur: Cursor) -> dict[str, tuple[str, str]]:
    """The constants table, its sources a notes block below it (each row refers to its note as [k], so the table
    prints one page across); returns name -> (its row range, the generations header range)."""
    gens = generations()
    b.heading(ws, cur, "Refined-model constants by GPU generation (named range 'refined_constants')",
              "Blue cells are inputs: edit one and Predict and Validation follow. Each value comes from kernel "
              "measurements ([k]: its source, in the notes below); a generation the notes do not name has no kernel "
              "data of its own and inherits Hopper's.")
    top = cur.row
    heads = ["constant", "unit", *gens, "source"]
    for j, h in enumerate(heads, start=1):
        b._header_cell(ws, top, j, h)
    rows: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    header = span(ws, top, 3, top, 2 + len(gens))
    for i, (name, c) in enumerate(load_refined().items()):
        r = top + 1 + i
        ws.cell(r, 1, name).font = style.LABEL_FONT
        ws.cell(r, 2, c.unit).font = style.NOTE_FONT
        for j, g in enumerate(gens):
            ws.cell(r, 3 + j, c.values[g])
            b.mark_input(ws, r, 3 + j, constant_range(name), f"refined_constant_{name}", f"{name} ({g})")
        ws.cell(r, 3 + len(gens), f"[{i + 1}]").font = style.NOTE_FONT
        own: dict[str, list[str]] = {}  # each distinct source once, with the generations it serves
        for g in gens[1:]:
            if c.sources[g] != c.sources["hopper"] and not c.sources[g].startswith("as Hopper"):
                own.setdefault(c.sources[g], []).append(g)
        others = "; ".join(f"{', '.join(g)}: {text}" for text, g in own.items())
        notes.append(f"{name}. Hopper: {c.sources['hopper']}" + (f" Others: {others}" if others else ""))
        rows[name] = (span(ws, r, 3, r, 2 + len(gens)), header)
    bottom = top + len(rows)
    b.define("refined_constants", span(ws, top, 1, bottom, 3 + len(gens)))
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 36  # the table one page across at 75 %; the generations and reference 14 each
    for j in range(3, 4 + len(gens)):
        ws.column_dimensions[get_column_letter(j)].width = 14
    cur.row = bottom + 2
    b.heading(ws, cur, "Sources of the constants", "Reference [k] is the table's row k.")
    for i, text in enumerate(notes):
        ws.cell(cur.row, 1, f"[{i + 1}]").font = style.LABEL_FONT
        ws.cell(cur.row, 1).alignment = style.TOP
        ws.cell(cur.row, 2, text)
        wrapped_note(ws, cur.row, 2, 3 + len(gens))
        cur.row += 1
    cur.row += 1
    return rows


def by_generation(generation: Expr, values: dict[str, Any]) -> Any:
    """A value per GPU generation as the chosen GPU's (``generation``: its cell): the one value where all agree,
    else a formula that picks by generation (the last generation's value where none matches)."""
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    gens = list(values)
    out: Any = values[gens[-1]]
    for gen in reversed(gens[:-1]):
        out = where(eq(generation, gen), values[gen], out)
    return out


def model_cells(catalog: Catalog, model_name: str, model_env: dict[str, Expr]) -> dict[str, Expr]:
    """The model's fields as the chains read them: ``model_env``'s own cells, or (the MLA family) the Model sheet's
    named inputs."""
    return model_env or {f: Expr(f) for f in catalog.model(model_name).__dataclass_fields__}


def _constant(rows: dict[str, tuple[str, str]], name: str, generation: Expr) -> Expr:
    row, header = rows[name]
    return Expr(f"INDEX({row},1,MATCH({generation.text},{header},0))")


def _gpu_env(b: Builder, fields: dict[str, Expr], rows: dict[str, tuple[str, str]]) -> dict[str, Expr]:
    env = {k: v for k, v in fields.items() if k not in ("name", "kind", "source")}
    env.update({name: _constant(rows, name, fields["generation"]) for name in rows})
    return env


def _option_rows(b: Builder, ws: Any, cur: Cursor, defaults: dict[str, Any],
                 resolved: dict[str, Any]) -> dict[str, Expr]:
    """One blue input row per predict option (declared once in :data:`dsxl.inputs.request.OPTIONS`): its label,
    default, name and unit, checked by a dropdown or its range; returns each option's value as the chains read it
    (a switch left "auto" reads the engine's profile)."""
    opts: dict[str, Expr] = {}
    for o in OPTIONS:
        value = defaults.get(o.name, resolved.get(o.name, o.default))
        name = f"predict_{o.name}"
        if o.name in ENGINE_FLAGS:
            value = "auto"  # the engine's own setting, as the CLI resolves an omitted flag
        ws.cell(cur.row, 1, o.doc[0].upper() + o.doc[1:]).font = style.LABEL_FONT
        ws.cell(cur.row, 2, value)
        ws.cell(cur.row, 3, name).font = style.NOTE_FONT
        ws.cell(cur.row, 4, f"{o.unit} ({', '.join(o.phases[:2])})" if o.unit else ", ".join(o.phases[:2])).font = \
            style.NOTE_FONT
        if o.auto:
            b.mark_input(ws, cur.row, 2, None, name)
            cell = ws.cell(cur.row, 2).coordinate
            dv = DataValidation(type="custom", allow_blank=False,
                                formula1=f'OR({cell}="auto",AND(ISNUMBER({cell}),{cell}>=0,INT({cell})={cell}))')
            dv.error, dv.showErrorMessage = f"Enter auto or {o.rng.describe()}.", True
            ws.add_data_validation(dv)
            dv.add(cell)
        elif o.choices or o.rng is None:
            b.mark_input(ws, cur.row, 2, None, name)
            choices = o.choices or (("auto",) if o.name in ENGINE_FLAGS else ()) + ("TRUE", "FALSE")
            dv = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=False)
            dv.error, dv.showErrorMessage = f"Enter one of {', '.join(choices)}.", True
            ws.add_data_validation(dv)
            dv.add(ws.cell(cur.row, 2).coordinate)
        else:
            b.mark_input(ws, cur.row, 2, o.rng, name)
        b.define(name, f"{ws.title}!$B${cur.row}")
        opts[o.name] = Expr(name)
        if o.name in ENGINE_FLAGS:  # "auto" reads the engine's profile
            opts[o.name] = where(eq(Expr(name), "auto"), engine_numbers(Expr("predict_engine"))[ENGINE_FLAGS[o.name]] > 0,
                                 Expr(name))
        cur.row += 1
    return opts


def _predict_result_rows(d: dict[str, Expr], p: dict[str, Expr], agg: dict[str, Expr], env: dict[str, Expr],
                         bands: tuple[Expr, Expr, Expr]) -> list[tuple[str, Any, str, str]]:
    """The Predict sheet's result rows: (label, value, unit, format); a speed's label starts with its phase."""
    band_d, band_p, band_a = bands
    return [("Decode TPOT", d["tpot_ms"], "ms", "0.00"),
           ("Decode tokens/s per user", d["tokens_per_s_per_user"], "tokens/s", "0.00"),
           ("Decode tokens/s per GPU", d["tokens_per_s_per_gpu"], "tokens/s", "#,##0"),
           ("Max batch per attention rank", d["max_batch"], "sequences", "#,##0"),
           ("Decode batch fits in memory", d["fits"], "TRUE/FALSE", style.BOOLEAN),

           ("Weights per GPU", d["weights_gb"], "GB", "0.0"),
           ("Prefill input tokens/s per GPU", p["tokens_per_s_per_gpu"], "tokens/s", "#,##0"),
           ("Prefill forward step", p["step_ms"], "ms", "#,##0.0"),
           ("Prefill TTFT", p["ttft_ms"], "ms", "#,##0"),
           ("Prefill forward fits in memory", p["fits"], "TRUE/FALSE", style.BOOLEAN),
           ("Two-batch overlap acts (decode / prefill)",
            concat(where(d["tbo_on"], "on", "off"), " / ", where(p["tbo_on"], "on", "off")),
            "on / off", "@"),
           ("Overlap notes", _overlap_notes(d, p, env), "", "@"),
           ("Aggregated output tokens/s per GPU", agg["output_tokens_per_s_per_gpu"], "tokens/s", "#,##0"),
           ("Aggregated TPOT", agg["tpot_ms"], "ms", "0.00"),
           ("Aggregated TTFT", agg["ttft_ms"], "ms", "#,##0"),
           ("Aggregated mean decoding batch", agg["decoding_batch"], "sequences per attention rank", "#,##0.0"),
           ("Decode expected error (band)", band_d, "± relative", '"±"0%'),
           ("Prefill expected error (band)", band_p, "± relative", '"±"0%'),
           ("Aggregated expected error (band)", band_a, "± relative", '"±"0%')]


def predict_sheets(b: Builder, ws: Any, calc: Any, calc_cur: Cursor, rows: dict[str, tuple[str, str]],
                   catalog: Catalog, model_env: dict[str, Expr], chains: tuple[list, list],
                   native_moe_dtype: str, model_name: str) -> dict[str, Expr]:
    """The Predict sheet and its chains (``chains``: the model's decode and prefill; ``model_env``: its fields where
    they are not the Model sheet's); returns the headline result cells."""
    cur = Cursor(3)
    b.input_header(ws, cur, "Your configuration (refined model on datasheet hardware)",
                   "Pick a GPU and a deployment; results and the per-layer breakdown update live. Units in column D.",
                   "Unit / meaning")
    b.gpu_input_row(ws, cur, "predict_gpu")
    defaults = {"ep": 128, "batch": 128, "kv_len": 4096, "tokens_per_gpu": 16384, "prompt_len": 4096,
                **PREDICT_AGGREGATED}
    resolved = normalise("decode", {k: v for k, v in defaults.items() if k in ("ep", "batch", "kv_len")},
                         native_moe_dtype)
    opts = _option_rows(b, ws, cur, defaults, resolved)
    ws.column_dimensions["A"].width = 66
    ws.column_dimensions["C"].width = 26
    ws.column_dimensions["D"].width = 30

    fields = b.gpu_lookup(Expr("predict_gpu"), b.hardware_rows)
    env = b.materialize(calc, calc_cur, "Selected GPU: datasheet fields and refined constants", _gpu_env(b, fields, rows))
    b.cells[GPU_KEY] = {**env, **fused_moe_env(model_name, env["generation"]), **option_env(opts), **model_env}
    problems = _input_problems(b, calc, calc_cur, opts, {**b.inputs, **b.cells[GPU_KEY]})
    decode = Scope("refined_decode", Key("refined_decode"), tuple(chains[0]), (GPU_KEY,))
    prefill = Scope("refined_prefill", Key("refined_prefill"), tuple(chains[1]), (GPU_KEY,))
    b.calc_block(calc, calc_cur, "Decode: every intermediate quantity (refined model)", [decode],
                 lambda s: Expr("predict_gpu"))
    b.calc_block(calc, calc_cur, "Prefill: every intermediate quantity (refined model)", [prefill],
                 lambda s: Expr("predict_gpu"))
    d, p = b.cells[decode.key], b.cells[prefill.key]
    agg, agg_decode = _aggregated_predict(b, calc, calc_cur, chains)
    fields_ = model_cells(catalog, model_name, model_env)
    qd, qp, qa = ({**fields_, **b.cells[GPU_KEY], **q} for q in (d, p, agg_decode))

    col = 1  # results under the inputs, the breakdown under the results: the sheet reads top-down
    r = cur.row + 1
    show_problems(b, ws, r, col, problems, 3, "predict_problems")
    ws.row_breaks.append(Break(id=r))  # the results and the breakdown print on a page of their own, whole
    ws.cell(r + 1, col, "Results (each speed with its expected error)").font = style.H2_FONT
    r += 2
    ok = Expr("predict_inputs_ok")
    bands = _band_cells(b, calc, calc_cur, env["generation"], b.cells[GPU_KEY]["tbo"])
    band_d, band_p, band_a = (widened_band_cell(b, calc, calc_cur, "the Predict configuration", phase, q,
                                                env["generation"], Expr("predict_engine"), band)
                              for phase, q, band in zip(("decode", "prefill", "aggregated"), (qd, qp, qa), bands))
    results = _predict_result_rows(d, p, agg, b.cells[GPU_KEY], (band_d, band_p, band_a))
    for j, h in enumerate(("Result", "Value", "Unit", "Band")):
        b._header_cell(ws, r, col + j, h)
    shown: dict[str, Expr] = {}
    fits_of = {"Decode": d["fits"], "Prefill": p["fits"], "Aggregated": agg["fits"]}
    band_of = {"Decode": band_d, "Prefill": band_p, "Aggregated": band_a}
    for i, (label, cell, unit, fmt) in enumerate(results, start=1):
        ws.cell(r + i, col, label).font = style.LABEL_FONT
        phase = label.split(" ")[0]
        speed = phase in fits_of and ("tokens/s" in label or label.endswith(("TPOT", "TTFT", "step")))
        if speed:
            cell = where(fits_of[phase], cell, "does not fit")  # a speed that cannot run is not a number
            b.write(ws, r + i, col + 3, where(ok, where(fits_of[phase], band_of[phase], ""), "—"), '"±"0%')
        shown[label] = b.write(ws, r + i, col + 1, where(ok, cell, "—"), fmt)
        ws.cell(r + i, col + 2, unit).font = style.NOTE_FONT
    b.define("predict_results", span(ws, r, col, r + len(results), col + 3))
    r += len(results) + 1
    _breakdown_block(b, ws, r, col, ok, qd, qp)
    return {"decode_tpot_ms": shown["Decode TPOT"], "decode_tokens_per_s_per_user": shown["Decode tokens/s per user"],
            "decode_tokens_per_s_per_gpu": shown["Decode tokens/s per GPU"],
            "decode_max_batch": shown["Max batch per attention rank"],
            "decode_fits": shown["Decode batch fits in memory"],
            "prefill_tokens_per_s_per_gpu": shown["Prefill input tokens/s per GPU"],
            "prefill_ttft_ms": shown["Prefill TTFT"]}




def _input_problems(b: Builder, calc: Any, cur: Cursor, opts: dict[str, Expr], values: dict[str, Any]) -> Expr:
    """The Predict inputs' problems, from the declared rules: the GPU is in the catalog, each option's range or
    choices (:data:`dsxl.inputs.request.OPTIONS`) and the cross rules that tie them together
    (:data:`dsxl.inputs.request.CROSS_RULES`)."""
    singles = [(REFINED_OK, SHARED_PROBLEMS),
               (Expr("ISNUMBER(MATCH(predict_gpu,gpu_names,0))"), "the GPU must be a name in the Hardware catalog")]
    for o in OPTIONS:
        if o.name not in opts:
            continue
        auto = o.auto or o.name in ENGINE_FLAGS
        rule = formula_ok(Expr(f"predict_{o.name}"), o.rng, o.choices, auto, switch=o.rng is None and not o.choices)
        allowed = o.rng.describe() if o.rng is not None else ", ".join(o.choices) or "TRUE or FALSE"
        singles.append((rule, f"{o.name} must be {'auto or ' if auto else ''}{allowed}"))
    runs = (engine_runs_on(opts["engine"], values["generation"]),
            f"{ENGINE_GENERATIONS_RULE} (" + "; ".join(f"{n} runs on {', '.join(e.text['generations'])}"
                                                      for n, e in load_engines().items()) + ")")
    return input_problems(b, calc, cur, "predict", singles,
                          [runs] + [(rule.ok(values), rule.message) for rule in CROSS_RULES])


ACCURACY_COLUMNS = ("key", "band", "has_rows", "context_lo", "context_hi", "has_batch", "batch_lo", "batch_hi")


def _breakdown_block(b: Builder, ws: Any, r: int, col: int, ok: Expr, qd: dict[str, Any], qp: dict[str, Any]) -> None:
    """Where the step's time goes, as ``dsxl predict`` shows it (:mod:`dsxl.chains.breakdown`): each block's parts,
    then the total they add up to; the attention kernel named for the chosen GPU's generation."""
    ws.row_breaks.append(Break(id=r - 1))  # a page of its own, whole: it does not fit beside the results
    ws.cell(r, col, "Where the step's time goes (ms per step, both micro-batches)").font = style.H2_FONT
    for j, h in enumerate(("Component", "Decode ms", "Prefill ms")):
        b._header_cell(ws, r + 1, col + j, h)
    rows = [*zip(breakdown.moe_layer_parts(qd).items(), breakdown.moe_layer_parts(qp).values()),
            (("moe_layer", qd["moe_layer_ms"]), qp["moe_layer_ms"]),
            *zip(breakdown.dense_layer_parts(qd).items(), breakdown.dense_layer_parts(qp).values()),
            (("dense_layer", qd["dense_layer_ms"]), qp["dense_layer_ms"]),
            *zip(breakdown.step_parts(qd, "decode").items(), breakdown.step_parts(qp, "prefill").values()),
            (("step", qd["step_ms"]), qp["step_ms"])]
    for i, ((key, decode_ms), prefill_ms) in enumerate(rows, start=r + 2):
        label: Any = breakdown.LABELS[key]
        if key == "attention_kernel":  # named for the chosen GPU's generation
            name = by_generation(qd["generation"], attention_kernels())
            label = where(ok, concat(f"{label} (", name, ")"), label)  # bad inputs: no lookup, no error cell
        b.write(ws, i, col, label)
        ws.cell(i, col).font = style.LABEL_FONT
        b.write(ws, i, col + 1, where(ok, decode_ms, "—"), "0.000")
        b.write(ws, i, col + 2, where(ok, prefill_ms, "—"), "0.000")
    b.define("predict_breakdown", span(ws, r + 1, col, r + 1 + len(rows), col + 2))


def _band_cells(b: Builder, calc: Any, cur: Cursor, generation: Expr, tbo: Expr) -> tuple[Expr, Expr, Expr]:
    """The decode, prefill and aggregated bands of the Predict configuration."""
    spec = rules()
    regime = where(Expr("predict_batch") <= spec["min_latency_batch"]["value"], "min-latency", "decode")
    shape = b.materialize(calc, cur, "Parallel shape of the Predict configuration", {"shape": parallel_shape(
        Expr("predict_ep"), Expr("predict_moe_tp"), Expr("predict_attn_tp"))})["shape"]
    return tuple(band_cells(b, calc, cur, "the Predict configuration", generation, Expr("predict_engine"),
                            Expr("predict_moe_dtype"), [
                                ("decode", regime, Expr("predict_kv_len"), Expr("predict_batch"), tbo,
                                 Expr("predict_mtp_draft"), shape),
                                ("prefill", "prefill", Expr("predict_prompt_len"), None, tbo, 0, shape),
                                ("aggregated", "aggregated", Expr("predict_input_len"), None, tbo,
                                 Expr("predict_mtp_draft"), shape)]))


def _overlap_notes(d: dict[str, Expr], p: dict[str, Expr], env: dict[str, Any]) -> Expr:
    """Overlap asked for where it cannot act runs off, as dsxl predict's notes say: decode's TBO and SBO, then
    prefill's TBO, each with why; "none" when every overlap asked for acts."""
    parts = []
    for phase, q, flag, minimum in (("decode", d, "tbo", "tbo_min_tokens"), ("decode", d, "sbo", None),
                                    ("prefill", p, "tbo", "tbo_min_prefill_tokens")):
        # SBO needs one token per rank, so only a missing all-to-all turns it off
        below = "" if minimum is None else concat(
            Expr(f'TEXT({q["overlap_rank_tokens"].text},"0")'), " tokens per attention rank per step are below ",
            Expr("predict_engine"), "'s minimum of ", Expr(f'TEXT({env[minimum].text},"0")'),
            " for two micro-batches")
        why = where(q["a2a_ranks"] <= 1, NO_ALL_TO_ALL, below)
        asked = Expr(f"AND({env[flag].text},NOT({q[f'{flag}_on'].text}))")
        parts.append(where(asked, concat(f"{phase}: {flag} off: ", why, "; "), ""))
    return where(Expr(f'({concat(*parts).text})=""'), "none", concat(*parts))


def widened_band_cell(b: Builder, calc: Any, cur: Cursor, who: str, phase: str, q: dict[str, Any], generation: Any,
                      engine: Any, band: Expr) -> Expr:
    """A family's band widened by the step's spread from its loosely pinned constants, as ``dsxl predict`` widens
    it (:func:`dsxl.refined.accuracy.spread_terms`): each constant's share of the step and what it adds, then the
    spread and the band."""
    terms = spread_terms(q, phase, generation, engine)
    cells = b.materialize(calc, cur, f"{phase.capitalize()} spread of {who}'s step: what each loosely pinned "
                          "constant adds (its share of the step x its relative uncertainty, 0 where it does not apply)",
                          {c.name: adds for c, _, adds in terms})
    out = b.materialize(calc, cur, f"{phase.capitalize()} band of {who}, widened by its step's spread",
                        {"spread": spread([cells[c.name] for c, _, _ in terms])})
    return b.materialize(calc, cur, f"{phase.capitalize()} band of {who}, the family's and the spread combined",
                         {"band": widened_band(band, out["spread"])})["band"]


def band_cells(b: Builder, calc: Any, cur: Cursor, who: str, generation: Any, engine: Any, moe_dtype: Any,
               phases: list[tuple[str, Any, Any, Any, Any, Any, Any]]) -> list[Expr]:
    """Per (phase, regime, context, batch or None, tbo, MTP draft, parallel shape): the band, looked up in the
    family table (acc_* names on the Validation sheet) and widened as :func:`dsxl.refined.accuracy.accuracy`
    widens it."""
    widen = rules()["widen"]
    out = []
    for phase, reg, context, batch, tbo, mtp, shape in phases:
        key = family_key(generation, engine, reg, moe_dtype, tbo, shape)
        row = Expr(f"MATCH({key.text},acc_key,0)")
        cells = b.materialize(calc, cur, f"{phase.capitalize()} accuracy: {who}'s family", {"family_row": row})
        col = {c: Expr(f"INDEX(acc_{c},{cells['family_row'].text},1)") for c in ACCURACY_COLUMNS[1:]}
        off = outside(context, col["context_lo"], col["context_hi"])
        if batch is not None:
            off = off + col["has_batch"] * outside(batch, col["batch_lo"], col["batch_hi"])
        off = col["has_rows"] * where(off > 0, 1, 0)
        band = combined_band(col["band"], off, mtp, widen["range"]["value"], widen["mtp"]["value"])
        out.append(b.materialize(calc, cur, f"{phase.capitalize()} accuracy band of {who}", {"band": band})["band"])
    return out


def accuracy_table(b: Builder, ws: Any, top: int, model: str, profile: dict | None = None) -> int:
    """The family table the Predict sheet's bands read (one row per generation, engine, regime, MoE dtype and
    TBO; a calibration profile's band where its rows are near); returns the row after it."""
    ws.cell(top, 1, "Accuracy by family: the band before range and MTP widening, and the span of each family's "
                    "calibration rows (dsxl.refined.accuracy)").font = style.H2_FONT
    head = top + 1
    for j, h in enumerate(ACCURACY_COLUMNS, start=1):
        b._header_cell(ws, head, j, h)
    rows = family_table(model)
    for r in rows if profile else ():
        generation, engine, reg = r["key"].split("|")[:3]
        r["band"] = near_band(profile, reg, generation, engine, model) or r["band"]
    for i, r in enumerate(rows, start=1):
        values = (r["key"], r["band"], int(r["context_lo"] is not None), r["context_lo"] or 0, r["context_hi"] or 0,
                  int(r["batch_lo"] is not None), r["batch_lo"] or 0, r["batch_hi"] or 0)
        for j, v in enumerate(values, start=1):
            ws.cell(head + i, j, v)
    bottom = head + len(rows)
    for j, c in enumerate(ACCURACY_COLUMNS, start=1):
        letter = get_column_letter(j)
        b.define(f"acc_{c}", f"{ws.title}!${letter}${head + 1}:${letter}${bottom}")
    return bottom + 1


def _aggregated_rows(b: Builder, calc: Any, cur: Cursor, rows: dict[str, tuple[str, str]], catalog: Catalog,
                     measurements: list[dict[str, Any]]) -> dict[str, Expr]:
    """Aggregated measurements as dsxl.predict computes them, for every engine (:mod:`dsxl.chains.aggregated`)."""
    out = {}
    for v in measurements:
        opts = normalise("aggregated", v["conditions"])
        env = option_env(opts)
        fields = b.datasheet_gpu_cells[v["gpu"]]
        env_key = Key("validation_env", name=v["id"])
        b.cells[env_key] = b.materialize(calc, cur, f"{v['id']}: {v['gpu']} datasheet fields and refined constants",
                                         _gpu_env(b, fields, rows))
        model_params, _ = _row_model(b, catalog, v, env_key)
        common = {**{k: val for k, val in env.items() if k not in ("input_len", "output_len", "cache_hit")},
                  **dict(model_params), "kv_len": mean_decode_context(opts["input_len"], opts["output_len"])}
        lengths = {"input_len": opts["input_len"], "output_len": opts["output_len"], "cache_hit": opts["cache_hit"]}
        _, combine = aggregated_cells(b, calc, cur, (refined_chain.DECODE, refined_chain.PREFILL), env_key, common,
                                      lengths, f"validation_aggregated_{v['id']}", f"Validation, refined model: {v['id']}")
        out[v["id"]] = combine["output_tokens_per_s_per_gpu"]
    return out


def aggregated_cells(b: Builder, calc: Any, cur: Cursor, chains: tuple[list, list], env_key: Key,
                     common: dict[str, Any], lengths: dict[str, Any], tag: str,
                     title: str) -> tuple[dict[str, Expr], dict[str, Expr]]:
    """One run of the aggregated chain as cells (:func:`dsxl.chains.aggregated.run_aggregated`): a decode scope at
    ``common`` (batch, mean context and what else differs from ``env_key``), the admission of prompts beside it, one
    prompt piece through the prefill chain (mixed into the decode forward and on its own) and their combination.
    Returns (the decode cells, the combined cells)."""
    decode = Scope("aggregated_decode", Key("aggregated_decode", name=tag), tuple(chains[0]), (env_key,),
                   tuple(common.items()), title=tag)
    b.calc_block(calc, cur, f"{title} aggregated, the decode step", [decode], lambda s: s.title)
    admit = Scope("aggregated_admission", Key("aggregated_admission", name=tag), tuple(aggregated.ADMISSION),
                  (env_key, decode.key), tuple(lengths.items()), title=tag)
    b.calc_block(calc, cur, f"{title} aggregated, prompts admitted beside the decodes", [admit], lambda s: s.title)
    a = b.cells[admit.key]
    piece = {**common, "tokens_per_gpu": a["piece_input_tokens"], "prompt_len": lengths["input_len"],
             "cache_hit": lengths["cache_hit"], "moe_token_share": a["expert_token_share"]}
    pieces = {}
    for kind, steps in (("mixed", pin(chains[1], aggregated.SHARED_WITH_DECODE)), ("alone", chains[1])):
        scope = Scope(f"aggregated_{kind}", Key(f"aggregated_{kind}", name=tag), tuple(steps), (env_key,),
                      tuple(piece.items()), title=tag)
        b.calc_block(calc, cur, f"{title} aggregated, a prompt piece "
                     f"({'mixed into the decode forward' if kind == 'mixed' else 'a forward of its own'})",
                     [scope], lambda s: s.title)
        pieces[kind] = b.cells[scope.key]
    piece_key = Key("aggregated_pieces", name=tag)
    b.cells[piece_key] = {**{f"mixed_{k}": pieces["mixed"][k] for k in aggregated.PIECE_OUTPUTS},
                          "alone_step_ms": pieces["alone"]["step_ms"], "decode_step_ms": b.cells[decode.key]["step_ms"]}
    combine = Scope("aggregated_combine", Key("aggregated_combine", name=tag), tuple(aggregated.COMBINE),
                    (env_key, decode.key, admit.key, piece_key), title=tag)
    b.calc_block(calc, cur, f"{title} aggregated serving", [combine], lambda s: s.title)
    return b.cells[decode.key], b.cells[combine.key]


def _aggregated_predict(b: Builder, calc: Any, cur: Cursor, chains: tuple[list, list]
                        ) -> tuple[dict[str, Expr], dict[str, Expr]]:
    """Predict's aggregated serving at ``predict_concurrency`` requests in flight per instance, as ``dsxl predict
    aggregated --concurrency`` computes it: the decoding batch by Little's law, refined over the same number of
    rounds (:data:`dsxl.refined.predict.CONCURRENCY_ROUNDS`), each round one run of the aggregated chain. Returns
    the aggregated cells and the last round's decode step."""
    inputs = {k: Expr(f"predict_{k}") for k in ("concurrency", "input_len", "output_len", "cache_hit")}
    ranks = b.materialize(calc, cur, "Aggregated serving (Predict): attention ranks", {
        "ranks": dp_ranks(Expr("predict_ep") * Expr("predict_moe_tp"), Expr("predict_attn_tp"))})["ranks"]
    kv_len = mean_decode_context(inputs["input_len"], inputs["output_len"])  # each round's decode scope shows it
    batch = b.materialize(calc, cur, "Aggregated serving (Predict): round 0, every request decoding",
                          {"batch": inputs["concurrency"] / ranks})["batch"]
    lengths = {k: inputs[k] for k in ("input_len", "output_len", "cache_hit")}
    for k in range(CONCURRENCY_ROUNDS + 1):
        d, c = aggregated_cells(b, calc, cur, chains, GPU_KEY, {"batch": batch, "kv_len": kv_len}, lengths,
                                f"predict_aggregated_{k}", f"Predict, round {k}:")
        if k < CONCURRENCY_ROUNDS:  # the requests in flight less those waiting for or in prefill
            batch = b.materialize(calc, cur, f"Aggregated serving (Predict): round {k + 1}, the decoding batch",
                                  {"batch": inputs["concurrency"] * c["decoding_share"] / ranks})["batch"]
    return {**c, "decoding_batch": batch, "fits": d["fits"], "decode_tbo_on": d["tbo_on"]}, d


def _row_model(b: Builder, catalog: Catalog, v: dict[str, Any], env_key: Key) -> tuple[tuple, tuple[list, list]]:
    """A measurement's model inputs beyond the Model sheet: every field of a model other than the workbook's (as
    constants) and its measured fused-MoE kernel on the row's GPU generation; and the model's chains."""
    model = catalog.model(v["model"])
    own = () if v["model"] == catalog.default_model else tuple((f.name, getattr(model, f.name)) for f in fields(model))
    generation = b.cells[env_key].get("generation", catalog.gpu(v["gpu"]).generation)
    return own + tuple(fused_moe_env(v["model"], generation).items()), refined_chain.chains(model)


def validation_sheet(b: Builder, ws: Any, calc: Any, calc_cur: Cursor, rows: dict[str, tuple[str, str]],
                     catalog: Catalog, profile: dict | None = None) -> dict[str, Expr]:
    """One refined and one article calculation per published measurement, side by side; tbl_validation.
    Returns each measurement's refined-error cell."""
    results = validate(calibration=profile)
    refined_cells, article_cells = _validation_chains(b, calc, calc_cur, rows, catalog, results)
    errors, bottom, width = _validation_table(b, ws, results, refined_cells, article_cells)
    _validation_sources(b, ws, results, bottom, width)
    return errors


def _validation_chains(b: Builder, calc: Any, calc_cur: Cursor, rows: dict[str, tuple[str, str]], catalog: Catalog,
                       results: list[dict[str, Any]]) -> tuple[dict[str, Expr], dict[str, Expr]]:
    """Each measurement's refined and article chains on Refined_chain (scopes of one model and step list side by
    side); returns the cells of the metric each measured, refined and article, by measurement."""
    refined_cells: dict[str, Expr] = {}
    article_cells: dict[str, Expr] = {}
    for phase in ("decode", "prefill"):
        scopes, art = [], []
        for v in [v for v in results if v["phase"] == phase]:
            fields = b.datasheet_gpu_cells[v["gpu"]]
            env_key = Key("validation_env", name=v["id"])
            b.cells[env_key] = b.materialize(calc, calc_cur, f"{v['id']}: {v['gpu']} datasheet fields and refined "
                                             "constants", _gpu_env(b, fields, rows))
            model_params, chains = _row_model(b, catalog, v, env_key)
            conditions = tuple(option_env(normalise(phase, v["conditions"])).items()) + model_params
            steps = chains[0] if phase == "decode" else chains[1]
            scopes.append(Scope(f"validation_{phase}", Key("validation", name=v["id"]), tuple(steps), (env_key,), conditions,
                                title=v["id"]))
            a = v["article_conditions"]
            if v["article"] is None:  # a deployment the article's model does not express (MoE TP, V4)
                continue
            if phase == "decode":
                # the MLA TP is the measurement's attention TP, as dsxl predict --mode article takes it
                params = (("seq_len", a["kv_len"]), ("batch_size", a["batch"]), ("mla_tp", a["attn_tp"]))
                asteps = [s for s in chain.DECODE_FLOPS[:2] + chain.DECODE_EFFECTIVE + chain.DECODE_GPU
                          + chain.DECODE_BATCH if s.name != "mla_tp"]
            else:
                per_node = min(a["ep"], catalog.scenario.gpu_per_node)
                params = (("seq_len", a["prompt_len"]), ("kv_cache_rate", a.get("cache_hit", 0)),
                          ("num_node", max(a["ep"] // per_node, 1)), ("gpu_per_node", per_node),
                          ("dispatch_node", max(a["ep"] // per_node, 1)), ("tp", a["attn_tp"]))
                asteps = (chain.PREFILL_FLOPS + chain.PREFILL_EFFECTIVE + chain.PREFILL_GPU + chain.PREFILL_DEPLOY
                          + chain.PREFILL_PER_GPU)
            art.append(Scope(f"validation_article_{phase}", Key("validation_article", name=v["id"]), tuple(asteps),
                             (MODEL_KEY,), params, gpu=v["gpu"], title=v["id"]))
        # scopes side by side share rows: one block per set of inputs and steps (a model other than the
        # workbook's brings its own fields and chain)
        groups: dict[tuple, list[Scope]] = {}
        for scope in scopes:
            groups.setdefault((tuple(n for n, _ in scope.params), tuple(map(id, scope.steps))), []).append(scope)
        for group in groups.values():
            models = {v["model"] for v in results if v["id"] in {g.title for g in group}}
            b.calc_block(calc, calc_cur, f"Validation, refined model: {phase} measurements ({', '.join(sorted(models))})",
                         group, lambda s: s.title)
        b.calc_block(calc, calc_cur, f"Validation, article model: {phase} measurements", art, lambda s: s.title)
        per_user = {v["id"] for v in results if "per user" in v["metric"]}
        for s in scopes:
            q = b.cells[s.key]
            refined_cells[s.title] = q["tokens_per_s_per_user" if s.title in per_user else "tokens_per_s_per_gpu"]
        overlap = {v["id"]: v["article_conditions"].get("tbo", True) for v in results}
        if phase == "prefill":  # after both phases' blocks: the aggregated rows combine a decode and a prefill scope
            refined_cells.update(_aggregated_rows(b, calc, calc_cur, rows, catalog, [v for v in results
                                                                              if v["phase"] == "aggregated"]))
        for s in art:
            q = b.cells[s.key]
            if phase == "decode":
                article_cells[s.title] = q["total_overlap" if overlap[s.title] else "total"]
            else:  # every prefill row runs TBO
                article_cells[s.title] = q["tps_overlap_gpu"]
    return refined_cells, article_cells


def _validation_table(b: Builder, ws: Any, results: list[dict[str, Any]], refined_cells: dict[str, Expr],
                      article_cells: dict[str, Expr]) -> tuple[dict[str, Expr], int, int]:
    """tbl_validation: measured, refined, article and their errors, one row per measurement; returns the refined
    error cells, the table's last row and its width."""
    cur = Cursor(3)
    b.heading(ws, cur, "Published deployments vs the models (named range 'tbl_validation')",
              "Refined and article predictions recalculate from the Constants sheet and the catalog; the conditions "
              "of each measurement are in Refined_chain. Error = refined / measured - 1.")
    top = cur.row
    errors: dict[str, Expr] = {}
    heads = ("Measurement", "Measured", "Refined", "Article", "Refined error", "Article error", "LOO error", "Role",
             "Phase", "GPU", "What was measured (the unit)")
    for j, h in enumerate(heads, start=1):
        b._header_cell(ws, top, j, h)
    ok = both(REFINED_OK, TABLES_OK)  # both chains read the shared sheets
    for i, v in enumerate(results, start=1):
        r = top + i
        ws.cell(r, 1, v["id"]).font = style.LABEL_FONT
        unit = "#,##0.0"  # the row's unit is its last column (C4 is per user, prefill rows count input tokens)
        ws.cell(r, 2, v["measured"]).number_format = unit
        measured = ref(ws, r, 2)
        if v["id"] in refined_cells:
            refined = b.write(ws, r, 3, where(ok, refined_cells[v["id"]], "—"), unit)
            errors[v["id"]] = b.write(ws, r, 5, where(ok, relative_error(refined, measured), "—"), "+0.0%;-0.0%")
        else:  # not computed in the sheet
            ws.cell(r, 3, "dsxl validate").font = style.NOTE_FONT
        if v["id"] in article_cells:
            article = b.write(ws, r, 4, where(ok, article_cells[v["id"]], "—"), unit)
            b.write(ws, r, 6, where(ok, relative_error(article, measured), "—"), "+0.0%;-0.0%")
        else:
            ws.cell(r, 4, "not modelled").font = style.NOTE_FONT
        if v["loo_error"] is not None:  # from the joint fit (templates/fitted.json), not recalculated
            ws.cell(r, 7, v["loo_error"]).number_format = "+0.0%;-0.0%"
        else:
            ws.cell(r, 7, "sanity row").font = style.NOTE_FONT
        for j, key in enumerate(("role", "phase", "gpu", "metric"), start=8):
            ws.cell(r, j, v[key]).alignment = style.WRAP
        for j in range(1, 8):
            ws.cell(r, j).alignment = style.TOP
    bottom = top + len(results)
    b.define("tbl_validation", span(ws, top, 1, bottom, 7))
    b.fixed_widths[ws.title] = dict(zip("ABCDEFGHIJK", (12, 11, 11, 11, 9, 9, 9, 11, 10, 7, 28)))  # one page across
    ws.cell(bottom + 2, 1, "Calibration rows are held to +-10 % by the tests; sanity rows state what they "
                           "assume. Both columns use the same GPU catalog and model inputs as the rest of the "
                           "workbook.").font = style.NOTE_FONT
    return errors, bottom, len(heads)


def _validation_sources(b: Builder, ws: Any, results: list[dict[str, Any]], bottom: int, width: int) -> None:
    """Where each measurement comes from, and what the model assumes where its source is silent."""
    cur = Cursor(bottom + 4)
    b.heading(ws, cur, "Where each measurement comes from", "Its source, then what the model assumes where the "
                                                            "source is silent.")
    for v in results:  # a notes block as wide as the table
        ws.cell(cur.row, 1, f"[{v['id']}]").font = style.LABEL_FONT
        ws.cell(cur.row, 1).alignment = style.TOP
        ws.cell(cur.row, 2, f"Source: {v['source']}" + (f" Assumed: {v['assumed']}" if v["assumed"] else ""))
        wrapped_note(ws, cur.row, 2, width)
        cur.row += 1


__all__ = ["accuracy_table", "constants_sheet", "predict_sheets", "validation_sheet"]
