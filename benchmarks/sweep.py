"""Vectorised decode sweep: configurations per second and the speed-up over a Python loop.

Run: python benchmarks/sweep.py   (prints figures; never used as a timed test)
"""

from __future__ import annotations

import time

import numpy as np

from dsxl import load_catalog
from dsxl.model import decode_breakdown, gpu_env


def main() -> None:
    cat = load_catalog()
    gpus = list(cat.gpus.values())                                  # 11 GPUs
    batch = np.arange(1, 513, 4, dtype=float)                      # 128 batch sizes
    seq = np.linspace(512, 32768, 24)                              # 24 sequence lengths
    tps = np.array([1, 4, 8])                                      # forced MLA TP
    env = gpu_env(gpus)
    env = {k: (v[:, None, None, None] if isinstance(v, np.ndarray) else v) for k, v in env.items()}
    b, s, t = batch[None, :, None, None], seq[None, None, :, None], tps[None, None, None, :]
    n = len(gpus) * batch.size * seq.size * tps.size

    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        out = decode_breakdown(env, b, mla_tp=t, seq_len=s, labels=False)
        best = min(best, time.perf_counter() - start)
    assert out["tpot_ms"].shape == (len(gpus), batch.size, seq.size, tps.size)
    vec_rate = n / best

    # the same configurations one at a time (a sample, extrapolated)
    scen = cat.scenario
    sample = [(g, int(bb), float(ss), int(tt)) for g in gpus[:3] for bb in batch[::16] for ss in seq[::6] for tt in tps]
    start = time.perf_counter()
    for g, bb, ss, tt in sample:
        decode_breakdown(g, bb, scen.__class__(**{**scen.__dict__, "seq_len": ss}), mla_tp=tt, labels=False)
    loop_rate = len(sample) / (time.perf_counter() - start)
    print(f"configurations       {n:,} (GPU {len(gpus)} x batch {batch.size} x seq_len {seq.size} x TP {tps.size})")
    print(f"vectorised           {best * 1e3:.1f} ms  ->  {vec_rate:,.0f} configurations/s")
    print(f"scalar Python loop   {loop_rate:,.0f} configurations/s ({len(sample)} sampled)")
    print(f"speed-up             {vec_rate / loop_rate:,.0f}x")


if __name__ == "__main__":
    main()
