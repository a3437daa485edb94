"""Front door for checking the models against published deployments (``templates/measurements.csv``).

``validate()`` predicts every measurement with the refined and the article model under the measurement's
own conditions; ``ablate()`` switches each refinement off in turn and shows how the prediction moves.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .config import read_template_text
from .predict import predict
from .validate import parse_optional_number

_NUMERIC = ("ep", "attn_tp", "batch", "kv_len", "tokens_per_gpu", "prompt_len", "cache_hit", "tbo", "mtp_draft",
            "mtp_accept", "redundant_experts", "imbalance", "tokens_per_s_per_user", "measured", "measured_per_node")


@dataclass(frozen=True)
class Measurement:
    id: str
    role: str  # calibration (held to +-10 %) or sanity (shown, conditions partly unstated)
    phase: str
    metric: str
    gpu: str
    model: str
    ep: Any
    attn_tp: Any
    batch: Any
    kv_len: Any
    tokens_per_gpu: Any
    prompt_len: Any
    cache_hit: Any
    tbo: Any
    mtp_draft: Any
    mtp_accept: Any
    redundant_experts: Any
    imbalance: Any
    tokens_per_s_per_user: Any
    measured: float
    measured_per_node: Any
    assumed: str
    source: str

    def options(self) -> dict[str, Any]:
        """The measurement's conditions as predict() options (unstated ones left to the defaults)."""
        names = {"decode": ("ep", "attn_tp", "batch", "kv_len", "tbo", "mtp_draft", "mtp_accept", "redundant_experts",
                            "imbalance"),
                 "prefill": ("ep", "attn_tp", "tokens_per_gpu", "prompt_len", "cache_hit", "tbo",
                             "redundant_experts", "imbalance")}[self.phase]
        out = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        if "tbo" in out:
            out["tbo"] = bool(out["tbo"])
        return out


def load_measurements() -> list[Measurement]:
    rows = csv.DictReader(read_template_text("measurements.csv").splitlines())
    names = [f.name for f in fields(Measurement)]
    return [Measurement(**{k: (parse_optional_number(f"measurements.csv {r['id']}.{k}", r[k]) if k in _NUMERIC
                               else r[k]) for k in names}) for r in rows]


def _batch_at_user_speed(m: Measurement, mode: str, **kw: Any) -> int:
    """A decode measurement that states per-user speed but not the batch: the fitting batch whose predicted
    tokens/s per user is closest to the measured one."""
    batches = np.arange(1, 2049)
    opts = {k: v for k, v in m.options().items() if k != "batch"}
    r = predict("decode", m.gpu, m.model, mode=mode, batch=batches, **opts, **kw)
    gap = np.abs(np.asarray(r["tokens_per_s_per_user"]) - m.tokens_per_s_per_user)
    gap = np.where(np.asarray(r["fits"]), gap, np.inf)
    return int(batches[int(np.argmin(gap))])


def predict_measurement(m: Measurement, mode: str = "refined", **kw: Any) -> tuple[float, dict[str, Any]]:
    """(predicted value of the measured metric, the options used)."""
    opts = m.options()
    if m.phase == "decode" and m.batch is None:
        opts["batch"] = _batch_at_user_speed(m, mode, **kw)
    r = predict(m.phase, m.gpu, m.model, mode=mode, **opts, **kw)
    return float(r["tokens_per_s_per_gpu"]), opts


def relative_error(predicted: Any, measured: Any) -> Any:
    """predicted / measured - 1 (positive: the model is optimistic)."""
    return predicted / measured - 1


def validate(constants: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per measurement: measured, refined, article, refined error (refined / measured - 1)."""
    out = []
    for m in load_measurements():
        refined, opts = predict_measurement(m, "refined", constants=constants)
        article, article_opts = predict_measurement(m, "article")
        out.append({"id": m.id, "role": m.role, "phase": m.phase, "gpu": m.gpu, "model": m.model, "metric": m.metric,
                    "measured": m.measured, "refined": refined, "article": article,
                    "error": relative_error(refined, m.measured), "article_error": relative_error(article, m.measured),
                    "conditions": opts, "article_conditions": article_opts, "assumed": m.assumed, "source": m.source})
    return out


# Each refinement switched off: pinned chain quantities, changed constants, changed options.
ABLATIONS: dict[str, dict[str, Any]] = {
    "kernel_efficiency": {"doc": "datasheet peaks instead of measured kernel efficiencies",
                          "constants": {n: 1.0 for n in ("gemm_flops_eff", "grouped_masked_flops_eff", "gemm_bw_eff",
                                                         "attn_flops_eff", "attn_bw_eff", "sparse_attn_flops_eff",
                                                         "prefill_attn_flops_eff")}},
    "weight_reads": {"doc": "GEMMs without their weight reads (compute-only)",
                     "fixed": {n: 0 for n in ("attn_proj_gb", "routed_gb", "shared_gb", "dense_gb", "lm_head_gb")}},
    "kv_reads": {"doc": "attention without its KV (and indexer-key) reads", "fixed": {"kv_read_gb": 0, "index_read_gb": 0}},
    "launch_latency": {"doc": "no fixed per-kernel time", "constants": {"kernel_latency_us": 0}},
    "elementwise": {"doc": "no elementwise activation traffic",
                    "fixed": {"attn_act_ms": 0, "moe_act_ms": 0, "dense_act_ms": 0}},
    "all_to_all": {"doc": "free dispatch and combine", "fixed": {"dispatch_ms": 0, "combine_ms": 0}},
    "comm_sm": {"doc": "prefill all-to-all holds no SMs", "fixed": {"sm_share": 1}},
    "two_batch_overlap": {"doc": "TBO off (one micro-batch, everything serial)", "options": {"tbo": False}},
    "step_terms": {"doc": "no LM head and no per-step overhead",
                   "fixed": {"lm_head_ms": 0}, "constants": {"step_overhead_ms": 0}},
}


def ablate() -> list[dict[str, Any]]:
    """Per measurement: the full refined prediction and, per refinement switched off, the prediction and its
    change relative to the full model."""
    out = []
    for m in load_measurements():
        full, opts = predict_measurement(m)
        row: dict[str, Any] = {"id": m.id, "measured": m.measured, "refined": full, "ablations": {}}
        for name, spec in ABLATIONS.items():
            o = {**opts, **spec.get("options", {})}
            r = predict(m.phase, m.gpu, m.model, constants=spec.get("constants"), fixed=spec.get("fixed"), **o)
            value = float(r["tokens_per_s_per_gpu"])
            row["ablations"][name] = {"value": value, "change": value / full - 1}
        out.append(row)
    return out
