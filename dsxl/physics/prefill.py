"""Prefill per-layer times (article section 2). Times in ms, bandwidths in GB/s.

Communication sizes use the article's bytes/1024/1024 over GB/s convention (keep it: the printed
numbers depend on it).
"""

from __future__ import annotations

from typing import Any


def mla_tp1_ms(gemm_gflops: Any, attn_gflops: Any, fp8_tflops_eff: Any, fp16_tflops_eff: Any,
               batch_size: Any) -> Any:
    """MLA on one GPU: FP8 GEMMs plus FP16 attention, for batch_size sequences."""
    return gemm_gflops / fp8_tflops_eff * batch_size + attn_gflops / fp16_tflops_eff * batch_size


def allreduce_ms(tokens: Any, dim: Any, nvlink_bw_eff: Any) -> Any:
    """All-reduce of tokens x dim BF16 activations over NVLink."""
    return tokens * dim * 2 / 1024 / 1024 / nvlink_bw_eff


def mla_tp_ms(mla_tp1_ms: Any, allreduce_ms: Any, tp: Any) -> Any:
    """MLA split over tp GPUs plus one all-reduce."""
    return mla_tp1_ms / tp + allreduce_ms


def prefill_dp(num_node: Any, gpu_per_node: Any, tp: Any) -> Any:
    """Data-parallel MLA groups in the prefill deployment unit."""
    return num_node * gpu_per_node / tp


def prefill_shared_tokens(seq_len: Any, dp: Any, tp: Any) -> Any:
    """Tokens per GPU for the shared expert: dp sequences spread over tp x dp GPUs."""
    return dp * seq_len / (tp * dp)


def prefill_routed_tokens(seq_len: Any, dp: Any, tp: Any, n_activated_experts: Any) -> Any:
    """Routed-expert tokens per GPU: every token goes to n_activated experts, spread evenly."""
    return seq_len * dp * n_activated_experts / (tp * dp)


def prefill_dispatch_ms(dispatch_node: Any, gpu_per_node: Any, tp: Any, seq_len: Any, dim: Any,
                        pcie_bw_eff: Any) -> Any:
    """FP8 dispatch to the other dispatch_node-1 nodes for the node's gpu_per_node/tp DP groups."""
    return (dispatch_node - 1) * (gpu_per_node / tp) * seq_len * dim / 1024 / 1024 / (pcie_bw_eff * gpu_per_node)


def combine_ms(dispatch_ms: Any) -> Any:
    """Combine sends BF16, twice the FP8 dispatch bytes."""
    return 2 * dispatch_ms


def prefill_sum_overlap_ms(n_layers: Any, n_dense_layers: Any, mla_tp1_ms: Any, dense_mlp_ms: Any,
                           tp_mla_ms: Any, shared_expert_ms: Any, routed_expert_ms: Any) -> Any:
    """Whole-model prefill time when all-to-all is hidden behind compute."""
    return (n_dense_layers * (mla_tp1_ms + dense_mlp_ms)
            + (n_layers - n_dense_layers) * (tp_mla_ms + shared_expert_ms + routed_expert_ms))


def prefill_sum_ms(n_layers: Any, n_dense_layers: Any, sum_overlap_ms: Any, dispatch_ms: Any,
                   combine_ms: Any) -> Any:
    """Whole-model prefill time with all-to-all exposed."""
    return sum_overlap_ms + (n_layers - n_dense_layers) * (dispatch_ms + combine_ms)


def prefill_tps_per_node(dp: Any, seq_len: Any, total_ms: Any, num_node: Any) -> Any:
    """Prefill tokens/s per node: dp sequences every total_ms across num_node nodes."""
    return dp * seq_len * (1000 / total_ms) / num_node


def kv_gbps_fp8(tps_per_node: Any, kv_lora_rank: Any, qk_rope_head_dim: Any) -> Any:
    """KV cache produced per node, GB/s (article: tokens/s x 576 / 1024 / 1024)."""
    return tps_per_node * (kv_lora_rank + qk_rope_head_dim) / 1024 / 1024


def double(x: Any) -> Any:
    """FP16 figures are twice the FP8 ones."""
    return x * 2


def tps_per_gpu(tps_per_node: Any, gpu_per_node: Any) -> Any:
    """Prefill tokens/s per GPU from the per-node figure."""
    return tps_per_node / gpu_per_node
