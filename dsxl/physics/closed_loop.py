"""A benchmark's closed loop: ``concurrency`` requests kept in flight, a new one starting when one finishes (how
InferenceX and most serving benchmarks load an engine). Little's law ties the request rate to the time a request
takes, its TTFT plus its decode; for disaggregated serving the prefill pool is a queue in front of the decode pool.
Times in ms, rates per second; numbers or numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def request_rate(concurrency: Any, ttft_ms: Any, tpot_ms: Any, output_len: Any) -> Any:
    """Requests per second a closed loop of ``concurrency`` completes: each takes TTFT, then its output."""
    return 1000 * concurrency / (ttft_ms + output_len * tpot_ms)


def decoding_requests(rate_per_s: Any, tpot_ms: Any, output_len: Any) -> Any:
    """Requests decoding at any moment (Little's law over the decode time)."""
    return rate_per_s * output_len * tpot_ms / 1000


def prefill_utilization(rate_per_s: Any, capacity_per_s: Any) -> Any:
    """Share of the prefill pool's capacity (prompts per second) the load uses."""
    return rate_per_s / capacity_per_s


# Past this utilization the closed loop is prefill-bound: the requests that are not decoding queue at prefill.
SATURATED = 0.98


def prefill_ttft_ms(service_ms: Any, utilization: Any) -> Any:
    """Mean TTFT at a prefill pool that is not saturated: the prompt's own forwards plus the mean wait of a queue
    with fixed service times (Pollaczek-Khinchine, M/D/1 per forward stream): service x rho / (2 (1 - rho))."""
    rho = np.minimum(utilization, SATURATED)
    return service_ms * (1 + rho / (2 * (1 - rho)))


def saturated_ttft_ms(concurrency: Any, rate_per_s: Any, tpot_ms: Any, output_len: Any) -> Any:
    """TTFT when prefill binds: every request not decoding waits for or is in prefill (Little's law)."""
    return 1000 * concurrency / rate_per_s - output_len * tpot_ms
