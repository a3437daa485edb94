"""The power catalog: each GPU's board power, idle power, system and capital cost (``templates/power.csv``), and
each system's overheads (``templates/systems.json``: host, fans, power conversion, network, PUE), every row with
its source."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dsxl.data.records import read_template_text
from dsxl.core.rules import parse_number


@dataclass(frozen=True)
class GpuPower:
    """One GPU's power and ownership row."""

    gpu: str
    system: str  # a key of templates/systems.json
    tdp_w: float  # board power limit (W)
    idle_w: float  # board power with nothing running (W)
    capital_per_gpu_usd: float  # all-in system purchase price over its GPUs ($)
    tdp_source: str
    idle_source: str
    capital_source: str


@lru_cache(maxsize=1)
def load_power() -> dict[str, GpuPower]:
    """GPU name -> its power row."""
    out = {}
    for row in csv.DictReader(read_template_text("power.csv").splitlines()):
        numbers = {k: float(parse_number(f"power.csv {row['gpu']}.{k}", row[k]))
                   for k in ("tdp_w", "idle_w", "capital_per_gpu_usd")}
        out[row["gpu"]] = GpuPower(gpu=row["gpu"], system=row["system"], tdp_source=row["tdp_source"],
                                   idle_source=row["idle_source"], capital_source=row["capital_source"], **numbers)
    return out


@lru_cache(maxsize=1)
def load_systems() -> dict[str, dict[str, Any]]:
    """System key -> its parameters (``kind`` node or rack, ``gpus``, overheads, ``pue``, ``source``)."""
    data = json.loads(read_template_text("systems.json"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def power_row(gpu: str) -> tuple[GpuPower, dict[str, Any]]:
    """A catalog GPU's power row and its system's parameters; a GPU without a row is one line naming the file."""
    row = gpu_power(gpu)
    if row is None:
        raise ValueError(f"GPU {gpu} has no row in templates/power.csv (board power, system, capital per GPU)")
    return row, load_systems()[row.system]


def system_of(gpu: str) -> dict[str, Any]:
    """The system a catalog GPU is bought in: ``kind`` (node or rack), ``gpus`` per system and ``tray_gpus`` (a
    rack's compute tray; a node's own GPUs)."""
    row, s = power_row(gpu)
    tray = s["boards_per_tray"] * s["gpus_per_board"] if s["kind"] == "rack" else s["gpus"]
    return {"key": row.system, "kind": s["kind"], "gpus": s["gpus"], "tray_gpus": tray, "label": s["label"]}


def systems_source() -> str:
    return json.loads(read_template_text("systems.json"))["_source"]


def gpu_power(name: str) -> GpuPower | None:
    """The power row of a catalog GPU (case as the catalog spells it), or None for a GPU without one."""
    rows = load_power()
    return next((r for k, r in rows.items() if k.lower() == str(name).lower()), None)


__all__ = ["GpuPower", "gpu_power", "load_power", "load_systems", "power_row", "system_of", "systems_source"]
