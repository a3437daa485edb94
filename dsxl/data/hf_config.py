"""Hugging Face ``config.json`` import: the MLA + MoE family and DeepSeek-V4 as :class:`ModelArgs` records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsxl.data.records import ModelArgs
from dsxl.data.user_files import read_json
from dsxl.core.rules import refuse, show

SUPPORTED = ("DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM", "KimiK25ForConditionalGeneration",
             "GlmMoeDsaForCausalLM", "DeepseekV4ForCausalLM")
SUPPORTED_TYPES = ("deepseek_v3", "deepseek_v32", "kimi_k2", "glm_moe_dsa", "deepseek_v4")
# DeepSeek-V4 (transformers DeepseekV4Config): ModelArgs name <- config.json name
V4_NAMES = {"dim": "hidden_size", "moe_inter_dim": "moe_intermediate_size", "n_layers": "num_hidden_layers",
            "n_heads": "num_attention_heads", "n_routed_experts": "n_routed_experts",
            "n_shared_experts": "n_shared_experts", "n_activated_experts": "num_experts_per_tok",
            "route_scale": "routed_scaling_factor", "q_lora_rank": "q_lora_rank", "head_dim": "head_dim",
            "o_groups": "o_groups", "o_lora_rank": "o_lora_rank", "sliding_window": "sliding_window",
            "index_n_heads": "index_n_heads", "index_head_dim": "index_head_dim", "index_topk": "index_topk",
            "hc_mult": "hc_mult", "vocab_size": "vocab_size", "n_mtp_layers": "num_nextn_predict_layers"}
V4_LAYER_TYPES = {0: "sliding_attention", 4: "compressed_sparse_attention", 128: "heavily_compressed_attention"}
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


def _text_config(cfg: Any) -> dict[str, Any]:
    if not isinstance(cfg, dict):
        raise ValueError(f"config.json must hold a JSON object; got {type(cfg).__name__}")
    _check_kinds(cfg)
    archs = cfg.get("architectures") or []
    kind = cfg.get("model_type", "")
    if not (set(archs) & set(SUPPORTED) or kind in SUPPORTED_TYPES):
        refuse("config.json architecture", archs or kind, SUPPORTED, f" (model_type {', '.join(SUPPORTED_TYPES)})")
    text = cfg.get("text_config") or cfg
    _check_kinds(text)
    return text


NUMERIC_KEYS = set(HF_NAMES.values()) | set(V4_NAMES.values())
# The JSON type of every config.json key the importer reads, checked before any is used: a wrong type is one line
# naming the key, never a TypeError deep inside.
KINDS = {**{k: "number" for k in NUMERIC_KEYS}, "partial_rotary_factor": "number", "compress_rate_csa": "number",
         "compress_rate_hca": "number", "num_hash_layers": "number", "architectures": "list of text",
         "mlp_layer_types": "list of text", "layer_types": "list of text", "compress_ratios": "list of numbers",
         "compress_rates": "object of numbers", "expert_dtype": "text", "model_type": "text", "text_config": "object"}
LARGEST = 1e12  # no dimension, count or ratio of a real model comes near


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) <= LARGEST and x == x


IS_KIND = {"number": _is_number,
           "text": lambda v: isinstance(v, str),
           "object": lambda v: isinstance(v, dict),
           "list of text": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
           "list of numbers": lambda v: isinstance(v, list) and all(_is_number(x) for x in v),
           "object of numbers": lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values())}


def _check_kinds(d: dict[str, Any]) -> None:
    for key, kind in KINDS.items():
        value = d.get(key)
        if value is None:
            continue
        if not IS_KIND[kind](value):
            limit = f" (at most {LARGEST:,.0f} in size)" if "number" in kind else ""
            article = "an " if kind == "object" else "" if kind == "text" else "a "
            raise ValueError(f"config.json {key} must be {article}{kind}{limit}; got {show(value)}")
    factor = d.get("partial_rotary_factor")
    if factor is not None and not 0 < factor <= 1:
        raise ValueError(f"config.json partial_rotary_factor must be a share of the head, above 0 and at most 1; "
                         f"got {show(factor)}")
    hashes = d.get("num_hash_layers")
    if hashes is not None and (hashes < 0 or hashes != int(hashes)):
        raise ValueError(f"config.json num_hash_layers must be a whole number >= 0; got {show(hashes)}")


def _v4_layer_types(text: dict[str, Any], n_layers: int) -> list[str]:
    """Per-layer attention kinds: ``layer_types``, or the checkpoints' ``compress_ratios`` (one int per layer, the
    MTP layer's last), as the reference configuration reads them."""
    if text.get("layer_types") is not None:
        kinds = text["layer_types"]
    elif text.get("compress_ratios") is not None:
        ratios = text["compress_ratios"]
        if not isinstance(ratios, list) or any(r not in V4_LAYER_TYPES for r in ratios):
            raise ValueError(f"config.json compress_ratios must be a list of 0, 4 and 128; got {show(ratios)}")
        kinds = [V4_LAYER_TYPES[r] for r in ratios]
    else:
        raise ValueError("config.json lacks layer_types or compress_ratios (the attention kind of each layer)")
    if not isinstance(kinds, list) or len(kinds) < n_layers or any(k not in V4_LAYER_TYPES.values() for k in kinds):
        raise ValueError(f"config.json layer_types must list one of {', '.join(V4_LAYER_TYPES.values())} for each "
                         f"of the {n_layers} layers")
    return kinds[:n_layers]


def _v4_model(text: dict[str, Any]) -> ModelArgs:
    """ModelArgs of a DeepSeek-V4 config (``DeepseekV4ForCausalLM``): compressed attention, every layer MoE."""
    args: dict[str, Any] = {}
    for name, hf in V4_NAMES.items():
        if text.get(hf) is None:
            raise ValueError(f"config.json lacks {hf} (needed for {name})")
        args[name] = text[hf]
    kinds = _v4_layer_types(text, args["n_layers"])
    rates = text.get("compress_rates") or {}
    rope = text.get("qk_rope_head_dim") or int(args["head_dim"] * (text.get("partial_rotary_factor") or 64 / 512))
    hash_layers = text.get("num_hash_layers")
    if hash_layers is None:
        hash_layers = sum(1 for t in text.get("mlp_layer_types") or [] if t == "hash_moe") or 3
    return ModelArgs(
        **args, inter_dim=args["moe_inter_dim"], n_dense_layers=0, n_expert_groups=1, n_limited_groups=1,
        kv_lora_rank=args["head_dim"], qk_rope_head_dim=rope, qk_nope_head_dim=args["head_dim"] - rope,
        v_head_dim=args["head_dim"], n_csa_layers=kinds.count("compressed_sparse_attention"),
        n_hca_layers=kinds.count("heavily_compressed_attention"),
        csa_ratio=rates.get("compressed_sparse_attention", text.get("compress_rate_csa", 4)),
        hca_ratio=rates.get("heavily_compressed_attention", text.get("compress_rate_hca", 128)),
        n_hash_layers=hash_layers, expert_bits=4 if str(text.get("expert_dtype", "fp4")).lower() == "fp4" else 8)


def model_from_config(cfg: dict[str, Any]) -> ModelArgs:
    """ModelArgs from a Hugging Face config of this family (a nested ``text_config`` is read for Kimi-K2.5+;
    DeepSeek-V4 configs give compressed attention)."""
    text = _text_config(cfg)
    if "DeepseekV4ForCausalLM" in (cfg.get("architectures") or []) or cfg.get("model_type") == "deepseek_v4":
        return _v4_model(text)
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
    if not isinstance(path, (str, Path)):
        raise ValueError(f"model must be a preset id or the path of a config.json; got {show(path)}")
    p = Path(path)
    cfg = read_json(p, "model config")
    try:
        return model_from_config(cfg)
    except ValueError as exc:
        raise ValueError(f"model config {str(p)!r}: {exc}") from None


__all__ = ["load_model", "model_from_config", "SUPPORTED", "SUPPORTED_TYPES"]
