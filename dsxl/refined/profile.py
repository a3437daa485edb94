"""Calibrate to your own cluster: a planner's measured runs become a profile that predict, plan, validate, the
UDFs and the workbook use (``dsxl calibrate RUNS.csv -o PROFILE.json``).

The runs have the columns of ``templates/measurements.csv``. :func:`calibrate` refits, with the joint-fit routine
(:mod:`dsxl.refined.calibration`) starting from the shipped values, only what the runs can pin down: with one or two
rows, one GPU-time scale per phase (``decode_time_scale``, ``prefill_time_scale``); with more, also the declared
constants that at least two rows move with. Each row gets its shipped and calibrated prediction and, from three rows
on, its leave-one-out error, which becomes the band of predictions near the rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import textwrap
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dsxl._version import __version__
from dsxl.data.user_files import read_text
from dsxl.data.catalog import default_engine, load_catalog
from dsxl.refined.predict import predict
from dsxl.refined.calibrated import FORMAT, all_parameters
from dsxl.refined.calibration import fit_rows, held_out_folds, leave_one_out, predict_rows
from dsxl.refined.fit_parameters import PHASE_SCALES, shipped_values
from dsxl.refined.validation import ABLATIONS, COLUMNS, Measurement, parse_measurements, predict_row

MIN_LOO_ROWS = 3


def template_text() -> str:
    """An empty runs file: the header and one commented example row."""
    engine, gpu, model = default_engine(), load_catalog().default_gpu, load_catalog().default_model
    config = {"ep": 16, "batch": 64, "kv_len": 4096}
    shipped = predict("decode", gpu, model, engine=engine, detail=False, **config)["tokens_per_s_per_gpu"]
    example = {"id": "R1", "role": "calibration", "phase": "decode", "metric": "output tokens/s per GPU", "gpu": gpu,
               "model": model, **{k: str(v) for k, v in config.items()}, "engine": engine,
               "measured": f"{round(0.9 * shipped, -1):g}",  # a plausible figure: 0.9 x the shipped model's
               "source": f"our cluster, 2026-11-30, {engine} 0.5 (comments start with #)"}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerow([example.get(c, "") for c in COLUMNS])
    header, row = text.getvalue().splitlines()
    return f"{header}\n# {row}\n"


def _read(path: Path) -> str:
    return read_text(path, "runs file")


def _key(m: Measurement) -> tuple:
    return (m.phase, m.metric, m.gpu, m.model, tuple(sorted((k, str(v)) for k, v in m.conditions.items() if v is not None)))


# the hardware's bound: datasheet peaks at full efficiency, no fixed kernel, engine or communication time
ROOFLINE = {"constants": {**ABLATIONS["kernel_efficiency"]["constants"], **ABLATIONS["launch_latency"]["constants"],
                          "overlap_compute_share": 1},
            "fixed": {**ABLATIONS["all_to_all"]["fixed"], "overhead_ms": 0}}


def _check_run(m: Measurement, source: str) -> None:
    """A run the model can take: it fits in memory as dsxl budgets it, and it is no faster than the roofline."""
    where_ = f"{source} row {m.id}"
    try:
        r = predict_row(m)[2]
    except ValueError as exc:
        raise ValueError(f"{where_}: {exc}") from None
    if r.get("fits") is False:
        raise ValueError(f"{where_}: does not fit in memory on {m.gpu} as dsxl budgets it ({r.get('reason')})")
    bound = predict_row(m, constants=ROOFLINE["constants"], fixed=ROOFLINE["fixed"])[0]
    if m.measured > bound:
        raise ValueError(f"{where_}, column measured: {m.measured:,.6g} {m.metric} is above the roofline of this "
                         f"configuration on {m.gpu}, {bound:,.6g} (datasheet peak FLOPs and HBM bandwidth at full "
                         "efficiency, no fixed or communication time); check the metric and its unit")


def check_runs(rows: list[Measurement], source: str) -> tuple[list[Measurement], list[str]]:
    """(the runs to fit, notes): each row a configuration the model takes (:func:`_check_run`); rows of the same
    configuration merged into one at their geometric mean (a note says which), refused when more than 2x apart."""
    if not rows:
        raise ValueError(f"{source}: no runs (one row per measured configuration; dsxl calibrate --template)")
    same: dict[tuple, list[Measurement]] = {}
    ids: dict[str, tuple] = {}
    for m in rows:
        _check_run(m, source)
        if ids.setdefault(m.id, _key(m)) != _key(m):
            raise ValueError(f"{source} row {m.id}, column id: names two different configurations; give each its own")
        same.setdefault(_key(m), []).append(m)
    out, notes = [], []
    for group in same.values():
        lo, hi = min(group, key=lambda m: m.measured), max(group, key=lambda m: m.measured)
        if hi.measured > 2 * lo.measured:
            raise ValueError(f"{source} rows {lo.id} and {hi.id}: the same configuration measured "
                             f"{lo.measured:g} and {hi.measured:g}, more than 2x apart")
        if len(group) > 1:
            mean = float(np.exp(np.mean(np.log([m.measured for m in group]))))
            merged = "+".join(dict.fromkeys(m.id for m in group))
            notes.append(f"rows {merged} ({len(group)} rows) measure the same configuration: merged at their "
                         f"geometric mean {mean:,.6g}")
            group = [replace(group[0], id=merged, measured=mean)]
        out.append(group[0])
    return out, notes


def _pinned_by(ids: list[str], shares: dict[str, float]) -> str:
    """Which rows pin a fitted constant: those carrying a tenth of its sensitivity, else the three that carry most."""
    if ids:
        return f"pinned by rows {', '.join(ids)}"
    top = list(shares)[:3]
    return f"pinned by {len(shares)} rows together, most by {', '.join(top)}" if top else "pinned by the rows"


def calibrate(path: Path) -> dict[str, Any]:
    """The profile of a runs file (deterministic: the same file gives the same profile)."""
    path = Path(path)
    text = _read(path)
    rows, notes = check_runs(parse_measurements(text, path.name), path.name)
    params = all_parameters()
    start = shipped_values(params)
    few = len(rows) < MIN_LOO_ROWS
    only = {p.name for p in PHASE_SCALES} if few else None
    f = fit_rows(rows, params, start=start, only=only)
    shipped = predict_rows(rows, start, params)
    loo = {} if few else leave_one_out(rows, params, start=start, free=list(f.released))
    fitted = {name: f.values[name] for name in f.released}
    why = {name: _pinned_by(ids, f.shares.get(name, {})) for name, ids in f.released.items()}
    why.update({name: ("one or two rows: only a GPU-time scale per phase is fitted" if few and reason == "not asked for"
                       else reason) for name, reason in f.kept.items()})
    out_rows = []
    for m, s, c in zip(rows, shipped, f.predicted):
        out_rows.append({"id": m.id, "phase": m.phase, "gpu": m.gpu, "generation": load_catalog().gpu(m.gpu).generation,
                         "engine": m.conditions.get("engine") or default_engine(), "model": m.model, "metric": m.metric,
                         "conditions": {k: v for k, v in m.options().items()},
                         "measured": m.measured, "shipped": round(float(s), 4), "calibrated": round(float(c), 4),
                         "error": round(float(c / m.measured - 1), 4),
                         "loo_error": round(loo[m.id] / m.measured - 1, 4) if m.id in loo else None})
    errors = np.array([r["error"] for r in out_rows])
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d")
    return {"format": FORMAT, "dsxl_version": __version__, "name": path.stem,
            "input": {"file": path.name, "sha256": hashlib.sha256(text.encode()).hexdigest(), "date": modified,
                      "rows": len(rows)},
            "fitted": fitted, "ratio_to_shipped": {k: round(v / start[k], 4) for k, v in fitted.items()},
            "why": why, "notes": notes,
            "held_out": None if few else ("leave-one-out" if held_out_folds(len(rows)) == len(rows) else
                                          f"{held_out_folds(len(rows))}-fold (every tenth row held out together)"),
            "stats": {"rms_log_error": round(float(np.sqrt(np.mean(np.log1p(errors) ** 2))), 4),
                      "max_abs_error": round(float(np.max(np.abs(errors))), 4),
                      "max_abs_loo_error": (round(max(abs(r["loo_error"]) for r in out_rows), 4) if loo else None)},
            "rows": out_rows}


def profile_text(profile: dict[str, Any]) -> str:
    """What a calibration fitted, why, and each row: measured, shipped, calibrated, leave-one-out."""
    lines = [f"dsxl calibrate: {profile['input']['file']}, {profile['input']['rows']} row(s)", ""]
    for name, value in profile["fitted"].items():
        lines.append(f"  fitted {name:<28} {value:>10.4g}  ({profile['why'][name]})")
    kept: dict[str, list[str]] = {}  # why -> the constants kept at their shipped values for it
    for name, why in profile["why"].items():
        if name not in profile["fitted"]:
            kept.setdefault(why, []).append(name)
    for why, names in kept.items():
        lines += textwrap.wrap(f"  kept at the shipped values ({why}): {', '.join(names)}", 120,
                               subsequent_indent="    ")
    lines += [f"  note: {n}" for n in profile.get("notes", [])]
    lines += ["", f"{'row':<8}{'phase':<11}{'gpu':<8}{'measured':>10}{'shipped':>10}{'calibrated':>11}{'error':>8}"
                  f"{'LOO err':>9}"]
    for r in profile["rows"]:
        loo = "—" if r["loo_error"] is None else f"{r['loo_error']:+.1%}"
        lines.append(f"{r['id']:<8}{r['phase']:<11}{r['gpu']:<8}{r['measured']:>10,.1f}{r['shipped']:>10,.1f}"
                     f"{r['calibrated']:>11,.1f}{r['error']:>+8.1%}{loo:>9}")
    if profile["stats"]["max_abs_loo_error"] is None:
        lines.append(f"Leave-one-out errors need {MIN_LOO_ROWS} rows or more: predictions keep the shipped bands.")
    return "\n".join(lines) + "\n"


__all__ = ["calibrate", "profile_text", "template_text"]
