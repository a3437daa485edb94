"""The InferenceX corpus and `dsxl validate --runs`: loading, how a run maps onto the model, the closed loop, and the
one-line refusals. Expected values are derived here (the corpus README's counts, InferenceX's launch rules)."""

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from dsxl.data.catalog import load_fit
from dsxl.data.fingerprint import REFIT, stale_fit_reason
from dsxl.data.runs import load_corpus, parse_runs
from dsxl.refined.predict import predict
from dsxl.refined.runs import express, predict_runs, validate_runs

CORPUS = load_corpus()


@pytest.fixture(scope="module")
def validated() -> dict:
    """``dsxl validate --runs`` on the corpus as the CLI gives it (the stored fit's leave-one-group-out errors),
    computed once for the module's tests (none changes it)."""
    logo = {g: e["logo_error"] for g, e in load_fit()["groups"].items()}
    return validate_runs(CORPUS, "corpus", logo)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True)


def test_the_corpus_holds_the_rows_its_readme_counts():
    counts = Counter((r.hardware, r.framework, r.precision) for r in CORPUS)
    assert len(CORPUS) == 437
    assert counts == {("h200", "sglang", "fp8"): 15, ("h200", "trt", "fp8"): 30, ("b200", "sglang", "fp8"): 34,
                      ("b200", "sglang", "fp4"): 69, ("b200", "trt", "fp8"): 40, ("b200", "trt", "fp4"): 69,
                      ("mi300x", "sglang", "fp8"): 15, ("mi355x", "sglang", "fp8"): 17,
                      ("mi355x", "sglang", "fp4"): 30, ("h200", "dynamo-sglang", "fp8"): 29,
                      ("gb200", "dynamo-trt", "fp4"): 89}


def _first(**kw):
    return next(r for r in CORPUS if all(getattr(r, k) == v for k, v in kw.items()))


def test_a_run_maps_onto_the_model_as_inferencex_ran_it():
    dp = _first(hardware="b200", framework="trt", decode_tp=8, decode_ep=8, decode_dp_attention=True, isl=8192,
                conc=256)
    dep, why = express(dp)
    assert why is None
    assert (dep.decode["ep"], dep.decode["moe_tp"], dep.decode["attn_tp"]) == (8, 1, 1)
    # TensorRT-LLM's launch script: max_num_tokens = (conc + isl + 64 + 63) // 64 * 64, at least 8192
    assert dep.decode["max_num_tokens"] == (256 + 8192 + 127) // 64 * 64 == 8512
    assert dep.input_len == pytest.approx(0.9 * 8192) and dep.output_len == pytest.approx(0.9 * dp.osl)
    tp = _first(hardware="mi300x", decode_tp=8, decode_ep=1)
    dep, _ = express(tp)
    assert (dep.decode["ep"], dep.decode["moe_tp"], dep.decode["attn_tp"]) == (1, 8, 8)
    assert dep.decode["kv_dtype"] == "fp8" and dep.decode["tbo"] is False


def test_runs_the_model_cannot_express_are_listed_with_the_reason(validated):
    result = validated
    no_workers = [r for r in result["rows"] if r["reason"] and "worker counts" in r["reason"]]
    assert len(no_workers) == 35 and all(r["disagg"] for r in no_workers)
    assert all(r["output_tput_per_gpu"]["predicted"] is None for r in no_workers)
    assert result["summary"]["not_predicted"] == sum(result["summary"]["reasons"].values())
    assert result["summary"]["predicted"] + result["summary"]["not_predicted"] == 437


def test_an_aggregated_run_is_predict_aggregated_at_its_concurrency():
    run = _first(hardware="mi300x", isl=8192, osl=1024, conc=64)
    got = predict_runs([run])
    want = predict("aggregated", "MI300X", ep=1, moe_tp=8, attn_tp=8, concurrency=64, input_len=0.9 * 8192,
                   output_len=0.9 * 1024, kv_dtype="fp8", tbo=False, max_num_tokens=131072)
    assert got["output_tput_per_gpu"][0] == pytest.approx(want["output_tokens_per_s_per_gpu"], rel=1e-9)
    assert got["median_tpot"][0] * 1000 == pytest.approx(want["tpot_ms"], rel=1e-9)
    assert got["median_ttft"][0] * 1000 == pytest.approx(want["ttft_ms"], rel=1e-9)


def test_disaggregated_runs_keep_their_concurrency_in_flight():
    """Little's law over the closed loop: requests/s x (TTFT + output x TPOT) = the concurrency, where the prefill
    pool is not saturated (where it is, the rest of the requests queue at prefill and TTFT absorbs them)."""
    runs = [r for r in CORPUS if r.disagg and r.decode_num_workers > 0]
    p = predict_runs(runs)
    checked = 0
    for i, r in enumerate(runs):
        decode_gpus = r.decode_num_workers * r.decode_tp
        rate = p["output_tput_per_gpu"][i] * decode_gpus / (0.9 * r.osl)
        in_flight = rate * (p["median_ttft"][i] + 0.9 * r.osl * p["median_tpot"][i])
        assert in_flight == pytest.approx(r.conc, rel=0.03), r.row
        checked += 1
    assert checked == len(runs) == 54 + 29  # GB200 TensorRT-LLM and H200 SGLang with worker counts


def test_validate_runs_errors_are_predicted_over_measured(validated):
    result = validated
    errors = []
    for r in result["rows"]:
        for m in ("output_tput_per_gpu", "median_tpot", "median_ttft"):
            cell = r[m]
            if cell["error"] is not None:
                assert cell["error"] == pytest.approx(cell["predicted"] / cell["measured"] - 1, rel=1e-12)
        if r["output_tput_per_gpu"]["error"] is not None:
            errors.append(abs(r["output_tput_per_gpu"]["error"]))
    assert result["summary"]["metrics"]["output_tput_per_gpu"]["median_abs_error"] == pytest.approx(np.median(errors))
    # TTFT: the engine's prediction against a client's measurement, which adds the front end's time
    gaps = [r["median_ttft"]["measured"] - r["median_ttft"]["predicted"] for r in result["rows"] if r["reason"] is None]
    ttft = result["summary"]["metrics"]["median_ttft"]
    assert ttft["median_gap_ms"] == pytest.approx(1000 * np.median(gaps))
    assert ttft["measured_above_share"] == pytest.approx(np.mean(np.array(gaps) > 0))
    assert ttft["measured_above_share"] > 0.5 and ttft["median_gap_ms"] > 0
    # bands aim to hold about 80 % of measurements: on the corpus they hold at least 70 % in both metrics
    for m in ("output_tput_per_gpu", "median_tpot"):
        inside = [abs(r[m]["error"]) <= r["band"] for r in result["rows"] if r["reason"] is None]
        assert result["summary"]["metrics"][m]["within_band"] == pytest.approx(np.mean(inside))
        assert np.mean(inside) >= 0.7, m
    # a record without its output share derives it from the total at the lengths' ratio
    derived = [r for r in result["rows"] if r["output_tput_per_gpu"].get("derived")]
    assert len(derived) == 10


HEADER = open(__file__.replace("test_runs.py", "../templates/inferencex_dsr1.csv")).readline()


@pytest.mark.parametrize("edit, needle", [
    (lambda h, row: (h.replace("median_tpot,", ""), row), "column median_tpot is missing"),
    (lambda h, row: (h, row.replace("b200,", "tpu9,", 1)), "row 2, column hardware: 'tpu9' is not known"),
    (lambda h, row: (h, row.replace("sglang,", "tgi,", 1)), "row 2, column framework"),
    (lambda h, row: (h, row.replace(",0.009105662016243247,", ",fast,")), "row 2, column median_tpot: must be a"),
])
def test_a_bad_runs_file_is_one_line_naming_the_row_and_column(tmp_path, edit, needle):
    row = open(__file__.replace("test_runs.py", "../templates/inferencex_dsr1.csv")).readlines()[1]
    header, row = edit(HEADER, row)
    if "median_tpot" not in header:  # drop the matching field too
        row = row.replace(",0.009105662016243247,", ",")
    f = tmp_path / "runs.csv"
    f.write_text(header + row)
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        parse_runs(f.read_text(), "runs.csv")
    p = _cli("validate", "--runs", str(f))
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.strip().splitlines()) == 1
    assert "runs.csv" in p.stderr


def test_validate_runs_prints_groups_and_json(tmp_path):
    p = _cli("validate", "--runs", "templates/inferencex_dsr1.csv")
    assert p.returncode == 0, p.stderr
    assert "mi300x sglang fp8" in p.stdout and "Not predicted:" in p.stdout
    assert all(len(line) <= 120 for line in p.stdout.splitlines())


def test_the_committed_fit_was_made_from_the_committed_data():
    assert stale_fit_reason(load_fit()) is None


def test_a_stale_fit_is_refused_in_one_line_naming_the_command(monkeypatch):
    import dsxl.data.fingerprint as fp
    monkeypatch.setattr(fp, "fit_data_hash", lambda: "0" * 64)
    reason = stale_fit_reason(load_fit())
    assert reason and REFIT in reason and "\n" not in reason


def _evidence_errors(values=None):
    """Each calibration row's prediction and each corpus group's median |error| of output tok/s and TPOT, under
    the shipped constants or the fit's parameters set to ``values``."""
    from dsxl.refined import calibration
    params = calibration.parameters()
    ev = calibration.shipped_evidence()
    values = values or {p.name: load_fit()["fit"][p.name]["value"] for p in params}
    pred = calibration.predict_evidence(ev, values, params)
    rows = {m.id: float(p) for m, p in zip(ev.rows, pred["rows"])}
    groups = {g: calibration.group_errors(ev, pred, g) for g in dict.fromkeys(r.group for r in ev.runs)}
    return rows, groups


def test_the_stored_fit_reproduces_its_rows_and_groups():
    """The committed constants give the predictions fitted.json records for every calibration row and the corpus
    groups' median errors (so an edited fitted value shows)."""
    fit = load_fit()
    rows, groups = _evidence_errors()
    for rid, value in rows.items():
        assert value == pytest.approx(fit["rows"][rid]["fitted"], rel=2e-4), rid
    for g, e in groups.items():
        for metric in ("output_tput_per_gpu", "median_tpot"):
            assert e[metric] == pytest.approx(fit["groups"][g][metric], abs=2e-4), (g, metric)


def test_every_fitted_constant_moved_20_percent_breaks_the_reproduction():
    """A fitted constant changed by 20 % moves some calibration row or corpus group beyond the tolerance of the test
    above; a constant the evidence does not pin is reported by the fit as not identified."""
    fit = load_fit()
    base_rows, base_groups = _evidence_errors()
    values = {name: entry["value"] for name, entry in fit["fit"].items()}
    for name, entry in fit["fit"].items():
        if not entry["released"]:
            assert "not identified" in entry["why_kept"], name
            continue
        rows, groups = _evidence_errors({**values, name: values[name] * (0.8 if values[name] * 1.2 > fit[
            "parameters"][name]["hi"] else 1.2)})
        moved = max([abs(rows[r] / base_rows[r] - 1) for r in rows] +
                    [abs(groups[g][m] - base_groups[g][m]) for g in groups for m in ("output_tput_per_gpu",
                                                                                     "median_tpot")])
        assert moved > 2e-3, name


def test_every_run_the_corpus_measured_fits_in_memory_as_its_engine_budgets_it(validated):
    """InferenceX ran them, so none is "does not fit": SGLang's --mem-fraction-static and TensorRT-LLM's
    free_gpu_memory_fraction come from each group's launch script (templates/runs.json)."""
    result = validated
    assert not [r for r in result["rows"] if r["reason"] and "memory" in r["reason"]]
    # B200 FP8 on 4 GPUs with SGLang: --mem-fraction-static 0.95 (dsr1_fp8_b200.sh, TP4 branch) holds 170.5 GB of
    # weights and the KV of 32 prompts of 8k + 1k in FP8; at the 0.9 default only 3.5 GB would be left (11 sequences)
    tp4 = _first(hardware="b200", framework="sglang", precision="fp8", decode_tp=4, conc=32)
    dep, _ = express(tp4)
    assert dict(dep.key[-1]) == {"mem_util": 0.95}
    hbm_gb = 180 * 2 ** 30 / 1e9
    q = predict("decode", "B200", ep=1, moe_tp=4, attn_tp=4, batch=32, kv_len=9216, kv_dtype="fp8",
                constants={"mem_util": 0.95})
    assert q["fits"] and q["weights_gb"] == pytest.approx(170.5, abs=0.05)
    default = predict("decode", "B200", ep=1, moe_tp=4, attn_tp=4, batch=32, kv_len=9216, kv_dtype="fp8")
    assert default["fits"] is False and default["max_batch"] == (0.9 * hbm_gb - q["weights_gb"]) // q["kv_seq_gb"]


def test_tensorrt_llm_gives_kv_its_share_of_the_memory_left_after_weights():
    from dsxl.refined.predict import quantities
    q = quantities("decode", "B200", ep=8, batch=64, kv_len=4096, engine="trtllm")
    hbm_gb = 180 * 2 ** 30 / 1e9
    assert q["kv_budget_gb"] == pytest.approx(0.9 * (hbm_gb - q["weights_gb"]), rel=1e-12)  # free_gpu_memory_fraction
    s = quantities("decode", "B200", ep=8, batch=64, kv_len=4096, engine="sglang")
    assert s["kv_budget_gb"] == pytest.approx(0.9 * hbm_gb - s["weights_gb"], rel=1e-12)  # --mem-fraction-static


README = open(__file__.replace("tests/test_runs.py", "README.md")).read()


def _readme_corpus_table(text: str) -> list[list[str]]:
    start = text.index("| group | runs | output tok/s/GPU")
    lines = text[start:].split("\n\n")[0].splitlines()[2:]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if x < 1 else f"{100 * x:.0f} %"


def test_the_readmes_corpus_table_and_ttft_gap_are_what_validate_runs_gives(validated):
    result = validated
    table = _readme_corpus_table(README)
    *rows, total = table
    assert len(rows) == len(result["groups"])
    for cells, g in zip(rows, result["groups"]):
        gpu, *_, precision = g["group"].split()
        assert cells[0].lower().startswith(gpu) and cells[0].lower().endswith(precision)
        m = g["metrics"]
        for cell, metric in ((cells[2], "output_tput_per_gpu"), (cells[3], "median_tpot")):
            assert cell == f"{_pct(m[metric]['median_abs_error'])} / {100 * m[metric]['max_abs_error']:.0f} %"
        assert cells[4] == _pct(g["logo_error"]) and cells[5] == f"{100 * g['band']:.0f} %"
    s = result["summary"]["metrics"]
    assert total[2:4] == [_pct(s["output_tput_per_gpu"]["median_abs_error"]), _pct(s["median_tpot"]["median_abs_error"])]
    assert (f"hold {100 * s['output_tput_per_gpu']['within_band']:.0f} % of the runs' output tokens/s and "
            f"{100 * s['median_tpot']['within_band']:.0f} % of their TPOTs") in README
    assert (f"a median {s['median_ttft']['median_gap_ms']:.0f} ms, with "
            f"{100 * s['median_ttft']['measured_above_share']:.0f} % of runs measured above") in README


def test_a_groups_band_covers_its_held_out_error_in_throughput_and_in_tpot(validated):
    """A band is the expected error of every number a prediction gives: a group's runs get bands at least as wide
    as the group's leave-one-group-out error of output tokens/s and of TPOT (GB200's TPOT is the wider)."""
    fit = load_fit()["groups"]
    result = validated
    for g in result["groups"]:
        held = fit[g["group"]]
        bands = [r["band"] for r in result["rows"] if r["group"] == g["group"] and r["band"] is not None]
        assert min(bands) >= max(held["logo_error"], held["logo_tpot_error"]) - 1e-4, g["group"]
    gb200 = fit["gb200 dynamo-trt fp4"]
    assert gb200["logo_tpot_error"] > gb200["logo_error"] + 0.1  # the case that needs TPOT's
