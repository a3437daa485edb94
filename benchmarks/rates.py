"""Shared by the benchmarks: the best of a few timed runs, a scalar-loop rate, and the printed comparison."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable


def best_seconds(run: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """The fastest of ``repeats`` runs (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def loop_rate(items: Iterable[Any], one: Callable[[Any], Any]) -> tuple[float, int]:
    """Items per second evaluated one at a time in Python, and how many were sampled."""
    items = list(items)
    start = time.perf_counter()
    for item in items:
        one(item)
    return len(items) / (time.perf_counter() - start), len(items)


def report(n: int, what: str, label: str, seconds: float, scalar_rate: float, sampled: int, extra: str = "") -> None:
    rate = n / seconds
    print(f"configurations       {n:,} ({what})")
    print(f"{label:<20} {seconds * 1e3:,.1f} ms  ->  {rate:,.0f} configurations/s{extra}")
    print(f"scalar Python loop   {scalar_rate:,.0f} configurations/s ({sampled} sampled)")
    print(f"speed-up             {rate / scalar_rate:,.0f}x")
