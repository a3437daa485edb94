"""Single figures the article quotes in its text, computed from the model."""

from __future__ import annotations

from typing import Any

from dsxl.data.catalog import ModelArgs
from dsxl.article.api import default_model, mla_absorb_flops, mla_flops
from dsxl.physics.flops import mla_absorb_params
from dataclasses import fields

from dsxl.chains.scope import MODEL_KEY
from dsxl.article.tables import WhatIf, evaluate

AVG_KV_LEN = 4989  # P + D/2 with P = 4383, D = 1210, as the article's text quotes it


def other_params(model: ModelArgs | None = None) -> tuple[float, float]:
    """Parameters outside MLA and experts (billions), and the same in GB as the article converts it.

    Exact counts give 3.149B; the article's 3.13B subtracts from its rounded 671.16B total.
    """
    ev = evaluate(WhatIf(model=_changed(model)))
    m = ev.values[MODEL_KEY]
    other = (m["total_params"] - m["mla_layers_params"] - m["expert_layers_params"]) / 1e9
    return other, other * (1000 / 1024) ** 3


def compute_figures(model: ModelArgs | None = None) -> list[dict[str, Any]]:
    m = model or default_model()
    std = mla_flops(1, 1, 0, m)
    absorbed = mla_absorb_flops(1, 1, 0, m)
    pre = mla_absorb_flops(AVG_KV_LEN, AVG_KV_LEN, 0, m)[0] / mla_flops(AVG_KV_LEN, AVG_KV_LEN, 0, m)[0]
    dec = mla_absorb_flops(1, AVG_KV_LEN, 1, m)[0] / mla_flops(1, AVG_KV_LEN, 1, m)[0]
    kv = (m.kv_lora_rank + m.qk_rope_head_dim) * m.n_layers / 1024
    absorb_m = mla_absorb_params(m.dim, m.q_lora_rank, m.n_heads, m.qk_rope_head_dim, m.kv_lora_rank) / 1e6
    other_b, other_gb = other_params(m)
    return [
        {"id": "mla_flops_1_1", "values": list(std)},
        {"id": "mla_absorb_flops_1_1", "values": list(absorbed)},
        {"id": "absorb_ratio_1_1", "values": [absorbed[0] / std[0]]},
        {"id": "absorb_params_m", "values": [absorb_m]},
        {"id": "absorb_ratio_prefill", "values": [pre]},
        {"id": "absorb_ratio_decode", "values": [dec]},
        {"id": "kv_bytes_per_token_kb", "values": [2 * kv, kv]},
        {"id": "other_params", "values": [other_b, other_gb]},
    ]


def _changed(model: ModelArgs | None) -> dict[str, Any]:
    if model is None:
        return {}
    base = default_model()
    return {f.name: getattr(model, f.name) for f in fields(model) if getattr(model, f.name) != getattr(base, f.name)}
