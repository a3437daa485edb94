"""The article's model answering ``predict`` requests, for side-by-side comparison with the refined model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dsxl.data.catalog import ModelArgs, load_catalog
from dsxl.article.api import decode_breakdown, max_batch_size, prefill_breakdown
from dsxl.physics.prefill import tps_per_gpu


# The options the article's model reads, per phase (it has no MTP, MoE TP, FP4, imbalance or engine; its prefill
# takes one prompt per forward, so tokens_per_gpu only sizes nothing).
ARTICLE_OPTIONS = {"decode": ("ep", "attn_tp", "batch", "kv_len", "tbo", "kv_dtype", "redundant_experts"),
                   "prefill": ("ep", "attn_tp", "prompt_len", "cache_hit", "tbo", "tokens_per_gpu"),
                   "aggregated": ()}


def predict_article(phase: str, gpu: Any, model: ModelArgs, opts: dict[str, Any]) -> dict[str, Any]:
    """decode and prefill through the article's chains (its 80 % TFLOPS share, discount_rate, TP rule)."""
    from dsxl.inputs.request import resolve_gpu

    g = resolve_gpu(gpu)
    scenario = load_catalog().scenario
    tp = opts["attn_tp"]
    if phase == "decode":
        mla_tp = tp if tp in (1, 4, 8) else "auto"
        q = decode_breakdown(g, opts["batch"], model=model, mla_tp=mla_tp, labels=False, seq_len=opts["kv_len"])
        redundant = opts["redundant_experts"]
        if isinstance(redundant, str):  # auto: the fewest replicas that divide evenly
            redundant = opts["ep"] * -np.floor_divide(-model.n_routed_experts, opts["ep"]) - model.n_routed_experts
        experts = (model.n_routed_experts + redundant) / opts["ep"] + model.n_shared_experts
        mb = max_batch_size(g, tp, experts, True, opts["kv_dtype"] == "bf16", model=model, seq_len=opts["kv_len"],
                            decode_len=0)["max_batch"]
        max_batch = np.maximum(np.floor(mb), 0)
        tpot = q["tpot_overlap_ms"] if opts["tbo"] else q["tpot_ms"]
        return {"tpot_ms": tpot, "tokens_per_s_per_user": 1000 / tpot, "tokens_per_s_per_gpu": 1000 / tpot * opts["batch"],
                "max_batch": max_batch, "fits": opts["batch"] <= max_batch, "step_ms": tpot, "weights_gb": None,
                "kv_seq_gb": None,
                "breakdown": {"per_layer_ms": {k: q[k] for k in ("sparse_mla_ms", "dense_mla_ms", "dense_mlp_ms",
                                                               "shared_expert_ms", "routed_expert_ms", "dispatch_ms",
                                                               "combine_ms")},
                              "layer_ms": None, "step_ms": None, "layers": None}}
    if phase == "prefill":
        ep = opts["ep"]
        per_node = min(ep, scenario.gpu_per_node)
        s = replace(scenario, seq_len=opts["prompt_len"], kv_cache_rate=opts["cache_hit"], num_node=max(ep // per_node, 1),
                    gpu_per_node=per_node, dispatch_node=max(ep // per_node, 1))
        q = prefill_breakdown(g, tp, s, model)
        step = q["sum_overlap_ms"] if opts["tbo"] else q["sum_ms"]
        per_gpu = tps_per_gpu(q["tps_overlap_node"] if opts["tbo"] else q["tps_node"], s.gpu_per_node)
        return {"tokens_per_s_per_gpu": per_gpu, "computed_tokens_per_s": per_gpu * (1 - opts["cache_hit"]),
                "step_ms": step, "ttft_ms": step, "fits": None, "weights_gb": None,
                "breakdown": {"per_layer_ms": None, "layer_ms": None, "step_ms": None, "layers": None},
                "reason": "the article's prefill has no memory model: fits is not estimated"}
    raise ValueError("mode article covers decode and prefill; use mode refined for aggregated serving")
