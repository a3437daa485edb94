"""How much of a refined step rests on constants the evidence pins loosely, and the spread that gives its answer.

Each uncertain constant (``templates/fitted.json``: a fitted one's standard error, or the range of one the data could
not identify) sets some parts of the step (its ``step_parts``, named as in :mod:`dsxl.chains.breakdown`). Its share of
the step times its relative uncertainty is what it adds to the step's relative error; the constants add as
independent errors. One body for Python (numbers, arrays) and the workbook (``Expr``).
"""

from __future__ import annotations

from typing import Any, Sequence

from dsxl.chains.breakdown import MOE_LAYER_PARTS, moe_layer_parts, step_parts
from dsxl.core.expr import magnitude, where
from dsxl.physics.serving import per_step


def fixed_costs(q: dict[str, Any], phase: str) -> dict[str, Any]:
    """The step's fixed costs by the constant that sets each, ms per step: the engine's per-step floor and its
    per-request cost (the two terms of ``overhead_ms``), the GEMM and attention kernels' intercepts and the
    elementwise ops' tails in a captured decode graph (the two terms of the MoE layers' launch times)."""
    moe_layers = (q["n_layers"] - q["n_dense_layers"]) * q["micro_batches"]
    gemm = q["attn_gemm_kernels_n"] + q["moe_gemm_kernels"]
    ops = q["attn_kernels_n"] + q["moe_kernels"] - gemm
    tails = where(q["decode_graphs"], ops * q["graph_op_us"], 0) if phase == "decode" else 0
    return {"step_floor": q["step_overhead_ms"], "request_cost": q["overhead_ms"] - q["step_overhead_ms"],
            "kernel_intercepts": gemm * q["kernel_latency_us"] / 1000 * moe_layers,
            "graph_op_tails": tails / 1000 * moe_layers}


def part_shares(q: dict[str, Any], phase: str, parts: Sequence[str]) -> dict[str, Any]:
    """The share of the step of each of ``parts``: a MoE layer's component (or its overlap) over all MoE layers,
    one of the step's own terms (:func:`dsxl.chains.breakdown.step_parts`) or one of its :func:`fixed_costs`. Only
    the parts asked for are computed (the planner's searches run this over 10^5 cases)."""
    step = q["step_ms"]
    moe_layers = q["n_layers"] - q["n_dense_layers"]
    out = {}
    for p in parts:
        if p in MOE_LAYER_PARTS:
            out[p] = per_step(q[MOE_LAYER_PARTS[p][0]], q["micro_batches"]) * moe_layers / step
    if "overlap" in parts:
        out["overlap"] = moe_layer_parts(q)["overlap"] * moe_layers / step
    for group in (fixed_costs, step_parts):
        if set(parts) - set(out):
            terms = group(q, phase)
            out.update({p: terms[p] / step for p in parts if p in terms})
    return out


def constant_share(shares: dict[str, Any], parts: Sequence[str]) -> Any:
    """The share of the step a constant sets: the sum of its parts (a hidden overlap counts by its size)."""
    total: Any = 0
    for part in parts:
        total = total + magnitude(shares[part])
    return total


def spread(contributions: Sequence[Any]) -> Any:
    """The step's relative spread from independent contributions (each a share times an uncertainty)."""
    total: Any = 0
    for c in contributions:
        total = total + c * c
    return total ** 0.5


def widened_band(band: Any, step_spread: Any) -> Any:
    """A band widened by the step's own spread, both taken as independent relative errors."""
    return (band * band + step_spread * step_spread) ** 0.5
