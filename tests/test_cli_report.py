"""dsxl report and dsxl build as a user meets them: inputs echoed, clear messages, CSV, GPUs, guards."""

import csv
import io
import json
import subprocess
import sys


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True, cwd=cwd)


def _one_line_error(p, *words):
    assert p.returncode == 2 and p.stdout == "", p.stdout
    assert len(p.stderr.strip().splitlines()) == 1 and all(w in p.stderr for w in words), p.stderr


def test_catalog_gpus_enter_the_per_gpu_tables_and_their_what_ifs_apply():
    base = json.loads(_cli("report", "--gpu", "B200", "--format", "json", "decode_totals").stdout)
    edited = json.loads(_cli("report", "--gpu", "B200", "--set", "B200.mem_bw=4000", "--format", "json",
                             "decode_totals").stdout)
    cols = base["tables"][0]["columns"]
    assert cols and all(c.startswith("B200") for c in cols)
    assert base["tables"][0]["rows"][8]["values"] != edited["tables"][0]["rows"][8]["values"]


def test_every_output_echoes_its_inputs():
    r = json.loads(_cli("report", "--set", "seq_len=8000", "--format", "json", "tldr_prefill").stdout)
    assert r["inputs"]["what_ifs"] == {"seq_len": 8000} and r["inputs"]["scenario"]["seq_len"] == 8000
    assert r["inputs"]["model"] == "deepseek_v3" and r["inputs"]["gpus"] == ["H800", "H20", "H20_3e"]
    md = _cli("report", "--set", "seq_len=8000", "tldr_prefill").stdout
    assert md.startswith("> model: deepseek_v3") and "what-ifs: seq_len=8000" in md
    text = _cli("report", "--format", "csv", "tldr_prefill").stdout
    assert text.startswith("# model: deepseek_v3") and "# inputs: seq_len=4383" in text


def test_a_filter_that_keeps_nothing_says_so():
    md = _cli("report", "--set", "tps_threshold=10000", "decode_totals_sla").stdout
    assert "No configuration passes the filter" in md


def test_list_shows_defaults_units_ranges_and_gpus():
    out = _cli("report", "--list").stdout
    assert "seq_len = 4383  [a number from 1 to 10,000,000]" in out
    assert "mem_bw  GB/s HBM" in out and "B200" in out and "kimi_k2" in out and "dim = 7168" in out
    assert _cli("--version").stdout.startswith("dsxl ")


def test_csv_one_table_or_one_file_per_table(tmp_path):
    text = _cli("report", "--format", "csv", "decode_moe").stdout
    rows = list(csv.reader(io.StringIO("\n".join(line for line in text.splitlines() if not line.startswith("#")))))
    assert rows[0] == ["GPU", "BatchSize", "SharedExpert", "RoutedExpert"] and rows[1][1] == "32"
    _one_line_error(_cli("report", "--format", "csv"), "-o FOLDER")
    p = _cli("report", "--format", "csv", "-o", str(tmp_path))
    assert p.returncode == 0 and len(list(tmp_path.glob("*.csv"))) == 34
    _one_line_error(_cli("report", "-o", str(tmp_path)), "csv only")


def test_build_output_must_be_an_xlsx_in_an_existing_folder(tmp_path):
    _one_line_error(_cli("build", "-o", str(tmp_path / "out.csv")), ".xlsx")
    _one_line_error(_cli("build", "-o", str(tmp_path / "missing" / "out.xlsx")), "does not exist")
    assert not (tmp_path / "missing").exists()


def test_max_batch_is_zero_and_says_does_not_fit():
    r = json.loads(_cli("report", "--set", "H800.mem=1", "--format", "json", "decode_max_batch_tp1").stdout)
    table = r["tables"][0]
    h800 = [row for row in table["rows"] if row["label"].startswith("H800")]
    assert all(v == 0 for row in h800 for v in row["values"])
    assert "does not fit" in _cli("report", "--set", "H800.mem=1", "decode_max_batch_tp1").stdout


def test_structural_checks_on_model_and_deployment_inputs():
    _one_line_error(_cli("report", "--set", "dim=7"), "dim", "128")
    _one_line_error(_cli("report", "--set", "gpu_per_node=3"), "gpu_per_node")
    _one_line_error(_cli("report", "--set", "dispatch_node=9"), "dispatch_node")
    _one_line_error(_cli("report", "--set", "n_limited_groups=9"), "n_limited_groups")
