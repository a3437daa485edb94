"""Answers a planner compares must move the right way: properties over random loads, SLAs, budgets, models and GPUs
(hypothesis). A looser target never costs more, a larger budget never serves less, a higher load never needs fewer
GPUs, more GPU types never cost more, --serving both never costs more than either mode, and p50 <= p90 <= p99.
The plans are the real ones (default search grids); few examples each keep the module near 20 s."""

from hypothesis import HealthCheck, given, settings, strategies as st

from dsxl.planner.plan import COMPARED_ON, plan

GPUS = ("H200", "B200", "H20", "MI300X", "GB200")
SETTINGS = settings(max_examples=6, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

workload = st.fixed_dictionaries({
    "gpus": st.sampled_from(GPUS),
    "model": st.sampled_from(("deepseek_v3", "deepseek_v4_flash")),
    "input_len": st.sampled_from((512, 2000, 8000, 26000)),
    "output_len": st.sampled_from((64, 500, 2000)),
    "tpot_ms": st.sampled_from((30.0, 50.0, 100.0)),
    "ttft_ms": st.sampled_from((1000.0, 3000.0, 8000.0)),
    "output_tokens_per_s": st.sampled_from((2_000.0, 40_000.0, 500_000.0)),
})

def _plan(**kw):
    return plan(**kw)


def _entry(**kw):
    r = _plan(**kw)
    return r["gpus"][r["inputs"]["gpus"][0]]


@SETTINGS
@given(w=workload, looser=st.sampled_from((1.25, 2.0)))
def test_a_looser_tpot_or_ttft_target_never_costs_more(w, looser):
    strict = _entry(**w)
    for name in ("tpot_ms", "ttft_ms"):
        loose = _entry(**{**w, name: w[name] * looser})
        if strict["feasible"]:
            assert loose["feasible"] and loose[COMPARED_ON] <= strict[COMPARED_ON] * (1 + 1e-12), (name, w)


@SETTINGS
@given(w=workload, more=st.sampled_from((1.5, 3.0)))
def test_a_higher_load_never_needs_fewer_gpus(w, more):
    low, high = _entry(**w), _entry(**{**w, "output_tokens_per_s": w["output_tokens_per_s"] * more})
    if low["feasible"] and high["feasible"]:
        assert high["peak_total_gpus"] >= low["peak_total_gpus"], w


@SETTINGS
@given(w=workload, budget=st.sampled_from((16, 64, 256)), more=st.sampled_from((8, 64)))
def test_a_larger_budget_never_serves_less_and_round_trips(w, budget, more):
    w = {k: v for k, v in w.items() if k != "output_tokens_per_s"}
    small, large = _entry(**w, budget_gpus=budget), _entry(**w, budget_gpus=budget + more)
    if small["feasible"]:
        assert large["feasible"]
        assert large["capacity_output_tokens_per_s"] >= small["capacity_output_tokens_per_s"] * (1 - 1e-9), w
        # round trip: the budget's capacity, planned as a load, needs at most the budget
        back = _entry(**w, output_tokens_per_s=small["capacity_output_tokens_per_s"])
        assert back["peak_total_gpus"] <= budget, w


@SETTINGS
@given(w=workload, other=st.sampled_from(GPUS))
def test_more_gpu_types_to_choose_from_never_cost_more(w, other):
    alone = _plan(**w)
    wider = _plan(**{**w, "gpus": f"{w['gpus']},{other}"})
    a = alone["gpus"][w["gpus"]]
    if a["feasible"]:
        best = wider["gpus"][wider["ranking"][0]]
        assert best[COMPARED_ON] <= a[COMPARED_ON] * (1 + 1e-12), w


@SETTINGS
@given(w=workload)
def test_serving_both_never_costs_more_than_either_mode_and_percentiles_order(w):
    both = _entry(**w, serving="both")
    for mode in ("disaggregated", "aggregated"):
        one = _entry(**w, serving=mode)
        if one["feasible"]:
            assert both["feasible"] and both[COMPARED_ON] <= one[COMPARED_ON] * (1 + 1e-12), (mode, w)
    t = both["ttft_ms"] if both["feasible"] else None
    if t and t["p50"] is not None:
        assert t["p50"] <= t["p90"] <= t["p99"], w
