"""A breakdown adds up (issue 37, item 5): every per-layer and per-step block sums to the total it explains, with
overlap, a calibration's scale and the engine's overhead as named lines, and the attention kernel named from the
GPU's own kernel data."""

import pytest

from dsxl.refined.predict import predict

DECODE = dict(ep=16, batch=64, kv_len=4096)
PREFILL = dict(ep=16, tokens_per_gpu=8192, prompt_len=4096)
CASES = [
    ("decode", "GB300", "deepseek_v4_pro", dict(DECODE, tbo=False)),  # the reproducer
    ("decode", "GB300", "deepseek_v4_pro", dict(DECODE, tbo=True)),
    ("decode", "H200", None, dict(DECODE, tbo=True, mtp_draft=2, mtp_accept=2.4)),
    ("decode", "H200", None, dict(DECODE, sbo=True, tbo=False)),
    ("decode", "H20", "deepseek_v3_2", dict(DECODE, attn_tp=4, moe_tp=2, batch=32)),
    ("decode", "MI355X", None, dict(ep=8, batch=128, kv_len=8192)),
    ("decode", "H200", None, dict(DECODE, constants={"decode_time_scale": 0.8})),
    ("prefill", "H200", None, dict(PREFILL, tbo=True)),
    ("prefill", "B200", "kimi_k2", dict(PREFILL, tbo=False)),
    ("prefill", "MI300X", None, dict(PREFILL, ep=8, constants={"prefill_time_scale": 1.3})),
]


@pytest.mark.parametrize("phase, gpu, model, opts", CASES)
def test_every_breakdown_block_sums_to_what_it_explains(phase, gpu, model, opts):
    r = predict(phase, gpu, model, **opts)
    b = r["breakdown"]
    assert sum(b["per_layer_ms"].values()) == pytest.approx(b["layer_ms"]["moe_layer"], rel=1e-9, abs=1e-12)
    assert sum(b["dense_layer_parts_ms"].values()) == pytest.approx(b["layer_ms"]["dense_layer"], rel=1e-9)
    terms = {k: v for k, v in b["step_ms"].items() if k != "step"}
    assert sum(terms.values()) == pytest.approx(b["step_ms"]["step"], rel=1e-9)
    assert b["step_ms"]["step"] == pytest.approx(r["step_ms"], rel=1e-12)
    assert terms["moe_layers"] == pytest.approx(b["layers"]["moe"] * b["layer_ms"]["moe_layer"], rel=1e-12)
    assert terms["dense_layers"] == pytest.approx(b["layers"]["dense"] * b["layer_ms"]["dense_layer"], rel=1e-12)
    assert {"overlap", "dispatch", "combine"} <= set(b["per_layer_ms"])
    assert {"engine_overhead", "calibration", "mtp"} <= set(terms)


def test_overlap_is_zero_when_nothing_overlaps_and_names_what_is_hidden_otherwise():
    off = predict("decode", "H200", ep=16, batch=64, kv_len=4096, tbo=False)["breakdown"]["per_layer_ms"]
    assert off["overlap"] == pytest.approx(0, abs=1e-12)
    sbo = predict("decode", "H200", ep=16, batch=64, kv_len=4096, tbo=False, sbo=True)["breakdown"]["per_layer_ms"]
    assert -sbo["combine"] <= sbo["overlap"] < 0  # SBO hides at most the combine


def test_the_calibration_scale_is_its_own_line():
    """0.8 of the GPU's work: the line is -0.2 x (layers + LM head + MTP); uncalibrated it is 0."""
    b = predict("decode", "H200", ep=16, batch=64, kv_len=4096, constants={"decode_time_scale": 0.8})["breakdown"]
    s = b["step_ms"]
    assert s["calibration"] == pytest.approx(-0.2 * (s["moe_layers"] + s["dense_layers"] + s["lm_head"] + s["mtp"]))
    assert predict("decode", "H200", ep=16, batch=64, kv_len=4096)["breakdown"]["step_ms"]["calibration"] == 0


@pytest.mark.parametrize("gpu, kernel", [("H200", "FlashMLA"), ("B200", "FlashMLA"), ("MI300X", "aiter MLA"),
                                         ("MI355X", "aiter MLA")])
def test_the_attention_kernel_is_named_from_the_gpus_kernel_data(gpu, kernel):
    assert predict("prefill", gpu, ep=8, tokens_per_gpu=8192, prompt_len=4096)["breakdown"]["attention_kernel"] == kernel
