"""The model against an independent transcription of the article's model, hand checks, invariants and validation."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from dsxl import load_catalog
from dsxl.article.api import (decode_breakdown, decode_tpot_ms, max_batch_size, mla_absorb_flops, mla_flops, prefill_breakdown)
from dsxl.inputs.article_request import parse_sets
from dsxl.article.tables import compute_tables

CAT = load_catalog()
GPUS = ["H800", "H20", "H20_3e"]


def test_hand_check_h800_decode_bs32():
    # the article's formulas by hand: H800, decode, bs 32, absorbed MLA, comm_sm 0
    fp8, fp16 = 1583.2 * 0.85, 791.6 * 0.85
    gemm = (7168 * 1536 + 1536 * 128 * 64 + 128 * 1536 * 512) * 2 / 1e9  # kv_cache_rate 1: no wkv_a
    attn = (128 * (64 * 4383 + 512 * 4383 + 4383 * 512) + 128 * 512 * 7168) * 2 / 1e9
    tp1 = (gemm / fp8 + attn / fp16) * 32
    d = decode_breakdown(CAT.gpu("H800"), 32)
    assert d["mla_tp1_ms"] == pytest.approx(tp1, rel=1e-12)
    assert d["mla_tp"] == 1 and d["label"] == "H800(TP1)"
    assert d["load_kv_fp8_ms"] == pytest.approx(4383 * 576 * 32 / 2**30 / (3350 * 0.85) * 1000, rel=1e-12)
    assert d["dispatch_ms"] == pytest.approx(32 * 7168 * 8 / 2**20 / 42.5, rel=1e-12)


def test_hand_check_prefill_h800_tp4():
    p = prefill_breakdown(CAT.gpu("H800"), 4)
    assert p["dp"] == 8
    assert p["dispatch_ms"] == pytest.approx(3 * 2 * 4383 * 7168 / 2**20 / (42.5 * 8), rel=1e-12)
    assert p["tps_overlap_node"] == pytest.approx(8 * 4383 * 1000 / p["sum_overlap_ms"] / 4, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(seq_len=st.integers(100, 20000), rate=st.floats(0, 1), decode_len=st.integers(0, 5000),
       discount=st.floats(0.3, 1), fp8=st.floats(100, 5000), gpu=st.sampled_from(GPUS),
       bs=st.sampled_from([1, 8, 32, 100, 256]), tp=st.sampled_from([4, 8]))
def test_agrees_with_independent_reference(seq_len, rate, decode_len, discount, fp8, gpu, bs, tp):
    s = dict(ref.S, seq_len=seq_len, kv_cache_rate=rate, decode_len=decode_len, discount_rate=discount)
    g = dict(ref.GPUS[gpu], fp8=fp8)
    scen = CAT.scenario.__class__(**{**CAT.scenario.__dict__, "seq_len": seq_len, "kv_cache_rate": rate,
                                     "decode_len": decode_len, "discount_rate": discount})
    gpu_obj = CAT.gpu(gpu).with_fields(fp8_flops=fp8 / CAT.scenario.tflops_share)  # datasheet -> article view
    r = ref.prefill(g, tp, s)
    p = prefill_breakdown(gpu_obj, tp, scen)
    for ours, theirs in [("mla_tp1_ms", "tp1"), ("tp_mla_ms", "tpn"), ("sum_overlap_ms", "sum_overlap"),
                         ("sum_ms", "sum"), ("tps_node", "tps")]:
        assert ref.close(p[ours], r[theirs]), ours
    rd = ref.decode(g, bs, s, alt_tp=8 if gpu == "H20_3e" else 4)
    d = decode_breakdown(gpu_obj, bs, scen)
    assert d["mla_tp"] == rd["tp"]
    for ours, theirs in [("tpot_overlap_ms", "tpot_overlap"), ("tpot_ms", "tpot"), ("time_budget_ms", "budget")]:
        assert ref.close(d[ours], rd[theirs]), ours
    for e in (2, 3, 5, 9):
        assert ref.close(max_batch_size(gpu_obj, tp, e, True, False, scen)["max_batch"],
                         ref.max_batch(g, tp, e, True, False, s))


def test_set_whatif_matches_reference():
    w = parse_sets(["seq_len=6000", "kv_cache_rate=0.3", "decode_len=2000", "H20.pcie_bw=25", "tps_threshold=10"])
    t = compute_tables(w)
    s = dict(ref.S, seq_len=6000, kv_cache_rate=0.3, decode_len=2000)
    h20 = dict(ref.GPUS["H20"], pcie=25)
    assert ref.close(t["prefill_sum_tp4"].iat[1, 1], ref.prefill(h20, 4, s)["sum"])
    assert ref.close(t["decode_max_batch_tp4"].loc["H20_FP8_Absorb"].iat[0], ref.max_batch(h20, 4, 2, True, False, s))
    kept = t["decode_totals_sla"]
    expected = [(g, bs) for g in GPUS for bs in (32, 64, 128, 256)
                if ref.decode(dict(ref.GPUS[g], pcie=25 if g == "H20" else 50), bs, s,
                              alt_tp=8 if g == "H20_3e" else 4)["tps_overlap"] > 10]
    assert list(kept.loc["BatchSize"]) == [bs for _, bs in expected]
    # the network variants inherit H20's fields but keep their own pcie_bw
    assert ref.close(t["prefill_h20_network_sum"].iat[1, 0], ref.prefill(dict(h20, pcie=50), 4, s)["sum"])


def test_tpot_rises_with_batch():
    for g in GPUS:
        tpots = [decode_tpot_ms(CAT.gpu(g), bs) for bs in (1, 16, 32, 64, 128, 256, 512)]
        assert all(a < b for a, b in zip(tpots, tpots[1:])), g


def test_max_batch_falls_with_tp_and_sequence_length():
    for g in GPUS:
        by_tp = [max_batch_size(CAT.gpu(g), tp, 3)["max_batch"] for tp in (1, 2, 4, 8)]
        assert all(a > b for a, b in zip(by_tp, by_tp[1:])), g
        longer = CAT.scenario.__class__(**{**CAT.scenario.__dict__, "seq_len": 8000})
        assert max_batch_size(CAT.gpu(g), 1, 3, scenario=longer)["max_batch"] < max_batch_size(CAT.gpu(g), 1, 3)["max_batch"]


def test_absorbed_mla_wins_decode_and_loses_prefill():
    assert mla_absorb_flops(1, 4989, 1)[0] < mla_flops(1, 4989, 1)[0]
    assert mla_absorb_flops(4989, 4989, 0)[0] > mla_flops(4989, 4989, 0)[0]
    for g in ("H800", "H20"):
        assert (decode_breakdown(CAT.gpu(g), 64)["mla_tp1_ms"]
                < decode_breakdown(CAT.gpu(g), 64, absorb=False)["mla_tp1_ms"])


def test_more_network_bandwidth_never_hurts():
    slow = decode_breakdown(CAT.gpu("H20").with_fields(pcie_bw=12.5), 32)
    fast = decode_breakdown(CAT.gpu("H20"), 32)
    assert fast["tpot_ms"] < slow["tpot_ms"] and fast["time_budget_ms"] > slow["time_budget_ms"]


def test_vectorised_sweep_equals_scalar_loop():
    gpus = [CAT.gpu(g) for g in GPUS]
    bs = np.array([1, 7, 32, 200])[:, None]
    seq = np.array([1000.0, 4383.0, 9000.0])[:, None, None]
    from dsxl.article.api import gpu_env
    env = gpu_env(gpus)
    sweep = decode_breakdown(env, bs[None], seq_len=seq, labels=False)
    for k, s in enumerate(seq.ravel()):
        scen = CAT.scenario.__class__(**{**CAT.scenario.__dict__, "seq_len": s})
        for i, b in enumerate(bs.ravel()):
            for j, g in enumerate(gpus):
                one = decode_breakdown(g, int(b), scen)
                assert sweep["tpot_ms"][k, i, j] == pytest.approx(one["tpot_ms"], rel=1e-13)
                assert sweep["mla_tp"][k, i, j] == one["mla_tp"]


@pytest.mark.parametrize("call, name", [
    (lambda: mla_flops(-1, 1), "q_len"),
    (lambda: mla_flops(1, 1, 1.5), "kv_cache_rate"),
    (lambda: decode_breakdown(CAT.gpu("H800"), 0), "batch_size"),
    (lambda: decode_breakdown(CAT.gpu("H800"), 2.5), "batch_size"),
    (lambda: decode_breakdown(CAT.gpu("H800"), 32, mla_tp=3), "mla_tp"),
    (lambda: max_batch_size(CAT.gpu("H800"), tp=0), "tp"),
    (lambda: CAT.gpu("H800").with_fields(mem_bw=0), "mem_bw"),
    (lambda: CAT.gpu("H800").with_fields(comm_sm=200), "comm_sm"),
    (lambda: decode_breakdown(CAT.gpu("H800"), np.array([32, float("nan")])), "batch_size"),
    (lambda: parse_sets(["discount_rate=0"]), "discount_rate"),
    (lambda: parse_sets(["H800.nope=1"]), "nope"),
    (lambda: parse_sets(["dim=abc"]), "dim"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_core_imports_without_xlwings():
    code = "import sys; sys.modules['xlwings'] = None; import dsxl, dsxl.article.tables, dsxl.udfs; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
