"""The joint fit, leave-one-out bands, overlap where it acts, aggregated admission and GB300 (refined model, third
round). Expected values are derived here from the physics, not pasted from the program's output."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dsxl.data.catalog import load_catalog, read_template_text
from dsxl.refined import calibration
from dsxl.refined.accuracy import accuracy, rules
from dsxl.refined.predict import predict, quantities
from dsxl.refined.validation import load_measurements, predict_row

FITTED = json.loads(read_template_text("fitted.json"))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True)


# --- the joint fit ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_refitting_reproduces_the_shipped_fit_and_its_leave_one_group_out_errors():
    fresh = calibration.generate()
    assert {k: v["released"] for k, v in fresh["fit"].items()} == \
        {k: v["released"] for k, v in FITTED["fit"].items()}
    for name, entry in fresh["fit"].items():
        assert entry["value"] == pytest.approx(FITTED["fit"][name]["value"], rel=5e-3), name
    for rid, row in fresh["rows"].items():
        assert row["error"] == pytest.approx(FITTED["rows"][rid]["error"], abs=3e-3), rid
        assert row["loo_error"] == pytest.approx(FITTED["rows"][rid]["loo_error"], abs=1e-2), rid
    for g, entry in fresh["groups"].items():
        assert entry["logo_error"] == pytest.approx(FITTED["groups"][g]["logo_error"], abs=1e-2), g
    assert fresh["data_hash"] == FITTED["data_hash"]


def test_the_fits_cached_parts_give_what_a_fresh_prediction_gives():
    """A finite-difference step predicts again only the parts its parameter applies to and looks the rest up: after
    steps elsewhere, the residuals equal a fresh problem's, and a step in vLLM's per-sequence cost moves the vLLM
    calibration rows alone."""
    ev, params = calibration.shipped_evidence(), calibration.parameters()
    values = {p.name: FITTED["fit"][p.name]["value"] for p in params}
    moved = {**values, "request_overhead_us.vllm": values["request_overhead_us.vllm"] * 1.5}
    warm = calibration._Problem(ev, params, values, params, [])
    before = warm.data_residuals(values)
    after = warm.data_residuals(moved)
    assert np.array_equal(warm.data_residuals(values), before)
    fresh = calibration._Problem(ev, params, values, params, [])
    assert np.array_equal(fresh.data_residuals(moved), after)
    vllm = [m.conditions.get("engine") == "vllm" for m in ev.rows] + [False] * (before.size - len(ev.rows))
    assert np.array_equal(before != after, np.array(vllm)) and any(vllm)


def test_a_run_far_off_counts_less_than_its_square():
    """Soft L1 on the corpus runs: a small log error is its own residual; a run 2x off counts like one 1.41x off."""
    r = calibration.robust_residual(np.log([1.01, 2.0, 0.5]), scale=0.1)
    assert r[0] == pytest.approx(np.log(1.01), rel=2e-3)
    # 2 x 0.1^2 x (sqrt(1 + (ln 2 / 0.1)^2) - 1) = 0.12007, whose root is 0.3465 = ln 1.414
    assert r[1] == pytest.approx(0.3465, abs=1e-4) and r[2] == pytest.approx(-0.3465, abs=1e-4)


def test_fitted_parameters_are_identified_and_inside_their_bounds():
    """A parameter the evidence pins to better than 50 % is fitted (with its standard error and the groups that
    pin it); every other one keeps its prior and says why."""
    for name, p in FITTED["parameters"].items():
        fit = FITTED["fit"][name]
        assert p["lo"] <= fit["value"] <= p["hi"], name
        if fit["released"]:
            assert fit["relative_se"] <= calibration.MAX_RELATIVE_SE and fit["groups"], name
            assert fit["se"] / fit["value"] == pytest.approx(fit["relative_se"], rel=0.05, abs=1e-3), name
            assert all(share >= 0.1 for share in fit["groups"].values()), name
        else:
            assert fit["value"] == p["prior"] and "not identified" in fit["why_kept"], name


def test_calibration_rows_stay_within_ten_percent_of_the_joint_fit():
    for rid, row in FITTED["rows"].items():
        assert abs(row["error"]) <= 0.10, rid


def test_a_row_without_support_keeps_the_prior():
    """Fit to C1 alone: one row cannot pin any parameter, so every parameter keeps its prior."""
    c1 = [m for m in calibration.calibration_rows() if m.id == "C1"]
    f = calibration.fit_rows(c1)
    assert not f.released and all(f.values[p.name] == p.prior for p in calibration.parameters())


@pytest.mark.parametrize("name, factor", [("a2a_ll_latency_us", 3.0), ("gemm_bw_eff", 0.5), ("attn_bw_eff", 0.5),
                                          ("kernel_latency_us", 3.0), ("a2a_nvlink_eff", 0.25)])
def test_kernel_constants_are_pinned_by_some_calibration_row(name, factor):
    """Perturbing a kernel-data constant moves at least one calibration row out of its +-10 % (a suite that passes
    with a2a_ll_latency_us doubled could not catch that regression)."""
    from dsxl.data.catalog import load_refined
    c = load_refined()[name]
    moved = []
    for m in calibration.calibration_rows():
        gen = load_catalog().gpu(m.gpu).generation
        value, _, _ = predict_row(m, constants={name: c.values[gen] * factor})
        moved.append(abs(value / m.measured - 1))
    assert max(moved) > 0.10, (name, moved)


# --- overlap where it acts -------------------------------------------------------------------------------------
def test_tbo_without_an_all_to_all_changes_nothing_and_says_why():
    kw = dict(ep=1, moe_tp=8, attn_tp=8, batch=64, kv_len=4096)
    on, off = predict("decode", "H200", tbo=True, **kw), predict("decode", "H200", tbo=False, **kw)
    assert on["tpot_ms"] == off["tpot_ms"]
    assert on["inputs"]["tbo"] is False and any("no expert all-to-all" in n for n in on["notes"])
    one = predict("decode", "H800", ep=16, batch=1, kv_len=4096, engine="vllm", tbo=True)
    assert one["inputs"]["tbo"] is False and "below vllm's minimum of 33" in one["notes"][0]
    assert predict("decode", "H800", ep=16, batch=64, kv_len=4096, engine="vllm", tbo=True)["notes"] == []
    p = _cli("predict", "decode", "--gpu", "H200", "--ep", "1", "--moe-tp", "8", "--attn-tp", "8", "--batch", "64",
             "--kv-len", "4096", "--tbo")
    assert p.returncode == 0 and "note" in p.stdout and "tbo off" in p.stdout


def test_tbo_left_to_the_engine_runs_where_it_is_faster():
    """Not given, TBO is what a tuned deployment runs: the faster of on and off, case by case, echoed as modelled
    (V3 on H200 EP16 with vLLM: off at batch 8 and 55, where splitting the step costs more than it hides, on at 256)."""
    kw = dict(ep=16, kv_len=4096, engine="vllm")
    batches = np.array([8, 55, 256])
    on, off = (predict("decode", "H200", batch=batches, tbo=t, **kw) for t in (True, False))
    auto = predict("decode", "H200", batch=batches, **kw)
    assert list(auto["inputs"]["tbo"]) == [False, False, True]
    assert np.array_equal(auto["tpot_ms"], np.minimum(on["tpot_ms"], off["tpot_ms"]))
    assert off["tpot_ms"][1] < on["tpot_ms"][1] * 0.9 and on["tpot_ms"][2] < off["tpot_ms"][2]
    one = predict("decode", "H200", batch=55, **kw)
    assert one["inputs"]["tbo"] is False and one["tpot_ms"] == off["tpot_ms"][1]
    assert one["notes"][0].startswith("tbo off: two-batch overlap would make this step slower")
    assert predict("decode", "H200", batch=256, **kw)["inputs"]["tbo"] is True


def test_tbo_where_it_acts_splits_the_step():
    q = quantities("decode", "H800", ep=128, batch=128, kv_len=4096)
    assert q["tbo_on"] and q["micro_batches"] == 2 and q["sequences_mb"] == 64


def test_a_fused_moe_kernel_leaves_tbo_nothing_to_hide():
    """DeepGEMM's Mega MoE dispatches and combines inside one kernel (V4 on Blackwell at EP8): there is no separately
    issued all-to-all, so TBO and SBO resolve to off, are echoed off, and say why."""
    args = ["predict", "decode", "--gpu", "GB300", "--model", "deepseek_v4_pro", "--ep", "8", "--batch", "64",
            "--kv-len", "4096", "--format", "json"]
    on, off = (json.loads(_cli(*args, flag).stdout) for flag in ("--tbo", "--no-tbo"))
    assert on["tpot_ms"] == off["tpot_ms"] and on["inputs"]["tbo"] is False
    assert any("fused MoE kernel" in n for n in on["notes"])
    q = quantities("decode", "GB300", "deepseek_v4_pro", ep=8, batch=64, kv_len=4096, tbo=True)
    assert q["fused_on"] and q["a2a_ranks"] == 8 and q["issued_a2a_ranks"] == 1 and not q["tbo_on"]


def test_aggregated_overlap_echoed_off_is_modelled_off():
    """The prompt pieces of aggregated serving run with the decode step's overlap: where TBO is echoed off (vLLM's
    dual-batch overlap needs more than 32 decode tokens per rank) it changes nothing."""
    kw = dict(ep=32, batch=1, input_len=2000, output_len=500, engine="vllm")
    on, off = predict("aggregated", "H200", tbo=True, **kw), predict("aggregated", "H200", tbo=False, **kw)
    assert on["inputs"]["tbo"] is False
    assert on["tpot_ms"] == off["tpot_ms"] and on["ttft_ms"] == off["ttft_ms"]


def test_fp4_experts_are_never_slower_than_fp8_on_fp4_tensor_cores():
    for gpu in [g for g, rec in load_catalog().gpus.items() if rec.fp4_flops > 0]:
        for batch in (1, 64, 512):
            kw = dict(ep=8, batch=batch, kv_len=2048)
            fp4, fp8 = (quantities("decode", gpu, moe_dtype=d, **kw)["routed_ms"] for d in ("fp4", "fp8"))
            assert fp4 <= fp8 * (1 + 1e-9), (gpu, batch, fp4, fp8)


# --- aggregated serving as engines schedule it -----------------------------------------------------------------
def test_more_dp_ranks_wait_more_often_for_a_prompt():
    """The same per-rank batch over more attention ranks: some rank admits a prompt in more of the steps."""
    kw = dict(batch=128, input_len=1024, output_len=2048, engine="trtllm", max_num_tokens=1151)
    shares = [predict("aggregated", "H200", ep=ep, **kw)["straggler_share"] for ep in (8, 16, 32)]
    # each rank admits 1/16 prompt per step; the 1,151-token budget leaves 1,023 beside 128 decode tokens, so a
    # prompt takes 1,024 / 1,023 pieces' worth of steps
    q = 128 / 2048 * 1024 / 1023
    assert shares == pytest.approx([1 - (1 - q) ** r for r in (8, 16, 32)])


def test_a_prompt_longer_than_the_budget_goes_in_chunks():
    r = predict("aggregated", "H200", ep=8, batch=128, input_len=4096, output_len=2048, engine="trtllm",
                max_num_tokens=1151)
    assert r["prefill_chunk_tokens"] == 1151 - 128  # the budget left beside the decode tokens


def test_concurrency_is_the_batch_plus_the_requests_in_prefill():
    kw = dict(ep=8, input_len=1024, output_len=2048, engine="trtllm")
    by_c = predict("aggregated", "H200", concurrency=1024, **kw)
    decoding = by_c["decoding_batch"] * 8
    assert 1000 < decoding < 1024  # a few requests wait for or are in their context phase
    # Little's law: decoding / in flight = decode time / (TTFT + decode time)
    decode_time = 2048 * by_c["tpot_ms"]
    assert decoding / 1024 == pytest.approx(decode_time / (by_c["ttft_ms"] + decode_time), rel=1e-3)
    by_b = predict("aggregated", "H200", batch=128, **kw)  # every slot decoding: an upper bound within 1 %
    assert by_c["output_tokens_per_s_per_gpu"] <= by_b["output_tokens_per_s_per_gpu"]
    assert by_c["output_tokens_per_s_per_gpu"] == pytest.approx(by_b["output_tokens_per_s_per_gpu"], rel=0.01)


@pytest.mark.parametrize("args, words", [
    (["aggregated", "--batch", "8", "--concurrency", "64"], "not both"),
    (["aggregated", "--concurrency", "0"], "concurrency"),
    (["decode", "--batch", "8", "--kv-len", "100", "--concurrency", "64"], "concurrency"),
])
def test_concurrency_bad_input_is_one_line(args, words):
    extra = ["--input-len", "1000", "--output-len", "100"] if args[0] == "aggregated" else []
    p = _cli("predict", *args, "--gpu", "H200", "--ep", "8", *extra)
    assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_prefill_chunks_count_per_attention_rank():
    """EP8, attention TP8, 1,024 tokens per GPU: the rank's forward holds 8,192 tokens, a whole 8,192-token
    prompt, so TTFT is the wait (half a forward) plus one forward."""
    r = predict("prefill", "H200", ep=8, attn_tp=8, tokens_per_gpu=1024, prompt_len=8192)
    assert r["ttft_ms"] == pytest.approx(1.5 * r["step_ms"])


# --- bands -----------------------------------------------------------------------------------------------------
def test_a_band_never_shrinks_as_the_distance_grows():
    base = dict(phase="decode", generation="hopper", engine="vllm", model="deepseek_v3", context=3000,
                batch=256, tbo=True, moe_dtype="fp8", shape="all-to-all")  # C5's family
    steps = [{}, {"shape": "all-reduce"}, {"context": 200_000}, {"engine": "trtllm", "tbo": False},
             {"generation": "cdna4"}, {"model": "kimi_k2"}]
    kw, bands = dict(base), []
    for step in steps:
        kw.update(step)
        bands.append(accuracy(**kw)["band"])
    assert bands == sorted(bands) and bands[-1] > bands[0]
    assert bands[1] == pytest.approx(bands[0] + rules()["widen"]["shape"]["value"])  # the shape term on its own


def test_a_shape_no_calibration_row_has_widens_the_band_and_is_not_validated():
    """Single-node TP8 decode on Hopper with vLLM: attention TP covers the instance, no expert all-to-all; vLLM's
    Hopper decode row (C5) runs expert parallelism, so the band widens by the shape term and says why."""
    tp8 = predict("decode", "H200", ep=1, moe_tp=8, attn_tp=8, batch=64, kv_len=2000, engine="vllm")["accuracy"]
    ep8 = predict("decode", "H200", ep=8, batch=64, kv_len=2000, engine="vllm")["accuracy"]
    assert tp8["family_band"] == pytest.approx(ep8["family_band"] + rules()["widen"]["shape"]["value"])
    assert not tp8["validated"] and "parallel shape" in tp8["note"] and ep8["validated"]
    c4 = predict("decode", "B200", ep=2, moe_tp=4, attn_tp=8, batch=1, kv_len=2000, engine="trtllm",
                 moe_dtype="fp4")["accuracy"]  # C4's own shape: the min-latency family has it
    assert "parallel shape" not in c4["note"]


def test_every_calibration_row_lies_inside_a_band_built_from_logo_errors():
    rows, groups = FITTED["rows"], FITTED["groups"]
    errors = [abs(v["loo_error"]) for k, v in rows.items() if "corpus_group" not in v]
    median = float(np.median(errors + [g["logo_error"] for g in groups.values()]))
    for m in load_measurements():
        if m.role != "calibration":
            continue
        value, _, r = predict_row(m)
        group = rows[m.id].get("corpus_group")  # a corpus run (C6) carries its group's error
        own = groups[group]["logo_error"] if group else abs(rows[m.id]["loo_error"])
        assert r["accuracy"]["band"] >= max(median, own) - 1e-4, m.id  # bands print to 4 digits
        assert abs(value / m.measured - 1) <= r["accuracy"]["band"], m.id


# --- GB300 -----------------------------------------------------------------------------------------------------
def test_gb300_is_planned_and_predicted_from_blackwell_constants():
    gb300 = load_catalog().gpu("GB300")
    assert gb300.generation == "blackwell" and gb300.scaleup == 72 and gb300.fp4_flops > load_catalog().gpu(
        "GB200").fp4_flops
    p = _cli("predict", "decode", "--gpu", "GB300", "--model", "deepseek_v4_pro", "--ep", "16", "--batch", "55",
             "--kv-len", "7834", "--engine", "vllm")
    assert p.returncode == 0 and "TPOT" in p.stdout
    fp4_bound = predict("decode", "GB300", ep=8, batch=512, kv_len=2048)["tokens_per_s_per_gpu"]
    assert fp4_bound >= predict("decode", "GB200", ep=8, batch=512, kv_len=2048)["tokens_per_s_per_gpu"]
    assert "GB300" in _cli("plan", "--gpu", "all").stdout


# --- bands by propagation ---------------------------------------------------------------------------------------
def test_a_step_that_rests_on_a_loosely_pinned_constant_gets_a_wide_band():
    """A band is the family's widened by the step's own spread: each uncertain constant's share of the step times
    its relative uncertainty, added as independent errors. vLLM's per-step floor is not identified by the evidence
    (fitted.json keeps its prior, uncertain over its whole range: capped at 100 %); made 70 % of a step, it widens
    the band to at least 70 %. SGLang's floor is fitted (its relative standard error), so the same share costs
    far less."""
    fit = json.loads(read_template_text("fitted.json"))
    kw = dict(ep=8, batch=4, kv_len=2000, tbo=False)
    for engine in ("vllm", "sglang"):
        base = quantities("decode", "H200", engine=engine, **kw)
        rest = base["step_ms"] - base["step_overhead_ms"]
        floor = 0.7 / 0.3 * rest  # floor / (rest + floor) = 0.7
        acc = predict("decode", "H200", engine=engine, constants={"step_overhead_ms": floor}, **kw)["accuracy"]
        top = acc["drivers"][0]
        assert top["constant"] == f"step_overhead_ms.{engine}" and top["share"] == pytest.approx(0.7, abs=1e-3)
        p = fit["parameters"][top["constant"]]
        u = (1.0 if not fit["fit"][top["constant"]]["released"] else fit["fit"][top["constant"]]["relative_se"])
        if engine == "vllm":
            assert (p["hi"] - p["lo"]) / 12 ** 0.5 / fit["fit"][top["constant"]]["value"] > 1  # capped at 100 %
        assert top["uncertainty"] == pytest.approx(u, abs=1e-4) and top["adds"] == pytest.approx(0.7 * u, abs=1e-3)
        assert acc["band"] >= (acc["rules_band"] ** 2 + (0.7 * u) ** 2) ** 0.5 - 1e-4
        if engine == "vllm":
            assert acc["spread"] >= 0.7 and acc["band"] >= 0.7
        else:
            assert acc["spread"] < 0.3
