"""Cluster sizing: whole EP groups for a load, nodes, which candidates qualify (costs: :mod:`dsxl.planner.economics`).

Scalars, arrays or formulas, like every model function: the planner and the workbook's Planner sheet share them.
"""

from __future__ import annotations

from typing import Any

from dsxl.core.expr import both, floor, maximum, minimum, where


def ceil(x: Any) -> Any:
    """Round up to a whole number (``-INT(-x)`` in a spreadsheet)."""
    return -floor(-x)


def input_tokens_per_s(output_tokens_per_s: Any, input_len: Any, output_len: Any) -> Any:
    """Prompt tokens per second (cache hits included) that come with the output load."""
    return output_tokens_per_s * input_len / output_len


def instances(load: Any, tokens_per_s_per_gpu: Any, ep: Any) -> Any:
    """Whole EP groups (serving instances) needed for a load, at least one."""
    return maximum(ceil(load / (tokens_per_s_per_gpu * ep)), 1)


def gpus(instances: Any, ep: Any) -> Any:
    return instances * ep


def nodes(gpus: Any, gpu_per_node: Any) -> Any:
    """Whole nodes holding the GPUs."""
    return ceil(gpus / gpu_per_node)












def best_if(ok: Any, value: Any) -> Any:
    """A candidate's score for the search: its value where it is feasible, else 0."""
    return where(ok, value, 0)


def worst_unless(ok: Any, value: Any) -> Any:
    """A candidate's value where ``ok``, else a huge number (so MIN skips it)."""
    return where(ok, value, 1e99)


def decode_ok(fits: Any, tpot_ms: Any, tpot_limit_ms: Any, mtp_draft: Any, n_mtp_layers: Any) -> Any:
    """A decode candidate qualifies when it fits, meets the TPOT SLA and drafts only with an MTP module."""
    return both(both(fits, tpot_ms <= tpot_limit_ms), where(mtp_draft > 0, n_mtp_layers > 0, True))


def prefill_ok(fits: Any, ttft_ms: Any, ttft_limit_ms: Any) -> Any:
    return both(fits, ttft_ms <= ttft_limit_ms)


def pool_gpus(ok: Any, load: Any, tokens_per_s_per_gpu: Any, ep: Any) -> Any:
    """GPUs a pool of this candidate's instances needs for ``load`` (a huge number where it does not qualify)."""
    return where(ok, gpus(instances(load, tokens_per_s_per_gpu, ep), ep), 1e99)


def budget_score(score: Any, ep: Any, budget_gpus: Any, other_ep: Any) -> Any:
    """A candidate's score within a budget: its score where one instance of it and the smallest instance of the
    other pool fit in the budget, else 0."""
    return where(ep + other_ep <= budget_gpus, score, 0)


def size_key(pool_gpus: Any, tokens_per_s_per_gpu: Any) -> Any:
    """What the least-cost choice minimises: the pool's GPUs, ties going to the faster candidate (the tie-break term
    stays below one GPU for any real capacity)."""
    return pool_gpus * (1 - tokens_per_s_per_gpu * 1e-12)


def budget_capacity(budget_gpus: Any, decode_capacity: Any, decode_ep: Any, prefill_capacity: Any, prefill_ep: Any,
                    input_per_output: Any) -> Any:
    """Output tokens/s one decode and one prefill configuration serve within ``budget_gpus`` in whole instances
    (``*_capacity``: tokens/s of one instance): the continuous split rounded both ways, the better kept."""
    load = budget_gpus / (decode_ep / decode_capacity + input_per_output * prefill_ep / prefill_capacity)
    best = 0
    for k in (floor(load / decode_capacity), floor(load / decode_capacity) + 1):
        k_prefill = floor((budget_gpus - k * decode_ep) / prefill_ep)
        served = minimum(k * decode_capacity, k_prefill * prefill_capacity / input_per_output)
        best = maximum(best, where(both(k >= 1, k_prefill >= 1), served, 0))
    return best
