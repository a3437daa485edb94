"""The Hardware sheet's power and ownership catalog, and the Planner's power and ownership rows.

Each GPU's row carries what :mod:`dsxl.planner.ownership` reads: board and idle power, its system, the capital per
GPU, the system's PUE and the GPU's share of the system's IT power with its GPUs idle, half busy and at full board
power (computed at build from ``templates/systems.json``, the InferenceX power model). The Planner's rows are the
same functions of :mod:`dsxl.physics.power` as formulas over those cells and the chosen candidates' steps.
"""

from __future__ import annotations

from typing import Any

from openpyxl.utils import get_column_letter

from dsxl.core.expr import Expr, where
from dsxl.data.power import load_power, load_systems, system_of, systems_source
from dsxl.physics import power, sizing
from dsxl.planner import economics
from dsxl.refined.power import system_watts_per_gpu
from dsxl.workbook import style
from dsxl.workbook.builder import Builder, Cursor, span
from dsxl.workbook.printing import wrapped_note

# column key, header, unit
POWER_COLUMNS = (("gpu", "GPU", ""), ("system", "system", ""), ("kind", "kind", "node/rack"),
                 ("system_gpus", "GPUs per system", "GPUs"), ("node_gpus", "GPUs per tray", "GPUs"),
                 ("tdp_w", "board TDP", "W"), ("idle_w", "board idle", "W"),
                 ("capital", "capital per GPU", "$"), ("pue", "PUE", "x"), ("it_idle", "IT, GPUs idle", "W per GPU"),
                 ("it_half", "IT, half busy", "W per GPU"), ("it_full", "IT, full power", "W per GPU"))


def power_catalog(b: Builder, ws: Any, cur: Cursor, note_columns: int, width: Any) -> None:
    """The power catalog block (named ranges ``power_gpu`` ... ``power_it_full``); its source notes wrap over
    ``note_columns`` columns of the sheet's ``width(column)``."""
    b.heading(ws, cur, "Power and ownership catalog (templates/power.csv, templates/systems.json)",
              "Board power (TDP) from datasheets, idle power and capital per GPU (assumptions, marked in the sources "
              "below), the system each GPU is bought in and its PUE; IT: the GPU's share of its system's IT power "
              "(host, fans, power conversion, scale-out network active) with its GPUs idle, half busy and at full "
              "board power, from the InferenceX power model at build time (edit the templates and rebuild to change "
              "them). The Planner's power and owned cost read these rows.")
    top = cur.row
    for j, (_, head, unit) in enumerate(POWER_COLUMNS, start=1):
        b._header_cell(ws, top, j, head)
        ws.cell(top - 1, j, unit).font = style.NOTE_FONT
    rows = list(load_power().values())
    systems = load_systems()
    for i, row in enumerate(rows, start=1):
        idle, half, full = system_watts_per_gpu(row.gpu, True)
        bought = system_of(row.gpu)
        values = (row.gpu, row.system, bought["kind"], bought["gpus"], bought["tray_gpus"], row.tdp_w, row.idle_w,
                  row.capital_per_gpu_usd, systems[row.system]["pue"], idle, half, full)
        for j, value in enumerate(values, start=1):
            ws.cell(top + i, j, value).number_format = "General" if j <= 5 else "#,##0.0"
    bottom = top + len(rows)
    for j, (key, _, _) in enumerate(POWER_COLUMNS, start=1):
        letter = get_column_letter(j)
        b.define(f"power_{key}", f"{ws.title}!${letter}${top + 1}:${letter}${bottom}")
    b.define("power_catalog", span(ws, top, 1, bottom, len(POWER_COLUMNS)))
    cur.row = bottom + 2
    notes = [f"{r.gpu}: board power: {r.tdp_source}; idle: {r.idle_source}; capital: {r.capital_source}" for r in rows]
    notes += [f"{key}: {s['label']}; {s['source']}" for key, s in systems.items()] + [f"Systems: {systems_source()}"]
    for text in notes:
        ws.cell(cur.row, 1, text).font = style.NOTE_FONT
        wrapped_note(ws, cur.row, 1, note_columns, width)
        cur.row += 1
    cur.row += 1


FRONTIER_POINTS = 15  # points per GPU on the chart
_COLOURS = ("1F77B4", "FF7F0E", "2CA02C", "D62728", "9467BD", "8C564B", "E377C2", "7F7F7F", "BCBD22", "17BECF")
_LOOKS = [(symbol, colour) for symbol in ("circle", "triangle", "square") for colour in _COLOURS]  # one per GPU


def power_chart(b: Builder, ws: Any, cur: Cursor, data_ws: Any, data_cur: Cursor, model: str) -> None:
    """Output tokens/s per provisioned MW against tokens/s per user for every catalog GPU: each GPU's decode
    frontier (the planner's search at its default workload) over its facility watts provisioned per GPU. Values
    computed at build (the chart is a reference view; the Planner's rows are the live figures)."""
    from openpyxl.chart import Reference, ScatterChart, Series

    from dsxl.inputs.plan_request import PlanInputs
    from dsxl.planner.ownership import provisioned_w_per_gpu
    from dsxl.planner.plan import search_decode
    from dsxl.workbook.printing import place_chart

    inp = PlanInputs(model=model)
    note = (f"Each GPU's best decode tokens/s per GPU at each speed per user (dsxl plan's search: {model}, "
            f"{inp.input_len:,.0f} in / {inp.output_len:,.0f} out tokens), over its facility watts provisioned per "
            "GPU (full board power, its system's share, x PUE). Computed at build")
    b.heading(ws, cur, "Output tokens/s per MW against tokens/s per user (decode frontier, every catalog GPU)",
              note + f"; the data is on {data_ws.title} (power_frontier).")
    b.heading(data_ws, data_cur, "Chart data: output tokens/s per MW against tokens/s per user (Hardware's chart)",
              note + ".")
    top = r = data_cur.row
    for j, head in enumerate(("gpu", "tokens/s per user", "output tokens/s per MW"), start=1):
        b._header_cell(data_ws, top, j, head)
    series = []
    for gpu in load_power():
        frontier = search_decode(gpu, inp).get("pareto", [])
        if not frontier:
            continue
        per_mw = 1e6 / provisioned_w_per_gpu(gpu, inp, True)
        step = max(1, -(-len(frontier) // FRONTIER_POINTS))
        first = r + 1
        for point in frontier[::step]:
            r += 1
            data_ws.cell(r, 1, gpu)
            data_ws.cell(r, 2, round(point["tokens_per_s_per_user"], 3))
            data_ws.cell(r, 3, round(point["tokens_per_s_per_gpu"] * per_mw, 1)).number_format = "#,##0"
        series.append((gpu, first, r))
    b.define("power_frontier", span(data_ws, top, 1, r, 3))
    data_cur.row = r + 2
    top = cur.row
    chart = ScatterChart()
    chart.title = "Output tokens/s per MW vs tokens/s per user"
    chart.x_axis.title, chart.y_axis.title = "tokens/s per user", "output tokens/s per provisioned MW"
    chart.width, chart.height = 24, 12
    for (gpu, first, last), (symbol, colour) in zip(series, _LOOKS):
        chart.series.append(style.points(Series(Reference(data_ws, min_col=3, min_row=first, max_row=last),
                                                Reference(data_ws, min_col=2, min_row=first, max_row=last),
                                                title=gpu), symbol, 6, colour, colour))
    style.axis_format(chart.x_axis, "#,##0")
    style.axis_format(chart.y_axis, "#,##0")
    place_chart(ws, chart, f"A{top}")
    cur.row = top + 26


def _lookup(gpu: Expr, key: str) -> Expr:
    return Expr(f"INDEX(power_{key},MATCH({gpu.text},power_gpu,0))")


def is_rack(gpu: Expr) -> Expr:
    """The GPU is bought in NVL72 racks (False for a GPU without a power row: it counts in nodes)."""
    return Expr(f'IF(ISNUMBER(MATCH({gpu.text},power_gpu,0)),{_lookup(gpu, "kind").text}="rack",FALSE)')


def node_gpus(gpu: Expr) -> Expr:
    """GPUs per node as the GPU is bought: an NVL72 rack's compute tray, else the Planner's GPUs per node."""
    return where(is_rack(gpu), _lookup(gpu, "node_gpus"), Expr("plan_gpu_per_node"))


def power_rows(gpu: Expr, d_gpus: Any, p_gpus: Any, d_busy: Any, p_busy: Any, served: Any,
               rent_per_hour: Any, total_nodes: Any) -> list[tuple[str, str, Any, str, str]]:
    """The Planner's power and ownership rows (key, label, formula, unit, format) for a fleet of ``d_gpus`` decode
    and ``p_gpus`` prefill GPUs whose chosen configurations keep them ``d_busy`` / ``p_busy`` of each step, bought
    in ``total_nodes`` nodes or in whole racks (the spare GPUs idle, provisioned and owned)."""
    idle, tdp = _lookup(gpu, "idle_w"), _lookup(gpu, "tdp_w")
    pue = where(Expr("COUNTA(plan_pue)=0"), _lookup(gpu, "pue"), Expr("plan_pue"))
    capital = where(Expr("COUNTA(plan_capital_per_gpu)=0"), _lookup(gpu, "capital"), Expr("plan_capital_per_gpu"))
    it = [_lookup(gpu, k) for k in ("it_idle", "it_half", "it_full")]
    used = d_gpus + p_gpus
    rack = _lookup(gpu, "system_gpus")
    gpus = where(is_rack(gpu), sizing.ceil(used / rack) * rack, total_nodes * Expr("plan_gpu_per_node"))  # bought
    at_load_kw = (d_gpus * power.it_watts_at(d_busy, *it) + p_gpus * power.it_watts_at(p_busy, *it)
                  + (gpus - used) * it[0]) / 1e3  # spare GPUs idle
    facility_kw = power.facility_watts(at_load_kw, pue)
    provisioned_it_kw = gpus * it[2] / 1e3
    provisioned_mw = power.facility_watts(provisioned_it_kw, pue) / 1e3
    recovery = power.capital_recovery_factor(Expr("plan_cost_of_capital"), Expr("plan_amortization_years"))
    owned = power.owned_cost_per_hour(gpus, capital, recovery, facility_kw, Expr("plan_electricity_per_kwh"),
                                      provisioned_it_kw, Expr("plan_hosting_per_kw_month"))
    return [
        ("gpus_bought", "GPUs bought (whole nodes, or whole NVL72 racks)", gpus, "GPUs", "#,##0"),
        ("decode_watts", "Decode board power per GPU at load", power.gpu_watts(idle, tdp, d_busy), "W", "#,##0"),
        ("prefill_watts", "Prefill board power per GPU at load", power.gpu_watts(idle, tdp, p_busy), "W", "#,##0"),
        ("power_mw", "Facility power provisioned (GPUs at full board power, x PUE)", provisioned_mw, "MW", "0.000"),
        ("power_mw_at_load", "Facility power drawn at load", facility_kw / 1e3, "MW", "0.000"),
        ("tokens_per_s_per_mw", "Output tokens/s per provisioned MW", served / provisioned_mw, "tokens/s per MW",
         "#,##0"),
        ("own_capital_per_hour", "Owned: capital repaid per hour", owned["capital"], "$", "#,##0"),
        ("own_power_per_hour", "Owned: power per hour", owned["power"], "$", "#,##0"),
        ("own_hosting_per_hour", "Owned: hosting per hour", owned["hosting"], "$", "#,##0"),
        ("own_cost_per_hour", "Owned: cost per hour", owned["total"], "$", "#,##0"),
        ("own_cost_per_m_output_all_in", "Owned: cost per million output tokens, all-in",
         economics.per_million(owned["total"], served), "$", "0.000"),
        ("rent_cost_per_m_output_all_in", "Rented: cost per million output tokens, all-in",
         economics.per_million(rent_per_hour, served), "$", "0.000"),
    ]


__all__ = ["POWER_COLUMNS", "power_catalog", "power_chart", "power_rows"]
