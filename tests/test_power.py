"""Power and ownership: system power from its parts, the GPU draw rule, owned cost, the power budget."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from dsxl.data.catalog import load_catalog
from dsxl.data.power import load_power, load_systems
from dsxl.physics import power
from dsxl.planner.plan import plan
from dsxl.refined.predict import predict


def _reference_rack_it_w(p, gpu_w, grace_w, scale_out=True):
    """The public InferenceX NVL72 rack evaluation, written out here independently: fans and conversion loss
    solved to convergence (dsxl takes two rounds)."""
    state = "true" if scale_out else "false"

    def fan_w(f, heat):
        speed = f["min_speed"] + (f["max_speed"] - f["min_speed"]) * min(heat / f["design_air_heat_w"], 1)
        return f["count"] * f["rated_w"] * speed ** 3

    def lerp(x, pts):
        return float(np.interp(x, [a for a, _ in pts], [b for _, b in pts]))

    def solve(load, heat, fans, loss):
        fan = fan_w(fans, heat)
        for _ in range(128):
            new = fan_w(fans, heat + loss(load + fan))
            if abs(new - fan) < 1e-10:
                break
            fan = new
        return fan, loss(load + fan)
    aux = p["tray_auxiliary_w"][state]
    load = p["boards_per_tray"] * (p["gpus_per_board"] * gpu_w + grace_w) + aux
    conv = p["tray_converter"]
    fan, loss = solve(load, p["boards_per_tray"] * p["board_air_heat_w"] + aux, p["tray_fans"],
                      lambda w: lerp(w / conv["capacity_w"], conv["loss_w"]))
    bus = p["compute_trays"] * (load + fan + loss) + p["switch_trays"] * p["switch_tray_w"]
    sh = p["shelves"]
    psu_dc = (bus / sh["active"] + sh["controller_w"]) / sh["psus_per_shelf"]
    psu_loss = lambda w: w * (1 / lerp(w / sh["psu_capacity_w"], sh["efficiency"]) - 1)  # noqa: E731
    pfan, ploss = solve(psu_dc, 0, sh["psu_fans"], psu_loss)
    return bus + sh["active"] * (sh["psus_per_shelf"] * (ploss + pfan) + sh["controller_w"]) + p["network_w"][state]


@pytest.mark.parametrize("system", ["nvl72_gb200", "nvl72_gb300"])
def test_an_nvl72_rack_from_its_parts_equals_the_model(system):
    p = load_systems()[system]
    tdp = {"nvl72_gb200": 1200, "nvl72_gb300": 1400}[system]
    for gpu_w in (200, 700, tdp):
        ref = _reference_rack_it_w(p, gpu_w, p["grace_socket_w"])
        assert power.rack_it_watts(gpu_w, p, True) == pytest.approx(ref, rel=1e-5)
    full = power.facility_watts(power.rack_it_watts(tdp, p, True), p["pue"])
    # a GB200 NVL72 at full board power: 72 x 1.2 kW of GPUs, 36 Grace sockets, trays, switches and shelves,
    # ~120 kW IT and ~131 kW at the facility (PUE 1.1); GB300 ~140 / ~154 kW
    lo, hi = {"nvl72_gb200": (115e3, 140e3), "nvl72_gb300": (135e3, 165e3)}[system]
    assert lo < full < hi


def test_an_hgx_h200_server_at_full_load_by_hand():
    """8 x 700 W + 1,351.6 W host = 6,951.6 W; fans at PWM 0.22 + 0.58 x 6951.6/7214 = 0.7789 draw
    835.3 x 0.7789^3 = 394.7 W; 7,346.3 W DC at 37.1 % of the PSUs' 19.8 kW, efficiency 0.9448 + (0.371 - 0.2) /
    0.3 x 0.0192 = 0.95575; wall 7,686.5 W + 473.6 W network = 8,160 W; x PUE 1.3 = 10,608 W."""
    p = load_systems()["hgx_hopper"]
    pwm = 0.22 + 0.58 * 6951.6 / 7214
    dc = 6951.6 + 835.3052631578948 * pwm ** 3
    eff = 0.9448 + (dc / 19800 - 0.2) / 0.3 * (0.964 - 0.9448)
    by_hand = dc / eff + 473.625
    assert by_hand == pytest.approx(8160.1, abs=0.5)
    assert power.node_it_watts(8 * 700, p, True) == pytest.approx(by_hand, rel=1e-12)
    assert power.facility_watts(power.system_it_watts(700, p, True), p["pue"]) == pytest.approx(by_hand * 1.3)


def test_every_catalog_gpu_has_a_sourced_power_row_and_system():
    rows, systems = load_power(), load_systems()
    assert set(rows) == set(load_catalog().gpus)
    for r in rows.values():
        assert 0 < r.idle_w < r.tdp_w and r.capital_per_gpu_usd > 0 and r.system in systems
        assert r.tdp_source and r.idle_source and r.capital_source
    for s in systems.values():
        assert s["kind"] in ("node", "rack") and s["source"] and 1 <= s["pue"] < 2


def test_busier_never_draws_less():
    for key, s in load_systems().items():
        w = np.linspace(50, 1400, 60)
        it = np.array([power.system_it_watts(x, s, True) for x in w])
        assert np.all(np.diff(it) > 0), key
    assert np.all(np.diff(power.gpu_watts(90, 700, np.linspace(0, 1, 11))) > 0)
    r = predict("decode", "H200", ep=16, batch=64, kv_len=4096)
    assert 90 < r["watts_per_gpu"] < 700
    assert r["joules_per_token"] == pytest.approx(r["watts_per_gpu"] / r["tokens_per_s_per_gpu"])


def test_capital_recovery_by_hand():
    assert power.capital_recovery_factor(0.10, 4) == pytest.approx(0.1 / (1 - 1.1 ** -4), rel=1e-12)  # 0.315471
    assert power.capital_recovery_factor(0.0, 4) == pytest.approx(0.25, rel=1e-5)


LOAD = dict(output_tokens_per_s=200_000, tpot_ms=50)


def test_owning_at_no_capital_and_no_power_costs_only_hosting():
    x = plan(gpus="H200", ownership="own", capital_per_gpu=0, electricity_per_kwh=0, **LOAD)["gpus"]["H200"]
    own = x["cost_breakdown"]["own"]
    assert own["capital_per_hour"] == 0 and own["power_per_hour"] == 0
    assert x["cost_per_hour"] == pytest.approx(own["hosting_per_hour"])
    # hosting: the provisioned IT kW x $150 per kW-month
    assert own["hosting_per_hour"] == pytest.approx(x["power"]["provisioned_it_mw"] * 1e3 * 150 / (8766 / 12))


def test_a_higher_pue_never_lowers_the_owned_cost_and_rent_is_unchanged():
    low, high = (plan(gpus="B200", ownership="own", pue=p, **LOAD)["gpus"]["B200"] for p in (1.1, 1.6))
    assert high["cost_per_hour"] > low["cost_per_hour"] and high["power_mw"] > low["power_mw"]
    assert high["cost_breakdown"]["rent"] == low["cost_breakdown"]["rent"]
    rented = plan(gpus="B200", **LOAD)["gpus"]["B200"]
    assert rented["cost_per_hour"] == rented["cost_breakdown"]["rent"]["cost_per_hour"] == \
        rented["total_gpus"] * load_catalog().gpu("B200").price_gpu_hour


def test_the_owned_cost_adds_up():
    x = plan(gpus="GB200", ownership="own", **LOAD)["gpus"]["GB200"]
    own, p = x["cost_breakdown"]["own"], x["power"]
    (bought,) = x["systems"]  # GB200 is bought in whole NVL72 racks
    assert bought["racks"] == -(-x["total_gpus"] // 72) and bought["gpus_bought"] == 72 * bought["racks"]
    capital = bought["gpus_bought"] * 52000 * power.capital_recovery_factor(0.10, 4) / 8766
    assert own["capital_per_hour"] == pytest.approx(capital)
    assert own["power_per_hour"] == pytest.approx(p["facility_mw"] * 1e3 * 0.08)
    assert own["cost_per_hour"] == pytest.approx(own["capital_per_hour"] + own["power_per_hour"]
                                                 + own["hosting_per_hour"])
    assert x["tokens_per_s_per_mw"] == pytest.approx(200_000 / x["power_mw"])
    assert p["facility_mw"] <= x["power_mw"]  # drawn at load within what is provisioned


def test_a_power_budget_round_trips_and_ranks_by_traffic():
    r = plan(gpus="H200,B200,MI355X", power_budget_mw=2)
    caps = [r["gpus"][g]["capacity_output_tokens_per_s"] for g in r["ranking"]]
    assert caps == sorted(caps, reverse=True) and caps[0] > 0
    for g in r["ranking"]:
        x = r["gpus"][g]
        assert x["power_mw"] <= 2
        back = plan(gpus=g, output_tokens_per_s=x["capacity_output_tokens_per_s"])["gpus"][g]
        assert back["feasible"] and back["power_mw"] <= 2, g


def test_bad_power_and_ownership_input_is_one_line():
    for args, words in ((["--pue", "0.9"], "pue must be a number from 1 to 5"),
                        (["--amortization-years", "0"], "amortization_years must be a number greater than 0"),
                        (["--electricity-per-kwh", "-1"], "electricity_per_kwh must be a number from 0"),
                        (["--capital-per-gpu", "-5"], "capital_per_gpu must be a number from 0"),
                        (["--power-budget-mw", "5", "--budget-gpus", "8"], "not allowed with"),
                        (["--power-budget-mw", "0"], "power_budget_mw must be a number greater than 0"),
                        (["--ownership", "lease"], "invalid choice")):
        p = subprocess.run([sys.executable, "-m", "dsxl.cli", "plan", "--gpu", "H200", *args], capture_output=True,
                           text=True)
        assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)


def test_the_issue_question_gives_each_gpu_its_megawatts_and_owned_cost():
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "plan", "--gpu", "H200,B200,GB200,MI355X",
                        "--output-tokens-per-s", "1000000", "--tpot-ms", "50", "--ownership", "own", "--format", "json"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    for g, x in r["gpus"].items():
        assert x["feasible"] and x["power_mw"] > 0 and x["tokens_per_s_per_mw"] > 0, g
        assert x["cost_breakdown"]["ownership"] == "own"
        assert x["cost_per_m_output_all_in"] == pytest.approx(x["cost_breakdown"]["own"]["cost_per_m_output_all_in"])
    gb = r["gpus"]["GB200"]["power"]["pools"]["decode"]
    per_rack = gb["facility_kw"] / gb["gpus"] * 72  # a rack's facility kW at this load
    assert 100 < per_rack < 140 and math.isfinite(per_rack)


def test_system_power_follows_the_three_point_curve_to_half_a_percent():
    """The planner (and the workbook) take a GPU's share of its system as the quadratic through idle, half busy and
    full board power; the exact curve (fans, PSU efficiency) departs from it by under 0.5 % on every system."""
    for row in load_power().values():
        s = load_systems()[row.system]
        exact = lambda b: power.it_watts_per_gpu(power.gpu_watts(row.idle_w, row.tdp_w, b), s, True)  # noqa: E731
        three = [exact(b) for b in (0, 0.5, 1)]
        for b in np.linspace(0, 1, 41):
            assert power.it_watts_at(b, *three) == pytest.approx(exact(b), rel=5e-3), row.gpu


def test_an_instances_facility_power_from_its_systems():
    """EP16 on H200 spans two 8-GPU servers (scale-out active): 16 GPUs x their share of a server at this busy
    share x PUE 1.3; EP8 stays in one (network idle); a list of GPUs gives each its own system."""
    from dsxl.refined.power import system_watts_per_gpu
    for ep, spans in ((16, True), (8, False)):
        r = predict("decode", "H200", ep=ep, batch=64, kv_len=4096)
        busy = (r["watts_per_gpu"] - 90) / (700 - 90)
        share = power.it_watts_at(busy, *system_watts_per_gpu("H200", spans))
        assert r["facility_kw_per_instance"] == pytest.approx(ep * share * 1.3 / 1e3, rel=1e-12)
    both = predict("decode", ["H200", "GB200"], ep=np.array([8, 16]), batch=64, kv_len=4096)
    for k, gpu in enumerate(("H200", "GB200")):
        for j, ep in enumerate((8, 16)):
            one = predict("decode", gpu, ep=ep, batch=64, kv_len=4096)["facility_kw_per_instance"]
            assert both["facility_kw_per_instance"][k][j] == pytest.approx(one, rel=1e-12)


def test_nvl72_gpus_are_counted_in_trays_and_whole_racks():
    """The issue's question: 40 requests/s on GB300 takes 20 GPUs, that is 5 four-GPU trays in one NVL72 rack; owning
    it buys the whole rack (52 spare GPUs, idle at load, provisioned, repaid); renting pays for the 20 GPUs."""
    from dsxl.render.text import plan_text
    r = plan(gpus="GB300", requests_per_s=40, input_len=4000, output_len=1500, tpot_ms=50, ttft_p99_ms=2000)
    x = r["gpus"]["GB300"]
    (rack,) = x["systems"]
    assert rack["kind"] == "rack" and rack["gpus_used"] == x["total_gpus"]
    assert rack["nodes"] == x["decode"]["nodes"] + x["prefill"]["nodes"] == sum(
        -(-pool["gpus"] // 4) for pool in (x["decode"], x["prefill"]))
    assert rack["racks"] == -(-x["total_gpus"] // 72) and rack["spare_gpus"] == 72 * rack["racks"] - x["total_gpus"]
    text = plan_text(r)
    assert f"Answer: {x['total_gpus']} GPUs = {rack['nodes']} trays in {rack['racks']} NVL72 rack" in text
    spare = x["power"]["pools"]["spare GB300"]
    assert spare["gpus"] == rack["spare_gpus"] and spare["watts_per_gpu"] == load_power()["GB300"].idle_w
    own = x["cost_breakdown"]["own"]
    recovery = power.capital_recovery_factor(0.10, 4)
    assert own["capital_per_hour"] == pytest.approx(72 * rack["racks"] * 58000 * recovery / 8766)
    assert x["cost_breakdown"]["rent"]["cost_per_hour"] == x["total_gpus"] * load_catalog().gpu("GB300").price_gpu_hour
    h200 = plan(gpus="H200", requests_per_s=40, input_len=4000, output_len=1500, tpot_ms=50)["gpus"]["H200"]
    (nodes,) = h200["systems"]
    assert nodes["kind"] == "node" and nodes["gpus_bought"] == 8 * h200["total_nodes"]
