"""The planner's request: every input with its default (:class:`PlanInputs`) and :func:`check_inputs`, which
checks a request against the declared rules (:data:`dsxl.core.rules.PLAN_RANGES`) and the rules that tie inputs
together, and resolves it (GPU names, the budget in GPUs, the engine, the overlap options it offers)."""

from __future__ import annotations

from typing import Any

from dataclasses import dataclass, field, replace

import numpy as np

from dsxl.data.catalog import default_engine, load_catalog, load_engines
from dsxl.inputs.request import MTP_ACCEPT_RULE, OPTION, Resolved, catalog_model_name, model_args, resolve_gpu
from dsxl.core.rules import MAX_LIST, PLAN_LIST_RANGES, PLAN_RANGES, check, choose, show

SERVING = ("disaggregated", "aggregated", "both")
OWNERSHIP = ("rent", "own")
DEFAULT_TTFT_MS = 3000.0  # the mean time-to-first-token target when none is given
BELOW_MEAN = "a percentile target below the mean cannot hold"  # why a p90/p99 target under the mean is refused


@dataclass(frozen=True)
class PlanInputs:
    """Every planner input with its default; units in the field comments."""

    gpus: tuple[str, ...] = field(default_factory=lambda: (load_catalog().default_gpu,))  # catalog names; ("all",)
    model: str | None = None  # preset id or config.json path; None = the default (DeepSeek-V3)
    input_len: float = 4096  # tokens per request, cache hits included
    output_len: float = 1536  # tokens per request
    cache_hit: float = 0.0  # share of input tokens served from the prefix cache
    output_tokens_per_s: float | None = None  # average load; or requests_per_s
    requests_per_s: float | None = None
    tpot_ms: float | None = 50.0  # decode SLA (or min_tokens_per_s_per_user)
    min_tokens_per_s_per_user: float | None = None
    ttft_ms: float | None = None  # prefill SLA: mean time to first token, queueing included (ms); None = 3,000,
    # or the tightest percentile target when one is given
    ttft_p90_ms: float | None = None  # ... and its 90th and 99th percentiles (ms), None = no such target
    ttft_p99_ms: float | None = None
    arrival_cv: float = 1.0  # coefficient of variation of request inter-arrival times (1 = Poisson)
    autoscale: bool = False  # price the average fleet (nodes handed back off-peak) instead of the peak fleet
    queueing: bool = True  # size for TTFT under random arrivals and p99 decode concurrency (False: throughput only,
    # as the workbook's Planner sheet sizes)
    serving: str = "disaggregated"
    price_gpu_hour: float | None = None  # $; None = the catalog's column
    gpu_per_node: int = 8
    # powers of two and the wide-EP sizes clusters run (redundant experts fill the remainder)
    ep_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 48, 64, 72, 96, 128, 144, 256)
    mtp_draft: int = 1  # draft tokens when MTP is on (searched on and off where the model has an MTP module)
    mtp_accept: float = 1.8  # tokens per step with MTP: DeepSeek-V3 report, 85-90 % second-token acceptance
    peak_to_average: float = 1.0
    batch_sizes: tuple[int, ...] | None = None  # sequences per GPU searched (x attention TP per rank); None = 1..1024
    attn_tp_sizes: tuple[int, ...] = (1, 2, 4, 8)
    forward_sizes: tuple[int, ...] = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)  # prefill tokens per forward
    tbo_options: tuple[bool, ...] = (False, True)
    price_input_hit: float | None = None  # $ per million tokens, for revenue and margin
    price_input_miss: float | None = None
    price_output: float | None = None
    budget_gpus: int | None = None  # best use of a fixed cluster: the most output tokens/s within this many GPUs
    budget_nodes: int | None = None  # the same in nodes (x gpu_per_node)
    prefill_gpu: str | None = None  # disaggregated pools of different GPU types (with decode_gpu)
    decode_gpu: str | None = None
    mixed: bool = False  # with several GPUs: also rank every prefill/decode pair
    engine: str | None = None  # the serving engine's profile (templates/engines.json); None = the default
    calibration: Any = None  # a profile written by dsxl calibrate (its path), or None for the shipped model
    mix_sizes: bool = True  # let a pool top up a bulk of one instance size with instances of another
    # power and ownership (templates/power.csv, templates/systems.json)
    ownership: str = "rent"  # rent: GPU-hours at price_gpu_hour; own: capital, power and hosting
    capital_per_gpu: float | None = None  # $ all-in system price per GPU; None = the catalog's (power.csv)
    amortization_years: float = 4.0  # years the capital is repaid over
    cost_of_capital: float = 0.10  # annual rate
    electricity_per_kwh: float = 0.08  # $ per kWh at the facility meter
    pue: float | None = None  # facility over IT power; None = the system's (1.3 air cooled, 1.1 liquid cooled)
    hosting_per_kw_month: float = 150.0  # $ per provisioned IT kW per month (space, cooling plant, operations)
    power_budget_mw: float | None = None  # the most output tokens/s at the SLA within this many facility MW

    def budgeted(self) -> bool:
        """A budget caps the fleet: GPUs, nodes or facility megawatts."""
        return self.budget_gpus is not None or self.budget_nodes is not None or self.power_budget_mw is not None

    def has_load(self) -> bool:
        return self.output_tokens_per_s is not None or self.requests_per_s is not None

    def load_output_tokens_per_s(self) -> float | None:
        if self.output_tokens_per_s is not None:
            return self.output_tokens_per_s
        return None if self.requests_per_s is None else self.requests_per_s * self.output_len

    def ttft_mean_limit_ms(self) -> float:
        """The mean TTFT target: the one set, or the default (a percentile target set alone binds by itself)."""
        return DEFAULT_TTFT_MS if self.ttft_ms is None else self.ttft_ms

    def ttft_limits_ms(self) -> dict[str, Any]:
        """Every TTFT target as given, the mean's default marked."""
        return {"mean": self.ttft_mean_limit_ms(), "mean_is_default": self.ttft_ms is None, "p90": self.ttft_p90_ms,
                "p99": self.ttft_p99_ms}

    def tpot_limit_ms(self) -> float:
        return self.tpot_ms if self.min_tokens_per_s_per_user is None else 1000 / self.min_tokens_per_s_per_user


RANGES = PLAN_RANGES
SMALLEST_LOAD = 1e-3  # output tokens/s: the least load a plan sizes (below it every figure rounds to nothing)


def check_inputs(inp: PlanInputs) -> PlanInputs:
    """Validate and normalise; one clear line naming the argument on bad input."""
    return resolve_plan(inp)[0]


def resolve_plan(inp: PlanInputs) -> tuple[PlanInputs, dict[str, Resolved]]:
    """Checked inputs, and each GPU of the plan with its model, every name looked up once (a plan call's only
    resolution: the records flow down from here)."""
    for name, rng in RANGES.items():
        value = getattr(inp, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a single number, {rng.describe()}; got {show(value)}")
        check(name, float(value), rng)
        if rng.integer:
            inp = replace(inp, **{name: int(value)})
    if not 0 <= inp.cache_hit < 1:
        raise ValueError(f"cache_hit must be a share from 0 up to (not including) 1; got {inp.cache_hit}")
    if not isinstance(inp.gpus, (tuple, list)) or not inp.gpus or not all(isinstance(g, str) for g in inp.gpus):
        raise ValueError(f"gpus must be catalog names (or all); got {show(inp.gpus)}")
    for name in ("ep_sizes", "attn_tp_sizes", "forward_sizes", "tbo_options"):
        if not getattr(inp, name):
            raise ValueError(f"{name} must list at least one value")
    if inp.output_tokens_per_s is not None and inp.requests_per_s is not None:
        raise ValueError("give the load as one of output_tokens_per_s or requests_per_s, not both")
    budgets = [n for n in ("budget_gpus", "budget_nodes", "power_budget_mw") if getattr(inp, n) is not None]
    if len(budgets) > 1:
        raise ValueError(f"give the budget as one of budget_gpus, budget_nodes or power_budget_mw; got {' and '.join(budgets)}")
    if not inp.has_load() and not inp.budgeted():
        raise ValueError("give a load (output_tokens_per_s or requests_per_s) or a budget (budget_gpus, budget_nodes or "
                         "power_budget_mw)")
    inp = replace(inp, ownership=choose("ownership", inp.ownership, OWNERSHIP))
    load = inp.load_output_tokens_per_s()
    if load is not None and load < SMALLEST_LOAD:
        name = "output_tokens_per_s" if inp.output_tokens_per_s is not None else "requests_per_s"
        smallest = SMALLEST_LOAD if name == "output_tokens_per_s" else SMALLEST_LOAD / inp.output_len
        raise ValueError(f"{name} must be at least {smallest:.3g} (the smallest load dsxl plans: {SMALLEST_LOAD:g} "
                         f"output tokens/s); got {show(getattr(inp, name))}")
    if (inp.prefill_gpu is None) != (inp.decode_gpu is None):
        raise ValueError("mixed pools need both prefill_gpu and decode_gpu")
    if inp.prefill_gpu is not None and inp.serving != "disaggregated":
        raise ValueError(f"prefill_gpu and decode_gpu need serving disaggregated; got {show(inp.serving)}")
    if inp.tpot_ms is not None and inp.min_tokens_per_s_per_user is not None:
        raise ValueError("give the decode SLA as tpot_ms or min_tokens_per_s_per_user, not both")
    if inp.tpot_ms is None and inp.min_tokens_per_s_per_user is None:
        raise ValueError("a decode SLA is required: tpot_ms or min_tokens_per_s_per_user")
    targets = [(n, getattr(inp, n)) for n in ("ttft_ms", "ttft_p90_ms", "ttft_p99_ms") if getattr(inp, n) is not None]
    for (a, x), (b, y) in zip(targets, targets[1:]):
        if y < x:
            raise ValueError(f"{b} must be at least {a} ({x:g} ms): {BELOW_MEAN}; got {y:g}")
    if inp.autoscale and inp.peak_to_average == 1:
        raise ValueError("autoscale prices the average fleet of a load that peaks: give peak_to_average above 1")
    inp = replace(inp, serving=choose("serving", inp.serving, SERVING))
    longest = OPTION["kv_len"].rng.hi  # the longest context a prediction takes
    if inp.input_len + inp.output_len > longest:
        raise ValueError(f"input_len + output_len must be at most {longest:,} tokens (the longest context modelled); "
                         f"got input_len={show(inp.input_len)}, output_len={show(inp.output_len)}")
    if not MTP_ACCEPT_RULE.ok({"mtp_accept": inp.mtp_accept, "mtp_draft": inp.mtp_draft}):
        raise ValueError(f"{MTP_ACCEPT_RULE.message} ({1 + inp.mtp_draft}); got {inp.mtp_accept}")
    for name in PLAN_LIST_RANGES:
        if len(getattr(inp, name) or ()) > MAX_LIST:
            raise ValueError(f"{name} takes at most {MAX_LIST} values; got {len(getattr(inp, name)):,}")
    for name, rng in PLAN_LIST_RANGES.items():
        for x in getattr(inp, name) or ():
            check(name, x, rng)
    return _resolved(inp)


def _resolved(inp: PlanInputs) -> tuple[PlanInputs, dict[str, Resolved]]:
    """Checked inputs' GPU and model names resolved: the catalog's spellings, and the records by name."""
    catalog = load_catalog()
    pair = {}
    if inp.prefill_gpu is not None:  # a prefill/decode pair plans those two alone
        records = [resolve_gpu(inp.prefill_gpu), resolve_gpu(inp.decode_gpu)]
        pair = {"prefill_gpu": records[0].name, "decode_gpu": records[1].name}
    elif tuple(g.lower() for g in inp.gpus) == ("all",):
        records = list(catalog.gpus.values())
    else:
        records = [resolve_gpu(g) for g in inp.gpus]
    names = (pair["decode_gpu"],) if pair else tuple(r.name for r in records)
    budget = inp.budget_gpus if inp.budget_nodes is None else inp.budget_nodes * inp.gpu_per_node
    model = model_args(inp.model)  # raises on an unknown model
    preset = catalog_model_name(inp.model)
    engine = choose("engine", inp.engine, load_engines(), default_engine())
    tbo = tuple(t for t in inp.tbo_options if not t or load_engines()[engine].numbers["micro_batch_overlap"])
    checked = replace(inp, gpus=names, ep_sizes=tuple(int(e) for e in inp.ep_sizes), budget_gpus=budget,
                      model=preset or inp.model, engine=engine, tbo_options=tbo or (False,), **pair)
    return checked, {r.name: Resolved(r, model, preset or inp.model, preset) for r in records}
