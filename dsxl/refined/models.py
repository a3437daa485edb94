"""What a model is, in numbers: parameters (total and activated) and cache bytes per token, for ``dsxl models``
and the planner. Computed by the same physics functions the chains use."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

from dsxl.data.catalog import load_catalog
from dsxl.physics import attention, csa, memory, moe
from dsxl.data.records import ModelArgs


def attention_params(m: ModelArgs) -> float:
    """Attention weights per layer (averaged over V4's layer mix)."""
    if m.compressed_attention:
        return (csa.replicated_params(m.dim, m.q_lora_rank, m.head_dim, m.index_n_heads, m.index_head_dim,
                                      m.n_layers, m.n_csa_layers, m.n_hca_layers)
                + csa.head_params(m.dim, m.n_heads, m.head_dim, m.q_lora_rank, m.o_groups, m.o_lora_rank,
                                  m.index_n_heads, m.index_head_dim, m.n_layers, m.n_csa_layers))
    return (attention.mla_down_params(m.dim, m.q_lora_rank, m.kv_lora_rank, m.qk_rope_head_dim, m.index_n_heads,
                                      m.index_head_dim)
            + attention.mla_up_params(m.dim, m.n_heads, m.q_lora_rank, m.kv_lora_rank, m.qk_nope_head_dim,
                                      m.qk_rope_head_dim, m.v_head_dim, m.index_n_heads, m.index_head_dim))


def parameter_counts(m: ModelArgs) -> dict[str, float]:
    """Total and activated parameters (no biases; the MTP module excluded, as DeepSeek's 671B/37B count it; V4's
    mHC mixing weights, a few hundred thousand per layer, left out)."""
    attn = attention_params(m)
    expert = moe.swiglu_weights(m.dim, m.moe_inter_dim)
    sparse = m.n_layers - m.n_dense_layers
    common = (m.n_layers * attn + m.n_dense_layers * moe.swiglu_weights(m.dim, m.inter_dim)
              + sparse * m.dim * m.n_routed_experts + 2 * m.vocab_size * m.dim)
    return {"total_params": common + sparse * (m.n_routed_experts + m.n_shared_experts) * expert,
            "activated_params": common + sparse * (m.n_activated_experts + m.n_shared_experts) * expert}


def kv_bytes_per_token(m: ModelArgs, kv_bytes: int = 1) -> float:
    """KV cache bytes per token over all layers (FlashMLA FP8 layout by default) plus DSA indexer keys; for V4 the
    compressed entries and indexer keys a token adds (the fixed per-sequence window is not per token)."""
    from dsxl.data.catalog import load_refined
    c = load_refined()
    token, _ = cache_bytes(lambda f: getattr(m, f), lambda name: c[name].values["hopper"], m.compressed_attention,
                           kv_bytes)  # a model's figure: FlashMLA's layout on Hopper, the reference the docs quote
    return float(token)


def cache_bytes(field: Callable[[str], Any], layout: Callable[[str], Any], compressed: bool,
                kv_bytes: Any = 1) -> tuple[Any, Any]:
    """(cache bytes one token adds over all layers, bytes a sequence holds whatever its length: a compressed
    model's sliding window, 0 for MLA), from the model's fields and the KV-layout constants of the GPU at hand read
    through ``field`` and ``layout``: numbers in Python, cells in the workbook."""
    if compressed:
        entry = layout("csa_kv_entry_bytes")
        token = memory.compressed_kv_bytes_per_token(field("n_csa_layers"), field("n_hca_layers"), field("csa_ratio"),
                                                     field("hca_ratio"), entry, layout("csa_index_entry_bytes"))
        return token, field("n_layers") * field("sliding_window") * entry
    token = memory.mla_kv_bytes_per_token(
        field("n_layers"),
        attention.kv_token_bytes(field("kv_lora_rank"), field("qk_rope_head_dim"), kv_bytes, layout("kv_quant_group")),
        attention.index_key_bytes(field("index_topk"), field("index_head_dim"), layout("index_scale_bytes")))
    return token, 0.0


def model_summaries() -> list[dict[str, Any]]:
    out = []
    for name, m in load_catalog().models.items():
        attn = (f"CSA/HCA top-{m.index_topk}" if m.compressed_attention else
                f"DSA top-{m.index_topk}" if m.index_topk else "dense MLA")
        out.append({"id": name, **parameter_counts(m), "kv_bytes_per_token": kv_bytes_per_token(m), "attention": attn,
                    **{f.name: getattr(m, f.name) for f in fields(m)}})
    return out
