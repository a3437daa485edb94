"""Vectorised refined decode model: configurations per second and the ratio to a scalar Python loop.

Run: python benchmarks/refined_sweep.py   (prints figures; never a timed test)
"""

from __future__ import annotations

import numpy as np
from rates import best_seconds, loop_rate, report

from dsxl import load_catalog
from dsxl.refined.predict import predict, quantities


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

    best, out = best_seconds(lambda: _sweep(g, args))
    assert np.shape(out["tpot_ms"]) == shape
    sample = [(gg, int(e), int(b), int(k), bool(t)) for gg in gpus[:2] for e in ep[::2] for b in batch[::64]
              for k in kv[::2] for t in tbo]
    rate, sampled = loop_rate(sample, lambda c: predict("decode", c[0], ep=c[1], batch=c[2], kv_len=c[3], tbo=c[4]))
    report(n, f"GPU {len(gpus)} x EP {ep.size} x batch {batch.size} x context {kv.size} x TBO {tbo.size}", "vectorised",
           best, rate, sampled)


def _sweep(gpus, args):
    """One call over GPU x EP x batch x context x TBO: every intermediate quantity of the refined chain."""
    return quantities("decode", gpus, **args)


if __name__ == "__main__":
    main()
