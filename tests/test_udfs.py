"""UDFs called directly (xlwings decorators are no-ops on Linux), fuzzed, and registered as Excel sees them."""

import functools
import importlib
import inspect
import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsxl.udfs as u
from dsxl import load_catalog
from dsxl.article.api import decode_breakdown, max_batch_size, mla_absorb_flops, mla_flops
from dsxl.article.tables import compute_tables

CAT = load_catalog()


def test_udfs_match_the_article_tables():
    t = compute_tables()
    totals = t["decode_totals"]
    for j, (gpu, bs) in enumerate([(g, b) for g in ("H800", "H20", "H20_3e") for b in (32, 64, 128, 256)]):
        assert u.DECODE_TPOT(gpu, bs) == totals.iat[8, j]
        assert u.DECODE_TPOT(gpu, float(bs), overlap=False) == totals.iat[9, j]
        assert u.DECODE_TPS(gpu, bs, per="gpu") == pytest.approx(totals.iat[12, j], rel=1e-12)
    assert u.MAX_BATCH("H800", 1, 2, absorb=False) == math.floor(t["decode_max_batch_tp1"].loc["H800_FP8"].iat[0])
    assert u.MAX_BATCH("H800", 1, 2) == math.floor(t["decode_max_batch_tp1"].loc["H800_FP8_Absorb"].iat[0])
    assert u.PREFILL_TPS("H800") == t["prefill_tps_tp4"].iat[0, 0]
    assert u.PREFILL_MS("H20", "sum", 8) == t["prefill_sum_tp8"].iat[1, 1]
    assert u.DSXL_TABLE("tldr_prefill")[1][1] == t["tldr_prefill"].iat[0, 0]
    assert u.MLA_FLOPS(1, 1) == 0.37429248000000004
    assert u.MLA_FLOPS(1, 1, 0, True, "gemm") == mla_absorb_flops(1, 1, 0)[1]
    assert u.KV_BYTES_PER_TOKEN(True) == 2 * 576 * 61
    assert u.TIME_BUDGET("H20_3e", 64) == pytest.approx(0.188, abs=5e-4)
    assert u.GPU_SPEC("b200", "mem_bw") == 8000 and "NVIDIA" in u.GPU_SPEC("H100_SXM", "source")


def test_udfs_equal_the_model_with_their_arguments():
    g = CAT.gpu("H20")
    assert u.DECODE_TPOT("h20", 100, 6000, 8) == decode_breakdown(g, 100, mla_tp=8, seq_len=6000)["tpot_overlap_ms"]
    assert u.MAX_BATCH("H20", 4, 5, 8000, 500, False, True) == math.floor(
        max_batch_size(g, 4, 5, False, True, seq_len=8000, decode_len=500)["max_batch"])
    assert u.DECODE_LAYER_MS("H800", 64, "dispatch") == decode_breakdown(CAT.gpu("H800"), 64)["dispatch_ms"]
    assert u.DECODE_LAYER_MS("H800", 64, "mla_tp1", absorb=False) == \
        decode_breakdown(CAT.gpu("H800"), 64, absorb=False)["mla_tp1_ms"]
    assert u.MLA_FLOPS(10, 20, 0.5, "FALSE", "attn") == mla_flops(10, 20, 0.5)[2]


def test_a_planners_hardware_row_is_used_as_is():
    header = ["name", "kind", "sm", "comm_sm", "fp16_flops", "fp8_flops", "fp4_flops", "mem", "mem_bw", "nvlink_bw",
              "pcie_bw", "mla_tp_alt", "source"]
    h800 = CAT.gpu("H800")
    row = ["H800", "datasheet", 132, 24, 989.5, 1800.0, None, 80, 3350, 200, 50, 4, "edited"]
    assert u.DECODE_TPOT([header, row], 64) == decode_breakdown(h800.with_fields(fp8_flops=1800.0), 64)["tpot_overlap_ms"]
    assert u.DECODE_TPOT([header, row[:5] + [1979] + row[6:]], 64) == u.DECODE_TPOT("H800", 64)


def test_ranges_broadcast_to_the_result_shape():
    col = u.DECODE_TPOT("H800", [[32.0], [64.0], [128.0]])
    assert [r[0] for r in col] == [u.DECODE_TPOT("H800", b) for b in (32, 64, 128)]
    grid = u.MAX_BATCH("H20", [[1.0], [4.0]], [[2.0, 3.0, 5.0]])
    assert np.shape(grid) == (2, 3) and grid[1][2] == u.MAX_BATCH("H20", 4, 5)


def test_blanks_take_defaults_and_booleans_come_in_many_forms():
    assert u.DECODE_TPOT("H800", 64, None, None, None) == u.DECODE_TPOT("H800", 64)
    assert u.DECODE_TPOT("H800", 64, "", "auto", "FALSE") == u.DECODE_TPOT("H800", 64, overlap=0)
    assert u.MAX_BATCH("H800", 1.0, 3.0, None, None, 1.0, 0.0) == u.MAX_BATCH("H800")


@pytest.mark.parametrize("call, argname", [
    (lambda: u.DECODE_TPOT("H900", 32), "gpu"),
    (lambda: u.DECODE_TPOT("H800", "32x"), "batch_size"),
    (lambda: u.DECODE_TPOT("H800", 0), "batch_size"),
    (lambda: u.DECODE_TPOT("H800", 32, mla_tp=2), "mla_tp"),
    (lambda: u.DECODE_TPOT("H800", None), "batch_size"),
    (lambda: u.MAX_BATCH("H800", tp=-1), "tp"),
    (lambda: u.MLA_FLOPS(1, 1, 2), "kv_cache_rate"),
    (lambda: u.MLA_FLOPS(1, 1, absorb="maybe"), "absorb"),
    (lambda: u.GPU_SPEC("H800", "colour"), "field"),
    (lambda: u.DSXL_TABLE("nope"), "table_id"),
    (lambda: u.DECODE_TPOT([["sm"], [1]], 32), "gpu"),
])
def test_errors_name_the_argument(call, argname):
    with pytest.raises(ValueError, match=argname):
        call()


junk = st.one_of(st.none(), st.text(max_size=6), st.floats(allow_nan=True, allow_infinity=True),
                 st.integers(-10**12, 10**12), st.booleans(), st.just([]), st.just([[1.0, "x"]]),
                 st.lists(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3), min_size=1, max_size=3),
                 st.sampled_from(["H800", "h20", "B200", "unknown", "auto", "TRUE", "gpu", "sum"]))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from([n for n, *_ in u.UDF_CATALOG]), args=st.lists(junk, max_size=7))
def test_fuzz_every_udf_gives_a_value_or_a_clear_error(name, args):
    fn = getattr(u, name)
    n_params = len(inspect.signature(fn).parameters)
    try:
        out = fn(*args[:n_params])
    except ValueError as exc:
        assert str(exc)
    except TypeError as exc:  # too few arguments for the required ones: Excel's own #VALUE!
        assert "required" in str(exc)
    else:
        assert out is not None


@pytest.fixture
def real_xlwings_decorators(monkeypatch):
    """xlwings' classic decorators, importable on Linux with the Windows-only modules stubbed."""
    from unittest import mock
    for mod in ("pythoncom", "pywintypes", "win32com", "win32com.client"):
        monkeypatch.setitem(sys.modules, mod, mock.MagicMock(name=mod))
    monkeypatch.delitem(sys.modules, "xlwings.udfs", raising=False)
    return importlib.import_module("xlwings.udfs")


def test_every_udf_registers_as_excel_sees_it(real_xlwings_decorators):
    xu = real_xlwings_decorators
    assert len(u.UDF_CATALOG) >= 12
    for name, signature, example, doc in u.UDF_CATALOG:
        plain = getattr(u, name)
        fresh = functools.wraps(plain)(lambda *a, plain=plain: plain(*a))  # read through __wrapped__, as shipped
        decorated = u.decorate(fresh, xu.xlfunc, xu.xlarg)
        meta = decorated.__xlfunc__
        assert meta["name"] == name and meta["category"] == "dsxl" and not meta["volatile"]
        params = inspect.signature(plain).parameters
        assert [a["name"] for a in meta["args"]] == list(params)
        for a in meta["args"]:
            default = params[a["name"]].default
            assert (a.get("optional", inspect.Parameter.empty) == default) or default is inspect.Parameter.empty
            assert not a["doc"].startswith("Positional argument"), (name, a["name"])
            assert "convert" not in a["options"]  # no hints: the UDF does its own conversion
        assert meta["ret"]["doc"].strip().startswith(doc)
        assert signature.startswith(name + "(") and example.startswith("=" + name + "(")


def test_required_signatures_are_kept():
    sig = lambda f: str(inspect.signature(f))  # noqa: E731
    assert sig(u.MLA_FLOPS) == "(q_len, kv_len, kv_cache_rate=0, absorb=False, part='total')"
    assert sig(u.DECODE_TPOT) == "(gpu, batch_size, seq_len=4383, mla_tp='auto', overlap=True)"
    assert sig(u.MAX_BATCH) == ("(gpu, tp=1, experts_per_gpu=3, seq_len=4383, decode_len=1210, absorb=True, "
                                "kv_fp16=False)")


def test_predict_udfs_equal_the_front_door():
    from dsxl.refined.predict import predict
    d = predict("decode", "H800", ep=128, batch=128, kv_len=4096)
    assert u.PREDICT_DECODE("H800", 128, 128, 4096) == d["tpot_ms"]
    assert u.PREDICT_DECODE("H800", 128, 128, 4096, "tokens_per_s_per_gpu") == d["tokens_per_s_per_gpu"]
    assert u.PREDICT_DECODE("H800", 128, 128, 4096, "fits") is True
    k = predict("decode", "H200", "kimi_k2", ep=32, batch=16, kv_len=2000, tbo=False, kv_dtype="bf16")
    assert u.PREDICT_DECODE("H200", 32, 16, 2000, "max_batch", None, False, None, None, None, "BF16", None, None, None,
                            "kimi_k2") == k["max_batch"]
    p = predict("prefill", "H800", ep=32, tokens_per_gpu=16384, prompt_len=4096, cache_hit=0.5)
    assert u.PREDICT_PREFILL("H800", 32, 16384, 4096, "ttft_ms", None, None, 0.5) == p["ttft_ms"]
    # the new deployment options: wide EP with auto redundant experts, MoE TP, an engine, the error band
    w = predict("decode", "H100_SXM", ep=72, batch=256, kv_len=2000)
    assert u.PREDICT_DECODE("H100_SXM", 72, 256, 2000, "tokens_per_s_per_gpu") == w["tokens_per_s_per_gpu"]
    t = predict("decode", "B200", ep=2, moe_tp=4, attn_tp=8, batch=1, kv_len=2000, engine="trtllm")
    assert u.PREDICT_DECODE("B200", 2, 1, 2000, "tokens_per_s_per_user", 8, *[None] * 9, 4, "trtllm") == \
        t["tokens_per_s_per_user"]
    assert u.PREDICT_DECODE("H800", 128, 128, 4096, "band") == d["accuracy"]["band"]
    col = u.PREDICT_DECODE("H800", 128, [[32.0], [64.0]], 4096, "tokens_per_s_per_gpu")
    assert [r[0] for r in col] == [predict("decode", "H800", ep=128, batch=b, kv_len=4096)["tokens_per_s_per_gpu"]
                                   for b in (32, 64)]


@pytest.mark.parametrize("call, name", [
    (lambda: u.PREDICT_DECODE("H800", 0, 128, 4096), "ep"),
    (lambda: u.PREDICT_DECODE("H800", 7, 128, 4096, *[None] * 9, 0), "redundant_experts"),
    (lambda: u.PREDICT_DECODE("H800", 8, 128, 4096, *[None] * 11, 3), "moe_tp"),
    (lambda: u.PREDICT_DECODE("H800", 8, 128, 4096, *[None] * 12, "tgi"), "engine"),
    (lambda: u.PREDICT_DECODE("H800", 128, 128, 4096, "speed"), "what"),
    (lambda: u.PREDICT_DECODE("H800", 128, "many", 4096), "batch"),
    (lambda: u.PREDICT_DECODE("H800", 128, 128, 4096, None, None, None, None, None, None, None, "int4"), "moe_dtype"),
    (lambda: u.PREDICT_PREFILL("H800", 32, 16384, None), "prompt_len"),
])
def test_predict_udf_errors_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_predict_udfs_over_ranges_keep_booleans_and_fail_only_the_bad_cell():
    from dsxl.refined.predict import predict
    fits = u.PREDICT_DECODE("H800", 128, [[64.0], [2000.0]], 4096, "fits")
    assert fits == [[True], [False]] and all(isinstance(c[0], bool) for c in fits)
    out = u.PREDICT_DECODE("H800", [[3.0], [128.0]], 128, 4096, "tokens_per_s_per_gpu", *[None] * 8, 0)
    assert isinstance(out[0][0], str) and out[0][0].startswith("#VALUE!") and "ep=3" in out[0][0]
    assert "[[" not in out[0][0] and "array" not in out[0][0]  # the value, not a numpy repr
    assert out[1][0] == predict("decode", "H800", ep=128, batch=128, kv_len=4096,
                                redundant_experts=0)["tokens_per_s_per_gpu"]


@pytest.mark.parametrize("call, column", [
    (lambda col: u.DECODE_TPOT("H800", col), "batch"), (lambda col: u.DECODE_TPS("H20", col, None, None, None, "gpu"),
                                                        "batch"),
    (lambda col: u.DECODE_LAYER_MS("H20", col, "dispatch"), "batch"), (lambda col: u.TIME_BUDGET("H800", col), "batch"),
    (lambda col: u.MAX_BATCH("H20", 4, col), "experts"), (lambda col: u.MLA_FLOPS(1, col), "tokens"),
    (lambda col: u.DENSE_MLP_FLOPS(col), "tokens"), (lambda col: u.EXPERT_FLOPS(col), "tokens"),
])
def test_article_udfs_over_a_range_fail_only_the_bad_cell(call, column):
    good = {"batch": 64.0, "experts": 3.0, "tokens": 4096.0}[column]
    out = call([[good], ["x"], [-5.0], [good * 2]])
    alone = [call([[good]])[0][0], call([[good * 2]])[0][0]]
    assert [out[0][0], out[3][0]] == alone and all(isinstance(v, float) for v in alone)
    assert all(isinstance(out[i][0], str) and out[i][0].startswith("#VALUE! ") for i in (1, 2))
    assert "'x'" in out[1][0] and "-5" in out[2][0]


def test_an_argument_wrong_for_every_cell_fails_the_whole_call():
    with pytest.raises(ValueError, match="gpu must be one of"):
        u.DECODE_TPOT("H9000", [[64.0], [128.0]])


def test_the_band_is_per_cell_in_the_udf_and_per_case_in_python():
    from dsxl.refined.predict import predict
    batches = [1.0, 64.0, 5000.0]
    alone = [predict("decode", "H800", ep=8, batch=b, kv_len=4096)["accuracy"]["band"] for b in batches]
    assert len(set(alone)) == 3  # min-latency, inside the rows' batch span, far beyond it
    assert u.PREDICT_DECODE("H800", 8, [[b] for b in batches], 4096, "band") == [[b] for b in alone]
    acc = predict("decode", "H800", ep=8, batch=np.array(batches), kv_len=4096)["accuracy"]
    assert acc["bands"].tolist() == alone and acc["band"] == max(alone)


@pytest.mark.parametrize("model", list(load_catalog().models))
def test_udf_defaults_are_the_cli_defaults_for_every_model(model):
    """An argument left out of a UDF takes the default the CLI and Python take (the model's own expert dtype, the
    engine's overlap), so the same question gives the same number everywhere."""
    from dsxl.refined.predict import predict
    udf = u.PREDICT_DECODE("H200", 16, 64, 4096, "tokens_per_s_per_gpu", model=model)
    py = predict("decode", "H200", model, ep=16, batch=64, kv_len=4096)["tokens_per_s_per_gpu"]
    assert udf == pytest.approx(py, rel=1e-12) if py is not None else udf == "does not fit"
    pre = u.PREDICT_PREFILL("H200", 16, 8192, 4096, model=model)
    assert pre == pytest.approx(predict("prefill", "H200", model, ep=16, tokens_per_gpu=8192,
                                        prompt_len=4096)["tokens_per_s_per_gpu"], rel=1e-12)


# Two good values and one bad value for every UDF argument (base: the first good value of each, or the default).
WALK_VALUES = {
    "gpu": ("H800", "H20", "H1"), "batch_size": (64, 128, 0), "seq_len": (4000, 6000, -1), "mla_tp": (1, 8, 3),
    "overlap": (True, False, "maybe"), "absorb": (True, False, "maybe"), "per": ("user", "gpu", "node"),
    "q_len": (1, 100, -1), "kv_len": (1, 4096, -1), "kv_cache_rate": (0, 0.5, 2), "experts_per_gpu": (3, 9, -1),
    "decode_len": (1210, 2000, -5), "kv_fp16": (False, True, 2), "tokens": (1, 8, -1), "field": ("mem_bw", "sm", "x"),
    "ep": (128, 256, 0), "batch": (64, 128, 0), "what": (None, "step_ms", "speed"), "attn_tp": (1, 2, 3),
    "tbo": (True, False, "maybe"), "mtp_draft": (1, 2, -1), "mtp_accept": (1, 1.5, 9),
    "attn_dtype": ("fp8", "bf16", "fp6"),
    "kv_dtype": ("fp8", "bf16", "fp6"), "moe_dtype": ("fp8", "fp4", "fp6"), "imbalance": (1, 1.2, 0.5),
    "redundant_experts": (0, 128, 32), "model": ("deepseek_v3", "kimi_k2", "gpt"), "moe_tp": (1, 2, 3),
    "engine": ("sglang", "vllm", "tgi"), "calibration": ("", None, "/nonexistent/profile.json"),
    "tokens_per_gpu": (8192, 16384, 0), "prompt_len": (4096, 2048, 0), "cache_hit": (0, 0.5, 2),
}
WALK_SPECIAL = {("MLA_FLOPS", "part"): ("total", "gemm", "all"),
                ("DECODE_LAYER_MS", "part"): ("dispatch", "combine", "x"),
                ("PREFILL_MS", "part"): ("tp_mla", "sum", "x"), ("PREFILL_MS", "tp"): (4, 8, 3),
                ("PREFILL_TPS", "tp"): (4, 8, 3), ("MAX_BATCH", "tp"): (1, 4, 0),
                ("PREDICT_PREFILL", "redundant_experts"): (0, 32, 16)}
WALK_BASE = {"PREDICT_PREFILL": {"ep": 32}, ("PREDICT_DECODE", "mtp_accept"): {"mtp_draft": 1}}


def _walk_cases():
    for name, *_ in u.UDF_CATALOG:
        if name == "DSXL_TABLE":  # a table per call: a range is refused (test below)
            continue
        for arg in inspect.signature(getattr(u, name)).parameters:
            yield name, arg


def _walk_args(name, arg, value):
    params = inspect.signature(getattr(u, name)).parameters
    args = {}
    for p in params.values():
        base = WALK_SPECIAL[(name, p.name)][0] if (name, p.name) in WALK_SPECIAL else WALK_VALUES[p.name][0]
        args[p.name] = base if p.default is inspect.Parameter.empty or p.name in ("gpu", "part", "field") \
            else p.default
    return args | WALK_BASE.get(name, {}) | WALK_BASE.get((name, arg), {}) | {arg: value}


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9)
    return a == b


@pytest.mark.parametrize("name, arg", list(_walk_cases()))
def test_every_udf_takes_a_2x2_range_of_each_argument_cell_by_cell(name, arg):
    """An all-good 2x2 range gives each cell's own single-cell answer (issue 37, item 6); one bad cell shows its
    message in that cell only, and the others keep their values."""
    good, other, bad = WALK_SPECIAL[(name, arg)] if (name, arg) in WALK_SPECIAL else WALK_VALUES[arg]
    fn = getattr(u, name)
    singles = {v: fn(**_walk_args(name, arg, v)) for v in (good, other)}
    grid = fn(**_walk_args(name, arg, [[good, other], [other, good]]))
    assert np.shape(grid) == (2, 2), (name, arg, grid)
    for row, values in zip(grid, ([good, other], [other, good])):
        for cell, v in zip(row, values):
            assert _same(cell, singles[v]), (name, arg, v, cell, singles[v])
    with pytest.raises(ValueError):
        fn(**_walk_args(name, arg, bad))
    mixed = fn(**_walk_args(name, arg, [[good, bad], [other, good]]))
    assert isinstance(mixed[0][1], str) and mixed[0][1].startswith("#VALUE! "), (name, arg, mixed)
    for (i, j), v in {(0, 0): good, (1, 0): other, (1, 1): good}.items():
        assert _same(mixed[i][j], singles[v]), (name, arg, mixed)


def test_a_table_udf_refuses_a_range_in_one_line():
    with pytest.raises(ValueError, match="table_id takes a single cell"):
        u.DSXL_TABLE([["decode_totals", "tldr_prefill"]])


def test_a_cell_that_does_not_fit_says_so_in_a_range():
    """EP8 of DeepSeek-V3 on H800 does not fit alone; in a range its cell says so, and EP128 keeps its speed."""
    assert u.PREDICT_DECODE("H800", 8, 128, 4096, "tokens_per_s_per_gpu") == "does not fit"
    cells = u.PREDICT_DECODE("H800", [[8], [128]], 128, 4096, "tokens_per_s_per_gpu")
    assert cells == [["does not fit"], [u.PREDICT_DECODE("H800", 128, 128, 4096, "tokens_per_s_per_gpu")]]
