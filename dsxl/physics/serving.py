"""How kernels add up to a serving step: micro-batches, two-batch overlap, MTP, TPOT, throughput, TTFT."""

from __future__ import annotations

from typing import Any

import numpy as np

from dsxl.core.expr import Expr, both, floor, is_plain_zero, maximum, where
from dsxl.physics.queueing import forward_wait_ms


def overlap_acts(requested: Any, a2a_ranks: Any, rank_tokens: Any, min_tokens: Any) -> Any:
    """Whether an overlap scheme (TBO or SBO) runs: it was asked for, there is an expert all-to-all to hide (it
    spans more than one rank) and the rank's step holds at least the engine's minimum tokens for it. Where it
    cannot act, engines run the step whole: splitting would only halve the GEMMs and double the launches."""
    return both(requested, both(a2a_ranks > 1, rank_tokens >= min_tokens))


def micro_batches(tbo: Any) -> Any:
    """Two-batch overlap (TBO) splits each step into two micro-batches."""
    return where(tbo, 2, 1)


def per_micro_batch(total: Any, micro_batches: Any) -> Any:
    return total / micro_batches


def per_step(per_micro_batch: Any, micro_batches: Any) -> Any:
    """A micro-batch figure summed over the step's micro-batches."""
    return per_micro_batch * micro_batches


def tokens(sequences: Any, per_sequence: Any) -> Any:
    return sequences * per_sequence


def prompts(tokens: Any, prompt_len: Any) -> Any:
    """Prompts in a forward (each needs the LM head for its last token)."""
    return tokens / prompt_len


def queries_per_sequence(mtp_draft: Any) -> Any:
    """Each decode step verifies the next token plus the draft tokens of multi-token prediction."""
    return 1 + mtp_draft


def moe_layer_ms(micro_batches: Any, tbo: Any, sbo: Any, attn_ms: Any, moe_ms: Any, dispatch_ms: Any,
                 combine_ms: Any, overlap_ms: Any, overlap_compute_share: Any) -> Any:
    """One MoE layer in decode. With TBO, one micro-batch's all-to-all hides behind the other's attention while
    the MoE GEMMs of both stay on the compute stream, which runs at ``overlap_compute_share`` of its speed beside
    the transfer: per micro-batch moe + max(attention, dispatch + combine). With single-batch overlap (SBO) the
    combine hides behind ``overlap_ms`` (shared experts and the down GEMM). Otherwise everything is serial."""
    comm = dispatch_ms + combine_ms
    if not isinstance(sbo, Expr) and not np.any(sbo):  # the common case, without the SBO branch's array work
        single = attn_ms + (moe_ms + comm)
    else:
        single = attn_ms + moe_ms + dispatch_ms + where(sbo, maximum(combine_ms - overlap_ms, 0), combine_ms)
    if not isinstance(tbo, Expr) and not np.any(tbo):  # no micro-batches anywhere in the request
        return single
    overlapped = micro_batches * (moe_ms / overlap_compute_share + maximum(attn_ms / overlap_compute_share, comm))
    return where(tbo, overlapped, single)


def sbo_window_ms(shared_ms: Any, routed_ms: Any) -> Any:
    """Compute the combine can hide behind in single-batch overlap: shared experts and the routed down GEMM
    (a third of the routed FLOPs)."""
    return shared_ms + routed_ms / 3


def prefill_moe_layer_ms(micro_batches: Any, tbo: Any, attn_ms: Any, moe_ms: Any, dispatch_ms: Any,
                         combine_ms: Any, overlap_compute_share: Any) -> Any:
    """One MoE layer in prefill. With TBO the compute stream runs attention and MoE of both micro-batches back
    to back, at ``overlap_compute_share`` of its own speed, while the all-to-all of one overlaps the other's
    compute: per micro-batch the slower of compute and communication. Without TBO everything is serial."""
    comm = dispatch_ms + combine_ms
    return where(tbo, micro_batches * maximum((attn_ms + moe_ms) / overlap_compute_share, comm),
                 attn_ms + moe_ms + comm)


def dense_layer_ms(micro_batches: Any, attn_ms: Any, mlp_ms: Any) -> Any:
    """One dense (DenseMLP) layer: no communication to hide."""
    return micro_batches * (attn_ms + mlp_ms)


def mtp_ms(mtp_draft: Any, n_mtp_layers: Any, moe_layer_ms: Any, lm_head_ms: Any) -> Any:
    """Drafting: the MTP module (one MoE layer each) and the LM head run once per draft token."""
    if is_plain_zero(mtp_draft):
        return 0
    return where(n_mtp_layers > 0, mtp_draft * (moe_layer_ms + lm_head_ms), 0)


def engine_overhead_ms(step_overhead_ms: Any, request_overhead_us: Any, requests: Any) -> Any:
    """The engine's work per step that the GPU waits for (scheduling, sampling, input preparation): a fixed part
    plus a part per request the rank schedules."""
    return step_overhead_ms + request_overhead_us * requests / 1000


def step_ms(n_layers: Any, n_dense_layers: Any, dense_layer_ms: Any, moe_layer_ms: Any, lm_head_ms: Any,
            mtp_ms: Any, overhead_ms: Any, time_scale: Any) -> Any:
    """One forward step of the whole model on one GPU: the GPU's work (times ``time_scale``, 1 unless a calibration
    profile measured this phase slower or faster on the user's cluster) and the engine's overhead."""
    layers = n_dense_layers * dense_layer_ms + (n_layers - n_dense_layers) * moe_layer_ms
    if not isinstance(time_scale, Expr) and np.ndim(time_scale) == 0 and time_scale == 1:  # uncalibrated: as is
        return layers + (lm_head_ms + mtp_ms + overhead_ms)  # the smaller terms summed first
    return time_scale * (layers + lm_head_ms + mtp_ms) + overhead_ms


def tpot_ms(step_ms: Any, mtp_accept: Any) -> Any:
    """Time per output token: a step emits mtp_accept tokens per sequence on average."""
    return step_ms / mtp_accept


def per_second(time_ms: Any) -> Any:
    return 1000 / time_ms


def per_gpu(rate: Any, count: Any) -> Any:
    return rate * count


def sequences_per_gpu(batch: Any, attn_tp: Any) -> Any:
    """Sequences per GPU: ``batch`` is per attention data-parallel rank, a group of ``attn_tp`` GPUs."""
    return batch / attn_tp


def input_tokens_per_s(tokens: Any, step_ms: Any) -> Any:
    """Prompt tokens (cache hits included) a GPU takes in per second."""
    return tokens / step_ms * 1000


def computed_tokens(tokens: Any, cache_hit: Any) -> Any:
    """Prompt tokens that miss the prefix cache and go through the model."""
    return tokens * (1 - cache_hit)


def steps_per_prompt(computed_tokens: Any, tokens_per_step: Any) -> Any:
    """Steps (forwards, or decode steps carrying a piece) one prompt takes: its computed tokens over the tokens a
    step takes, rounded up, at least 1."""
    return maximum(-floor(-(computed_tokens / tokens_per_step)), 1)


def prefill_chunks(prompt_len: Any, cache_hit: Any, tokens_per_gpu: Any) -> Any:
    """Forwards one prompt needs on its own: the cache misses over the tokens a forward takes."""
    return steps_per_prompt(prompt_len * (1 - cache_hit), tokens_per_gpu)


def ttft_ms(step_ms: Any, pieces: Any, piece_step_ms: Any, ttft_queue_factor: Any) -> Any:
    """Time to first token once admitted: the rest of the step in progress (``step_ms``: a forward in prefill, a
    mean step in aggregated serving), then the prompt's own pieces, each in the step that carries it (the first
    token comes out of the last): in prefill the pieces are the prompt's forwards, each a forward long."""
    return forward_wait_ms(step_ms, ttft_queue_factor) + pieces * piece_step_ms


def resident_prompt_tokens(rank_tokens: Any, prompt_len: Any) -> Any:
    """Prompt tokens whose KV an attention rank holds during a forward: the prompts the forward works on, each
    whole (a prompt longer than the forward is built chunk by chunk with all its earlier chunks' KV resident)."""
    return maximum(rank_tokens, prompt_len)
