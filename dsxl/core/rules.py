"""Input ranges, one table for the model, the CLI, the UDFs and the workbook's data validation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from dsxl.core.expr import Expr, divides, either, eq, maximum, where


@dataclass(frozen=True)
class Range:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    integer: bool = False
    choices: tuple[float, ...] = ()

    @staticmethod
    def _n(x: float) -> str:
        """A bound as a reader writes it: 1,000,000 rather than 1e+06."""
        return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"

    def describe(self) -> str:
        n = self._n
        if self.choices:
            return "one of " + ", ".join(n(c) for c in self.choices)
        kind = "a whole number" if self.integer else "a number"
        if self.lo is not None and self.hi is not None:
            if self.lo_open:
                return f"{kind} greater than {n(self.lo)} and at most {n(self.hi)}"
            return f"{kind} from {n(self.lo)} to {n(self.hi)}"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {n(self.lo)}"
        return kind

    def ok(self, x: float) -> bool:
        try:
            if not math.isfinite(x):
                return False
        except OverflowError:  # an integer too large for a float lies outside every range
            return False
        if self.choices:
            return x in self.choices
        if self.integer and not float(x).is_integer():
            return False
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        return self.hi is None or x <= self.hi


def formula_ok(cell: Any, rng: Range | None = None, choices: tuple[str, ...] = (), auto: bool = False,
               switch: bool = False) -> Any:
    """The declared rule of one input as a portable formula over its cell: TRUE when the value is allowed (a blank
    is never allowed). The workbook's "input problems" cells are built from these."""
    from dsxl.core.expr import Expr, number_text
    x = cell.text
    if switch:
        flag = f"AND(COUNTA({x})=1,OR({x}=TRUE,{x}=FALSE))"
        return Expr(f'IF(ISTEXT({x}),{x}="auto",{flag})' if auto else flag)
    if choices:
        return Expr("OR(" + ",".join(f'{x}="{c}"' for c in choices) + ")")
    terms = []
    if rng is not None and rng.choices:
        terms.append("OR(" + ",".join(f"{x}={number_text(c)}" for c in rng.choices) + ")")
    elif rng is not None:
        if rng.lo is not None:
            terms.append(f"{x}{'>' if rng.lo_open else '>='}{number_text(rng.lo)}")
        if rng.hi is not None:
            terms.append(f"{x}<={number_text(rng.hi)}")
        if rng.integer:
            terms.append(f"INT({x})={x}")
    # IF, not AND, around the range: text must not reach INT or a comparison (some engines return an error)
    number = f"IF(ISNUMBER({x}),{'AND(' + ','.join(terms) + ')' if terms else 'TRUE'},FALSE)"
    return Expr(f'IF(ISTEXT({x}),{x}="auto",{number})' if auto else number)


# Physical bounds on both sides: a positive quantity from a millionth to a trillion of its unit (nothing a
# planner types lies outside, and nothing inside overflows a formula); a share from 0.1 %.
POSITIVE = Range(1e-6, 1e12)
NON_NEGATIVE = Range(0, 1e12)
COUNT = Range(1, 1e9, integer=True)
RATE = Range(0, 1)
FRACTION = Range(0.001, 1)

# Every named input and its allowed values. Keys are the article's names, used by the CLI's --set,
# the UDFs and the workbook's defined names.
SCENARIO_RANGES: dict[str, Range] = {
    "seq_len": Range(1, 10_000_000),
    "tflops_share": FRACTION,
    "kv_cache_rate": RATE,
    "decode_len": Range(0, 10_000_000),
    "discount_rate": FRACTION,
    "mem_util_rate": FRACTION,
    "group_gemm_discount": FRACTION,
    "tps_threshold": POSITIVE,  # the decode time budget is 1000 / tps_threshold ms
    "num_node": Range(1, 100_000, integer=True),
    "gpu_per_node": Range(1, 1024, integer=True),
    "dispatch_node": Range(1, 1024, integer=True),
    "decode_comm_sm": Range(0, 10_000, integer=True),
    "other_params_gb": NON_NEGATIVE,
    "mla_params_m": POSITIVE,
    "mla_absorb_params_m": POSITIVE,
    "expert_params_m": POSITIVE,
    "pcie_bw_3_2t": POSITIVE,
    "pcie_bw_1_6t": POSITIVE,
    "pcie_bw_800g": POSITIVE,
}

# The numeric fields of a GPU catalog row, in catalog order: the one declaration every face derives from.
GPU_RANGES: dict[str, Range] = {
    "sm": Range(1, 100_000, integer=True),
    "comm_sm": Range(0, 100_000, integer=True),
    "fp16_flops": POSITIVE,
    "fp8_flops": POSITIVE,
    "fp4_flops": NON_NEGATIVE,
    "mem": POSITIVE,
    "mem_bw": POSITIVE,
    "nvlink_bw": POSITIVE,
    "pcie_bw": POSITIVE,
    "scaleup": Range(1, 100_000, integer=True),
    "mla_tp_alt": Range(choices=(4, 8)),
    "price_gpu_hour": NON_NEGATIVE,
}
GPU_UNITS: dict[str, str] = {
    "sm": "SMs/CUs", "comm_sm": "SMs held by prefill comm", "fp16_flops": "TFLOPS BF16 dense",
    "fp8_flops": "TFLOPS FP8 dense", "fp4_flops": "TFLOPS FP4 dense (0 = none)", "mem": "GB HBM",
    "mem_bw": "GB/s HBM", "nvlink_bw": "GB/s per direction", "pcie_bw": "GB/s NIC per GPU",
    "scaleup": "GPUs per NVLink domain", "mla_tp_alt": "article TP rule", "price_gpu_hour": "$ per GPU-hour",
}
GPU_FIELDS: tuple[str, ...] = tuple(GPU_RANGES)
GPU_TEXT_FIELDS = ("name", "kind", "generation", "source")

MODEL_RANGES: dict[str, Range] = {
    "n_dense_layers": Range(0, 10_000, integer=True),
    "n_shared_experts": Range(0, 100_000, integer=True),
    "route_scale": POSITIVE,
    "index_n_heads": Range(0, 100_000, integer=True),
    "index_head_dim": Range(0, 100_000, integer=True),
    "index_topk": Range(0, 10_000_000, integer=True),
    "n_mtp_layers": Range(0, 100, integer=True),
    "head_dim": Range(0, 100_000, integer=True),
    "o_groups": Range(0, 100_000, integer=True),
    "o_lora_rank": Range(0, 10_000_000, integer=True),
    "sliding_window": Range(0, 10_000_000, integer=True),
    "n_csa_layers": Range(0, 10_000, integer=True),
    "n_hca_layers": Range(0, 10_000, integer=True),
    "csa_ratio": Range(1, 100_000, integer=True),
    "hca_ratio": Range(1, 100_000, integer=True),
    "hc_mult": Range(1, 64, integer=True),
    "n_hash_layers": Range(0, 10_000, integer=True),
    "expert_bits": Range(choices=(4, 8)),
}
MODEL_COUNT = Range(1, 10_000_000, integer=True)  # every other model argument


@dataclass(frozen=True)
class Rule:
    """A rule over several inputs of one record: ``ok`` over their names (numbers, arrays or workbook cells) and the
    one-line message naming the argument; ``names`` are the inputs it reads (shown with their values in Python)."""

    argument: str
    ok: Callable[[dict[str, Any]], Any]
    message: str
    names: tuple[str, ...]


def _multiple_of_128(name: str) -> Rule:
    return Rule(name, lambda v: divides(128, v[name]), f"{name} must be a multiple of 128 (the kernels' block size)",
                (name,))


# The rules that tie a model's arguments together: ModelArgs checks them and the workbook's Model sheet shows them.
MODEL_RULES: tuple[Rule, ...] = (
    Rule("n_dense_layers", lambda v: v["n_dense_layers"] <= v["n_layers"], "n_dense_layers must be at most n_layers",
         ("n_dense_layers", "n_layers")),
    Rule("n_activated_experts", lambda v: v["n_activated_experts"] <= v["n_routed_experts"],
         "n_activated_experts must be at most n_routed_experts", ("n_activated_experts", "n_routed_experts")),
    *(_multiple_of_128(n) for n in ("dim", "q_lora_rank", "kv_lora_rank")),  # FP8 block scales, FlashMLA tiles
    Rule("n_limited_groups", lambda v: v["n_limited_groups"] <= v["n_expert_groups"],
         "n_limited_groups must be at most n_expert_groups", ("n_limited_groups", "n_expert_groups")),
    Rule("n_routed_experts", lambda v: divides(v["n_expert_groups"], v["n_routed_experts"]),
         "n_routed_experts must split evenly into n_expert_groups", ("n_routed_experts", "n_expert_groups")),
    Rule("n_csa_layers", lambda v: v["n_csa_layers"] + v["n_hca_layers"] <= v["n_layers"],
         "n_csa_layers + n_hca_layers must be at most n_layers", ("n_csa_layers", "n_hca_layers", "n_layers")),
    Rule("o_groups", lambda v: either(eq(v["head_dim"], 0), where(v["o_groups"] > 0,
                                                                   divides(maximum(v["o_groups"], 1), v["n_heads"]),
                                                                   False)),
         "o_groups must divide n_heads when head_dim > 0 (compressed attention)", ("o_groups", "n_heads", "head_dim")),
)
# A GPU catalog row's rules beyond each field's range.
GPU_RULES: tuple[Rule, ...] = (
    Rule("comm_sm", lambda v: v["comm_sm"] < v["sm"], "comm_sm must be less than sm (some SMs must compute)",
         ("comm_sm", "sm")),
)


def broken_rule(rules: tuple[Rule, ...], values: dict[str, Any], prefix: str = "") -> str | None:
    """The first rule of ``rules`` that ``values`` break, as its one-line message with the values it read (rules
    reading a value that is not a number yet are skipped: the field's own range check reports it)."""
    for rule in rules:
        got = {n: values[n] for n in rule.names}
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in got.values()):
            continue
        if not rule.ok(values):
            return f"{prefix}{rule.message}; got " + ", ".join(f"{n}={show(x)}" for n, x in got.items())
    return None

BATCH = Range(1, 1_000_000, integer=True)
TP = Range(1, 1024, integer=True)
TP_CHOICES = Range(choices=(1, 4, 8))
TOKENS = Range(0, 1e12)
EXPERTS_PER_GPU = Range(0, 100_000)


def one_of(choices: Any) -> str:
    """Allowed text values as a message says them."""
    return "one of " + ", ".join(map(str, choices))


def refuse(name: str, value: Any, choices: Any, extra: str = "") -> None:
    """Raise the one-line error for a value outside its allowed choices (``extra``: what else is allowed)."""
    raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}{extra}; got {show(value)}")


def choose(name: str, value: Any, choices: Any, default: str | None = None) -> str:
    """One of ``choices``, case-insensitively (the canonical spelling is returned); a blank takes ``default`` when
    there is one; anything else is a one-line error naming ``name`` and the choices."""
    choices = tuple(choices)
    if default is not None and (value is None or (isinstance(value, str) and not value.strip())):
        return default
    if isinstance(value, str):
        for c in choices:
            if c.lower() == value.strip().lower():
                return c
    refuse(name, value, choices)


# Planner inputs (dsxl.planner): every numeric input's range, and the ranges of the searched lists.
PLAN_RANGES: dict[str, Range] = {
    "input_len": Range(1, 10_000_000), "output_len": Range(1, 10_000_000), "cache_hit": Range(0, 1),
    "output_tokens_per_s": Range(0, 1e12, lo_open=True), "requests_per_s": Range(0, 1e10, lo_open=True),
    "tpot_ms": Range(0, 1e6, lo_open=True), "min_tokens_per_s_per_user": Range(0, 1e6, lo_open=True),
    "ttft_ms": Range(0, 1e8, lo_open=True), "price_gpu_hour": Range(0, 1e6),
    "gpu_per_node": Range(1, 1024, integer=True),
    "mtp_draft": Range(1, 16, integer=True), "mtp_accept": Range(1, 17), "peak_to_average": Range(1, 100),
    "price_input_hit": Range(0, 1e6), "price_input_miss": Range(0, 1e6), "price_output": Range(0, 1e6),
    "budget_gpus": Range(1, 10_000_000, integer=True), "budget_nodes": Range(1, 1_000_000, integer=True),
    "arrival_cv": Range(0, 100, lo_open=True), "ttft_p90_ms": Range(0, 1e8, lo_open=True),
    "ttft_p99_ms": Range(0, 1e8, lo_open=True),
    "capital_per_gpu": Range(0, 1e7), "amortization_years": Range(0, 50, lo_open=True),
    "cost_of_capital": Range(0, 1), "electricity_per_kwh": Range(0, 10), "pue": Range(1, 5),
    "hosting_per_kw_month": Range(0, 1e5), "power_budget_mw": Range(0, 1e6, lo_open=True)}
MAX_LIST = 64  # values a list input takes: checked before any work, so a long list is a message, not a memory error
EP_SIZE = Range(1, 100_000, integer=True)
PLAN_LIST_RANGES: dict[str, Range] = {"ep_sizes": EP_SIZE, "attn_tp_sizes": Range(1, 1024, integer=True),
                                      "forward_sizes": Range(1, 100_000_000, integer=True),
                                      "batch_sizes": Range(1, 1_000_000, integer=True)}


def check(name: str, value: Any, rng: Range) -> Any:
    """Return ``value`` unchanged if every element is allowed, else raise ValueError naming it.

    Formulas (:class:`Expr`) pass through: the workbook checks them with data validation.
    Arrays are checked in one vectorised pass so sweeps stay fast.
    """
    if type(value) in (int, float):  # the hot scalar path: no numpy
        if not rng.ok(value):
            raise ValueError(f"{name} must be {rng.describe()}; got {show(value)}")
        return value
    if isinstance(value, Expr):
        return value
    message = f"{name} must be {rng.describe()}; got {{}}"
    if isinstance(value, (bool, np.bool_, str)) or value is None:
        raise ValueError(message.format(show(value)))
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(message.format(show(value))) from None
    if arr.ndim == 0:
        if not rng.ok(float(arr)):
            raise ValueError(message.format(show(float(arr))))
        return value
    bad = ~np.isfinite(arr)
    if rng.choices:
        bad |= ~np.isin(arr, rng.choices)
    else:
        if rng.integer:
            bad |= arr != np.floor(arr)
        if rng.lo is not None:
            bad |= (arr <= rng.lo) if rng.lo_open else (arr < rng.lo)
        if rng.hi is not None:
            bad |= arr > rng.hi
    if bad.any():
        raise ValueError(message.format(show(float(arr[bad].flat[0]))))
    return value


SHOWN = 80  # characters of a bad value a message echoes


def show(value: Any) -> str:
    """A value as a message shows it: numbers in short form (1e+30, 2.5, 128), anything else as its repr."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        try:
            return f"{float(value):g}"
        except OverflowError:  # an integer past a float's range: its digits, cut like any long text
            text = str(value)
            return text if len(text) <= SHOWN else f"{text[:12]}... ({len(text):,} digits)"
    text = repr(value)
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({len(text):,} characters)"  # a cell holds 32,767


def parse_number(name: str, text: str) -> float | int:
    """A number typed as text (CLI, CSV): whole numbers as int; a clear error naming ``name`` otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number; got {show(text)}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {show(text)}")
    return int(value) if value.is_integer() else value


def parse_optional_number(name: str, text: str) -> float | int | None:
    """The same for a data cell that may be blank (None)."""
    return None if text.strip() == "" else parse_number(name, text)
