"""Planner search speed: dsxl.plan over every catalog GPU (the default grid), configurations/s, and the ratio to
evaluating the same candidates one at a time.

Run: python benchmarks/plan_all.py   (prints figures; never a timed test)
"""

from __future__ import annotations

import numpy as np
from rates import best_seconds, loop_rate, report

from dsxl import load_catalog
from dsxl import plan
from dsxl import predict
from dsxl.planner.plan import BATCH_GRID, PlanInputs


def main() -> None:
    gpus = list(load_catalog().gpus)
    inp = PlanInputs()
    decode = len(inp.ep_sizes) * len(inp.attn_tp_sizes) * len(BATCH_GRID) * 2 * len(inp.tbo_options)
    prefill = len(inp.ep_sizes) * len(inp.attn_tp_sizes) * len(inp.forward_sizes) * len(inp.tbo_options)
    n = len(gpus) * (decode + prefill)
    plan(gpus="H800")  # warm the catalog and caches
    best, r = best_seconds(lambda: plan(gpus="all", output_tokens_per_s=1e6, tpot_ms=50))
    sample = [(g, ep, b) for g in gpus[:2] for ep in (16, 64) for b in np.linspace(1, 1024, 25, dtype=int)]
    rate, sampled = loop_rate(sample, lambda c: predict("decode", c[0], ep=int(c[1]), batch=int(c[2]), kv_len=4864))
    report(n, f"{len(gpus)} GPUs x {decode:,} decode + {prefill} prefill candidates each", "plan --gpu all", best, rate,
           sampled, f"  ({len(r['ranking'])} feasible)")

if __name__ == "__main__":
    main()
