"""The joint fit: every refined constant that no kernel row pins down, fitted together over the evidence: the
InferenceX corpus (``templates/inferencex_dsr1.csv``) and the calibration rows of ``templates/measurements.csv``
(or, for ``dsxl calibrate``, a user's own runs). One routine serves both.

The parameters, their priors, bounds and scope are declared in ``templates/fitted.json``. A fit:

1. solves ``scipy.optimize.least_squares`` on log-ratio residuals ``log(predicted / measured)``, within the declared
   bounds (parameters scaled to [0, 1] so each step means the same). Each group counts alike: a corpus group's
   residuals (output tokens/s and median TPOT of every run, soft L1 past :data:`RUN_NOISE`: see
   :func:`robust_residual`) weigh ``1 / sqrt(its residual count)``, a calibration
   row is a group of its own and weighs 1, its residual growing faster past :data:`TOLERANCE` so that no
   calibration row is sacrificed to a sweep;
2. computes each free parameter's standard error from the Jacobian at the optimum (the residuals' variance times
   ``(J^T J)^-1``); a parameter whose relative standard error exceeds :data:`MAX_RELATIVE_SE` is not identified by
   the evidence: it keeps its prior and the fit is solved again without it, until every free one is identified.
   These screening solves stop at :data:`SCREEN_FTOL`; the identified set is then solved to :data:`FTOL`;
3. for leave-one-group-out, refits (from the full fit, same free parameters) without each group and predicts it.

The evidence is predicted a :class:`Part` at a time (one vectorised call per group of runs or rows), and a
:class:`PartCache` predicts again only the parts whose constants a step changed: a finite-difference column costs the
groups its parameter applies to, not the whole corpus. ``python -m dsxl.refined.calibration --write`` regenerates
the ``fit``, ``rows``, ``groups`` and ``data_hash`` of ``templates/fitted.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import least_squares

from dsxl.data.fingerprint import fit_data_hash
from dsxl.data.catalog import default_engine, load_catalog
from dsxl.data.runs import Run, load_conventions, load_corpus
from dsxl.refined.fit_parameters import Parameter, constants_for, parameters
from dsxl.refined.runs import RunGroup, group_runs, measured as run_measured, predict_group, predict_runs
from dsxl.refined.predict import predict
from dsxl.refined.validation import Measurement, load_measurements, metric_key, predict_row

TOLERANCE = 0.05  # a calibration row's residual past this log ratio weighs quadratically more
MAX_RELATIVE_SE = 0.5  # a parameter the evidence pins less well than this is not fitted
PULL = 0.02  # refitting a user's runs: weight of log(value / shipped) per constant, a gentle pull to where it started
RUN_NOISE = 0.1  # a corpus run's log error past this counts less and less (soft L1): a build measured twice differs
FIT_METRICS = ("output_tput_per_gpu", "median_tpot")  # what the corpus runs are fitted on


def robust_residual(log_error: np.ndarray, scale: float = RUN_NOISE) -> np.ndarray:
    """A run's residual whose square is the soft-L1 loss ``2 scale^2 (sqrt(1 + (e / scale)^2) - 1)`` of its log
    error ``e``: about ``e`` while small, growing as ``sqrt(2 scale |e|)`` past ``scale``: a run of an older engine
    build 2x off (the corpus holds some) counts like one 1.41x off, not like four runs 1.41x off."""
    e = np.asarray(log_error, float)
    return np.sign(e) * np.sqrt(2 * scale ** 2 * (np.sqrt(1 + (e / scale) ** 2) - 1))


VECTOR_OPTIONS = ("ep", "batch", "kv_len", "tokens_per_gpu", "prompt_len", "cache_hit")  # rows may differ in these


def _row_group(m: Measurement) -> tuple | None:
    """Rows with the same key are predicted in one call, the :data:`VECTOR_OPTIONS` as arrays; None for a row
    predicted alone (a per-user rate without its batch searches the batch)."""
    opts = m.options()
    if m.phase == "decode" and "batch" not in opts:
        return None
    fixed = tuple(sorted((k, v) for k, v in opts.items() if k not in VECTOR_OPTIONS))
    return (m.phase, m.gpu, m.model, m.per_user, fixed, tuple(sorted(k for k in opts if k in VECTOR_OPTIONS)))


@dataclass(frozen=True)
class Part:
    """A share of the evidence predicted in one call under one (generation, engine)'s constants: calibration rows
    that differ only in :data:`VECTOR_OPTIONS`, a row predicted alone, or a group of corpus runs. ``predict``
    maps the constant overrides to its entries' predictions (a row's metric, or a run's :data:`FIT_METRICS` and
    whether it fits)."""

    index: tuple[int, ...]  # the entries' positions among the rows (or the runs)
    generation: str
    engine: str
    predict: Callable[[dict[str, float]], Any]


def row_parts(rows: Sequence[Measurement]) -> list[Part]:
    """The calibration rows as parts: one per group of rows that differ only in :data:`VECTOR_OPTIONS` (what makes
    refitting a user's runs take seconds), one per row predicted alone; equal to :func:`predict_row`."""
    parts, groups = [], {}
    for i, m in enumerate(rows):
        key = _row_group(m)
        if key is None:
            parts.append(_row_part((i,), m, lambda c, m=m: np.array([predict_row(m, constants=c)[0]])))
        else:
            groups.setdefault(key, []).append(i)
    for (phase, gpu, model, per_user, fixed, varying), idx in groups.items():
        arrays = {k: np.array([rows[i].options()[k] for i in idx]) for k in varying}

        def vector(c: dict[str, float], phase=phase, gpu=gpu, model=model, per_user=per_user, fixed=fixed,
                   arrays=arrays, n=len(idx)) -> np.ndarray:
            r = predict(phase, gpu, model, constants=c, **dict(fixed), **arrays)
            return np.broadcast_to(np.asarray(r[metric_key(phase, per_user)], float), n)
        parts.append(_row_part(tuple(idx), rows[idx[0]], vector))
    return parts


def _row_part(index: tuple[int, ...], m: Measurement, fn: Callable[[dict[str, float]], Any]) -> Part:
    return Part(index, load_catalog().gpu(m.gpu).generation, m.conditions.get("engine") or default_engine(), fn)


def run_parts(runs: Sequence[Run]) -> list[Part]:
    """The runs dsxl expresses as parts, one per :class:`~dsxl.refined.runs.RunGroup` (bands left out)."""
    def fn(c: dict[str, float], g: RunGroup) -> tuple[np.ndarray, np.ndarray]:
        res = predict_group(g, c, bands=False)
        return np.stack([np.asarray(res[m], float) for m in FIT_METRICS], axis=1), np.asarray(res["fits"], bool)
    return [Part(g.index, g.generation, g.engine, lambda c, g=g: fn(c, g)) for g in group_runs(runs)[0]]


def predict_rows(rows: Sequence[Measurement], values: dict[str, float], params: Sequence[Parameter]) -> np.ndarray:
    """Each row's predicted metric under ``values``, a part (:func:`row_parts`) at a time."""
    out = np.empty(len(rows))
    for part in row_parts(rows):
        out[list(part.index)] = part.predict(constants_for(part.generation, part.engine, values, params))
    return out


class PartCache:
    """Each part's latest predictions by the constants it was given. A finite-difference step moves one
    parameter, and only the parts it applies to are predicted again: the rest are looked up."""

    KEEP = 4  # results kept per part: the base point and the trial steps around it

    def __init__(self, parts: Sequence[Part]):
        self.parts = list(parts)
        self.memo: list[dict[tuple, Any]] = [{} for _ in self.parts]

    def results(self, values: dict[str, float], params: Sequence[Parameter]) -> list[Any]:
        out = []
        for part, memo in zip(self.parts, self.memo):
            c = constants_for(part.generation, part.engine, values, params)
            key = tuple(sorted(c.items()))
            if key not in memo:
                if memo and len(memo) >= self.KEEP:
                    memo.pop(next(iter(memo)))
                memo[key] = part.predict(c)
            out.append(memo[key])
        return out


@dataclass(frozen=True)
class Evidence:
    """What a fit is fitted to: calibration rows (each a group) and measured runs (grouped GPU x engine x
    precision)."""

    rows: tuple[Measurement, ...] = ()
    runs: tuple[Run, ...] = ()

    def groups(self) -> list[str]:
        return [m.id for m in self.rows] + list(dict.fromkeys(r.group for r in self.runs))

    def without(self, group: str) -> "Evidence":
        return Evidence(tuple(m for m in self.rows if m.id != group), tuple(r for r in self.runs if r.group != group))

    def only(self, group: str) -> "Evidence":
        return Evidence(tuple(m for m in self.rows if m.id == group), tuple(r for r in self.runs if r.group == group))


def predict_evidence(ev: Evidence, values: dict[str, float], params: Sequence[Parameter]) -> dict[str, Any]:
    """The calibration rows' predictions and the runs' (:func:`predict_runs`) under ``values``."""
    runs = predict_runs(ev.runs, lambda gen, eng: constants_for(gen, eng, values, params)) if ev.runs else None
    return {"rows": predict_rows(ev.rows, values, params) if ev.rows else np.zeros(0), "runs": runs}


def _run_targets(ev: Evidence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run index, metric index, measured) of every run residual, and each one's group weight."""
    entries = []
    for i, r in enumerate(ev.runs):
        for j, m in enumerate(FIT_METRICS):
            value, _ = run_measured(r, m)
            if value is not None:
                entries.append((i, j, value, r.group))
    counts: dict[str, int] = {}
    for e in entries:
        counts[e[3]] = counts.get(e[3], 0) + 1
    idx = np.array([[e[0], e[1]] for e in entries], int).reshape(-1, 2)
    return idx, np.array([e[2] for e in entries]), np.array([1 / np.sqrt(counts[e[3]]) for e in entries])


@dataclass
class Fit:
    values: dict[str, float]
    released: dict[str, list[str]]  # parameter -> the groups that pin it most (fitted ones only)
    kept: dict[str, str]  # parameter -> why it keeps its prior (or start)
    predicted: np.ndarray  # the calibration rows' predictions
    cost: float
    se: dict[str, float] = field(default_factory=dict)  # fitted parameter -> standard error (its own unit)
    runs: dict[str, Any] | None = None  # the runs' predictions (predict_runs)
    shares: dict[str, dict[str, float]] = field(default_factory=dict)  # parameter -> group -> share of what pins it


class _Problem:
    """The weighted residuals of ``ev`` as a function of the free parameters (scaled to [0, 1])."""

    def __init__(self, ev: Evidence, params: Sequence[Parameter], values: dict[str, float], free: list[Parameter],
                 pulled: list[Parameter], refit: bool = False):
        self.ev, self.params, self.values, self.free, self.pulled = ev, params, values, free, pulled
        self.refit = refit  # refitting shipped values to a user's runs (a noise floor; the pull as a prior)
        self.measured = np.array([m.measured for m in ev.rows])
        self.idx, self.run_measured, self.run_weight = _run_targets(ev)
        self.rows, self.runs = PartCache(row_parts(ev.rows)), PartCache(run_parts(ev.runs))
        self.groups = [m.id for m in ev.rows] + [ev.runs[i].group for i in self.idx[:, 0]]

    def unpack(self, x: np.ndarray) -> dict[str, float]:
        return {**self.values, **{p.name: p.lo + xi * (p.hi - p.lo) for p, xi in zip(self.free, x)}}

    def data_residuals(self, v: dict[str, float]) -> np.ndarray:
        predicted = np.empty(len(self.ev.rows))
        for part, got in zip(self.rows.parts, self.rows.results(v, self.params)):
            predicted[list(part.index)] = got
        r = np.log(predicted / self.measured)
        rows = r * np.sqrt(1 + (r / TOLERANCE) ** 2)
        if not self.ev.runs:
            return rows
        metrics, fits = np.full((len(self.ev.runs), len(FIT_METRICS)), np.nan), np.zeros(len(self.ev.runs), bool)
        for part, (values, ok) in zip(self.runs.parts, self.runs.results(v, self.params)):
            metrics[list(part.index)], fits[list(part.index)] = values, ok
        got = metrics[self.idx[:, 0], self.idx[:, 1]]
        ok = np.isfinite(got) & fits[self.idx[:, 0]]
        runs = robust_residual(np.where(ok, np.log(np.where(ok, got, 1) / self.run_measured), 0)) * self.run_weight
        return np.concatenate([rows, runs])

    def residuals(self, x: np.ndarray) -> np.ndarray:
        v = self.unpack(x)
        pull = [PULL * np.log(max(v[p.name], 1e-9) / max(self.values[p.name], 1e-9)) for p in self.pulled]
        return np.concatenate([self.data_residuals(v), pull])

    def x0(self) -> np.ndarray:
        return np.clip([(self.values[p.name] - p.lo) / (p.hi - p.lo) for p in self.free], 0, 1)


FTOL = 1e-4  # the solve stops when a step lowers the cost by less than this share
SCREEN_FTOL = 1e-3  # ... and, while it screens which parameters the evidence identifies, by less than this share


def _solve(problem: _Problem, x0: np.ndarray, ftol: float = FTOL) -> np.ndarray:
    return least_squares(problem.residuals, x0, bounds=(0, 1), diff_step=1e-3, xtol=1e-3, ftol=ftol).x


def _standard_errors(problem: _Problem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(standard error of each free parameter in its own unit, the Jacobian of the data residuals) at ``x``: the
    residuals' variance times ``(J^T J)^-1``. In the shipped fit, fewer residuals than parameters identify none
    (infinite errors). Refitting a user's runs, the residual variance is at least :data:`TOLERANCE` squared (a
    handful of runs fitted exactly says little about their noise) and the pull towards the start counts as prior
    information."""
    base = problem.data_residuals(problem.unpack(x))
    jac = np.empty((base.size, x.size))
    for k in range(x.size):
        h = 1e-3 if x[k] < 1 - 1e-3 else -1e-3
        xk = x.copy()
        xk[k] += h
        jac[:, k] = (problem.data_residuals(problem.unpack(xk)) - base) / h
    scale = np.array([p.hi - p.lo for p in problem.free])
    moving = np.linalg.norm(jac, axis=0) >= 1e-9
    dof = base.size - int(moving.sum())
    if not problem.refit and dof < 1:
        return np.full(x.size, np.inf), jac
    variance = float(base @ base) / max(dof, 1)
    info = jac.T @ jac
    if problem.refit:
        variance = max(variance, TOLERANCE ** 2)
        v = problem.unpack(x)
        for k, p in enumerate(problem.free):
            if p in problem.pulled:
                info[k, k] += (PULL * scale[k] / max(v[p.name], 1e-9)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.linalg.pinv(info + 1e-12 * np.eye(x.size)) * variance
        se = np.sqrt(np.maximum(np.diag(cov), 0)) * scale
        se = np.where(moving, se, np.inf)
    return se, jac


def _sensitivity_shares(problem: _Problem, jac: np.ndarray, k: int) -> dict[str, float]:
    """Each group's share of a parameter's squared sensitivity (what pins it), largest first."""
    weight: dict[str, float] = {}
    for g, j in zip(problem.groups, jac[:, k]):
        weight[g] = weight.get(g, 0.0) + float(j * j)
    total = sum(weight.values()) or 1.0
    return {g: w / total for g, w in sorted(weight.items(), key=lambda t: -t[1])}


UNPINNED = "not identified: nothing in the evidence pins it (no residual moves with it, or fewer residuals than " \
    "parameters)"


def _unmoved(problem: _Problem) -> set[int]:
    """The free parameters no residual moves with at the start (one evaluation per parameter)."""
    x = problem.x0()
    base = problem.data_residuals(problem.unpack(x))
    out = set()
    for k in range(x.size):
        xk = x.copy()
        xk[k] += 1e-3 if x[k] < 1 - 1e-3 else -1e-3
        if np.linalg.norm(problem.data_residuals(problem.unpack(xk)) - base) < 1e-9:
            out.add(k)
    return out


PINS = 0.1  # a group carrying this share of a parameter's sensitivity is named as pinning it


def fit_evidence(ev: Evidence, params: Sequence[Parameter] | None = None, start: dict[str, float] | None = None,
                 only: set[str] | None = None, free: Sequence[str] | None = None) -> Fit:
    """Fit ``params`` (default: the declared ones) to ``ev``. ``start`` replaces the priors (a user's calibration
    starts from the shipped values, and every constant but a phase scale is pulled gently back to it); ``only``
    limits which parameters may be fitted; ``free`` fixes the free set (leave-one-group-out refits) and skips the
    identifiability rounds."""
    params = list(params or parameters())
    values = {p.name: (start or {}).get(p.name, p.prior) for p in params}
    kept = {p.name: "not asked for" for p in params if only is not None and p.name not in only}
    candidates = [p for p in params if p.name not in kept and (free is None or p.name in free)]
    if free is None:  # set aside at once what nothing in the evidence moves
        still = _unmoved(_Problem(ev, params, values, candidates, [], refit=start is not None))
        kept.update({candidates[k].name: UNPINNED for k in still})
        candidates = [c for k, c in enumerate(candidates) if k not in still]
    x, screening = None, free is None
    while True:
        pulled = [p for p in candidates if start is not None and p.kind != "scale"]
        problem = _Problem(ev, params, values, candidates, pulled, refit=start is not None)
        # screening solves stop early: an unidentified parameter is a flat valley the solver would crawl along
        x = _solve(problem, problem.x0() if x is None else x, SCREEN_FTOL if screening else FTOL)
        if free is not None or not candidates:
            se = np.full(len(candidates), np.nan)
            break
        se, jac = _standard_errors(problem, x)
        fitted = problem.unpack(x)
        rel = np.array([s / max(abs(fitted[p.name]), 1e-12) for s, p in zip(se, candidates)])
        if rel.max() <= MAX_RELATIVE_SE:
            if screening:  # every one left is identified: solve them to the full tolerance
                screening = False
                continue
            break
        # every parameter nothing pins goes at once; of the rest, the least well pinned, one at a time
        drop = set(np.flatnonzero(~np.isfinite(rel))) or {int(np.argmax(rel))}
        for k in drop:
            p = candidates[k]
            kept[p.name] = (f"not identified: relative standard error {rel[k] * 100:.0f} % at {fitted[p.name]:.4g} "
                            f"(over {MAX_RELATIVE_SE * 100:.0f} %)" if np.isfinite(rel[k]) else
                            UNPINNED)
        x = np.delete(x, sorted(drop))
        candidates = [c for k, c in enumerate(candidates) if k not in drop]
    fitted = {k: float(f"{v:.4g}") for k, v in problem.unpack(x).items()} if candidates else dict(values)
    for p in params:
        if p.name not in {c.name for c in candidates}:
            fitted[p.name] = values[p.name]
    released, shares = {}, {}
    if candidates and free is None:
        for k, p in enumerate(candidates):
            shares[p.name] = _sensitivity_shares(problem, jac, k)
            released[p.name] = [g for g, w in shares[p.name].items() if w >= PINS]
    elif candidates:
        released = {p.name: [] for p in candidates}
    pred = predict_evidence(ev, fitted, params)
    residuals = problem.data_residuals(fitted) if candidates else np.zeros(0)
    return Fit(fitted, released, kept, pred["rows"], float(residuals @ residuals),
               {p.name: float(s) for p, s in zip(candidates, se)}, pred["runs"], shares)


def fit_rows(rows: Sequence[Measurement], params: Sequence[Parameter] | None = None,
             start: dict[str, float] | None = None, only: set[str] | None = None) -> Fit:
    """:func:`fit_evidence` on calibration rows alone (how ``dsxl calibrate`` fits a user's runs)."""
    return fit_evidence(Evidence(tuple(rows)), params, start, only)


def leave_one_out(rows: Sequence[Measurement], params: Sequence[Parameter] | None = None,
                  start: dict[str, float] | None = None, free: Sequence[str] | None = None) -> dict[str, float]:
    """Each row predicted by a fit to all the others (its leave-one-out prediction); ``free``: the full fit's
    fitted constants, refitted without the row (the identifiability rounds are the full fit's)."""
    params = list(params or parameters())
    folds = held_out_folds(len(rows))
    out = {}
    for k in range(folds):
        held = [m for j, m in enumerate(rows) if j % folds == k]
        f = fit_evidence(Evidence(tuple(m for j, m in enumerate(rows) if j % folds != k)), params, start, free=free)
        out.update({m.id: float(p) for m, p in zip(held, predict_rows(held, f.values, params))})
    return out


EXACT_LOO_ROWS = 40  # up to this many rows each is held out alone; beyond, each of ten folds (every tenth row)


def held_out_folds(n: int) -> int:
    """How many refits hold the rows out: one per row up to :data:`EXACT_LOO_ROWS` (leave-one-out), else ten."""
    return n if n <= EXACT_LOO_ROWS else 10


def group_errors(ev: Evidence, pred: dict[str, Any], group: str) -> dict[str, Any]:
    """A group's errors under ``pred``: a calibration row's error, or a corpus group's median |error| per metric
    (and the signed median of output tokens/s)."""
    for m, p in zip(ev.rows, pred["rows"]):
        if m.id == group:
            return {"error": float(p / m.measured - 1)}
    out: dict[str, Any] = {}
    for metric in FIT_METRICS:
        errs = []
        for i, r in enumerate(ev.runs):
            value, _ = run_measured(r, metric)
            got = pred["runs"][metric][i]
            if r.group == group and value is not None and np.isfinite(got) and pred["runs"]["fits"][i]:
                errs.append(got / value - 1)
        out[metric] = float(np.median(np.abs(errs))) if errs else None
        if metric == "output_tput_per_gpu":
            out["median_error"] = float(np.median(errs)) if errs else None
    return out


ALONE = 0.999  # a parameter this much pinned by one group has nothing else to pin it once that group is left out


def leave_one_group_out(ev: Evidence, full: Fit, params: Sequence[Parameter]) -> dict[str, dict[str, Any]]:
    """Each group predicted by a refit without it: the full fit's free parameters, starting from its values, except
    those only the group pins, which return to their priors (nothing else can move them)."""
    out = {}
    for g in ev.groups():
        alone = {n for n, by in full.shares.items() if by.get(g, 0.0) >= ALONE}
        free = [n for n in full.released if n not in alone]
        start = {**full.values, **{p.name: p.prior for p in params if p.name in alone}}
        values = _refit_from(ev.without(g), params, start, free) if free else start
        out[g] = {**group_errors(ev.only(g), predict_evidence(ev.only(g), values, params), g), "values": values}
    return out


def _refit_from(ev: Evidence, params: Sequence[Parameter], start: dict[str, float], free: list[str]
                ) -> dict[str, float]:
    """The values of a refit of ``free`` on ``ev`` that starts from ``start`` (no pull towards it)."""
    problem = _Problem(ev, params, dict(start), [p for p in params if p.name in free], [])
    return problem.unpack(_solve(problem, problem.x0()))


def calibration_rows() -> list[Measurement]:
    return [m for m in load_measurements() if m.role == "calibration"]


def shipped_evidence() -> Evidence:
    """The calibration rows and the shipped corpus (a calibration row that is also a corpus run counts once)."""
    return Evidence(tuple(m for m in calibration_rows() if m.id not in _in_corpus()), load_corpus())


def _in_corpus() -> dict[str, str]:
    """Calibration rows that are also corpus runs -> their corpus group."""
    return load_conventions()["corpus"]["also_calibration_rows"]["value"]


def generate(logo: bool = True) -> dict[str, Any]:
    """The ``fit``, ``rows``, ``groups`` and ``data_hash`` sections of templates/fitted.json, computed afresh."""
    ev = shipped_evidence()
    params = parameters()
    f = fit_evidence(ev, params)
    held = leave_one_group_out(ev, f, params) if logo else {}
    fit = {}
    for p in params:
        entry: dict[str, Any] = {"value": f.values[p.name], "released": p.name in f.released}
        if p.name in f.released:
            se = f.se[p.name]
            entry.update(se=float(f"{se:.3g}"), relative_se=round(se / max(abs(f.values[p.name]), 1e-12), 3),
                         groups={g: round(w, 3) for g, w in f.shares[p.name].items() if w >= PINS})
        else:
            entry["why_kept"] = f.kept[p.name]
        fit[p.name] = entry
    rows = {}
    for m in calibration_rows():  # a row that is also a corpus run: its group's refit predicts it
        group = _in_corpus().get(m.id, m.id)
        pred = float(predict_rows([m], f.values, params)[0])
        loo = float(predict_rows([m], held[group]["values"], params)[0]) if group in held else None
        rows[m.id] = {"measured": m.measured, "fitted": round(pred, 2), "error": round(pred / m.measured - 1, 4),
                      "loo_error": None if loo is None else round(loo / m.measured - 1, 4)}
        if group != m.id:
            rows[m.id]["corpus_group"] = group
    groups = {}
    for g in dict.fromkeys(r.group for r in ev.runs):
        fitted = group_errors(ev, {"rows": f.predicted, "runs": f.runs}, g)
        entry = {"rows": sum(r.group == g for r in ev.runs),
                 **{f"{k}": (None if v is None else round(v, 4)) for k, v in fitted.items()}}
        if g in held:
            entry["logo_error"] = None if held[g]["output_tput_per_gpu"] is None else round(
                held[g]["output_tput_per_gpu"], 4)
            entry["logo_tpot_error"] = None if held[g]["median_tpot"] is None else round(held[g]["median_tpot"], 4)
        groups[g] = entry
    return {"fit": fit, "rows": rows, "groups": groups, "data_hash": fit_data_hash()}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    result = generate(logo="--no-logo" not in argv)
    text = json.dumps(result, indent=2)
    if "--write" in argv:
        path = Path(__file__).resolve().parents[2] / "templates" / "fitted.json"
        data = json.loads(path.read_text())
        data.update(result)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
