"""The refined model's calculation chains, declared once for Python and the workbook.

Inputs by name: the model's architecture (:class:`dsxl.data.catalog.ModelArgs`), the GPU's datasheet fields,
the refined constants of the GPU's generation (``templates/refined.json``) and the request's options
(``ep``, ``batch``, ``kv_len``, ``attn_tp``, ``tbo``, ``mtp_draft``, ``mtp_accept``, ``attn_bytes``,
``kv_bytes``, ``moe_bytes``, ``imbalance``, ``redundant_experts``; prefill: ``tokens_per_gpu``,
``prompt_len``, ``cache_hit``). Times are ms per GPU; "_mb" quantities are per micro-batch.
"""

from __future__ import annotations

from dsxl.physics import attention, comm, csa, flops, moe, roofline, serving, weights
from dsxl.chains.step import MS, Step

S = Step
GB = "GB"
GF = "GFLOPs"
K = roofline.kernel_ms

# --- shared by decode and prefill: micro-batches, peaks, parameter counts ------------------------------------
def _overlap_head(rank_tokens: Step, min_tokens: str) -> list[Step]:
    """Whether TBO and SBO act for this shape (an all-to-all to hide, enough tokens per rank), then the
    micro-batches per step."""
    return [
        S("instance_gpus", comm.instance_gpus, "GPUs per instance (EP x MoE TP)", "GPUs"),
        S("a2a_ranks", comm.a2a_ranks, "Ranks the all-to-all spans (1: attention TP covers the instance)", "ranks"),
        S("fused_on", moe.fused_moe_acts, "A measured fused MoE kernel acts (model, generation and EP it was measured "
          "at)", ""),
        S("issued_a2a_ranks", comm.issued_a2a_ranks, "Ranks a separately issued all-to-all spans (1: none, or "
          "inside the fused kernel)", "ranks"),
        rank_tokens,
        S("tbo_on", serving.overlap_acts, "Two-batch overlap acts (asked, an all-to-all to hide, enough tokens)", "",
          {"requested": "tbo", "a2a_ranks": "issued_a2a_ranks", "rank_tokens": "overlap_rank_tokens",
           "min_tokens": min_tokens}),
        S("sbo_on", serving.overlap_acts, "Single-batch overlap acts (asked, an all-to-all to hide)", "",
          {"requested": "sbo", "a2a_ranks": "issued_a2a_ranks", "rank_tokens": "overlap_rank_tokens",
           "min_tokens": 1}),
        S("micro_batches", serving.micro_batches, "Micro-batches per step (2 with TBO)", "micro-batches",
          {"tbo": "tbo_on"}),
    ]


_COMMON_HEAD = [
    S("redundant_used", moe.redundant_in_group, "Redundant experts (auto: the fewest that divide evenly)", "experts"),
    S("attn_peak_tflops", roofline.gemm_peak_tflops, "Peak for attention/dense GEMMs at attn dtype", "TFLOPS",
      {"weight_bytes": "attn_bytes"}),
    S("moe_peak_tflops", roofline.gemm_peak_tflops, "Peak for expert GEMMs at MoE dtype", "TFLOPS",
      {"weight_bytes": "moe_bytes"}),
    S("mla_down_params", attention.mla_down_params, "Replicated attention weights per layer", "params"),
    S("mla_up_params", attention.mla_up_params, "Per-head attention weights per layer (split by TP)", "params"),
    S("expert_full_weights", moe.swiglu_weights, "Weights per expert", "params", {"hidden": "moe_inter_dim"}),
    S("expert_weights", moe.expert_slice, "Weights per expert slice on one GPU (MoE TP)", "params",
      {"weights": "expert_full_weights"}),
    S("dense_full_weights", moe.swiglu_weights, "Weights per DenseMLP", "params", {"hidden": "inter_dim"}),
    S("dense_weights", moe.expert_slice, "Weights per DenseMLP slice on one GPU (attention TP)", "params",
      {"weights": "dense_full_weights", "moe_tp": "attn_tp"}),
    S("lm_head_full_weights", moe.lm_head_weights, "LM head weights", "params"),
    S("lm_head_weights", moe.expert_slice, "LM head slice on one GPU (vocabulary-parallel over attention TP)",
      "params", {"weights": "lm_head_full_weights", "moe_tp": "attn_tp"}),
    S("n_sparse_layers", flops.sparse_layers, "MoE layers", "layers"),
    S("local_experts", moe.local_experts, "Routed expert replicas per GPU", "experts",
      {"redundant_experts": "redundant_used"}),
    S("kv_token_bytes", attention.kv_token_bytes, "Latent KV per token per layer", "bytes"),
    S("index_key_bytes", attention.index_key_bytes, "DSA indexer key per token per layer", "bytes"),
    S("moe_reduce_gpus", comm.moe_reduce_gpus, "GPUs whose MoE partial sums are all-reduced", "GPUs"),
    S("nic_share", comm.nic_share, "EP destinations beyond the NVLink domain", "share", {"ep": "instance_gpus"}),
    S("nvlink_share", comm.nvlink_share, "EP destinations on other GPUs of the NVLink domain", "share",
      {"ep": "instance_gpus"}),
    S("nvlink_copies", comm.expert_copies, "Copies per token over NVLink", "copies", {"share": "nvlink_share"}),
]


def _roofline(name: str, label: str, gflops: str, gbytes: str | int, peak: str, flops_eff: str,
              bw_eff: str = "gemm_bw_eff") -> Step:
    """The roofline time of one kernel group from its FLOPs and bytes quantities."""
    return S(name, K, f"{label} (roofline)", MS, {"gflops": gflops, "peak_tflops": peak, "flops_eff": flops_eff,
                                                  "gbytes": gbytes, "bw_gbs": "mem_bw", "bw_eff": bw_eff})


def _mlp(prefix: str, label: str, tokens: str, weights: str, count: str | int, weight_bytes: str | int, peak: str,
         flops_eff: str, time_name: str = "") -> list[Step]:
    """FLOPs, weights read and roofline time (``time_name``, default prefix_ms) of ``count`` MLPs (experts,
    DenseMLP, LM head) over ``tokens``."""
    return [
        S(f"{prefix}_gflops", moe.mlp_gflops, label, GF, {"tokens": tokens, "weights": weights}),
        S(f"{prefix}_gb", moe.weights_gb, f"{label} weights read", GB,
          {"count": count, "weights": weights, "weight_bytes": weight_bytes}),
        _roofline(time_name or f"{prefix}_ms", label, f"{prefix}_gflops", f"{prefix}_gb", peak, flops_eff),
    ]


def _elementwise(prefix: str, label: str, values_fn) -> list[Step]:
    """Activation values per token, the bytes the elementwise kernels move, and their time."""
    return [
        S(f"{prefix}_act_values", values_fn, f"{label} activations per token", "values"),
        S(f"{prefix}_act_gb", roofline.activation_gb, f"{label} elementwise traffic", GB,
          {"tokens": "tokens_mb", "values_per_token": f"{prefix}_act_values"}),
        S(f"{prefix}_act_ms", roofline.traffic_ms, f"{label} elementwise kernels", MS,
          {"gbytes": f"{prefix}_act_gb", "bw_gbs": "mem_bw", "bw_eff": "gemm_bw_eff"}),
    ]


def _attention(core_eff: str, core_gb: str | int, index_context: str, fp8_math: str | int) -> list[Step]:
    """The attention path once ``mla_core_gflops`` (and the KV it reads, ``core_gb``) is known; ``fp8_math``: whether
    this phase's kernel can multiply FP8 operands on this generation."""
    return [
        S("attn_proj_gflops", attention.mla_proj_gflops, "Attention projections", GF,
          {"tokens": "tokens_mb", "down_params": "mla_down_params", "up_params": "mla_up_params"}),
        S("attn_proj_gb", attention.mla_proj_gb, "Attention projection weights read", GB,
          {"down_params": "mla_down_params", "up_params": "mla_up_params", "weight_bytes": "attn_bytes"}),
        _roofline("attn_proj_ms", "Attention projections", "attn_proj_gflops", "attn_proj_gb", "attn_peak_tflops",
                  "gemm_flops_eff"),
        S("fp8_core", attention.fp8_core, "Attention kernel multiplies in FP8 (FP8 KV, an FP8 kernel)", "",
          {"kv_bytes": "kv_bytes", "fp8_math": fp8_math}),
        S("core_flops_eff", attention.core_flops_eff, "Attention kernel FLOP efficiency", "share",
          {"dense_eff": core_eff, "sparse_eff": "sparse_attn_flops_eff", "fp8_eff": "attn_fp8_flops_eff"}),
        S("core_peak_tflops", attention.core_peak_tflops, "Attention kernel peak (FP8 or BF16)", "TFLOPS"),
        _roofline("mla_core_ms", "Attention kernel", "mla_core_gflops", core_gb, "core_peak_tflops",
                  "core_flops_eff", "attn_bw_eff"),
        S("indexer_gflops", attention.indexer_gflops, "DSA indexer scoring", GF,
          {"queries": "tokens_mb", "context": index_context}),
        S("index_read_gb", attention.kv_read_gb, "DSA indexer keys read", GB,
          {"sequences": "sequences_mb", "attended": index_context, "token_bytes": "index_key_bytes"}),
        _roofline("indexer_ms", "DSA indexer", "indexer_gflops", "index_read_gb", "fp8_flops", "gemm_flops_eff",
                  "attn_bw_eff"),
        S("allreduce_ms", comm.allreduce_ms, "Attention-TP all-reduce", MS,
          {"tokens": "tokens_mb", "tp": "attn_tp", "nvlink_eff": "a2a_nvlink_eff",
           "latency_us": "allreduce_latency_us"}),
        *_elementwise("attn", "Attention", attention.activation_values),
        S("attn_kernels_n", attention.kernel_count, "Kernels on the attention path", "kernels"),
        S("attn_gemm_kernels_n", attention.gemm_kernel_count, "of which GEMM and attention kernels", "kernels"),
        S("attn_launch_ms", roofline.launch_ms, "Attention kernels' fixed time", MS,
          {"kernels": "attn_kernels_n", "gemm_kernels": "attn_gemm_kernels_n"}),
        S("attn_ms", attention.attention_ms, "Attention path per micro-batch", MS,
          {"proj_ms": "attn_proj_ms", "core_ms": "mla_core_ms", "act_ms": "attn_act_ms", "launch_ms": "attn_launch_ms"}),
    ]


def _moe(routed_flops_eff: str) -> list[Step]:
    """MoE and DenseMLP paths; the routed experts' grouped GEMM has its own FLOP efficiency per layout (and for
    FP4 experts)."""
    return [
    S("routed_flops_eff", roofline.grouped_flops_eff, "Routed grouped-GEMM FLOP efficiency", "share",
      {"layout_eff": routed_flops_eff}),
    S("moe_tokens_mb", serving.tokens, "Tokens per micro-batch the experts see (the group's mean load)", "tokens",
      {"sequences": "tokens_mb", "per_sequence": "moe_token_share"}),
    S("routed_tokens", moe.routed_tokens, "Token-expert pairs on the busiest EP rank", "tokens",
      {"tokens": "moe_tokens_mb"}),
    S("tokens_per_expert", moe.tokens_per_expert, "Rows per local expert (grouped-GEMM m)", "tokens",
      {"routed": "routed_tokens", "local": "local_experts"}),
    S("experts_touched", moe.experts_touched, "Local experts receiving tokens", "experts",
      {"local": "local_experts", "tokens": "moe_tokens_mb"}),
    *_mlp("routed", "Routed experts", "routed_tokens", "expert_weights", "experts_touched", "moe_bytes",
          "moe_peak_tflops", "routed_flops_eff", "routed_gemm_ms"),
    S("fused_ms", moe.fused_moe_ms, "Fused MoE kernel: GEMMs and all-to-all (measured table)", MS,
      {"tokens": "moe_tokens_mb"}),
    S("routed_ms", moe.unless_fused, "Routed experts (fused kernel where it acts)", MS,
      {"separate_ms": "routed_gemm_ms"}),
    S("shared_tokens", moe.shared_tokens, "Shared-expert tokens of the MoE-TP group", "tokens",
      {"tokens": "moe_tokens_mb"}),
    *_mlp("shared", "Shared experts", "shared_tokens", "expert_weights", "n_shared_experts", "moe_bytes",
          "moe_peak_tflops", "gemm_flops_eff"),
    *_elementwise("moe", "MoE", moe.activation_values),
    S("moe_launch_ms", roofline.launch_ms, "MoE kernels' fixed time", MS,
      {"kernels": "moe_kernels", "gemm_kernels": "moe_gemm_kernels"}),
    S("moe_allreduce_ms", comm.allreduce_ms, "MoE-TP all-reduce", MS,
      {"tokens": "tokens_mb", "tp": "moe_reduce_gpus", "nvlink_eff": "a2a_nvlink_eff",
       "latency_us": "allreduce_latency_us"}),
    S("moe_ms", moe.moe_ms, "MoE path per micro-batch", MS,
      {"act_ms": "moe_act_ms", "launch_ms": "moe_launch_ms", "allreduce_ms": "moe_allreduce_ms"}),
    S("dense_tokens", serving.tokens, "DenseMLP tokens of the attention rank", "tokens",
      {"sequences": "tokens_mb", "per_sequence": "attn_tp"}),
    *_mlp("dense", "DenseMLP", "dense_tokens", "dense_weights", 1, "attn_bytes", "attn_peak_tflops", "gemm_flops_eff"),
    *_elementwise("dense", "DenseMLP", moe.dense_activation_values),
    S("dense_launch_ms", roofline.launch_ms, "DenseMLP kernels' fixed time", MS,
      {"kernels": "dense_mlp_kernels", "gemm_kernels": "dense_gemm_kernels"}),
    S("dense_mlp_ms", moe.mlp_ms, "DenseMLP path per micro-batch", MS,
      {"gemm_ms": "dense_ms", "act_ms": "dense_act_ms", "launch_ms": "dense_launch_ms"}),
    ]


def _a2a(nic_copies: Step, nic_eff: str, latency: str) -> list[Step]:
    common = {"tokens": "tokens_mb", "nic_copies": "nic_copies", "nic_eff": nic_eff, "nvlink_eff": "a2a_nvlink_eff",
              "latency_us": "a2a_latency_us", "ep": "a2a_ranks"}
    return [
        nic_copies,
        S("a2a_latency_us", comm.call_latency_us, "Fixed time per all-to-all call", "us",
          {"nvlink_latency_us": "a2a_nvlink_latency_us", "nic_latency_us": latency}),
        S("dispatch_a2a_ms", comm.a2a_ms, "Dispatch all-to-all per micro-batch", MS,
          {**common, "bytes_per_value": "dispatch_bytes_per_value"}),
        S("combine_a2a_ms", comm.a2a_ms, "Combine all-to-all per micro-batch", MS,
          {**common, "bytes_per_value": "combine_bytes_per_value"}),
        S("dispatch_ms", moe.unless_fused, "Dispatch per micro-batch (inside the fused kernel where it acts)", MS,
          {"fused_ms": 0, "separate_ms": "dispatch_a2a_ms"}),
        S("combine_ms", moe.unless_fused, "Combine per micro-batch (inside the fused kernel where it acts)", MS,
          {"fused_ms": 0, "separate_ms": "combine_a2a_ms"}),
    ]


def _layers(lm_tokens: str, mtp_draft: str | int, moe_layer: Step, requests: str, time_scale: str) -> list[Step]:
    return [
        moe_layer,
        S("dense_layer_ms", serving.dense_layer_ms, "Dense layer", MS, {"mlp_ms": "dense_mlp_ms"}),
        *_mlp("lm_head", "LM head (BF16)", lm_tokens, "lm_head_weights", 1, 2, "fp16_flops", "gemm_flops_eff",
              "lm_head_kernel_ms"),
        S("lm_head_ms", roofline.with_launch, "LM head and sampling kernel", MS,
          {"kernel_ms": "lm_head_kernel_ms", "kernels": 2}),
        S("mtp_ms", serving.mtp_ms, "MTP drafting", MS, {"mtp_draft": mtp_draft}),
        S("overhead_ms", serving.engine_overhead_ms, "Engine overhead per step (scheduling, sampling)", MS,
          {"requests": requests}),
        S("step_ms", serving.step_ms, "Forward step", MS, {"time_scale": time_scale}),
    ]


_MEMORY = [
    S("attention_weights_gb", weights.attention_weights_gb, "Attention weights per GPU", GB,
      {"down_params": "mla_down_params", "up_params": "mla_up_params"}),
    S("expert_weights_gb", weights.expert_weights_gb, "Expert weights per GPU", GB,
      {"local_experts": "local_experts", "expert_weights": "expert_weights"}),
    S("dense_weights_gb", weights.dense_weights_gb, "DenseMLP weights per GPU", GB,
      {"dense_weights": "dense_weights", "dense_bytes": "attn_bytes"}),
    S("other_weights_gb", weights.other_weights_gb, "Gates, embedding and LM head", GB),
    S("attention_layer_gb", weights.per_layer, "Attention weights per layer", GB,
      {"total": "attention_weights_gb", "layers": "n_layers"}),
    S("experts_layer_gb", weights.per_layer, "Expert weights per MoE layer", GB,
      {"total": "expert_weights_gb", "layers": "n_sparse_layers"}),
    S("loaded_mtp_layers", weights.loaded_mtp_layers, "MTP layers loaded (when drafting)", "layers"),
    S("mtp_weights_gb", weights.mtp_weights_gb, "MTP module weights", GB,
      {"attention_per_layer_gb": "attention_layer_gb", "experts_per_layer_gb": "experts_layer_gb"}),
    S("weights_gb", weights.total_weights_gb, "Weights per GPU", GB,
      {"attention_gb": "attention_weights_gb", "experts_gb": "expert_weights_gb", "dense_gb": "dense_weights_gb",
       "other_gb": "other_weights_gb", "mtp_gb": "mtp_weights_gb"}),
]

DECODE = [S("queries_per_seq", serving.queries_per_sequence, "Query tokens per sequence per step", "tokens")] + \
    _overlap_head(S("overlap_rank_tokens", serving.tokens, "Query tokens per attention rank per step", "tokens",
                    {"sequences": "batch", "per_sequence": "queries_per_seq"}), "tbo_min_tokens") + _COMMON_HEAD + [
    S("op_latency_us", roofline.op_latency_us, "Fixed time per elementwise op (graph tail with CUDA graphs)", "us",
      {"graphs": "decode_graphs"}),
    S("seqs_per_gpu", serving.sequences_per_gpu, "Sequences per GPU (batch per attention rank / attention TP)",
      "sequences"),
    S("sequences_mb", serving.per_micro_batch, "Sequences per GPU per micro-batch", "sequences",
      {"total": "seqs_per_gpu", "micro_batches": "micro_batches"}),
    S("tokens_mb", serving.tokens, "Query tokens per micro-batch", "tokens",
      {"sequences": "sequences_mb", "per_sequence": "queries_per_seq"}),
    S("sm_share", roofline.sm_share, "SMs left to compute (low-latency all-to-all holds none)", "share",
      {"held_sm": 0}),
    S("attended", attention.attended_tokens, "Cached tokens attended per query", "tokens", {"context": "kv_len"}),
    S("mla_core_gflops", attention.mla_decode_gflops, "Absorbed MLA attention", GF,
      {"queries": "tokens_mb", "attended": "attended"}),
    S("kv_read_gb", attention.kv_read_gb, "Latent KV read", GB,
      {"sequences": "sequences_mb", "attended": "attended", "token_bytes": "kv_token_bytes"}),
] + _attention("attn_flops_eff", "kv_read_gb", "kv_len", "attn_fp8_math") + _moe("grouped_masked_flops_eff") + \
    _a2a(S("nic_copies", comm.expert_copies, "Copies per token over the NIC (one per expert)", "copies",
           {"share": "nic_share"}), "a2a_ll_nic_eff", "a2a_ll_latency_us") + [
    S("decode_tokens", serving.tokens, "Query tokens per step of the attention rank (LM head rows)", "tokens",
      {"sequences": "batch", "per_sequence": "queries_per_seq"}),
    S("sbo_window_ms", serving.sbo_window_ms, "Compute a single-batch-overlapped combine hides behind", MS),
] + _layers("decode_tokens", "mtp_draft", S("moe_layer_ms", serving.moe_layer_ms, "MoE layer", MS,
                                              {"overlap_ms": "sbo_window_ms", "tbo": "tbo_on", "sbo": "sbo_on"}), "batch",
                  "decode_time_scale") + [
    S("tpot_ms", serving.tpot_ms, "Time per output token", MS),
    S("tokens_per_s_per_user", serving.per_second, "Output tokens/s per user", "tokens/s", {"time_ms": "tpot_ms"}),
    S("tokens_per_s_per_gpu", serving.per_gpu, "Output tokens/s per GPU", "tokens/s",
      {"rate": "tokens_per_s_per_user", "count": "seqs_per_gpu"}),
] + _MEMORY + [
    S("kv_seq_gb", weights.kv_seq_gb, "KV per sequence on each GPU of its rank", GB, {"context": "kv_len"}),
    S("usable_gb", weights.usable_gb, "HBM the engine budgets for weights and KV", GB),
    S("kv_budget_gb", weights.kv_budget_gb, "HBM left for KV", GB, {"activation_gb": 0}),
    S("max_batch", weights.max_sequences, "Max sequences per attention rank", "sequences", {"kv_seq_gb": "kv_seq_gb"}),
    S("fits", weights.fits, "Batch fits in memory", "", {"need": "batch", "have": "max_batch"}),
]

_PREFILL_NVLINK = S("nvlink_copies", comm.forwarded_copies, "Copies per token over NVLink (direct, or forwarded "
                   "inside a remote node)", "copies")

PREFILL = _overlap_head(S("overlap_rank_tokens", serving.tokens, "Prompt tokens per attention rank per forward",
                           "tokens", {"sequences": "tokens_per_gpu", "per_sequence": "attn_tp"}),
                         "tbo_min_prefill_tokens") + \
    [_PREFILL_NVLINK if s.name == "nvlink_copies" else s for s in _COMMON_HEAD] + [
    S("op_latency_us", roofline.op_latency_us, "Fixed time per elementwise op (no graphs in prefill)", "us",
      {"graphs": 0}),
    S("computed_tokens", serving.computed_tokens, "Prompt tokens computed per forward (cache misses)", "tokens",
      {"tokens": "tokens_per_gpu"}),
    S("tokens_mb", serving.per_micro_batch, "Computed tokens per micro-batch", "tokens",
      {"total": "computed_tokens", "micro_batches": "micro_batches"}),
    S("sequences_mb", serving.prompts, "Prompts per micro-batch", "prompts",
      {"tokens": "tokens_mb", "prompt_len": "prompt_len"}),
    S("sm_share", roofline.sm_share, "SMs left to compute (normal all-to-all holds comm_sm)", "share",
      {"held_sm": "comm_sm"}),
    S("causal_context", attention.causal_context, "Mean keys per computed token (causal)", "tokens"),
    S("attended", attention.attended_tokens, "Keys attended per computed token", "tokens",
      {"context": "causal_context"}),
    S("mla_core_gflops", attention.mla_prefill_gflops, "Prefill attention", GF,
      {"queries": "tokens_mb", "attended": "attended"}),
] + _attention("prefill_attn_flops_eff", 0, "causal_context", 0) + _moe("gemm_flops_eff") + \
    _a2a(S("nic_copies", comm.node_copies_nic, "Copies per token over the NIC (one per remote node)", "copies"),
         "a2a_normal_nic_eff", "a2a_normal_latency_us") + [
    S("rank_tokens", serving.tokens, "Prompt tokens per forward of the attention rank", "tokens",
      {"sequences": "tokens_per_gpu", "per_sequence": "attn_tp"}),
    S("lm_tokens", serving.prompts, "Prompts per forward of the attention rank (LM head rows)", "prompts",
      {"tokens": "rank_tokens", "prompt_len": "prompt_len"}),
] + _layers("lm_tokens", 0, S("moe_layer_ms", serving.prefill_moe_layer_ms, "MoE layer", MS, {"tbo": "tbo_on"}),
            "lm_tokens", "prefill_time_scale") + [
    S("tokens_per_s_per_gpu", serving.input_tokens_per_s, "Input tokens/s per GPU (cache hits included)",
      "tokens/s", {"tokens": "tokens_per_gpu"}),
    S("computed_tokens_per_s", serving.input_tokens_per_s, "Computed tokens/s per GPU", "tokens/s",
      {"tokens": "computed_tokens"}),
    S("chunks", serving.prefill_chunks, "Forwards per prompt (the attention rank's forward holds the prompt)",
      "forwards", {"tokens_per_gpu": "rank_tokens"}),
    S("ttft_ms", serving.ttft_ms, "Time to first token", MS, {"pieces": "chunks", "piece_step_ms": "step_ms"}),
] + _MEMORY + [
    S("activation_gb", weights.prefill_activation_gb, "Prefill activations per micro-batch", GB,
      {"tokens_mb": "tokens_mb"}),
    S("usable_gb", weights.usable_gb, "HBM the engine budgets for weights and KV", GB),
    S("kv_budget_gb", weights.kv_budget_gb, "HBM left for KV", GB),
    S("resident_tokens", serving.resident_prompt_tokens, "Prompt tokens whose KV is held while they are built",
      "tokens"),
    S("kv_forward_gb", weights.kv_seq_gb, "KV of the prompts being built", GB, {"context": "resident_tokens"}),
    S("fits", weights.fits, "Forward fits in memory", "", {"need": "kv_forward_gb", "have": "kv_budget_gb"}),
]


# --- DeepSeek-V4: the same chains with compressed attention (CSA/HCA) in place of MLA ----------------------
def _v4_attended(context: str) -> Step:
    return S("attended", csa.attended_entries, "Cache entries attended per query (window + CSA top-k + HCA), "
             "per layer", "entries", {"context": context})


def _v4_index(context: str) -> list[Step]:
    return [S("index_keys", csa.index_keys, "Indexer keys scored per query, per layer", "keys",
              {"context": context})]


_V4_COMMON = {
    "mla_down_params": S("mla_down_params", csa.replicated_params, "Replicated attention weights per layer "
                         "(query down, shared KV, compressors)", "params"),
    "mla_up_params": S("mla_up_params", csa.head_params, "Per-head attention weights per layer (split by TP)",
                       "params"),
    "kv_token_bytes": S("kv_token_bytes", csa.entry_bytes, "Cache entry (FP8 layout)", "bytes"),
    "index_key_bytes": S("index_key_bytes", csa.entry_bytes, "Indexer key", "bytes",
                         {"csa_kv_entry_bytes": "csa_index_entry_bytes"}),
    "indexer_gflops": S("indexer_gflops", attention.indexer_gflops, "Lightning indexer scoring", GF,
                        {"queries": "tokens_mb", "context": "index_keys"}),
    "index_read_gb": S("index_read_gb", attention.kv_read_gb, "Indexer keys read", GB,
                       {"sequences": "sequences_mb", "attended": "index_keys", "token_bytes": "index_key_bytes"}),
    "attn_kernels_n": S("attn_kernels_n", csa.kernels, "Kernels on the attention path (with compressors, mHC)",
                        "kernels"),
    "attn_gemm_kernels_n": S("attn_gemm_kernels_n", csa.gemm_kernels, "of which GEMM and attention kernels",
                             "kernels"),
}


def _v4(steps: list[Step], context: str, own: dict[str, Step]) -> list[Step]:
    """``steps`` with the compressed-attention quantities in place of MLA's (same names, so the rest of the chain,
    the breakdown and the workbook read them unchanged)."""
    swap = {**_V4_COMMON, **own, "attended": _v4_attended(context)}
    out = []
    for step in steps:
        if step.name == "attended":
            out += _v4_index(context)
        out.append(swap.get(step.name, step))
    return out


DECODE_V4 = _v4(DECODE, "kv_len", {
    "mla_core_gflops": S("mla_core_gflops", csa.core_gflops, "Core attention (shared-KV MQA)", GF,
                         {"queries": "tokens_mb"}),
    "kv_seq_gb": S("kv_seq_gb", csa.kv_seq_gb, "Cache per sequence on each GPU of its rank", GB,
                   {"context": "kv_len"}),
})
PREFILL_V4 = _v4(PREFILL, "causal_context", {
    "mla_core_gflops": S("mla_core_gflops", csa.core_gflops, "Prefill core attention (causal, compressed)", GF,
                         {"queries": "tokens_mb"}),
    "kv_forward_gb": S("kv_forward_gb", csa.kv_seq_gb, "Cache of the prompts being built", GB,
                       {"context": "resident_tokens"}),
})


def chains(model: object) -> tuple[list[Step], list[Step]]:
    """(decode, prefill) chains for a model: compressed attention for DeepSeek-V4, MLA otherwise."""
    return (DECODE_V4, PREFILL_V4) if getattr(model, "compressed_attention", False) else (DECODE, PREFILL)
