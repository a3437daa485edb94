"""How far to trust a refined prediction: its expected relative error from the calibration rows that share its GPU
generation, engine and regime, widened for every way the configuration leaves them (``templates/accuracy.json``).

``accuracy(...)`` returns ``{"band", "basis", "validated", "note"}``: ``band`` is the relative error a measurement
should stay within about 80 % of the time; ``basis`` the calibration rows of the same family; ``validated`` whether
the configuration is inside what those rows cover, and ``note`` says why not.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass
from functools import lru_cache, reduce
from typing import Any

import numpy as np

from dsxl.data.catalog import default_engine, generations, load_catalog, load_engines, load_fit, read_template_text
from dsxl.data.runs import load_conventions, load_corpus
from dsxl.chains.spread import constant_share, part_shares, spread, widened_band
from dsxl.core.expr import concat, either, eq, where
from dsxl.physics.comm import a2a_ranks


@dataclass(frozen=True)
class CalibrationRow:
    id: str
    generation: str
    engine: str
    regime: str
    model: str
    context: float  # tokens: decode KV length, prefill prompt, aggregated input
    batch: float | None  # sequences per attention rank (decode and aggregated)
    shape: str = "all-to-all"  # the parallel shape (parallel_shape)
    compressed: bool = False  # the model runs compressed attention (DeepSeek-V4), not MLA


SHAPES = ("all-to-all", "all-reduce")


def parallel_shape(ep: Any, moe_tp: Any, attn_tp: Any) -> Any:
    """all-to-all where an expert all-to-all spans attention ranks (expert or data parallel), all-reduce where
    attention TP covers the instance (the MoE ends in an all-reduce): the two communicate and overlap differently.
    Text, an array of it, or a formula."""
    return where(a2a_ranks(ep, attn_tp, ep * moe_tp) > 1, SHAPES[0], SHAPES[1])


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    return json.loads(read_template_text("accuracy.json"))


def regime(phase: str, batch: Any = None) -> str:
    """decode (throughput), min-latency (few sequences per rank), prefill or aggregated."""
    if phase == "decode" and batch is not None and np.max(batch) <= rules()["min_latency_batch"]["value"]:
        return "min-latency"
    return phase


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


@lru_cache(maxsize=1)
def calibration_rows() -> tuple[CalibrationRow, ...]:
    """The calibration rows of measurements.csv and, for each corpus group, one row per parallel shape at each end
    of its context and batch span (a group's rows share its id and its leave-one-group-out error)."""
    catalog = load_catalog()
    out = []
    for r in csv.DictReader(read_template_text("measurements.csv").splitlines()):
        if r["role"] != "calibration" or r["id"] in _in_corpus():
            continue
        batch = _number(r["batch"])
        context = _number(r["kv_len"]) or _number(r["prompt_len"]) or _number(r["input_len"])
        ep, moe_tp, attn_tp = (int(r[k] or 1) for k in ("ep", "moe_tp", "attn_tp"))
        out.append(CalibrationRow(r["id"], catalog.gpu(r["gpu"]).generation, r["engine"] or default_engine(),
                                  regime(r["phase"], batch), r["model"], context, batch,
                                  str(parallel_shape(ep, moe_tp, attn_tp)),
                                  catalog.model(r["model"]).compressed_attention))
    return tuple(out) + _corpus_rows()


def _in_corpus() -> set[str]:
    """Calibration rows that are also corpus runs (their group stands for them)."""
    return set(load_conventions()["corpus"]["also_calibration_rows"]["value"])


def _corpus_rows() -> tuple[CalibrationRow, ...]:
    """A corpus group as calibration rows: aggregated runs in the aggregated regime (context: the prompt; batch:
    requests per attention rank), disaggregated ones in decode, or min-latency for runs of few requests per rank, each
    regime with the span of its own runs (context: prompt plus half the output; batch: requests per decode rank, an
    upper bound)."""
    c, catalog = load_conventions(), load_catalog()
    share = c["length_share"]["value"]
    spans: dict[tuple, list[tuple[float, float]]] = {}
    for r in load_corpus():
        if r.disagg and r.decode_num_workers < 1 or r.decode_ep < 1 or r.decode_tp % r.decode_ep:
            continue
        attn_tp = 1 if r.decode_dp_attention else r.decode_tp
        ranks = r.decode_tp // attn_tp * max(r.decode_num_workers, 1)
        shape = str(parallel_shape(r.decode_ep, r.decode_tp // r.decode_ep, attn_tp))
        context = share * (r.isl + r.osl / 2 if r.disagg else r.isl)
        batch = r.conc / ranks
        key = (r.group, catalog.gpu(c["gpus"][r.hardware]).generation, c["frameworks"][r.framework]["engine"],
               regime("decode", batch) if r.disagg else "aggregated", c["models"][r.model], shape)
        spans.setdefault(key, []).append((context, batch))
    out = []
    for (group, generation, engine, reg, model, shape), points in spans.items():
        contexts, batches = zip(*points)
        for context, batch in ((min(contexts), min(batches)), (max(contexts), max(batches))):
            out.append(CalibrationRow(group, generation, engine, reg, model, context, batch, shape,
                                      catalog.model(model).compressed_attention))
    return tuple(out)


RESTS_ON_ONE = 0.9  # a fitted constant one group gives this share of its pinning rests on that group alone


def _fitted_terms(generation: str, engine: str, phase: str, tbo: Any, moe_dtype: str) -> list[str]:
    """Jointly fitted parameters this configuration uses that rest on a single group of the evidence."""
    data = load_fit()
    out = []
    for name, p in data["parameters"].items():
        f = data.get("fit", {}).get(name, {})
        applies = generation in p.get("generations", ()) or engine in p.get("engines", ())
        if applies and f.get("released") and max(f["groups"].values()) >= RESTS_ON_ONE:
            out.append(name)
    return out


def loo_errors() -> dict[str, float]:
    """|leave-one-group-out error| of every calibration row and corpus group (templates/fitted.json): a row's
    error; a group's median |error| of output tokens/s or of TPOT, whichever is larger, since a band covers both
    (a plan's SLA binds on TPOT)."""
    fit = load_fit()
    rows = {k: abs(v["loo_error"]) for k, v in fit.get("rows", {}).items() if v.get("loo_error") is not None}
    groups = {k: max(e for e in (v.get("logo_error"), v.get("logo_tpot_error")) if e is not None)
              for k, v in fit.get("groups", {}).items() if v.get("logo_error") is not None}
    return {**rows, **groups}


def base_band(family: list[CalibrationRow], reg: str, fitted: list[str] = ()) -> float:
    """A band before widening: the largest |leave-one-out error| of the nearest rows, never below the median over
    all rows. The nearest rows are the family's; without one, every row of the regime (or every row). The rows a
    constant of ``fitted`` rests on count too: that row's leave-one-out error is the constant's own uncertainty,
    in every regime it serves. Leaving a family only ever adds rows to that set, so the band never shrinks as the
    distance grows."""
    errors = loo_errors()
    floor = float(np.median(list(errors.values()))) if errors else rules()["base"]["value"]
    rows = calibration_rows()
    near = family or [r for r in rows if r.regime == reg] or list(rows)
    fit = load_fit().get("fit", {})
    resting = [g for name in fitted for g, share in fit.get(name, {}).get("groups", {}).items()
               if share >= RESTS_ON_ONE]
    return round(max([floor] + [errors[r.id] for r in near if r.id in errors] +
                     [errors[i] for i in resting if i in errors]), 4)


def _off_rows(context: Any, batch: Any, family: list[CalibrationRow]) -> Any:
    """Per case (or a truth value for scalars): the context or the batch lies beyond the family's rows' span."""
    off: Any = False
    for value, seen in ((context, [r.context for r in family]),
                        (batch, [r.batch for r in family if r.batch is not None])):
        if value is not None and seen:
            off = off | (outside(np.asarray(value, dtype=float), min(seen), max(seen)) > 0)
    return off


def outside(value: Any, lo: Any, hi: Any) -> Any:
    """1 where ``value`` lies more than 4x beyond [lo, hi] (the calibration rows' span), else 0; a formula with
    cell references in the workbook."""
    return where((value > 4 * hi) + (value < lo / 4) > 0, 1, 0)


def combined_band(family_band: Any, outside_rows: Any, mtp_draft: Any, range_widening: Any,
                  mtp_widening: Any) -> Any:
    """A configuration's band: its family's, widened when it leaves the family's context or batch span and when it
    runs MTP (no calibration row does)."""
    return family_band + range_widening * outside_rows + where(mtp_draft > 0, mtp_widening, 0)


def _family_band(reg: str, phase: str, generation: str, engine: str, model: str, tbo: Any,
                 moe_dtype: str, shape: str | None = None) -> tuple[list[str], list[str], list[CalibrationRow], float]:
    """:func:`_family` and the family's band: its rows' leave-one-out errors widened for each way it is left."""
    reasons, fitted, family = _family(reg, phase, generation, engine, model, tbo, moe_dtype, shape)
    return reasons, fitted, family, base_band(family, reg, fitted) + sum(rules()["widen"][k]["value"] for k in reasons)


def _family(reg: str, phase: str, generation: str, engine: str, model: str, tbo: Any,
            moe_dtype: str, shape: str | None = None) -> tuple[list[str], list[str], list[CalibrationRow]]:
    """(widenings, fitted constants used, the family's calibration rows) of everything but range and MTP."""
    rows = calibration_rows()
    basis = [r for r in rows if r.generation == generation and r.regime == reg]
    reasons: list[str] = []
    if not basis:
        same_regime = [r for r in rows if r.regime == reg]
        reasons.append("regime" if any(r.generation == generation for r in rows) and not same_regime
                       else "generation")
    pool = basis or [r for r in rows if r.regime == reg] or list(rows)  # the nearest rows there are
    if not any(r.engine == engine for r in pool):
        reasons.append("engine")
    if rules()["generation_status"].get(generation, {"value": "inherited"})["value"] == "inherited":
        reasons.append("inherited")
    fitted = _fitted_terms(generation, engine, phase, tbo, moe_dtype)
    if fitted:
        reasons.append("fitted")
    family = [r for r in pool if r.engine == engine] or pool
    catalog = load_catalog()
    compressed = model in catalog.models and catalog.models[model].compressed_attention
    if family and compressed != any(r.compressed for r in family):
        reasons.append("attention")
    elif family and not any(r.model == model for r in family):
        reasons.append("model")
    if family and shape is not None and not any(r.shape == shape for r in family):
        reasons.append("shape")
    return reasons, fitted, family


def accuracy(phase: str, generation: str, engine: str, model: str, context: Any, batch: Any = None,
             tbo: Any = False, moe_dtype: str = "fp8", mtp_draft: Any = 0, shape: Any = None) -> dict[str, Any]:
    """The expected relative error of one refined prediction (arrays: the widest case of the request); ``shape``
    is :func:`parallel_shape` (None: not compared)."""
    widen = rules()["widen"]
    reg = regime(phase, batch)
    shapes = [None] if shape is None else [str(x) for x in np.unique(shape)]
    reasons, fitted, family, family_band = max((_family_band(reg, phase, generation, engine, model, tbo, moe_dtype, x)
                                                for x in shapes), key=lambda f: f[3])  # the widest shape
    off = bool(np.any(_off_rows(context, batch, family)))
    mtp = bool(np.any(np.asarray(mtp_draft) > 0))
    reasons += ["range"] * off + ["mtp"] * mtp
    band = combined_band(family_band, int(off), int(mtp), widen["range"]["value"], widen["mtp"]["value"])
    validated = not set(reasons) & {"generation", "engine", "regime", "inherited", "model", "range", "attention",
                                     "shape"}
    notes = [widen[k]["why"] + (f" ({', '.join(fitted)})" if k == "fitted" else "") for k in reasons]
    note = ("inside the calibration rows of this family" if not notes else "; ".join(notes))
    return {"band": round(band, 4), "basis": list(dict.fromkeys(r.id for r in family)), "validated": validated, "regime": reg,
            "note": note, "family_band": round(family_band, 4)}


def bands(phase: str, generation: str, engine: str, model: str, context: Any, batch: Any = None, tbo: Any = False,
          moe_dtype: str = "fp8", mtp_draft: Any = 0, shape: Any = None) -> np.ndarray:
    """The band of each case of an array request (``accuracy`` gives the widest): each batch picks its regime,
    each parallel shape its family and each context and batch its own range widening. Each choice is made on the
    input that decides it and broadcast only at the end (the planner's grids run to 10^5 cases)."""
    widen = rules()["widen"]
    dims = np.broadcast_shapes(np.shape(context), np.shape(batch), np.shape(mtp_draft), np.shape(shape))
    min_latency = False if batch is None or phase != "decode" else \
        np.asarray(batch, dtype=float) <= rules()["min_latency_batch"]["value"]
    all_to_all = True if shape is None else np.asarray(shape) == SHAPES[0]
    family_bands, outside_rows = {}, {}
    for few, reg in ((True, regime(phase, 1)), (False, regime(phase))):
        for kind in (SHAPES if shape is not None else (None,)):
            _, _, family, family_bands[few, kind] = _family_band(reg, phase, generation, engine, model, tbo,
                                                                  moe_dtype, kind)
            outside_rows[few, kind] = np.asarray(_off_rows(context, batch, family), dtype=int)

    def choose(table: dict) -> Any:  # by regime, then by shape
        by_shape = [table[few, None] if shape is None else np.where(all_to_all, table[few, SHAPES[0]],
                                                                   table[few, SHAPES[1]]) for few in (True, False)]
        return np.where(min_latency, *by_shape)

    band = combined_band(choose(family_bands), choose(outside_rows), np.asarray(mtp_draft),
                         widen["range"]["value"], widen["mtp"]["value"])
    return np.round(np.broadcast_to(band, dims).astype(float), 4)


@dataclass(frozen=True)
class Uncertain:
    """A jointly fitted parameter as a band sees it: its relative uncertainty, the parts of a step its value sets,
    and where it applies."""
    name: str
    uncertainty: float
    parts: tuple[str, ...]
    generations: tuple[str, ...]
    engines: tuple[str, ...]

    def applies(self, generation: Any, engine: Any) -> Any:
        """Whether it applies on ``generation`` with ``engine`` (a truth value, or a formula over cells)."""
        tests = [eq(generation, g) for g in self.generations] + [eq(engine, e) for e in self.engines]
        return reduce(either, tests) if tests else False


@lru_cache(maxsize=1)
def uncertain_constants() -> tuple[Uncertain, ...]:
    """Every jointly fitted parameter (``templates/fitted.json``) with its relative uncertainty: a fitted one's
    relative standard error; one the data could not identify keeps its prior, uncertain over its whole range (a
    uniform spread over its bounds, (hi - lo) / sqrt(12), relative to its value, at most 100 %)."""
    data = load_fit()
    out = []
    for name, p in data["parameters"].items():
        f = data.get("fit", {}).get(name, {"value": p["prior"]})  # declared but not yet fitted: its prior
        if f.get("released"):
            u = f["relative_se"]
        else:
            u = min(1.0, (p["hi"] - p["lo"]) / 12 ** 0.5 / max(abs(f["value"]), 1e-12))
        out.append(Uncertain(name, float(u), tuple(p["step_parts"]), tuple(p.get("generations", ())),
                             tuple(p.get("engines", ()))))
    return tuple(out)


def spread_terms(q: dict[str, Any], phase: str, generation: Any, engine: Any) -> list[tuple[Uncertain, Any, Any]]:
    """(constant, its share of the step, what it adds: uncertainty x share where it applies, else 0) for every
    uncertain constant; numbers, arrays or formulas (:mod:`dsxl.chains.spread`)."""
    constants = uncertain_constants()
    shares = part_shares(q, "decode" if phase == "aggregated" else phase,
                         list(dict.fromkeys(part for c in constants for part in c.parts)))
    out = []
    for c in constants:
        share = constant_share(shares, c.parts)
        out.append((c, share, where(c.applies(generation, engine), c.uncertainty, 0) * share))
    return out


def step_spread(q: dict[str, Any], phase: str, generation: str, engine: str) -> tuple[Any, list[dict[str, Any]]]:
    """The spread of a step from its loosely pinned constants and its two largest drivers (each: the constant, its
    share of the step, its uncertainty and what it adds, the widest case)."""
    terms = [t for t in spread_terms(q, phase, generation, engine) if t[0].applies(generation, engine)]
    drivers = sorted(({"constant": c.name, "share": round(float(np.max(share)), 4),
                       "uncertainty": round(c.uncertainty, 4), "adds": round(float(np.max(adds)), 4)}
                      for c, share, adds in terms), key=lambda d: -d["adds"])
    return spread([adds for _, _, adds in terms]), drivers[:2]


def with_spread(acc: dict[str, Any], step_spread_: Any, drivers: list[dict[str, Any]]) -> dict[str, Any]:
    """An accuracy widened by the step's own spread: the band (and each case's) is the rules' (``rules_band``: the
    family's, widened for range and MTP) and the spread combined as independent errors; ``drivers`` names what
    most of the spread rests on."""
    out = dict(acc, drivers=drivers, spread=round(float(np.max(step_spread_)), 4), rules_band=acc["band"])
    if "bands" in acc:
        out["bands"] = widened_band(np.asarray(acc["bands"], float), step_spread_)
        out["band"] = float(np.max(out["bands"]))
    else:
        out["band"] = float(np.max(widened_band(acc["band"], step_spread_)))
    return out


REGIME_PHASE = {"decode": "decode", "min-latency": "decode", "prefill": "prefill", "aggregated": "aggregated"}


def family_key(generation: Any, engine: Any, reg: Any, moe_dtype: Any, tbo: Any, shape: Any) -> Any:
    """The lookup key of a family row: generation|engine|regime|moe dtype|TBO (1/0)|parallel shape; text or a
    formula."""
    return concat(generation, "|", engine, "|", reg, "|", moe_dtype, "|", where(tbo, 1, 0), "|", shape)


def family_table(model: str) -> list[dict[str, Any]]:
    """Every family a Predict-sheet configuration can fall in: its band before range and MTP widening, whether it
    is validated, and the context and batch span of its calibration rows (None where it has none)."""
    out = []
    for generation in generations():
        for engine in load_engines():
            for reg, phase in REGIME_PHASE.items():
                for moe_dtype, tbo, shape in itertools.product(("fp8", "fp4"), (False, True), SHAPES):
                    _, _, family, band = _family_band(reg, phase, generation, engine, model, tbo, moe_dtype, shape)
                    batches = [r.batch for r in family if r.batch is not None]
                    contexts = [r.context for r in family]
                    out.append({"key": family_key(generation, engine, reg, moe_dtype, tbo, shape), "band": band,
                                "context_lo": min(contexts, default=None), "context_hi": max(contexts, default=None),
                                "batch_lo": min(batches, default=None), "batch_hi": max(batches, default=None)})
    return out


__all__ = ["accuracy", "calibration_rows", "combined_band", "family_key", "family_table", "outside",
           "parallel_shape", "regime", "rules"]
