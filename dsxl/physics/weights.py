"""Refined memory: weights one GPU holds for its parallelism and dtypes, KV per sequence, maximum batch."""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import floor, maximum, where


def attention_weights_gb(n_layers: Any, down_params: Any, up_params: Any, attn_tp: Any, attn_bytes: Any) -> Any:
    return n_layers * (down_params + up_params / attn_tp) * attn_bytes / 1e9


def expert_weights_gb(n_sparse_layers: Any, local_experts: Any, n_shared_experts: Any, expert_weights: Any,
                      moe_bytes: Any) -> Any:
    """Routed replicas and shared experts of every MoE layer (``expert_weights``: this GPU's slice of one)."""
    return n_sparse_layers * (local_experts + n_shared_experts) * expert_weights * moe_bytes / 1e9


def dense_weights_gb(n_dense_layers: Any, dense_weights: Any, dense_bytes: Any) -> Any:
    """DenseMLP layers (``dense_weights``: this GPU's slice of one)."""
    return n_dense_layers * dense_weights * dense_bytes / 1e9


def other_weights_gb(n_sparse_layers: Any, dim: Any, n_routed_experts: Any, vocab_size: Any, attn_tp: Any) -> Any:
    """BF16 router gates, token embedding and the LM head (split vocabulary-parallel over attention TP)."""
    return (n_sparse_layers * dim * n_routed_experts + vocab_size * dim * (1 + 1 / attn_tp)) * 2 / 1e9


def loaded_mtp_layers(mtp_draft: Any, n_mtp_layers: Any) -> Any:
    """MTP layers in memory: the model's MTP module when drafting, none otherwise (engines load it only to draft)."""
    return where(mtp_draft > 0, n_mtp_layers, 0)


def mtp_weights_gb(loaded_mtp_layers: Any, attention_per_layer_gb: Any, experts_per_layer_gb: Any,
                   dim: Any) -> Any:
    """The loaded MTP layers: a MoE layer each plus its BF16 2*dim x dim projection."""
    return loaded_mtp_layers * (attention_per_layer_gb + experts_per_layer_gb + 2 * dim * dim * 2 / 1e9)


def per_layer(total: Any, layers: Any) -> Any:
    return total / layers


def kv_seq_gb(context: Any, n_layers: Any, loaded_mtp_layers: Any, kv_token_bytes: Any, index_key_bytes: Any) -> Any:
    """KV one sequence occupies on each GPU of its attention rank, every layer's and the loaded MTP layers' (the
    latent KV is shared by all heads, so attention TP replicates it), GB."""
    return context * (n_layers + loaded_mtp_layers) * (kv_token_bytes + index_key_bytes) / 1e9


GB_PER_GIB = 2 ** 30 / 1e9  # vendors quote HBM in GiB (H100 "80 GB": 81,559 MiB); weights here are in 1e9 bytes


def usable_gb(mem: Any, mem_util: Any) -> Any:
    """HBM the engine budgets for weights and KV, in GB (1e9 bytes): the catalog's capacity (GiB, as vendors quote
    it and nvidia-smi reports it) times the share the engine keeps (its memory fraction)."""
    return mem * GB_PER_GIB * mem_util


def kv_budget_gb(usable_gb: Any, weights_gb: Any, activation_gb: Any, kv_free_share: Any) -> Any:
    """HBM left for KV cache: the engine's share of what its budget holds beyond weights and activations
    (TensorRT-LLM's free_gpu_memory_fraction; 1 for engines that size KV from a static share alone); negative when
    the weights do not fit."""
    return kv_free_share * (usable_gb - weights_gb - activation_gb)


def max_sequences(kv_budget_gb: Any, kv_seq_gb: Any) -> Any:
    """Whole sequences that fit, never negative (0 = does not fit)."""
    return maximum(floor(kv_budget_gb / kv_seq_gb), 0)


def prefill_activation_gb(tokens_mb: Any, dim: Any, n_activated_experts: Any, moe_inter_dim: Any) -> Any:
    """Live activations of a prefill micro-batch: the routed experts' BF16 up/gate output dominates."""
    return tokens_mb * (n_activated_experts * 2 * moe_inter_dim * 2 + 8 * dim * 2) / 1e9


def fits(need: Any, have: Any) -> Any:
    return need <= have


def total_weights_gb(attention_gb: Any, experts_gb: Any, dense_gb: Any, other_gb: Any, mtp_gb: Any) -> Any:
    return attention_gb + experts_gb + dense_gb + other_gb + mtp_gb
