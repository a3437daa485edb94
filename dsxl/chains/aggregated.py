"""Aggregated serving as one chain for Python and the workbook: the decode step at the mean context, the
admission of prompts beside it (:mod:`dsxl.physics.admission`), one prompt piece through the prefill chain, and
their combination. :func:`run_aggregated` evaluates it; the workbook writes the same steps as cells.
"""

from __future__ import annotations

from typing import Any

from dsxl.chains.step import MS, Step, pin, run
from dsxl.physics import admission as adm, serving

S = Step

# Run on the decode step's quantities (plus input_len, output_len, cache_hit, max_num_tokens).
ADMISSION = [
    S("dp_ranks", adm.dp_ranks, "Attention ranks that meet at every MoE layer", "ranks"),
    S("completions", adm.completions_per_step, "Prompts a rank admits per decode step", "prompts"),
    S("computed_prompt", adm.computed_prompt, "Computed tokens per prompt (cache misses)", "tokens"),
    S("step_budget", adm.step_budget, "Prompt tokens one step can carry on a rank", "tokens",
      {"decode_tokens": "overlap_rank_tokens"}),
    S("piece_tokens", adm.piece_tokens, "Computed prompt tokens per piece", "tokens"),
    S("busy_share", adm.busy_share, "Share of steps a rank carries a piece", "share", {"completions": "completions"}),
    S("straggler_share", adm.straggler_share, "Share of steps some rank carries a piece (all ranks wait)", "share"),
    S("expert_token_share", adm.expert_token_share, "Experts' load in those steps relative to a piece per rank",
      "share"),
    S("piece_input_tokens", adm.piece_input_tokens, "Prompt tokens per GPU of one piece", "tokens"),
    S("decode_slack_ms", adm.weight_slack_ms, "Routed GEMM time with idle tensor cores (per micro-batch)", MS,
      {"gflops": "routed_gflops", "peak_tflops": "moe_peak_tflops", "flops_eff": "routed_flops_eff",
       "gbytes": "routed_gb", "bw_gbs": "mem_bw", "bw_eff": "gemm_bw_eff"}),
    S("pieces", serving.steps_per_prompt, "Steps one prompt takes", "steps",
      {"computed_tokens": "computed_prompt", "tokens_per_step": "piece_tokens"}),
]

# Run on the admission quantities plus the two piece runs (prefixed mixed_ and alone_) and the decode step.
COMBINE = [
    S("mixed_piece_ms", adm.mixed_piece_ms, "A piece mixed into the decode forward", MS,
      {"piece_step_ms": "mixed_step_ms", "piece_lm_head_ms": "mixed_lm_head_ms",
       "piece_overhead_ms": "mixed_overhead_ms", "piece_routed_ms": "mixed_routed_ms",
       "piece_micro_batches": "mixed_micro_batches", "decode_micro_batches": "micro_batches"}),
    S("piece_ms", adm.piece_ms, "What one piece costs the step it runs in", MS,
      {"mixed_ms": "mixed_piece_ms", "alone_ms": "alone_step_ms"}),
    S("step_ms", adm.aggregated_step_ms, "Mean time between decode steps", MS, {"decode_step_ms": "decode_step_ms"}),
    S("tpot_ms", serving.tpot_ms, "Time per output token", MS),
    S("piece_step_ms", adm.piece_step_ms, "A step that carries one of the prompt's pieces", MS,
      {"decode_step_ms": "decode_step_ms"}),
    S("ttft_ms", serving.ttft_ms, "Time to first token once admitted (the step in progress, then the prompt's pieces)",
      MS),
    S("tokens_per_s_per_user", adm.per_user_with_context, "Output tokens/s per user (TTFT counted)", "tokens/s"),
    S("output_tokens_per_s_per_gpu", adm.output_per_gpu, "Output tokens/s per GPU", "tokens/s"),
    S("decoding_share", adm.decoding_share, "Share of requests in flight that are decoding", "share"),
]

# A piece mixed into a decode forward reads no weights and launches no kernels of its own: decode pays those.
SHARED_WITH_DECODE = {name: 0 for name in ("attn_proj_gb", "routed_gb", "shared_gb", "dense_gb", "lm_head_gb",
                                           "attn_launch_ms", "moe_launch_ms", "dense_launch_ms")}
PIECE_OUTPUTS = ("step_ms", "lm_head_ms", "overhead_ms", "routed_ms", "micro_batches")


def piece_env(env: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    """The prefill chain's inputs for one piece. The piece runs with the decode step's overlap setting: one
    setting per instance, the one echoed (a piece never switches on an overlap the decode step runs without)."""
    return dict(env, tokens_per_gpu=a["piece_input_tokens"], prompt_len=env["input_len"],
                moe_token_share=a["expert_token_share"], tbo=a["tbo_on"])


def run_aggregated(env: dict[str, Any], decode_steps: list[Step], prefill_steps: list[Step],
                   fixed: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(decode quantities, aggregated quantities) for one environment (numbers or arrays)."""
    fixed = fixed or {}
    d = run(decode_steps, env, fixed)
    a = run(ADMISSION, d)
    penv = piece_env(env, a)
    mixed = run(pin(prefill_steps, {**SHARED_WITH_DECODE, **fixed}), penv)
    alone = run(prefill_steps, penv, fixed)
    c = {**a, **{f"mixed_{k}": mixed[k] for k in PIECE_OUTPUTS}, "alone_step_ms": alone["step_ms"],
         "decode_step_ms": d["step_ms"]}
    return d, run(COMBINE, c)
