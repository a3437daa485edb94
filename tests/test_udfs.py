"""UDFs called directly (xlwings decorators are no-ops on Linux), fuzzed, and registered as Excel sees them."""

import importlib
import inspect
import math
import sys
import types

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
        assert "required positional argument" in str(exc)
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
        fresh = types.FunctionType(plain.__code__, plain.__globals__, name, plain.__defaults__)
        fresh.__doc__ = plain.__doc__
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
