"""Vectorised refined decode model: configurations per second and the ratio to a scalar Python loop.

Run: python benchmarks/refined_sweep.py   (prints figures; never a timed test)
"""

from __future__ import annotations

import time

import numpy as np

from dsxl import load_catalog
from dsxl.predict import predict, quantities


def main() -> None:
    cat = load_catalog()
    gpus = [g for g in cat.gpus.values()]                       # 11 GPUs
    ep = np.array([8, 16, 32, 64, 128, 256])                      # 6 EP sizes
    batch = np.arange(1, 513, 2)                                 # 256 batch sizes
    kv = np.array([1024, 4096, 16384, 65536])                    # 4 contexts
    tbo = np.array([False, True])                                # 2 overlap settings
    shape = (len(gpus), ep.size, batch.size, kv.size, tbo.size)
    n = int(np.prod(shape))
    g = gpus  # a list of GPUs is a leading axis
    args = dict(ep=ep[:, None, None, None], batch=batch[None, :, None, None], kv_len=kv[None, None, :, None],
                tbo=tbo[None, None, None, :])

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        out = _sweep(g, args)
        best = min(best, time.perf_counter() - start)
    assert np.shape(out["tpot_ms"]) == shape
    vec_rate = n / best

    sample = [(gg, int(e), int(b), int(k), bool(t)) for gg in gpus[:2] for e in ep[::2] for b in batch[::64]
              for k in kv[::2] for t in tbo]
    start = time.perf_counter()
    for gg, e, b, k, t in sample:
        predict("decode", gg, ep=e, batch=b, kv_len=k, tbo=t)
    loop_rate = len(sample) / (time.perf_counter() - start)
    print(f"configurations       {n:,} (GPU {len(gpus)} x EP {ep.size} x batch {batch.size} x context {kv.size} "
          f"x TBO {tbo.size})")
    print(f"vectorised           {best * 1e3:.0f} ms  ->  {vec_rate:,.0f} configurations/s")
    print(f"scalar Python loop   {loop_rate:,.0f} configurations/s ({len(sample)} sampled)")
    print(f"speed-up             {vec_rate / loop_rate:,.0f}x")


def _sweep(gpus, args):
    """One call over GPU x EP x batch x context x TBO: every intermediate quantity of the refined chain."""
    return quantities("decode", gpus, **args)


if __name__ == "__main__":
    main()
