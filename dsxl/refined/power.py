"""Power figures a prediction and a plan share: a GPU's share of its system's IT power (idle, half busy, full board
power) from its catalog rows, and an instance's facility power at a busy share."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from dsxl.data.power import power_row
from dsxl.physics import power


@lru_cache(maxsize=64)
def system_watts_per_gpu(gpu: str, scale_out: bool) -> tuple[float, float, float]:
    """A GPU's share of its system's IT power (W) with its GPUs idle, half busy and at full board power."""
    row, system = power_row(gpu)
    return tuple(float(power.it_watts_per_gpu(power.gpu_watts(row.idle_w, row.tdp_w, b), system, scale_out))
                 for b in (0, 0.5, 1))


def instance_facility_kw(gpu: str, instance_gpus: Any, busy: Any) -> Any:
    """Facility kW of an instance of ``instance_gpus`` GPUs kept ``busy`` of each step: their share of their systems
    (scale-out networking active when the instance spans systems) times the system's PUE."""
    _, system = power_row(gpu)
    spans = np.asarray(instance_gpus) > system["gpus"]
    it = np.where(spans, power.it_watts_at(busy, *system_watts_per_gpu(gpu, True)),
                  power.it_watts_at(busy, *system_watts_per_gpu(gpu, False)))
    return power.facility_watts(instance_gpus * it, system["pue"]) / 1e3


__all__ = ["instance_facility_kw", "system_watts_per_gpu"]
