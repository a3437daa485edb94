"""FLOPs and parameter counts of DeepSeek-V3 blocks (article section 1). FLOPs in GFLOPs = MACs*2/1e9."""

from __future__ import annotations

from typing import Any


def mla_gemm_gflops(q_len: Any, kv_len: Any, kv_cache_rate: Any, dim: Any, q_lora_rank: Any, n_heads: Any,
                    qk_nope_head_dim: Any, qk_rope_head_dim: Any, kv_lora_rank: Any, v_head_dim: Any) -> Any:
    """Standard MLA projections (FP8 GEMMs): wq_a, wq_b, wkv_a (skipped for cached tokens), w_uk, w_uv."""
    q_down = q_len * dim * q_lora_rank
    q_up = q_len * q_lora_rank * n_heads * (qk_nope_head_dim + qk_rope_head_dim)
    kv_down = kv_len * dim * (kv_lora_rank + qk_rope_head_dim) * (1 - kv_cache_rate)
    k_up = kv_len * kv_lora_rank * n_heads * qk_nope_head_dim
    v_up = kv_len * kv_lora_rank * n_heads * v_head_dim
    return (q_down + q_up + kv_down + k_up + v_up) * 2 / 1e9


def mla_attn_gflops(q_len: Any, kv_len: Any, dim: Any, n_heads: Any, qk_nope_head_dim: Any,
                    qk_rope_head_dim: Any, v_head_dim: Any) -> Any:
    """Standard MLA attention (FP16): QK scores (rope + nope), scores x V, and the wo projection."""
    mha = n_heads * (q_len * qk_rope_head_dim * kv_len + q_len * qk_nope_head_dim * kv_len
                     + q_len * kv_len * v_head_dim)
    wo = q_len * n_heads * v_head_dim * dim
    return (mha + wo) * 2 / 1e9


def mla_absorb_gemm_gflops(q_len: Any, kv_len: Any, kv_cache_rate: Any, dim: Any, q_lora_rank: Any, n_heads: Any,
                           qk_rope_head_dim: Any, kv_lora_rank: Any) -> Any:
    """Matrix-absorbed MLA projections: wq_a, rope part of wq_b, W_UK absorbed into q, wkv_a."""
    q_down = q_len * dim * q_lora_rank
    q_rope_up = q_len * q_lora_rank * n_heads * qk_rope_head_dim
    q_absorb = q_len * n_heads * q_lora_rank * kv_lora_rank
    kv_down = kv_len * dim * (kv_lora_rank + qk_rope_head_dim) * (1 - kv_cache_rate)
    return (q_down + q_rope_up + q_absorb + kv_down) * 2 / 1e9


def mla_absorb_attn_gflops(q_len: Any, kv_len: Any, dim: Any, n_heads: Any, qk_rope_head_dim: Any,
                           kv_lora_rank: Any) -> Any:
    """Matrix-absorbed MLA attention (MQA over the latent KV) and the absorbed output projection."""
    mqa = n_heads * (q_len * qk_rope_head_dim * kv_len + q_len * kv_lora_rank * kv_len
                     + q_len * kv_len * kv_lora_rank)
    o_absorb = q_len * n_heads * kv_lora_rank * dim
    return (mqa + o_absorb) * 2 / 1e9


def dense_mlp_gflops(tokens: Any, dim: Any, inter_dim: Any) -> Any:
    """Dense SwiGLU MLP (w1, w2, w3)."""
    return 3 * tokens * dim * inter_dim * 2 / 1e9


def expert_gflops(tokens: Any, dim: Any, moe_inter_dim: Any) -> Any:
    """One MoE expert (SwiGLU with moe_inter_dim)."""
    return 3 * tokens * dim * moe_inter_dim * 2 / 1e9


def linear_params(d_in: Any, d_out: Any) -> Any:
    """nn.Linear with bias, as the article's profiler counted parameters."""
    return d_in * d_out + d_out


def mla_params(dim: Any, q_lora_rank: Any, n_heads: Any, qk_nope_head_dim: Any, qk_rope_head_dim: Any,
               kv_lora_rank: Any, v_head_dim: Any) -> Any:
    """Standard MLA parameters per layer (wq_a, wq_b, wkv_a, wkv_b, wo with biases; norms not counted)."""
    return (linear_params(dim, q_lora_rank)
            + linear_params(q_lora_rank, n_heads * (qk_nope_head_dim + qk_rope_head_dim))
            + linear_params(dim, kv_lora_rank + qk_rope_head_dim)
            + linear_params(kv_lora_rank, n_heads * (qk_nope_head_dim + v_head_dim))
            + linear_params(n_heads * v_head_dim, dim))


def mla_absorb_params(dim: Any, q_lora_rank: Any, n_heads: Any, qk_rope_head_dim: Any, kv_lora_rank: Any) -> Any:
    """Matrix-absorbed MLA parameters per layer (no biases), the article's mla_matabsob_mem."""
    return (dim * q_lora_rank + q_lora_rank * n_heads * qk_rope_head_dim + n_heads * q_lora_rank * kv_lora_rank
            + dim * (kv_lora_rank + qk_rope_head_dim) + n_heads * kv_lora_rank * dim)


def swiglu_params(dim: Any, hidden: Any) -> Any:
    """w1, w2, w3 with biases."""
    return 2 * linear_params(dim, hidden) + linear_params(hidden, dim)


def gate_params(dim: Any, n_routed_experts: Any) -> Any:
    return dim * n_routed_experts + n_routed_experts


def embedding_params(vocab_size: Any, dim: Any) -> Any:
    return vocab_size * dim


def kv_values_per_token_layer(kv_lora_rank: Any, qk_rope_head_dim: Any) -> Any:
    """Latent KV cached per token per layer: compressed KV plus the decoupled rope key."""
    return kv_lora_rank + qk_rope_head_dim


def total_params(mla_params: Any, dense_mlp_params: Any, expert_params: Any, gate_params: Any,
                 embedding_params: Any, n_layers: Any, n_dense_layers: Any, n_routed_experts: Any,
                 n_shared_experts: Any) -> Any:
    """Whole-model parameters: MLA in every layer, DenseMLP in dense layers, experts and gate in sparse
    layers, plus embedding and output head."""
    sparse = n_layers - n_dense_layers
    return (mla_params * n_layers + dense_mlp_params * n_dense_layers
            + expert_params * (n_routed_experts + n_shared_experts) * sparse
            + gate_params * sparse + 2 * embedding_params)


def profiler_flops(params: Any) -> Any:
    """FLOPs per token as the article's profiler printed them for linear blocks: 2 x MACs, bias included."""
    return 2 * params / 1e9


def gemm_plus_attn(gemm_gflops: Any, attn_gflops: Any) -> Any:
    return gemm_gflops + attn_gflops


def kv_kb_per_token(kv_lora_rank: Any, qk_rope_head_dim: Any, n_layers: Any, kv_bytes: Any) -> Any:
    """KV cache per token over all layers, KB (1024 bytes)."""
    return kv_bytes * (kv_lora_rank + qk_rope_head_dim) * n_layers / 1024


def sparse_layers(n_layers: Any, n_dense_layers: Any) -> Any:
    return n_layers - n_dense_layers


def routed_per_gpu(n_routed_experts: Any, redundant_experts: Any, ep: Any) -> Any:
    """Routed experts (incl. redundant copies) per GPU for an EP degree."""
    return (n_routed_experts + redundant_experts) / ep


def experts_per_gpu(routed_per_gpu: Any, n_shared_experts: Any) -> Any:
    """Experts held per GPU for the memory table: routed plus shared."""
    return routed_per_gpu + n_shared_experts


def layers_total(per_layer: Any, layers: Any) -> Any:
    """A per-layer count over a number of layers."""
    return per_layer * layers


def expert_layers_params(expert_params: Any, n_routed_experts: Any, n_shared_experts: Any,
                         n_sparse_layers: Any) -> Any:
    """All routed and shared experts over the MoE layers."""
    return expert_params * (n_routed_experts + n_shared_experts) * n_sparse_layers
