"""The planner: optimal by brute force, SLA and memory respected, sizing, cost, day-6 economics, CLI contract."""

import itertools
import json
import math
import subprocess
import sys

import pytest

from dataclasses import replace
import re

from dsxl import load_catalog
from dsxl.planner.plan import PlanInputs, check_inputs, least_gpus, plan, search_decode
from dsxl.render.text import plan_text
from dsxl.refined.predict import predict
from dsxl.planner.recipes import recipe, recorded

DECODE_KEYS = {"ep", "attn_tp", "batch", "mtp_draft", "tpot_ms", "tokens_per_s_per_gpu", "tokens_per_s_per_user",
               "max_batch", "instances", "nodes"}
PREFILL_KEYS = {"ep", "attn_tp", "tokens_per_forward", "ttft_ms", "tokens_per_s_per_gpu", "instances", "nodes"}
GPU_KEYS = {"decode", "prefill", "total_gpus", "total_nodes", "cost_per_hour", "cost_per_day", "cost_per_m_input",
            "cost_per_m_output", "feasible"}


def test_each_ep_sizes_best_decode_is_optimal_by_brute_force():
    inp = dict(gpus=("H200",), ep_sizes=(8, 16, 32), output_tokens_per_s=50_000, tpot_ms=40,
               batch_sizes=tuple(range(1, 400, 9)))
    options = {o["ep"]: o for o in search_decode("H200", check_inputs(replace(PlanInputs(), **inp)))["options"]}
    kv = 4096 + 1536 / 2
    for ep in (8, 16, 32):
        best = None
        for tp, b, (d, a), tbo in itertools.product((1, 2, 4, 8), range(1, 400, 9), ((0, 1.0), (1, 1.8)),
                                                    (False, True)):
            if ep % tp:
                continue
            # the grid's batch is per GPU; predict's is per attention rank of tp GPUs
            p = predict("decode", "H200", ep=ep, attn_tp=tp, batch=b * tp, kv_len=kv, mtp_draft=d, mtp_accept=a,
                        tbo=tbo)
            if p["fits"] and p["tpot_ms"] <= 40 and (best is None or p["tokens_per_s_per_gpu"] > best):
                best = p["tokens_per_s_per_gpu"]
        assert options[ep]["tokens_per_s_per_gpu"] == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("load", [2_000, 20_000, 1_000_000])
def test_least_cost_plan_never_needs_more_gpus_than_any_single_ep_size(load):
    """Every catalog GPU: the plan's GPUs are no more than the best plan restricted to any one EP size."""
    base = dict(output_tokens_per_s=load, tpot_ms=50, input_len=4000, output_len=1500, mtp_draft=1)
    full = plan(gpus="all", **base)
    sizes = PlanInputs().ep_sizes
    restricted = {ep: plan(gpus="all", ep_sizes=(ep,), **base) for ep in sizes}
    for g, x in full["gpus"].items():
        singles = [r["gpus"][g]["total_gpus"] for r in restricted.values() if r["gpus"][g]["feasible"]]
        if x["feasible"]:
            assert x["total_gpus"] <= min(singles), (g, load)
        else:
            assert not singles


def test_small_loads_are_not_over_provisioned():
    """H200, 20,000 output tok/s, 4,000 in / 1,500 out, TPOT 50 ms, MTP off: 16 GPUs, not an EP64 instance."""
    off = dict(gpus="H200", output_tokens_per_s=20_000, tpot_ms=50, input_len=4000, output_len=1500, mtp_accept=1)
    r = plan(**off)  # an accepted draft of 1 token per step: MTP gains nothing, so it is off in effect
    restricted = plan(**off, ep_sizes=(1, 2, 4, 8, 16))
    assert r["gpus"]["H200"]["total_gpus"] <= restricted["gpus"]["H200"]["total_gpus"] <= 24
    assert r["gpus"]["H200"]["decode"]["mix"][0]["ep"] < 64


def test_a_mix_of_instance_sizes_serves_the_remainder():
    x = least_gpus(100.0, [{"ep": 32, "tokens_per_s_per_gpu": 2.0}, {"ep": 8, "tokens_per_s_per_gpu": 1.5}])
    # one EP32 instance serves 64; the remaining 36 need three EP8 (12 each): 56 GPUs, not two EP32 (64)
    assert x["gpus"] == 56 and [m["instances"] for m in x["mix"]] == [1, 3] and x["capacity"] >= 100


def test_budget_mode_serves_the_most_within_the_budget():
    r = plan(gpus="H200", budget_gpus=64, tpot_ms=50, input_len=4000, output_len=1500)
    x = r["gpus"]["H200"]
    cap = x["capacity_output_tokens_per_s"]
    assert x["feasible"] and x["total_gpus"] <= 64 and cap > 0
    # no plan that fits in 64 GPUs serves more
    more = plan(gpus="H200", output_tokens_per_s=cap * 1.01, tpot_ms=50, input_len=4000, output_len=1500)
    assert more["gpus"]["H200"]["total_gpus"] > 64
    covered = plan(gpus="H200", budget_nodes=8, output_tokens_per_s=cap / 2, tpot_ms=50, input_len=4000,
                   output_len=1500)["gpus"]["H200"]
    assert covered["budget_covers_load"] is True and covered["budget_gpus"] == 64
    tiny = plan(gpus="H800", budget_gpus=4, tpot_ms=50)["gpus"]["H800"]
    assert tiny["feasible"] is False and "smallest" in tiny["reason"] and tiny["total_gpus"] is None


def test_mixed_pools_are_sized_and_priced_per_pool():
    r = plan(prefill_gpu="B200", decode_gpu="H20", output_tokens_per_s=100_000, tpot_ms=50)
    x = r["gpus"]["B200/H20"]
    assert x["feasible"] and x["prefill"]["gpu"] == "B200" and x["decode"]["gpu"] == "H20"
    cat = load_catalog()
    assert x["cost_per_hour"] == pytest.approx(x["prefill"]["gpus"] * cat.gpu("B200").price_gpu_hour
                                               + x["decode"]["gpus"] * cat.gpu("H20").price_gpu_hour)
    assert x["kv_transfer"]["nic_gb_per_s"] == cat.gpu("B200").pcie_bw and "binds" in x["kv_transfer"]
    pairs = plan(gpus="H800,B200", mixed=True, output_tokens_per_s=100_000)
    assert {"H800", "B200", "H800/B200", "B200/H800"} == set(pairs["gpus"])


@pytest.mark.parametrize("engine", ["sglang", "vllm", "trtllm"])
def test_recipes_use_only_recorded_flags(engine):
    r = plan(gpus="H200", output_tokens_per_s=300_000, tpot_ms=50, engine=engine)
    rec = recipe(r, engine=engine)
    spec = recorded(engine)
    assert rec["version"] == spec["version"] and rec["prefill"] and rec["decode"]
    for part in rec["prefill"] + rec["decode"]:
        text = "\n".join(part["commands"])
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]+)", text):
            assert flag in spec["flags"], (engine, flag)
        if engine == "trtllm":  # the YAML keys of --extra_llm_api_options
            keys, parents = set(), {}
            for line in text.split("<<'EOF'\n")[1].split("\nEOF")[0].splitlines():
                depth, key = (len(line) - len(line.lstrip())) // 2, line.strip().split(":")[0]
                parents[depth] = key
                keys.add(".".join(parents[d] for d in range(depth + 1)))
            assert keys <= set(spec["yaml_keys"]), keys - set(spec["yaml_keys"])
    # printed within 120 columns; the continued lines, joined, are the commands themselves (here-documents as written)
    from dsxl.planner.recipes import recipe_text
    printed = recipe_text(rec)
    assert max(len(line) for line in printed.splitlines()) <= 120
    joined = printed.replace(" \\\n    ", " ")
    for part in rec["prefill"] + rec["decode"]:
        assert all(command in joined for command in part["commands"]), engine
    decode = r["gpus"]["H200"]["decode"]
    first = rec["decode"][0]["commands"][-1]
    assert str(decode["mix"][0]["ep"]) in first and rec["decode"][0]["instances"] == decode["mix"][0]["instances"]


def test_cli_budget_mixed_and_recipe_errors():
    p = _cli("plan", "--gpu", "H200", "--budget-gpus", "64", "--format", "json")
    assert p.returncode == 0 and json.loads(p.stdout)["gpus"]["H200"]["capacity_output_tokens_per_s"] > 0
    p = _cli("plan", "--gpu", "H200", "--output-tokens-per-s", "100000", "--recipe", "vllm", "--format", "json")
    assert json.loads(p.stdout)["recipe"]["engine"] == "vllm"
    for bad in (["plan", "--budget-gpus", "8", "--budget-nodes", "1"], ["plan", "--recipe", "tgi"],
                ["plan", "--prefill-gpu", "B200"], ["plan", "--prefill-gpu", "B200", "--decode-gpu", "H9"],
                ["plan", "--engine", "tgi"]):
        p = _cli(*bad)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, (bad, p.stderr)


def test_plan_meets_its_sla_fits_and_reproduces_with_predict():
    r = plan(gpus="H800,B200", output_tokens_per_s=1e6, tpot_ms=50, ttft_ms=2500)
    for g, x in r["gpus"].items():
        assert GPU_KEYS <= set(x) and x["feasible"]
        d, p = x["decode"], x["prefill"]
        assert DECODE_KEYS <= set(d) and PREFILL_KEYS <= set(p)
        assert d["tpot_ms"] <= 50 and d["batch"] <= d["max_batch"] and p["ttft_ms"] <= 2500
        again = predict("decode", g, ep=d["ep"], attn_tp=d["attn_tp"], batch=d["batch"], kv_len=d["kv_len"],
                        mtp_draft=d["mtp_draft"], mtp_accept=d["mtp_accept"], tbo=d["tbo"],
                        redundant_experts=d["redundant_experts"])
        assert again["tokens_per_s_per_gpu"] == d["tokens_per_s_per_gpu"] and again["fits"]
        again = predict("prefill", g, ep=p["ep"], attn_tp=p["attn_tp"], tokens_per_gpu=p["tokens_per_forward"],
                        prompt_len=p["prompt_len"], cache_hit=p["cache_hit"], tbo=p["tbo"],
                        redundant_experts=p["redundant_experts"])
        assert again["tokens_per_s_per_gpu"] == p["tokens_per_s_per_gpu"] and again["ttft_ms"] == p["ttft_ms"]


def test_sizing_in_whole_instances_and_costs_follow():
    r = plan(gpus="H800", output_tokens_per_s=1e6, input_len=3000, output_len=1000, cache_hit=0.5,
             peak_to_average=1.3, price_gpu_hour=2.5)
    x = r["gpus"]["H800"]
    d, p = x["decode"], x["prefill"]
    # one fleet: provisioned for the peak (1.3 x the average load), and that fleet is what every figure counts
    for pool, load in ((d, 1.3e6), (p, 3.9e6)):
        assert pool["gpus"] == sum(m["instances"] * m["ep"] for m in pool["mix"])
        assert sum(m["instances"] * m["ep"] * m["tokens_per_s_per_gpu"] for m in pool["mix"]) >= load
        assert pool["instances"] == sum(m["instances"] for m in pool["mix"])
    assert x["total_gpus"] == d["gpus"] + p["gpus"] == x["peak_total_gpus"]
    assert x["total_nodes"] == math.ceil(d["gpus"] / 8) + math.ceil(p["gpus"] / 8) == x["peak_total_nodes"]
    assert x["average_total_gpus"] < x["total_gpus"]  # the fleet not bought, summarised beside it
    assert x["costed_at"] == "peak" and x["cost_per_hour"] == x["total_gpus"] * 2.5
    assert x["cost_per_day"] == x["cost_per_hour"] * 24
    # the peak fleet is what is paid for, the average traffic what earns
    assert x["cost_per_m_output"] == pytest.approx(d["gpus"] * 2.5 / (1e6 * 3600) * 1e6)
    auto = plan(gpus="H800", output_tokens_per_s=1e6, input_len=3000, output_len=1000, cache_hit=0.5,
                peak_to_average=1.3, price_gpu_hour=2.5, autoscale=True)["gpus"]["H800"]
    assert auto["costed_at"] == "average" and auto["cost_per_hour"] == auto["total_gpus"] * 2.5
    assert auto["total_gpus"] == auto["average_total_gpus"] == x["average_total_gpus"]
    assert auto["cost_per_m_output"] == pytest.approx(auto["decode"]["gpus"] * 2.5 / (1e6 * 3600) * 1e6)
    assert x["cost_per_m_input_miss"] == pytest.approx(x["cost_per_m_input"] * 2)  # half the input hits the cache
    assert x["prefill_decode_node_ratio"] == p["nodes"] / d["nodes"]


def test_deepseek_day6_economics():
    r = plan(scenario="deepseek_day6")
    s = r["scenario"]
    assert s["recomputed"]["cost_per_day"] == 87072  # 226.75 x 8 x $2 x 24
    assert s["recomputed"]["revenue_per_day"] == pytest.approx(562_100, abs=0.01)  # from the rounded token counts
    assert s["published"]["revenue_per_day"] == 562_027
    assert round(s["published"]["revenue_per_day"] / 87072 - 1, 2) == 5.45  # the published 545 %
    assert math.floor(s["recomputed"]["margin"] * 100) == 545
    assert 0 < s["planner_nodes"] < 226.75 and "S1/S2" in s["why_they_differ"]
    g = r["gpus"]["H800"]
    assert g["decode"]["tokens_per_s_per_user"] >= 20 and r["inputs"]["input_len"] == 4383
    assert g["peak_total_nodes"] >= g["total_nodes"] and "margin" in g and "revenue_per_day" in g
    # like for like (issue 37): the planner's average fleet against the nodes occupied on average, its peak fleet
    # (the one the table and the Answer count) against the published peak of 278
    assert s["planner_nodes"] == g["average_total_nodes"] < s["planner_peak_nodes"] == g["total_nodes"]
    assert s["published_peak_nodes"] == 278 and s["planner_peak_nodes"] < 278
    text = plan_text(r)
    assert f"sizes {s['planner_nodes']} for the day's average traffic and {g['total_nodes']} for its peak" in \
        text.replace("\n    ", " ") and f"{g['total_nodes']} nodes" in text.split("Answer:")[1].split("\n")[0]


def test_impossible_sla_is_a_result_with_the_best_achievable():
    r = plan(gpus="H20", tpot_ms=5)
    x = r["gpus"]["H20"]
    assert x["feasible"] is False and "TPOT SLA binds" in x["reason"] and "best achievable" in x["reason"]
    assert r["ranking"] == []
    r = plan(gpus="H800", ep_sizes=(1, 2), tpot_ms=100)
    assert "memory binds" in r["gpus"]["H800"]["reason"]
    assert "TTFT SLA binds" in plan(gpus="H800", ttft_ms=10)["gpus"]["H800"]["reason"]


def test_all_gpus_ranked_by_cost_and_both_serving_styles():
    r = plan(gpus="all", serving="both", output_tokens_per_s=2e5)
    costs = [r["gpus"][g]["cost_per_m_output_all_in"] for g in r["ranking"]]
    assert costs == sorted(costs) and len(r["gpus"]) == len(load_catalog().gpus)
    agg = r["gpus"]["H800"]["aggregated"]
    assert agg["serving"] == "aggregated" and agg["prefill"] is None
    if agg["feasible"]:
        assert agg["decode"]["tpot_ms"] <= 50 and agg["decode"]["ttft_ms"] <= 3000


def test_pareto_frontier_is_monotone():
    pts = plan(gpus="B200")["gpus"]["B200"]["pareto"]
    users = [p["tokens_per_s_per_user"] for p in pts]
    gpus = [p["tokens_per_s_per_gpu"] for p in pts]
    assert users == sorted(users, reverse=True) and gpus == sorted(gpus)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True)


def test_cli_json_contract_plot_and_errors(tmp_path):
    png = tmp_path / "frontier.png"
    p = _cli("plan", "--gpu", "H800", "--output-tokens-per-s", "500000", "--tpot-ms", "60", "--format", "json",
             "--plot", str(png))
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert {"inputs", "gpus"} <= set(r) and r["inputs"]["tpot_ms"] == 60 and r["inputs"]["ttft_ms"] is None
    assert r["inputs"]["ttft_limits_ms"] == {"mean": 3000, "mean_is_default": True, "p90": None, "p99": None}
    assert r["compared_on"] == "cost_per_m_output_all_in"
    assert GPU_KEYS <= set(r["gpus"]["H800"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    p = _cli("plan", "--gpu", "H20", "--tpot-ms", "5")
    assert p.returncode == 0 and "infeasible" in p.stdout
    for bad in (["plan", "--input-len", "-5"], ["plan", "--cache-hit", "1"], ["plan", "--output-tokens-per-s", "0"],
                ["plan", "--gpu", "H9"], ["plan", "--scenario", "nope"], ["plan", "--plot", "x.pdf"],
                ["plan", "--ep-sizes", "8,x"]):
        p = _cli(*bad)
        assert p.returncode == 2 and p.stdout == "" and len(p.stderr.strip().splitlines()) == 1, (bad, p.stderr)


def test_each_gpu_carries_its_band_and_the_ranking_says_when_it_is_not_decisive():
    r = plan(gpus="H800,H100_SXM,MI355X", output_tokens_per_s=100_000, tpot_ms=50)
    for g in r["ranking"]:
        a = r["gpus"][g]["accuracy"]
        assert a["band"] >= max(a["decode"]["band"], a["prefill"]["band"])
    assert r["gpus"]["MI355X"]["accuracy"]["validated"] is False  # no CDNA4 kernel rows, no calibration row
    assert r["ranking_decisive"] is False  # H800 and H100 differ by less than their bands
    assert "not decisive" in plan_text(r)


def test_vllm_multi_node_instances_have_a_head_and_headless_workers():
    r = plan(gpus="H200", output_tokens_per_s=50_000, engine="vllm", ep_sizes=(32,))
    rec = recipe(r, engine="vllm")
    multi = [p for p in rec["decode"] if p["nodes_per_instance"] > 1]
    assert multi, "a 32-GPU instance spans 4 nodes"
    lines = [c for c in multi[0]["commands"] if not c.startswith("#")]
    head, worker = lines
    assert "--headless" not in head and "--data-parallel-start-rank" not in head
    assert worker.endswith("--headless") and '--data-parallel-start-rank "$((RANK * 8))"' in worker
    assert head.split(" --data-parallel-size-local")[0] == worker.split(" --data-parallel-size-local")[0]


@pytest.mark.parametrize("name", ["my cfg", "a;echo PWNED;"])
def test_paths_in_pasted_lines_are_shell_quoted(tmp_path, name):
    import shlex
    folder = tmp_path / name
    folder.mkdir()
    cfg = folder / "config.json"
    cfg.write_text((__import__("pathlib").Path(__file__).parent / "fixtures" / "deepseek_v4_pro_config.json")
                   .read_text())
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "plan", "--gpu", "B200", "--model", str(cfg),
                        "--recipe", "sglang"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    text = p.stdout[p.stdout.index("Reproduce: ") + len("Reproduce: "):]
    line = text.split("\nReproduce: ")[0].split("\n\n")[0]
    words = shlex.split(line.replace("\\\n", " "))  # as the shell reads it: the path one word, nothing else run
    assert words[words.index("--model") + 1] == str(cfg) and "echo" not in words
    start = p.stdout.index("python -m sglang.launch_server")
    launch = p.stdout[start:].replace(" \\\n    ", " ").split("\n")[0]  # the printed lines, joined as the shell does
    words = shlex.split(launch)
    assert words[words.index("--model-path") + 1] == str(folder)


def test_engine_and_recipe_must_agree_and_run_on_the_gpu():
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "plan", "--gpu", "H200", "--recipe", "trtllm", "--engine",
                        "sglang"], capture_output=True, text=True)
    assert p.returncode == 2 and "--recipe trtllm" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "predict", "decode", "--gpu", "MI300X", "--ep", "8",
                        "--batch", "8", "--kv-len", "100", "--engine", "trtllm"], capture_output=True, text=True)
    assert p.returncode == 2 and "does not run on MI300X" in p.stderr
    r = plan(gpus="MI300X,H200", engine="trtllm")
    assert r["gpus"]["MI300X"]["feasible"] is False and "does not run on MI300X" in r["gpus"]["MI300X"]["reason"]
    assert r["ranking"] == ["H200"]


# --- the planner under real traffic ------------------------------------------------------------------------------
@pytest.mark.parametrize("servers", [1, 4, 16])
@pytest.mark.parametrize("utilization", [0.3, 0.6, 0.9])
def test_ttft_percentiles_match_a_discrete_event_simulation(servers, utilization):
    """The G/G/c approximation against ciw (Poisson arrivals, fixed 100 ms forwards): p90 and p99 within 15 %."""
    import ciw  # the test extra installs it
    import numpy as np
    from dsxl.physics.queueing import ttft_ms
    service, n = 100.0, 30_000
    rate_per_ms = utilization * servers / service
    network = ciw.create_network(arrival_distributions=[ciw.dists.Exponential(rate_per_ms)],
                                 service_distributions=[ciw.dists.Deterministic(service)],
                                 number_of_servers=[servers])
    ciw.seed(7)
    sim = ciw.Simulation(network)
    sim.simulate_until_max_customers(n, method="Finish")
    times = np.array([r.waiting_time + r.service_time for r in sim.get_all_records()[n // 10:]])
    got = ttft_ms(servers, rate_per_ms * 1000, service, 0.0, 1.0, 0.0, 0.5)
    for p in (90, 99):
        assert got[f"p{p}"] == pytest.approx(np.percentile(times, p), rel=0.15), (p, got)
    assert got["utilization"] == pytest.approx(utilization)


def test_a_p99_ttft_target_plans_for_the_tail_and_burstier_traffic_costs_more():
    q = dict(gpus="H200", requests_per_s=40, input_len=4000, output_len=1500, tpot_ms=50)
    mean, p99 = plan(**q, ttft_ms=2000)["gpus"]["H200"], plan(**q, ttft_p99_ms=2000)["gpus"]["H200"]
    for x in (mean, p99):
        t = x["ttft_ms"]
        assert t["p50"] <= t["p90"] <= t["p99"] and t["mean"] <= 2000
        assert 0 < x["prefill"]["utilization"] < 1 and 0 < x["decode"]["utilization"] < 1
    assert mean["ttft_ms"]["p99"] > 2000 >= p99["ttft_ms"]["p99"]  # the mean target alone leaves the tail long
    assert p99["prefill"]["gpus"] >= mean["prefill"]["gpus"]
    bursty = plan(**q, ttft_p99_ms=2000, arrival_cv=2)["gpus"]["H200"]
    assert bursty["prefill"]["gpus"] > p99["prefill"]["gpus"]
    # the same pool under burstier arrivals: a longer p99
    from dsxl.physics.queueing import ttft_ms
    bursty_p99, poisson_p99 = (ttft_ms(48, 44, 1000, 0.0, cv, 0.0, 0.5)["p99"] for cv in (2.0, 1.0))
    assert bursty_p99 > poisson_p99 > 1000


def test_decode_slots_hold_p99_concurrency():
    """The decode pool holds the 99th percentile of the sequences in flight: Little's law at the SLA's TPOT gives
    their mean, Poisson's normal approximation their spread; z is the standard normal's 99th percentile (from the
    standard library here, not from dsxl)."""
    from statistics import NormalDist
    from dsxl.data.catalog import load_refined
    z = NormalDist().inv_cdf(0.99)
    assert load_refined()["decode_headroom_z"].values["hopper"] == pytest.approx(z, abs=1e-3)
    base = dict(gpus="H200", output_tokens_per_s=100_000)
    with_q, without = plan(**base)["gpus"]["H200"], plan(**base, queueing=False)["gpus"]["H200"]
    assert with_q["decode"]["capacity_tokens_per_s"] >= without["decode"]["capacity_tokens_per_s"]
    assert with_q["decode"]["utilization"] < 1
    d = with_q["decode"]
    mean = 100_000 * 50 / 1000  # sequences in flight at the default 50 ms TPOT target
    need = 100_000 * (1 + z * mean ** 0.5 / mean)
    one_less = d["capacity_tokens_per_s"] - d["tokens_per_s_per_gpu"] * d["ep"]
    assert d["capacity_tokens_per_s"] >= need > one_less  # holds the p99, and one instance fewer would not


def test_the_forward_in_progress_is_waited_out_uniformly():
    """A prompt joins the next forward: with no queue, TTFT's mean adds half a forward and its p-th percentile p of
    one (uniform over the forward in progress, ttft_queue_factor 0.5), beside its own forwards and the transfer."""
    from dsxl.data.catalog import load_refined
    from dsxl.physics.queueing import ttft_ms
    factor = load_refined()["ttft_queue_factor"].values["hopper"]
    t = ttft_ms(1000, 1e-9, 300.0, 20.0, 1.0, 200.0, factor)  # a vanishing load: nobody waits in the queue
    assert t["mean"] == pytest.approx(300 + 20 + 0.5 * 200)
    for p in (50, 90, 99):
        assert t[f"p{p}"] == pytest.approx(300 + 20 + p / 100 * 200)


def test_targets_are_echoed_as_given():
    """A p99 target alone leaves the mean at its default, echoed as the default, not lowered to the p99."""
    r = plan(gpus="H200", requests_per_s=40, input_len=4000, output_len=1500, tpot_ms=50, ttft_p99_ms=2000)
    assert r["inputs"]["ttft_ms"] is None and r["inputs"]["ttft_p99_ms"] == 2000
    assert r["inputs"]["ttft_limits_ms"] == {"mean": 3000, "mean_is_default": True, "p90": None, "p99": 2000}
    from dsxl.render.text import plan_text
    head = " ".join(plan_text(r).split("\n\n")[0].split())
    assert "TTFT mean <= 3,000 ms (default), p99 <= 2,000 ms" in head


@pytest.mark.parametrize("args, words", [
    (["--arrival-cv", "0"], "arrival_cv"),
    (["--ttft-ms", "3000", "--ttft-p99-ms", "1000"], "ttft_p99_ms must be at least ttft_ms"),
    (["--autoscale"], "autoscale"),
])
def test_queueing_bad_input_is_one_line(args, words):
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "plan", "--gpu", "H200", *args], capture_output=True,
                       text=True)
    assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_an_unstable_load_is_infeasible_with_its_reason():
    from dsxl.physics.queueing import ttft_ms
    assert ttft_ms(4, 50, 100, 0.0, 1.0, 0.0, 0.5)["p99"] == float("inf")  # 5 Erlangs on 4 slots
    r = plan(gpus="H200", output_tokens_per_s=100_000, ttft_p99_ms=200)["gpus"]["H200"]
    assert r["feasible"] is False and "TTFT" in r["reason"] and r["ttft_ms"] is None


def test_serving_both_under_a_small_budget_falls_back_to_aggregated_and_says_so():
    r = plan(gpus="H200", budget_gpus=8, serving="both")["gpus"]["H200"]
    assert r["feasible"] and r["serving"] == "aggregated" and r["capacity_output_tokens_per_s"] > 0
    assert r["serving_choice"].startswith("aggregated: disaggregated does not fit")
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "plan", "--gpu", "H200", "--budget-gpus", "8", "--serving",
                        "both"], capture_output=True, text=True)
    summary = p.stdout.split("\n\n")[2].splitlines()
    assert summary[0].startswith("Answer: 8 GPUs serve at most") and summary[1].startswith("Serving: aggregated")
    assert "Cheapest" not in p.stdout  # one GPU asked about: nothing to rank


def test_text_output_fits_120_columns():
    for args in (["--gpu", "all"], ["--gpu", "all", "--serving", "both"], ["--gpu", "H200", "--recipe", "sglang"]):
        out = subprocess.run([sys.executable, "-m", "dsxl.cli", "plan", *args], capture_output=True, text=True).stdout
        wide = [line for line in out.splitlines() if len(line.encode()) > 120 and not line.startswith(
            ("python -m", "vllm serve", "trtllm"))]  # launch commands are pasted whole
        assert not wide, wide
    out = subprocess.run([sys.executable, "-m", "dsxl.cli", "validate"], capture_output=True, text=True).stdout
    assert max(len(line.encode()) for line in out.splitlines()) <= 120
    for args in (["decode", "--gpu", "MI300X", "--ep", "8", "--batch", "64", "--kv-len", "2000"],  # long band note
                 ["decode", "--gpu", "H200", "--ep", "1", "--moe-tp", "8", "--attn-tp", "8", "--batch", "64",
                  "--kv-len", "2000", "--tbo"]):  # and a TBO note
        out = subprocess.run([sys.executable, "-m", "dsxl.cli", "predict", *args], capture_output=True, text=True).stdout
        assert "accuracy" in out and max(len(line.encode()) for line in out.splitlines()) <= 120, out


def test_a_pool_of_two_instance_sizes_gets_a_reproduce_line_for_each():
    import shlex
    from dsxl.render.text import plan_text
    r = plan(gpus="MI300X", output_tokens_per_s=20000)
    mix = r["gpus"]["MI300X"]["decode"]["mix"]
    assert len(mix) == 2  # this question tops a bulk of one EP size up with another
    lines = [x for x in plan_text(r).replace("\\\n    ", "").splitlines() if x.startswith("Reproduce: dsxl predict decode")]
    assert len(lines) == len(mix)
    for line, m in zip(lines, mix):
        words = shlex.split(line[len("Reproduce: dsxl "):])
        got = subprocess.run([sys.executable, "-m", "dsxl.cli", *words, "--format", "json"], capture_output=True,
                             text=True)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["tokens_per_s_per_gpu"] == pytest.approx(m["tokens_per_s_per_gpu"], rel=1e-9)


def test_a_budgets_capacity_is_served_within_the_ttft_targets():
    """A budget's answer is "at the SLA": its prefill pool is the one that meets the TTFT targets under random
    arrivals, not one run at 100 % utilization (whose queue grows without end: the text once printed 'mean inf ms',
    then a p99 of 5e17 ms). Without queueing the same budget serves more, at a TTFT no queue would give."""
    kw = dict(gpus="B200", ep_sizes=[8], budget_gpus=16, serving="disaggregated", mixed=True)
    queued, bare = plan(**kw), plan(**kw, queueing=False)
    q, b = queued["gpus"]["B200"], bare["gpus"]["B200"]
    assert q["total_gpus"] <= 16 and q["ttft_ms"]["mean"] <= 3000 * (1 + 1e-9)
    assert q["prefill"]["utilization"] < 1 and q["ttft_ms"]["p99"] < 1e6  # a stable queue, a finite tail
    assert b["capacity_output_tokens_per_s"] > q["capacity_output_tokens_per_s"]
    out = subprocess.run([sys.executable, "-m", "dsxl.cli", "plan", "--gpu", "B200", "--ep-sizes", "8", "--budget-gpus",
                          "16", "--serving", "both", "--mixed"], capture_output=True, text=True)
    assert out.returncode == 0 and not re.search(r"\binf\b|\bnan\b|unbounded", out.stdout)


@pytest.mark.parametrize("gpu", list(load_catalog().gpus))
def test_a_budgets_capacity_round_trips_on_every_gpu(gpu):
    """The capacity X of a 64-GPU budget, planned as --output-tokens-per-s X, needs at most 64 GPUs; a little more
    load needs more (the capacity is the edge, not a guess below it)."""
    b = plan(gpus=gpu, budget_gpus=64)["gpus"][gpu]
    if not b["feasible"]:
        assert b["reason"], gpu
        return
    x = b["capacity_output_tokens_per_s"]
    back = plan(gpus=gpu, output_tokens_per_s=x)["gpus"][gpu]
    assert back["feasible"] and back["peak_total_gpus"] <= 64 and b["peak_total_gpus"] <= 64, gpu
    beyond = plan(gpus=gpu, output_tokens_per_s=x * 1.02)["gpus"][gpu]
    assert not beyond["feasible"] or beyond["peak_total_gpus"] > 64, gpu


def test_one_fleet_per_answer_in_the_table_the_answer_and_the_cost():
    """A load that peaks at 1.3 x: the table, the Answer line and the cost all count the bought (peak) fleet; the
    average fleet appears once, labelled as the fleet not bought."""
    r = plan(gpus="H800", output_tokens_per_s=1e6, input_len=3000, output_len=1000, cache_hit=0.5,
             peak_to_average=1.3, price_gpu_hour=2.5)
    x = r["gpus"]["H800"]
    text = plan_text(r)
    row = next(line.split() for line in text.splitlines() if line.startswith("H800 "))
    gpus, nodes, per_hour = (int(row[k].replace(",", "")) for k in (1, 2, 4))
    assert float(row[3]) == round(x["power_mw"], 2)
    assert gpus == x["decode"]["gpus"] + x["prefill"]["gpus"] and nodes == x["decode"]["nodes"] + x["prefill"]["nodes"]
    assert per_hour == round(gpus * 2.5)
    answer = next(line for line in text.splitlines() if line.startswith("Answer:"))
    assert answer.startswith(f"Answer: {gpus:,} GPUs = {nodes:,} nodes, ${gpus * 2.5 * 24:,.0f} per day")
    assert f"at the average load it would be {x['average_total_gpus']:,} GPUs" in text
    assert x["average_total_gpus"] < gpus


def test_smaller_answers_agree_with_their_numbers():
    """A budget's answer gives requests/s beside output tokens/s; arrivals read as words; an article what-if names
    the value the user gave."""
    r = plan(gpus="H200", budget_gpus=64, arrival_cv=2)
    x = r["gpus"]["H200"]
    text = plan_text(r)
    assert f"({x['capacity_output_tokens_per_s'] / r['inputs']['output_len']:,.1f} requests/s)" in text
    assert "arrivals with CV 2, queueing included" in text and "CV 2 arrivals" not in text
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "report", "--set", "H800.fp16_flops=1e-06"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "got 1e-06" in p.stderr and "8e-07" not in p.stderr


def test_a_table_of_both_modes_says_what_its_output_price_column_means():
    from dsxl.render.text import plan_text
    r = plan(gpus="B200,H200", serving="both", input_len=8000, output_len=1000, output_tokens_per_s=2e5,
             tpot_ms=30, ttft_p99_ms=2000)
    rows = {g: x for g, x in r["gpus"].items() if x["feasible"]}
    assert {x["prefill"] is None for x in rows.values()} == {True, False}  # one aggregated row, one not
    for x in rows.values():
        if x["prefill"] is None:  # the whole fleet against output, as all-in
            assert x["cost_per_m_output"] == pytest.approx(x["cost_per_m_output_all_in"])
        else:
            assert x["cost_per_m_output"] < x["cost_per_m_output_all_in"]
    text = plan_text(r)
    assert "$/M out: a disaggregated row's decode pool" in text
    assert "$/M out: a" not in plan_text(plan(gpus="B200", output_tokens_per_s=2e5))
