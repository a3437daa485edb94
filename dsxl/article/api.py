"""The article's analytic model of DeepSeek-V3/R1 inference.

Low-level quantity functions live in :mod:`flops`, :mod:`hardware`, :mod:`prefill`, :mod:`decode`
and :mod:`memory`; :mod:`chain` strings them together. This module is the convenient front door:
every function accepts scalars or numpy arrays (broadcast together) and validates its inputs.
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from dsxl.data.catalog import GPU, ModelArgs, Scenario, load_catalog
from dsxl.core.rules import (BATCH, EXPERTS_PER_GPU, GPU_FIELDS, GPU_RANGES, RATE, SCENARIO_RANGES, TOKENS, TP, TP_CHOICES, check)
from dsxl.chains import article as chain
from dsxl.physics import flops
from dsxl.chains.step import run

__all__ = [
    "model_env", "gpu_env", "gpu_fields", "mla_flops", "mla_absorb_flops", "dense_mlp_gflops", "expert_gflops",
    "prefill_breakdown", "decode_breakdown", "max_batch_size", "decode_tpot_ms", "default_model",
    "default_scenario",
]


def default_model() -> ModelArgs:
    return load_catalog().model()


def default_scenario() -> Scenario:
    return load_catalog().scenario


def model_env(model: ModelArgs | None = None, scenario: Scenario | None = None) -> dict[str, Any]:
    """Model arguments and scenario inputs by the article's names (a fresh dict each call)."""
    if model is None and scenario is None:
        return dict(_default_env())
    return _env_of(model or default_model(), scenario or default_scenario())


@lru_cache(maxsize=1)
def _default_env() -> dict[str, Any]:
    return _env_of(default_model(), default_scenario())


def _env_of(model: ModelArgs, scenario: Scenario) -> dict[str, Any]:
    env = {f.name: getattr(model, f.name) for f in fields(model)}
    env.update({f.name: getattr(scenario, f.name) for f in fields(scenario) if f.name != "batch_sizes"})
    return env


def gpu_fields(gpu: GPU | Sequence[GPU]) -> dict[str, Any]:
    """A GPU's numeric fields by name, as given; a sequence of GPUs gives one numpy array per field."""
    if isinstance(gpu, GPU):
        env = {k: getattr(gpu, k) for k in GPU_FIELDS}
        env["gpu_name"] = gpu.name
        return env
    gpus = list(gpu)
    env = {k: np.array([getattr(g, k) for g in gpus], dtype=float) for k in GPU_FIELDS}
    env["gpu_name"] = np.array([g.name for g in gpus])
    return env


def gpu_env(gpu: GPU | Sequence[GPU], scenario: Scenario | None = None) -> dict[str, Any]:
    """A GPU's fields as the article's model sees them (80 % of datasheet TFLOPS and the article's overrides)."""
    catalog = load_catalog()
    if isinstance(gpu, GPU):
        return gpu_fields(catalog.article_view(gpu, scenario))
    return gpu_fields([catalog.article_view(g, scenario) for g in gpu])


def _model_args(model: ModelArgs | None) -> dict[str, Any]:
    model = model or default_model()
    return {f.name: getattr(model, f.name) for f in fields(model)}


@lru_cache(maxsize=None)
def _step_for(fn: Any) -> chain.Step:
    return chain.Step(fn.__name__, fn, fn.__name__)


def _call(fn: Any, model: ModelArgs | None, **given: Any) -> Any:
    return _step_for(fn).evaluate({**(_default_env() if model is None else _model_args(model)), **given})


def _mla(gemm_fn: Any, attn_fn: Any, q_len: Any, kv_len: Any, kv_cache_rate: Any,
         model: ModelArgs | None) -> tuple:
    check("q_len", q_len, TOKENS)
    check("kv_len", kv_len, TOKENS)
    check("kv_cache_rate", kv_cache_rate, RATE)
    gemm = _call(gemm_fn, model, q_len=q_len, kv_len=kv_len, kv_cache_rate=kv_cache_rate)
    attn = _call(attn_fn, model, q_len=q_len, kv_len=kv_len)
    return gemm + attn, gemm, attn


def mla_flops(q_len: Any, kv_len: Any, kv_cache_rate: Any = 0, model: ModelArgs | None = None) -> tuple:
    """Standard MLA GFLOPs for q_len queries over kv_len keys: (total, gemm_fp8, attn_fp16)."""
    return _mla(flops.mla_gemm_gflops, flops.mla_attn_gflops, q_len, kv_len, kv_cache_rate, model)


def mla_absorb_flops(q_len: Any, kv_len: Any, kv_cache_rate: Any = 0, model: ModelArgs | None = None) -> tuple:
    """Matrix-absorbed MLA GFLOPs: (total, gemm_fp8, attn_fp16)."""
    return _mla(flops.mla_absorb_gemm_gflops, flops.mla_absorb_attn_gflops, q_len, kv_len, kv_cache_rate, model)


def dense_mlp_gflops(tokens: Any, model: ModelArgs | None = None) -> Any:
    check("tokens", tokens, TOKENS)
    return _call(flops.dense_mlp_gflops, model, tokens=tokens)


def expert_gflops(tokens: Any, model: ModelArgs | None = None) -> Any:
    check("tokens", tokens, TOKENS)
    return _call(flops.expert_gflops, model, tokens=tokens)


def _check_gpu_env(env: dict[str, Any]) -> None:
    for name in GPU_FIELDS:
        check(name, env[name], GPU_RANGES[name])
    if np.any(np.asarray(env["comm_sm"]) >= np.asarray(env["sm"])):
        raise ValueError("comm_sm must be less than sm")


def prefill_breakdown(gpu: GPU | Sequence[GPU], tp: Any = 4, scenario: Scenario | None = None,
                      model: ModelArgs | None = None) -> dict[str, Any]:
    """Every prefill quantity (section 2) for one deployment: per-layer ms, totals, tokens/s per node, KV GB/s."""
    check("tp", tp, TP)
    env = {**model_env(model, scenario), **gpu_env(gpu, scenario), "tp": tp}
    _check_gpu_env(env)
    steps = chain.PREFILL_FLOPS + chain.PREFILL_EFFECTIVE + chain.PREFILL_GPU + chain.PREFILL_DEPLOY
    return run(steps, env)


def decode_breakdown(gpu: GPU | Sequence[GPU] | dict[str, Any], batch_size: Any,
                     scenario: Scenario | None = None, model: ModelArgs | None = None,
                     mla_tp: Any = "auto", absorb: bool = True, labels: bool = True,
                     **overrides: Any) -> dict[str, Any]:
    """Every decode quantity (section 3) for batch_size sequences per GPU.

    ``gpu`` may also be a dict of field arrays (see :func:`gpu_env`) for sweeps; ``overrides``
    replace scenario inputs (e.g. ``seq_len=np.array([...])``) and broadcast with everything else.
    ``mla_tp`` is ``"auto"`` (the article's rule) or 1, 4, 8.
    """
    check("batch_size", batch_size, BATCH)
    genv = gpu if isinstance(gpu, dict) else gpu_env(gpu, scenario)
    env = {**model_env(model, scenario), **genv, "batch_size": batch_size}
    _apply_overrides(env, overrides)
    if not isinstance(gpu, GPU):  # a GPU was validated when it was built
        _check_gpu_env(env)
    auto = isinstance(mla_tp, str) and mla_tp == "auto"
    if not auto:
        check("mla_tp", mla_tp, TP_CHOICES)
        env["mla_tp"] = mla_tp
    return run(_decode_steps(bool(absorb), auto, bool(labels)), env)


@lru_cache(maxsize=8)
def _decode_steps(absorb: bool, auto_tp: bool, labels: bool) -> list[chain.Step]:
    """The decode chain, built once per variant (Step objects cache their signatures)."""
    skip = ({"mla_tp"} if not auto_tp else set()) | ({"label"} if not labels else set())
    flops_steps = chain.DECODE_FLOPS[:2] if absorb else chain.DECODE_FLOPS[2:]
    steps = flops_steps + chain.DECODE_EFFECTIVE + chain.DECODE_GPU + chain.decode_batch_steps(absorb)
    return [s for s in steps if s.name not in skip]


def _apply_overrides(env: dict[str, Any], overrides: dict[str, Any]) -> None:
    for name, value in overrides.items():
        if name not in SCENARIO_RANGES:
            raise ValueError(f"unknown scenario input {name!r}; allowed: {', '.join(SCENARIO_RANGES)}")
        env[name] = check(name, value, SCENARIO_RANGES[name])


def decode_tpot_ms(gpu: GPU, batch_size: Any, scenario: Scenario | None = None, model: ModelArgs | None = None,
                   mla_tp: Any = "auto", overlap: bool = True) -> Any:
    """Time per output token (ms) with the article's decode settings."""
    q = decode_breakdown(gpu, batch_size, scenario, model, mla_tp=mla_tp, labels=False)
    return q["tpot_overlap_ms"] if overlap else q["tpot_ms"]


def max_batch_size(gpu: GPU | Sequence[GPU], tp: Any = 1, experts_per_gpu: Any = 3, absorb: Any = True,
                   kv_fp16: Any = False, scenario: Scenario | None = None,
                   model: ModelArgs | None = None, **overrides: Any) -> dict[str, Any]:
    """KV capacity (section 3.2): returns kv_bytes_per_seq, free_mem_gb and the unrounded max_batch.

    ``overrides`` replace scenario inputs (e.g. ``seq_len``, ``decode_len``) and may be arrays.
    """
    check("tp", tp, TP)
    check("experts_per_gpu", experts_per_gpu, EXPERTS_PER_GPU)
    env = {**model_env(model, scenario), **gpu_env(gpu, scenario), "tp": tp, "experts_per_gpu": experts_per_gpu,
           "absorb": absorb, "kv_bytes": np.where(kv_fp16, 2, 1) if np.ndim(kv_fp16) else (2 if kv_fp16 else 1)}
    _apply_overrides(env, overrides)
    _check_gpu_env(env)
    return run(chain.MAX_BATCH, env)
