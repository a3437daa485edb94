"""Decode KV-cache capacity and maximum batch per GPU (article section 3.2)."""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import maximum, where


def latent_kv_bytes_per_token(kv_lora_rank: Any, qk_rope_head_dim: Any, n_layers: Any, kv_bytes: Any) -> Any:
    """Bytes of latent KV one token adds over all layers (kv_lora_rank + rope values per layer)."""
    return (kv_lora_rank + qk_rope_head_dim) * n_layers * kv_bytes


def kv_bytes_per_seq(seq_len: Any, decode_len: Any, kv_lora_rank: Any, qk_rope_head_dim: Any, n_layers: Any,
                     tp: Any, kv_bytes: Any) -> Any:
    """Bytes of latent KV one sequence holds on one GPU (the latent KV is replicated across TP ranks)."""
    return (seq_len + decode_len) * latent_kv_bytes_per_token(kv_lora_rank, qk_rope_head_dim, n_layers, kv_bytes) * tp


def mla_params_used_m(absorb: Any, mla_params_m: Any, mla_absorb_params_m: Any) -> Any:
    """MLA parameters per layer in millions: absorbed weights when decoding with matrix absorption."""
    return where(absorb, mla_absorb_params_m, mla_params_m)


def free_mem_gb(mem: Any, mem_util_rate: Any, other_params_gb: Any, mla_m: Any, n_layers: Any, tp: Any,
                expert_params_m: Any, n_dense_layers: Any, experts_per_gpu: Any) -> Any:
    """HBM left for KV cache after weights (GB; parameters in millions at 1 byte each, /1024 as printed)."""
    return (mem * mem_util_rate - other_params_gb - mla_m * n_layers / tp / 1024
            - expert_params_m * (n_layers - n_dense_layers) * experts_per_gpu / 1024)


def max_batch(free_mem_gb: Any, kv_bytes_per_seq: Any) -> Any:
    """Sequences that fit (unrounded; 0 when the weights alone do not fit, never negative)."""
    return maximum(free_mem_gb * 1024 * 1024 * 1024 / kv_bytes_per_seq, 0)
