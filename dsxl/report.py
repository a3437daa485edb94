"""Rendering tables as markdown, JSON or CSV, and parsing ``--set NAME=VALUE`` what-ifs."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pandas as pd

from .config import Catalog, load_catalog
from .validate import GPU_FIELDS
from .tables import MODEL_FIELDS, SCENARIO_FIELDS, WhatIf


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
            hardware.setdefault(gpu.name, {})[fld] = _number(name, text)
        elif name == "batch_sizes":
            scenario[name] = tuple(_number(name, part) for part in text.split(","))
        elif name in SCENARIO_FIELDS:
            scenario[name] = _number(name, text)
        elif name in MODEL_FIELDS:
            model[name] = _number(name, text)
        else:
            allowed = ", ".join(list(SCENARIO_FIELDS) + list(MODEL_FIELDS) + ["GPU.field"])
            raise ValueError(f"unknown input {name!r}; allowed: {allowed} (GPU fields: {', '.join(GPU_FIELDS)})")
    whatif = WhatIf(preset, scenario, model, hardware)
    _validate(whatif, catalog)
    return whatif


def _number(name: str, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number; got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {text!r}")
    return int(value) if value.is_integer() else value


def _validate(whatif: WhatIf, catalog: Catalog) -> None:
    """Build the changed dataclasses once so range errors surface before any table is computed."""
    from dataclasses import replace
    replace(catalog.scenario, **whatif.scenario)
    replace(catalog.model(whatif.preset), **whatif.model)
    for name, changes in whatif.hardware.items():
        replace(catalog.gpus[name], **changes)


def _cell(x: Any) -> Any:
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return float(x)
    return x


def to_json(tables: dict[str, pd.DataFrame]) -> str:
    out = []
    for tid, df in tables.items():
        out.append({
            "id": tid, "title": df.attrs.get("title", ""), "section": df.attrs.get("section", ""),
            "unit": df.attrs.get("unit", ""), "index": df.index.name,
            "columns": [str(c) for c in df.columns],
            "rows": [{"label": str(label), "values": [_cell(v) for v in row]}
                     for label, row in zip(df.index, df.itertuples(index=False))],
        })
    return json.dumps({"tables": out}, indent=1, ensure_ascii=False)


def to_markdown(tables: dict[str, pd.DataFrame]) -> str:
    parts = []
    for tid, df in tables.items():
        dec = int(df.attrs.get("decimals", 3))
        head = [df.index.name or ""] + [str(c) for c in df.columns]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for label, row in zip(df.index, df.itertuples(index=False)):
            cells = [str(label)] + [_fmt_cell(label, col, v, dec) for col, v in zip(df.columns, row)]
            lines.append("| " + " | ".join(cells) + " |")
        unit = df.attrs.get("unit", "")
        title = f"### {tid}: {df.attrs.get('title', '')}" + (f" ({unit})" if unit else "")
        note = df.attrs.get("note", "")
        parts.append("\n".join([title, ""] + lines + ([f"\n_{note}_"] if note else [])))
    return "\n\n".join(parts) + "\n"


COUNT_HEADERS = ("BatchSize", "Layers")


def _fmt_cell(label: Any, column: Any, v: Any, decimals: int) -> str:
    if isinstance(v, str):
        return v
    if column in COUNT_HEADERS or label in COUNT_HEADERS:
        return f"{float(v):.0f}"
    return f"{float(v):.{decimals}f}"


def to_csv(tables: dict[str, pd.DataFrame]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for tid, df in tables.items():
        w.writerow([f"# {tid}"])
        w.writerow([df.index.name or ""] + [str(c) for c in df.columns])
        for label, row in zip(df.index, df.itertuples(index=False)):
            w.writerow([label] + [repr(float(v)) if not isinstance(v, str) else v for v in row])
        w.writerow([])
    return buf.getvalue()
