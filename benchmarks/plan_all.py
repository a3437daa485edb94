"""Planner search speed: dsxl.plan over every catalog GPU (the default grid), configurations/s, and the ratio to
evaluating the same candidates one at a time.

Run: python benchmarks/plan_all.py   (prints figures; never a timed test)
"""

from __future__ import annotations

import time

import numpy as np

from dsxl import load_catalog, plan, predict
from dsxl.plan import BATCH_GRID, PlanInputs


def main() -> None:
    gpus = list(load_catalog().gpus)
    inp = PlanInputs()
    decode = len(inp.ep_sizes) * len(inp.attn_tp_sizes) * len(BATCH_GRID) * 2 * len(inp.tbo_options)
    prefill = len(inp.ep_sizes) * len(inp.attn_tp_sizes) * len(inp.forward_sizes) * len(inp.tbo_options)
    n = len(gpus) * (decode + prefill)
    plan(gpus="H800")  # warm the catalog and caches
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        r = plan(gpus="all", output_tokens_per_s=1e6, tpot_ms=50)
        best = min(best, time.perf_counter() - start)
    sample = [(g, ep, b) for g in gpus[:2] for ep in (16, 64) for b in np.linspace(1, 1024, 25, dtype=int)]
    start = time.perf_counter()
    for g, ep, b in sample:
        predict("decode", g, ep=int(ep), batch=int(b), kv_len=4864)
    loop_rate = len(sample) / (time.perf_counter() - start)
    print(f"candidates           {n:,} ({len(gpus)} GPUs x {decode:,} decode + {prefill} prefill each)")
    print(f"plan --gpu all       {best:.2f} s  ->  {n / best:,.0f} configurations/s  ({len(r['ranking'])} feasible)")
    print(f"scalar Python loop   {loop_rate:,.0f} configurations/s ({len(sample)} sampled)")
    print(f"speed-up             {n / best / loop_rate:,.0f}x")


if __name__ == "__main__":
    main()
