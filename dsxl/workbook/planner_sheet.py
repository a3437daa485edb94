"""The Planner sheet: the SLA search over a candidate grid in portable formulas, sizing, cost, DeepSeek day-6.

Every candidate is one row of the refined chain on Planner_grid (the same steps Python runs). A score column
holds the candidate's tokens/s per GPU where it qualifies, else 0; MAX picks the best and INDEX/MATCH reads its
configuration. ``WORKBOOK_GRID`` is the grid; ``dsxl.plan(**WORKBOOK_GRID, ...)`` searches the same one.
"""

from __future__ import annotations

import json
from typing import Any

from openpyxl.chart import Reference, ScatterChart, Series
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.datavalidation import DataValidation

from dsxl.data.catalog import Catalog, generations, load_catalog, load_refined, read_template_text
from dsxl.core.expr import Expr, both, either, lit, where
from dsxl.chains.scope import Key, Scope
from dsxl.physics import attention, memory, moe, power, queueing, sizing
from dsxl.planner import economics
from dsxl.chains import article as chain
from dsxl.chains.step import Step
from dsxl.planner.plan import PlanInputs, RANGES
from dsxl.inputs.plan_request import BELOW_MEAN
from dsxl.data.catalog import default_engine
from dsxl.inputs.request import MTP_ACCEPT_RULE, fused_moe_env, option_env
from dsxl.workbook import style
from dsxl.workbook.power_block import node_gpus, power_rows
from dsxl.workbook.builder import Builder, Cursor, ref, span
from dsxl.workbook.input_checks import REFINED_OK, SHARED_PROBLEMS, input_problems, show_problems
from dsxl.workbook.printing import place_chart
from dsxl.refined.accuracy import parallel_shape, rules
from dsxl.refined.models import cache_bytes
from dsxl.workbook.refined_sheets import _gpu_env, band_cells, by_generation, model_cells, widened_band_cell
from dsxl.core.rules import formula_ok

WORKBOOK_GRID = {"ep_sizes": (8, 16, 32, 64, 128, 256), "attn_tp_sizes": (1,),
                 "batch_sizes": (1, 8, 16, 32, 64, 128, 192, 256),
                 "forward_sizes": (4096, 8192, 16384, 32768), "tbo_options": (True,)}
DECODE_VARIES = {"ep", "batch", "mtp_draft", "mtp_accept", "tbo"}
PREFILL_VARIES = {"ep", "tokens_per_gpu", "tbo"}
ENV_KEY = Key("plan_env")
S = chain.Step

def _candidate(head: list, steps: list, ok: list[Step], latency: str, load: str, other_ep: str) -> list:
    """A candidate's chain: its own redundant experts, the refined chain, then whether it qualifies, its score
    (tokens/s per GPU if it qualifies, else 0), the GPUs a pool of it needs for the load (and at peak) with the
    least-cost key, and its latency if it fits (for the best achievable)."""
    return [S("redundant_experts", moe.even_redundant_experts, "Redundant experts (whole experts per GPU)", "experts"),
            *head, *steps, *ok,
            S("score", sizing.best_if, "Score: tokens/s per GPU if it qualifies", "tokens/s",
              {"ok": "qualifies", "value": "tokens_per_s_per_gpu"}),
            S("ep_if_qualifies", sizing.worst_unless, "EP if it qualifies (for the smallest)", "GPUs",
              {"ok": "qualifies", "value": "ep"}),
            S("budget_score", sizing.budget_score, "Score within the budget beside the other pool's smallest instance",
              "tokens/s", {"budget_gpus": "plan_budget_gpus", "other_ep": other_ep}),
            S("pool_gpus", sizing.pool_gpus, "GPUs for the load in instances of this candidate", "GPUs",
              {"ok": "qualifies", "load": load}),
            S("size_key", sizing.size_key, "Least-cost key (GPUs, ties to the faster)", "GPUs"),
            S("pool_gpus_peak", sizing.pool_gpus, "GPUs at peak load", "GPUs",
              {"ok": "qualifies", "load": load + "_peak"}),
            S(f"{latency}_if_fits", sizing.worst_unless, f"{latency} if it fits (for the best achievable)", "ms",
              {"ok": "fits", "value": latency}),
            S("tps_if_fits", sizing.best_if, "Tokens/s per GPU if it fits (chart)", "tokens/s",
              {"ok": "fits", "value": "tokens_per_s_per_gpu"})]


def _candidates(chains: tuple[list, list]) -> tuple[list, list]:
    """The decode and prefill candidate chains around a model's refined chains."""
    decode = _candidate([S("kv_len", attention.mean_decode_context, "Mean context", "tokens")], chains[0],
                        [S("qualifies", sizing.decode_ok, "Fits and meets the TPOT SLA", "",
                           {"tpot_limit_ms": "plan_tpot_ms"})], "tpot_ms", "plan_out_load", "plan_min_prefill_ep")
    prefill = _candidate([], chains[1], [
        S("unqueued_ttft_ms", queueing.unqueued_ttft_ms, "TTFT before any queue, as the mean target sees it (a p99 "
          "target's share of the forward in progress included)", "ms",
          {"forward_ms": "step_ms", "mean_limit_ms": "plan_ttft_ms", "p90_limit_ms": None, "p90_set": None,
           "p99_limit_ms": "plan_ttft_p99_ms", "p99_set": "plan_p99_set"}),
        S("qualifies", sizing.prefill_ok, "Fits and meets the TTFT SLA", "",
          {"ttft_ms": "unqueued_ttft_ms", "ttft_limit_ms": "plan_ttft_ms"})], "ttft_ms", "plan_in_load",
        "plan_min_decode_ep")
    return decode, prefill

# The sheet's inputs (PlanInputs fields): label and unit. Defaults are PlanInputs' own, except a load of 1M output
# tokens/s and DeepSeek's published prices so revenue and margin show from the start.
INPUTS = [
    ("input_len", "Input tokens per request (cache hits included)", "tokens"),
    ("output_len", "Output tokens per request", "tokens"),
    ("cache_hit", "Share of input tokens hitting the prefix cache", "0..1"),
    ("output_tokens_per_s", "Load: output tokens per second (average)", "tokens/s"),
    ("tpot_ms", "SLA: max time per output token", "ms"),
    ("ttft_ms", "SLA: max time to first token", "ms"),
    ("ttft_p99_ms", "SLA: p99 time to first token, queueing included (blank: none)", "ms"),
    ("arrival_cv", "Arrivals: spread of request gaps (coefficient of variation; 1 = Poisson)", "x"),
    ("price_gpu_hour", "Price per GPU-hour (blank: the catalog's)", "$"),
    ("gpu_per_node", "GPUs per node", "GPUs"),
    ("mtp_draft", "MTP draft tokens when on (searched on and off)", "tokens"),
    ("mtp_accept", "Tokens per step with MTP", "tokens"),
    ("peak_to_average", "Peak load over average", "x"),
    ("price_input_hit", "Price: cache-hit input", "$ per M tokens"),
    ("price_input_miss", "Price: cache-miss input", "$ per M tokens"),
    ("price_output", "Price: output", "$ per M tokens"),
]
# owning instead of renting: their own block, below the chart
OWN_INPUTS = [
    ("capital_per_gpu", "Own: capital per GPU, all-in (blank: the Hardware power catalog's)", "$"),
    ("amortization_years", "Own: years the capital is repaid over", "years"),
    ("cost_of_capital", "Own: cost of capital", "per year"),
    ("electricity_per_kwh", "Own: electricity at the facility meter", "$ per kWh"),
    ("pue", "Own: PUE, facility over IT power (blank: the system's)", "x"),
    ("hosting_per_kw_month", "Own: hosting per provisioned IT kW", "$ per kW-month"),
]
BLANK_ALLOWED = ("price_gpu_hour", "ttft_p99_ms", "capital_per_gpu", "pue")
SHEET_DEFAULTS = {"output_tokens_per_s": 1_000_000, "ttft_ms": 3000.0, "price_input_hit": 0.14, "price_input_miss": 0.55,
                  "price_output": 2.19}


def planner_inputs_defaults(model: str | None = None) -> PlanInputs:
    """The sheet's default inputs as a PlanInputs (tests compare the sheet with dsxl.plan on these); a model with
    list prices in its preset uses them for revenue."""
    defaults = dict(SHEET_DEFAULTS)
    prices = load_catalog().model_prices.get(model or "", {})
    if prices:
        defaults.update(price_input_hit=prices["cache_hit"], price_input_miss=prices["cache_miss"],
                        price_output=prices["output"])
    return PlanInputs(model=model, mix_sizes=False, **defaults, **WORKBOOK_GRID)


def planner_sheet(b: Builder, ws: Any, grid_ws: Any, grid_cur: Cursor, rows: dict[str, tuple[str, str]],
                  catalog: Catalog, model_env: dict[str, Expr], chains: tuple[list, list],
                  model_name: str) -> dict[str, Expr]:
    """The Planner sheet and its candidate grid; returns the result cells by key."""
    cur = _planner_inputs(b, ws, model_name)
    gpu_env, loads = _planner_env(b, grid_ws, grid_cur, rows, catalog, model_env, model_name)
    problems = _plan_problems(b, grid_ws, grid_cur)
    decode, prefill, column, pick = _candidate_grid(b, grid_ws, grid_cur, chains)
    col = 6
    cells = _plan_results(b, ws, grid_ws, grid_cur, catalog, model_name, model_env, gpu_env, loads, problems,
                          (decode, prefill, column, pick))
    for j, width in enumerate((62, 16, 22)):  # labels on one line: the block prints on two pages
        ws.column_dimensions[get_column_letter(col + j)].width = width
    ws.column_dimensions["A"].width = 48
    ws.column_dimensions["C"].width = 26
    _chart(b, ws, grid_ws, grid_cur, decode, column, cur.row + 2, (cells["decode_user"], cells["decode_tps"]))
    own = Cursor(cur.row + 2 + CHART_ROWS)
    b.input_header(ws, own, "Owning the fleet instead of renting it", "Read by the plan's power and owned-cost "
                   "rows (right), as dsxl plan --ownership own reads them.")
    _input_rows(b, ws, own, OWN_INPUTS, planner_inputs_defaults(model_name))
    return cells


CHART_ROWS = 23  # the chart (11 cm, about 21 rows) and a gap


def _input_rows(b: Builder, ws: Any, cur: Cursor, inputs: list[tuple[str, str, str]], defaults: PlanInputs) -> None:
    """One blue input row per (name, label, unit): its default, its name and unit, checked by its declared range."""
    for name, label, unit in inputs:
        default = getattr(defaults, name)
        ws.cell(cur.row, 1, label).font = style.LABEL_FONT
        ws.cell(cur.row, 2, default)
        ws.cell(cur.row, 3, f"plan_{name}").font = style.NOTE_FONT
        ws.cell(cur.row, 4, unit).font = style.NOTE_FONT
        b.mark_input(ws, cur.row, 2, None if default is None else RANGES[name], f"plan_{name}")
        b.define(f"plan_{name}", f"{ws.title}!$B${cur.row}")
        cur.row += 1


def _generation_constant(gpu_env: dict[str, Any], name: str) -> Any:
    """A refined constant on the chosen GPU's generation, as dsxl plan reads it: its cell on the Constants sheet
    (in ``gpu_env``), or for a layout constant the sheet does not list, the catalog's value per generation."""
    if name in gpu_env:
        return gpu_env[name]
    return by_generation(gpu_env["generation"], {gen: load_refined()[name].values[gen] for gen in generations()})


GROWTH_STEPS = 16  # extra prefill instances the sheet tries for the queue (dsxl plan's search has no bound)


def _grown_prefill(b: Builder, calc: Any, cur: Cursor, env: dict[str, Any], ep: Expr, tps: Expr,
                   tokens_per_forward: Expr, in_load: Expr) -> dict[str, Expr]:
    """The prefill pool as dsxl plan grows it (:func:`dsxl.planner.plan._queue_sized`): the instances the input
    load needs, then the fewest extra instances (0 to GROWTH_STEPS - 1) whose TTFT under random arrivals meets the
    mean and p99 targets. ``extra`` is GROWTH_STEPS when none does within the table (the sheet says so)."""
    sized = Expr(f"AND(ISNUMBER({tps.text}),ISNUMBER({ep.text}),ISNUMBER({lit(in_load).text}))")
    slots, service, forward = queueing.prefill_slots(ep, 1, tokens_per_forward, tps, Expr("plan_input_len"),
                                                     Expr("plan_cache_hit"))
    token_bytes, window = cache_bytes(env["model"].__getitem__, env["constant"], env["compressed"])
    base = b.materialize(calc, cur, "Prefill pool grown for the queue: the chosen configuration at the load", {
        k: where(sized, v, 1) for k, v in {
            "throughput_instances": sizing.instances(in_load, tps, ep), "slots_per_instance": slots,
            "service_ms": service, "forward_ms": forward, "arrivals_per_s": in_load / Expr("plan_input_len"),
            "kv_transfer_ms": memory.prompt_kv_transfer_ms(Expr("plan_input_len"), token_bytes, window,
                                                           env["nic"])}.items()})
    offered = base["arrivals_per_s"] * base["service_ms"] / 1000
    servers = {k: (base["throughput_instances"] + k) * base["slots_per_instance"] for k in range(GROWTH_STEPS)}
    slots_k = b.materialize(calc, cur, "Prefill pool grown: prompt slots and the probability of waiting, per extra "
                            "instance (0, 1, 2, ...)", {
                                **{f"slots_{k}": v for k, v in servers.items()},
                                **{f"wait_probability_{k}": queueing.erlang_c(v, offered) for k, v in servers.items()}})
    ttft = {k: queueing.ttft_ms(slots_k[f"slots_{k}"], base["arrivals_per_s"], base["service_ms"],
                                base["kv_transfer_ms"], Expr("plan_arrival_cv"), base["forward_ms"],
                                env["constant"]("ttft_queue_factor"), probability=slots_k[f"wait_probability_{k}"])
            for k in range(GROWTH_STEPS)}
    meets = {f"meets_{k}": both(both(t["utilization"] < 1, t["mean"] <= Expr("plan_ttft_ms")),
                                either(Expr("NOT(ISNUMBER(plan_ttft_p99_ms))"), t["p99"] <= Expr("plan_ttft_p99_ms")))
             for k, t in ttft.items()}
    met = b.materialize(calc, cur, "Prefill pool grown: TTFT targets met, per extra instance", meets)
    first, last = met["meets_0"].text, met[f"meets_{GROWTH_STEPS - 1}"].text
    extra = Expr(f"IFERROR(MATCH(TRUE,{first}:{last.split('!')[1]},0)-1,{GROWTH_STEPS})")
    return b.materialize(calc, cur, "Prefill pool grown: the instances dsxl plan sizes", {
        "extra_instances": extra, "instances": base["throughput_instances"] + extra})


def _queue(b: Builder, calc: Any, cur: Cursor, env: dict[str, Any], c: dict[str, Expr], tokens_per_forward: Expr,
           in_load: Expr) -> dict[str, Expr]:
    """TTFT percentiles of the prefill pool as the sheet sizes it, as :func:`dsxl.planner.plan.prefill_queue`
    computes them: the instances' prompt slots, arrivals at the average load, Erlang C with Allen-Cunneen, the
    forward in progress and the KV transfer."""
    slots, service, forward = queueing.prefill_slots(c["prefill_ep"], 1, tokens_per_forward, c["prefill_tps"],
                                                     Expr("plan_input_len"), Expr("plan_cache_hit"))
    token_bytes, window = cache_bytes(env["model"].__getitem__, env["constant"], env["compressed"])
    sized = Expr(f"ISNUMBER({c['prefill_instances'].text})")  # else no plan: harmless numbers, never shown
    pool = b.materialize(calc, cur, "Prefill queue of the chosen pool (TTFT under random arrivals)", {
        k: where(sized, v, 1) for k, v in {
            "prompt_slots": c["prefill_instances"] * slots, "prompt_service_ms": service, "forward_ms": forward,
            "arrivals_per_s": in_load / Expr("plan_input_len"),
            "kv_transfer_ms": memory.prompt_kv_transfer_ms(Expr("plan_input_len"), token_bytes, window,
                                                           env["nic"])}.items()})
    wait = b.materialize(calc, cur, "Prefill queue: probability of waiting (Erlang C)", {
        "wait_probability": queueing.erlang_c(pool["prompt_slots"],
                                              pool["arrivals_per_s"] * pool["prompt_service_ms"] / 1000)})
    t = queueing.ttft_ms(pool["prompt_slots"], pool["arrivals_per_s"], pool["prompt_service_ms"],
                         pool["kv_transfer_ms"], Expr("plan_arrival_cv"), pool["forward_ms"],
                         env["constant"]("ttft_queue_factor"), probability=wait["wait_probability"])
    return b.materialize(calc, cur, "Prefill queue: TTFT, queueing included (ms)", {
        "utilization": t["utilization"], "mean": t["mean"], "p50": t["p50"], "p90": t["p90"], "p99": t["p99"]})


def _band(b: Builder, calc: Any, cur: Cursor, generation: Expr, moe_dtype: str, pick: Any,
          decode: list[Scope], prefill: list[Scope]) -> Expr:
    """The chosen configuration's band, as :func:`dsxl.planner.plan.plan_accuracy` gives it: decode at the mean
    decode context and the chosen batch, prefill at the prompt length; the plan carries the wider."""
    batch = pick(decode, "batch")
    regime = where(batch <= rules()["min_latency_batch"]["value"], "min-latency", "decode")
    context = attention.mean_decode_context(Expr("plan_input_len"), Expr("plan_output_len"))
    d, p = band_cells(b, calc, cur, "the Planner's choice", generation, default_engine(), moe_dtype, [
        ("decode", regime, context, batch, pick(decode, "tbo"), pick(decode, "mtp_draft"),
         parallel_shape(pick(decode, "ep"), 1, 1)),  # the sheet's grid runs attention and MoE TP 1
        ("prefill", "prefill", Expr("plan_input_len"), None, pick(prefill, "tbo"), 0,
         parallel_shape(pick(prefill, "ep"), 1, 1))])
    d, p = (widened_band_cell(b, calc, cur, "the Planner's choice", phase, _chosen(b, scopes, pick), generation,
                              default_engine(), band) for phase, scopes, band in (("decode", decode, d),
                                                                                   ("prefill", prefill, p)))
    return Expr(f"MAX({d.text},{p.text})")


def _chosen(b: Builder, scopes: list[Scope], pick: Any) -> dict[str, Any]:
    """A pool's chosen candidate as its chain's quantities: what varies by candidate picked at the chosen row, the
    rest as every candidate sees it (the model's inputs, the shared environment)."""
    first = b.cells[scopes[0].key]
    shared = {**b.inputs, **{k: v for parent in scopes[0].parents for k, v in b.cells[parent].items()}}
    return {**shared, **{k: pick(scopes, k) for k in first}}


def _plan_problems(b: Builder, calc: Any, cur: Cursor) -> Expr:
    """The Planner inputs' problems from the declared rules (:data:`dsxl.core.rules.PLAN_RANGES`): the GPU, each
    input's range (the price may be blank: the catalog's), the mode and budget, and MTP's acceptance."""
    singles = [(REFINED_OK, SHARED_PROBLEMS),
               (Expr("ISNUMBER(MATCH(plan_gpu,gpu_names,0))"), "the GPU must be a name in the Hardware catalog"),
               (formula_ok(Expr("plan_mode"), choices=("load", "budget")), "mode must be load or budget"),
               (formula_ok(Expr("plan_budget_gpus"), RANGES["budget_gpus"]),
                f"budget_gpus must be {RANGES['budget_gpus'].describe()}"),
               (formula_ok(Expr("plan_autoscale"), switch=True), "autoscale must be TRUE or FALSE")]
    for name, _, _ in INPUTS + OWN_INPUTS:
        rule = formula_ok(Expr(f"plan_{name}"), RANGES[name])
        if name in BLANK_ALLOWED:  # blank: the catalog's price; no p99 target
            rule = either(Expr(f"COUNTA(plan_{name})=0"), rule)
        singles.append((rule, f"{name} must be {RANGES[name].describe()}"
                        + (" (or blank)" if name in BLANK_ALLOWED else "")))
    cross = [(MTP_ACCEPT_RULE.ok({"mtp_accept": Expr("plan_mtp_accept"), "mtp_draft": Expr("plan_mtp_draft")}),
              MTP_ACCEPT_RULE.message),
             (either(Expr("COUNTA(plan_ttft_p99_ms)=0"), Expr("plan_ttft_p99_ms") >= Expr("plan_ttft_ms")),
              f"ttft_p99_ms must be at least ttft_ms: {BELOW_MEAN}"),
             (either(Expr("NOT(plan_autoscale)"), Expr("plan_peak_to_average") > 1),
              "autoscale prices the average fleet of a load that peaks: give peak_to_average above 1")]
    return input_problems(b, calc, cur, "plan", singles, cross)


def _loads(gpu_env: dict[str, Any]) -> dict[str, Expr]:
    """The loads the candidates' pools are sized for, as :func:`dsxl.planner.plan.size_and_cost` sizes them: the
    costed fleet (the peak's, or the average's when autoscaled) and the peak fleet; decode at the p99 of the
    sequences in flight (Little's law at the TPOT target, its headroom factor from ``decode_headroom_z``)."""
    out = Expr("plan_output_tokens_per_s")
    inp = sizing.input_tokens_per_s(out, Expr("plan_input_len"), Expr("plan_output_len"))
    peak = Expr("plan_peak_to_average")
    costed = where(Expr("plan_autoscale"), 1, peak)

    def held(load: Expr) -> Expr:  # decode load at the p99 concurrency
        in_flight = load * Expr("plan_tpot_ms") / 1000
        return load * queueing.headroom_factor(in_flight, Expr("plan_arrival_cv"),
                                               _generation_constant(gpu_env, "decode_headroom_z"))
    return {"plan_out_costed": out * costed, "plan_out_load": held(out * costed), "plan_in_load": inp * costed,
            "plan_out_load_peak": held(out * peak), "plan_in_load_peak": inp * peak}


def _plan_results(b: Builder, ws: Any, grid_ws: Any, grid_cur: Cursor, catalog: Catalog, model_name: str,
                  model_env: dict[str, Expr], gpu_env: dict[str, Any], loads: dict[str, Any], problems: Expr,
                  grid: tuple[Any, ...]) -> dict[str, Expr]:
    """The Planner's results block (``plan_results``), beside the inputs: the chosen configurations, the fleet as
    dsxl plan sizes it, its cost, queue, power and band; returns the result cells by key."""
    decode, prefill, column, pick = grid
    col, r = 6, 3
    show_problems(b, ws, r, col, problems, 2, "plan_problems")
    ws.cell(r + 2, col, "Plan").font = style.H2_FONT  # beside the inputs' note; the header beside theirs
    r += 3
    inputs_ok = Expr("plan_inputs_ok")
    for j, h in enumerate(("Result", "Value", "Unit")):
        b._header_cell(ws, r, col + j, h)
    dmax, pmax = Expr(f"MAX({column(decode, 'score')})"), Expr(f"MAX({column(prefill, 'score')})")
    d_tps, p_tps = pick(decode, "tokens_per_s_per_gpu"), pick(prefill, "tokens_per_s_per_gpu")
    d_ep, p_ep = pick(decode, "ep"), pick(prefill, "ep")
    budget = Expr('plan_mode="budget"')
    per_out = Expr("plan_input_len") / Expr("plan_output_len")
    capacity = where(budget, sizing.budget_capacity(Expr("plan_budget_gpus"), d_tps * d_ep, d_ep, p_tps * p_ep, p_ep,
                                                    per_out), "")
    out_load = where(budget, capacity, Expr("plan_output_tokens_per_s"))
    in_load = sizing.input_tokens_per_s(out_load, Expr("plan_input_len"), Expr("plan_output_len"))
    lines = [
        ("feasible", "Feasible", Expr(f"AND({dmax.text}>0,{pmax.text}>0)"), "", "General"),
        ("reason", "Why not (when infeasible)", _reason(column(decode, "tpot_ms_if_fits"),
                                                        column(prefill, "ttft_ms_if_fits"), dmax, pmax), "", "General"),
        ("decode_ep", "Decode EP", d_ep, "GPUs", "0"),
        ("decode_batch", "Decode batch", pick(decode, "batch"), "sequences per GPU", "0"),
        ("decode_mtp", "Decode MTP draft", pick(decode, "mtp_draft"), "tokens", "0"),
        ("decode_tpot", "Decode TPOT", pick(decode, "tpot_ms"), "ms", "0.0"),
        ("decode_tps", "Decode tokens/s per GPU", d_tps, "tokens/s", "#,##0"),
        ("decode_user", "Decode tokens/s per user", pick(decode, "tokens_per_s_per_user"), "tokens/s", "0.0"),
        ("decode_max_batch", "Decode max batch", pick(decode, "max_batch"), "sequences", "0"),
        ("served", "Output tokens/s served (the load, or the budget's capacity)", out_load, "tokens/s", "#,##0"),
    ]
    cells: dict[str, Expr] = {}

    def shown(key: str, value: Any) -> Any:  # "—" until the inputs are valid; nothing sized for an infeasible plan
        if key == "feasible":
            return where(inputs_ok, value, "—")
        if key == "reason":
            return where(inputs_ok, value, "fix the input problems above")
        return where(inputs_ok, where(Expr(cells["feasible"].text), value, "—"), "—")
    k = _result_rows(b, ws, col, r, lines, cells, shown)
    out_load = cells["served"]
    in_load = sizing.input_tokens_per_s(out_load, Expr("plan_input_len"), Expr("plan_output_len"))
    # load mode sizes the costed fleet as dsxl plan does (decode at p99 concurrency, prefill grown for the queue);
    # budget mode sizes for throughput
    fleet_in = where(budget, in_load, loads["plan_in_load"])
    d_inst = sizing.instances(where(budget, out_load, loads["plan_out_load"]), cells["decode_tps"], cells["decode_ep"])
    rows_env = {"model": model_cells(catalog, model_name, model_env),
                "compressed": catalog.model(model_name).compressed_attention,
                "constant": lambda name: _generation_constant(gpu_env, name), "nic": gpu_env["pcie_bw"]}
    grown = _grown_prefill(b, grid_ws, grid_cur, rows_env, p_ep, p_tps, pick(prefill, "tokens_per_gpu"), fleet_in)
    more = _sizing_rows(b, grid_ws, grid_cur, catalog.model(model_name).native_moe_dtype, gpu_env, grid, d_inst,
                        budget, out_load)

    def sized(key: str, value: Any) -> Any:  # derived from the rows above, each in its own cell
        value = _derived(key, cells, out_load, in_load) if value is None else value
        return shown(key, where(budget, value, grown["instances"]) if key == "prefill_instances" else value)
    k = _result_rows(b, ws, col, k, more, cells, sized)
    queue = _queue(b, grid_ws, grid_cur, rows_env, cells, pick(prefill, "tokens_per_gpu"), fleet_in)
    queue_rows = _queue_rows(queue, budget, grown["extra_instances"])

    def queued(key: str, value: Any) -> Any:  # a queue at or past saturation has no TTFT
        stable = key.startswith("ttft_") and key != "ttft_p99_met" or key == "prefill_utilization"
        return shown(key, where(queue["utilization"] < 1, value, "unstable: utilization at or above 1")
                     if stable else value)
    k = _result_rows(b, ws, col, k, queue_rows, cells, queued)
    busy = {name: power.busy_share(pick(scopes, "step_ms"), pick(scopes, "overhead_ms"))
            for name, scopes in (("decode", decode), ("prefill", prefill))}
    watts = power_rows(Expr("plan_gpu"), sizing.gpus(cells["decode_instances"], cells["decode_ep"]),
                       sizing.gpus(cells["prefill_instances"], cells["prefill_ep"]), busy["decode"], busy["prefill"],
                       out_load, cells["cost_per_hour"], cells["total_nodes"])
    known = Expr("ISNUMBER(MATCH(plan_gpu,power_gpu,0))")  # a custom GPU row has no power row
    k = _result_rows(b, ws, col, k, watts, cells,
                     lambda key, value: shown(key, where(known, value, "no power row for this GPU")))
    b.define("plan_results", span(ws, r, col, k, col + 2))
    return cells


def _planner_inputs(b: Builder, ws: Any, model_name: str) -> Cursor:
    """The Planner's input block (workload, SLA, prices, the mode, the budget, autoscale); returns the cursor below."""
    cur = Cursor(3)
    b.input_header(ws, cur, "Workload, SLA and prices", "Blue cells are inputs. The search grid is on Planner_grid "
                   "(EP x batch x MTP on/off for decode; EP x tokens per forward for prefill; attention TP 1, TBO on). "
                   "The sheet sizes as dsxl plan does on that grid: decode at the p99 of the sequences in flight, the "
                   "prefill pool grown until the TTFT targets hold under random arrivals, the peak fleet costed (or "
                   "the average, autoscaled); the result says where it may differ.")
    b.gpu_input_row(ws, cur, "plan_gpu")
    defaults = planner_inputs_defaults(model_name)
    _input_rows(b, ws, cur, INPUTS, defaults)

    # the switch: size for the load, or the best use of a budget of GPUs
    ws.cell(cur.row, 1, "Mode: size for the load, or the most a budget of GPUs serves").font = style.LABEL_FONT
    ws.cell(cur.row, 2, "load")
    ws.cell(cur.row, 3, "plan_mode").font = style.NOTE_FONT
    ws.cell(cur.row, 4, "load or budget").font = style.NOTE_FONT
    b.mark_input(ws, cur.row, 2, None, "plan_mode")
    dv = DataValidation(type="list", formula1='"load,budget"', allow_blank=False)
    dv.error, dv.showErrorMessage = "Enter load or budget.", True
    ws.add_data_validation(dv)
    dv.add(ws.cell(cur.row, 2).coordinate)
    b.define("plan_mode", f"{ws.title}!$B${cur.row}")
    cur.row += 1
    ws.cell(cur.row, 1, "Budget: GPUs you have (mode budget)").font = style.LABEL_FONT
    ws.cell(cur.row, 2, 64)
    ws.cell(cur.row, 3, "plan_budget_gpus").font = style.NOTE_FONT
    ws.cell(cur.row, 4, "GPUs").font = style.NOTE_FONT
    b.mark_input(ws, cur.row, 2, RANGES["budget_gpus"], "plan_budget_gpus")
    b.define("plan_budget_gpus", f"{ws.title}!$B${cur.row}")
    cur.row += 1
    _switch_row(b, ws, cur, "plan_autoscale", "Cost the average fleet (autoscale; FALSE: the peak fleet)",
                defaults.autoscale)

    return cur


def _planner_env(b: Builder, grid_ws: Any, grid_cur: Cursor, rows: dict[str, tuple[str, str]], catalog: Catalog,
                 model_env: dict[str, Expr], model_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What every candidate sees (``b.cells[ENV_KEY]``): the chosen GPU's fields and constants, the workload and
    the loads the pools are sized for; returns the GPU's cells and the loads'."""
    fields = b.gpu_lookup(Expr("plan_gpu"), b.hardware_rows)
    price = where(Expr("ISNUMBER(plan_price_gpu_hour)"), Expr("plan_price_gpu_hour"), fields["price_gpu_hour"])
    common = option_env({"attn_tp": 1, "moe_tp": 1, "engine": default_engine(), "sbo": False, "attn_dtype": "fp8",
                         "kv_dtype": "fp8", "moe_dtype": catalog.model(model_name).native_moe_dtype, "imbalance": 1})
    gpu_env = b.materialize(grid_ws, grid_cur, "Selected GPU: datasheet fields and refined constants",
                            {**_gpu_env(b, fields, rows), "price": price})
    loads = b.materialize(grid_ws, grid_cur, "Loads the pools are sized for (as dsxl plan)", _loads(gpu_env),
                          "Decode at the p99 of the sequences in flight; the costed fleet is the peak's unless "
                          "autoscaled.")
    b.cells[ENV_KEY] = {**gpu_env, **fused_moe_env(model_name, gpu_env["generation"]), **common,
                        "input_len": Expr("plan_input_len"),
                        "output_len": Expr("plan_output_len"), "prompt_len": Expr("plan_input_len"),
                        "cache_hit": Expr("plan_cache_hit"), "plan_tpot_ms": Expr("plan_tpot_ms"),
                        "plan_ttft_ms": Expr("plan_ttft_ms"), "plan_budget_gpus": Expr("plan_budget_gpus"),
                        "plan_min_prefill_ep": Expr("plan_min_prefill_ep"),
                        "plan_min_decode_ep": Expr("plan_min_decode_ep"), **model_env, **loads,
                        "plan_ttft_p99_ms": Expr("plan_ttft_p99_ms"),
                        "plan_p99_set": Expr("ISNUMBER(plan_ttft_p99_ms)"),
                        "ttft_queue_factor": _generation_constant(gpu_env, "ttft_queue_factor")}
    return gpu_env, loads


def _candidate_grid(b: Builder, grid_ws: Any, grid_cur: Cursor, chains: tuple[list, list]) -> tuple[Any, ...]:
    """The Planner's candidates on Planner_grid (one refined chain per row: EP x batch x MTP for decode, EP x tokens
    per forward for prefill), the chosen row of each pool, and two readers: ``column(scopes, quantity)`` (the
    quantity's cells over the candidates) and ``pick(scopes, quantity)`` (its value in the chosen row)."""
    decode_chain, prefill_chain = _candidates(chains)
    d_shared, d_steps = chain.split_by_dependency(decode_chain, DECODE_VARIES)
    p_shared, p_steps = chain.split_by_dependency(prefill_chain, PREFILL_VARIES)
    shared_d = Scope("plan_shared", Key("plan_shared", name="decode"), tuple(d_shared), (ENV_KEY,), title="decode")
    shared_p = Scope("plan_shared", Key("plan_shared", name="prefill"), tuple(p_shared), (ENV_KEY,), title="prefill")
    for sh in (shared_d, shared_p):
        b.calc_block(grid_ws, grid_cur, f"Shared by every {sh.title} candidate (GPU, model, workload)", [sh],
                     lambda s: Expr("plan_gpu"))
    decode = [Scope("plan_decode", Key("plan_decode", index=i), tuple(d_steps), (ENV_KEY, shared_d.key),
                    (("ep", ep), ("batch", batch), ("mtp_draft", d), ("mtp_accept", a), ("tbo", tbo)))
              for i, (ep, batch, (d, a), tbo) in enumerate(
                  (ep, bt, m, t) for ep in WORKBOOK_GRID["ep_sizes"] for bt in WORKBOOK_GRID["batch_sizes"]
                  for m in ((0, 1), (Expr("plan_mtp_draft"), Expr("plan_mtp_accept"))) for t in WORKBOOK_GRID["tbo_options"])]
    prefill = [Scope("plan_prefill", Key("plan_prefill", index=i), tuple(p_steps), (ENV_KEY, shared_p.key),
                     (("ep", ep), ("tokens_per_gpu", t), ("tbo", tbo)))
               for i, (ep, t, tbo) in enumerate((ep, t, tbo) for ep in WORKBOOK_GRID["ep_sizes"]
                                                for t in WORKBOOK_GRID["forward_sizes"]
                                                for tbo in WORKBOOK_GRID["tbo_options"])]
    label = lambda s: f"EP{s.params[0][1]} #{s.key.index + 1}"  # noqa: E731
    b.calc_block(grid_ws, grid_cur, "Decode candidates (one row each; refined chain)", decode, label, by_row=True)
    b.calc_block(grid_ws, grid_cur, "Prefill candidates (one row each; refined chain)", prefill, label, by_row=True)

    def column(scopes: list[Scope], q: str) -> str:
        first, last = b.cells[scopes[0].key][q].text, b.cells[scopes[-1].key][q].text
        sheet, a = first.split("!")
        return f"{sheet}!{a}:{last.split('!')[1]}"

    b.define("plan_decode_peak_gpus", column(decode, "pool_gpus_peak"))
    b.define("plan_prefill_peak_gpus", column(prefill, "pool_gpus_peak"))
    smallest = b.materialize(grid_ws, grid_cur, "Smallest qualifying instance of each pool", {
        f"{name}_ep": Expr(f"MIN({column(scopes, 'ep_if_qualifies')})") for name, scopes in (("decode", decode),
                                                                                              ("prefill", prefill))},
        "Budget mode keeps a candidate only where it fits the budget beside the other pool's smallest instance.")
    for name in ("decode", "prefill"):
        b.define(f"plan_min_{name}_ep", smallest[f"{name}_ep"].text)
    rows = {}
    for name, scopes in (("decode", decode), ("prefill", prefill)):
        score, key = column(scopes, "budget_score"), column(scopes, "size_key")
        rows[name] = b.materialize(grid_ws, grid_cur, f"Chosen {name} candidate (row within the block above)", {
            "row": Expr(f'IF(plan_mode="budget",MATCH(MAX({score}),{score},0),MATCH(MIN({key}),{key},0))')},
            "Load mode: the least-cost candidate (fewest GPUs for the load); budget mode: the fastest per GPU that "
            "fits the budget beside the other pool's smallest instance.")["row"]

    def pick(scopes: list[Scope], q: str) -> Expr:
        return Expr(f"INDEX({column(scopes, q)},{rows['decode' if scopes is decode else 'prefill'].text},1)")

    return decode, prefill, column, pick


def _result_rows(b: Builder, ws: Any, col: int, after: int, rows: list[tuple[str, str, Any, str, str]],
                 cells: dict[str, Expr], shown: Any) -> int:
    """The Planner's result rows below row ``after``: (key, label, value, unit, format) each, the value as
    ``shown(key, value)`` makes it (filed in ``cells`` by key, so later rows refer to it); returns the last row."""
    for i, (key, text, value, unit, fmt) in enumerate(rows, start=1):
        ws.cell(after + i, col, text).font = style.LABEL_FONT
        cells[key] = b.write(ws, after + i, col + 1, shown(key, value), fmt)
        ws.cell(after + i, col + 2, unit).font = style.NOTE_FONT
    return after + len(rows)


def _switch_row(b: Builder, ws: Any, cur: Cursor, name: str, label: str, default: bool) -> None:
    """A TRUE/FALSE input row (a dropdown), named ``name``."""
    ws.cell(cur.row, 1, label).font = style.LABEL_FONT
    ws.cell(cur.row, 2, bool(default))
    ws.cell(cur.row, 3, name).font = style.NOTE_FONT
    ws.cell(cur.row, 4, "TRUE or FALSE").font = style.NOTE_FONT
    b.mark_input(ws, cur.row, 2, None, name)
    ws.cell(cur.row, 2).number_format = style.BOOLEAN  # a word everywhere (LibreOffice prints General as 0/1)
    dv = DataValidation(type="list", formula1='"TRUE,FALSE"', allow_blank=False)
    dv.error, dv.showErrorMessage = "Enter TRUE or FALSE.", True
    ws.add_data_validation(dv)
    dv.add(ws.cell(cur.row, 2).coordinate)
    b.define(name, f"{ws.title}!$B${cur.row}")
    cur.row += 1


def _sizing_rows(b: Builder, grid_ws: Any, grid_cur: Cursor, moe_dtype: str, gpu_env: dict[str, Any],
                 grid: tuple[Any, ...], d_inst: Expr, budget: Expr, out_load: Expr) -> list[tuple[Any, ...]]:
    """The result rows of the fleet and its cost (a value of None is derived from the rows above it, in its own
    cell: :func:`_derived`), then the plan's band."""
    decode, prefill, _, pick = grid
    p_ep, p_tps = pick(prefill, "ep"), pick(prefill, "tokens_per_s_per_gpu")
    return [
        ("decode_instances", "Decode instances (EP groups)", d_inst, "", "0"),
        ("decode_nodes", "Decode nodes", None, "nodes", "0"),
        ("prefill_ep", "Prefill EP", p_ep, "GPUs", "0"),
        ("prefill_tokens", "Prefill tokens per forward", pick(prefill, "tokens_per_gpu"), "tokens", "#,##0"),
        ("prefill_ttft", "Prefill TTFT", pick(prefill, "ttft_ms"), "ms, no queue", "#,##0"),
        ("prefill_tps", "Prefill input tokens/s per GPU", p_tps, "tokens/s", "#,##0"),
        ("prefill_instances", "Prefill instances (EP groups)", None, "", "0"),
        ("prefill_nodes", "Prefill nodes", None, "nodes", "0"),
        ("total_gpus", "Total GPUs", None, "GPUs", "#,##0"),
        ("total_nodes", "Total nodes", None, "nodes", "#,##0"),
        ("peak_nodes", "Total nodes at peak load", None, "nodes", "#,##0"),
        ("price", "Price per GPU-hour", b.cells[ENV_KEY]["price"], "$", "0.00"),
        ("cost_per_hour", "Cost per hour", None, "$", "#,##0"),
        ("cost_per_day", "Cost per day", None, "$, the costed fleet", "#,##0"),
        ("cost_per_m_output", "Cost per million output tokens (decode GPUs)", None, "$", "0.000"),
        ("cost_per_m_input", "Cost per million input tokens (prefill GPUs)", None, "$", "0.000"),
        ("revenue_per_day", "Revenue per day at the prices above", None, "$", "#,##0"),
        ("margin", "Cost-profit margin", None, "", "0%"),
        ("budget_covers_load", "Budget covers the load (mode budget)",
         where(budget, Expr("plan_output_tokens_per_s") <= out_load, ""), "TRUE/FALSE", style.BOOLEAN),
        ("band", "Expected error of this plan (the wider of its pools' bands)", _band(
            b, grid_ws, grid_cur, gpu_env["generation"], moe_dtype, pick, decode,
            prefill), "±, relative", "0%"),
    ]


def _queue_rows(queue: dict[str, Expr], budget: Expr, extra: Expr) -> list[tuple[str, str, Any, str, str]]:
    """The result rows of the costed fleet's prefill queue, its costing and whether it is dsxl plan's fleet."""
    no_target = Expr("COUNTA(plan_ttft_p99_ms)=0")
    return [
        ("prefill_utilization", "Prefill utilization (at the costed fleet's load)", queue["utilization"], "", "0%"),
        ("ttft_mean", "TTFT mean, queueing included (at this sizing)", queue["mean"], "ms", "#,##0"),
        ("ttft_p90", "TTFT p90, queueing included", queue["p90"], "ms", "#,##0"),
        ("ttft_p99", "TTFT p99, queueing included", queue["p99"], "ms", "#,##0"),
        ("ttft_p99_met", "p99 TTFT target met at this sizing",
         where(no_target, "no target", where(queue["p99"] <= Expr("plan_ttft_p99_ms"), "yes",
                                             "no: dsxl plan adds prefill instances until it is")), "", "General"),
        ("costed_at", "Costed at", where(Expr("plan_peak_to_average") > 1, where(
            Expr("plan_autoscale"), "average fleet", "peak fleet"), "the fleet (no peak)"), "as dsxl plan", "General"),
        ("sized_as_plan", "Sized as dsxl plan", _as_plan(budget, extra), "", "General"),
    ]


def _as_plan(budget: Expr, extra: Expr) -> Expr:
    """Whether the sheet's fleet is the one dsxl plan sizes for the same inputs and grid, in a few words (the
    README says more): budget mode sizes for throughput (dsxl plan's capacity keeps the queue and the p99 headroom,
    so it may be lower); a queue that adds prefill instances (dsxl plan also tries other prefill shapes, so it may
    need fewer GPUs); past the growth table; an autoscaled fleet's peak line is an estimate."""
    return where(budget, "no: budget for throughput", where(extra >= GROWTH_STEPS, "no: queue past the table",
                 where(extra > 0, "maybe: queue added prefill", where(Expr("plan_autoscale"),
                                                                      "yes; peak line estimated", "yes"))))


def _reason(tpot_col: str, ttft_col: str, dmax: Expr, pmax: Expr) -> Expr:
    best_tpot, best_ttft = f"MIN({tpot_col})", f"MIN({ttft_col})"
    decode = (f'IF({dmax.text}>0,"",IF({best_tpot}>1E+98,"decode: memory binds (nothing fits); ",'
              f'"decode: the TPOT SLA binds, best "&TEXT({best_tpot},"0.0")&" ms; "))')
    prefill = (f'IF({pmax.text}>0,"",IF({best_ttft}>1E+98,"prefill: memory binds",'
               f'"prefill: the TTFT SLA binds, best "&TEXT({best_ttft},"0")&" ms"))')
    return Expr(f"{decode}&{prefill}")


def _derived(key: str, c: dict[str, Expr], out_load: Expr, in_load: Expr) -> Expr:
    per_node = node_gpus(Expr("plan_gpu"))  # an NVL72 GPU's node is its 4-GPU tray
    if key == "decode_nodes":
        return sizing.nodes(sizing.gpus(c["decode_instances"], c["decode_ep"]), per_node)
    if key == "prefill_instances":
        return sizing.instances(in_load, c["prefill_tps"], c["prefill_ep"])
    if key == "prefill_nodes":
        return sizing.nodes(sizing.gpus(c["prefill_instances"], c["prefill_ep"]), per_node)
    if key == "total_gpus":
        return sizing.gpus(c["decode_instances"], c["decode_ep"]) + sizing.gpus(c["prefill_instances"], c["prefill_ep"])
    if key == "total_nodes":
        return c["decode_nodes"] + c["prefill_nodes"]
    if key == "peak_nodes":  # load mode: the costed fleet when it is the peak's; autoscaled, the least-GPU
        # candidates at peak load (decode at p99 concurrency, prefill for throughput: dsxl plan also grows it)
        estimate = sizing.nodes(Expr("MIN(plan_decode_peak_gpus)"), per_node) + \
            sizing.nodes(Expr("MIN(plan_prefill_peak_gpus)"), per_node)
        return where(Expr('plan_mode="budget"'), "", where(Expr("plan_autoscale"), estimate, c["total_nodes"]))
    if key == "cost_per_hour":
        return economics.cost_per_hour(c["total_gpus"], c["price"])
    if key == "cost_per_day":
        return economics.cost_per_day(c["cost_per_hour"])
    if key == "cost_per_m_output":
        return economics.per_million(economics.cost_per_hour(sizing.gpus(c["decode_instances"], c["decode_ep"]), c["price"]),
                                  out_load)
    if key == "cost_per_m_input":
        return economics.per_million(economics.cost_per_hour(sizing.gpus(c["prefill_instances"], c["prefill_ep"]),
                                                       c["price"]), in_load)
    if key == "revenue_per_day":
        in_day, hit = in_load * 86400, Expr("plan_cache_hit")
        return economics.revenue_per_day(in_day * hit, in_day * (1 - hit), out_load * 86400, Expr("plan_price_input_hit"),
                                      Expr("plan_price_input_miss"), Expr("plan_price_output"))
    if key == "margin":  # undefined, not infinite, at zero cost (as dsxl plan says)
        return where(c["cost_per_day"] > 0, economics.margin(c["revenue_per_day"], c["cost_per_day"]),
                     "undefined at zero cost")
    raise KeyError(key)


def day6_block(b: Builder, ws: Any, cur: Cursor, col: int) -> None:
    """DeepSeek's published day-6 economics recomputed from its own figures (named range ``plan_day6``): a check of
    the cost and revenue formulas the Planner uses, beside the article's headline tables."""
    spec = json.loads(read_template_text("plan_scenarios.json"))["deepseek_day6"]
    pub = spec["published"]
    ws.cell(cur.row, col, "DeepSeek day-6 economics (published figures, recomputed)").font = style.H2_FONT
    cur.row += 1
    ws.cell(cur.row, col, spec["source"]).font = style.NOTE_FONT
    cur.row += 1
    cells: dict[str, Expr] = {}
    for key, label in (("nodes", "Nodes occupied (24 h average)"), ("gpus_per_node", "GPUs per node"),
                       ("price_gpu_hour", "$ per H800-hour"), ("input_hit_b", "Cache-hit input tokens (B)"),
                       ("input_miss_b", "Cache-miss input tokens (B)"), ("output_b", "Output tokens (B)"),
                       ("price_input_hit", "$ per M cache-hit"), ("price_input_miss", "$ per M cache-miss"),
                       ("price_output", "$ per M output")):
        ws.cell(cur.row, col, label).font = style.LABEL_FONT
        ws.cell(cur.row, col + 1, pub[key])
        cells[key] = ref(ws, cur.row, col + 1)
        cur.row += 1
    cost = economics.cost_per_day(economics.cost_per_hour(cells["nodes"] * cells["gpus_per_node"], cells["price_gpu_hour"]))
    rev = economics.revenue_per_day(cells["input_hit_b"] * 1e9, cells["input_miss_b"] * 1e9, cells["output_b"] * 1e9,
                                 cells["price_input_hit"], cells["price_input_miss"], cells["price_output"])
    for j, h in enumerate(("Figure", "Recomputed", "Published")):
        b._header_cell(ws, cur.row, col + j, h)
    head = cur.row
    top = cur.row + 1
    for i, (label, value, fmt, published) in enumerate((
            ("Cost per day", cost, "#,##0", pub["cost_per_day"]),
            ("Revenue per day (from the rounded token counts)", rev, "#,##0", pub["revenue_per_day"]),
            ("Cost-profit margin", economics.margin(ref(ws, top + 1, col + 1), ref(ws, top, col + 1)), "0.0%",
             pub["margin"]))):
        ws.cell(top + i, col, label).font = style.LABEL_FONT
        b.write(ws, top + i, col + 1, value, fmt)
        shown = ws.cell(top + i, col + 2, published)  # the published figure as a number in the row's format
        shown.number_format, shown.font = fmt, style.NOTE_FONT
    b.define("plan_day6", span(ws, head, col, top + 2, col + 2))
    ws.cell(top + 3, col, "The published revenue uses unrounded token counts; dsxl plan --scenario deepseek_day6 "
                          "also sizes the day's traffic and says why it needs fewer nodes.").font = style.NOTE_FONT
    cur.row = top + 5


# Ranges whose cells are #N/A by design: a chart leaves such a point out (Excel, LibreOffice and Google Sheets alike),
# where a zero or a blank would plot at the axis
CHART_GAPS = ("plan_chart_candidates", "plan_chart_chosen")


def _chart(b: Builder, ws: Any, grid_ws: Any, grid_cur: Cursor, decode: list[Scope], column: Any, top_row: int,
           chosen: tuple[Expr, Expr]) -> None:
    """Every decode candidate that fits: tokens/s per GPU against tokens/s per user, the chosen one as a distinct
    point, with the SLA line; under the inputs from ``top_row`` (its own cells, nothing beneath it), the SLA line's
    two points below it. The candidates' chart data is on Planner_grid (#N/A where a candidate does not fit)."""
    first = b.cells[decode[0].key]
    last = b.cells[decode[-1].key]

    def ref_range(q: str) -> tuple[int, int, int]:
        c1 = first[q].text.split("!")[1].replace("$", "")
        c2 = last[q].text.split("!")[1].replace("$", "")
        (l1, r1), (_, r2) = coordinate_from_string(c1), coordinate_from_string(c2)
        return column_index_from_string(l1), r1, r2

    xc, r1, r2 = ref_range("tokens_per_s_per_user")
    yc, _, _ = ref_range("tps_if_fits")
    b.heading(grid_ws, grid_cur, "Chart data: decode candidates that fit (the Planner's chart)",
              "A candidate that does not fit holds #N/A, which the chart leaves out. The last row is the chosen one.")
    top = grid_cur.row
    for j, h in enumerate(("tokens/s per user", "tokens/s per GPU")):
        b._header_cell(grid_ws, top, 1 + j, h)
    for i, r in enumerate(range(r1, r2 + 1), start=1):
        x, y = ref(grid_ws, r, xc), ref(grid_ws, r, yc)
        b.write(grid_ws, top + i, 1, x, "0.0")
        b.write(grid_ws, top + i, 2, where(y > 0, y, Expr("NA()")), "#,##0")
    n = r2 - r1 + 1
    b.define("plan_chart_candidates", span(grid_ws, top + 1, 1, top + n, 2))
    pick_row = top + n + 1
    grid_cur.row = pick_row
    plotted = Expr(f"AND(ISNUMBER({chosen[0].text}),ISNUMBER({chosen[1].text}))")
    grid_ws.cell(pick_row, 3, "chosen").font = style.NOTE_FONT
    for j, value in enumerate(chosen):
        b.write(grid_ws, pick_row, 1 + j, where(plotted, value, Expr("NA()")), "0.0" if j == 0 else "#,##0")
    b.define("plan_chart_chosen", span(grid_ws, pick_row, 1, pick_row, 2))
    grid_cur.row = pick_row + 2

    chart = ScatterChart()
    chart.title = "Decode candidates: throughput vs speed per user"
    chart.x_axis.title = "output tokens/s per user"
    chart.y_axis.title = "output tokens/s per GPU"
    for first, last, title, look in ((top + 1, top + n, "candidates that fit", ("circle", 6, "1F77B4", "1F77B4")),
                                     (pick_row, pick_row, "chosen", ("diamond", 14, "FF7F0E", "000000"))):
        chart.series.append(style.points(Series(Reference(grid_ws, min_col=2, min_row=first, max_row=last),
                                                Reference(grid_ws, min_col=1, min_row=first, max_row=last),
                                                title=title), *look))
    # the SLA: a vertical line at 1000 / tpot_ms tokens/s per user, from 0 to the best candidate (data beside the
    # candidates' on Planner_grid, so no raw numbers print under the chart)
    top = grid_cur.row
    grid_ws.cell(top, 1, "TPOT SLA line (chart data)").font = style.NOTE_FONT
    for i, y in enumerate((0, Expr(f"MAX({column(decode, 'tps_if_fits')})"))):
        b.write(grid_ws, top + 1 + i, 1, where(Expr("plan_inputs_ok"), 1000 / Expr("plan_tpot_ms"), "—"), "0.0")
        b.write(grid_ws, top + 1 + i, 2, where(Expr("plan_inputs_ok"), y, "—"), "#,##0")
    grid_cur.row = top + 4
    sla = Series(Reference(grid_ws, min_col=2, min_row=top + 1, max_row=top + 2),
                 Reference(grid_ws, min_col=1, min_row=top + 1, max_row=top + 2), title="TPOT SLA")
    sla.marker.symbol = "none"
    sla.graphicalProperties.line.dashStyle = "dash"
    sla.graphicalProperties.line.solidFill = "C00000"
    chart.series.append(sla)
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    style.axis_format(chart.x_axis, "#,##0")
    style.axis_format(chart.y_axis, "#,##0")
    chart.height, chart.width = 11, 18  # within columns A-D, the first printed page's
    chart.legend.position = "b"
    place_chart(ws, chart, f"A{top_row}")
    ws.row_breaks.append(Break(id=top_row - 1))  # the chart prints on a page of its own, never cut
