"""The article's calculation chains (sections 1 to 3), declared once as steps (:mod:`dsxl.chains.step`)."""

from __future__ import annotations

from typing import Any

from dsxl.chains.step import GF, MS, S, Step, run, split_by_dependency  # noqa: F401  (re-exported)
from dsxl.physics import decode, flops, hardware, memory, moe, prefill

# --- quantities that depend only on the model and the workload ---------------------------
_ONE_TOKEN = {"q_len": 1, "kv_len": 1}
MODEL = [
    S("n_sparse_layers", flops.sparse_layers, "MoE (sparse) layers", "layers"),
    S("mla_params", flops.mla_params, "MLA parameters per layer", "params"),
    S("mla_absorb_params", flops.mla_absorb_params, "Absorbed MLA parameters per layer", "params"),
    S("dense_mlp_params", flops.swiglu_params, "DenseMLP parameters per layer", "params", {"hidden": "inter_dim"}),
    S("expert_params", flops.swiglu_params, "Parameters per expert", "params", {"hidden": "moe_inter_dim"}),
    S("gate_params", flops.gate_params, "Gate parameters per MoE layer", "params"),
    S("embedding_params", flops.embedding_params, "Embedding (and output head) parameters", "params"),
    S("mla_layers_params", flops.layers_total, "MLA parameters, all layers", "params",
      {"per_layer": "mla_params", "layers": "n_layers"}),
    S("dense_layers_params", flops.layers_total, "DenseMLP parameters, dense layers", "params",
      {"per_layer": "dense_mlp_params", "layers": "n_dense_layers"}),
    S("expert_layers_params", flops.expert_layers_params, "Expert parameters, MoE layers", "params"),
    S("gate_layers_params", flops.layers_total, "Gate parameters, MoE layers", "params",
      {"per_layer": "gate_params", "layers": "n_sparse_layers"}),
    S("total_params", flops.total_params, "Total parameters", "params"),
    S("mla_token_gemm_gflops", flops.mla_gemm_gflops, "MLA GEMM FLOPs, 1 token over 1 key", GF,
      {**_ONE_TOKEN, "kv_cache_rate": 0}),
    S("mla_token_attn_gflops", flops.mla_attn_gflops, "MLA attention FLOPs, 1 token over 1 key", GF, _ONE_TOKEN),
    S("mla_token_gflops", flops.gemm_plus_attn, "MLA FLOPs per token", GF,
      {"gemm_gflops": "mla_token_gemm_gflops", "attn_gflops": "mla_token_attn_gflops"}),
    S("mla_absorb_token_gemm_gflops", flops.mla_absorb_gemm_gflops, "Absorbed MLA GEMM FLOPs, 1 token", GF,
      {**_ONE_TOKEN, "kv_cache_rate": 0}),
    S("mla_absorb_token_attn_gflops", flops.mla_absorb_attn_gflops, "Absorbed MLA attention FLOPs, 1 token", GF,
      _ONE_TOKEN),
    S("mla_absorb_token_gflops", flops.gemm_plus_attn, "Absorbed MLA FLOPs per token", GF,
      {"gemm_gflops": "mla_absorb_token_gemm_gflops", "attn_gflops": "mla_absorb_token_attn_gflops"}),
    S("dense_mlp_token_gflops", flops.profiler_flops, "DenseMLP FLOPs per token (profiler)", GF,
      {"params": "dense_mlp_params"}),
    S("expert_token_gflops", flops.profiler_flops, "Expert FLOPs per token (profiler)", GF,
      {"params": "expert_params"}),
    S("kv_values_per_token", flops.kv_values_per_token_layer, "KV values per token per layer", "values"),
    S("kv_kb_fp16", flops.kv_kb_per_token, "KV cache per token, FP16", "KB", {"kv_bytes": 2}),
    S("kv_kb_fp8", flops.kv_kb_per_token, "KV cache per token, FP8", "KB", {"kv_bytes": 1}),
]

EP = [
    S("redundant_experts", moe.even_redundant_experts, "Redundant experts (whole experts per GPU)", "experts"),
    S("routed_per_gpu", flops.routed_per_gpu, "Routed experts per GPU", "experts"),
    S("experts_per_gpu", flops.experts_per_gpu, "Experts per GPU (routed + shared)", "experts"),
]

PREFILL_FLOPS = [
    S("prefill_mla_gemm_gflops", flops.mla_gemm_gflops, "MLA GEMM FLOPs per sequence (FP8)", GF,
      {"q_len": "seq_len", "kv_len": "seq_len"}),
    S("prefill_mla_attn_gflops", flops.mla_attn_gflops, "MLA attention FLOPs per sequence (FP16)", GF,
      {"q_len": "seq_len", "kv_len": "seq_len"}),
    S("prefill_dense_mlp_gflops", flops.dense_mlp_gflops, "DenseMLP FLOPs per sequence", GF, {"tokens": "seq_len"}),
]

DECODE_FLOPS = [
    S("decode_mla_gemm_gflops", flops.mla_absorb_gemm_gflops, "Absorbed MLA GEMM FLOPs per token (FP8)", GF,
      {"q_len": 1, "kv_len": "seq_len", "kv_cache_rate": 1}),
    S("decode_mla_attn_gflops", flops.mla_absorb_attn_gflops, "Absorbed MLA attention FLOPs per token (FP16)", GF,
      {"q_len": 1, "kv_len": "seq_len"}),
    S("decode_std_mla_gemm_gflops", flops.mla_gemm_gflops, "Standard MLA GEMM FLOPs per token (FP8)", GF,
      {"q_len": 1, "kv_len": "seq_len", "kv_cache_rate": 1}),
    S("decode_std_mla_attn_gflops", flops.mla_attn_gflops, "Standard MLA attention FLOPs per token (FP16)", GF,
      {"q_len": 1, "kv_len": "seq_len"}),
]

# --- per GPU: effective figures (comm_sm is bound to the phase's communication SMs) --------
def effective_steps(comm_sm: str) -> list[Step]:
    return [
        S("fp16_tflops_eff", hardware.effective_tflops, "FP16 TFLOPS, effective", "TFLOPS",
          {"peak_tflops": "fp16_flops", "comm_sm": comm_sm}),
        S("fp8_tflops_eff", hardware.effective_tflops, "FP8 TFLOPS, effective", "TFLOPS",
          {"peak_tflops": "fp8_flops", "comm_sm": comm_sm}),
        S("mem_bw_eff", hardware.effective_bw, "HBM bandwidth, effective", "GB/s", {"bw": "mem_bw"}),
        S("nvlink_bw_eff", hardware.effective_bw, "NVLink bandwidth, effective", "GB/s", {"bw": "nvlink_bw"}),
        S("pcie_bw_eff", hardware.effective_bw, "Scale-out NIC bandwidth, effective", "GB/s", {"bw": "pcie_bw"}),
    ]


PREFILL_EFFECTIVE = effective_steps("comm_sm")
DECODE_EFFECTIVE = effective_steps("decode_comm_sm")


def _mla_tp_steps(gemm: str, attn: str, batch: Any) -> list[Step]:
    return [
        S("mla_tp1_ms", prefill.mla_tp1_ms, "MLA, TP1", MS,
          {"gemm_gflops": gemm, "attn_gflops": attn, "batch_size": batch}),
        S("mla_tp4_ms", prefill.mla_tp_ms, "MLA, TP4 (incl. all-reduce)", MS, {"tp": 4}),
        S("mla_tp8_ms", prefill.mla_tp_ms, "MLA, TP8 (incl. all-reduce)", MS, {"tp": 8}),
    ]


# Prefill for one GPU: MLA at TP1/4/8 and the DenseMLP (section 2.1, 2.2).
PREFILL_GPU = [
    S("allreduce_ms", prefill.allreduce_ms, "All-reduce of seq_len x dim BF16", MS, {"tokens": "seq_len"}),
    *_mla_tp_steps("prefill_mla_gemm_gflops", "prefill_mla_attn_gflops", 1),
    S("dense_mlp_ms", hardware.compute_ms, "DenseMLP", MS,
      {"gflops": "prefill_dense_mlp_gflops", "tflops": "fp8_tflops_eff"}),
]

# Prefill for one GPU in a TP/DP deployment (needs `tp`; sections 2.3 to 2.7).
PREFILL_DEPLOY = [
    S("dp", prefill.prefill_dp, "DP groups in the unit", "groups"),
    S("tp_mla_ms", prefill.mla_tp_ms, "MLA at the deployment's TP", MS),
    S("shared_tokens", prefill.prefill_shared_tokens, "Shared-expert tokens per GPU", "tokens"),
    S("shared_expert_gflops", flops.expert_gflops, "Shared-expert FLOPs per GPU", GF, {"tokens": "shared_tokens"}),
    S("shared_expert_ms", hardware.compute_ms, "Shared expert", MS,
      {"gflops": "shared_expert_gflops", "tflops": "fp8_tflops_eff"}),
    S("routed_tokens", prefill.prefill_routed_tokens, "Routed-expert tokens per GPU", "tokens"),
    S("routed_expert_gflops", flops.expert_gflops, "Routed-expert FLOPs per GPU", GF, {"tokens": "routed_tokens"}),
    S("routed_expert_ms", hardware.compute_ms, "Routed experts", MS,
      {"gflops": "routed_expert_gflops", "tflops": "fp8_tflops_eff"}),
    S("dispatch_ms", prefill.prefill_dispatch_ms, "Dispatch (FP8)", MS),
    S("combine_ms", prefill.combine_ms, "Combine (BF16)", MS),
    S("sum_overlap_ms", prefill.prefill_sum_overlap_ms, "Sum(Overlap)", MS),
    S("sum_ms", prefill.prefill_sum_ms, "Sum", MS),
    S("tps_overlap_node", prefill.prefill_tps_per_node, "Throughput per node, overlapped", "tokens/s",
      {"total_ms": "sum_overlap_ms"}),
    S("tps_node", prefill.prefill_tps_per_node, "Throughput per node", "tokens/s", {"total_ms": "sum_ms"}),
    S("kv_gbps_fp8_overlap", prefill.kv_gbps_fp8, "KV produced per node, FP8, overlapped", "GB/s",
      {"tps_per_node": "tps_overlap_node"}),
    S("kv_gbps_fp8", prefill.kv_gbps_fp8, "KV produced per node, FP8", "GB/s", {"tps_per_node": "tps_node"}),
    S("kv_gbps_fp16_overlap", prefill.double, "KV produced per node, FP16, overlapped", "GB/s",
      {"x": "kv_gbps_fp8_overlap"}),
    S("kv_gbps_fp16", prefill.double, "KV produced per node, FP16", "GB/s", {"x": "kv_gbps_fp8"}),
]
# Per GPU, for comparisons with measurements quoted per GPU.
PREFILL_PER_GPU = [
    S("tps_overlap_gpu", prefill.tps_per_gpu, "Throughput per GPU, overlapped", "tokens/s",
      {"tps_per_node": "tps_overlap_node"}),
]

# Decode for one GPU: the all-reduce does not depend on the batch [as printed].
DECODE_GPU = [
    S("allreduce_ms", prefill.allreduce_ms, "All-reduce (seq_len x dim, as printed)", MS, {"tokens": "seq_len"}),
]

# Decode MLA for one GPU and batch size; `absorbed` picks the FLOPs (section 3.3).
def decode_mla_steps(absorbed: bool = True) -> list[Step]:
    prefix = "decode_mla" if absorbed else "decode_std_mla"
    return _mla_tp_steps(f"{prefix}_gemm_gflops", f"{prefix}_attn_gflops", "batch_size") + [
        S("load_kv_fp8_ms", decode.load_kv_fp8_ms, "LoadKV_FP8", MS),
        S("load_kv_fp16_ms", prefill.double, "LoadKV_FP16", MS, {"x": "load_kv_fp8_ms"}),
    ]


def decode_batch_steps(absorbed: bool = True) -> list[Step]:
    """Decode for one GPU and batch size, from MLA to TPOT, throughput and time budget (3.3 to 3.7)."""
    return decode_mla_steps(absorbed) + _DECODE_REST


_DECODE_REST = [
    S("dense_mlp_gflops", flops.dense_mlp_gflops, "DenseMLP FLOPs per batch", GF, {"tokens": "batch_size"}),
    S("dense_mlp_ms", hardware.compute_ms, "DenseMLP", MS, {"gflops": "dense_mlp_gflops", "tflops": "fp8_tflops_eff"}),
    S("shared_expert_gflops", flops.expert_gflops, "Shared-expert FLOPs per batch", GF, {"tokens": "batch_size"}),
    S("shared_expert_ms", hardware.grouped_compute_ms, "SharedExpert", MS,
      {"gflops": "shared_expert_gflops", "tflops": "fp8_tflops_eff"}),
    S("routed_tokens", decode.routed_tokens, "Routed tokens per GPU", "tokens"),
    S("routed_expert_gflops", flops.expert_gflops, "Routed-expert FLOPs per batch", GF, {"tokens": "routed_tokens"}),
    S("routed_expert_ms", hardware.grouped_compute_ms, "RoutedExpert", MS,
      {"gflops": "routed_expert_gflops", "tflops": "fp8_tflops_eff"}),
    S("dispatch_ms", decode.decode_dispatch_ms, "Dispatch", MS),
    S("combine_ms", prefill.combine_ms, "Combine", MS),
    S("mla_tp", decode.decode_mla_tp, "MLA TP chosen", "GPUs"),
    S("chosen_mla_ms", decode.chosen_mla_ms, "MLA at the chosen TP", MS),
    S("dense_mla_ms", decode.with_kv_load_ms, "DenseMLA", MS, {"mla_ms": "mla_tp1_ms"}),
    S("sparse_mla_ms", decode.with_kv_load_ms, "SparseMLA", MS, {"mla_ms": "chosen_mla_ms"}),
    S("tpot_overlap_ms", decode.tpot_overlap_ms, "TPOT(Overlap)", MS),
    S("tpot_ms", decode.tpot_ms, "TPOT", MS),
    S("tps_overlap", decode.tokens_per_s, "TPS_O", "tokens/s per user", {"time_ms": "tpot_overlap_ms"}),
    S("tps", decode.tokens_per_s, "TPS", "tokens/s per user", {"time_ms": "tpot_ms"}),
    S("total_overlap", decode.per_gpu_tps, "Total_O", "tokens/s per GPU", {"tps": "tps_overlap"}),
    S("total", decode.per_gpu_tps, "Total", "tokens/s per GPU"),
    S("time_budget_ms", decode.time_budget_ms, "TimeBudget", MS),
    S("meets_sla", decode.meets_sla, "TPS_O > tps_threshold", ""),
    S("label", decode.tp_label, "Label", ""),
]
DECODE_BATCH = decode_batch_steps(True)

# Max batch for one GPU, TP, expert count, MLA form and KV precision (section 3.2).
MAX_BATCH = [
    S("kv_bytes_per_seq", memory.kv_bytes_per_seq, "KV bytes per sequence per GPU", "bytes"),
    S("mla_m", memory.mla_params_used_m, "MLA parameters per layer", "M"),
    S("free_mem_gb", memory.free_mem_gb, "HBM free for KV", "GB"),
    S("max_batch", memory.max_batch, "Max batch", "sequences"),
]
