"""Power as physics: a GPU's draw at a configuration, its system's overheads (host, fans, power conversion,
network) and the facility around it (PUE).

Every function takes numbers, numpy arrays or spreadsheet formulas (:class:`dsxl.core.expr.Expr`), like the rest of
the physics. The system model follows the public InferenceX power model (``templates/systems.json`` cites it): an
8-GPU server's DC load is its GPUs plus fixed host watts and fans whose PWM rises with the heat load, delivered
through PSUs whose efficiency depends on their load, plus the server's share of scale-out networking; an NVL72 rack
adds compute trays (GPUs, Grace sockets, NICs, fans, 48 V conversion loss), NVLink switch trays and power-shelf
losses. The rack's fan-and-loss fixed point is taken to two rounds (the third moves a tray's fans by well under
0.1 W).

The GPU's draw (the rule this module adds): idle power plus the rest of its board power in the share of the step
its kernels run, ``idle + (TDP - idle) x busy``; the engine's host-side time per step leaves the GPU idle. A
running GPU is taken at its power limit: decode's memory-bound kernels and prefill's GEMMs both hold boards near
it under load (an upper-side assumption; InferenceX publishes per-run board power that can replace it).
"""

from __future__ import annotations

from typing import Any, Sequence

from dsxl.core.expr import maximum, minimum, where

HOURS_PER_YEAR = 8766.0  # 365.25 days
HOURS_PER_MONTH = HOURS_PER_YEAR / 12


def interpolate(x: Any, points: Sequence[Sequence[float]]) -> Any:
    """Piecewise-linear ``y(x)`` through ``points`` ((x, y) knots, ascending x), flat beyond both ends."""
    out: Any = points[-1][1]
    for (x0, y0), (x1, y1) in reversed(list(zip(points, points[1:]))):
        out = where(x <= x1, y0 + (y1 - y0) * (x - x0) / (x1 - x0), out)
    return where(x <= points[0][0], points[0][1], out)


def busy_share(step_ms: Any, overhead_ms: Any) -> Any:
    """Share of a step the GPU runs kernels: all of it but the engine's host-side time."""
    return 1 - overhead_ms / step_ms


def gpu_watts(idle_w: Any, tdp_w: Any, busy: Any) -> Any:
    """Board power at a configuration: idle, plus the rest of the board power while kernels run (W)."""
    return idle_w + (tdp_w - idle_w) * busy


def joules_per_token(watts: Any, tokens_per_s: Any) -> Any:
    """Energy per token (J) at ``watts`` serving ``tokens_per_s``."""
    return watts / tokens_per_s


def node_it_watts(gpus_w: Any, system: dict[str, Any], scale_out: bool) -> Any:
    """An 8-GPU server's wall (IT) power with its GPUs drawing ``gpus_w`` in all (W): fixed host DC, fans, PSU
    conversion at its load, and its share of scale-out networking."""
    state = "true" if scale_out else "false"
    fan, psu = system["fan"], system["psu"]
    component_dc = gpus_w + system["fixed_dc_w"][state]
    load = minimum(component_dc / fan["full_cooling_load_w"], 1)
    pwm = fan["min_pwm"] + (fan["max_pwm"] - fan["min_pwm"]) * load
    dc = component_dc + fan["nameplate_w"] * pwm ** 3
    return dc / interpolate(dc / psu["load_sharing_w"], psu["efficiency"]) + system["network_w"][state]


def _fan_w(fans: dict[str, Any], air_heat_w: Any) -> Any:
    """Electrical power of a fan assembly cooling ``air_heat_w`` (speed linear in the heat, power in its cube)."""
    speed = fans["min_speed"] + (fans["max_speed"] - fans["min_speed"]) * minimum(air_heat_w / fans["design_air_heat_w"], 1)
    return fans["count"] * fans["rated_w"] * speed ** 3


def _cooled(load_w: Any, air_heat_w: Any, fans: dict[str, Any], loss) -> tuple[Any, Any]:
    """(fan W, conversion loss W) of a load whose fans also cool the conversion loss they cause (two rounds)."""
    fan = _fan_w(fans, air_heat_w)
    for _ in range(2):
        fan = _fan_w(fans, air_heat_w + loss(load_w + fan))
    return fan, loss(load_w + fan)


def rack_it_watts(gpu_w: Any, system: dict[str, Any], scale_out: bool) -> Any:
    """An NVL72 rack's IT power with each GPU drawing ``gpu_w`` (W): compute trays (GPUs, Grace sockets, NICs and
    drives, fans, 48 V converter loss), NVLink switch trays, power-shelf PSU loss, fans and controllers, and the
    rack's share of scale-out networking."""
    state = "true" if scale_out else "false"
    aux = system["tray_auxiliary_w"][state]
    boards = system["boards_per_tray"]
    tray_load = boards * (system["gpus_per_board"] * gpu_w + system["grace_socket_w"]) + aux
    converter = system["tray_converter"]
    fan, loss = _cooled(tray_load, boards * system["board_air_heat_w"] + aux, system["tray_fans"],
                        lambda w: interpolate(w / converter["capacity_w"], converter["loss_w"]))
    bus = system["compute_trays"] * (tray_load + fan + loss) + system["switch_trays"] * system["switch_tray_w"]
    shelves = system["shelves"]
    psu_dc = (bus / shelves["active"] + shelves["controller_w"]) / shelves["psus_per_shelf"]

    def psu_loss(w: Any) -> Any:
        return w * (1 / interpolate(w / shelves["psu_capacity_w"], shelves["efficiency"]) - 1)
    psu_fan, conversion = _cooled(psu_dc, 0, shelves["psu_fans"], psu_loss)
    shelf_w = shelves["psus_per_shelf"] * (conversion + psu_fan) + shelves["controller_w"]
    return bus + shelves["active"] * shelf_w + system["network_w"][state]


def system_it_watts(gpu_w: Any, system: dict[str, Any], scale_out: bool) -> Any:
    """IT power of one whole system (server or rack) with each of its GPUs drawing ``gpu_w`` (W)."""
    if system["kind"] == "rack":
        return rack_it_watts(gpu_w, system, scale_out)
    return node_it_watts(system["gpus"] * gpu_w, system, scale_out)


def it_watts_per_gpu(gpu_w: Any, system: dict[str, Any], scale_out: bool) -> Any:
    """A GPU's share of its system's IT power (W)."""
    return system_it_watts(gpu_w, system, scale_out) / system["gpus"]


def it_watts_at(busy: Any, it_idle_w: Any, it_half_w: Any, it_full_w: Any) -> Any:
    """A GPU's share of its system's IT power at busy share ``busy``, the quadratic through the system with its
    GPUs idle, half busy and at full board power: fans (cubic in their speed) and PSU efficiency bend the curve, and
    three figures per GPU follow it to 0.5 % on every system (a test checks) while keeping the workbook's formula
    short (a rack's exact curve would run to millions of characters without LET)."""
    return (it_idle_w * (1 - busy) * (1 - 2 * busy) + 4 * it_half_w * busy * (1 - busy)
            + it_full_w * busy * (2 * busy - 1))


def facility_watts(it_w: Any, pue: Any) -> Any:
    """Facility power: IT power times the power usage effectiveness (cooling, distribution)."""
    return it_w * pue


def capital_recovery_factor(rate: Any, years: Any) -> Any:
    """The share of a purchase price to pay each year to repay it over ``years`` at annual ``rate`` (an annuity);
    ``1 / years`` at a rate of zero (a rate under 1e-6 counts as 1e-6: the same to six digits, no 0/0)."""
    r = maximum(rate, 1e-6)
    return r / (1 - (1 + r) ** -years)


def owned_cost_per_hour(gpus: Any, capital_per_gpu: Any, recovery: Any, facility_kw: Any, price_kwh: Any,
                        provisioned_it_kw: Any, hosting_kw_month: Any) -> dict[str, Any]:
    """What owning a fleet costs per hour ($): capital repaid (GPUs x price per GPU x recovery factor per year),
    power (facility kW at load x $/kWh) and hosting (the IT kW provisioned for it x $/kW-month)."""
    capital = gpus * capital_per_gpu * recovery / HOURS_PER_YEAR
    power = facility_kw * price_kwh
    hosting = provisioned_it_kw * hosting_kw_month / HOURS_PER_MONTH
    return {"capital": capital, "power": power, "hosting": hosting, "total": capital + power + hosting}
