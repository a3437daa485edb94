"""MLA and DeepSeek Sparse Attention (DSA) as the refined model sees them: parameters, FLOPs and bytes.

Per GPU and per layer. Attention TP ``attn_tp`` splits heads over a group of GPUs that together hold
``attn_tp`` times the sequences of one GPU: the down projections and the indexer are replicated, the
per-head projections split, and every rank reads the whole latent KV of the group (it is shared by all heads).
"""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import both, is_plain_zero, where


def mla_down_params(dim: Any, q_lora_rank: Any, kv_lora_rank: Any, qk_rope_head_dim: Any, index_n_heads: Any,
                    index_head_dim: Any) -> Any:
    """Projections every TP rank holds whole: wq_a, wkv_a and, with DSA, the indexer's wk and head weights."""
    return dim * q_lora_rank + dim * (kv_lora_rank + qk_rope_head_dim) + dim * index_head_dim + dim * index_n_heads


def mla_up_params(dim: Any, n_heads: Any, q_lora_rank: Any, kv_lora_rank: Any, qk_nope_head_dim: Any,
                  qk_rope_head_dim: Any, v_head_dim: Any, index_n_heads: Any, index_head_dim: Any) -> Any:
    """Per-head projections split by TP: wq_b, wkv_b (as W_UK/W_UV when absorbed), wo, and the indexer's wq_b."""
    return (q_lora_rank * n_heads * (qk_nope_head_dim + qk_rope_head_dim)
            + n_heads * kv_lora_rank * (qk_nope_head_dim + v_head_dim) + n_heads * v_head_dim * dim
            + q_lora_rank * index_n_heads * index_head_dim)


def mla_proj_gflops(tokens: Any, attn_tp: Any, down_params: Any, up_params: Any) -> Any:
    """Projection FLOPs per GPU: the group's tokens through the replicated part, this rank's heads for the rest."""
    return 2 * tokens * (attn_tp * down_params + up_params) / 1e9


def mla_proj_gb(down_params: Any, up_params: Any, attn_tp: Any, weight_bytes: Any) -> Any:
    """Projection weights one GPU reads per pass, GB."""
    return (down_params + up_params / attn_tp) * weight_bytes / 1e9


def attended_tokens(context: Any, index_topk: Any) -> Any:
    """Cached tokens each query attends to: the context, capped at index_topk under DSA."""
    return where(both(index_topk > 0, context > index_topk), index_topk, context)


def kv_token_bytes(kv_lora_rank: Any, qk_rope_head_dim: Any, kv_bytes: Any, kv_quant_group: Any) -> Any:
    """Latent KV bytes per token per layer: BF16 576 values, or FlashMLA's FP8 layout (FP8 latent, one FP32
    scale per kv_quant_group values, BF16 rope key)."""
    fp8 = kv_lora_rank + kv_lora_rank / kv_quant_group * 4 + qk_rope_head_dim * 2
    return where(kv_bytes < 2, fp8, (kv_lora_rank + qk_rope_head_dim) * 2)


def index_key_bytes(index_topk: Any, index_head_dim: Any, index_scale_bytes: Any) -> Any:
    """DSA indexer key bytes per token per layer (FP8 key plus its scale); 0 without DSA."""
    return where(index_topk > 0, index_head_dim + index_scale_bytes, 0)


def mla_decode_gflops(queries: Any, n_heads: Any, attended: Any, kv_lora_rank: Any, qk_rope_head_dim: Any) -> Any:
    """Absorbed MLA attention (FlashMLA): each query scores attended latent keys (576 wide) and sums 512-wide
    values, for every head."""
    return 2 * queries * n_heads * attended * (2 * kv_lora_rank + qk_rope_head_dim) / 1e9


def mla_prefill_gflops(queries: Any, n_heads: Any, attended: Any, index_topk: Any, kv_lora_rank: Any,
                       qk_nope_head_dim: Any, qk_rope_head_dim: Any, v_head_dim: Any) -> Any:
    """Prefill attention: dense MHA over decompressed heads (192-wide keys, 128-wide values), or with DSA the
    absorbed sparse kernel over latent keys."""
    width = where(index_topk > 0, 2 * kv_lora_rank + qk_rope_head_dim,
                  qk_nope_head_dim + qk_rope_head_dim + v_head_dim)
    return 2 * queries * n_heads * attended * width / 1e9


def kv_read_gb(sequences: Any, attn_tp: Any, attended: Any, token_bytes: Any) -> Any:
    """KV a GPU reads in one pass: every sequence of its attention rank (``sequences`` per GPU x ``attn_tp``),
    attended tokens each, GB (0 when there are no such keys)."""
    if is_plain_zero(token_bytes):
        return 0
    return attended * token_bytes / 1e9 * (sequences * attn_tp)


def indexer_gflops(queries: Any, attn_tp: Any, index_n_heads: Any, index_head_dim: Any, context: Any) -> Any:
    """DSA lightning indexer: every query of the TP group scores every cached token (FP8), GFLOPs (0 without
    DSA)."""
    if is_plain_zero(index_n_heads):
        return 0
    return 2 * index_n_heads * index_head_dim * context / 1e9 * (queries * attn_tp)


def causal_context(prompt_len: Any, cache_hit: Any) -> Any:
    """Mean keys per computed prompt token: the cached prefix plus half the computed part (causal)."""
    return prompt_len * (1 + cache_hit) / 2


def mean_decode_context(input_len: Any, output_len: Any) -> Any:
    """Mean KV length of a decoding sequence: the prompt plus half the output."""
    return input_len + output_len / 2


def fp8_core(index_topk: Any, kv_bytes: Any, fp8_math: Any) -> Any:
    """Whether the attention kernel multiplies in FP8: a dense kernel over an FP8 KV cache on a generation whose
    kernel takes FP8 operands (``attn_fp8_math``); FlashMLA's FP8 and sparse kernels dequantise to BF16 first."""
    return both(index_topk <= 0, both(kv_bytes < 2, fp8_math > 0))


def core_flops_eff(index_topk: Any, dense_eff: Any, sparse_eff: Any, fp8_core: Any, fp8_eff: Any) -> Any:
    """The attention kernel's achievable FLOP share of its peak: the token-level sparse kernel under DSA, the dense
    one otherwise (its FP8 kernel's where it multiplies in FP8)."""
    return where(index_topk > 0, sparse_eff, where(fp8_core, fp8_eff, dense_eff))


def core_peak_tflops(fp8_core: Any, fp16_flops: Any, fp8_flops: Any) -> Any:
    """The attention kernel's peak: the FP8 tensor-core rate where it multiplies in FP8, BF16's otherwise."""
    return where(fp8_core, fp8_flops, fp16_flops)


def kernel_count(index_topk: Any, attn_kernels: Any, dsa_kernels: Any) -> Any:
    """Kernels on the attention path, the DSA indexer's included where the model has it."""
    return attn_kernels + where(index_topk > 0, dsa_kernels, 0)


def gemm_kernel_count(index_topk: Any, attn_gemm_kernels: Any, dsa_gemm_kernels: Any) -> Any:
    """Of those, the GEMM and attention kernels (each pays a GEMM's fixed time; the rest are elementwise ops)."""
    return attn_gemm_kernels + where(index_topk > 0, dsa_gemm_kernels, 0)


def residual_values(dim: Any, hc_mult: Any) -> Any:
    """Values per token a sublayer's norm and residual kernels pass through memory: the input read and normalised,
    the residual read and written; with V4's hc_mult-wide residual (mHC) the streams are read to mix them in and
    read and written to mix the output back: (1 + 3 x hc_mult) x dim (4 x dim for the MLA family)."""
    return (1 + 3 * hc_mult) * dim


def activation_values(dim: Any, hc_mult: Any, n_heads: Any, qk_nope_head_dim: Any, qk_rope_head_dim: Any,
                      v_head_dim: Any) -> Any:
    """Values per token the attention path's elementwise kernels pass through memory: norm and residual, per-head
    queries, keys/values and outputs (2 x heads x (qk + v))."""
    return residual_values(dim, hc_mult) + 2 * n_heads * (qk_nope_head_dim + qk_rope_head_dim + v_head_dim)


def attention_ms(proj_ms: Any, core_ms: Any, indexer_ms: Any, allreduce_ms: Any, act_ms: Any, launch_ms: Any) -> Any:
    """Attention path of one micro-batch: projections, attention kernel, DSA indexer, TP all-reduce,
    elementwise traffic, launches."""
    return core_ms + indexer_ms + (proj_ms + act_ms + launch_ms + allreduce_ms)
