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


def mla_kv_bytes_per_token(n_layers: Any, kv_token_bytes: Any, index_key_bytes: Any) -> Any:
    """KV cache bytes one token adds over all layers (MLA latent plus DSA indexer key)."""
    return (kv_token_bytes + index_key_bytes) * n_layers


def compressed_kv_bytes_per_token(n_csa_layers: Any, n_hca_layers: Any, csa_ratio: Any, hca_ratio: Any,
                                  entry_bytes: Any, index_entry_bytes: Any) -> Any:
    """Compressed-attention (DeepSeek-V4) cache bytes one token adds: a CSA entry and indexer key every csa_ratio
    tokens, an HCA entry every hca_ratio tokens (the fixed window per sequence is not per token)."""
    return n_csa_layers * (entry_bytes + index_entry_bytes) / csa_ratio + n_hca_layers * entry_bytes / hca_ratio


def prompt_kv_transfer_ms(input_len: Any, kv_bytes_per_token: Any, window_bytes: Any, nic_gb_per_s: Any) -> Any:
    """Time to send one prompt's cache from its prefill GPU to the decode pool over the NIC (ms): every token's
    entries plus a compressed model's per-sequence window (``window_bytes``, 0 for MLA)."""
    return (input_len * kv_bytes_per_token + window_bytes) / (nic_gb_per_s * 1e9) * 1000
