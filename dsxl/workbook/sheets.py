"""The workbook's sheets: what goes where. All math comes from the shared chains via :class:`Builder`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from openpyxl.chart import BarChart, Reference, ScatterChart, Series
from openpyxl.comments import Comment
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.pagebreak import Break

from dsxl.data.catalog import Catalog, ModelArgs, generations
from dsxl.core.expr import Expr, concat
from dsxl.article.layout import article_tables, build_plan, cell_decimals, decode_key, gpu_decode_key
from dsxl.chains.scope import MODEL_KEY, Input, Scope
from dsxl.chains import article as chain, refined as refined_chain
from dsxl.physics import flops
from dsxl.core.rules import BATCH, GPU_RANGES, GPU_UNITS
from dsxl.workbook import style
from dsxl.workbook.builder import HARDWARE_COLUMNS, Builder, Cursor, ref, span
from dsxl.workbook.input_checks import problems_cell, shared_input_checks
from dsxl.workbook.printing import _text_pt, column_pt, first_page_columns, lay_out, place_chart, upright_pt, wrapped_note
from dsxl.workbook.planner_sheet import day6_block, planner_sheet
from dsxl.workbook.power_block import power_catalog, power_chart
from dsxl.workbook.refined_sheets import accuracy_table, constants_sheet, predict_sheets, validation_sheet
from dsxl.core.rules import EP_SIZE

ARTICLE = ("zartbot, \"DeepSeek-V3/R1 inference efficiency analysis\" (2025-03-14): the analytic model this "
           "workbook implements.")
PLANNER = "planner"
AUDIT_SHEETS = ("Prefill_chain", "Decode_chain", "Refined_chain", "Planner_grid")
BLOCK_SHEETS = ("Predict", "Planner")

SHEETS = [
    ("Start", "What this workbook is and how to use it"),
    ("Predict", "Refined prediction for your GPU and deployment: TPOT, tokens/s, memory, per-layer breakdown"),
    ("Planner", "Size a cluster: SLA search, prefill/decode split, cost per million tokens, power"),
    ("Validation", "Refined and article model against published deployments"),
    ("Model", "DeepSeek-V3/R1 arguments, parameter counts and FLOPs (article section 1)"),
    ("Hardware", "GPU catalog (editable), network variants and the article's datasheet table"),
    ("Prefill", "Prefill scenario inputs and every section-2 table"),
    ("Decode", "Decode inputs, EP strategies, your-GPU planner and every section-3 table"),
    ("Summary", "TL;DR: the article's headline tables and DeepSeek's day 6"),
    ("Prefill_chain", "Every intermediate prefill quantity, one labelled cell each (audit trail)"),
    ("Decode_chain", "Every intermediate decode and memory quantity, one labelled cell each (audit trail)"),
    ("Constants", "Refined-model constants per GPU generation, each with its kernel-data source (editable)"),
    ("Refined_chain", "Every intermediate quantity of the refined model: Predict and Validation (audit trail)"),
    ("Planner_grid", "The Planner's candidate configurations, one refined chain per row (audit trail)"),
    ("Checks", "Each value the article prints beside the workbook's, with a pass mark"),
    ("UDFs", "Excel functions from the dsxl add-in (Windows Excel + xlwings)"),
]


def build(catalog: Catalog, model: str | None = None, profile: dict | None = None) -> Workbook:
    """The workbook; ``profile`` (a checked ``dsxl calibrate`` profile, whose values the catalog already reads, see
    :func:`dsxl.data.catalog.overridden`) lists the user's runs on Validation and says so on Start."""
    scenario = catalog.scenario
    plan = build_plan(catalog, len(scenario.batch_sizes))
    tables = article_tables(plan)
    b = Builder(catalog, plan)
    ws = {name: b.sheet(name, f"{name.replace('_', ' ')}: {desc}") for name, desc in SHEETS}
    cur = {name: Cursor(3) for name in ws}

    model_name = str(model or catalog.default_model)
    refined_model = catalog.model(model_name)
    # the article's method is defined for MLA models: a compressed-attention workbook keeps the article's model on
    # its sheets and gives the refined sheets (Predict, Planner) the built model in a block of their own
    article_model = catalog.default_model if refined_model.compressed_attention else model_name
    _model_inputs(b, ws["Model"], cur["Model"], catalog, article_model)
    refined_env = _refined_model_inputs(b, ws["Model"], cur["Model"], model_name, refined_model)
    _hardware(b, ws["Hardware"], cur["Hardware"], catalog)
    power_catalog(b, ws["Hardware"], cur["Hardware"], len(HARDWARE_COLUMNS), _hardware_width)
    power_chart(b, ws["Hardware"], cur["Hardware"], ws["Planner_grid"], cur["Planner_grid"], model_name)
    _prefill_inputs(b, ws["Prefill"], cur["Prefill"], scenario)
    _decode_inputs(b, ws["Decode"], cur["Decode"], catalog)
    _article_chain(b, ws, cur, plan)
    _planner_chain(b, ws["Decode"], ws["Decode_chain"], cur["Decode_chain"], catalog)
    constant_rows = constants_sheet(b, ws["Constants"], cur["Constants"])
    shared_input_checks(b, ws["Decode_chain"], cur["Decode_chain"],
                        [b.inputs, refined_env] if refined_env else [b.inputs],
                        list(dict.fromkeys(list(plan.t["prefill_gpus"]) + list(plan.t["decode_gpus"]))), PLANNER)
    for sheet, (row, col) in {"Model": (3, 4), "Hardware": (3, 1), "Prefill": (3, 1), "Decode": (3, 1),
                              "Constants": (3, 1), "Summary": (3, 1), "Validation": (3, 1)}.items():
        problems_cell(b, ws[sheet], row, col, 2 if sheet == "Model" else 4)
    chains = refined_chain.chains(refined_model)
    headline = _refined_sheets(b, ws, cur, catalog, constant_rows, refined_env, chains, model_name, profile)
    print_rows = {"Validation": ws["Validation"].max_row, "Checks": 60}  # the rest is reference data, on screen
    accuracy_table(b, ws["Validation"], ws["Validation"].max_row + 3, model_name, profile)
    headline.update({f"plan_{k}": v for k, v in planner_sheet(b, ws["Planner"], ws["Planner_grid"],
                                                                cur["Planner_grid"], constant_rows, catalog,
                                                                refined_env, chains, model_name).items()})
    _article_table_sheets(b, ws, cur, tables)
    day6_block(b, ws["Summary"], cur["Summary"], 1)  # the Planner's cost formulas on DeepSeek's published day
    positions = b.table_pos
    _charts(b, ws, cur, plan, positions)
    _checks(b, ws["Checks"], cur["Checks"], positions, tables, catalog)
    _start(b, ws["Start"], catalog, headline, profile)
    _udfs_sheet(ws["UDFs"])
    _xlwings_conf(b.wb)
    _notes(b, ws)
    for name, sheet in ws.items():
        _finish_sheet(b, name, sheet, print_rows.get(name))
    return b.wb


def _article_chain(b: Builder, ws: dict[str, Any], cur: dict[str, Cursor], plan: Any) -> None:
    """The article's calculation chain, scope by scope, in dependency order: the model's derived quantities, then
    the prefill and decode chains by GPU, deployment, EP strategy and batch."""
    model_scope = plan.scopes[MODEL_KEY]
    b.calc_block(ws["Model"], cur["Model"], "Derived quantities (calculated)", [model_scope], lambda s: "Value",
                 note="Grey cells are formulas over the inputs above; the tables below read them.")
    by_kind: dict[str, list[Scope]] = {}
    for scope in plan.scopes.values():
        by_kind.setdefault(scope.kind, []).append(scope)
    name_of = lambda s: b.gpu_cells[s.gpu]["gpu_name"]  # noqa: E731
    pc, dc = ws["Prefill_chain"], ws["Decode_chain"]
    b.calc_block(pc, cur["Prefill_chain"], "Per GPU: effective figures (prefill comm_sm), MLA and DenseMLP",
                 by_kind["gpu_prefill"], name_of)
    b.calc_block(pc, cur["Prefill_chain"], "Per GPU and deployment (TP, DP = num_node x gpu_per_node / TP)",
                 by_kind["prefill"], lambda s: Expr(f'{name_of(s).text}&" TP{s.key.tp}"'))
    b.calc_block(dc, cur["Decode_chain"], "EP strategies", by_kind["ep"],
                 lambda s: Expr(f'"EP"&{b.list_inputs[("ep", s.key.index)].text}'))
    b.calc_block(dc, cur["Decode_chain"], "Per GPU: effective figures (decode_comm_sm) and all-reduce",
                 by_kind["gpu_decode"], name_of)
    b.calc_block(dc, cur["Decode_chain"], "Per GPU and batch size: absorbed MLA, MoE, all-to-all, TPOT",
                 by_kind["decode"], name_of)
    b.calc_block(dc, cur["Decode_chain"], "Per GPU and batch size: standard (not absorbed) MLA", by_kind["decode_std"],
                 name_of)
    b.calc_block(dc, cur["Decode_chain"], "Max batch per GPU (section 3.2)", by_kind["maxb"],
                 lambda s: Expr(f'{name_of(s).text}&" TP{s.key.tp} "&"EP"&{b.list_inputs[("ep", s.key.index)].text}'
                                f'&"{" absorbed" if s.key.absorb else " standard"}{" FP16" if s.key.kv_fp16 else " FP8"} KV"'),
                 by_row=True)


def _refined_sheets(b: Builder, ws: dict[str, Any], cur: dict[str, Cursor], catalog: Catalog, constant_rows: Any,
                    refined_env: Any, chains: Any, model_name: str, profile: dict | None) -> dict[str, Any]:
    """Predict and, for the default model, Validation (the published measurements are its deployments); returns
    the headline cells Start repeats."""
    refined_model = catalog.model(model_name)
    headline = predict_sheets(b, ws["Predict"], ws["Refined_chain"], cur["Refined_chain"], constant_rows, catalog,
                              refined_env, chains, refined_model.native_moe_dtype, model_name)
    if model_name == catalog.default_model:
        errors = validation_sheet(b, ws["Validation"], ws["Refined_chain"], cur["Refined_chain"], constant_rows,
                                  catalog, profile)
        headline.update({f"error_{k}": v for k, v in errors.items()})
    else:
        ws["Validation"]["A3"] = (f"The published measurements are {catalog.default_model} deployments: build the "
                                  "default workbook (dsxl build) to see them.")
    return headline


def _article_table_sheets(b: Builder, ws: dict[str, Any], cur: dict[str, Cursor], tables: list) -> None:
    """The article's tables, where a planner looks for them (SLA-filter helpers go to Decode_chain)."""
    b.helper = (ws["Decode_chain"], cur["Decode_chain"])
    home = {"TL;DR": "Summary", "1.4": "Model"}
    for t in tables:
        sheet = "Hardware" if t.id == "gpu_specs" else home.get(t.section, "Prefill" if t.section.startswith("2")
                                                                 else "Decode")
        if t.id == "tldr_prefill":
            b.heading(ws[sheet], cur[sheet], "Headline figures", "From the tables below and the section tables.")
        b.table(ws[sheet], cur[sheet], t)


def _finish_sheet(b: Builder, name: str, sheet: Any, print_rows: int | None) -> None:
    """Column widths, print layout, frozen panes and protection (formats stay editable)."""
    for col in range(2, 40):  # numbers never show as ### at the article's precision
        letter = get_column_letter(col)
        if (sheet.column_dimensions[letter].width or 0) < 14:
            sheet.column_dimensions[letter].width = 14
    _fit_headers(sheet)
    for letter, width in b.fixed_widths.get(name, {}).items():
        sheet.column_dimensions[letter].width = width
    if name == "Hardware":
        narrow_hardware(sheet)
    sheet.print_title_rows = "1:2"  # the sheet's title and intro on every printed page
    if name in AUDIT_SHEETS or print_rows is not None:  # these print their first block; the rest is on screen
        intro = sheet["A2"].value
        sheet["A2"] = (f"{intro} " if intro else "") + "Printed: the first block; the whole sheet is on screen."
        sheet["A2"].font = style.NOTE_FONT
    if name in AUDIT_SHEETS:
        lay_out(sheet, label_column=True, last_row=min(sheet.max_row, 60), last_col=first_page_columns(sheet))
    else:  # Predict and Planner are blocks side by side; the other sheets are tables labelled by column A
        lay_out(sheet, label_column=name not in BLOCK_SHEETS, last_row=print_rows)
    sheet.freeze_panes = "B3"
    sheet.protection.sheet = True
    sheet.protection.formatColumns = False
    sheet.protection.formatRows = False


def _is_header(c: Any) -> bool:
    return c.fill is style.HEADER_FILL or bool(c.fill and c.fill.fgColor and c.fill.fgColor.rgb == "001F3864")


def _fit_headers(ws: Any) -> None:
    """Widen columns so no header text is cut (header cells hold plain text in the header style)."""
    for row in ws.iter_rows():
        for c in row:
            if _is_header(c):
                if isinstance(c.value, str) and not c.value.startswith("="):
                    letter = get_column_letter(c.column)
                    need = min(len(c.value) + 2, 40)
                    if (ws.column_dimensions[letter].width or 0) < need:
                        ws.column_dimensions[letter].width = need


# ------------------------------------------------------------------------------------- inputs
def _model_inputs(b: Builder, ws: Any, cur: Cursor, catalog: Catalog, name: str) -> None:
    model = catalog.model(name)
    ws.cell(cur.row, 1, "Model preset this workbook holds").font = style.LABEL_FONT
    ws.cell(cur.row, 2, name).font = style.LABEL_FONT
    b.define("model_preset", f"{ws.title}!$B${cur.row}")
    cur.row += 1
    b.input_block(ws, cur, f"Model arguments ({name})", b.model_inputs(model),
                  "Blue on yellow cells are inputs; each is a defined name (e.g. =dim). The article's tables use the "
                  "article's parameter constants for memory (Decode sheet inputs).")
    ws.column_dimensions["B"].width = 20


def _refined_model_inputs(b: Builder, ws: Any, cur: Cursor, name: str, model: ModelArgs) -> dict[str, Expr]:
    """For a compressed-attention model: its arguments as named inputs (refined_<field>) that the Predict and
    Planner chains read instead of the article's Model block; empty for the MLA family (they share that block)."""
    if not model.compressed_attention:
        return {}
    cur.row += 1
    items = [(f"refined_{n}", v, rng, label, unit) for n, v, rng, label, unit in b.model_inputs(model)]
    b.input_block(ws, cur, f"Model the refined sheets use ({name}: compressed sparse attention)", items,
                  "Predict and Planner compute this model. The article's tables above are defined for MLA models, "
                  "so they keep the article's DeepSeek-V3.")
    ws.cell(cur.row, 1, "Model preset the refined sheets hold").font = style.LABEL_FONT
    ws.cell(cur.row, 2, name).font = style.LABEL_FONT
    cur.row += 2
    return {n: Expr(f"refined_{n}") for n, *_ in b.model_inputs(model)}


SPARE_ROWS = 2
SPARE_SOURCE = ("Spare row for your own GPU: rename it and enter its datasheet figures; it appears in every GPU "
                "dropdown (Predict, Planner, Decode > Your GPU). Prefilled with {template}'s figures.")


def _hardware(b: Builder, ws: Any, cur: Cursor, catalog: Catalog) -> None:
    """The Hardware sheet: the GPU catalog (with spare rows), the article's view of it, the network variants, the
    article's datasheet table and the catalog rows' sources."""
    gpus = _gpu_catalog(b, ws, cur, catalog)
    _article_hardware(b, ws, cur, catalog, gpus)
    _network_variants(b, ws, cur, catalog)
    _datasheet_table(b, ws, cur, catalog)
    _catalog_sources(b, ws, cur, gpus)


def _gpu_catalog(b: Builder, ws: Any, cur: Cursor, catalog: Catalog) -> list:
    """The GPU catalog (named range 'hardware'), its spare rows for the user's own GPUs; returns its rows."""
    b.heading(ws, cur, "GPU catalog (named range 'hardware')",
              "Datasheet figures (dense TFLOPS). Edit any blue value; every table and prediction using that GPU "
              "follows. Units are above each column; sources at the right.")
    top = cur.row
    for j, col in enumerate(HARDWARE_COLUMNS, start=1):
        b._header_cell(ws, top, j, col)
        ws.cell(top - 1, j, GPU_UNITS.get(col, "")).font = style.NOTE_FONT
    template = catalog.gpu(catalog.spare_gpu_template)
    spares = [replace(template, name=f"Custom_{i}", kind="custom", source=SPARE_SOURCE.format(template=template.name))
              for i in range(1, SPARE_ROWS + 1)]
    gpus = list(catalog.gpus.values()) + spares
    generation_list = DataValidation(type="list", formula1='"' + ",".join(generations()) + '"', allow_blank=False)
    generation_list.error, generation_list.showErrorMessage = "Pick a GPU generation.", True
    ws.add_data_validation(generation_list)
    for i, g in enumerate(gpus):
        r = top + 1 + i
        cells: dict[str, Expr] = {}
        for j, col in enumerate(HARDWARE_COLUMNS, start=1):
            value = g.name if col == "name" else getattr(g, col)
            ws.cell(r, j, value)
            if col in GPU_RANGES:
                b.mark_input(ws, r, j, GPU_RANGES[col], f"hw_{col}", concat(ref(ws, r, 1), f".{col}"))
            elif col in ("name", "generation"):  # editable text: rename a GPU, pick its kernel-data generation
                b.mark_input(ws, r, j, None, f"hw_{col}")
                if col == "generation":
                    generation_list.add(ws.cell(r, j).coordinate)
            cells["gpu_name" if col == "name" else col] = ref(ws, r, j)
        ws.cell(r, len(HARDWARE_COLUMNS), f"[{i + 1}]").font = style.NOTE_FONT  # the text: Sources block below
        b.datasheet_gpu_cells[g.name] = cells
    bottom = top + len(gpus)
    b.define("hardware", span(ws, top, 1, bottom, len(HARDWARE_COLUMNS)))
    b.hardware_rows = (top + 1, bottom)
    b.define("gpu_names", span(ws, top + 1, 1, bottom, 1))
    cur.row = bottom + 2
    return gpus


def _article_hardware(b: Builder, ws: Any, cur: Cursor, catalog: Catalog, gpus: list) -> None:
    """The article's view of each GPU: tflops_share of the datasheet TFLOPS and its own figures where it departs."""
    b.input_block(ws, cur, "Article model view", [
        b.scenario_input(catalog.scenario, "tflops_share", "Share of TFLOPS modelled", "0..1")],
        "The article's GPU_perf: tflops_share of the datasheet TFLOPS, and its own figures where it departs from "
        "the datasheet (blue cells below). The article's tables and Decode > Your GPU read this block.")
    cur.row += 1
    atop = cur.row
    for j, col in enumerate(HARDWARE_COLUMNS[:-1], start=1):
        b._header_cell(ws, atop, j, col)
    for i, g in enumerate(gpus):
        r = atop + 1 + i
        base = b.datasheet_gpu_cells[g.name]
        overrides = catalog.article_hardware.get(g.name, {})
        cells = {"gpu_name": b.write(ws, r, 1, base["gpu_name"])}
        ws.cell(r, 2, "article view")
        cells["generation"] = b.write(ws, r, 3, base["generation"])
        for j, col in enumerate(HARDWARE_COLUMNS[3:-1], start=4):
            if col in overrides:
                ws.cell(r, j, overrides[col])
                b.mark_input(ws, r, j, GPU_RANGES[col], f"hw_{col}", concat(ref(ws, r, 1), f".{col} (article view)"))
                cells[col] = ref(ws, r, j)
                continue
            value = base[col] * Expr("tflops_share") if col in ("fp16_flops", "fp8_flops") else base[col]
            cells[col] = b.write(ws, r, j, value, fill=style.CALC_FILL)
        b.gpu_cells[g.name] = cells
    b.article_hardware_rows = (atop + 1, atop + len(gpus))
    b.define("article_hardware", span(ws, atop, 1, atop + len(gpus), len(HARDWARE_COLUMNS) - 1))
    cur.row = atop + len(gpus) + 2


def _network_variants(b: Builder, ws: Any, cur: Cursor, catalog: Catalog) -> None:
    """The article's network variants: a base GPU's row with another scale-out bandwidth."""
    b.heading(ws, cur, "Network variants (scale-out bandwidth per GPU)",
              "Each inherits every field from its base GPU's row except pcie_bw, an input on the Prefill sheet.")
    vtop = cur.row
    for j, col in enumerate(HARDWARE_COLUMNS[:-1], start=1):
        b._header_cell(ws, vtop, j, col)
    t = catalog.article_tables
    r = vtop
    for base in dict.fromkeys(list(t["prefill_network_gpus"]) + list(t["decode_network_gpus"])):
        for v in catalog.network_variants:
            r += 1
            name = f"{base}-{v.label}"
            base_cells = b.gpu_cells[base]
            cells = {"gpu_name": b.write(ws, r, 1, Expr(f'{base_cells["gpu_name"].text}&"-{v.label}"'))}
            ws.cell(r, 2, "variant")
            for j, col in enumerate(HARDWARE_COLUMNS[2:-1], start=3):
                value = Expr(v.input) if col == "pcie_bw" else base_cells[col]
                cells[col] = b.write(ws, r, j, value, fill=style.CALC_FILL)
            b.gpu_cells[name] = cells
    cur.row = r + 2


def _datasheet_table(b: Builder, ws: Any, cur: Cursor, catalog: Catalog) -> None:
    """The article's section-1.4 datasheet table, as printed (reference data)."""
    b.heading(ws, cur, "Article datasheet table (section 1.4, as printed)",
              "Reference data: the article's datasheet figures; the model uses the catalog rows above.")
    dtop = cur.row
    cols = ["name", "sm", "fp16_flops", "fp8_flops", "mem", "mem_bw", "nvlink_bw", "pcie_bw", "source"]
    for j, col in enumerate(cols, start=1):
        b._header_cell(ws, dtop, j, col)
    b.datasheet_cells = {}
    for i, (name, row) in enumerate(catalog.datasheets.items()):
        b.datasheet_cells[name] = {}
        for j, col in enumerate(cols, start=1):
            ws.cell(dtop + 1 + i, j, row[col])
            b.datasheet_cells[name][col] = ref(ws, dtop + 1 + i, j)
        wrapped_note(ws, dtop + 1 + i, len(cols), len(HARDWARE_COLUMNS), _hardware_width)
    cur.row = dtop + len(catalog.datasheets) + 2


def _catalog_sources(b: Builder, ws: Any, cur: Cursor, gpus: list) -> None:
    """Each catalog row's source, referenced [k] from its row."""
    b.heading(ws, cur, "Sources of the catalog rows",
              "Reference [k] is the catalog's row k. Edit a source with its row (a spare row's text is yours).")
    for i, g in enumerate(gpus):
        ws.cell(cur.row, 1, f"[{i + 1}]").font = style.LABEL_FONT  # row k of the catalog: its name is there
        ws.cell(cur.row, 1).alignment = style.TOP
        ws.cell(cur.row, 2, g.source)
        b.mark_input(ws, cur.row, 2, None, "hw_source")
        wrapped_note(ws, cur.row, 2, len(HARDWARE_COLUMNS), _hardware_width)
        cur.row += 1
    cur.row += 1


HARDWARE_WIDTHS = {"A": 11, "B": 12, "C": 9}  # name (variants: H20_3e-800G), kind, generation; NARROW_WIDTH after
SOURCE_REF_WIDTH = 7
NARROW_WIDTH = 8  # the catalog's numbers have at most 5 digits: the catalog prints one page across at 75 %+


def narrow_hardware(ws: Any) -> None:
    """The Hardware sheet's columns as narrow as its numbers, headers wrapped on two lines: the catalog prints one
    page across (its sources are a notes block below, not a wide column)."""
    for j in range(1, len(HARDWARE_COLUMNS) + 1):
        ws.column_dimensions[get_column_letter(j)].width = _hardware_width(j)
    for row in ws.iter_rows(max_col=len(HARDWARE_COLUMNS)):
        for c in row:
            if _is_header(c) and isinstance(c.value, str):
                upright = " " not in c.value and 1.25 * _text_pt(c) > column_pt(_hardware_width(c.column)) - 8
                # a field name too wide for its column stands upright, whole (wrapped, it would break mid-word),
                # and stays the name a 2-row GPU range uses; words wrap on two lines
                c.alignment = style.UPRIGHT if upright else style.HEADER_WRAP
                if upright:
                    c.font = style.UPRIGHT_FONT
                need = upright_pt(c) if upright else 30
                ws.row_dimensions[c.row].height = max(ws.row_dimensions[c.row].height or 0, need)


def _hardware_width(column: int) -> float:
    """Width of a Hardware column (1-based): the catalog's own, the source reference last, NARROW_WIDTH between."""
    if column == len(HARDWARE_COLUMNS):
        return SOURCE_REF_WIDTH
    return HARDWARE_WIDTHS.get(get_column_letter(column), NARROW_WIDTH)


def _prefill_inputs(b: Builder, ws: Any, cur: Cursor, s: Any) -> None:
    si = b.scenario_input
    b.input_block(ws, cur, "Scenario inputs (prefill; seq_len and discount_rate drive decode too)", [
        si(s, "seq_len", "Average prompt length (also decode KV length, as printed)", "tokens"),
        si(s, "kv_cache_rate", "Prompt tokens served from KV cache", "0..1"),
        si(s, "discount_rate", "Achieved fraction of every peak figure", "0..1"),
        si(s, "num_node", "Nodes per prefill unit", "nodes"),
        si(s, "gpu_per_node", "GPUs per node", "GPUs"),
        si(s, "dispatch_node", "Nodes a token is dispatched to", "nodes"),
        si(s, "pcie_bw_3_2t", "Network variant 3.2T: NIC per GPU", "GB/s"),
        si(s, "pcie_bw_1_6t", "Network variant 1.6T: NIC per GPU", "GB/s"),
        si(s, "pcie_bw_800g", "Network variant 800G: NIC per GPU", "GB/s"),
    ])


def _decode_inputs(b: Builder, ws: Any, cur: Cursor, catalog: Catalog) -> None:
    s = catalog.scenario
    si = b.scenario_input
    b.input_block(ws, cur, "Scenario inputs (decode)", [
        si(s, "decode_len", "Average output length", "tokens"),
        si(s, "tps_threshold", "SLA: per-user tokens/s must exceed", "tokens/s"),
        si(s, "group_gemm_discount", "Grouped-GEMM efficiency of experts", "0..1"),
        si(s, "mem_util_rate", "Usable share of HBM", "0..1"),
        si(s, "decode_comm_sm", "SMs reserved for communication in decode", "SMs"),
        si(s, "other_params_gb", "Weights outside MLA and experts", "GB"),
        si(s, "mla_params_m", "MLA parameters per layer, standard", "millions"),
        si(s, "mla_absorb_params_m", "MLA parameters per layer, absorbed", "millions"),
        si(s, "expert_params_m", "Parameters per expert", "millions"),
    ])
    b.heading(ws, cur, "Batch sizes per GPU", "Every decode table and chart uses these four.")
    for i, bs in enumerate(s.batch_sizes):
        name = f"batch_size_{i + 1}"
        b.list_inputs[("batch_sizes", i)] = b.named_input(ws, cur.row, name, bs, BATCH, f"Batch size {i + 1}",
                                                          "sequences per GPU")
        cur.row += 1
    b.heading(ws, cur, "EP strategies (section 3.1)", "EP degrees; redundant experts (whole experts per GPU) and "
              "experts per GPU follow from the model's expert count.")
    for j, h in enumerate(("Strategy", "EP degree"), start=1):
        b._header_cell(ws, cur.row, j, h)
    cur.row += 1
    for i, e in enumerate(catalog.ep_strategies):
        b.write(ws, cur.row, 1, Expr(f'"EP"&ep_{i + 1}'))  # follows the editable degree beside it
        ws.cell(cur.row, 1).font = style.LABEL_FONT
        ws.cell(cur.row, 2, e.ep)
        b.mark_input(ws, cur.row, 2, EP_SIZE, "ep", f"ep_{i + 1}")
        b.define(f"ep_{i + 1}", f"{ws.title}!$B${cur.row}")
        b.list_inputs[("ep", i)] = Expr(f"ep_{i + 1}")
        cur.row += 1


def _planner_chain(b: Builder, ws: Any, calc: Any, calc_cur: Cursor, catalog: Catalog) -> None:
    """Your GPU: pick any catalog row from a dropdown; its decode chain uses the same steps."""
    cur = Cursor(3)
    col0 = 6  # to the right of the inputs
    ws.cell(cur.row + 1, col0, "Your GPU (decode planner)").font = style.H2_FONT
    r = cur.row + 2
    ws.cell(r, col0, "GPU").font = style.LABEL_FONT
    b.gpu_choice(ws, r, col0 + 1, "planner_gpu")
    fields = b.gpu_lookup(Expr("planner_gpu"), b.article_hardware_rows)
    b.gpu_cells[PLANNER] = {"gpu_name": Expr("planner_gpu"), **{k: v for k, v in fields.items() if k in GPU_RANGES}}
    gscope = Scope("gpu_decode", gpu_decode_key(PLANNER), tuple(chain.DECODE_EFFECTIVE + chain.DECODE_GPU),
                   (MODEL_KEY,), gpu=PLANNER)
    b.calc_block(calc, calc_cur, "Your GPU (planner): effective figures", [gscope], lambda s: Expr("planner_gpu"))
    scopes = [Scope("decode", decode_key(PLANNER, i), tuple(chain.DECODE_BATCH), (MODEL_KEY, gscope.key),
                    (("batch_size", Input("batch_sizes", i)),), gpu=PLANNER)
              for i in range(len(catalog.scenario.batch_sizes))]
    b.calc_block(calc, calc_cur, "Your GPU (planner): decode per batch size", scopes, lambda s: Expr("planner_gpu"))
    heads = [("BatchSize", "batch_size", "0"), ("MLA TP", "mla_tp", "0"), ("TPOT(Overlap) ms", "tpot_overlap_ms",
                                                                            "0.000"),
             ("TPOT ms", "tpot_ms", "0.000"), ("TPS_O tokens/s/user", "tps_overlap", "0.00"),
             ("Total_O tokens/s/GPU", "total_overlap", "#,##0.0"), ("Meets SLA", "meets_sla", "General")]
    r += 2
    for j, (h, _, _) in enumerate(heads):
        b._header_cell(ws, r, col0 + j, h)
    for i, s in enumerate(scopes):
        for j, (_, q, fmt) in enumerate(heads):
            b.write(ws, r + 1 + i, col0 + j, b.gated(b.cells[s.key][q]), fmt)
    b.define("your_gpu", span(ws, r, col0, r + len(scopes), col0 + len(heads) - 1))
    for j in range(len(heads)):
        ws.column_dimensions[chr(64 + col0 + j)].width = 16


# ------------------------------------------------------------------------------------- charts, checks
def _charts(b: Builder, ws: dict, cur: dict, plan: Any, positions: dict) -> None:
    """The article's two charts with their data: decode TPOT by batch size (and the SLA line) on Decode, prefill
    time per component on Prefill."""
    _decode_chart(b, ws["Decode"], cur["Decode"], plan)
    if "prefill_detail_tp4" in positions:
        _prefill_chart(b, ws["Prefill"], cur["Prefill"], plan, positions["prefill_detail_tp4"])


def _decode_chart(b: Builder, dec: Any, c: Cursor, plan: Any) -> None:
    """Decode TPOT(Overlap) by batch size for the article's GPUs and Your GPU, with the SLA limit."""
    dec.row_breaks.append(Break(id=c.row))  # the chart and its data start a printed page
    b.heading(dec, c, "Chart data: TPOT(Overlap) by batch size, with the SLA limit",
              "TPS_O > tps_threshold means TPOT(Overlap) < 1000 / tps_threshold ms.")
    top = c.row
    gpus = list(plan.t["decode_gpus"]) + [PLANNER]  # the article's GPUs and Your GPU
    b._header_cell(dec, top, 1, "BatchSize")
    for j, g in enumerate(gpus):
        b._header_cell(dec, top, 2 + j, Expr('"Your GPU: "&planner_gpu') if g == PLANNER else b.gpu_cells[g]["gpu_name"])
    b._header_cell(dec, top, 2 + len(gpus), "SLA limit (ms)")
    n = plan.n_batches
    for i in range(n):
        b.write(dec, top + 1 + i, 1, b.list_inputs[("batch_sizes", i)], "0")
        for j, g in enumerate(gpus):
            b.write(dec, top + 1 + i, 2 + j, b.gated(b.cells[decode_key(g, i)]["tpot_overlap_ms"]), "0.000")
        b.write(dec, top + 1 + i, 2 + len(gpus), b.gated(1000 / Expr("tps_threshold")), "0.000")
    chart = ScatterChart()
    chart.title = "Decode TPOT(Overlap) vs batch size"
    chart.style = 13
    chart.x_axis.title = "Batch size per GPU (sequences)"
    chart.y_axis.title = "TPOT (ms)"
    xs = Reference(dec, min_col=1, min_row=top + 1, max_row=top + n)
    for j in range(len(gpus) + 1):
        ys = Reference(dec, min_col=2 + j, min_row=top, max_row=top + n)
        series = Series(ys, xs, title_from_data=True)
        series.marker.symbol = "circle" if j < len(gpus) else "none"
        colour = style.SERIES_COLOURS[j % len(style.SERIES_COLOURS)] if j < len(gpus) else "C00000"
        series.graphicalProperties.line.solidFill = colour
        series.marker.graphicalProperties.solidFill = colour
        if j == len(gpus):
            series.graphicalProperties.line.dashStyle = "dash"
        if j == len(gpus) - 1:  # Your GPU: a bigger, distinct marker, so it shows when it equals a catalog GPU
            series.marker.symbol, series.marker.size = "diamond", 10
            series.marker.graphicalProperties.solidFill = "FFFFFF"
            series.marker.graphicalProperties.line.solidFill = "000000"
            series.graphicalProperties.line.solidFill = "000000"
            series.graphicalProperties.line.dashStyle = "sysDot"
        chart.series.append(series)
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    style.axis_format(chart.x_axis, "0")
    style.axis_format(chart.y_axis, "#,##0")
    chart.height, chart.width = 10, 11  # within the columns of the chart data's page: no page break crosses it
    chart.legend.position = "b"
    c.row = top + n + 2
    place_chart(dec, chart, f"B{c.row}")  # below everything, clear of column A (it repeats on every printed page)
    c.row += 20


def _prefill_chart(b: Builder, pre: Any, pc: Cursor, plan: Any, detail: tuple[Any, int]) -> None:
    """Prefill time per component over all layers at the first deployment, from its detail table."""
    sheet, ptop = detail
    # chart data: each component's per-layer ms times its layer count (what it costs the whole model)
    pre.row_breaks.append(Break(id=pc.row))  # the chart and its data start a printed page
    b.heading(pre, pc, "Chart data: prefill time per component over all layers, first deployment (ms)")
    dtop = pc.row
    b._header_cell(pre, dtop, 1, "Component")
    gcols = len(plan.t["prefill_gpus"])
    for j in range(gcols):
        b._header_cell(pre, dtop, 2 + j, Expr(ref(sheet, ptop, 3 + j).text))
    for i in range(7):
        r = ptop + 1 + i
        b.write(pre, dtop + 1 + i, 1, Expr(ref(sheet, r, 1).text))
        for j in range(gcols):
            b.write(pre, dtop + 1 + i, 2 + j, flops.layers_total(ref(sheet, r, 3 + j), ref(sheet, r, 2)), "0.0")
    pc.row = dtop + 10
    bar = BarChart()
    bar.type = "bar"
    bar.title = "Prefill time per component, first deployment (ms)"
    bar.y_axis.title = "ms (per-layer time x layers)"
    data = Reference(pre, min_col=2, max_col=1 + gcols, min_row=dtop, max_row=dtop + 7)
    cats = Reference(pre, min_col=1, min_row=dtop + 1, max_row=dtop + 7)
    bar.add_data(data, titles_from_data=True)
    bar.set_categories(cats)
    for j, series in enumerate(bar.series):
        series.graphicalProperties.solidFill = style.SERIES_COLOURS[j % len(style.SERIES_COLOURS)]
    bar.x_axis.delete = False
    bar.y_axis.delete = False
    style.axis_format(bar.y_axis, "#,##0")
    bar.height, bar.width = 10, 14  # within columns B-F, the table's width: the sheet prints one page across
    bar.legend.position = "b"
    place_chart(pre, bar, f"B{pc.row}")  # below everything, clear of column A (it may repeat on printed pages)
    pc.row += 22


def _near(cell: Expr, value: float) -> str:
    """A cell still holds ``value``: compared within a relative 1e-9, since engines store a typed literal such as
    0.563 a last bit apart (Gnumeric), and FALSE rather than an error when it holds text."""
    tol = max(abs(value) * 1e-9, 1e-12)
    return f"IF(ISNUMBER({cell.text}),ABS({cell.text}-{value!r})<={tol!r},FALSE)"


def _article_inputs_flag(b: Builder, catalog: Catalog) -> Expr:
    """TRUE while every input the article's tables read still has the article's value (checks apply only then)."""
    model = catalog.model()
    terms = []
    for name, cell in b.inputs.items():
        if name.startswith("refined_"):  # the refined sheets' own model (compressed attention): not an article input
            continue
        value = getattr(catalog.scenario, name) if hasattr(catalog.scenario, name) else getattr(model, name)
        terms.append(_near(cell, value) if isinstance(value, (int, float)) else "TRUE")
    for (kind, i), cell in b.list_inputs.items():
        value = catalog.scenario.batch_sizes[i] if kind == "batch_sizes" else catalog.ep_strategies[i].ep
        terms.append(_near(cell, value))
    for g in dict.fromkeys(list(catalog.article_tables["prefill_gpus"]) + list(catalog.article_tables["decode_gpus"])):
        view = catalog.article_view(catalog.gpu(g))
        for field in ("sm", "comm_sm", "fp16_flops", "fp8_flops", "mem", "mem_bw", "nvlink_bw", "pcie_bw", "mla_tp_alt"):
            value = float(getattr(view, field))
            terms.append(f"ABS({b.gpu_cells[g][field].text}-{value!r})<={abs(value) * 1e-12!r}")
    return Expr("AND(" + ",".join(terms) + ")")


def _checks(b: Builder, ws: Any, cur: Cursor, positions: dict, tables: list, catalog: Catalog) -> None:
    import json

    from dsxl.data.catalog import read_template_text
    article = json.loads(read_template_text("article_values.json"))
    b.heading(ws, cur, "Article values vs this workbook",
              "PASS when the workbook value prints as the article's at its precision. The checks apply at the "
              "article's inputs; after an edit they say so instead. Text cells of section 1.4 are not listed.")
    summary_row = cur.row
    ws.cell(summary_row + 2, 1, "Inputs are the article's").font = style.LABEL_FONT
    flag = b.write(ws, summary_row + 2, 2, _article_inputs_flag(b, catalog))
    b.define("article_inputs", flag.text)
    cur.row += 4
    top = cur.row
    for j, h in enumerate(("Table", "Row", "Column", "Article", "Workbook", "Tolerance", "Result"), start=1):
        b._header_cell(ws, top, j, h)
    r = top
    decimals = {t.id: t.decimals for t in tables}
    for spec in article["tables"]:
        sheet, ttop = positions[spec["id"]]
        for i, row in enumerate(spec["rows"]):
            for j, v in enumerate(row["values"]):
                if isinstance(v, str):
                    continue
                r += 1
                ws.cell(r, 1, spec["id"])
                ws.cell(r, 2, row["label"])
                ws.cell(r, 3, spec["columns"][j])
                ws.cell(r, 4, v)
                b.write(ws, r, 5, ref(sheet, ttop + 1 + i, 2 + j))
                dec = cell_decimals(decimals[spec["id"]], row["label"], spec["columns"][j])
                tol = 0.5 * 10 ** -dec + 1e-9
                ws.cell(r, 6, tol).number_format = "0.0E+00"
                ws.cell(r, 7).value = (f'=IF(article_inputs,IF(ISNUMBER(E{r}),IF(ABS(E{r}-D{r})<=F{r},"PASS","FAIL"),'
                                       f'"FAIL"),"n/a")')
    ws.cell(summary_row, 1, "Cells checked").font = style.LABEL_FONT
    ws.cell(summary_row, 2, f"=COUNTA(G{top + 1}:G{r})")
    ws.cell(summary_row + 1, 1, "Passing").font = style.LABEL_FONT
    ws.cell(summary_row + 1, 2, f'=COUNTIF(G{top + 1}:G{r},"PASS")')
    ws.cell(summary_row, 3, f'=IF(article_inputs,IF(B{summary_row + 1}=B{summary_row},"ALL PASS","SOME DIFFER"),'
                            f'"inputs differ from the article\'s, so checks do not apply")').font = style.LABEL_FONT
    b.define("checks_status", f"Checks!$C${summary_row}")
    b.define("checks_passing", f"Checks!$B${summary_row + 1}")
    b.define("checks_total", f"Checks!$B${summary_row}")
    from openpyxl.formatting.rule import CellIsRule
    ws.conditional_formatting.add(f"G{top + 1}:G{r}", CellIsRule(operator="equal", formula=['"PASS"'],
                                                                 fill=style.PASS_FILL))
    ws.conditional_formatting.add(f"G{top + 1}:G{r}", CellIsRule(operator="equal", formula=['"FAIL"'],
                                                                 fill=style.FAIL_FILL))
    status = f"C{summary_row}"
    ws.conditional_formatting.add(status, CellIsRule(operator="equal", formula=['"ALL PASS"'], fill=style.PASS_FILL))
    ws.conditional_formatting.add(status, CellIsRule(operator="equal", formula=['"SOME DIFFER"'], fill=style.FAIL_FILL))
    for col, width in zip("ABCDEFG", (26, 22, 18, 12, 14, 10, 10)):
        ws.column_dimensions[col].width = width


def _start(b: Builder, ws: Any, catalog: Catalog, headline: dict[str, Expr], profile: dict | None = None) -> None:
    """A dashboard: live headline results first, then where the inputs are, then how the workbook works."""
    cur = Cursor(3)
    b.heading(ws, cur, "Headline results (live: they follow the Predict and Planner inputs)",
              "Refined model on datasheet hardware. Change the inputs on Predict and Planner; these cells follow.")
    for j, h in enumerate(("Result", "Value", "Unit", "Where to change it")):
        b._header_cell(ws, cur.row, 1 + j, h)
    cur.row += 1
    for label, value, unit, where, fmt in _headline_rows(headline):
        ws.cell(cur.row, 1, label).font = style.LABEL_FONT
        b.write(ws, cur.row, 2, value, fmt)
        ws.cell(cur.row, 2).font = style.LABEL_FONT
        ws.cell(cur.row, 3, unit).font = style.NOTE_FONT
        link = ws.cell(cur.row, 4, where)
        link.hyperlink, link.font = Hyperlink(ref=link.coordinate, location=f"'{where}'!A1"), style.LINK_FONT
        cur.row += 1
    b.define("start_headline", span(ws, 5, 1, cur.row - 1, 4))
    r = _start_notes(ws, cur.row + 1, profile)
    _legend_and_map(ws, r)


def _headline_rows(headline: dict[str, Expr]) -> list[tuple[str, Any, str, str, str]]:
    """Start's live results: (label, cell, unit, the sheet to change it on, format)."""
    rows = [("Your configuration: GPU", Expr("predict_gpu"), "", "Predict", "General"),
            ("Decode time per output token", headline["decode_tpot_ms"], "ms", "Predict", "0.00"),
            ("Decode tokens/s per user", headline["decode_tokens_per_s_per_user"], "tokens/s", "Predict", "0.0"),
            ("Decode tokens/s per GPU", headline["decode_tokens_per_s_per_gpu"], "tokens/s", "Predict", "#,##0"),
            ("Max sequences per GPU", headline["decode_max_batch"], "sequences", "Predict", "#,##0"),
            ("The batch fits in memory", headline["decode_fits"], "TRUE/FALSE", "Predict", style.BOOLEAN),
            ("Prefill input tokens/s per GPU", headline["prefill_tokens_per_s_per_gpu"], "tokens/s", "Predict", "#,##0"),
            ("Prefill time to first token", headline["prefill_ttft_ms"], "ms", "Predict", "#,##0"),
            ("Planner: GPU", Expr("plan_gpu"), "", "Planner", "General"),
            ("Plan meets the SLA", headline["plan_feasible"], "TRUE/FALSE", "Planner", style.BOOLEAN),
            ("Nodes for the load (prefill + decode)", headline["plan_total_nodes"], "nodes", "Planner", "#,##0"),
            ("Cost per day", headline["plan_cost_per_day"], "$", "Planner", "#,##0"),
            ("Cost per million output tokens", headline["plan_cost_per_m_output"], "$ per M tokens", "Planner",
             "0.000"),
            ("Plan's expected error (band)", headline["plan_band"], "±, relative", "Planner", "0%"),
            ("Time to first token at p99, queueing included", headline["plan_ttft_p99"], "ms", "Planner", "#,##0"),
            ("Plan costed at", headline["plan_costed_at"], "", "Planner", "General"),
            ("Facility power provisioned for the plan", headline["plan_power_mw"], "MW", "Planner", "0.000"),
            ("Output tokens/s per provisioned MW", headline["plan_tokens_per_s_per_mw"], "tokens/s per MW", "Planner",
             "#,##0"),
            ("Owned cost per million output tokens, all-in", headline["plan_own_cost_per_m_output_all_in"],
             "$ per M tokens", "Planner", "0.000")]
    rows += [(f"Refined error vs published {k.removeprefix('error_')}", v, "", "Validation", "+0.0%;-0.0%")
             for k, v in headline.items() if k.startswith("error_C")]
    rows.append(("Article numbers reproduced", Expr('checks_passing&" of "&checks_total'),
                 "numbers (of 891 cells)", "Checks", "General"))
    return rows


def _start_notes(ws: Any, r: int, profile: dict | None) -> int:
    """What the workbook is and how to use it (and whether it is calibrated), from row ``r``; returns the next row."""
    calibrated = [] if profile is None else [
        ("Calibrated", f"This workbook is calibrated to your measurements: {profile['input']['file']} "
                       f"({profile['input']['date']}, {profile['input']['rows']} rows, dsxl calibrate). Constants "
                       f"holds the fitted values ({', '.join(profile['fitted']) or 'none'}); Validation lists your "
                       "runs beside the published ones.")]
    lines = calibrated + [
        ("What this is", "A capacity planner's model of DeepSeek-style MoE serving (MLA + MoE: DeepSeek-V3/R1, V3.2, "
                         "Kimi-K2, GLM-5): a refined model checked against published deployments, a planner, and "
                         "the article below reproduced exactly. Every number is a live formula: edit an input and "
                         "every table, chart and check follows. No macros, no add-ins, no Python needed to open it."),
        ("How to use", "1. Predict: pick a GPU and a deployment. 2. Planner: enter the load, the SLA and prices. "
                       "3. Hardware and Constants hold the editable catalog and kernel efficiencies (blue on yellow). "
                       "4. Follow any number through the *_chain and Planner_grid sheets: one labelled cell per "
                       "intermediate. 5. The article's own tables are on Prefill, Decode and Summary."),
        ("Protection", "Sheets are protected without a password so formulas are not overwritten by accident; "
                       "input cells are unlocked. Review > Unprotect Sheet to change structure."),
        ("Names", "Inputs are workbook names (=seq_len, =predict_ep, =plan_tpot_ms ...); tables are tbl_<id>; the "
                  "GPU catalog is 'hardware'."),
        ("Source", ARTICLE),
        ("Built by", "dsxl (pip install dsxl; dsxl build). Regenerate rather than edit the structure."),
    ]
    for head, text in lines:
        ws.cell(r, 1, head).font = style.LABEL_FONT
        ws.cell(r, 1).alignment = style.TOP
        ws.cell(r, 2, text).alignment = style.WRAP
        ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=4)
        ws.row_dimensions[r].height = 48
        r += 1
    ws.column_dimensions["A"].width = 40
    ws.column_dimensions["B"].width = 24
    ws.column_dimensions["C"].width = 14
    ws.column_dimensions["D"].width = 50  # the merged notes wrap within A..D on one printed page
    return r


def _legend_and_map(ws: Any, r: int) -> None:
    """The colour legend and the sheet map, after row ``r``."""
    r += 1
    ws.cell(r, 1, "Colour legend").font = style.H2_FONT
    r += 1
    for text, font, fill in (("Input: edit me", style.INPUT_FONT, style.INPUT_FILL),
                             ("Calculated (formula, locked)", None, style.CALC_FILL),
                             ("Table header", style.HEADER_FONT, style.HEADER_FILL)):
        c = ws.cell(r, 1, text)
        if font:
            c.font = font
        c.fill = fill
        r += 1
    r += 1
    ws.cell(r, 1, "Sheet map").font = style.H2_FONT
    r += 1
    for name, desc in SHEETS[1:]:
        c = ws.cell(r, 1, name)
        c.hyperlink = Hyperlink(ref=c.coordinate, location=f"'{name}'!A1")  # inside the workbook, not a file
        c.font = style.LINK_FONT
        ws.cell(r, 2, desc)
        r += 1


def _udfs_sheet(ws: Any) -> None:
    from dsxl.udfs import UDF_CATALOG
    ws.cell(3, 1, "These functions exist only where the dsxl add-in runs (Windows Excel with xlwings; see README). "
                  "This sheet lists them as text; the workbook itself never calls them.").font = style.NOTE_FONT
    for j, h in enumerate(("Function", "Signature", "Example (type = and this)", "What it returns"), start=1):
        cell = ws.cell(5, j, h)
        cell.font, cell.fill = style.HEADER_FONT, style.HEADER_FILL
    for i, (name, signature, example, doc) in enumerate(UDF_CATALOG):
        ws.cell(6 + i, 1, name).font = style.LABEL_FONT
        # no leading = in the example: F2+Enter must not turn it into #NAME?
        for j, text in enumerate((name, signature, example.removeprefix("="), doc), start=1):
            ws.cell(6 + i, j, text).alignment = style.WRAP  # each row's cells read from the same top line
    for col, width in zip("ABCD", (21, 50, 30, 33)):  # one page across; the longest name on one line
        ws.column_dimensions[col].width = width


def _xlwings_conf(wb: Workbook) -> None:
    """The add-in's settings sheet, hidden: xlwings reads it by name (hidden sheets included); nobody prints it."""
    ws = wb.create_sheet("xlwings.conf")
    ws.sheet_state = "hidden"
    for r, (k, v) in enumerate((("UDF Modules", "dsxl.udfs"), ("Debug UDFs", "False")), start=1):
        ws.cell(r, 1, k)
        ws.cell(r, 2, v)


def _notes(b: Builder, ws: dict) -> None:
    """Comments on the cells a reviewer asks about first."""
    notes = {
        ("decode", "mla_tp"): "Article rule [as printed]: when TP1 is slower than TP4 use the GPU's mla_tp_alt "
                              "(8 for H20_3e, else 4), otherwise TP1.",
        ("gpu_decode", "allreduce_ms"): "As printed, the decode all-reduce moves seq_len x dim BF16 values, not "
                                        "batch x dim (one of the article's shortcuts; the refined model uses batch x dim).",
        ("maxb", "max_batch"): "Unrounded; the article prints it rounded to 0 decimals. MAX_BATCH() rounds down.",
        ("decode", "time_budget_ms"): "SparseMLA + SharedExpert - (Dispatch + Combine): negative means the all-to-all "
                                      "cannot be hidden behind compute.",
    }
    for (kind, quantity), text in notes.items():
        for key, cells in b.cells.items():
            if key[0] == kind and quantity in cells:
                sheet_name, coord = cells[quantity].text.split("!")
                ws[sheet_name.strip("'")][coord.replace("$", "")].comment = Comment(text, "dsxl")
                break


__all__ = ["build"]
