"""dsxl calibrate speed: seconds to fit and hold out 3, 30 and 300 runs of a cluster 20 % slower than shipped, and
the ratio to fitting the same rows one prediction at a time (the routine before rows were predicted in groups).

Run: python benchmarks/calibrate_rows.py   (prints figures; never a timed test)
"""

from __future__ import annotations

import csv
import itertools
import tempfile
from pathlib import Path

import numpy as np
from rates import best_seconds

from dsxl.refined.calibrated import all_parameters
from dsxl.refined.calibration import predict_rows
from dsxl.refined.fit_parameters import row_constants, shipped_values
from dsxl.refined.predict import predict
from dsxl.refined.profile import calibrate
from dsxl.refined.validation import COLUMNS, parse_measurements, predict_row

SLOWER = 0.8


def runs(n: int) -> list[dict[str, str]]:
    """``n`` H200 SGLang runs, three decode to one prefill, at 0.8 x the shipped prediction (distinct configurations
    while they last, then repeats that merge)."""
    decode = list(itertools.product([8, 16, 32, 64], [16, 32, 64, 96, 128], [1024, 2048, 3072, 4096]))
    prefill = list(itertools.product([8, 16, 32], [4096, 8192, 16384], [2048, 4096]))
    rows = []
    for i in range(n):
        row = dict.fromkeys(COLUMNS, "")
        if i % 4 == 3:
            ep, tokens, prompt = prefill[(i // 4) % len(prefill)]
            opts = dict(ep=ep, tokens_per_gpu=tokens, prompt_len=prompt)
            row.update(phase="prefill", metric="input tokens/s per GPU")
        else:
            ep, batch, kv = decode[(i * 7) % len(decode)]
            opts = dict(ep=ep, batch=batch, kv_len=kv)
            row.update(phase="decode", metric="output tokens/s per GPU")
        shipped = predict(row["phase"], "H200", **opts)["tokens_per_s_per_gpu"]
        row.update({k: str(v) for k, v in opts.items()}, id=f"R{i + 1}", gpu="H200", model="deepseek_v3",
                   engine="sglang", measured=f"{SLOWER * shipped:.3f}", source="benchmark")
        rows.append(row)
    return rows


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    for n in (3, 30, 300):
        path = folder / f"runs{n}.csv"
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, COLUMNS)
            w.writeheader()
            w.writerows(runs(n))
        seconds, profile = best_seconds(lambda: calibrate(path), repeats=2)
        print(f"{n:>4} rows  {seconds:6.2f} s  held out: {profile['held_out']}, fitted "
              f"{', '.join(f'{k} {v:g}' for k, v in profile['fitted'].items())}")
    rows = parse_measurements((folder / "runs30.csv").read_text(), "runs30.csv")
    params = all_parameters()
    values = shipped_values(params)
    grouped, _ = best_seconds(lambda: predict_rows(rows, values, params))
    one, _ = best_seconds(lambda: np.array([predict_row(m, constants=row_constants(m, values, params))[0]
                                            for m in rows]))
    print(f"30 rows predicted once: grouped {grouped * 1e3:.1f} ms, one at a time {one * 1e3:.1f} ms "
          f"({one / grouped:.1f}x)")


if __name__ == "__main__":
    main()
