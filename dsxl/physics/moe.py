"""Mixture-of-experts terms of the refined model: experts and tokens per GPU, expert weights read, FLOPs."""

from __future__ import annotations

from typing import Any

import numpy as np

from dsxl.core.expr import both, eq, is_symbolic, maximum, floor, minimum, where


def swiglu_weights(dim: Any, hidden: Any) -> Any:
    """Weights of a SwiGLU MLP (up, gate, down; no biases)."""
    return 3 * dim * hidden


def even_redundant_experts(ep: Any, n_routed_experts: Any) -> Any:
    """The fewest redundant replicas that give every GPU of the EP group the same whole number of experts,
    ep x ceil(n / ep) - n (the article's EP strategies: EP34 -> 16, EP72 -> 32, EP144 -> 32, EP320 -> 64)."""
    return ep * -floor(-n_routed_experts / ep) - n_routed_experts


def redundant_in_group(redundant_experts: Any, n_routed_experts: Any, ep: Any) -> Any:
    """Redundant expert replicas in the EP group; a negative request means auto (:func:`even_redundant_experts`)."""
    return where(redundant_experts < 0, even_redundant_experts(ep, n_routed_experts), redundant_experts)


def local_experts(n_routed_experts: Any, redundant_experts: Any, ep: Any) -> Any:
    """Routed expert replicas one GPU holds."""
    return (n_routed_experts + redundant_experts) / ep


def routed_tokens(tokens: Any, moe_tp: Any, n_activated_experts: Any, imbalance: Any) -> Any:
    """Token-expert pairs the busiest expert-parallel rank (``moe_tp`` GPUs, each computing a slice of every
    expert) computes: a balanced share of ``tokens`` per GPU times the imbalance (max / mean load)."""
    return tokens * moe_tp * n_activated_experts * imbalance


def expert_slice(weights: Any, moe_tp: Any) -> Any:
    """Weights of one GPU's slice of an expert split over ``moe_tp`` GPUs (MoE tensor parallelism)."""
    return weights / moe_tp


def tokens_per_expert(routed: Any, local: Any) -> Any:
    """Rows of each local expert's GEMM (the grouped GEMM's m)."""
    return routed / local


def experts_touched(local: Any, tokens: Any, instance_gpus: Any, n_activated_experts: Any, n_routed_experts: Any) -> Any:
    """Expected local experts that receive at least one of the instance's tokens: only those weights are read.

    The token count in the exponent is capped where the untouched share falls below e^-500, so spreadsheets
    never underflow."""
    p = n_activated_experts / n_routed_experts
    return local * (1 - (1 - p) ** minimum(tokens * instance_gpus, 500 / p))


def mlp_gflops(tokens: Any, weights: Any) -> Any:
    return tokens * (2 * weights / 1e9)


def weights_gb(count: Any, weights: Any, weight_bytes: Any) -> Any:
    """Weights of ``count`` MLPs, GB."""
    return count * weights * weight_bytes / 1e9


def shared_tokens(tokens: Any, moe_tp: Any, n_shared_experts: Any) -> Any:
    """Shared experts see every token of their MoE-TP group (each GPU computes its slice)."""
    return tokens * moe_tp * n_shared_experts


def lm_head_weights(vocab_size: Any, dim: Any) -> Any:
    return vocab_size * dim


def activation_values(dim: Any, hc_mult: Any, moe_inter_dim: Any, n_activated_experts: Any,
                      n_shared_experts: Any) -> Any:
    """Values per token the MoE path's elementwise kernels pass through memory: norm and residual
    ((1 + 3 x hc_mult) x dim), and per expert copy the up/gate output, the activation and the down output
    (3 x moe_inter + 2 x dim)."""
    return (1 + 3 * hc_mult) * dim + (n_activated_experts + n_shared_experts) * (3 * moe_inter_dim + 2 * dim)


def dense_activation_values(dim: Any, inter_dim: Any) -> Any:
    """The same for a DenseMLP layer."""
    return 4 * dim + 3 * inter_dim + 2 * dim


def moe_ms(routed_ms: Any, shared_ms: Any, act_ms: Any, launch_ms: Any, allreduce_ms: Any) -> Any:
    """MoE path of one micro-batch (gate, shared and routed experts, elementwise traffic, the MoE-TP all-reduce),
    all-to-all excluded."""
    return routed_ms + shared_ms + act_ms + launch_ms + allreduce_ms


def mlp_ms(gemm_ms: Any, act_ms: Any, launch_ms: Any) -> Any:
    return gemm_ms + act_ms + launch_ms


def fused_moe_ms(tokens: Any, fused_moe_us_1: Any, fused_moe_us_512: Any, fused_moe_us_8192: Any,
                 fused_moe_us_32768: Any) -> Any:
    """A measured fused MoE kernel's time per layer per rank (ms) at ``tokens`` per rank: linear between the measured
    points (1, 512, 8,192 and 32,768 tokens), extended along the last segment beyond them."""
    if not is_symbolic(fused_moe_us_1) and not np.any(fused_moe_us_1):  # no measured kernel: skip the table
        return 0.0

    def line(t0: Any, u0: Any, t1: Any, u1: Any) -> Any:
        return u0 + (u1 - u0) * (tokens - t0) / (t1 - t0)
    us = where(tokens <= 512, line(1, fused_moe_us_1, 512, fused_moe_us_512),
               where(tokens <= 8192, line(512, fused_moe_us_512, 8192, fused_moe_us_8192),
                     line(8192, fused_moe_us_8192, 32768, fused_moe_us_32768)))
    return maximum(us, fused_moe_us_1) / 1000


def fused_moe_acts(fused_moe_ep: Any, a2a_ranks: Any) -> Any:
    """A measured fused kernel replaces the routed GEMMs and the all-to-all where the model has one for this GPU
    generation and the all-to-all spans the EP size it was measured at."""
    return both(fused_moe_ep > 0, eq(a2a_ranks, fused_moe_ep))


def unless_fused(fused_on: Any, fused_ms: Any, separate_ms: Any) -> Any:
    """The fused kernel's time where it acts, else the separate kernel's."""
    if not is_symbolic(fused_on) and not np.any(fused_on):
        return separate_ms
    return where(fused_on, fused_ms, separate_ms)
