"""The article report's request: ``--set`` what-ifs (scenario inputs, model arguments, GPU fields) checked against
the declared rules and resolved into a :class:`WhatIf`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from dsxl.data.catalog import Catalog, ModelArgs, Scenario, load_catalog
from dsxl.core.rules import GPU_FIELDS, MAX_LIST, parse_number, show

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
    gpus: tuple[str, ...] = ()  # catalog GPUs for the per-GPU tables (default: the article's)

    def echo(self, catalog: Catalog | None = None) -> dict[str, Any]:
        """Every input the tables used: the model, the GPUs, each scenario input (what-ifs applied) and the
        changed model and hardware fields."""
        from dataclasses import asdict, replace
        catalog = catalog or load_catalog()
        scenario = asdict(replace(catalog.scenario, **self.scenario))
        t = catalog.article_tables
        return {"model": self.preset or catalog.default_model, "model_changes": dict(self.model),
                "gpus": list(self.gpus) or list(dict.fromkeys(list(t["prefill_gpus"]) + list(t["decode_gpus"]))),
                "scenario": {k: list(v) if isinstance(v, tuple) else v for k, v in scenario.items()},
                "what_ifs": {**self.scenario, **self.model,
                             **{f"{g}.{f}": v for g, c in self.hardware.items() for f, v in c.items()}},
                "hardware_changes": {g: dict(c) for g, c in self.hardware.items()}}


def parse_sets(assignments: list[str], catalog: Catalog | None = None, preset: str | None = None,
               gpus: tuple[str, ...] = ()) -> WhatIf:
    """``["seq_len=8000", "H800.fp8_flops=1800", "batch_sizes=16,32"]`` -> WhatIf (validated)."""
    catalog = catalog or load_catalog()
    scenario: dict[str, Any] = {}
    model: dict[str, Any] = {}
    hardware: dict[str, dict[str, Any]] = {}
    for item in assignments:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not text.strip():
            raise ValueError(f"--set takes NAME=VALUE; got {show(item)}")
        if "." in name:
            gpu_name, _, fld = name.rpartition(".")
            gpu = catalog.gpu(gpu_name)  # raises with the list of known GPUs
            if fld not in GPU_FIELDS:
                raise ValueError(f"unknown hardware field {fld!r} in {name!r}; allowed: {', '.join(GPU_FIELDS)}")
            hardware.setdefault(gpu.name, {})[fld] = parse_number(name, text)
        elif name == "batch_sizes":
            parts = text.split(",")
            if len(parts) > MAX_LIST:
                raise ValueError(f"batch_sizes takes at most {MAX_LIST} values; got {len(parts):,}")
            try:
                scenario[name] = tuple(parse_number(name, part) for part in parts)
            except ValueError:
                raise ValueError(f"batch_sizes must be whole numbers separated by commas (e.g. 16,32,64); "
                                 f"got {show(text)}") from None
        elif name in SCENARIO_FIELDS:
            scenario[name] = parse_number(name, text)
        elif name in MODEL_FIELDS:
            model[name] = parse_number(name, text)
        else:
            allowed = ", ".join(list(SCENARIO_FIELDS) + list(MODEL_FIELDS) + ["GPU.field"])
            raise ValueError(f"unknown input {name!r}; allowed: {allowed} (GPU fields: {', '.join(GPU_FIELDS)})")
    whatif = WhatIf(preset, scenario, model, hardware, tuple(catalog.gpu(g).name for g in gpus))
    _validate(whatif, catalog)
    return whatif


def _validate(whatif: WhatIf, catalog: Catalog) -> None:
    """Build the changed dataclasses once so range errors surface before any table is computed."""
    from dataclasses import replace
    replace(catalog.scenario, **whatif.scenario)
    model = replace(catalog.model(whatif.preset), **whatif.model)
    if model.compressed_attention:
        raise ValueError(f"model {whatif.preset or 'custom'!r} uses compressed sparse attention (CSA/HCA): the "
                         "article's report is defined for MLA models; use dsxl predict or dsxl plan for it")
    gpus = {name: replace(catalog.gpus[name], **whatif.hardware.get(name, {})) for name in catalog.gpus}
    scenario = replace(catalog.scenario, **whatif.scenario)
    shown = set(whatif.gpus) | set(catalog.article_tables["prefill_gpus"]) | set(catalog.article_tables["decode_gpus"])
    for name in sorted(shown):  # the SMs decode's communication holds must leave some to compute
        if scenario.decode_comm_sm >= gpus[name].sm:
            raise ValueError(f"decode_comm_sm must be less than every GPU's SMs ({name} has {gpus[name].sm}); "
                             f"got {scenario.decode_comm_sm}")
