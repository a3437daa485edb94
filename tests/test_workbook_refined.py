"""The workbook's refined sheets (Predict, Validation, Constants) recalculated by LibreOffice against Python."""

import math

import pytest
from openpyxl import load_workbook

from dsxl import load_catalog
from dsxl.chains.breakdown import LABELS
from dsxl.refined.predict import predict
from dsxl.refined.validation import load_measurements, predicted_metric, validate
from dsxl.workbook import build_workbook
from dsxl.workbook.libreoffice import convert, soffice
from workbook_helpers import (apply_edits, error_cells, name_cell, name_range, recalculated_edits, require_engine,
                              set_in_table)

require_engine(soffice(), "LibreOffice")
pytestmark = pytest.mark.slow  # recalculates in a spreadsheet engine: pytest -m "not slow" leaves it out

PLANNER_EDIT = {"predict_gpu": "B200", "predict_ep": 64, "predict_batch": 48, "predict_kv_len": 8000,
                "predict_tbo": False, "predict_mtp_draft": 1, "predict_mtp_accept": 1.7, "predict_moe_dtype": "fp4",
                "predict_kv_dtype": "bf16", "predict_tokens_per_gpu": 8192, "predict_prompt_len": 2000,
                "predict_cache_hit": 0.4, "predict_attn_tp": 2}
# deployments engines run: one sequence on 8 B200 (attention TP8, MoE EP2 x TP4, TensorRT-LLM); wide EP72 on vLLM
DEPLOY_EDIT = {"predict_gpu": "B200", "predict_ep": 2, "predict_moe_tp": 4, "predict_attn_tp": 8, "predict_batch": 1,
               "predict_kv_len": 2000, "predict_engine": "trtllm", "predict_tbo": False, "predict_moe_dtype": "fp4",
               "predict_attn_dtype": "bf16", "predict_tokens_per_gpu": 4096, "predict_prompt_len": 1024,
               "predict_concurrency": 4, "predict_input_len": 1024, "predict_output_len": 2000}
WIDE_EDIT = {"predict_gpu": "H100_SXM", "predict_ep": 72, "predict_batch": 256, "predict_kv_len": 2000,
             "predict_engine": "vllm", "predict_mtp_draft": 1, "predict_mtp_accept": 1.8, "predict_concurrency": 4608,
             "predict_input_len": 2000, "predict_output_len": 1000, "predict_max_num_tokens": 8192}
# single-node TP8: no expert all-to-all, so two-batch overlap asked for runs off, with a note
TP8_EDIT = {"predict_gpu": "H200", "predict_ep": 1, "predict_moe_tp": 8, "predict_attn_tp": 8, "predict_batch": 64,
            "predict_tbo": True, "predict_sbo": True, "predict_tokens_per_gpu": 2048, "predict_prompt_len": 2048,
            "predict_concurrency": 64}
CATALOG = load_catalog()
CONSTANT_EDIT = {("gemm_flops_eff", "hopper"): 0.6, ("a2a_ll_latency_us", "hopper"): 40}


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    fresh = build_workbook(src / "fresh.xlsx")
    planner = apply_edits(fresh, src / "planner.xlsx", PLANNER_EDIT)
    constants = apply_edits(fresh, src / "constants.xlsx", cells={("refined_constants", name, gen): value
                                                                  for (name, gen), value in CONSTANT_EDIT.items()})
    deploy = apply_edits(fresh, src / "deploy.xlsx", DEPLOY_EDIT)
    wide = apply_edits(fresh, src / "wide.xlsx", WIDE_EDIT)
    tp8 = apply_edits(fresh, src / "tp8.xlsx", TP8_EDIT)
    outs = convert([fresh, planner, constants, deploy, wide, tp8], tmp_path_factory.mktemp("lo"))
    return {p.stem: load_workbook(p, data_only=True) for p in outs}


def _table(wb, name):
    ws, r1, c1, r2, c2 = name_range(wb, name)
    return {ws.cell(r, c1).value: [ws.cell(r, c).value for c in range(c1 + 1, c2 + 1)] for r in range(r1 + 1, r2 + 1)}


def _close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("book, constants", [("fresh", None), ("constants", {k: v for (k, _), v in CONSTANT_EDIT.items()})])
def test_validation_sheet_equals_dsxl_validate(books, book, constants):
    table = _table(books[book], "tbl_validation")
    rows = validate()
    assert list(table) == [r["id"] for r in rows]
    measurements = {m.id: m for m in load_measurements()}
    for r in rows:
        measured, refined, article, error, _, loo = table[r["id"]]
        assert measured == r["measured"]
        assert loo == "sanity row" if r["loo_error"] is None else _close(loo, r["loo_error"])
        # the workbook keeps each measurement's conditions as built (S1's batch was searched at the shipped constants)
        hopper = CATALOG.gpu(r["gpu"]).generation == "hopper"  # the edit changed the Hopper column only
        expected = predicted_metric(measurements[r["id"]], predict(r["phase"], r["gpu"], r["model"], constants=constants if hopper
                                                                   else None, **r["conditions"]))
        assert _close(refined, expected), r["id"]
        assert article == "not modelled" if r["article"] is None else _close(article, r["article"]), r["id"]
        assert _close(error, expected / r["measured"] - 1)
    if constants:  # the edit really moved the refined column
        assert table["C1"][1] != _table(books["fresh"], "tbl_validation")["C1"][1]


def _python(edit):
    opts = {k.removeprefix("predict_"): v for k, v in edit.items() if k != "predict_gpu"}
    gpu = edit.get("predict_gpu", "H800")
    common = {k: opts[k] for k in ("ep", "attn_tp", "moe_tp", "engine", "tbo", "attn_dtype", "kv_dtype", "moe_dtype",
                                   "imbalance", "redundant_experts") if k in opts}
    d = predict("decode", gpu, **common, **{k: opts[k] for k in ("batch", "kv_len", "mtp_draft", "mtp_accept", "sbo")
                                            if k in opts})
    p = predict("prefill", gpu, **common, **{k: opts[k] for k in ("tokens_per_gpu", "prompt_len", "cache_hit")
                                             if k in opts})
    a = predict("aggregated", gpu, **common, **{k: opts[k] for k in ("concurrency", "input_len", "output_len",
                                                                     "cache_hit", "mtp_draft", "mtp_accept",
                                                                     "max_num_tokens", "sbo") if k in opts})
    return d, p, a


@pytest.mark.parametrize("book", ["fresh", "planner", "deploy", "wide", "tp8"])
def test_predict_sheet_equals_dsxl_predict(books, book):
    from dsxl.workbook.refined_sheets import PREDICT_AGGREGATED
    edit = {"predict_ep": 128, "predict_batch": 128, "predict_kv_len": 4096, "predict_tokens_per_gpu": 16384,
            "predict_prompt_len": 4096, "predict_mtp_draft": 0, "predict_mtp_accept": 1,
            "predict_attn_dtype": "fp8", "predict_kv_dtype": "fp8", "predict_moe_dtype": "fp8", "predict_imbalance": 1,
            "predict_redundant_experts": "auto", "predict_cache_hit": 0, "predict_attn_tp": 1, "predict_moe_tp": 1,
            "predict_engine": "sglang", "predict_tbo": True, **{f"predict_{k}": v for k, v in PREDICT_AGGREGATED.items()}}
    edit.update({"planner": PLANNER_EDIT, "deploy": DEPLOY_EDIT, "wide": WIDE_EDIT, "tp8": TP8_EDIT}.get(book, {}))
    d, p, a = _python(edit)
    res = _table(books[book], "predict_results")
    assert _close(res["Decode TPOT"][0], d["tpot_ms"])
    assert _close(res["Decode tokens/s per GPU"][0], d["tokens_per_s_per_gpu"])
    assert res["Max batch per attention rank"][0] == d["max_batch"]
    assert res["Decode batch fits in memory"][0] == d["fits"]
    on_off = lambda r: "on" if r["inputs"]["tbo"] else "off"  # noqa: E731 (the CLI echoes overlap as it runs)
    assert res["Two-batch overlap acts (decode / prefill)"][0] == f"{on_off(d)} / {on_off(p)}"
    assert _close(res["Prefill input tokens/s per GPU"][0], p["tokens_per_s_per_gpu"])
    assert _close(res["Prefill TTFT"][0], p["ttft_ms"])
    assert _close(res["Decode expected error (band)"][0], d["accuracy"]["band"])
    assert _close(res["Prefill expected error (band)"][0], p["accuracy"]["band"])
    # aggregated serving at the concurrency (Little's law rounds, as dsxl predict aggregated --concurrency)
    for label, key in (("Aggregated output tokens/s per GPU", "output_tokens_per_s_per_gpu"),
                       ("Aggregated TPOT", "tpot_ms"), ("Aggregated TTFT", "ttft_ms"),
                       ("Aggregated mean decoding batch", "decoding_batch")):
        assert _close(res[label][0], a[key]), label
    assert _close(res["Aggregated expected error (band)"][0], a["accuracy"]["band"])
    notes = [f"{phase}: {n}" for phase, r in (("decode", d), ("prefill", p)) for n in r["notes"]]
    assert res["Overlap notes"][0] == ("; ".join(notes) + "; " if notes else "none")
    assert bool(notes) == (book == "tp8")  # the TP8 shape has no all-to-all: TBO is echoed off, with why
    parts = _table(books[book], "predict_breakdown")  # every line of dsxl predict's breakdown, in both phases
    kernel = f"{LABELS['attention_kernel']} ({d['breakdown']['attention_kernel']})"
    for col, r in ((0, d), (1, p)):
        b = r["breakdown"]
        want = {**b["per_layer_ms"], "moe_layer": b["layer_ms"]["moe_layer"], **b["dense_layer_parts_ms"],
                "dense_layer": b["layer_ms"]["dense_layer"], **b["step_ms"]}
        for key, value in want.items():
            label = kernel if key == "attention_kernel" else LABELS[key]
            assert _close(parts[label][col], value), (book, key)


@pytest.mark.parametrize("book", ["fresh", "planner", "constants", "wide", "tp8"])
def test_no_error_cells(books, book):
    assert error_cells(books[book]) == []


PLAN_EDIT = {"plan_gpu": "B200", "plan_tpot_ms": 30, "plan_output_tokens_per_s": 200_000, "plan_cache_hit": 0.5,
             "plan_input_len": 3000, "plan_output_len": 800, "plan_price_gpu_hour": 4, "plan_peak_to_average": 1.4,
             "plan_arrival_cv": 2, "plan_ttft_p99_ms": 4000, "plan_pue": 1.25, "plan_electricity_per_kwh": 0.12,
             "plan_capital_per_gpu": 40000}


@pytest.fixture(scope="module")
def plan_books(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    fresh = build_workbook(src / "fresh.xlsx")
    budget = apply_edits(fresh, src / "budget.xlsx", {"plan_mode": "budget", "plan_budget_gpus": 64})
    outs = convert([fresh, apply_edits(fresh, src / "edited.xlsx", PLAN_EDIT), budget], tmp_path_factory.mktemp("lo"))
    return {p.stem: load_workbook(p, data_only=True) for p in outs}


@pytest.mark.parametrize("book", ["fresh", "edited"])
def test_planner_sheet_equals_dsxl_plan_on_the_same_grid(plan_books, book):
    from dataclasses import asdict, replace

    from dsxl.planner.plan import plan
    from dsxl.workbook.planner_sheet import planner_inputs_defaults

    inp = planner_inputs_defaults()
    if book == "edited":
        inp = replace(inp, gpus=("B200",), **{k.removeprefix("plan_"): v for k, v in PLAN_EDIT.items()
                                               if k != "plan_gpu"})
    # the sheet sizes as dsxl plan does on its grid: p99 decode headroom, the prefill queue, the peak fleet costed
    r = plan(**asdict(inp))["gpus"][inp.gpus[0]]
    res = _table(plan_books[book], "plan_results")
    assert res["Feasible"][0] is True and r["feasible"]
    d, p = r["decode"], r["prefill"]
    assert res["Decode EP"][0] == d["ep"] and res["Decode batch"][0] == d["batch"]
    assert res["Decode MTP draft"][0] == d["mtp_draft"]
    assert _close(res["Decode tokens/s per GPU"][0], d["tokens_per_s_per_gpu"])
    assert res["Prefill EP"][0] == p["ep"] and res["Prefill tokens per forward"][0] == p["tokens_per_forward"]
    assert res["Total nodes"][0] == r["total_nodes"] and res["Total GPUs"][0] == r["total_gpus"]
    assert res["Total nodes at peak load"][0] == r["peak_total_nodes"]
    assert _close(res["Cost per day"][0], r["cost_per_day"])
    assert _close(res["Cost per million output tokens (decode GPUs)"][0], r["cost_per_m_output"])
    assert _close(res["Cost-profit margin"][0], r["margin"])
    _assert_queue_equals_python(res, inp, r)
    _assert_power_equals_python(res, r)
    band = res["Expected error of this plan (the wider of its pools' bands)"][0]
    assert band == pytest.approx(r["accuracy"]["band"], abs=1e-4) and band > 0.05
    start = _table(plan_books[book], "start_headline")  # Start repeats the plan's band, p99 and costing
    assert start["Plan's expected error (band)"][0] == band
    assert start["Time to first token at p99, queueing included"][0] == res["TTFT p99, queueing included"][0]
    assert start["Plan costed at"][0] == res["Costed at"][0]
    assert start["Facility power provisioned for the plan"][0] == \
        res["Facility power provisioned (GPUs at full board power, x PUE)"][0]
    day6 = _table(plan_books[book], "plan_day6")
    assert day6["Cost per day"][0] == 87072 and _close(day6["Revenue per day (from the rounded token counts)"][0],
                                                        562100)


def _assert_power_equals_python(res, r):
    """The sheet's power and owned cost are dsxl plan's for the same fleet (same formulas, same catalog rows)."""
    own = r["cost_breakdown"]["own"]
    for label, want in (("Decode board power per GPU at load", r["decode"]["watts_per_gpu"]),
                        ("Prefill board power per GPU at load", r["prefill"]["watts_per_gpu"]),
                        ("Facility power provisioned (GPUs at full board power, x PUE)", r["power_mw"]),
                        ("Facility power drawn at load", r["power"]["facility_mw"]),
                        ("Output tokens/s per provisioned MW", r["tokens_per_s_per_mw"]),
                        ("Owned: capital repaid per hour", own["capital_per_hour"]),
                        ("Owned: power per hour", own["power_per_hour"]),
                        ("Owned: hosting per hour", own["hosting_per_hour"]),
                        ("Owned: cost per hour", own["cost_per_hour"]),
                        ("Owned: cost per million output tokens, all-in", own["cost_per_m_output_all_in"]),
                        ("Rented: cost per million output tokens, all-in",
                         r["cost_breakdown"]["rent"]["cost_per_m_output_all_in"])):
        assert _close(res[label][0], want), (label, res[label][0], want)


def _assert_queue_equals_python(res, inp, r):
    """The sheet's fleet is dsxl plan's (issue 33, item 5): decode and prefill instances, GPUs, cost and the TTFT
    percentiles of the costed fleet's prefill queue, to 1e-9; the costing mode and whether it matches, in words."""
    costed = r["costed_at"]
    assert res["Decode instances (EP groups)"][0] == r["decode"]["instances"]
    assert res["Prefill instances (EP groups)"][0] == r["prefill"]["instances"]
    assert res["Total GPUs"][0] == r["total_gpus"] and _close(res["Cost per day"][0], r["cost_per_day"])
    for key, label in (("mean", "TTFT mean, queueing included (at this sizing)"),
                       ("p90", "TTFT p90, queueing included"), ("p99", "TTFT p99, queueing included")):
        assert _close(res[label][0], r[f"{costed}_ttft_ms"][key]), (key, res[label][0], r[f"{costed}_ttft_ms"])
    assert _close(res["Prefill utilization (at the costed fleet's load)"][0], r["prefill"]["utilization"])
    met = res["p99 TTFT target met at this sizing"][0]
    assert met == ("no target" if inp.ttft_p99_ms is None else "yes")  # dsxl plan grows the pool until it is
    assert res["Costed at"][0] == ("the fleet (no peak)" if inp.peak_to_average == 1 else
                                   "average fleet" if inp.autoscale else "peak fleet")
    assert res["Sized as dsxl plan"][0] in ("yes", "yes; peak line estimated", "maybe: queue added prefill")


PLAN_QUEUE_EDITS = [{}, {"plan_arrival_cv": 2, "plan_ttft_p99_ms": 4000},
                    {"plan_gpu": "B200", "plan_input_len": 3000, "plan_cache_hit": 0.5},
                    {"plan_output_tokens_per_s": 20000, "plan_peak_to_average": 2},
                    {"plan_ttft_ms": 1500, "plan_ttft_p99_ms": 3000, "plan_arrival_cv": 3},  # the queue grows prefill
                    {"plan_autoscale": True, "plan_peak_to_average": 1.5},  # the average fleet costed
                    {"plan_gpu": "GB200", "plan_pue": 1.3, "plan_hosting_per_kw_month": 200,
                     "plan_cost_of_capital": 0}]  # an NVL72 rack's power, owned at no cost of capital


def _planner_queue_walk(engine, tmp_path):
    """The default inputs and three edits: the TTFT percentiles equal dsxl plan's queue for the pool the sheet
    sized, the costing mode says what the sheet prices, the band is there."""
    from dataclasses import replace

    from dsxl.workbook.planner_sheet import planner_inputs_defaults

    books = recalculated_edits(engine, build_workbook(tmp_path / "b.xlsx"), tmp_path,
                               [(edit, {}) for edit in PLAN_QUEUE_EDITS], ("plan_results",))
    from dataclasses import asdict

    from dsxl.planner.plan import plan
    for edit, wb in zip(PLAN_QUEUE_EDITS, books):
        res = _table(wb, "plan_results")
        inp = replace(planner_inputs_defaults(), gpus=(edit.get("plan_gpu", "H800"),),
                      **{k.removeprefix("plan_"): v for k, v in edit.items() if k != "plan_gpu"})
        r = plan(**asdict(inp))["gpus"][inp.gpus[0]]
        _assert_queue_equals_python(res, inp, r)
        _assert_power_equals_python(res, r)
        assert 0.05 < res["Expected error of this plan (the wider of its pools' bands)"][0] < 1


def _chart_points(wb):
    """The Planner chart's data as LibreOffice computed it: the candidates' (x, y) rows and the chosen point."""
    ws, r1, c1, r2, c2 = name_range(wb, "plan_chart_candidates")
    points = [(ws.cell(r, c1).value, ws.cell(r, c1 + 1).value) for r in range(r1, r2 + 1)]
    ws, r, c, _, _ = name_range(wb, "plan_chart_chosen")
    return points, (ws.cell(r, c).value, ws.cell(r, c + 1).value)


@pytest.mark.parametrize("book", ["fresh", "edited"])
def test_planner_chart_leaves_out_what_does_not_fit_and_marks_the_choice(plan_books, book):
    """A candidate that does not fit is #N/A (a gap in the chart), never a 0 on the axis; the chosen point is the
    plan's configuration."""
    points, chosen = _chart_points(plan_books[book])
    fits = [y for _, y in points if y != "#N/A"]
    assert 0 < len(fits) and all(isinstance(y, float) and y > 0 for y in fits)
    if book == "fresh":  # H800 at 20 tokens/s per user: some candidates do not fit in memory
        assert len(fits) < len(points)
    res = _table(plan_books[book], "plan_results")
    assert chosen == (pytest.approx(res["Decode tokens/s per user"][0]), pytest.approx(res["Decode tokens/s per GPU"][0]))
    assert any(x == pytest.approx(chosen[0]) and y == pytest.approx(chosen[1]) for x, y in points)


def test_planner_queue_and_costing_in_libreoffice(tmp_path):
    _planner_queue_walk(convert, tmp_path)


def test_planner_sheet_explains_an_impossible_sla(tmp_path):
    edited = apply_edits(build_workbook(tmp_path / "b.xlsx"), tmp_path / "e.xlsx", {"plan_gpu": "H20", "plan_tpot_ms": 5})
    out = load_workbook(convert([edited], tmp_path / "lo")[0], data_only=True)
    res = _table(out, "plan_results")
    assert res["Feasible"][0] is False and "TPOT SLA binds" in res["Why not (when infeasible)"][0]
    assert error_cells(out) == []
    points, chosen = _chart_points(out)  # no plan: the candidates left of the SLA line, no chosen point
    assert chosen == ("#N/A", "#N/A") and all(y == "#N/A" or y > 0 for _, y in points)


def test_a_workbook_of_another_model(tmp_path):
    path = build_workbook(tmp_path / "kimi.xlsx", model="kimi_k2")
    wb = load_workbook(convert([path], tmp_path / "lo")[0], data_only=True)
    assert name_cell(wb, "model_preset").value == "kimi_k2" and name_cell(wb, "n_routed_experts").value == 384
    res = _table(wb, "predict_results")
    d = predict("decode", "H800", "kimi_k2", ep=128, batch=128, kv_len=4096)
    assert _close(res["Decode TPOT"][0], d["tpot_ms"]) and res["Max batch per attention rank"][0] == d["max_batch"]
    assert "tbl_validation" not in wb.defined_names  # the measurements are DeepSeek-V3 deployments
    assert error_cells(wb) == []


V4_EDIT = {"predict_gpu": "H200", "predict_ep": 8, "predict_attn_tp": 8, "predict_batch": 16, "predict_kv_len": 131072,
           "predict_tokens_per_gpu": 16384, "predict_prompt_len": 131072}


@pytest.fixture(scope="module")
def v4_books(tmp_path_factory):
    """A DeepSeek-V4-Pro workbook, recalculated as built and after a 128K-context edit, in LibreOffice."""
    src = tmp_path_factory.mktemp("v4")
    fresh = build_workbook(src / "v4.xlsx", model="deepseek_v4_pro")
    edited = apply_edits(fresh, src / "v4_edited.xlsx", V4_EDIT)
    return {p.stem: load_workbook(p, data_only=True) for p in convert([fresh, edited], tmp_path_factory.mktemp("lo"))}


@pytest.mark.parametrize("book", ["v4", "v4_edited"])
def test_a_v4_workbook_predicts_compressed_attention(v4_books, book):
    wb = v4_books[book]
    # the article's sheets keep the article's model; Predict and Planner hold V4's
    assert name_cell(wb, "model_preset").value == "deepseek_v3" and name_cell(wb, "refined_n_csa_layers").value == 30
    edit = V4_EDIT if book == "v4_edited" else {"predict_ep": 128, "predict_batch": 128, "predict_kv_len": 4096,
                                                  "predict_tokens_per_gpu": 16384, "predict_prompt_len": 4096}
    opts = {k.removeprefix("predict_"): v for k, v in edit.items() if k != "predict_gpu"}
    gpu = edit.get("predict_gpu", "H800")
    d = predict("decode", gpu, "deepseek_v4_pro", **{k: v for k, v in opts.items()
                                                     if k not in ("tokens_per_gpu", "prompt_len")})
    p = predict("prefill", gpu, "deepseek_v4_pro", **{k: v for k, v in opts.items()
                                                      if k not in ("batch", "kv_len")})
    res = _table(wb, "predict_results")
    assert _close(res["Decode TPOT"][0], d["tpot_ms"]) and res["Max batch per attention rank"][0] == d["max_batch"]
    assert _close(res["Prefill input tokens/s per GPU"][0], p["tokens_per_s_per_gpu"])
    assert _close(res["Decode expected error (band)"][0], d["accuracy"]["band"])
    assert error_cells(wb) == []


def test_a_spare_catalog_row_becomes_your_gpu(tmp_path):
    from dsxl.data.catalog import GPU
    wb = load_workbook(build_workbook(tmp_path / "b.xlsx"))
    figures = {"sm": 140, "comm_sm": 20, "fp16_flops": 1500, "fp8_flops": 3000, "fp4_flops": 0, "mem": 120,
               "mem_bw": 6000, "nvlink_bw": 600, "pcie_bw": 50, "scaleup": 8, "mla_tp_alt": 4, "price_gpu_hour": 3}
    set_in_table(wb, "hardware", "Custom_1", "name", "MyGPU")
    for field, value in figures.items():
        set_in_table(wb, "hardware", "MyGPU", field, value)
    name_cell(wb, "predict_gpu").value = "MyGPU"
    wb.save(tmp_path / "e.xlsx")
    out = load_workbook(convert([tmp_path / "e.xlsx"], tmp_path / "lo")[0], data_only=True)
    mine = GPU(name="MyGPU", generation="hopper", **figures)
    d = predict("decode", mine, ep=128, batch=128, kv_len=4096)
    res = _table(out, "predict_results")
    assert _close(res["Decode TPOT"][0], d["tpot_ms"]) and res["Max batch per attention rank"][0] == d["max_batch"]
    assert error_cells(out) == []


def test_planner_sheet_budget_mode(plan_books):
    """Mode budget: the most the 64 GPUs serve with the fastest decode and prefill candidates in whole instances,
    sized for throughput: never more than dsxl.plan's exact search for throughput (which also mixes instance sizes)
    finds, and the sheet says that dsxl plan's budget keeps the queue and p99 headroom."""
    from dataclasses import asdict, replace

    from dsxl.physics import sizing
    from dsxl.planner.plan import plan
    from dsxl.workbook.planner_sheet import planner_inputs_defaults

    res = _table(plan_books["budget"], "plan_results")
    inp = planner_inputs_defaults()
    throughput = replace(inp, output_tokens_per_s=None, queueing=False)
    exact = plan(**{**asdict(throughput), "budget_gpus": 64})["gpus"]["H800"]
    assert res["Sized as dsxl plan"][0] == "no: budget for throughput"
    served = res["Output tokens/s served (the load, or the budget's capacity)"][0]
    assert 0.5 * exact["capacity_output_tokens_per_s"] <= served <= exact["capacity_output_tokens_per_s"] * (1 + 1e-9)
    assert res["Total GPUs"][0] <= 64 and res["Budget covers the load (mode budget)"][0] == False  # noqa: E712 (1M tok/s)
    d_cap = res["Decode tokens/s per GPU"][0] * res["Decode EP"][0]
    p_cap = res["Prefill input tokens/s per GPU"][0] * res["Prefill EP"][0]
    assert _close(served, sizing.budget_capacity(64, d_cap, res["Decode EP"][0], p_cap, res["Prefill EP"][0],
                                                 inp.input_len / inp.output_len))
    assert error_cells(plan_books["budget"]) == []


# Every Predict and Planner input set to an invalid value, one at a time: a message, no error value, no number.
BAD_EDITS = {
    "predict_ep": [None, "x", 0, -8, 1e9, 2.5], "predict_batch": [None, 0, 2.5], "predict_kv_len": ["abc", 0],
    "predict_attn_tp": [3, 0], "predict_moe_tp": [3], "predict_engine": ["tgi", None], "predict_tbo": ["maybe"],
    "predict_mtp_accept": [5], "predict_redundant_experts": ["x", 3], "predict_cache_hit": [2],
    "predict_gpu": ["H9000"], "predict_imbalance": [0.5],
    "plan_price_gpu_hour": [-2, "x"], "plan_mtp_accept": [17], "plan_output_tokens_per_s": [None, 0],
    "plan_gpu": ["H9000"], "plan_mode": ["both"], "plan_tpot_ms": [0], "plan_cache_hit": [1.5],
    "plan_arrival_cv": [0, "x"], "plan_ttft_p99_ms": [1000, -5],
    "plan_pue": [0.9, "x"], "plan_amortization_years": [0], "plan_electricity_per_kwh": [-0.1],
    "plan_capital_per_gpu": [-1], "plan_hosting_per_kw_month": ["x"], "plan_cost_of_capital": [2],
    "plan_autoscale": ["maybe", 2, True],  # TRUE with the default peak-to-average 1: nothing to autoscale
}
RESULT_NAMES = ("predict_results", "predict_breakdown", "plan_results", "start_headline")


def _bad_books(tmp_path, convert_fn):
    fresh = build_workbook(tmp_path / "fresh.xlsx")
    cases = [(name, value) for name, values in BAD_EDITS.items() for value in values]
    books = recalculated_edits(convert_fn, fresh, tmp_path, [({name: value}, {}) for name, value in cases],
                               RESULT_NAMES + ("predict_problems", "plan_problems"))
    return [(name, value, wb) for (name, value), wb in zip(cases, books)]


def _assert_refuses(name, value, wb):
    sheet = "Predict" if name.startswith("predict_") else "Planner"
    problems = name_cell(wb, "predict_problems" if sheet == "Predict" else "plan_problems").value
    assert isinstance(problems, str) and problems != "none", (name, value, problems)
    for rng in RESULT_NAMES:
        ws, r1, c1, r2, c2 = name_range(wb, rng)
        for r in range(r1 + 1, r2 + 1):
            for c in range(c1 + 1, c2 + 1):
                v = ws.cell(r, c).value
                assert not (isinstance(v, str) and v.startswith("#")), (name, value, rng, ws.cell(r, c).coordinate, v)
                if rng != "start_headline" and c == c1 + 1 and (sheet == "Predict") == rng.startswith("predict"):
                    label = ws.cell(r, c1).value
                    assert not isinstance(v, (int, float)) or isinstance(v, bool) or label == "Feasible", \
                        (name, value, label, v)  # no number from invalid inputs


def test_invalid_inputs_show_a_message_and_no_number_in_libreoffice(tmp_path):
    for name, value, wb in _bad_books(tmp_path, convert):
        _assert_refuses(name, value, wb)


@pytest.mark.parametrize("engine", ["libreoffice", "gnumeric"])
def test_an_engine_that_does_not_run_on_the_gpu_is_refused_like_the_cli(tmp_path, engine):
    from dsxl.workbook.gnumeric import recalc, ssconvert
    found = soffice() if engine == "libreoffice" else ssconvert()
    require_engine(found, engine, module=False)
    fresh = build_workbook(tmp_path / "fresh.xlsx")
    edits = [({"predict_gpu": "MI300X", "predict_engine": e}, {}) for e in ("trtllm", "vllm")]
    refused, allowed = recalculated_edits(convert if engine == "libreoffice" else recalc, fresh, tmp_path, edits,
                                          RESULT_NAMES + ("predict_problems",))
    assert "engine must run on the GPU's generation" in name_cell(refused, "predict_problems").value
    _assert_refuses("predict_engine", "trtllm", refused)
    assert name_cell(allowed, "predict_problems").value == "none"
