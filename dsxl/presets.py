"""Model presets of the MLA + MoE family: Hugging Face ``config.json`` import and printed checks."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from .config import ModelArgs, load_catalog
from .model import attention, moe

SUPPORTED = ("DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM", "KimiK25ForConditionalGeneration",
             "GlmMoeDsaForCausalLM")
SUPPORTED_TYPES = ("deepseek_v3", "deepseek_v32", "kimi_k2", "glm_moe_dsa")
# ModelArgs name <- config.json name
HF_NAMES = {"dim": "hidden_size", "inter_dim": "intermediate_size", "moe_inter_dim": "moe_intermediate_size",
            "n_layers": "num_hidden_layers", "n_dense_layers": "first_k_dense_replace",
            "n_heads": "num_attention_heads", "n_routed_experts": "n_routed_experts",
            "n_shared_experts": "n_shared_experts", "n_activated_experts": "num_experts_per_tok",
            "n_expert_groups": "n_group", "n_limited_groups": "topk_group", "route_scale": "routed_scaling_factor",
            "q_lora_rank": "q_lora_rank", "kv_lora_rank": "kv_lora_rank", "qk_nope_head_dim": "qk_nope_head_dim",
            "qk_rope_head_dim": "qk_rope_head_dim", "v_head_dim": "v_head_dim", "vocab_size": "vocab_size",
            "index_n_heads": "index_n_heads", "index_head_dim": "index_head_dim", "index_topk": "index_topk",
            "n_mtp_layers": "num_nextn_predict_layers"}
OPTIONAL = {"n_expert_groups": 1, "n_limited_groups": 1, "route_scale": 1.0, "index_n_heads": 0,
            "index_head_dim": 0, "index_topk": 0, "n_mtp_layers": 0}


def _text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    archs = cfg.get("architectures") or []
    kind = cfg.get("model_type", "")
    if not (set(archs) & set(SUPPORTED) or kind in SUPPORTED_TYPES):
        raise ValueError(f"config.json architecture must be one of {', '.join(SUPPORTED)} (model_type "
                         f"{', '.join(SUPPORTED_TYPES)}); got {archs or kind!r}")
    return cfg.get("text_config") or cfg


def model_from_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a Hugging Face config of this family (a nested ``text_config`` is read for Kimi-K2.5+)."""
    text = _text_config(cfg)
    args = {}
    for name, hf in HF_NAMES.items():
        value = text.get(hf)
        if value is None:
            if name not in OPTIONAL:
                raise ValueError(f"config.json lacks {hf} (needed for {name}); MLA with a q_lora_rank is required")
            value = OPTIONAL[name]
        args[name] = value
    return ModelArgs(**args)


def load_model(path: str | Path) -> ModelArgs:
    """``dsxl.load_model("path/config.json")``: a model of this family from its Hugging Face config."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"model config {str(p)!r} does not exist")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"model config {str(p)!r} is not valid JSON: {exc.msg}") from None
    return model_from_config(cfg)


def parameter_counts(m: ModelArgs) -> dict[str, float]:
    """Total and activated parameters (no biases; the MTP module excluded, as DeepSeek's 671B/37B count it)."""
    attn = (attention.mla_down_params(m.dim, m.q_lora_rank, m.kv_lora_rank, m.qk_rope_head_dim, m.index_n_heads,
                                      m.index_head_dim)
            + attention.mla_up_params(m.dim, m.n_heads, m.q_lora_rank, m.kv_lora_rank, m.qk_nope_head_dim,
                                      m.qk_rope_head_dim, m.v_head_dim, m.index_n_heads, m.index_head_dim))
    expert = moe.swiglu_weights(m.dim, m.moe_inter_dim)
    sparse = m.n_layers - m.n_dense_layers
    common = (m.n_layers * attn + m.n_dense_layers * moe.swiglu_weights(m.dim, m.inter_dim)
              + sparse * m.dim * m.n_routed_experts + 2 * m.vocab_size * m.dim)
    return {"total_params": common + sparse * (m.n_routed_experts + m.n_shared_experts) * expert,
            "activated_params": common + sparse * (m.n_activated_experts + m.n_shared_experts) * expert}


def kv_bytes_per_token(m: ModelArgs, kv_bytes: int = 1) -> float:
    """KV cache bytes per token over all layers (FlashMLA FP8 layout by default) plus DSA indexer keys."""
    from .config import load_refined
    c = load_refined()
    per_layer = (attention.kv_token_bytes(m.kv_lora_rank, m.qk_rope_head_dim, kv_bytes,
                                          c["kv_quant_group"].values["hopper"])
                 + attention.index_key_bytes(m.index_topk, m.index_head_dim, c["index_scale_bytes"].values["hopper"]))
    return float(per_layer * m.n_layers)


def model_summaries() -> list[dict[str, Any]]:
    out = []
    for name, m in load_catalog().models.items():
        attn = f"DSA top-{m.index_topk}" if m.index_topk else "dense MLA"
        out.append({"id": name, **parameter_counts(m), "kv_bytes_per_token": kv_bytes_per_token(m), "attention": attn,
                    **{f.name: getattr(m, f.name) for f in fields(m)}})
    return out
