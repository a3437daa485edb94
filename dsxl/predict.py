"""Front door of the refined model (and of the article's, for comparison): ``predict(phase, gpu, **options)``.

Options are declared once in :data:`OPTIONS` (name, default, allowed values, unit, phases); the CLI, the UDFs and
the workbook's Predict sheet derive their arguments from it. Every numeric option may be a numpy array
(broadcast together), so a sweep is one call.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np

from .accuracy import accuracy
from .config import ENGINE_NUMBERS, GPU, ModelArgs, default_engine, load_catalog, load_engines, load_refined
from .model import refined_chain
from .model.serving import per_step, prefill_chunks, ttft_ms
from .model.chain import run
from .validate import GPU_FIELDS, NON_NEGATIVE, POSITIVE, Range, check

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
    Option("tbo", None, None, "", _ALL, "two-batch overlap (default: on where the engine has it)"),
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
    env: dict[str, Any] = {}
    for name, c in consts.items():
        if gens.ndim == 0:
            if str(gens) not in c.values:
                raise ValueError(f"generation must be one of {', '.join(c.values)}; got {str(gens)!r}")
            env[name] = c.values[str(gens)]
        else:
            env[name] = np.array([c.values[str(g)] for g in gens.ravel()]).reshape(gens.shape)
    for name, value in (overrides or {}).items():
        if name not in consts:
            raise ValueError(f"unknown refined constant {name!r}; allowed: {', '.join(consts)}")
        env[name] = check(name, value, constant_range(name))
    return env


def constant_range(name: str) -> Range:
    """What a refined constant (or an engine number) may be: fixed times, counts and overheads may be zero (a term
    switched off); efficiencies, shares, sizes and rates must be positive (they divide)."""
    if name.endswith(("_us", "_ms", "_kernels")) or name in ENGINE_NUMBERS:
        return NON_NEGATIVE
    return POSITIVE


def model_args(model: str | ModelArgs | None) -> ModelArgs:
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
                     f"got {gpu!r}")


def gpu_datasheet_env(gpu: GPU | Sequence[GPU]) -> dict[str, Any]:
    """Datasheet fields and the generation of one GPU or a list of GPUs (arrays)."""
    if isinstance(gpu, GPU):
        return {**{k: getattr(gpu, k) for k in GPU_FIELDS}, "gpu_name": gpu.name, "generation": gpu.generation}
    gpus = list(gpu)
    env = {k: np.array([getattr(g, k) for g in gpus], dtype=float) for k in GPU_FIELDS}
    env["gpu_name"] = np.array([g.name for g in gpus])
    env["generation"] = np.array([g.generation for g in gpus])
    return env


def _choice(name: str, value: Any) -> str:
    opt = OPTION[name]
    if isinstance(value, str) and value.strip().lower() in opt.choices:
        return value.strip().lower()
    raise ValueError(f"{name} must be one of {', '.join(opt.choices)}; got {value!r}")


def _flag(name: str, value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.ndarray) and value.dtype == bool:
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be true or false; got {value!r}")


def _is_default(name: str, value: Any) -> bool:
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
        raise ValueError(f"phase must be one of {', '.join(PHASES)}; got {phase!r}")
    allowed = {o.name for o in options_for(phase)}
    for name in options:
        if name not in allowed:
            raise ValueError(f"unknown option {name!r} for {phase}; allowed: {', '.join(sorted(allowed))}")
    out: dict[str, Any] = {}
    engine = _choice("engine", options.get("engine") or default_engine())
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
        elif value is None:
            raise ValueError(f"{o.name} is required for {phase} ({o.doc}, {o.rng.describe() if o.rng else ''})")
        elif o.choices:
            value = _choice(o.name, value)
        elif o.rng is None:
            value = _flag(o.name, value)
        else:
            check(o.name, value, o.rng)
        out[o.name] = value
    return out


def _consistency(phase: str, opts: dict[str, Any], model: ModelArgs, gpu_env: dict[str, Any]) -> None:
    """Cross-option rules, each a one-line message naming the argument."""
    ep, moe_tp, attn_tp = (np.asarray(opts[k]) for k in ("ep", "moe_tp", "attn_tp"))
    if not isinstance(opts["redundant_experts"], str):
        experts = model.n_routed_experts + np.asarray(opts["redundant_experts"])
        if np.any(experts % ep != 0):
            raise ValueError(f"redundant_experts must make n_routed_experts + redundant_experts ({model.n_routed_experts}"
                             f" + {opts['redundant_experts']}) a multiple of ep ({opts['ep']}) so every GPU holds "
                             "whole experts; or auto")
    if np.any(model.n_heads % attn_tp != 0):
        raise ValueError(f"attn_tp must divide n_heads ({model.n_heads}); got {opts['attn_tp']}")
    if np.any(model.moe_inter_dim % moe_tp != 0):
        raise ValueError(f"moe_tp must divide the experts' width moe_inter_dim ({model.moe_inter_dim}); "
                         f"got {opts['moe_tp']}")
    if np.any((ep * moe_tp) % attn_tp != 0):
        raise ValueError(f"attn_tp must divide the instance's GPUs, ep x moe_tp ({opts['ep']} x {opts['moe_tp']}); "
                         f"got {opts['attn_tp']}")
    engine = load_engines()[opts["engine"]]
    if np.any(np.asarray(opts["tbo"])) and not engine.numbers["micro_batch_overlap"]:
        raise ValueError(f"tbo must be false with engine {opts['engine']}: {engine.sources['micro_batch_overlap']}")
    if "sbo" in opts and np.any(np.asarray(opts["sbo"])) and not engine.numbers["single_batch_overlap"]:
        raise ValueError(f"sbo must be false with engine {opts['engine']}: {engine.sources['single_batch_overlap']}")
    if "mtp_draft" in opts:
        draft, accept = np.asarray(opts["mtp_draft"]), np.asarray(opts["mtp_accept"])
        if np.any(accept > 1 + draft):
            raise ValueError(f"mtp_accept must be from 1 to 1 + mtp_draft ({1 + draft.max():g}); got {opts['mtp_accept']}")
        if np.any(draft > 0) and model.n_mtp_layers == 0:
            raise ValueError("mtp_draft must be 0: this model ships no MTP module (n_mtp_layers = 0)")


def dtype_bytes(name: str, value: Any) -> Any:
    """Bytes per value of a dtype option; with a formula (a workbook cell) a nested IF over the same table."""
    from .expr import Expr, eq, where
    if isinstance(value, Expr):
        items = list(DTYPES[name].items())
        out: Any = items[-1][1]
        for choice, nbytes in reversed(items[:-1]):
            out = where(eq(value, choice), nbytes, out)
        return out
    return DTYPES[name][value]


def engine_numbers(engine: Any) -> dict[str, Any]:
    """The numeric fields of an engine profile; with a formula (a workbook cell) nested IFs over the profiles."""
    from .expr import Expr, eq, where
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
    from .expr import Expr, where
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
        else:
            env[name] = value
    env.setdefault("mtp_draft", 0)  # prefill: the MTP module is neither loaded nor run
    env.setdefault("sbo", False)
    return env


def request_env(phase: str, gpu: Any, model: str | ModelArgs | None, opts: dict[str, Any],
                constants: dict[str, Any] | None) -> dict[str, Any]:
    m = model_args(model)
    genv = gpu_datasheet_env(resolve_gpu(gpu))
    if not isinstance(gpu, (str, GPU)):  # a list of GPUs adds a leading axis before the options' axes
        lead = (1,) * max([np.ndim(v) for v in opts.values()] + [0])
        genv = {k: np.reshape(v, (-1,) + lead) for k, v in genv.items()}
    _consistency(phase, opts, m, genv)
    env = {f.name: getattr(m, f.name) for f in fields(m)}
    env.update(genv)
    engine_overrides = {k: check(k, v, constant_range(k)) for k, v in (constants or {}).items() if k in ENGINE_NUMBERS}
    env.update(constants_env(genv["generation"], {k: v for k, v in (constants or {}).items()
                                                  if k not in ENGINE_NUMBERS}))
    env.update(option_env(opts))
    env.update(engine_overrides)
    if phase == "aggregated":
        from .model.attention import mean_decode_context
        env["kv_len"] = mean_decode_context(opts["input_len"], opts["output_len"])
    return env


# ------------------------------------------------------------------------------------------- outputs
BREAKDOWN = {  # per-layer ms by component, per step (both micro-batches)
    "attention_projections": "attn_proj_ms", "attention_kernel": "mla_core_ms", "dsa_indexer": "indexer_ms",
    "attention_allreduce": "allreduce_ms", "attention_launches": "attn_launch_ms", "routed_experts": "routed_ms",
    "shared_experts": "shared_ms", "moe_launches": "moe_launch_ms", "dispatch": "dispatch_ms", "combine": "combine_ms",
    "dense_mlp": "dense_mlp_ms",
}
LAYER_TOTALS = {"moe_layer": "moe_layer_ms", "dense_layer": "dense_layer_ms"}
STEP_TERMS = {"lm_head": "lm_head_ms", "mtp": "mtp_ms", "engine_overhead": "overhead_ms", "step": "step_ms"}


def _breakdown(q: dict[str, Any]) -> dict[str, Any]:
    per_layer = {k: per_step(q[v], q["micro_batches"]) for k, v in BREAKDOWN.items()}
    return {"per_layer_ms": per_layer, "layer_ms": {k: q[v] for k, v in LAYER_TOTALS.items()},
            "step_ms": {k: q[v] for k, v in STEP_TERMS.items()},
            "layers": {"moe": q["n_sparse_layers"], "dense": q["n_dense_layers"]}}


def _reason_decode(q: dict[str, Any]) -> str:
    if q["weights_gb"] >= q["mem"] * q["mem_util"]:
        return (f"weights alone need {q['weights_gb']:.1f} GB of the {q['mem'] * q['mem_util']:.1f} GB usable; "
                "raise ep or use fp4 experts")
    return (f"batch {q['batch']:g} needs {q['batch'] * q['kv_seq_gb']:.1f} GB of KV; {q['kv_budget_gb']:.1f} GB "
            f"free after {q['weights_gb']:.1f} GB of weights holds {q['max_batch']:g} sequences")


def _broadcast(out: dict[str, Any], copy: bool = True) -> dict[str, Any]:
    """Every array result in the request's full broadcast shape (read-only views unless ``copy``); scalars as plain
    Python numbers."""
    arrays = [v for v in out.values() if isinstance(v, np.ndarray) and v.ndim]
    if not arrays:
        return {k: (_scalar(v) if not isinstance(v, dict) else v) for k, v in out.items()}
    shape = np.broadcast_shapes(*[a.shape for a in arrays])
    view = {k: v if isinstance(v, dict) else np.broadcast_to(v, shape) for k, v in out.items()}
    return {k: v.copy() if copy and isinstance(v, np.ndarray) else v for k, v in view.items()}


def _scalar(x: Any) -> Any:
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    if isinstance(x, np.generic):
        x = x.item()
    return x


def predict(phase: str, gpu: Any, model: str | ModelArgs | None = None, mode: str = "refined",
            constants: dict[str, Any] | None = None, fixed: dict[str, Any] | None = None, *,
            detail: bool = True, **options: Any) -> dict[str, Any]:
    """Predict one phase on one GPU (or a list of GPUs, a leading axis); options as in :data:`OPTIONS`
    (scalars or arrays, broadcast together).

    decode: ``tpot_ms``, ``tokens_per_s_per_user``, ``tokens_per_s_per_gpu``, ``max_batch``, ``fits``,
    ``breakdown``; prefill: ``tokens_per_s_per_gpu``, ``step_ms``, ``ttft_ms``, ``fits``; aggregated:
    ``output_tokens_per_s_per_gpu``, ``tokens_per_s_per_user``, ``fits``. Every result carries ``inputs``
    (defaults included), ``mode`` and, for an infeasible scalar request, ``reason``. ``constants`` overrides
    refined constants by name (what-ifs); ``fixed`` pins chain quantities (ablations, see :mod:`dsxl.validation`).
    ``detail=False`` (searches) leaves out the breakdown and returns read-only broadcast views.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    resolve_gpu(gpu)  # an unknown GPU is the first thing to report
    opts = normalise(phase, options, model_args(model).native_moe_dtype)
    inputs = {"phase": phase, "gpu": gpu if isinstance(gpu, str) else getattr(gpu, "name", "several"),
              "model": model if isinstance(model, str) else load_catalog().default_model if model is None else "custom",
              "mode": mode, **{k: _scalar(v) for k, v in opts.items()}}
    if mode == "article":
        from .article_predict import ARTICLE_OPTIONS, predict_article
        unmodelled = [k for k, v in opts.items() if k not in ARTICLE_OPTIONS[phase] and k in options
                      and not _is_default(k, v)]
        if unmodelled:
            raise ValueError(f"--mode article does not model {', '.join(unmodelled)} (the refined model does); "
                             f"it takes {', '.join(ARTICLE_OPTIONS[phase])}")
        inputs = {k: v for k, v in inputs.items() if k in ("phase", "gpu", "model", "mode") or
                  k in ARTICLE_OPTIONS[phase]}
        return {"inputs": inputs, "reason": None, **predict_article(phase, gpu, model_args(model), opts),
                "accuracy": ARTICLE_ACCURACY}
    env = request_env(phase, gpu, model, opts, constants)
    decode_steps, prefill_steps = refined_chain.chains(model_args(model))
    if phase == "decode":
        q = run(decode_steps, env, fixed)
        resolved = q
        out = {"tpot_ms": q["tpot_ms"], "tokens_per_s_per_user": q["tokens_per_s_per_user"],
               "tokens_per_s_per_gpu": q["tokens_per_s_per_gpu"], "max_batch": q["max_batch"], "fits": q["fits"],
               "step_ms": q["step_ms"], "weights_gb": q["weights_gb"], "kv_seq_gb": q["kv_seq_gb"]}
        reason = _reason_decode(q) if np.ndim(q["fits"]) == 0 and not q["fits"] else None
    elif phase == "prefill":
        q = resolved = run(prefill_steps, env, fixed)
        out = {"tokens_per_s_per_gpu": q["tokens_per_s_per_gpu"], "computed_tokens_per_s": q["computed_tokens_per_s"],
               "step_ms": q["step_ms"], "ttft_ms": q["ttft_ms"], "fits": q["fits"], "weights_gb": q["weights_gb"]}
        reason = None
        if np.ndim(q["fits"]) == 0 and not q["fits"]:
            usable = q["mem"] * q["mem_util"]
            if q["weights_gb"] >= usable:
                reason = (f"weights alone need {q['weights_gb']:.1f} GB of the {usable:.1f} GB usable; raise ep or use "
                          "fp4 experts")
            else:
                reason = (f"prompts of {opts['prompt_len']:g} tokens in forwards of {opts['tokens_per_gpu']:g} need "
                          f"{q['kv_forward_gb']:.1f} GB of KV and {q['activation_gb']:.1f} GB of activations; "
                          f"{usable - q['weights_gb']:.1f} GB are free after {q['weights_gb']:.1f} GB of weights")
    else:
        out, reason, resolved = _aggregated(env, opts, fixed, decode_steps, prefill_steps)
    if isinstance(opts["redundant_experts"], str):  # auto: echo the count used
        inputs["redundant_experts"] = _scalar(resolved["redundant_used"])
    if detail and phase != "aggregated":
        out["breakdown"] = _breakdown(resolved)
    out = _broadcast(out, copy=detail)
    return {"inputs": inputs, **out, "accuracy": _accuracy(phase, gpu, model, opts), "reason": reason}


ARTICLE_ACCURACY = {"band": None, "basis": [], "validated": False, "regime": None,
                    "note": "the article's model is the teaching reference, not calibrated: dsxl validate shows its "
                            "errors (C1 +45 %)"}


def _accuracy(phase: str, gpu: Any, model: str | ModelArgs | None, opts: dict[str, Any]) -> Any:
    """The expected error of this request (a list, one per GPU, for a list of GPUs)."""
    if not isinstance(gpu, (str, GPU)):
        return [_accuracy(phase, g, model, opts) for g in gpu]
    context = opts.get("kv_len", opts.get("prompt_len", opts.get("input_len")))
    name = model if isinstance(model, str) else load_catalog().default_model if model is None else "custom"
    return accuracy(phase, resolve_gpu(gpu).generation, opts["engine"], name, context, opts.get("batch"),
                    opts["tbo"], opts["moe_dtype"], opts.get("mtp_draft", 0))


def quantities(phase: str, gpu: Any, model: str | ModelArgs | None = None, constants: dict[str, Any] | None = None,
               **options: Any) -> dict[str, Any]:
    """Every intermediate quantity of the refined decode or prefill chain (the workbook's audit trail)."""
    if phase not in ("decode", "prefill"):
        raise ValueError(f"phase must be decode or prefill; got {phase!r}")
    env = request_env(phase, gpu, model, normalise(phase, options, model_args(model).native_moe_dtype), constants)
    decode_steps, prefill_steps = refined_chain.chains(model_args(model))
    return run(decode_steps if phase == "decode" else prefill_steps, env)


SHARED_WITH_DECODE = {name: 0 for name in ("attn_proj_gb", "routed_gb", "shared_gb", "dense_gb", "lm_head_gb",
                                           "attn_launch_ms", "moe_launch_ms", "dense_launch_ms")}


def _aggregated(env: dict[str, Any], opts: dict[str, Any], fixed: dict[str, Any] | None, decode_steps: list[Any],
                prefill_steps: list[Any]) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """Prefill and decode on the same GPUs: each decode step is followed, on average, by the prompt tokens that
    keep the batch full (``chunk`` per GPU). Engines that mix them into one forward (``mixed_prefill``) add the
    chunk's compute, attention, elementwise traffic and all-to-all to the decode step but no weight reads or
    launches of its own; the others run prefill forwards of ``prefill_chunk_tokens`` per attention rank between
    decode steps, whose time is shared over the steps they feed."""
    d = run(decode_steps, env, fixed)
    emitted = d["seqs_per_gpu"] * np.asarray(opts["mtp_accept"])  # output tokens per step per GPU
    chunk = np.maximum(emitted * np.asarray(opts["input_len"]) / np.asarray(opts["output_len"]), 1)
    mixed = np.asarray(env["mixed_prefill"]) > 0
    forward = np.where(mixed, chunk, np.maximum(chunk, np.asarray(env["prefill_chunk_tokens"]) / env["attn_tp"]))
    penv = dict(env, tokens_per_gpu=forward, prompt_len=opts["input_len"], cache_hit=opts["cache_hit"])
    p_mixed = run(prefill_steps, penv, {**SHARED_WITH_DECODE, **(fixed or {})})
    p_alone = run(prefill_steps, penv, fixed)
    prefill = np.where(mixed, p_mixed["step_ms"] - p_mixed["lm_head_ms"] - p_mixed["overhead_ms"],
                       p_alone["step_ms"] * chunk / forward)
    step = d["step_ms"] + prefill
    per_user = 1000 * np.asarray(opts["mtp_accept"]) / step
    chunks = prefill_chunks(opts["input_len"], opts["cache_hit"], forward)
    out = {"output_tokens_per_s_per_gpu": per_user * d["seqs_per_gpu"], "tokens_per_s_per_user": per_user,
           "step_ms": step, "ttft_ms": ttft_ms(step, chunks, env["ttft_queue_factor"]), "decode_step_ms": d["step_ms"],
           "prefill_chunk_tokens": chunk, "max_batch": d["max_batch"], "fits": d["fits"]}
    reason = _reason_decode(d) if np.ndim(d["fits"]) == 0 and not d["fits"] else None
    return out, reason, d


__all__ = ["predict", "quantities", "OPTIONS", "PHASES", "constants_env", "model_args", "resolve_gpu"]
