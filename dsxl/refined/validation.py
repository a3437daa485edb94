"""Front door for checking the models against published deployments (``templates/measurements.csv``).

``validate()`` predicts every measurement with the refined and the article model under the measurement's
own conditions; ``ablate()`` switches each refinement off in turn and shows how the prediction moves.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from dsxl.data.catalog import load_catalog, load_fit, read_template_text
from dsxl.data.fingerprint import stale_fit_reason
from dsxl.article.predict import ARTICLE_OPTIONS
from dsxl.refined.calibrated import load_profile
from dsxl.refined.predict import predict
from dsxl.inputs.request import OPTION, options_for
from dsxl.core.rules import POSITIVE, check, choose, parse_number, show

_TEXT = ("id", "role", "phase", "metric", "gpu", "model", "engine", "attn_dtype", "kv_dtype", "moe_dtype", "assumed",
         "source")


@dataclass(frozen=True)
class Measurement:
    """One published end-to-end measurement with every condition it states (``templates/measurements.csv``)."""

    id: str
    role: str  # calibration (held to +-10 %) or sanity (shown, conditions partly unstated)
    phase: str
    metric: str
    gpu: str
    model: str
    measured: float
    conditions: dict[str, Any]  # predict() options the source states (blank cells left to the defaults)
    tokens_per_s_per_user: Any
    measured_per_node: Any
    assumed: str
    source: str

    @property
    def per_user(self) -> bool:
        """The metric is a per-user rate (min-latency rows), not a per-GPU throughput."""
        return "per user" in self.metric

    def options(self) -> dict[str, Any]:
        """The measurement's conditions as predict() options (unstated ones left to the defaults); a copy."""
        return dict(self._options)

    @cached_property
    def _options(self) -> dict[str, Any]:
        allowed = {o.name for o in options_for(self.phase)}
        out = {k: v for k, v in self.conditions.items() if k in allowed and v is not None}
        for flag in ("tbo", "sbo"):
            if flag in out:
                out[flag] = bool(out[flag])
        return out


COLUMNS = ("id", "role", "phase", "metric", "gpu", "model", "ep", "attn_tp", "moe_tp", "batch", "concurrency",
           "max_num_tokens", "kv_len", "tokens_per_gpu", "prompt_len", "cache_hit", "tbo", "sbo", "mtp_draft",
           "mtp_accept", "engine", "attn_dtype", "kv_dtype", "moe_dtype", "input_len", "output_len",
           "redundant_experts", "imbalance", "tokens_per_s_per_user", "measured", "measured_per_node", "assumed",
           "source")
# the conditions each phase's model needs (one of a tuple)
NEEDED = {"decode": ("ep", ("batch", "tokens_per_s_per_user"), "kv_len"),
          "prefill": ("ep", "tokens_per_gpu", "prompt_len"),
          "aggregated": ("ep", ("batch", "concurrency"), "input_len", "output_len")}
# what a row of each phase may measure (the first is the default for a blank cell)
METRICS = {"decode": ("output tokens/s per GPU", "output tokens/s per user"),
           "prefill": ("input tokens/s per GPU", "input tokens/s per GPU (cache hits included)"),
           "aggregated": ("output tokens/s per GPU",)}
ROLES = ("calibration", "sanity")
SWITCHES = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
MAX_ROWS = 5_000  # far above any benchmark campaign; a larger file is refused before any work
_RATES = {"measured": POSITIVE, "measured_per_node": POSITIVE, "tokens_per_s_per_user": POSITIVE}


def _condition(where_: str, phase: str, k: str, text: str) -> Any:
    """One stated condition, checked as the CLI checks the option: its phase, choices, switch or range."""
    o = OPTION[k]
    if phase not in o.phases and not (k in ("tbo", "sbo") and SWITCHES.get(text.lower()) is False):  # "off" is true
        raise ValueError(f"{where_}, column {k}: does not apply to a {phase} row (it applies to "
                         f"{' and '.join(o.phases)}); leave it blank")
    if k in ("tbo", "sbo"):
        if text.lower() not in SWITCHES:
            raise ValueError(f"{where_}, column {k}: must be 1 or 0 (true/false, yes/no, on/off); got {show(text)}")
        return SWITCHES[text.lower()]
    if o.choices:
        return choose(f"{where_}, column {k}", text, o.choices)
    if o.rng is None:
        return text
    if o.auto and text.lower() == "auto":
        return None  # the default derives it
    return check(f"{where_}, column {k}", parse_number(f"{where_}, column {k}", text), o.rng)


def _rows(text: str, source: str) -> list[dict[str, str]]:
    """The CSV's rows (comment lines skipped), its header checked; a malformed file is one line naming it."""
    try:
        rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
        header = list(rows.fieldnames or [])
        records = []
        for n, r in enumerate(rows, start=2):
            if n - 1 > MAX_ROWS:
                raise ValueError(f"{source}: more than {MAX_ROWS:,} rows; calibrate with a representative subset")
            records.append(r)
    except csv.Error as exc:
        raise ValueError(f"{source}: not a CSV file dsxl can read ({exc})") from None
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        what = f"column {missing[0]} is missing" if missing else f"column {unknown[0]!r} is unknown"
        raise ValueError(f"{source}: {what}; the columns are those of templates/measurements.csv "
                         "(dsxl calibrate --template writes them)")
    for n, r in enumerate(records, start=2):
        if None in r or any(v is None for v in r.values()):
            raise ValueError(f"{source} row {n}: {len(header)} columns expected, as in the header")
    return records


def parse_measurements(text: str, source: str) -> list[Measurement]:
    """Measurements from CSV text with the columns of ``templates/measurements.csv``, every field checked as the
    CLI checks it; a problem is one line naming ``source``, the row and the column."""
    out = []
    for n, r in enumerate(_rows(text, source), start=2):
        where_ = f"{source} row {n} ({r['id'] or 'no id'})"
        r = {k: v.strip() for k, v in r.items()}
        phase = choose(f"{where_}, column phase", r["phase"], NEEDED)
        metric = choose(f"{where_}, column metric", r["metric"], METRICS[phase], default=METRICS[phase][0])
        rates = {k: r[k] and check(f"{where_}, column {k}", parse_number(f"{where_}, column {k}", r[k]), rng)
                 for k, rng in _RATES.items()}
        if not rates["measured"]:
            raise ValueError(f"{where_}, column measured: must be a number above 0; got {r['measured']!r}")
        conditions = {k: (r[k] or None) if k in _TEXT else (_condition(where_, phase, k, r[k]) if r[k] else None)
                      for k in COLUMNS if k in OPTION}
        for need in NEEDED[phase]:
            names = need if isinstance(need, tuple) else (need,)
            if all(conditions.get(k) is None and not rates.get(k) for k in names):
                raise ValueError(f"{where_}, column {' or '.join(names)}: the {phase} model needs it")
        out.append(Measurement(id=r["id"] or f"row {n}", role=choose(f"{where_}, column role", r["role"], ROLES,
                                                                    default="calibration"),
                               phase=phase, metric=metric, gpu=r["gpu"], model=r["model"],
                               measured=float(rates["measured"]), conditions=conditions,
                               tokens_per_s_per_user=rates["tokens_per_s_per_user"] or None,
                               measured_per_node=rates["measured_per_node"] or None, assumed=r["assumed"],
                               source=r["source"]))
    return out


def load_measurements() -> list[Measurement]:
    return parse_measurements(read_template_text("measurements.csv"), "measurements.csv")


def _batch_at_user_speed(m: Measurement, mode: str, **kw: Any) -> int:
    """A decode measurement that states per-user speed but not the batch: the fitting batch whose predicted
    tokens/s per user is closest to the measured one."""
    batches = np.arange(1, 2049)
    opts = {k: v for k, v in m.options().items() if k != "batch"}
    r = predict("decode", m.gpu, m.model, mode=mode, batch=batches, **opts, **kw)
    gap = np.abs(np.asarray(r["tokens_per_s_per_user"]) - m.tokens_per_s_per_user)
    gap = np.where(np.asarray(r["fits"]), gap, np.inf)
    return int(batches[int(np.argmin(gap))])




def predicted_metric(m: Measurement, r: dict[str, Any]) -> float:
    """The prediction of the quantity ``m`` measured (NaN for a configuration that does not fit)."""
    value = r[metric_key(m.phase, m.per_user)]
    return float("nan") if value is None else float(value)


def metric_key(phase: str, per_user: bool) -> str:
    """The prediction key of a measured metric: a per-user rate, or the phase's tokens/s per GPU."""
    return ("tokens_per_s_per_user" if per_user else
            "output_tokens_per_s_per_gpu" if phase == "aggregated" else "tokens_per_s_per_gpu")


def predict_measurement(m: Measurement, mode: str = "refined", **kw: Any) -> tuple[float, dict[str, Any]]:
    """(predicted value of the measured metric, the options used); the article's mode gets the conditions it models.
    The full prediction is :func:`predict_row`."""
    value, opts, _ = predict_row(m, mode, **kw)
    return value, opts


def predict_row(m: Measurement, mode: str = "refined", **kw: Any) -> tuple[float, dict[str, Any], dict[str, Any]]:
    opts = m.options()
    if mode == "article":
        opts = {k: v for k, v in opts.items() if k in ARTICLE_OPTIONS[m.phase]}
    if m.phase == "decode" and "batch" not in opts:
        opts["batch"] = _batch_at_user_speed(m, mode, **kw)
    r = predict(m.phase, m.gpu, m.model, mode=mode, **opts, **kw)
    if mode == "refined" and "tbo" not in opts:  # left to the engine: the conditions say what was modelled
        opts["tbo"] = bool(r["inputs"]["tbo"])
    return predicted_metric(m, r), opts, r


def relative_error(predicted: Any, measured: Any) -> Any:
    """predicted / measured - 1 (positive: the model is optimistic)."""
    return predicted / measured - 1


def _article(m: Measurement) -> tuple[float | None, dict[str, Any]]:
    """The article model's prediction where it models the row (MLA decode/prefill at attention TP and EP only; not
    DeepSeek-V4's compressed attention)."""
    if m.phase == "aggregated" or m.conditions.get("moe_tp", 1) != 1 or \
            load_catalog().model(m.model).compressed_attention:
        return None, {}
    return predict_measurement(m, "article")


def validate(constants: dict[str, Any] | None = None, calibration: Any = None) -> list[dict[str, Any]]:
    """One row per measurement: measured, refined, article, refined error (refined / measured - 1) and the
    leave-one-out error; with a calibration profile, its constants apply and the profile's own rows follow (role
    "yours")."""
    out = []
    stale = stale_fit_reason(load_fit())
    if stale:
        raise ValueError(stale)
    loo = load_fit().get("rows", {})
    kw = {"calibration": calibration} if calibration is not None else {}
    for m in sorted(load_measurements(), key=lambda m: m.role != "calibration"):
        refined, opts, r = predict_row(m, "refined", constants=constants, **kw)
        article, article_opts = _article(m)
        out.append({"id": m.id, "role": m.role, "phase": m.phase, "gpu": m.gpu, "model": m.model, "metric": m.metric,
                    "measured": m.measured, "refined": refined, "article": article,
                    "error": relative_error(refined, m.measured),
                    "loo_error": loo[m.id]["loo_error"] if m.id in loo else None,
                    "article_error": None if article is None else relative_error(article, m.measured),
                    "conditions": opts, "article_conditions": article_opts, "assumed": m.assumed, "source": m.source,
                    "accuracy": r["accuracy"], "family": family_of(m.gpu, opts["engine"], r["accuracy"]["regime"])})
    profile = load_profile(calibration)
    for row in (profile or {}).get("rows", []):
        m = Measurement(id=row["id"], role="yours", phase=row["phase"], metric=row["metric"], gpu=row["gpu"],
                        model=row["model"], measured=row["measured"], conditions=row["conditions"],
                        tokens_per_s_per_user=None, measured_per_node=None, assumed="",
                        source=f"your measurements: {profile['input']['file']}")
        refined, opts, r = predict_row(m, "refined", constants=constants, **kw)
        out.append({"id": m.id, "role": "yours", "phase": m.phase, "gpu": m.gpu, "model": m.model,
                    "metric": m.metric, "measured": m.measured, "refined": refined, "article": None,
                    "error": relative_error(refined, m.measured), "article_error": None,
                    "loo_error": row["loo_error"], "conditions": opts, "article_conditions": {}, "assumed": "",
                    "source": m.source, "accuracy": r["accuracy"],
                    "family": family_of(m.gpu, opts["engine"], r["accuracy"]["regime"])})
    return out


def family_of(gpu: str, engine: str, regime: str) -> str:
    """A validation family: GPU generation, engine and regime (decode, min-latency, prefill, aggregated)."""
    return f"{load_catalog().gpu(gpu).generation} / {engine} / {regime}"


def families(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per family: its rows, the largest calibration error and the band a prediction of that family carries."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        f = out.setdefault(r["family"], {"family": r["family"], "rows": [], "max_abs_error": 0.0,
                                         "max_abs_loo_error": 0.0, "band": r["accuracy"]["band"],
                                         "calibrated": False})
        f["rows"].append(r["id"])
        if r["role"] == "calibration":
            f["calibrated"] = True
            f["max_abs_error"] = max(f["max_abs_error"], abs(r["error"]))
            f["max_abs_loo_error"] = max(f["max_abs_loo_error"], abs(r["loo_error"] or 0))
            f["band"] = r["accuracy"]["band"]
    return list(out.values())


# Each refinement switched off: pinned chain quantities, changed constants, changed options.
ABLATIONS: dict[str, dict[str, Any]] = {
    "kernel_efficiency": {"doc": "datasheet peaks instead of measured kernel efficiencies",
                          "constants": {n: 1.0 for n in ("gemm_flops_eff", "grouped_masked_flops_eff", "gemm_bw_eff",
                                                         "attn_flops_eff", "attn_bw_eff", "sparse_attn_flops_eff",
                                                         "prefill_attn_flops_eff")}},
    "weight_reads": {"doc": "GEMMs without their weight reads (compute-only)",
                     "fixed": {n: 0 for n in ("attn_proj_gb", "routed_gb", "shared_gb", "dense_gb", "lm_head_gb")}},
    "kv_reads": {"doc": "attention without its KV (and indexer-key) reads", "fixed": {"kv_read_gb": 0, "index_read_gb": 0}},
    "launch_latency": {"doc": "no fixed per-kernel time (GEMMs' intercept and elementwise ops' graph tail)",
                       "constants": {"kernel_latency_us": 0, "graph_op_us": 0}},
    "elementwise": {"doc": "no elementwise activation traffic",
                    "fixed": {"attn_act_ms": 0, "moe_act_ms": 0, "dense_act_ms": 0}},
    "all_to_all": {"doc": "free dispatch and combine", "fixed": {"dispatch_ms": 0, "combine_ms": 0}},
    "comm_sm": {"doc": "prefill all-to-all holds no SMs", "fixed": {"sm_share": 1}},
    "two_batch_overlap": {"doc": "TBO off (one micro-batch, everything serial)", "options": {"tbo": False}},
    "overlap_contention": {"doc": "prefill compute at full speed beside the all-to-all (overlap_compute_share 1)",
                           "constants": {"overlap_compute_share": 1}},
    "collectives": {"doc": "free attention-TP and MoE-TP all-reduces", "fixed": {"allreduce_ms": 0,
                                                                                "moe_allreduce_ms": 0}},
    "step_terms": {"doc": "no LM head and no per-step engine overhead",
                   "fixed": {"lm_head_ms": 0, "overhead_ms": 0}},
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
            value = predicted_metric(m, r)
            row["ablations"][name] = {"value": value, "change": value / full - 1}
        out.append(row)
    return out
