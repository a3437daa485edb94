"""The options of a prediction, declared once, and the one place a request is checked and resolved.

:data:`OPTIONS` (name, default, allowed values, unit, phases) is what the CLI, the Python API, the UDFs and the
workbook's Predict sheet derive their arguments from; :func:`normalise` checks a request against it (ranges,
choices, switches, "auto") and :func:`check_consistency` the rules that tie options to each other, the model and
the GPU; :func:`request_env` resolves a checked request into the environment a chain runs on. Every numeric option
may be a numpy array (broadcast together), so a sweep is one request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence

import numpy as np

from dsxl.core.expr import Expr, both, divides, either, eq, where

from dsxl.data.catalog import (ENGINE_NUMBERS, FUSED_MOE_TOKENS, GPU, ModelArgs, default_engine, load_catalog,
                               load_engines, load_fused_moe, load_refined)
from dsxl.core.rules import GPU_FIELDS, NON_NEGATIVE, POSITIVE, Range, check, choose, show

PHASES = ("decode", "prefill", "aggregated")
MODES = ("refined", "article")
DTYPES = {"attn_dtype": {"fp8": 1, "bf16": 2}, "kv_dtype": {"fp8": 1, "bf16": 2}, "moe_dtype": {"fp8": 1, "fp4": 0.5}}
DTYPE_BYTES_NAME = {"attn_dtype": "attn_bytes", "kv_dtype": "kv_bytes", "moe_dtype": "moe_bytes"}


@dataclass(frozen=True)
class Option:
    name: str
    default: Any  # None = required
    rng: Range | None  # numeric options; None for text choices / flags
    unit: str
    phases: tuple[str, ...]
    doc: str
    choices: tuple[str, ...] = ()
    auto: bool = False  # also takes "auto" (a value derived from the other inputs)


_ALL = PHASES
_D, _P, _A = ("decode",), ("prefill",), ("aggregated",)
OPTIONS: tuple[Option, ...] = (
    Option("ep", None, Range(1, 100_000, integer=True), "GPUs", _ALL, "expert-parallel group size"),
    Option("batch", None, Range(1, 1_000_000, integer=True), "sequences per attention rank", _D + _A,
           "sequences decoding concurrently on each attention data-parallel rank (attn_tp GPUs; per GPU at attn_tp 1)"),
    Option("concurrency", None, Range(1, 100_000_000, integer=True), "requests per instance", _A,
           "requests in flight per instance, decoding or waiting for prefill (instead of batch)"),
    Option("max_num_tokens", "auto", Range(1, 10_000_000, integer=True), "tokens per attention rank", _A,
           "the engine's token budget per step (TensorRT-LLM max_num_tokens, vLLM max_num_batched_tokens, SGLang "
           "chunked-prefill-size; auto: the engine's default)", auto=True),
    Option("kv_len", None, Range(1, 10_000_000), "tokens", _D, "mean context (KV length) per sequence"),
    Option("tokens_per_gpu", None, Range(1, 100_000_000, integer=True), "tokens", _P,
           "prompt tokens per GPU per forward (cache hits included)"),
    Option("prompt_len", None, Range(1, 10_000_000), "tokens", _P, "prompt length"),
    Option("input_len", None, Range(1, 10_000_000), "tokens", _A, "mean prompt length"),
    Option("output_len", None, Range(1, 10_000_000), "tokens", _A, "mean output length"),
    Option("attn_tp", 1, Range(1, 1024, integer=True), "GPUs", _ALL, "attention tensor parallelism (1 = data parallel)"),
    Option("moe_tp", 1, Range(1, 1024, integer=True), "GPUs", _ALL,
           "MoE tensor parallelism: each expert split over this many GPUs (instance = ep x moe_tp GPUs)"),
    Option("engine", None, None, "", _ALL, "serving engine (templates/engines.json)", tuple(load_engines())),
    Option("tbo", None, None, "", _ALL, "two-batch overlap (default: on where the engine has it and it makes the step faster)"),
    Option("sbo", False, None, "", _D + _A, "single-batch overlap: combine hidden behind shared experts and down GEMM"),
    Option("mtp_draft", 0, Range(0, 16, integer=True), "tokens", _D + _A, "MTP draft tokens per step"),
    Option("mtp_accept", 1, Range(1, 17), "tokens per step", _D + _A, "mean tokens emitted per sequence per step"),
    Option("attn_dtype", "fp8", None, "", _ALL, "weights of attention and dense layers", ("fp8", "bf16")),
    Option("kv_dtype", "fp8", None, "", _ALL, "KV cache", ("fp8", "bf16")),
    Option("moe_dtype", None, None, "", _ALL, "expert weights (default: as the model ships them; FP4 runs at the "
           "FP8 rate on GPUs without FP4 tensor cores)", ("fp8", "fp4")),
    Option("imbalance", 1.0, Range(1, 100), "max/mean", _ALL, "expert load imbalance (1 = balanced)"),
    Option("redundant_experts", "auto", Range(0, 100_000, integer=True), "experts", _ALL,
           "redundant expert replicas in the EP group (auto: the fewest that make the group divide the experts)",
           auto=True),
    Option("cache_hit", 0.0, Range(0, 1, integer=False), "share", _P + _A, "prompt tokens served from the prefix cache"),
)
OPTION = {o.name: o for o in OPTIONS}


def options_for(phase: str) -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if phase in o.phases)


# ------------------------------------------------------------------------------------------- environment
def constants_env(generation: Any, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refined constants for a generation (or an array of generations), with optional overrides."""
    consts = load_refined()
    gens = np.asarray(generation)
    one = str(gens) if gens.ndim == 0 else None  # formatted once: str() of a numpy scalar is slow
    env: dict[str, Any] = {}
    for name, c in consts.items():
        if one is not None:
            if one not in c.values:
                raise ValueError(f"generation must be one of {', '.join(c.values)}; got {show(one)}")
            env[name] = c.values[one]
        else:
            env[name] = np.array([c.values[str(g)] for g in gens.ravel()]).reshape(gens.shape)
    for name, value in (overrides or {}).items():
        if name not in consts:
            raise ValueError(f"unknown refined constant {name!r}; allowed: {', '.join(consts)}")
        env[name] = check(name, value, constant_range(name))
    return env


MATH_MODE = Range(0, 1, integer=True)  # 1: the kernel multiplies in FP8, 0: in BF16


def constant_range(name: str) -> Range:
    """What a refined constant (or an engine number) may be: a kernel's math mode (``*_math``) is 0 or 1; fixed
    times, counts and overheads may be zero (a term switched off); efficiencies, shares, sizes and rates must be
    positive (they divide)."""
    if name.endswith("_math"):
        return MATH_MODE
    if name.endswith(("_us", "_ms", "_kernels")) or name in ENGINE_NUMBERS:
        return NON_NEGATIVE
    return POSITIVE


def model_args(model: str | ModelArgs | None) -> ModelArgs:
    if isinstance(model, str) and not model.strip():
        raise ValueError(f"model must be a preset ({', '.join(load_catalog().models)}) or a config.json path; got ''")
    return load_catalog().model(model)


def resolve_gpu(gpu: Any) -> GPU | list[GPU]:
    """A catalog GPU by name, a GPU record, or a list of them (a leading axis)."""
    if isinstance(gpu, GPU):
        return gpu
    if isinstance(gpu, str):
        return load_catalog().gpu(gpu)
    if isinstance(gpu, (list, tuple)) and gpu:
        return [resolve_gpu(g) for g in gpu]
    raise ValueError(f"gpu must be a catalog name ({', '.join(load_catalog().gpus)}), a GPU or a list of them; "
                     f"got {show(gpu)}")


def gpu_datasheet_env(gpu: GPU | Sequence[GPU]) -> dict[str, Any]:
    """Datasheet fields and the generation of one GPU or a list of GPUs (arrays)."""
    if isinstance(gpu, GPU):
        return {**{k: getattr(gpu, k) for k in GPU_FIELDS}, "gpu_name": gpu.name, "generation": gpu.generation}
    gpus = list(gpu)
    env = {k: np.array([getattr(g, k) for g in gpus], dtype=float) for k in GPU_FIELDS}
    env["gpu_name"] = np.array([g.name for g in gpus])
    env["generation"] = np.array([g.generation for g in gpus])
    return env


def _flag(name: str, value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.ndarray) and value.dtype == bool:
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be true or false; got {show(value)}")


def is_default(name: str, value: Any) -> bool:
    """Whether an option holds the value it has when not given (auto, the engine's, or its declared default)."""
    o = OPTION[name]
    if o.auto and isinstance(value, str):
        return True
    if name == "engine":
        return value == default_engine()
    if o.default is None:
        return name in ("tbo", "moe_dtype")  # resolved from the engine or the model
    return bool(np.all(np.asarray(value) == o.default))


def _is_auto(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() == "auto")


def normalise(phase: str, options: dict[str, Any], native_moe_dtype: str = "fp8") -> dict[str, Any]:
    """Validated options with defaults filled in (text choices stay as text; see :func:`option_env`);
    ``native_moe_dtype`` is the expert dtype the model ships, the default for moe_dtype."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}; got {show(phase)}")
    allowed = {o.name for o in options_for(phase)}
    for name in options:
        if name not in allowed:
            raise ValueError(f"unknown option {name!r} for {phase}; allowed: {', '.join(sorted(allowed))}")
    out: dict[str, Any] = {}
    engine = choose("engine", options.get("engine") or default_engine(), OPTION["engine"].choices)
    by_concurrency = phase == "aggregated" and options.get("concurrency") is not None
    if by_concurrency and options.get("batch") is not None:
        raise ValueError("give batch (sequences decoding per attention rank) or concurrency (requests in flight per "
                         "instance), not both")
    for o in options_for(phase):
        value = options.get(o.name, o.default)
        if isinstance(value, (list, tuple)):  # plain lists work wherever arrays do
            value = np.asarray(value)
        if o.name == "engine":
            value = engine
        elif o.name == "moe_dtype" and value is None:
            value = native_moe_dtype
        elif o.name == "tbo" and value is None:
            value = bool(load_engines()[engine].numbers["micro_batch_overlap"])
        elif o.auto and _is_auto(value):
            value = "auto"
        elif value is None and (o.name == "concurrency" or (o.name == "batch" and by_concurrency)):
            pass  # aggregated serving takes one of the two
        elif value is None:
            raise ValueError(f"{o.name} is required for {phase} ({o.doc}, {o.rng.describe() if o.rng else ''})")
        elif o.choices:
            value = choose(o.name, value, o.choices)
        elif o.rng is None:
            value = _flag(o.name, value)
        else:
            check(o.name, value, o.rng)
        out[o.name] = value
    return out


@dataclass(frozen=True)
class CrossRule:
    """A rule that ties options to each other, the model or the engine: ``ok`` over the chain's names (numbers,
    arrays or workbook cells, the redundant-experts code -1 meaning auto), and the one-line message naming the
    argument (formatted with the request's values in Python, shown as written in the workbook)."""

    argument: str
    ok: Callable[..., Any]
    message: str
    phases: tuple[str, ...] = PHASES


CROSS_RULES: tuple[CrossRule, ...] = (
    CrossRule("redundant_experts",
              lambda v: either(v["redundant_experts"] < 0, divides(v["ep"], v["n_routed_experts"] + v["redundant_experts"])),
              "redundant_experts must make n_routed_experts + redundant_experts a multiple of ep so every GPU holds "
              "whole experts; or auto"),
    CrossRule("attn_tp", lambda v: divides(v["attn_tp"], v["n_heads"]), "attn_tp must divide the model's n_heads"),
    CrossRule("moe_tp", lambda v: divides(v["moe_tp"], v["moe_inter_dim"]),
              "moe_tp must divide the experts' width moe_inter_dim"),
    CrossRule("attn_tp", lambda v: divides(v["attn_tp"], v["ep"] * v["moe_tp"]),
              "attn_tp must divide the instance's GPUs, ep x moe_tp"),
    CrossRule("tbo", lambda v: either(negate(v["tbo"]), v["micro_batch_overlap"] > 0),
              "tbo must be false with this engine (it has no two-batch overlap)"),
    CrossRule("sbo", lambda v: either(negate(v["sbo"]), v["single_batch_overlap"] > 0),
              "sbo must be false with this engine (it has no single-batch overlap)", ("decode", "aggregated")),
    CrossRule("mtp_accept", lambda v: v["mtp_accept"] <= 1 + v["mtp_draft"], "mtp_accept must be from 1 to 1 + mtp_draft",
              ("decode", "aggregated")),
    CrossRule("mtp_draft", lambda v: either(v["mtp_draft"] <= 0, v["n_mtp_layers"] > 0),
              "mtp_draft must be 0: this model ships no MTP module (n_mtp_layers = 0)", ("decode", "aggregated")),
)
MTP_ACCEPT_RULE = next(r for r in CROSS_RULES if r.argument == "mtp_accept")  # the planner checks it too


def engine_runs_on(engine: Any, generation: Any) -> Any:
    """Whether ``engine`` runs on GPUs of ``generation`` (each engine's ``generations`` in templates/engines.json):
    a truth value in Python, a formula over cells in the workbook."""
    engines = load_engines()
    if isinstance(engine, str) and isinstance(generation, str):  # Python: a lookup (the sweep's per-GPU check)
        return engine in engines and generation in engines[engine].text["generations"]
    runs: Any = False
    for name, e in engines.items():
        here: Any = False
        for g in e.text["generations"]:
            here = either(here, eq(generation, g))
        runs = either(runs, both(eq(engine, name), here))
    return runs


ENGINE_GENERATIONS_RULE = "engine must run on the GPU's generation"


def check_consistency(phase: str, opts: dict[str, Any], model: ModelArgs, gpu_env: dict[str, Any]) -> None:
    """Every cross rule of :data:`CROSS_RULES` on the request; the first broken one is a one-line error naming the
    argument and the values it saw."""
    engine = load_engines()[opts["engine"]]
    for gen, name in zip(np.ravel(gpu_env["generation"]), np.ravel(gpu_env["gpu_name"])):
        if not engine_runs_on(opts["engine"], str(gen)):
            raise ValueError(f"engine {opts['engine']} does not run on {name} ({gen}); it runs on "
                             f"{', '.join(engine.text['generations'])} GPUs")
    values = {**{f.name: getattr(model, f.name) for f in fields(model)}, **option_env(opts)}
    for rule in CROSS_RULES:
        if phase in rule.phases and not np.all(rule.ok(values)):
            named = [k for k in opts if re.search(rf"\b{k}\b", rule.message)]  # every option the rule names
            shown = {k: opts[k] for k in (*named, rule.argument) if k in opts}  # the values the rule reads
            raise ValueError(f"{rule.message}; got " + ", ".join(f"{k}={_shown(v)}" for k, v in shown.items()))


def _shown(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "[" + ", ".join(f"{x:g}" if isinstance(x, (int, float)) else str(x) for x in value.ravel()[:4]) + \
            (", ...]" if value.size > 4 else "]")
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def negate(x: Any) -> Any:
    """Logical not for numbers, arrays or workbook cells."""
    from dsxl.core.expr import Expr
    if isinstance(x, Expr):
        return Expr(f"NOT({x.text})")
    return np.logical_not(x) if np.ndim(x) else not x


def dtype_bytes(name: str, value: Any) -> Any:
    """Bytes per value of a dtype option; with a formula (a workbook cell) a nested IF over the same table."""
    from dsxl.core.expr import Expr, eq, where
    if isinstance(value, Expr):
        items = list(DTYPES[name].items())
        out: Any = items[-1][1]
        for choice, nbytes in reversed(items[:-1]):
            out = where(eq(value, choice), nbytes, out)
        return out
    return DTYPES[name][value]


def engine_numbers(engine: Any) -> dict[str, Any]:
    """The numeric fields of an engine profile; with a formula (a workbook cell) nested IFs over the profiles."""
    from dsxl.core.expr import Expr, eq, where
    engines = load_engines()
    if not isinstance(engine, Expr):
        return dict(engines[engine].numbers)
    out = {}
    for field in ENGINE_NUMBERS:
        items = [(name, e.numbers[field]) for name, e in engines.items()]
        value: Any = items[-1][1]
        for name, number in reversed(items[:-1]):
            value = where(eq(engine, name), number, value)
        out[field] = value
    return out


def redundant_code(value: Any) -> Any:
    """The chain's reading of redundant_experts: a count, or -1 for auto; a workbook cell holding "auto" or a
    number becomes IF(ISNUMBER(cell), cell, -1)."""
    from dsxl.core.expr import Expr, where
    if isinstance(value, Expr):
        return where(Expr(f"ISNUMBER({value.text})"), value, -1)
    return -1 if isinstance(value, str) else value


def option_env(opts: dict[str, Any]) -> dict[str, Any]:
    """Options by the names the refined chain reads (dtypes as bytes per value, the engine as its numbers)."""
    env = {}
    for name, value in opts.items():
        if name in DTYPES:
            env[DTYPE_BYTES_NAME[name]] = dtype_bytes(name, value)
        elif name == "engine":
            env.update(engine_numbers(value))
        elif name == "redundant_experts":
            env[name] = redundant_code(value)
        elif name == "concurrency":
            continue
        else:
            env[name] = value
    env.setdefault("mtp_draft", 0)  # prefill: the MTP module is neither loaded nor run
    env.setdefault("sbo", False)
    budget = env.get("max_num_tokens")
    if isinstance(budget, str):  # auto: the engine's own budget
        env["max_num_tokens"] = env["prefill_chunk_tokens"]
    elif isinstance(budget, Expr):  # a workbook cell: "auto" or a number
        env["max_num_tokens"] = where(eq(budget, "auto"), env["prefill_chunk_tokens"], budget)
    env.setdefault("moe_token_share", 1)  # aggregated serving: a prompt piece on one rank spreads over the group
    return env


FUSED_MOE_KEYS = ("fused_moe_ep",) + tuple(f"fused_moe_us_{t}" for t in FUSED_MOE_TOKENS)


def fused_moe_env(model_name: str | None, generation: Any) -> dict[str, Any]:
    """The chain's inputs for a model's measured fused MoE kernel (``templates/fused_moe.csv``) on a GPU generation
    (a name, an array of names or a workbook cell): its EP size and times, zeros where it has none."""
    from dsxl.core.expr import Expr, eq, where
    entry = load_fused_moe().get(model_name or "")
    if entry is None:
        return dict.fromkeys(FUSED_MOE_KEYS, 0)
    values = [entry["ep"]] + [entry["us"][t] for t in FUSED_MOE_TOKENS]
    if isinstance(generation, Expr):
        return {k: where(eq(generation, entry["generation"]), v, 0) for k, v in zip(FUSED_MOE_KEYS, values)}
    match = np.asarray(generation) == entry["generation"]
    return {k: np.where(match, v, 0) if match.ndim else (v if match else 0) for k, v in zip(FUSED_MOE_KEYS, values)}


def catalog_model_name(model: Any) -> str | None:
    """A preset's catalog name (any case), or None for a ModelArgs or a config.json path."""
    catalog = load_catalog()
    if model is None:
        return catalog.default_model
    if isinstance(model, str):
        return next((k for k in catalog.models if k.lower() == model.strip().lower()), None)
    return None


@dataclass(frozen=True)
class Resolved:
    """A request's GPU and model, each looked up in the catalog once at the surface; everything below reads this
    and never resolves a name again."""
    gpu: Any  # a GPU record, or a list of them (a leading axis)
    model: ModelArgs
    model_name: str  # the catalog's spelling of a preset, a config.json path as given, or "custom"
    preset: str | None  # the preset whose data rows apply (fused-MoE kernels), None for a config or ModelArgs

    @property
    def gpus(self) -> list[GPU]:
        return [self.gpu] if isinstance(self.gpu, GPU) else list(self.gpu)

    @property
    def gpu_name(self) -> str:
        """The catalog's spelling of the GPU (as echoed), or "several" for a list."""
        return self.gpu.name if isinstance(self.gpu, GPU) else "several"


def resolve(gpu: Any, model: str | ModelArgs | None) -> Resolved:
    """Look a request's GPU (first: an unknown GPU is the first thing to report) and model up, once."""
    if isinstance(gpu, Resolved):
        return gpu
    record = resolve_gpu(gpu)
    args = model_args(model)
    preset = catalog_model_name(model)
    name = preset or ("custom" if not isinstance(model, str) else model)
    return Resolved(record, args, name, preset)


def request_env(phase: str, request: Resolved, opts: dict[str, Any], constants: dict[str, Any] | None
                ) -> dict[str, Any]:
    """The refined chain's inputs for a resolved request and its checked options (``constants`` override)."""
    m = request.model
    genv = gpu_datasheet_env(request.gpu)
    if not isinstance(request.gpu, GPU):  # a list of GPUs adds a leading axis before the options' axes
        lead = (1,) * max([np.ndim(v) for v in opts.values()] + [0])
        genv = {k: np.reshape(v, (-1,) + lead) for k, v in genv.items()}
    check_consistency(phase, opts, m, genv)
    env = {f.name: getattr(m, f.name) for f in fields(m)}
    env.update(genv)
    env.update(fused_moe_env(request.preset, genv["generation"]))
    engine_overrides = {k: check(k, v, constant_range(k)) for k, v in (constants or {}).items() if k in ENGINE_NUMBERS}
    env.update(constants_env(genv["generation"], {k: v for k, v in (constants or {}).items()
                                                  if k not in ENGINE_NUMBERS}))
    env.update(option_env(opts))
    env.update(engine_overrides)
    return env



__all__ = ["OPTION", "OPTIONS", "PHASES", "MODES", "Option", "options_for", "normalise", "check_consistency",
           "request_env", "option_env", "constants_env", "constant_range", "model_args", "resolve_gpu", "resolve",
           "Resolved",
           "gpu_datasheet_env", "dtype_bytes", "engine_numbers", "is_default"]
