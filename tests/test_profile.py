"""dsxl calibrate: a planner's own runs become a profile that predict, plan, validate, the UDFs and the workbook use.
The runs here are made from dsxl's shipped predictions times 0.8: a cluster 20 % slower than shipped."""

import csv
import json
import re
import subprocess
import sys

import pytest

from dsxl import __version__, udfs as u
from dsxl.planner.plan import plan
from dsxl.refined.predict import predict
from dsxl.refined.validation import COLUMNS

SLOWER = 0.8
RUNS = [dict(id="R1", phase="decode", gpu="H200", ep=16, batch=64, kv_len=4096),
        dict(id="R2", phase="decode", gpu="H200", ep=32, batch=128, kv_len=2048),
        dict(id="R3", phase="prefill", gpu="H200", ep=16, tokens_per_gpu=8192, prompt_len=4096)]
FOURTH = dict(ep=16, batch=96, kv_len=8000)  # none of the runs


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True)


def _write_runs(path, runs, factor=SLOWER, **edits):
    rows = []
    for c in runs:
        opts = {k: v for k, v in c.items() if k not in ("id", "phase", "gpu")}
        shipped = predict(c["phase"], c["gpu"], **opts)["tokens_per_s_per_gpu"]
        row = dict.fromkeys(COLUMNS, "")
        row.update({k: str(v) for k, v in c.items()}, role="calibration", model="deepseek_v3", engine="sglang",
                   metric="input tokens/s per GPU" if c["phase"] == "prefill" else "output tokens/s per GPU",
                   measured=f"{factor * shipped:.3f}", source="test cluster")
        row.update(edits.get(c["id"], {}))
        rows.append(row)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cal")
    runs = _write_runs(folder / "runs.csv", RUNS)
    p = _cli("calibrate", str(runs), "-o", str(folder / "profile.json"))
    assert p.returncode == 0, p.stderr
    return folder / "profile.json"


def test_a_cluster_20_percent_slower_is_predicted_elsewhere_within_7_percent(profile):
    shipped = predict("decode", "H200", **FOURTH)["tokens_per_s_per_gpu"]
    calibrated = predict("decode", "H200", calibration=str(profile), **FOURTH)
    assert calibrated["tokens_per_s_per_gpu"] == pytest.approx(SLOWER * shipped, rel=0.07)
    assert calibrated["inputs"]["calibration"] == "runs"
    assert calibrated["accuracy"]["basis"] == ["R1", "R2"] and "calibrated by runs" in calibrated["accuracy"]["note"]
    data = json.loads(profile.read_text())
    assert data["fitted"]["decode_time_scale"] == pytest.approx(1 / SLOWER, rel=0.05)
    assert data["input"]["file"] == "runs.csv" and data["input"]["rows"] == 3 and len(data["input"]["sha256"]) == 64
    assert [r["loo_error"] is not None for r in data["rows"]] == [True, True, True]


def test_a_plan_on_the_calibrated_cluster_needs_about_a_quarter_more_gpus(profile):
    kw = dict(gpus="H200", output_tokens_per_s=200_000)
    shipped, calibrated = plan(**kw), plan(**kw, calibration=str(profile))
    ratio = calibrated["gpus"]["H200"]["total_gpus"] / shipped["gpus"]["H200"]["total_gpus"]
    assert 1.15 <= ratio <= 1.40, ratio  # 1 / 0.8 = 1.25, in whole instances
    p = _cli("plan", "--gpu", "H200", "--output-tokens-per-s", "200000", "--calibration", str(profile))
    assert p.returncode == 0 and f"{calibrated['gpus']['H200']['total_gpus']:,} GPUs" in p.stdout


def test_validate_lists_your_runs_and_the_udfs_take_the_profile(profile):
    rows = {r["id"]: r for r in json.loads(_cli("validate", "--calibration", str(profile), "--format",
                                                "json").stdout)}
    assert rows["R1"]["role"] == "yours" and abs(rows["R1"]["error"]) < 0.02
    shipped = u.PREDICT_DECODE("H200", 16, 96, 8000, "tokens_per_s_per_gpu")
    assert u.PREDICT_DECODE("H200", 16, 96, 8000, "tokens_per_s_per_gpu", calibration=str(profile)) == \
        pytest.approx(SLOWER * shipped, rel=0.07)
    with pytest.raises(ValueError, match="calibration"):
        u.PREDICT_DECODE("H200", 16, 96, 8000, calibration=str(profile.parent / "missing.json"))


def test_one_row_fits_one_scale_per_phase_and_says_so(tmp_path):
    runs = _write_runs(tmp_path / "one.csv", RUNS[:1])
    p = _cli("calibrate", str(runs), "-o", str(tmp_path / "one.json"))
    assert p.returncode == 0, p.stderr
    data = json.loads((tmp_path / "one.json").read_text())
    assert set(data["fitted"]) == {"decode_time_scale"}
    assert "only a GPU-time scale per phase" in p.stdout and "Leave-one-out errors need 3 rows" in p.stdout
    r = predict("decode", "H200", calibration=str(tmp_path / "one.json"), **FOURTH)
    shipped = predict("decode", "H200", **FOURTH)["accuracy"]
    assert r["accuracy"]["family_band"] == shipped["family_band"]  # no LOO: the shipped family's band


def test_recalibrating_the_same_file_is_byte_identical(tmp_path):
    runs = _write_runs(tmp_path / "runs.csv", RUNS[:2])
    for name in ("a.json", "b.json"):
        assert _cli("calibrate", str(runs), "-o", str(tmp_path / name)).returncode == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_the_template_round_trips(tmp_path):
    assert _cli("calibrate", "--template", "-o", str(tmp_path / "t.csv")).returncode == 0
    text = (tmp_path / "t.csv").read_text()
    (tmp_path / "runs.csv").write_text(text.replace("\n# ", "\n"))  # the example row, uncommented
    p = _cli("calibrate", str(tmp_path / "runs.csv"), "-o", str(tmp_path / "runs.json"))
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("edit, words", [
    ({"R2": {"measured": "fast"}}, "row 3 (R2), column measured"),
    ({"R1": {"kv_len": ""}}, "row 2 (R1), column kv_len"),
    ({"R1": {"ep": "7", "redundant_experts": "0"}}, "row R1: redundant_experts"),
    ({"R1": {"phase": "training"}}, "row 2 (R1), column phase"),
    # issue 34's reproducers: each one line naming the row and the column, nothing written
    ({"R1": {"metric": "TPOT ms"}}, "row 2 (R1), column metric must be one of output tokens/s per GPU"),
    ({"R1": {"metric": "per node"}}, "row 2 (R1), column metric"),
    ({"R3": {"metric": "input tokens/s per user"}}, "row 4 (R3), column metric"),
    ({"R1": {"tbo": "2.5"}}, "row 2 (R1), column tbo: must be 1 or 0"),
    ({"R1": {"tbo": "-1"}}, "row 2 (R1), column tbo: must be 1 or 0"),
    ({"R1": {"concurrency": "-1"}}, "row 2 (R1), column concurrency: does not apply to a decode row"),
    ({"R2": {"mtp_draft": "2.5"}}, "row 3 (R2), column mtp_draft must be a whole number"),
    ({"R1": {"batch": "100000"}}, "row R1: does not fit in memory on H200"),
    ({"R1": {"measured": "1e9"}}, "row R1, column measured: 1e+09 output tokens/s per GPU is above the roofline"),
    ({"R1": {"source": "x" * 140_000}}, "runs.csv: not a CSV file dsxl can read"),
])
def test_a_bad_run_is_one_line_naming_file_row_and_column(tmp_path, edit, words):
    runs = _write_runs(tmp_path / "runs.csv", RUNS, **edit)
    p = _cli("calibrate", str(runs), "-o", str(tmp_path / "out.json"))
    assert p.returncode == 2 and words in p.stderr and "runs.csv" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.json").exists()


def test_columns_duplicates_profiles_and_outputs_are_checked(tmp_path):
    runs = _write_runs(tmp_path / "runs.csv", RUNS)
    text = runs.read_text().splitlines()
    (tmp_path / "cols.csv").write_text("\n".join([text[0].replace(",kv_len,", ",kv_length,")] + text[1:]))
    p = _cli("calibrate", str(tmp_path / "cols.csv"), "-o", str(tmp_path / "x.json"))
    assert p.returncode == 2 and "column kv_len is missing" in p.stderr
    twice = text + [text[1].replace("R1", "R9").replace(text[1].split(",")[-4], "1.0")]
    (tmp_path / "dup.csv").write_text("\n".join(twice))
    p = _cli("calibrate", str(tmp_path / "dup.csv"), "-o", str(tmp_path / "x.json"))
    assert p.returncode == 2 and "more than 2x apart" in p.stderr
    p = _cli("calibrate", str(runs), "-o", str(tmp_path / "profile.txt"))
    assert p.returncode == 2 and "-o must name a .json file" in p.stderr
    good = tmp_path / "good.json"
    assert _cli("calibrate", str(runs), "-o", str(good)).returncode == 0
    data = json.loads(good.read_text())
    for change, words in ((dict(dsxl_version="9.0.0"), "made by dsxl 9.0.0"),
                          (dict(fitted={**data["fitted"], "decode_time_scale": 50}), "from 0.2 to 5")):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**data, **change}))
        p = _cli("predict", "decode", "--gpu", "H200", "--ep", "16", "--batch", "8", "--kv-len", "100",
                 "--calibration", str(bad))
        assert p.returncode == 2 and words in p.stderr, p.stderr
    assert __version__.split(".")[0] == data["dsxl_version"].split(".")[0]


@pytest.mark.slow
def test_the_calibrated_workbook_recalculates_to_the_cli(profile, tmp_path):
    from openpyxl import load_workbook

    from dsxl.refined.validation import validate
    from dsxl.workbook import build_workbook
    from dsxl.workbook.libreoffice import convert, soffice
    from workbook_helpers import name_range, require_engine
    require_engine(soffice(), "LibreOffice", module=False)
    from dsxl.workbook.gnumeric import recalc, ssconvert
    require_engine(ssconvert(), "Gnumeric", module=False)
    book = build_workbook(tmp_path / "cal.xlsx", calibration=str(profile))
    gnumeric = load_workbook(recalc([book], tmp_path / "gn")[0], data_only=True)
    ws, r1, c1, r2, c2 = name_range(gnumeric, "tbl_validation")
    got = {ws.cell(r, c1).value: ws.cell(r, c1 + 2).value for r in range(r1 + 1, r2 + 1)}
    for r in validate(calibration=str(profile)):
        assert got[r["id"]] == pytest.approx(r["refined"], rel=1e-9), ("gnumeric", r["id"])
    wb = load_workbook(convert([book], tmp_path / "lo")[0], data_only=True)
    ws, r1, c1, r2, c2 = name_range(wb, "tbl_validation")
    got = {ws.cell(r, c1).value: ws.cell(r, c1 + 2).value for r in range(r1 + 1, r2 + 1)}
    rows = validate(calibration=str(profile))
    assert {"R1", "R2", "R3"} <= set(got) and len(got) == len(rows)
    for r in rows:
        assert got[r["id"]] == pytest.approx(r["refined"], rel=1e-9), r["id"]
    ws, r1, c1, r2, c2 = name_range(wb, "predict_results")
    res = {ws.cell(r, c1).value: ws.cell(r, c1 + 1).value for r in range(r1 + 1, r2 + 1)}
    d = predict("decode", "H800", ep=128, batch=128, kv_len=4096, calibration=str(profile))
    assert res["Decode TPOT"] == pytest.approx(d["tpot_ms"], rel=1e-9)
    assert res["Decode expected error (band)"] == pytest.approx(d["accuracy"]["band"], abs=1e-9)
    start = " ".join(str(c.value) for row in wb["Start"].iter_rows() for c in row if c.value)
    assert "calibrated to your measurements: runs.csv" in start
    constants = wb["Constants"]
    sources = " ".join(str(c.value) for row in constants.iter_rows() for c in row if c.value)
    assert "your measurements: runs.csv" in sources


def test_runs_faster_than_the_hardware_allows_are_refused_and_the_bound_is_the_roofline(tmp_path):
    """1,000x the shipped prediction is past any H200 roofline; the bound named is the configuration at datasheet
    peaks, which the shipped prediction (with its efficiencies and overheads) stays below."""
    from dsxl.refined.profile import ROOFLINE
    runs = _write_runs(tmp_path / "runs.csv", RUNS, factor=1000)
    p = _cli("calibrate", str(runs), "-o", str(tmp_path / "out.json"))
    assert p.returncode == 2 and "above the roofline" in p.stderr and not (tmp_path / "out.json").exists()
    for c in RUNS:
        opts = {k: v for k, v in c.items() if k not in ("id", "phase", "gpu")}
        shipped = predict(c["phase"], c["gpu"], **opts)["tokens_per_s_per_gpu"]
        bound = predict(c["phase"], c["gpu"], **opts, **ROOFLINE)["tokens_per_s_per_gpu"]
        assert shipped < bound < 5 * shipped, c["id"]


def test_a_profile_moves_only_what_its_rows_pin(profile):
    """The 0.8x SGLang H200 runs move an SGLang H200 configuration by 0.8; a vLLM or TensorRT-LLM configuration on
    another GPU keeps its engine's own constants, so it moves at most by the common GPU-time scale, never the other
    way."""
    data = json.loads(profile.read_text())
    assert data["ratio_to_shipped"]["decode_time_scale"] == pytest.approx(data["fitted"]["decode_time_scale"])
    assert not any(k.startswith(("step_overhead_ms.", "request_overhead_us.")) for k in data["fitted"])
    ratio = lambda **kw: (predict("decode", calibration=str(profile), **kw)["tokens_per_s_per_gpu"]
                          / predict("decode", **kw)["tokens_per_s_per_gpu"])
    assert ratio(gpu="H200", ep=32, batch=96, kv_len=3000) == pytest.approx(SLOWER, rel=0.03)
    common = 1 / data["fitted"]["decode_time_scale"]
    for engine in ("vllm", "trtllm"):
        moved = ratio(gpu="H800", ep=32, batch=64, kv_len=4096, engine=engine, tbo=False)
        assert common * 0.99 <= moved <= 1.0, engine


def test_a_calibrated_plans_reproduce_lines_carry_the_profile_and_reproduce(profile, tmp_path, capsys):
    import shlex

    from dsxl.cli import main
    from dsxl.render.text import plan_text
    spaced = tmp_path / "my profile.json"
    spaced.write_bytes(profile.read_bytes())
    r = plan(gpus="H200", output_tokens_per_s=200_000, calibration=str(spaced))
    lines = [x for x in plan_text(r).replace("\\\n    ", "").splitlines() if x.startswith("Reproduce: ")]
    assert lines and all(f"--calibration {shlex.quote(str(spaced))}" in x for x in lines)
    x = r["gpus"]["H200"]
    for line in lines:
        argv = shlex.split(line[len("Reproduce: dsxl "):]) + ["--format", "json"]
        assert main(argv) in (0, None)
        got = json.loads(capsys.readouterr().out)
        pool = x["prefill"] if argv[1] == "prefill" else x["decode"]
        rates = [m["tokens_per_s_per_gpu"] for m in pool.get("mix") or [pool]]
        assert min(abs(got["tokens_per_s_per_gpu"] / v - 1) for v in rates) < 0.01, line


def test_under_a_profile_a_row_of_another_model_is_not_near(profile):
    kw = dict(gpu="H200", model="deepseek_v4_pro", ep=16, batch=64, kv_len=4096)
    shipped = predict("decode", **kw)["accuracy"]
    calibrated = predict("decode", calibration=str(profile), **kw)["accuracy"]
    assert calibrated["family_band"] == shipped["family_band"] and calibrated["validated"] is False
    same_model = predict("decode", calibration=str(profile), **{**kw, "model": "deepseek_v3"})["accuracy"]
    assert same_model["validated"] and same_model["basis"] == ["R1", "R2"]


@pytest.mark.parametrize("change, words", [
    (lambda d: d.pop("rows"), "rows must be a list"),
    (lambda d: d.update(name=7), "name must be text"),
    (lambda d: d.update(name="ours\x1b[2J"), "name must be text without control characters"),
    (lambda d: d.update(input="runs.csv"), "input must be an object"),
    (lambda d: d["rows"][0].update(measured="fast"), "rows[0].measured must be a number above 0"),
    (lambda d: d["rows"][1].pop("phase"), "rows[1].phase is missing"),
    (lambda d: d["ratio_to_shipped"].update(decode_time_scale=-1), "ratio_to_shipped.decode_time_scale"),
])
def test_a_hand_edited_profile_is_one_line_in_every_surface(profile, tmp_path, change, words):
    from dsxl.workbook import workbook_bytes
    data = json.loads(profile.read_text())
    change(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    p = _cli("plan", "--gpu", "H200", "--output-tokens-per-s", "1000", "--calibration", str(bad))
    assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    for call in (lambda: predict("decode", "H200", ep=16, batch=8, kv_len=100, calibration=str(bad)),
                 lambda: u.PREDICT_DECODE("H200", 16, 96, 8000, calibration=str(bad)),
                 lambda: workbook_bytes(calibration=str(bad))):
        with pytest.raises(ValueError, match=re.escape(words)):
            call()


def test_duplicates_merge_and_nothing_is_overwritten(tmp_path):
    runs = _write_runs(tmp_path / "runs.csv", RUNS)
    text = runs.read_text().splitlines()
    again = text[1].replace("R1", "R7").replace(text[1].split(",")[-4], f"{float(text[1].split(',')[-4]) * 1.1:.3f}")
    (tmp_path / "dup.csv").write_text("\n".join(text + [again]) + "\n")
    p = _cli("calibrate", str(tmp_path / "dup.csv"), "-o", str(tmp_path / "dup.json"))
    assert p.returncode == 0 and "rows R1+R7 (2 rows) measure the same configuration: merged at their geometric mean" in p.stdout
    data = json.loads((tmp_path / "dup.json").read_text())
    merged = next(r for r in data["rows"] if r["id"] == "R1+R7")
    assert merged["measured"] == pytest.approx(float(text[1].split(",")[-4]) * 1.1 ** 0.5, rel=1e-6)
    before = (tmp_path / "dup.json").read_bytes()
    p = _cli("calibrate", str(runs), "-o", str(tmp_path / "dup.json"))
    assert p.returncode == 2 and "exists" in p.stderr and (tmp_path / "dup.json").read_bytes() == before
    link = tmp_path / "link.json"
    link.hardlink_to(runs)
    p = _cli("calibrate", str(runs), "-o", str(link), "--force")
    assert p.returncode == 2 and "names the same file" in p.stderr and link.read_text() == runs.read_text()
    (tmp_path / "runs.csv.bak").write_bytes(runs.read_bytes())
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "calibrate", "--template"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.startswith("id,role,phase,metric")
    assert runs.read_bytes() == (tmp_path / "runs.csv.bak").read_bytes()  # ./runs.csv untouched
