"""Aggregated serving as engines schedule it: how prompts are admitted beside running decodes.

Every decode step of an attention rank finishes ``batch x mtp_accept / output_len`` sequences on average, and each
freed slot admits a prompt. The engine feeds that prompt through in pieces of at most its step token budget: mixed
into the decode forward (TensorRT-LLM, vLLM: ``max_num_tokens`` / ``max_num_batched_tokens`` shared with the decode
tokens) or as a prefill forward of its own (SGLang: ``--chunked-prefill-size``, split over the DP ranks under DP
attention). Under attention data parallelism every MoE layer waits for the slowest rank, so a step is slowed
whenever *any* of the instance's ranks carries a piece: with ``R`` ranks each busy a share ``q`` of the steps, that
is ``1 - (1 - q)^R`` of the steps. The experts, meanwhile, see the group's mean load. Units: tokens and steps per
attention rank; times in ms.
"""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import maximum, minimum, where


def dp_ranks(instance_gpus: Any, attn_tp: Any) -> Any:
    """Attention data-parallel ranks of one instance: they meet at every MoE layer's all-to-all."""
    return maximum(instance_gpus / attn_tp, 1)


def completions_per_step(batch: Any, mtp_accept: Any, output_len: Any) -> Any:
    """Sequences a rank finishes (and prompts it admits) per decode step, on average."""
    return batch * mtp_accept / output_len


def computed_prompt(input_len: Any, cache_hit: Any) -> Any:
    """Prompt tokens that go through the model (prefix-cache misses)."""
    return input_len * (1 - cache_hit)


def step_budget(mixed_prefill: Any, max_num_tokens: Any, decode_tokens: Any, chunk_split_by_dp: Any,
                dp_ranks: Any) -> Any:
    """Prompt tokens one step can carry on a rank: what the token budget leaves beside the decode tokens when the
    engine mixes them, else its prefill chunk (divided over the DP ranks where the engine does so)."""
    separate = where(chunk_split_by_dp > 0, max_num_tokens / dp_ranks, max_num_tokens)
    return maximum(where(mixed_prefill > 0, max_num_tokens - decode_tokens, separate), 1)


def piece_tokens(computed_prompt: Any, step_budget: Any) -> Any:
    """Computed prompt tokens per piece: the whole prompt when it fits the budget, else budget-sized chunks."""
    return maximum(minimum(computed_prompt, step_budget), 1)


def busy_share(completions: Any, computed_prompt: Any, piece_tokens: Any) -> Any:
    """Share of steps in which a rank carries a prompt piece."""
    return minimum(completions * computed_prompt / piece_tokens, 1)


def straggler_share(busy_share: Any, dp_ranks: Any) -> Any:
    """Share of steps in which at least one of the instance's ranks carries a piece (and so all of them wait).
    The idle probability's base is floored where its power would fall below 1e-300 (spreadsheets report an
    underflow as #NUM!): the share is then 1 to double precision either way."""
    return 1 - maximum(1 - busy_share, 1e-300 ** (1 / dp_ranks)) ** dp_ranks


def expert_token_share(busy_share: Any, straggler_share: Any) -> Any:
    """Tokens the experts see per slowed step, relative to one full piece on every rank: the group's mean load."""
    return where(straggler_share > 0, busy_share / maximum(straggler_share, 1e-12), 1)


def piece_input_tokens(piece_tokens: Any, cache_hit: Any, attn_tp: Any) -> Any:
    """Prompt tokens per GPU (cache hits included) of one piece, the prefill chain's tokens_per_gpu."""
    return piece_tokens / maximum(1 - cache_hit, 0.001) / attn_tp


def weight_slack_ms(gflops: Any, peak_tflops: Any, flops_eff: Any, sm_share: Any, gbytes: Any, bw_gbs: Any,
                    bw_eff: Any) -> Any:
    """Time a weight-bound GEMM leaves its tensor cores idle: weight reads minus compute, at least 0 (ms). FLOPs
    of a prompt piece mixed into the same kernel run there for free."""
    return maximum(gbytes / (bw_gbs * bw_eff) * 1000 - gflops / (peak_tflops * flops_eff * sm_share), 0)


def mixed_piece_ms(piece_step_ms: Any, piece_lm_head_ms: Any, piece_overhead_ms: Any, piece_routed_ms: Any,
                   piece_micro_batches: Any, decode_slack_ms: Any, decode_micro_batches: Any,
                   n_sparse_layers: Any) -> Any:
    """What a piece adds to the decode forward it is mixed into: its forward without weight reads, launches, LM head
    or step overhead (decode pays those), less the routed-expert FLOPs that hide under decode's weight reads."""
    hidden = minimum(piece_routed_ms * piece_micro_batches, decode_slack_ms * decode_micro_batches)
    return piece_step_ms - piece_lm_head_ms - piece_overhead_ms - n_sparse_layers * hidden


def piece_ms(mixed_prefill: Any, mixed_ms: Any, alone_ms: Any) -> Any:
    """A piece's cost: added to a mixed forward, or a whole prefill forward the decodes wait for."""
    return where(mixed_prefill > 0, mixed_ms, alone_ms)


def aggregated_step_ms(decode_step_ms: Any, straggler_share: Any, piece_ms: Any) -> Any:
    """Mean time between decode steps: the decode forward plus, in the steps some rank admits, its piece."""
    return decode_step_ms + straggler_share * piece_ms


def piece_step_ms(mixed_prefill: Any, decode_step_ms: Any, piece_ms: Any) -> Any:
    """A step that carries one of a prompt's pieces: the decode forward with the piece mixed in, or the prefill
    forward alone (the engine runs a waiting prompt's chunks back to back, the decodes waiting)."""
    return where(mixed_prefill > 0, decode_step_ms + piece_ms, piece_ms)


def per_user_with_context(output_len: Any, ttft_ms: Any, step_ms: Any, mtp_accept: Any) -> Any:
    """Output tokens/s per user counting the time to first token (as benchmarks report it)."""
    return 1000 * output_len / (ttft_ms + output_len / mtp_accept * step_ms)


def output_per_gpu(batch: Any, attn_tp: Any, mtp_accept: Any, step_ms: Any) -> Any:
    """Output tokens/s per GPU: the rank's sequences each emit mtp_accept tokens per step."""
    return batch / attn_tp * mtp_accept * 1000 / step_ms


def decoding_share(ttft_ms: Any, output_len: Any, step_ms: Any, mtp_accept: Any) -> Any:
    """Little's law: the share of requests in flight that are decoding (the rest wait for or are in prefill)."""
    decode_time = output_len / mtp_accept * step_ms
    return decode_time / (ttft_ms + decode_time)
