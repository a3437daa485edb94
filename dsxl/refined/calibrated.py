"""Predictions on a calibrated cluster: load a profile written by ``dsxl calibrate`` (checked, cached by path and
modification time), turn it into constant overrides for a prediction, and give predictions near its rows the band
of their leave-one-out errors."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from dsxl import __version__
from dsxl.data.user_files import read_json
from dsxl.refined.fit_parameters import PHASE_SCALES, Parameter, constants_for, parameters, shipped_values
from dsxl.inputs.rules import show

FORMAT = "dsxl calibration profile"
NEAR_FLOOR = 0.05  # a band near your rows never claims better than run-to-run spread of a benchmark


def all_parameters() -> list[Parameter]:
    """What a user's calibration may fit: the declared parameters and one GPU-time scale per phase."""
    return parameters() + list(PHASE_SCALES)


def check_profile(profile: Any, source: str) -> dict[str, Any]:
    """A profile this dsxl can use: its format, the same major version, known constants inside their bounds."""
    if not isinstance(profile, dict) or profile.get("format") != FORMAT:
        raise ValueError(f"{source}: not a dsxl calibration profile (dsxl calibrate writes one)")
    major = str(profile.get("dsxl_version", "")).split(".")[0]
    if major != __version__.split(".")[0]:
        raise ValueError(f"{source}: made by dsxl {profile.get('dsxl_version')}; this is dsxl {__version__} "
                         "(recalibrate with this version)")
    bounds = {p.name: p for p in all_parameters()}
    fitted = profile.get("fitted")
    if not isinstance(fitted, dict):
        raise ValueError(f"{source}: fitted must be an object of constants")
    for name, value in fitted.items():
        if name not in bounds:
            raise ValueError(f"{source}: fitted constant {name!r} is unknown; known: {', '.join(bounds)}")
        p = bounds[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not p.lo <= value <= p.hi:
            raise ValueError(f"{source}: fitted {name} must be a number from {p.lo:g} to {p.hi:g}; got {show(value)}")
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
    values = {**shipped_values(params), **profile["fitted"]}
    return constants_for(generation, engine, values, [p for p in params if p.name in profile["fitted"]])


def near_rows(profile: dict[str, Any], regime: str, generation: str, engine: str) -> list[dict[str, Any]]:
    """The profile's rows of the same GPU generation, engine and regime."""
    from dsxl.refined.accuracy import regime as regime_of
    return [r for r in profile["rows"] if r["generation"] == generation and r["engine"] == engine
            and regime_of(r["phase"], r["conditions"].get("batch")) == regime]


def near_band(profile: dict[str, Any], regime: str, generation: str, engine: str) -> float | None:
    """The band before range and MTP widening near the profile's rows: the largest of their leave-one-out and fit
    errors, at least :data:`NEAR_FLOOR`; None where no near row has a leave-one-out error."""
    near = near_rows(profile, regime, generation, engine)
    loo = [abs(r["loo_error"]) for r in near if r["loo_error"] is not None]
    if not loo:
        return None
    return round(max(max(loo), max(abs(r["error"]) for r in near), NEAR_FLOOR), 4)


def profile_accuracy(profile: dict[str, Any], regime: str, generation: str, engine: str,
                     shipped: dict[str, Any]) -> dict[str, Any]:
    """Near the profile's rows, the band of their leave-one-out errors (plus the shipped range and MTP widening);
    elsewhere, and always when the profile has no leave-one-out errors, the shipped band."""
    base = near_band(profile, regime, generation, engine)
    if base is None:
        return {**shipped, "note": shipped["note"] + f"; calibrated by {profile['name']} (no rows near this "
                                                      "configuration with a leave-one-out error: shipped band)"}
    ids = [r["id"] for r in near_rows(profile, regime, generation, engine)]
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
