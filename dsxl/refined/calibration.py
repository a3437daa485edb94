"""The joint fit: every refined constant that no kernel row pins down, fitted together over the calibration rows.

The parameters, their priors, bounds and scope are declared in ``templates/fitted.json``. A fit:

1. releases a parameter only where at least ``min_rows`` of the rows move by more than :data:`MOVES` (relative)
   when the parameter moves halfway from its prior towards its farther bound; the others keep their priors;
2. solves ``scipy.optimize.least_squares`` on the log-ratio residuals ``log(predicted / measured)`` of every row,
   within the declared bounds (parameters scaled to [0, 1] so each step size means the same);
3. for leave-one-out, repeats 1-2 without each row in turn and predicts that row.

``python -m dsxl.refined.calibration --write`` regenerates the ``fit`` and ``rows`` sections of
``templates/fitted.json``; a test re-fits and compares. :func:`fit_rows` serves ``dsxl calibrate`` too.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.optimize import least_squares

from dsxl.refined.fit_parameters import Parameter, parameters, row_constants
from dsxl.refined.validation import Measurement, load_measurements, predict_row

MOVES = 0.02  # a row "moves with" a parameter when its prediction changes by more than this share
SHRINK = 0.02  # weight of log(factor) per engine factor: small beside a row's residual, enough to fix the split
TOLERANCE = 0.05  # residuals past this log ratio weigh quadratically more: no row is sacrificed to the others


def predict_rows(rows: Sequence[Measurement], values: dict[str, float], params: Sequence[Parameter]) -> np.ndarray:
    return np.array([predict_row(m, constants=row_constants(m, values, params))[0] for m in rows])


@dataclass
class Fit:
    values: dict[str, float]
    released: dict[str, list[str]]  # parameter -> the rows that move with it (released ones only)
    kept: dict[str, str]  # parameter -> why it keeps its prior
    predicted: np.ndarray
    cost: float


def fit_rows(rows: Sequence[Measurement], params: Sequence[Parameter] | None = None,
             start: dict[str, float] | None = None, only: set[str] | None = None) -> Fit:
    """Fit ``params`` (default: the declared ones) to ``rows``; ``start`` replaces the priors (a user's
    calibration starts from the shipped values); ``only`` limits which parameters may be released."""
    params = list(params or parameters())
    values = {p.name: (start or {}).get(p.name, p.prior) for p in params}
    measured = np.array([m.measured for m in rows])
    base = predict_rows(rows, values, params)
    released: dict[str, list[str]] = {}
    kept: dict[str, str] = {}
    for p in params:
        if only is not None and p.name not in only:
            kept[p.name] = "not asked for"
            continue
        moved = predict_rows(rows, {**values, p.name: p.probe(values[p.name])}, params)
        ids = [m.id for m, a, b in zip(rows, base, moved) if abs(b / a - 1) > MOVES]
        if len(ids) >= p.min_rows:
            released[p.name] = ids
        else:
            kept[p.name] = (f"{len(ids)} row{'s' if len(ids) != 1 else ''} move with it"
                            + (f" ({', '.join(ids)})" if ids else "") + f"; it needs {p.min_rows}")
    free = [p for p in params if p.name in released]
    if not free:
        return Fit(values, released, kept, base, float(np.sum(np.log(base / measured) ** 2)))

    def unpack(x: np.ndarray) -> dict[str, float]:
        return {**values, **{p.name: p.lo + xi * (p.hi - p.lo) for p, xi in zip(free, x)}}

    # engine factors lean to 1 (the common value); refitting shipped values to a user's rows, every constant but a
    # phase scale leans to where it started
    pulled = [p for p in free if p.kind == "engine_factor" or (start is not None and p.kind != "scale")]

    def residuals(x: np.ndarray) -> np.ndarray:
        v = unpack(x)
        r = np.log(predict_rows(rows, v, params) / measured)
        pull = [SHRINK * np.log(v[p.name] / values[p.name]) for p in pulled]
        return np.concatenate([r * np.sqrt(1 + (r / TOLERANCE) ** 2), pull])  # past the tolerance: grows faster

    x0 = np.array([(values[p.name] - p.lo) / (p.hi - p.lo) for p in free])
    sol = least_squares(residuals, np.clip(x0, 0, 1), bounds=(0, 1), diff_step=1e-3, xtol=1e-6, ftol=1e-8)
    fitted = {k: float(f"{v:.4g}") for k, v in unpack(sol.x).items()}
    predicted = predict_rows(rows, fitted, params)
    return Fit(fitted, released, kept, predicted, float(np.sum(np.log(predicted / measured) ** 2)))


def leave_one_out(rows: Sequence[Measurement], params: Sequence[Parameter] | None = None,
                  start: dict[str, float] | None = None) -> dict[str, float]:
    """Each row predicted by a fit to all the others (its leave-one-out prediction)."""
    params = list(params or parameters())
    out = {}
    for i, m in enumerate(rows):
        rest = [r for j, r in enumerate(rows) if j != i]
        f = fit_rows(rest, params, start)
        out[m.id] = float(predict_rows([m], f.values, params)[0])
    return out


def calibration_rows() -> list[Measurement]:
    return [m for m in load_measurements() if m.role == "calibration"]


def generate() -> dict[str, Any]:
    """The ``fit`` and ``rows`` sections of templates/fitted.json, computed afresh."""
    rows = calibration_rows()
    params = parameters()
    f = fit_rows(rows, params)
    loo = leave_one_out(rows, params)
    fit = {}
    for p in params:
        entry: dict[str, Any] = {"value": f.values[p.name], "released": p.name in f.released}
        if p.name in f.released:
            entry["rows"] = f.released[p.name]
        else:
            entry["why_kept"] = f.kept[p.name]
        fit[p.name] = entry
    out_rows = {}
    for m, pred in zip(rows, f.predicted):
        out_rows[m.id] = {"measured": m.measured, "fitted": round(float(pred), 2),
                          "error": round(float(pred / m.measured - 1), 4), "loo": round(loo[m.id], 2),
                          "loo_error": round(loo[m.id] / m.measured - 1, 4)}
    return {"fit": fit, "rows": out_rows}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    result = generate()
    text = json.dumps(result, indent=2)
    if "--write" in argv:
        path = Path(__file__).resolve().parents[2] / "templates" / "fitted.json"
        data = json.loads(path.read_text())
        data.update(result)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

