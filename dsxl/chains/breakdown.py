"""Where a refined step's time goes: the MoE layer's components, the overlap, the dense layer, the step's terms.

One body for ``dsxl predict``'s breakdown and the Predict sheet's: each function reads the chain's quantities (numbers,
arrays or workbook cells) and returns labelled parts that add up to the total they explain.
"""

from __future__ import annotations

from typing import Any

from dsxl.physics.serving import per_step

# component -> (chain quantity per micro-batch, label); the attention kernel's label names the GPU's own kernel
MOE_LAYER_PARTS = {
    "attention_projections": ("attn_proj_ms", "attention projections"),
    "attention_kernel": ("mla_core_ms", "attention kernel"),
    "dsa_indexer": ("indexer_ms", "DSA indexer"),
    "attention_allreduce": ("allreduce_ms", "attention-TP all-reduce"),
    "attention_elementwise": ("attn_act_ms", "attention elementwise"),
    "attention_launches": ("attn_launch_ms", "attention kernel launches"),
    "routed_experts": ("routed_ms", "routed experts"),
    "shared_experts": ("shared_ms", "shared experts"),
    "moe_elementwise": ("moe_act_ms", "MoE elementwise"),
    "moe_allreduce": ("moe_allreduce_ms", "MoE-TP all-reduce"),
    "moe_launches": ("moe_launch_ms", "MoE kernel launches"),
    "dispatch": ("dispatch_ms", "dispatch (all-to-all)"),
    "combine": ("combine_ms", "combine (all-to-all)"),
}
DENSE_LAYER_PARTS = {"attention": ("attn_ms", "attention path"), "dense_mlp": ("dense_mlp_ms", "DenseMLP")}
LABELS = {**{k: label for k, (_, label) in MOE_LAYER_PARTS.items()},
          "overlap": "overlap (negative: time hidden)", "moe_layer": "MoE layer, total",
          **{f"dense_{k}" if k == "attention" else k: label for k, (_, label) in DENSE_LAYER_PARTS.items()},
          "dense_layer": "dense layer, total", "moe_layers": "MoE layers", "dense_layers": "dense layers",
          "lm_head": "LM head + sampling", "mtp": "MTP drafting", "calibration": "calibration profile's scale",
          "engine_overhead": "engine overhead", "step": "forward step, total"}


def moe_layer_parts(q: dict[str, Any]) -> dict[str, Any]:
    """The MoE layer's components summed over the step's micro-batches, and ``overlap``: the layer as run less the
    same work run back to back (negative where TBO or SBO hides transfers; positive where compute slows beside
    them). Components plus overlap equal ``moe_layer_ms``."""
    mb = q["micro_batches"]
    parts = {k: per_step(q[name], mb) for k, (name, _) in MOE_LAYER_PARTS.items()}
    serial = per_step(q["attn_ms"] + q["moe_ms"] + q["dispatch_ms"] + q["combine_ms"], mb)
    return {**parts, "overlap": q["moe_layer_ms"] - serial}


def dense_layer_parts(q: dict[str, Any]) -> dict[str, Any]:
    """A dense layer: its attention path and its DenseMLP over the step's micro-batches (sum: ``dense_layer_ms``)."""
    return {"dense_attention" if k == "attention" else k: per_step(q[name], q["micro_batches"])
            for k, (name, _) in DENSE_LAYER_PARTS.items()}


def step_parts(q: dict[str, Any], phase: str) -> dict[str, Any]:
    """A forward step's terms: the layers, LM head, MTP, a calibration profile's scale of the GPU's work (0 when
    uncalibrated) and the engine's overhead (sum: ``step_ms``)."""
    moe_layers = (q["n_layers"] - q["n_dense_layers"]) * q["moe_layer_ms"]
    dense_layers = q["n_dense_layers"] * q["dense_layer_ms"]
    gpu_work = moe_layers + dense_layers + q["lm_head_ms"] + q["mtp_ms"]
    return {"moe_layers": moe_layers, "dense_layers": dense_layers, "lm_head": q["lm_head_ms"], "mtp": q["mtp_ms"],
            "calibration": (q[f"{phase}_time_scale"] - 1) * gpu_work, "engine_overhead": q["overhead_ms"]}
