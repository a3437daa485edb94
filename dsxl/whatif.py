"""What-ifs: inputs that differ from the shipped catalog, parsed from ``--set NAME=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .config import Catalog, ModelArgs, Scenario, load_catalog
from .validate import GPU_FIELDS, parse_number

SCENARIO_FIELDS = tuple(f.name for f in fields(Scenario))
MODEL_FIELDS = tuple(f.name for f in fields(ModelArgs))


@dataclass(frozen=True)
class WhatIf:
    """Inputs that differ from the shipped catalog: a model (preset id or config.json), scenario, model
    arguments, hardware fields."""

    preset: str | None = None
    scenario: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, dict[str, Any]] = field(default_factory=dict)  # GPU name -> {field: value}


def parse_sets(assignments: list[str], catalog: Catalog | None = None, preset: str | None = None) -> WhatIf:
    """``["seq_len=8000", "H800.fp8_flops=1800", "batch_sizes=16,32"]`` -> WhatIf (validated)."""
    catalog = catalog or load_catalog()
    scenario: dict[str, Any] = {}
    model: dict[str, Any] = {}
    hardware: dict[str, dict[str, Any]] = {}
    for item in assignments:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not text.strip():
            raise ValueError(f"--set takes NAME=VALUE; got {item!r}")
        if "." in name:
            gpu_name, _, fld = name.rpartition(".")
            gpu = catalog.gpu(gpu_name)  # raises with the list of known GPUs
            if fld not in GPU_FIELDS:
                raise ValueError(f"unknown hardware field {fld!r} in {name!r}; allowed: {', '.join(GPU_FIELDS)}")
            hardware.setdefault(gpu.name, {})[fld] = parse_number(name, text)
        elif name == "batch_sizes":
            scenario[name] = tuple(parse_number(name, part) for part in text.split(","))
        elif name in SCENARIO_FIELDS:
            scenario[name] = parse_number(name, text)
        elif name in MODEL_FIELDS:
            model[name] = parse_number(name, text)
        else:
            allowed = ", ".join(list(SCENARIO_FIELDS) + list(MODEL_FIELDS) + ["GPU.field"])
            raise ValueError(f"unknown input {name!r}; allowed: {allowed} (GPU fields: {', '.join(GPU_FIELDS)})")
    whatif = WhatIf(preset, scenario, model, hardware)
    _validate(whatif, catalog)
    return whatif


def _validate(whatif: WhatIf, catalog: Catalog) -> None:
    """Build the changed dataclasses once so range errors surface before any table is computed."""
    from dataclasses import replace
    replace(catalog.scenario, **whatif.scenario)
    replace(catalog.model(whatif.preset), **whatif.model)
    for name, changes in whatif.hardware.items():
        replace(catalog.gpus[name], **changes)
