"""Predictions on a calibrated cluster: load a profile written by ``dsxl calibrate`` (checked, cached by path and
modification time), turn it into constant overrides for a prediction, and give predictions near its rows the band
of their leave-one-out errors."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from dsxl._version import __version__
from dsxl.data.user_files import read_json
from dsxl.refined.fit_parameters import PHASE_SCALES, Parameter, constants_for, parameters, shipped_values
from dsxl.inputs.request import PHASES
from dsxl.core.rules import show

FORMAT = "dsxl calibration profile"
NEAR_FLOOR = 0.05  # a band near your rows never claims better than run-to-run spread of a benchmark


def all_parameters() -> list[Parameter]:
    """What a user's calibration may fit: the declared parameters and one GPU-time scale per phase."""
    return parameters() + list(PHASE_SCALES)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> bool:
    return isinstance(value, str)


# a profile row's fields and what each must be
ROW_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (_text, "text"), "phase": (lambda v: v in PHASES, f"one of {', '.join(PHASES)}"),
    "gpu": (_text, "text"), "generation": (_text, "text"), "engine": (_text, "text"), "model": (_text, "text"),
    "metric": (_text, "text"), "conditions": (lambda v: isinstance(v, dict), "an object of conditions"),
    "measured": (lambda v: _number(v) and v > 0, "a number above 0"), "shipped": (_number, "a number"),
    "calibrated": (_number, "a number"), "error": (_number, "a number"),
    "loo_error": (lambda v: v is None or _number(v), "a number or null")}


def _check_rows(rows: Any, source: str) -> None:
    if not isinstance(rows, list):
        raise ValueError(f"{source}: rows must be a list of the profile's runs (dsxl calibrate writes them)")
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{source}: rows[{n}] must be an object")
        for key, (ok, what) in ROW_FIELDS.items():
            if key not in row:
                raise ValueError(f"{source}: rows[{n}].{key} is missing")
            if not ok(row[key]):
                raise ValueError(f"{source}: rows[{n}].{key} must be {what}; got {show(row[key])}")


def check_profile(profile: Any, source: str) -> dict[str, Any]:
    """A profile this dsxl can use, every field checked once here (so predict, plan, validate, build and the UDFs
    refuse a hand-edited profile in one line naming the key): its format, the same major version, its name and
    input, known constants inside their bounds with their ratios to the shipped values, and its rows."""
    if not isinstance(profile, dict) or profile.get("format") != FORMAT:
        raise ValueError(f"{source}: not a dsxl calibration profile (dsxl calibrate writes one)")
    major = str(profile.get("dsxl_version", "")).split(".")[0]
    if major != __version__.split(".")[0]:
        raise ValueError(f"{source}: made by dsxl {profile.get('dsxl_version')}; this is dsxl {__version__} "
                         "(recalibrate with this version)")
    if not _text(profile.get("name")) or not profile["name"].strip() or \
            any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in profile["name"]):  # echoed: no terminal controls
        raise ValueError(f"{source}: name must be text without control characters; got {show(profile.get('name'))}")
    given = profile.get("input")
    if not isinstance(given, dict) or not all(_text(given.get(k)) for k in ("file", "date")) or \
            not isinstance(given.get("rows"), int) or isinstance(given.get("rows"), bool):
        raise ValueError(f"{source}: input must be an object with file, date (text) and rows (a count)")
    bounds = {p.name: p for p in all_parameters()}
    for key in ("fitted", "ratio_to_shipped"):
        if not isinstance(profile.get(key, {}), dict):
            raise ValueError(f"{source}: {key} must be an object of constants")
    fitted = profile.get("fitted")
    if fitted is None:
        raise ValueError(f"{source}: fitted is missing")
    for name, value in fitted.items():
        if name not in bounds:
            raise ValueError(f"{source}: fitted constant {name!r} is unknown; known: {', '.join(bounds)}")
        p = bounds[name]
        if not _number(value) or not p.lo <= value <= p.hi:
            raise ValueError(f"{source}: fitted {name} must be a number from {p.lo:g} to {p.hi:g}; got {show(value)}")
    for name, ratio in profile.get("ratio_to_shipped", {}).items():
        if name not in fitted or not _number(ratio) or ratio <= 0:
            raise ValueError(f"{source}: ratio_to_shipped.{name} must be a positive number for a fitted constant; "
                             f"got {show(ratio)}")
    _check_rows(profile.get("rows"), source)
    return profile


@lru_cache(maxsize=32)
def _load(path: str, mtime: float) -> dict[str, Any]:
    return check_profile(read_json(path, "calibration profile"), path)


def load_profile(calibration: Any) -> dict[str, Any] | None:
    """A profile from a path (loaded once per path and modification time) or a profile dict; None for none."""
    if calibration is None or (isinstance(calibration, str) and not calibration.strip()):
        return None
    if isinstance(calibration, dict):
        return check_profile(calibration, "calibration")
    path = Path(calibration)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise ValueError(f"calibration must be a profile written by dsxl calibrate; {path} does not exist") from None
    return _load(str(path), mtime)


def profile_constants(profile: dict[str, Any], generation: str, engine: str) -> dict[str, float]:
    """The constant overrides a profile puts into a prediction on ``generation`` with ``engine``."""
    params = all_parameters()
    shipped = shipped_values(params)
    ratios = profile.get("ratio_to_shipped") or {}  # relative to the shipped values, as the runs measured them
    values = {**shipped, **{k: (shipped[k] * ratios[k] if k in ratios else v) for k, v in profile["fitted"].items()}}
    return constants_for(generation, engine, values, [p for p in params if p.name in profile["fitted"]])


def near_rows(profile: dict[str, Any], regime: str, generation: str, engine: str, model: str) -> list[dict[str, Any]]:
    """The profile's rows of the same model, GPU generation, engine and regime (a row of another model is not
    near: its layers, attention and experts differ)."""
    from dsxl.refined.accuracy import regime as regime_of
    return [r for r in profile["rows"] if r["generation"] == generation and r["engine"] == engine
            and r["model"] == model and regime_of(r["phase"], r["conditions"].get("batch")) == regime]


def near_band(profile: dict[str, Any], regime: str, generation: str, engine: str, model: str) -> float | None:
    """The band before range and MTP widening near the profile's rows: the largest of their leave-one-out and fit
    errors, at least :data:`NEAR_FLOOR`; None where no near row has a leave-one-out error."""
    near = near_rows(profile, regime, generation, engine, model)
    loo = [abs(r["loo_error"]) for r in near if r["loo_error"] is not None]
    if not loo:
        return None
    return round(max(max(loo), max(abs(r["error"]) for r in near), NEAR_FLOOR), 4)


def profile_accuracy(profile: dict[str, Any], regime: str, generation: str, engine: str, model: str,
                     shipped: dict[str, Any]) -> dict[str, Any]:
    """Near the profile's rows, the band of their leave-one-out errors (plus the shipped range and MTP widening);
    elsewhere, and always when the profile has no leave-one-out errors, the shipped band."""
    base = near_band(profile, regime, generation, engine, model)
    if base is None:
        return {**shipped, "note": shipped["note"] + f"; calibrated by {profile['name']} (no rows near this "
                                                      "configuration with a leave-one-out error: shipped band)"}
    ids = [r["id"] for r in near_rows(profile, regime, generation, engine, model)]
    return {**shipped, "band": round(base + shipped["band"] - shipped["family_band"], 4), "family_band": base,
            "basis": ids, "validated": True,
            "note": f"calibrated by {profile['name']}: leave-one-out errors of your rows {', '.join(ids)}"}


def profile_tables(profile: dict[str, Any]) -> tuple[dict, dict]:
    """A profile as catalog overrides for a workbook: refined constants (name -> generation -> (value, source))
    and engine numbers (engine -> field -> (value, source)), each sourced "your measurements: FILE, DATE, N rows"."""
    from dsxl.data.catalog import ENGINE_NUMBERS, generations, load_engines
    source = (f"your measurements: {profile['input']['file']}, {profile['input']['date']}, "
              f"{profile['input']['rows']} rows (dsxl calibrate)")
    constants: dict[str, dict[str, tuple[float, str]]] = {}
    engines: dict[str, dict[str, tuple[float, str]]] = {}
    for generation in generations():
        for engine in load_engines():
            for name, value in profile_constants(profile, generation, engine).items():
                if name in ENGINE_NUMBERS:
                    engines.setdefault(engine, {})[name] = (value, source)
                else:
                    constants.setdefault(name, {})[generation] = (value, source)
    return constants, engines


__all__ = ["near_band", "profile_tables", "FORMAT", "all_parameters", "check_profile", "load_profile", "profile_accuracy", "profile_constants"]
