"""A fleet's power and what owning it costs: each pool's board, IT and facility power (its GPUs' share of their
systems, :mod:`dsxl.physics.power`), the megawatts provisioned for it, and the hourly cost of owning it
(capital, power, hosting) beside renting it. Every number comes from ``templates/power.csv`` and
``templates/systems.json`` rows and the planner's declared inputs."""

from __future__ import annotations

from typing import Any

from dsxl.data.power import power_row, system_of
from dsxl.inputs.plan_request import PlanInputs
from dsxl.physics import power
from dsxl.refined.power import system_watts_per_gpu


def scale_out(pool: dict[str, Any], gpu: str, disaggregated: bool) -> bool:
    """Whether the pool's NICs and scale-out switches carry traffic: its instances span systems, or it moves KV
    between prefill and decode pools."""
    _, system = power_row(gpu)
    return disaggregated or max(m["ep"] * m.get("moe_tp", 1) for m in pool["mix"]) > system["gpus"]


def provisioned_w_per_gpu(gpu: str, inp: PlanInputs, spans: bool) -> float:
    """Facility watts a GPU needs provisioned: its share of its system at full board power, times PUE."""
    _, system = power_row(gpu)
    return float(power.facility_watts(system_watts_per_gpu(gpu, spans)[2], inp.pue or system["pue"]))


def pool_power(pool: dict[str, Any], gpu: str, inp: PlanInputs, spans: bool) -> dict[str, Any]:
    """A pool's power: mean board watts at its configurations, IT and facility kW at load and provisioned."""
    row, system = power_row(gpu)
    pue = inp.pue or system["pue"]
    gpus = pool["gpus"]
    board = sum(m["gpus"] * m["watts_per_gpu"] for m in pool["mix"]) / gpus
    at_idle, at_half, provisioned = system_watts_per_gpu(gpu, spans)
    it_w = float(power.it_watts_at((board - row.idle_w) / (row.tdp_w - row.idle_w), at_idle, at_half, provisioned))
    return {"gpu": gpu, "system": row.system, "gpus": gpus, "watts_per_gpu": board, "scale_out": spans, "pue": pue,
            "it_kw": gpus * it_w / 1e3, "facility_kw": gpus * float(power.facility_watts(it_w, pue)) / 1e3,
            "provisioned_it_kw": gpus * provisioned / 1e3,
            "provisioned_facility_kw": gpus * float(power.facility_watts(provisioned, pue)) / 1e3}


def owned_per_hour(p: dict[str, Any], inp: PlanInputs) -> dict[str, float]:
    """What owning a pool costs per hour ($): capital repaid, power at load, hosting of its provisioned kW."""
    row, _ = power_row(p["gpu"])
    capital = row.capital_per_gpu_usd if inp.capital_per_gpu is None else inp.capital_per_gpu
    recovery = power.capital_recovery_factor(inp.cost_of_capital, inp.amortization_years)
    parts = power.owned_cost_per_hour(p["gpus"], capital, recovery, p["facility_kw"], inp.electricity_per_kwh,
                                      p["provisioned_it_kw"], inp.hosting_per_kw_month)
    return {k: float(v) for k, v in parts.items()}


def systems_bought(pools: dict[str, tuple[dict[str, Any], str]], inp: PlanInputs) -> list[dict[str, Any]]:
    """The systems a fleet buys, per GPU type: 8-GPU nodes (the pools' own nodes), or whole NVL72 racks (its
    compute trays of 4 GPUs counted too); ``spare_gpus``: GPUs bought beside those the pools use."""
    out: dict[str, dict[str, Any]] = {}
    for pool, gpu in pools.values():
        e = out.setdefault(gpu, {"gpu": gpu, **{k: v for k, v in system_of(gpu).items() if k != "key"},
                                 "gpus_used": 0, "nodes": 0})
        e["gpus_used"] += pool["gpus"]
        e["nodes"] += pool["nodes"]
    for e in out.values():
        if e["kind"] == "rack":
            e["racks"] = -(-e["gpus_used"] // e["gpus"])
            e["gpus_bought"] = e["racks"] * e["gpus"]
        else:
            e["racks"] = None
            e["gpus_bought"] = e["nodes"] * inp.gpu_per_node
        e["spare_gpus"] = e["gpus_bought"] - e["gpus_used"]
    return list(out.values())


def fleet_power(pools: dict[str, tuple[dict[str, Any], str]], inp: PlanInputs) -> dict[str, Any]:
    """Per pool (role -> (pool, GPU)) and in all: board, IT and facility power (MW at load and provisioned), the
    systems bought, and their spare GPUs as pools of their own (idle at load, provisioned at full power)."""
    disaggregated = "prefill" in pools
    each = {role: pool_power(pool, gpu, inp, scale_out(pool, gpu, disaggregated))
            for role, (pool, gpu) in pools.items()}
    systems = systems_bought(pools, inp)
    for e in systems:
        if e["spare_gpus"]:
            idle = power_row(e["gpu"])[0].idle_w
            spare = {"gpus": e["spare_gpus"], "mix": [{"gpus": e["spare_gpus"], "ep": 1, "watts_per_gpu": idle}]}
            each[f"spare {e['gpu']}"] = pool_power(spare, e["gpu"], inp, disaggregated)
    total = {k: sum(p[k] for p in each.values()) / 1e3 for k in ("it_kw", "facility_kw", "provisioned_it_kw",
                                                                  "provisioned_facility_kw")}
    return {"pools": each, "systems": systems, "it_mw": total["it_kw"], "facility_mw": total["facility_kw"],
            "provisioned_it_mw": total["provisioned_it_kw"], "provisioned_facility_mw": total["provisioned_facility_kw"]}


__all__ = ["fleet_power", "owned_per_hour", "pool_power", "provisioned_w_per_gpu", "scale_out", "systems_bought"]
