"""Bad input, unsafe writes and invariants: one clear line naming the argument, nothing overwritten, physics that
never turns around (hypothesis over the refined model)."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsxl
from dsxl import load_catalog
from dsxl import udfs as u
from dsxl.refined.predict import predict, quantities

BASE = ["predict", "decode", "--gpu", "H800", "--ep", "8", "--batch", "8", "--kv-len", "1000"]


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("args, name", [
    (BASE[:-2] + ["--kv-len", "1e30"], "kv_len"),
    (BASE + ["--moe-tp", "3"], "moe_tp"),
    (BASE + ["--attn-tp", "16"], "attn_tp"),
    (BASE + ["--engine", "tgi"], "engine"),
    (BASE + ["--engine", "trtllm", "--tbo"], "tbo"),
    (BASE + ["--redundant-experts", "3"], "redundant_experts"),
    (BASE + ["--model", "/nonexistent/config.json"], "config"),
    (BASE + ["--mode", "article", "--mtp-draft", "1", "--mtp-accept", "1.5"], "mtp_draft"),
    (["predict", "prefill", "--gpu", "H800", "--ep", "8", "--tokens-per-gpu", "0", "--prompt-len", "10"],
     "tokens_per_gpu"),
    (["plan", "--price-gpu-hour", "-1"], "price_gpu_hour"),
    (["plan", "--gpu-per-node", "1e30"], "gpu_per_node"),
    (["plan", "--budget-gpus", "8", "--budget-nodes", "1"], "budget"),
    (["plan", "--output-tokens-per-s", "1e300"], "output_tokens_per_s"),
    (["plan", "--prefill-gpu", "B200"], "decode_gpu"),
    (["plan", "--recipe", "tgi"], "recipe"),
    (["plan", "--plot", "/nonexistent/folder/f.png"], "--plot"),
    (["plan", "--plot", "f.pdf"], "--plot"),
    (["report", "--set", "decode_comm_sm=100"], "decode_comm_sm"),
    (["report", "--set", "seq_len=1e30"], "seq_len"),
    (["report", "--model", "deepseek_v4_pro"], "MLA"),
    (["build", "-o", "/nonexistent/x.xlsx"], "-o"),
    (["build", "-o", "x.txt"], "-o"),
])
def test_cli_bad_input_is_one_line_naming_the_argument(args, name):
    p = _cli(*args)
    assert p.returncode == 2, (args, p.stdout[-300:], p.stderr[-300:])
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert name in p.stderr, p.stderr
    assert "got 1000000000000000019884624838656" not in p.stderr  # numbers in short form


@pytest.mark.parametrize("config", ["[1, 2]", "null", "3", '"x"', '{"architectures": ["DeepseekV3ForCausalLM"], '
                                    '"text_config": 5}', '{"architectures": ["DeepseekV3ForCausalLM"], '
                                    '"hidden_size": [7168]}', "{not json"])
def test_a_config_json_of_any_shape_is_one_line(tmp_path, config):
    path = tmp_path / "config.json"
    path.write_text(config)
    p = _cli(*BASE, "--model", str(path))
    assert p.returncode == 2 and "Traceback" not in p.stderr and str(path) in p.stderr


def _raise(cell):
    """A UDF range cell's message, raised as the single-cell call would."""
    assert isinstance(cell, str) and cell.startswith("#VALUE! "), cell
    raise ValueError(cell)


@pytest.mark.parametrize("call, name", [
    (lambda: predict("decode", None, ep=8, batch=1, kv_len=1), "gpu"),
    (lambda: dsxl.load_model(None), "model"),
    (lambda: dsxl.plan(gpus=None), "gpus"),
    (lambda: dsxl.plan(input_len=np.array([1000, 2000])), "input_len"),
    (lambda: dsxl.plan(ep_sizes=()), "ep_sizes"),
    (lambda: predict("decode", "H800", ep=8, batch=1, kv_len=1, constants={"kernel_latency_us": -100}),
     "kernel_latency_us"),
    (lambda: predict("decode", "H800", ep=8, batch=1, kv_len=1, constants={"gemm_bw_eff": float("nan")}),
     "gemm_bw_eff"),
    (lambda: predict("decode", "H800", ep=8, batch=1, kv_len=1, constants={"gemm_bw_eff": 0}), "gemm_bw_eff"),
    (lambda: load_catalog().gpu("H800").with_fields(generation="volta"), "generation"),
    (lambda: u.PREFILL_MS("H800", "sum", tp=1024), "tp"),
    (lambda: u.PREFILL_MS("H800", "sum", tp=3), "tp"),
    (lambda: _raise(u.PREFILL_MS("H800", "sum", tp=[[4], [3]])[1][0]), "tp"),  # a range: the bad cell names it
    (lambda: _raise(u.DECODE_TPOT("H800", 64, 4383, [[1], [3]])[1][0]), "mla_tp"),
])
def test_python_and_udf_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_plain_lists_work_wherever_arrays_do():
    r = predict("decode", "H800", ep=128, batch=[64, 128], kv_len=4096)
    a = predict("decode", "H800", ep=128, batch=np.array([64, 128]), kv_len=4096)
    assert list(r["tokens_per_s_per_gpu"]) == list(a["tokens_per_s_per_gpu"])


def test_json_holds_finite_numbers_only_and_the_same_keys_everywhere():
    p = _cli("plan", "--gpu", "H20,H800", "--tpot-ms", "20", "--price-gpu-hour", "0", "--price-input-hit", "1",
             "--price-input-miss", "1", "--price-output", "1", "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout, parse_constant=lambda c: pytest.fail(f"non-finite {c} in JSON"))
    entries = list(r["gpus"].values())
    assert len({frozenset(e) for e in entries}) == 1  # feasible and infeasible entries share their keys
    assert any(e["margin"] is None for e in entries if e["feasible"])  # undefined at zero cost, not infinite
    refined = json.loads(_cli(*BASE, "--format", "json").stdout)
    article = json.loads(_cli(*BASE, "--mode", "article", "--format", "json").stdout)
    assert set(refined) == set(article)


def test_csv_reads_with_pandas_comment_hash():
    import io

    import pandas as pd
    p = _cli("report", "--format", "csv", "decode_moe")
    header = [line for line in p.stdout.splitlines() if line.startswith("#")]
    assert header and all("," not in line for line in header)
    df = pd.read_csv(io.StringIO(p.stdout), comment="#")
    assert df.shape[1] > 1 and not df.columns[0].startswith("#")


# --- files: nothing overwritten that may not be, permissions and links kept --------------------------------------
def test_build_refuses_read_only_files_folders_and_symlinks(tmp_path):
    ro = tmp_path / "ro.xlsx"
    ro.write_bytes(b"keep")
    ro.chmod(0o444)  # refused by its mode bits, even for root (CI runs as root)
    p = _cli("build", "-o", str(ro))
    assert p.returncode == 2 and "read-only" in p.stderr and ro.read_bytes() == b"keep"


def test_build_onto_a_folder_or_a_symlink_is_refused_before_building(tmp_path):
    folder = tmp_path / "book.xlsx"
    folder.mkdir()
    p = _cli("build", "-o", str(folder))
    assert p.returncode == 2 and "folder" in p.stderr and "wrote" not in p.stdout
    target = tmp_path / "real.xlsx"
    target.write_bytes(b"x")
    link = tmp_path / "link.xlsx"
    link.symlink_to(target)
    p = _cli("build", "-o", str(link))
    assert p.returncode == 2 and "symbolic link" in p.stderr and target.read_bytes() == b"x"


def test_writes_keep_permissions_and_hard_links(tmp_path):
    from dsxl.render.files import write_bytes
    private = tmp_path / "private.xlsx"
    private.write_bytes(b"old")
    private.chmod(0o600)
    write_bytes(private, b"new")
    assert private.read_bytes() == b"new" and stat.S_IMODE(private.stat().st_mode) == 0o600
    other = tmp_path / "other.xlsx"
    os.link(private, other)
    write_bytes(private, b"newer")
    assert other.read_bytes() == b"newer" and private.stat().st_ino == other.stat().st_ino


def test_a_folder_of_csv_files_is_written_at_once(tmp_path, monkeypatch):
    from dsxl.render import files
    (tmp_path / "stale.csv").write_text("old")
    calls = {"n": 0}
    real = os.replace

    def failing(src, dst):
        calls["n"] += 1
        raise OSError("disk full")
    monkeypatch.setattr(files.os, "replace", failing)
    with pytest.raises(OSError):
        files.write_folder(tmp_path, {"a.csv": "1", "b.csv": "2"})
    monkeypatch.setattr(files.os, "replace", real)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stale.csv"]  # no half-written set, no stage left


# --- invariants (hypothesis) ---------------------------------------------------------------------------------------
GPUS = list(load_catalog().gpus)


@settings(max_examples=40, deadline=None)
@given(gpu=st.sampled_from(GPUS), ep=st.sampled_from([8, 16, 32, 48, 72, 128]), batch=st.integers(1, 512),
       kv=st.integers(100, 200_000), model=st.sampled_from(["deepseek_v3", "deepseek_v3_2", "deepseek_v4_flash"]))
def test_more_batch_or_context_is_never_faster(gpu, ep, batch, kv, model):
    r = predict("decode", gpu, model, ep=ep, batch=np.array([batch, batch + 1]), kv_len=np.array([[kv], [kv * 2]]))
    tpot = np.asarray(r["tpot_ms"])
    assert np.all(np.diff(tpot, axis=1) >= -1e-9) and np.all(np.diff(tpot, axis=0) >= -1e-9)


@settings(max_examples=30, deadline=None)
@given(gpu=st.sampled_from(GPUS), scale=st.floats(1.05, 4), ep=st.sampled_from([8, 32, 64]),
       phase=st.sampled_from(["decode", "prefill"]))
def test_more_bandwidth_or_a_larger_nvlink_domain_is_never_slower(gpu, scale, ep, phase):
    g = load_catalog().gpu(gpu)
    opts = dict(ep=ep, batch=64, kv_len=4096) if phase == "decode" else dict(ep=ep, tokens_per_gpu=8192, prompt_len=4096)
    key = "tokens_per_s_per_gpu"  # the chain's speed, whether or not the batch fits (a result shows null then)
    base = quantities(phase, g, **opts)[key]
    for field in ("mem_bw", "nvlink_bw", "pcie_bw"):
        faster = quantities(phase, g.with_fields(**{field: getattr(g, field) * scale}), **opts)[key]
        assert faster >= base * (1 - 1e-12), field
    wider = quantities(phase, g.with_fields(scaleup=g.scaleup * 2), **opts)[key]
    assert wider >= base * (1 - 1e-12)


@settings(max_examples=40, deadline=None)
@given(gpu=st.sampled_from(GPUS), ep=st.sampled_from([8, 16, 32]), tokens=st.sampled_from([512, 4096, 16384]),
       prompt=st.integers(100, 2_000_000))
def test_prefill_fits_only_when_the_prompts_kv_fits(gpu, ep, tokens, prompt):
    from dsxl.refined.predict import quantities
    q = quantities("prefill", gpu, ep=ep, tokens_per_gpu=tokens, prompt_len=prompt)
    need = q["weights_gb"] + q["activation_gb"] + q["kv_forward_gb"]
    assert q["usable_gb"] == pytest.approx(q["mem"] * 2 ** 30 / 1e9 * q["mem_util"])  # HBM is quoted in GiB
    assert bool(q["fits"]) == (need <= q["usable_gb"] + 1e-9)
    assert q["resident_tokens"] >= prompt  # the whole prompt's KV is held while it is built


def test_read_only_folders_are_refused_even_for_root(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        p = _cli("report", "--format", "csv", "-o", str(folder))
        assert p.returncode == 2 and "read-only" in p.stderr and not list(folder.iterdir())
    finally:
        folder.chmod(0o755)


def test_names_are_echoed_as_the_catalog_spells_them():
    r = predict("decode", "h800", "DEEPSEEK_V3_2", ep=8, batch=8, kv_len=100)
    assert r["inputs"]["gpu"] == "H800" and r["inputs"]["model"] == "deepseek_v3_2"


@pytest.mark.parametrize("args, words", [
    (["plan", "--gpu", "H200", "--input-lenn", "5"], "did you mean --input-len?"),
    (["predict", "aggregated", "--gpu", "H200", "--ep", "8", "--batch", "8", "--input-len", "100", "--output-len", "10",
      "--mode", "article"], "does not model aggregated serving"),
    (["predict", "decode", "--gpu", "H200", "--ep", "8", "--batch", "8", "--kv-len", "100", "--mtp-draft", "1",
      "--mtp-accept", "3"], "mtp_draft=1, mtp_accept=3"),
    (["predict", "decode", "--gpu", "H200", "--ep", "8", "--batch", "8", "--kv-len", "100", "--model", ""],
     "model must be a preset"),
])
def test_reported_reproducers_get_one_clear_line(args, words):
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True)
    assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_a_model_in_any_case_keeps_its_list_prices_and_its_name():
    from dsxl.planner.plan import plan
    r = plan(gpus="H200", model="DeepSeek_V4_Pro")
    assert r["inputs"]["model"] == "deepseek_v4_pro" and r["inputs"]["price_output"] is not None


def test_the_environment_failing_is_one_line_and_exit_1(tmp_path):
    p = subprocess.run(f"{sys.executable} -m dsxl.cli validate > /dev/full", shell=True, capture_output=True,
                       text=True)
    assert p.returncode == 1 and "No space left" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([sys.executable, "-m", "dsxl.cli", "build", "-o", str(tmp_path / ("x" * 300 + ".xlsx"))],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "name too long" in p.stderr and "Traceback" not in p.stderr


def test_tiny_and_huge_positive_inputs_are_refused_and_long_values_are_cut():
    for setting in ("tflops_share=5e-324", "mla_params_m=1e308"):
        p = subprocess.run([sys.executable, "-m", "dsxl.cli", "report", "--set", setting], capture_output=True,
                           text=True)
        assert p.returncode == 2 and setting.split("=")[0] in p.stderr and "Infinity" not in p.stdout
    with pytest.raises(ValueError) as err:
        u.PREDICT_DECODE("H800", 8, 1, 1, engine="y" * 100_000)
    assert len(str(err.value)) < 400 and "100,002 characters" in str(err.value)


def test_list_inputs_are_capped_before_any_work():
    many = ",".join(str(i) for i in range(1, 1001))
    for args in (["plan", "--gpu", "H200", "--ep-sizes", many], ["report", "--set", f"batch_sizes={many}"]):
        p = subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True)
        assert p.returncode == 2 and "at most 64 values; got 1,000" in p.stderr, p.stderr
