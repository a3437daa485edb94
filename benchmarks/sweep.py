"""Vectorised decode sweep: configurations per second and the speed-up over a Python loop.

Run: python benchmarks/sweep.py   (prints figures; never used as a timed test)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from rates import best_seconds, loop_rate, report

from dsxl import load_catalog
from dsxl.article.api import decode_breakdown, gpu_env


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

    best, out = best_seconds(lambda: decode_breakdown(env, b, mla_tp=t, seq_len=s, labels=False), 5)
    assert out["tpot_ms"].shape == (len(gpus), batch.size, seq.size, tps.size)

    # the same configurations one at a time (a sample, extrapolated)
    scen = cat.scenario
    sample = [(g, int(bb), float(ss), int(tt)) for g in gpus[:3] for bb in batch[::16] for ss in seq[::6] for tt in tps]
    rate, sampled = loop_rate(sample, lambda c: decode_breakdown(c[0], c[1], replace(scen, seq_len=c[2]), mla_tp=c[3],
                                                                 labels=False))
    report(n, f"GPU {len(gpus)} x batch {batch.size} x seq_len {seq.size} x TP {tps.size}", "vectorised", best, rate,
           sampled)


if __name__ == "__main__":
    main()
