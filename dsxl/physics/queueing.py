"""Waiting for a prefill slot: time-to-first-token percentiles of a pool under random arrivals.

The prefill pool is ``servers`` slots (each instance's forward holds ``tokens_per_forward / input_len`` prompts),
each serving one prompt in ``service_ms``. Requests arrive at ``rate_per_s`` with an inter-arrival coefficient of
variation ``arrival_cv`` (1 = Poisson). The approximation (a G/G/c queue):

- the probability of waiting is Erlang C, ``C(c, a)`` with offered load ``a = rate x service``;
- the mean wait is Erlang C's M/M/c mean times the Allen-Cunneen correction ``(ca^2 + cs^2) / 2``
  (Allen, *Probability, Statistics and Queueing Theory*, 1990; Kingman's heavy-traffic formula at c = 1);
- the wait, given that one waits, has the conditional mean ``Wq / C`` and a gamma shape ``k = 2 / (1 + v)`` with
  ``v = (ca^2 + cs^2) / 2``: exponential (exact) for M/M/c, a lighter tail (k = 4/3) for fixed-length service;
  the p-th percentile wait is the conditional ``1 - (1 - p) / C`` quantile when ``1 - p < C``, else 0.

A forward has a fixed length, so the service's coefficient of variation is 0. TTFT = the rest of the forward in
progress + wait + service + KV transfer.
Tests compare the percentiles with a discrete-event simulation (ciw) at utilisations 0.3-0.9 and 1, 4, 16 slots.
"""

from __future__ import annotations

import math
from typing import Any

from dsxl.core.expr import erlang_b, floor, gamma_quantile, is_symbolic, maximum, where

SERVICE_CV = 0.0  # a prefill forward of a given size takes a fixed time


def erlang_c(servers: Any, offered: Any) -> Any:
    """Probability that an arrival waits in an M/M/c queue with ``servers`` and offered load ``offered`` (=
    arrival rate x service time, Erlangs); 1 at or beyond saturation. Through Erlang B (:func:`erlang_b`), stable
    for thousands of servers."""
    if not is_symbolic(servers, offered) and offered >= servers:
        return 1.0
    b = erlang_b(servers, offered)
    rho = offered / servers
    return where(offered >= servers, 1, b / (1 - rho + rho * b))


def wait_ms(servers: Any, rate_per_s: Any, service_ms: Any, arrival_cv: Any = 1.0, service_cv: float = SERVICE_CV,
            probability: Any = None) -> dict[str, Any]:
    """``{probability, mean, p50, p90, p99, utilization}`` of the wait for a slot (ms). Past saturation the numbers
    are infinite; the workbook's formulas hold while utilization < 1 (its caller shows no wait beyond)."""
    offered = rate_per_s * service_ms / 1000
    rho = offered / servers
    if not is_symbolic(servers, rate_per_s, service_ms, arrival_cv) and rho >= 1:
        return {"probability": 1.0, "mean": math.inf, "p50": math.inf, "p90": math.inf, "p99": math.inf,
                "utilization": rho}
    variability = (arrival_cv ** 2 + service_cv ** 2) / 2
    shape = 2 / (1 + variability)
    c = erlang_c(servers, offered) if probability is None else probability
    mean = c * service_ms / maximum(servers - offered, 1e-9) * variability  # M/M/c mean wait x Allen-Cunneen
    scale = mean / maximum(c, 1e-300) / shape  # the conditional wait's gamma scale
    out = {"probability": c, "mean": mean, "utilization": rho}
    for p in (0.5, 0.9, 0.99):
        out[f"p{round(p * 100)}"] = where(1 - p < c, gamma_quantile(1 - (1 - p) / maximum(c, 1e-300), shape,
                                                                    maximum(scale, 1e-300)), 0)
    return out


def forward_wait_ms(forward_ms: Any, ttft_queue_factor: Any, p: Any = None) -> Any:
    """The wait for the forward in progress: a prompt joins the next forward, so it waits a uniform share of the
    running one, on [0, 2 x factor x forward] (factor 0.5, ``ttft_queue_factor`` in refined.json: one forward). Its
    mean is factor x forward; its p-quantile (p a share, 0.9 for p90) 2 x factor x p x forward."""
    if p is None:
        return ttft_queue_factor * forward_ms
    return 2 * ttft_queue_factor * p * forward_ms


def ttft_ms(servers: int, rate_per_s: float, service_ms: float, transfer_ms: float, arrival_cv: float,
            forward_ms: float, ttft_queue_factor: Any, probability: Any = None) -> dict[str, float]:
    """Time to first token: ``{mean, p50, p90, p99}`` (ms) and the pool's ``utilization``: the forward in progress
    (:func:`forward_wait_ms`), the queue's wait, the prompt's own forwards (``service_ms``) and the KV transfer.
    A percentile adds the forward wait's percentile to the queue's (an upper bound of the sum's)."""
    w = wait_ms(servers, rate_per_s, service_ms, arrival_cv, probability=probability)
    fixed = service_ms + transfer_ms
    out = {"mean": w["mean"] + fixed + forward_wait_ms(forward_ms, ttft_queue_factor), "utilization": w["utilization"]}
    for p in (50, 90, 99):
        out[f"p{p}"] = w[f"p{p}"] + fixed + forward_wait_ms(forward_ms, ttft_queue_factor, p / 100)
    return out


def prefill_slots(ep: Any, attn_tp: Any, tokens_per_forward: Any, tokens_per_s_per_gpu: Any, input_len: Any,
                  cache_hit: Any) -> tuple[Any, Any, Any]:
    """(prompts one prefill instance works on at once, ms one prompt takes, ms of one forward): every attention
    rank's forward holds whole prompts, or one prompt runs over several forwards."""
    computed = input_len * (1 - cache_hit)
    rank_tokens = tokens_per_forward * attn_tp
    forward_ms = tokens_per_forward / tokens_per_s_per_gpu * 1000 * (1 - cache_hit)
    per_rank = maximum(floor(rank_tokens / maximum(computed, 1)), 1)
    forwards = maximum(-floor(-computed / rank_tokens), 1)  # ceil
    return floor(ep / attn_tp) * per_rank, forward_ms * forwards, forward_ms


def concurrency_quantile(mean: Any, arrival_cv: Any, z: Any) -> Any:
    """Requests in flight that ``mean`` (Little's law) exceeds only a share of the time (``z`` its standard normal
    quantile: ``decode_headroom_z`` in refined.json, 2.326 for 1 %): Poisson's normal approximation, its variance
    scaled by (1 + ca^2) / 2 for burstier arrivals."""
    return mean + z * (maximum(mean, 0.0) * (1 + arrival_cv ** 2) / 2) ** 0.5


def headroom_factor(mean: Any, arrival_cv: Any, z: Any) -> Any:
    """How much more decode capacity holds the quantile of the sequences in flight than their mean."""
    return where(mean > 0, concurrency_quantile(mean, arrival_cv, z) / maximum(mean, 1e-300), 1.0)


def unqueued_ttft_ms(ttft_ms: Any, forward_ms: Any, ttft_queue_factor: Any, mean_limit_ms: Any,
                     p90_limit_ms: Any = None, p99_limit_ms: Any = None, p90_set: Any = None,
                     p99_set: Any = None) -> Any:
    """A prefill configuration's TTFT before any queue, as the mean target sees it: its mean TTFT, or where a
    percentile target binds harder, the TTFT that target leaves after the forward in progress's percentile (its
    extra wait over the mean), moved onto the mean target's scale. A configuration qualifies when this is within
    the mean target. ``p90_set`` / ``p99_set``: whether each target is given (the workbook's blank cells); in
    Python a target of None is not set."""
    out = ttft_ms
    for p, limit, given in ((0.9, p90_limit_ms, p90_set), (0.99, p99_limit_ms, p99_set)):
        if limit is None:
            continue
        extra = forward_wait_ms(forward_ms, ttft_queue_factor, p) - forward_wait_ms(forward_ms, ttft_queue_factor)
        bound = maximum(out, ttft_ms + extra - limit + mean_limit_ms)
        out = bound if given is None else where(given, bound, out)
    return out


__all__ = ["concurrency_quantile", "erlang_c", "forward_wait_ms", "headroom_factor", "prefill_slots", "ttft_ms",
           "unqueued_ttft_ms", "wait_ms"]
