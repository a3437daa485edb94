"""Front door for measured serving runs (InferenceX's export format, :mod:`dsxl.data.runs`): each run mapped onto
the refined model as InferenceX ran it, predicted, and compared.

- A closed loop of ``conc`` requests, lengths uniform in [0.8, 1] x ISL/OSL (modelled at their means).
- Aggregated (``disagg`` false): one instance of ``decode_tp`` GPUs, expert parallel ``decode_ep`` and the rest
  tensor parallel, attention data parallel when ``decode_dp_attention``; ``dsxl predict aggregated --concurrency``.
- Disaggregated: ``prefill_num_workers`` prefill instances in front of ``decode_num_workers`` decode instances
  sharing the concurrency (:mod:`dsxl.physics.closed_loop`).

Runs are predicted a group at a time (same GPU, engine, model, dtypes and serving mode) as arrays, so predicting
the whole corpus is a few dozen chain evaluations: the joint fit predicts each group (:func:`predict_group`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from dsxl.chains import refined as refined_chain
from dsxl.chains.step import run as run_chain
from dsxl.data.catalog import load_catalog, load_engines
from dsxl.data.runs import Run, load_conventions
from dsxl.inputs.request import Resolved, engine_runs_on, normalise, request_env, resolve
from dsxl.physics import closed_loop
from dsxl.physics.attention import mean_decode_context
from dsxl.physics.serving import steps_per_prompt
from dsxl.refined.predict import predict

METRICS = ("output_tput_per_gpu", "median_tpot", "median_ttft")  # what each row predicts (tokens/s, seconds)
ROUNDS = 16  # damped fixed-point rounds of the disaggregated closed loop (in flight within 0.05 % of conc)


@dataclass(frozen=True)
class Deployment:
    """A run as the model sees it: the options of each pool and the closed loop's numbers."""

    key: tuple  # (serving, gpu, engine, model, moe_dtype, kv_dtype, memory): runs with one key are predicted together
    decode: dict[str, Any]  # predict() options of the decode (aggregated: the only) instance
    prefill: dict[str, Any]  # disaggregated: the prefill instance's options
    concurrency: int
    input_len: float
    output_len: float
    decode_instances: int = 1
    prefill_instances: int = 0
    prefill_chunk: float = 0  # tokens per prefill forward per attention rank


def _launch(run: Run) -> dict[str, Any]:
    launch = load_conventions()["launch"]
    return {**launch["default"], **launch["groups"].get(run.group, {})}


MEMORY_NUMBERS = ("mem_util", "kv_free_share")  # engine numbers a launch script may set


def _memory(launch: dict[str, Any], tp: int) -> tuple[tuple[str, float], ...]:
    """The memory budget a group's launch script set (its share of HBM, its KV share of what is free), as engine
    number overrides; a script may set them per TP."""
    given = {**{k: launch[k] for k in MEMORY_NUMBERS if k in launch}, **launch.get("by_tp", {}).get(str(tp), {})}
    return tuple(sorted(given.items()))


def _max_num_tokens(rule: str, run: Run) -> int:
    r = load_conventions()["max_num_tokens_rules"][rule]
    need = -(-(run.conc + run.isl + r["spare"]) // r["round_to"]) * r["round_to"]
    return int(max(r["floor"], need))


def _shape(tp: int, ep: int, dp_attention: bool) -> dict[str, int]:
    return {"ep": ep, "moe_tp": tp // ep, "attn_tp": 1 if dp_attention else tp}


def express(run: Run) -> tuple[Deployment | None, str | None]:
    """(the deployment the model predicts for ``run``, None) or (None, why the model cannot express it)."""
    c = load_conventions()
    gpu = load_catalog().gpu(c["gpus"][run.hardware])
    framework = c["frameworks"][run.framework]
    engine, serving = framework["engine"], framework["serving"]
    if run.spec_method not in ("", "none"):
        return None, f"speculative decoding ({run.spec_method}): the record does not state its acceptance rate"
    if not engine_runs_on(engine, gpu.generation):
        return None, f"{engine} has no profile for {gpu.generation} GPUs"
    if (serving == "disaggregated") != run.disagg:
        return None, f"framework {run.framework} is {serving}, but disagg is {str(run.disagg).lower()}"
    for side in ("decode",) + (("prefill",) if run.disagg else ()):
        tp, ep = getattr(run, f"{side}_tp"), getattr(run, f"{side}_ep")
        if ep < 1 or tp < 1 or tp % ep:
            return None, f"{side}_ep {ep} does not divide {side}_tp {tp}"
    if run.disagg and (run.prefill_num_workers < 1 or run.decode_num_workers < 1):
        return None, ("disaggregated without worker counts (prefill_num_workers and decode_num_workers 0): how its "
                      "GPUs split into prefill and decode instances is not stated")
    share = c["length_share"]["value"]
    launch = _launch(run)
    precision = c["precisions"][run.precision]
    common = {"engine": engine, "moe_dtype": precision["moe_dtype"], "kv_dtype": launch["kv_dtype"]}
    decode = {**common, **_shape(run.decode_tp, run.decode_ep, run.decode_dp_attention)}
    model = c["models"][run.model]
    key = (serving, gpu.name, engine, model, common["moe_dtype"], common["kv_dtype"], _memory(launch, run.decode_tp))
    input_len, output_len = run.isl * share, run.osl * share
    if not run.disagg:
        budget = launch.get("max_num_tokens")
        chunk = launch.get("prefill_chunk_dp" if run.decode_dp_attention else "prefill_chunk", "auto")
        decode.update(tbo=launch["tbo"], max_num_tokens=_max_num_tokens(budget, run) if budget else chunk)
        return Deployment(key, decode, {}, run.conc, input_len, output_len), None
    prefill = {**common, **_shape(run.prefill_tp, run.prefill_ep, run.prefill_dp_attention), "tbo": launch["tbo"]}
    decode["tbo"] = launch["tbo"]
    chunk = load_engines()[engine].numbers["prefill_chunk_tokens"]
    return Deployment(key, decode, prefill, run.conc, input_len, output_len, run.decode_num_workers,
                      run.prefill_num_workers, chunk), None


def _stack(deps: Sequence[Deployment], side: str) -> dict[str, Any]:
    """The options of several deployments as arrays (text options are one per key)."""
    first = getattr(deps[0], side)
    return {k: (np.array([getattr(d, side)[k] for d in deps]) if isinstance(v, (int, float)) and
                not isinstance(v, bool) else v) for k, v in first.items()}


def _aggregated(deps: Sequence[Deployment], gpu: str, model: str, constants: dict[str, Any], bands: bool
                ) -> dict[str, Any]:
    opts = _stack(deps, "decode")
    budgets = [d.decode["max_num_tokens"] for d in deps]
    opts["max_num_tokens"] = "auto" if all(b == "auto" for b in budgets) else np.array(
        [b if b != "auto" else load_engines()[opts["engine"]].numbers["prefill_chunk_tokens"] for b in budgets])
    r = predict("aggregated", gpu, model, constants=constants, detail=False,
                concurrency=np.array([d.concurrency for d in deps]), input_len=np.array([d.input_len for d in deps]),
                output_len=np.array([d.output_len for d in deps]), **opts)
    # arrays keep every case's raw number beside fits (a scalar request would null a case that does not fit)
    return {"output_tput_per_gpu": np.asarray(r["output_tokens_per_s_per_gpu"], float),
            "median_tpot": np.asarray(r["tpot_ms"], float) / 1000,
            "median_ttft": np.asarray(r["ttft_ms"], float) / 1000,
            "fits": np.broadcast_to(np.asarray(r["fits"], bool), (len(deps),)),
            "band": _bands(r["accuracy"], len(deps)) if bands else None}


def _bands(acc: Any, n: int) -> np.ndarray:
    if isinstance(acc, dict) and "bands" in acc:
        return np.broadcast_to(np.asarray(acc["bands"], float), (n,))
    return np.full(n, float(acc["band"]))


def _chain_env(phase: str, request: Resolved, opts: dict[str, Any], constants: dict[str, Any]) -> dict[str, Any]:
    """The environment of ``phase``'s chain for array options (fractional batches and token counts included)."""
    checked = normalise(phase, {k: (np.ones_like(v) if k in ("batch", "tokens_per_gpu") else v)
                                for k, v in opts.items()}, request.model.native_moe_dtype)
    env = request_env(phase, request, checked, constants)
    env.update({k: v for k, v in opts.items() if k in ("batch", "tokens_per_gpu")})
    return env


def _disaggregated(deps: Sequence[Deployment], gpu: str, model: str, constants: dict[str, Any], bands: bool
                   ) -> dict[str, Any]:
    conc = np.array([d.concurrency for d in deps], float)
    lin = np.array([d.input_len for d in deps])
    lout = np.array([d.output_len for d in deps])
    request = resolve(gpu, model)  # once for both pools
    decode_steps, prefill_steps = refined_chain.chains(request.model)
    # prefill: a forward of the engine's chunk per attention rank (at least one whole prompt)
    p = _stack(deps, "prefill")
    rank_tokens = np.maximum(np.array([d.prefill_chunk for d in deps]), lin)
    p_env = _chain_env("prefill", request, {**p, "tokens_per_gpu": rank_tokens / p["attn_tp"], "prompt_len": lin},
                       constants)
    pq = run_chain(prefill_steps, p_env)
    forward_ms = np.asarray(pq["step_ms"], float)
    prompts_per_forward = np.floor(rank_tokens / lin) * (p["ep"] * p["moe_tp"] / p["attn_tp"])
    capacity = np.array([d.prefill_instances for d in deps]) * prompts_per_forward * 1000 / forward_ms
    service = forward_ms * steps_per_prompt(lin, rank_tokens)
    # decode: the closed loop's decoding batch per attention rank, by rounds of Little's law
    o = _stack(deps, "decode")
    ranks = np.array([d.decode_instances for d in deps]) * o["ep"] * o["moe_tp"] / o["attn_tp"]
    d_opts = {**o, "batch": conc / ranks, "kv_len": mean_decode_context(lin, lout)}
    d_env = _chain_env("decode", request, d_opts, constants)
    ttft = service
    for _ in range(ROUNDS):
        q = run_chain(decode_steps, d_env)
        tpot = np.asarray(q["tpot_ms"], float)
        rate = closed_loop.request_rate(conc, ttft, tpot, lout)
        rho = closed_loop.prefill_utilization(rate, capacity)
        bound = rho >= closed_loop.SATURATED
        rate = np.where(bound, capacity * closed_loop.SATURATED, rate)
        ttft = np.where(bound, closed_loop.saturated_ttft_ms(conc, rate, tpot, lout),
                        closed_loop.prefill_ttft_ms(service, rho))
        # half a step towards Little's law: near saturation the undamped rounds can swing between two batches
        d_env["batch"] = (d_env["batch"] + closed_loop.decoding_requests(rate, tpot, lout) / ranks) / 2
    q = run_chain(decode_steps, d_env)
    tpot = np.asarray(q["tpot_ms"], float)
    rate = np.minimum(closed_loop.request_rate(conc, ttft, tpot, lout), capacity * closed_loop.SATURATED)
    decode_gpus = np.array([d.decode_instances for d in deps]) * o["ep"] * o["moe_tp"]
    fits = np.asarray(q["fits"], bool) & np.asarray(pq["fits"], bool)
    out = {"output_tput_per_gpu": rate * lout / decode_gpus, "median_tpot": tpot / 1000,
           "median_ttft": np.asarray(ttft, float) / 1000, "fits": np.broadcast_to(fits, (len(deps),)), "band": None}
    if bands:
        acc = predict("decode", request, detail=False, batch=np.maximum(np.round(conc / ranks), 1).astype(int),
                      kv_len=mean_decode_context(lin, lout), **o)["accuracy"]
        out["band"] = _bands(acc, len(deps))
    return out


@dataclass(frozen=True)
class RunGroup:
    """Runs predicted together in one vectorised call: one deployment key (serving, GPU, engine, model, dtypes,
    memory budget)."""

    key: tuple
    index: tuple[int, ...]  # the runs' positions in the list they came from
    deployments: tuple[Deployment, ...]

    @property
    def generation(self) -> str:
        return load_catalog().gpu(self.key[1]).generation

    @property
    def engine(self) -> str:
        return self.key[2]


def group_runs(runs: Sequence[Run]) -> tuple[list[RunGroup], list[str | None]]:
    """(the expressed runs in groups predicted together, each run's reason for not being expressed or None)."""
    reasons: list[str | None] = [None] * len(runs)
    members: dict[tuple, list[tuple[int, Deployment]]] = defaultdict(list)
    for i, r in enumerate(runs):
        dep, why = express(r)
        if dep is None:
            reasons[i] = why
        else:
            members[dep.key].append((i, dep))
    groups = [RunGroup(key, tuple(i for i, _ in m), tuple(d for _, d in m)) for key, m in members.items()]
    return groups, reasons


def predict_group(group: RunGroup, constants: dict[str, Any], bands: bool = True) -> dict[str, Any]:
    """One group's arrays of :data:`METRICS` and ``fits`` (and ``band`` unless ``bands`` is false: a fit needs
    none) under the constant overrides ``constants``."""
    serving, gpu, _, model = group.key[:4]
    consts = {**constants, **dict(group.key[-1])}
    return (_aggregated if serving == "aggregated" else _disaggregated)(group.deployments, gpu, model, consts, bands)


def predict_runs(runs: Sequence[Run], constants: Callable[[str, str], dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """Predictions for ``runs``: arrays (one entry per run, NaN where not expressed) of each of :data:`METRICS`,
    ``fits`` and ``band``, and ``reason`` (None, or why the run is not predicted). ``constants(generation, engine)``
    gives the constant overrides of a group."""
    n = len(runs)
    out: dict[str, Any] = {m: np.full(n, np.nan) for m in (*METRICS, "band")}
    out["fits"] = np.zeros(n, bool)
    groups, out["reason"] = group_runs(runs)
    for g in groups:
        res = predict_group(g, constants(g.generation, g.engine) if constants else {})
        idx = list(g.index)
        for k in (*METRICS, "fits", "band"):
            out[k][idx] = res[k]
        for i, ok in zip(idx, res["fits"]):
            if not ok:
                out["reason"][i] = f"does not fit in memory as dsxl budgets it ({g.key[0]} on {g.key[1]})"
    return out


def measured(run: Run, metric: str) -> tuple[float | None, bool]:
    """(the run's measured value of ``metric``, whether it was derived): a record without its output share
    (``output_tput_per_gpu`` blank) derives it from the total at the lengths' ratio (aggregated only)."""
    value = run.metrics.get(metric)
    if value is None and metric == "output_tput_per_gpu" and not run.disagg and run.metrics.get("tput_per_gpu"):
        return run.metrics["tput_per_gpu"] * run.osl / (run.isl + run.osl), True
    return value, False


def _error(predicted: float, value: float | None) -> float | None:
    return None if value is None or not np.isfinite(predicted) else float(predicted / value - 1)


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and largest |error| per metric over the rows that were predicted."""
    out = {}
    for m in METRICS:
        cells = [(abs(r[m]["error"]), r["band"]) for r in rows if r[m]["error"] is not None]
        errors = np.array([e for e, _ in cells])
        out[m] = {"rows": int(errors.size),
                  "median_abs_error": float(np.median(errors)) if errors.size else None,
                  "max_abs_error": float(errors.max()) if errors.size else None,
                  # a band aims to hold the measured value about 80 % of the time: how often it did
                  "within_band": float(np.mean([e <= b for e, b in cells])) if cells else None}
    out["median_ttft"].update(_ttft_gap(rows))
    return out


def _ttft_gap(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How far a measured TTFT runs past the engine's: dsxl predicts the engine's own (the wait for the running
    forward, the prefill and, disaggregated, the KV transfer); InferenceX times from the client, so its TTFT also
    holds the HTTP front end, tokenization and detokenization. ``median_gap_ms`` (measured - predicted, ms) and the
    share of runs measured above the prediction say how much."""
    cells = [r["median_ttft"] for r in rows if r["median_ttft"]["error"] is not None]
    gaps = np.array([c["measured"] - c["predicted"] for c in cells]) * 1000
    return {"median_gap_ms": float(np.median(gaps)) if gaps.size else None,
            "measured_above_share": float(np.mean(gaps > 0)) if gaps.size else None}


def validate_runs(runs: Sequence[Run], source: str, logo: dict[str, float] | None = None) -> dict[str, Any]:
    """Every run predicted and compared: ``rows`` (each metric's measured, predicted and error, the band and the
    reason a row is not predicted), ``summary`` (per metric) and ``groups`` (per GPU x engine x precision, with
    its leave-one-group-out error where the joint fit has one in ``logo``)."""
    p = predict_runs(runs)
    rows = []
    for i, r in enumerate(runs):
        row: dict[str, Any] = {"row": r.row, "group": r.group, "hardware": r.hardware, "framework": r.framework,
                               "precision": r.precision, "disagg": r.disagg, "isl": r.isl, "osl": r.osl,
                               "conc": r.conc, "reason": p["reason"][i],
                               "band": None if p["reason"][i] else float(p["band"][i])}
        for m in METRICS:
            value, derived = measured(r, m)
            predicted = None if p["reason"][i] else float(p[m][i])
            row[m] = {"measured": value, "predicted": predicted,
                      "error": None if predicted is None else _error(predicted, value)}
            if derived:
                row[m]["derived"] = True
        rows.append(row)
    groups = []
    for name in dict.fromkeys(r["group"] for r in rows):
        members = [r for r in rows if r["group"] == name]
        bands = [r["band"] for r in members if r["band"] is not None]
        groups.append({"group": name, "rows": len(members), "predicted": sum(r["reason"] is None for r in members),
                       "metrics": _summary(members), "band": float(np.median(bands)) if bands else None,
                       "logo_error": (logo or {}).get(name)})
    predicted = sum(r["reason"] is None for r in rows)
    return {"file": source, "rows": rows, "groups": groups,
            "summary": {"rows": len(rows), "predicted": predicted, "not_predicted": len(rows) - predicted,
                        "metrics": _summary(rows),
                        "reasons": dict(sorted(_count(r["reason"] for r in rows if r["reason"]).items()))}}


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for x in items:
        out[x] += 1
    return dict(out)
