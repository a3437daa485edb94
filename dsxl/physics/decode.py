"""Decode per-layer times, TPOT and throughput (article section 3). Times in ms."""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import concat, eq, where


def load_kv_fp8_ms(seq_len: Any, kv_lora_rank: Any, qk_rope_head_dim: Any, batch_size: Any,
                   mem_bw_eff: Any) -> Any:
    """Reading batch_size sequences of FP8 latent KV from HBM for one layer."""
    return seq_len * (kv_lora_rank + qk_rope_head_dim) * batch_size / 1024 / 1024 / 1024 / mem_bw_eff * 1000


def routed_tokens(batch_size: Any, n_activated_experts: Any) -> Any:
    return batch_size * n_activated_experts


def decode_dispatch_ms(batch_size: Any, dim: Any, n_activated_experts: Any, pcie_bw_eff: Any) -> Any:
    """FP8 dispatch of each token to n_activated experts over the scale-out NIC."""
    return batch_size * dim * n_activated_experts / 1024 / 1024 / pcie_bw_eff


def decode_mla_tp(mla_tp1_ms: Any, mla_tp4_ms: Any, mla_tp_alt: Any) -> Any:
    """The article's MLA TP choice: the GPU's alternative TP when TP1 is slower than TP4, else 1."""
    return where(mla_tp1_ms > mla_tp4_ms, mla_tp_alt, 1)


def chosen_mla_ms(mla_tp: Any, mla_tp1_ms: Any, mla_tp4_ms: Any, mla_tp8_ms: Any) -> Any:
    """MLA time at the chosen TP (1, 4 or 8)."""
    return where(eq(mla_tp, 1), mla_tp1_ms, where(eq(mla_tp, 4), mla_tp4_ms, mla_tp8_ms))


def with_kv_load_ms(mla_ms: Any, load_kv_fp8_ms: Any) -> Any:
    """MLA compute plus the FP8 KV read (DenseMLA uses TP1, SparseMLA the chosen TP)."""
    return mla_ms + load_kv_fp8_ms


def tpot_overlap_ms(n_layers: Any, n_dense_layers: Any, dense_mla_ms: Any, dense_mlp_ms: Any,
                    sparse_mla_ms: Any, shared_expert_ms: Any, routed_expert_ms: Any) -> Any:
    """Time per output token with all-to-all fully overlapped."""
    return ((dense_mla_ms + dense_mlp_ms) * n_dense_layers
            + (sparse_mla_ms + shared_expert_ms + routed_expert_ms) * (n_layers - n_dense_layers))


def tpot_ms(n_layers: Any, n_dense_layers: Any, tpot_overlap_ms: Any, dispatch_ms: Any, combine_ms: Any) -> Any:
    """Time per output token with all-to-all exposed."""
    return tpot_overlap_ms + (dispatch_ms + combine_ms) * (n_layers - n_dense_layers)


def tokens_per_s(time_ms: Any) -> Any:
    """Tokens/s per user for one token every time_ms."""
    return 1000 / time_ms


def per_gpu_tps(tps: Any, batch_size: Any) -> Any:
    """Tokens/s per GPU: per-user rate x batch size."""
    return tps * batch_size


def time_budget_ms(sparse_mla_ms: Any, shared_expert_ms: Any, dispatch_ms: Any, combine_ms: Any) -> Any:
    """Compute left to hide all-to-all behind (article 3.7); negative means it cannot be hidden."""
    return sparse_mla_ms + shared_expert_ms - (dispatch_ms + combine_ms)


def meets_sla(tps_overlap: Any, tps_threshold: Any) -> Any:
    """The article's filter: per-user TPS with overlap strictly above the threshold."""
    return tps_overlap > tps_threshold


def tp_label(gpu_name: Any, mla_tp: Any) -> Any:
    """Column label such as ``H800(TP1)``."""
    return concat(gpu_name, "(TP", mla_tp, ")")
