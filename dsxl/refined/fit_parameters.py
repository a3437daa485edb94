"""The parameters of the joint fit, as declared in ``templates/fitted.json`` (plus the phase scales a user's
calibration adds), and how a set of their values becomes the constant overrides of one prediction. Shared by the fit
(:mod:`dsxl.refined.calibration`) and by predictions that use a calibration profile (:mod:`dsxl.refined.calibrated`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from dsxl.data.catalog import default_engine, fitted_value, load_catalog, load_fit, load_refined


@dataclass(frozen=True)
class Parameter:
    name: str  # unique in templates/fitted.json
    target: str  # the constant or engine number it sets
    kind: str  # constant (refined.json), engine (an engines.json number of the engines named), kernel_share or scale
    prior: float
    lo: float
    hi: float
    generations: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    scales: tuple[str, ...] = ()  # kernel_share: the constants it scales from Hopper's values

    def applies(self, m: Any) -> bool:
        return self.applies_to(load_catalog().gpu(m.gpu).generation, m.conditions.get("engine") or default_engine())

    def applies_to(self, generation: str, engine: str) -> bool:
        if self.kind == "scale":
            return True
        if self.kind == "engine":
            return engine in self.engines
        return generation in self.generations


def parameters() -> list[Parameter]:
    out = []
    for name, p in load_fit()["parameters"].items():
        out.append(Parameter(name, p.get("target", name), p["kind"], float(p["prior"]), float(p["lo"]),
                             float(p["hi"]), tuple(p.get("generations", ())), tuple(p.get("engines", ())),
                             tuple(p.get("scales", ()))))
    return out


def row_constants(m: Any, values: dict[str, float], params: Sequence[Parameter]) -> dict[str, float]:
    """The constant overrides that put ``values`` into one row's prediction (only parameters that apply to it)."""
    return constants_for(load_catalog().gpu(m.gpu).generation, m.conditions.get("engine") or default_engine(),
                         values, params)


def constants_for(generation: str, engine: str, values: dict[str, float],
                  params: Sequence[Parameter]) -> dict[str, float]:
    """The constant overrides that put ``values`` into a prediction on ``generation`` with ``engine``."""
    hopper = load_refined()
    out: dict[str, float] = {}
    for p in params:
        if not p.applies_to(generation, engine):
            continue
        if p.kind == "kernel_share":
            out.update({n: hopper[n].values["hopper"] * values[p.name] for n in p.scales})
        elif p.kind == "scale":
            out[p.target] = values[p.name]
        else:
            out[p.target] = values[p.name]
    return out


# The user's calibration (dsxl calibrate) adds one GPU-time scale per phase to the declared parameters.
PHASE_SCALES = tuple(Parameter(f"{phase}_time_scale", f"{phase}_time_scale", "scale", 1.0, 0.2, 5.0)
                     for phase in ("decode", "prefill"))


def shipped_values(params: Sequence[Parameter]) -> dict[str, float]:
    """Each parameter's shipped value: the joint fit's (or its prior), 1 for a phase scale."""
    return {p.name: (p.prior if p.kind == "scale" else fitted_value(p.name)[0]) for p in params}
