"""Front door of the refined model (and of the article's, for comparison): ``predict(phase, gpu, **options)``.

The request is checked and resolved by :mod:`dsxl.inputs.request`; this module runs the chains and shapes the result.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dsxl.refined.accuracy import accuracy, bands, parallel_shape, step_spread, with_spread
from dsxl.refined.calibrated import load_profile, profile_accuracy, profile_constants
from dsxl.data.catalog import GPU, ModelArgs, attention_kernels
from dsxl.chains import breakdown
from dsxl.chains import refined as refined_chain
from dsxl.physics.attention import mean_decode_context
from dsxl.chains.aggregated import run_aggregated
from dsxl.physics.admission import dp_ranks
from dsxl.chains.step import run
from dsxl.physics import power
from dsxl.data.power import gpu_power
from dsxl.refined.power import instance_facility_kw
from dsxl.inputs.request import MODES, OPTION, OPTIONS, PHASES, Resolved, is_default, normalise, request_env, resolve
from dsxl.core.rules import refuse

# ------------------------------------------------------------------------------------------- outputs
SPEEDS = ("tpot_ms", "tokens_per_s_per_user", "tokens_per_s_per_gpu", "computed_tokens_per_s", "step_ms", "ttft_ms",
          "output_tokens_per_s_per_gpu", "decode_step_ms", "watts_per_gpu",
          "joules_per_token", "facility_kw_per_instance")  # null in a result that does not fit


def _breakdown(q: dict[str, Any], phase: str, request: Resolved) -> dict[str, Any]:
    """Where the step's time goes, in parts that add up: the MoE layer's components and overlap (``per_layer_ms``,
    sum ``layer_ms.moe_layer``), the dense layer's (``dense_layer_parts_ms``), the step's terms (``step_ms``, sum
    ``step_ms.step``); the attention kernel named from the GPU generation's kernel data."""
    gens = {g.generation for g in request.gpus}
    return {"per_layer_ms": breakdown.moe_layer_parts(q), "dense_layer_parts_ms": breakdown.dense_layer_parts(q),
            "layer_ms": {"moe_layer": q["moe_layer_ms"], "dense_layer": q["dense_layer_ms"]},
            "step_ms": {**breakdown.step_parts(q, phase), "step": q["step_ms"]},
            "layers": {"moe": q["n_layers"] - q["n_dense_layers"], "dense": q["n_dense_layers"]},
            "attention_kernel": " / ".join(sorted({attention_kernels()[g] for g in gens}))}


def _reason_decode(q: dict[str, Any]) -> str:
    if q["weights_gb"] >= q["usable_gb"]:
        return (f"weights alone need {q['weights_gb']:.1f} GB of the {q['usable_gb']:.1f} GB usable; "
                "raise ep or use fp4 experts")
    return (f"batch {q['batch']:g} needs {q['batch'] * q['kv_seq_gb']:.1f} GB of KV; {q['kv_budget_gb']:.1f} GB "
            f"free after {q['weights_gb']:.1f} GB of weights holds {q['max_batch']:g} sequences")


def _broadcast(out: dict[str, Any], copy: bool = True) -> dict[str, Any]:
    """Every array result in the request's full broadcast shape (read-only views unless ``copy``); scalars as plain
    Python numbers."""
    arrays = [v for v in out.values() if isinstance(v, np.ndarray) and v.ndim]
    if not arrays:
        return {k: (_scalar(v) if not isinstance(v, dict) else v) for k, v in out.items()}
    shape = np.broadcast_shapes(*[a.shape for a in arrays])
    view = {k: v if isinstance(v, dict) else np.broadcast_to(v, shape) for k, v in out.items()}
    return {k: v.copy() if copy and isinstance(v, np.ndarray) else v for k, v in view.items()}


def _scalar(x: Any) -> Any:
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    if isinstance(x, np.generic):
        x = x.item()
    return x


def predict(phase: str, gpu: Any, model: str | ModelArgs | None = None, mode: str = "refined",
            constants: dict[str, Any] | None = None, fixed: dict[str, Any] | None = None, *,
            detail: bool = True, calibration: Any = None, **options: Any) -> dict[str, Any]:
    """Predict one phase on one GPU (or a list of GPUs, a leading axis); options as in :data:`OPTIONS`
    (scalars or arrays, broadcast together).

    decode: ``tpot_ms``, ``tokens_per_s_per_user``, ``tokens_per_s_per_gpu``, ``max_batch``, ``fits``,
    ``breakdown``; prefill: ``tokens_per_s_per_gpu``, ``step_ms``, ``ttft_ms``, ``fits``; aggregated:
    ``output_tokens_per_s_per_gpu``, ``tokens_per_s_per_user``, ``fits``. Every result carries ``inputs``
    (defaults included), ``mode`` and, for an infeasible scalar request, ``reason``. ``constants`` overrides
    refined constants by name (what-ifs); ``fixed`` pins chain quantities (ablations, see :mod:`dsxl.refined.validation`).
    ``detail=False`` (searches) leaves out the breakdown, the facility power and the step's own spread in the band
    (the family's alone) and returns read-only broadcast views. ``calibration`` is a profile written by
    ``dsxl calibrate`` (a path or its dict): its constants apply, ``inputs`` names it and predictions near its rows
    carry the band of their leave-one-out errors.
    """
    if mode not in MODES:
        refuse("mode", mode, MODES)
    request = resolve(gpu, model)  # once: everything below reads the records
    opts = normalise(phase, options, request.model.native_moe_dtype)
    inputs = {"phase": phase, "gpu": request.gpu_name, "model": request.model_name, "mode": mode,
              **{k: _scalar(v) for k, v in opts.items()}}
    if mode == "article":
        from dsxl.article.predict import ARTICLE_OPTIONS, predict_article
        if not ARTICLE_OPTIONS[phase]:
            raise ValueError(f"--mode article does not model {phase} serving (the article models decode and prefill "
                             "apart); the refined model does")
        unmodelled = [k for k, v in opts.items() if k not in ARTICLE_OPTIONS[phase] and k in options
                      and not is_default(k, v)]
        if unmodelled:
            raise ValueError(f"--mode article does not model {', '.join(unmodelled)} (the refined model does); "
                             f"it takes {', '.join(ARTICLE_OPTIONS[phase])}")
        inputs = {k: v for k, v in inputs.items() if k in ("phase", "gpu", "model", "mode") or
                  k in ARTICLE_OPTIONS[phase]}
        return {"inputs": inputs, "reason": None, **predict_article(phase, request.gpu, request.model, opts),
                "watts_per_gpu": None, "joules_per_token": None, "facility_kw_per_instance": None,  # no power
                "accuracy": ARTICLE_ACCURACY, "notes": []}
    profile = load_profile(calibration)
    if profile is not None:
        inputs["calibration"] = profile["name"]
        constants = {**_profile_constants(profile, request, opts["engine"]), **(constants or {})}
    args = (phase, request, constants, fixed, detail, profile)
    if options.get("tbo") is None and np.ndim(opts["tbo"]) == 0 and opts["tbo"]:
        return _faster_overlap(*args, opts, inputs)
    return _refined(*args, opts, inputs)[0]


def _refined(phase: str, request: Resolved, constants: dict[str, Any] | None, fixed: dict[str, Any] | None,
             detail: bool, profile: Any, opts: dict[str, Any], inputs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """A refined prediction of checked options, its raw speed (tokens/s per GPU, every case, fits or not) and
    whether two-batch overlap acted."""
    inputs = {**inputs, "tbo": _scalar(opts["tbo"])}  # TBO's auto tries both
    env = request_env(phase, request, opts, constants)
    if phase == "aggregated":
        env["kv_len"] = mean_decode_context(opts["input_len"], opts["output_len"])
    decode_steps, prefill_steps = refined_chain.chains(request.model)
    if phase == "decode":
        q = run(decode_steps, env, fixed)
        resolved = q
        out = {"tpot_ms": q["tpot_ms"], "tokens_per_s_per_user": q["tokens_per_s_per_user"],
               "tokens_per_s_per_gpu": q["tokens_per_s_per_gpu"], "max_batch": q["max_batch"], "fits": q["fits"],
               "step_ms": q["step_ms"], "weights_gb": q["weights_gb"], "kv_seq_gb": q["kv_seq_gb"]}
        reason = _reason_decode(q) if np.ndim(q["fits"]) == 0 and not q["fits"] else None
    elif phase == "prefill":
        q = resolved = run(prefill_steps, env, fixed)
        out = {"tokens_per_s_per_gpu": q["tokens_per_s_per_gpu"], "computed_tokens_per_s": q["computed_tokens_per_s"],
               "step_ms": q["step_ms"], "ttft_ms": q["ttft_ms"], "fits": q["fits"], "weights_gb": q["weights_gb"]}
        reason = None
        if np.ndim(q["fits"]) == 0 and not q["fits"]:
            usable = q["usable_gb"]
            if q["weights_gb"] >= usable:
                reason = (f"weights alone need {q['weights_gb']:.1f} GB of the {usable:.1f} GB usable; raise ep or use "
                          "fp4 experts")
            else:
                reason = (f"prompts of {opts['prompt_len']:g} tokens in forwards of {opts['tokens_per_gpu']:g} need "
                          f"{q['kv_forward_gb']:.1f} GB of KV and {q['activation_gb']:.1f} GB of activations; "
                          f"{usable - q['weights_gb']:.1f} GB are free after {q['weights_gb']:.1f} GB of weights")
    else:
        out, reason, resolved = _aggregated(env, opts, fixed, decode_steps, prefill_steps)
    if isinstance(opts["redundant_experts"], str):  # auto: echo the count used
        inputs["redundant_experts"] = _scalar(resolved["redundant_used"])
    if isinstance(opts.get("max_num_tokens"), str):  # auto: the engine's budget, echoed
        inputs["max_num_tokens"] = _scalar(env["max_num_tokens"])
    notes = _overlap_notes(resolved, opts, inputs)
    if detail and phase != "aggregated":
        out["breakdown"] = _breakdown(resolved, phase, request)
    out.update(_power(request, phase, resolved, out, facility=detail))
    raw = dict(out)
    out = _broadcast(out, copy=detail)
    if out.get("fits") is False:  # a speed that cannot run is not a number: null, with the reason (a sweep keeps
        # its raw values beside its fits array, for searches and invariants)
        out.update(dict.fromkeys((k for k in SPEEDS if k in out), None))
    acc = _accuracy(phase, request, opts)
    if profile is not None:
        near = [profile_accuracy(profile, a["regime"], g.generation, opts["engine"], request.model_name, a)
                for g, a in zip(request.gpus, [acc] if isinstance(acc, dict) else acc)]
        acc = near[0] if isinstance(acc, dict) else near
    if detail:  # searches (detail=False) pick by speed; the configuration they choose is predicted in detail
        acc = _spread(acc, resolved, phase, request.gpu, opts["engine"])
    speed = resolved["tokens_per_s_per_gpu"] if phase != "aggregated" else raw["output_tokens_per_s_per_gpu"]
    return {"inputs": inputs, **out, "accuracy": acc, "reason": reason, "notes": notes}, (speed, resolved["tbo_on"])


def _spread(acc: Any, q: dict[str, Any], phase: str, gpu: Any, engine: str) -> Any:
    """The accuracy widened by the step's spread from its loosely pinned constants, per GPU of a list (the chain's
    quantities carry the GPUs as their leading axis)."""
    if isinstance(acc, dict):
        return with_spread(acc, *step_spread(q, phase, gpu.generation, engine))
    n, full = len(acc), max(np.ndim(v) for v in q.values())  # the GPU axis leads the fullest arrays
    each = [{k: (np.asarray(v)[i] if np.ndim(v) == full and np.shape(v)[0] == n else v) for k, v in q.items()}
            for i in range(n)]
    return [_spread(a, qk, phase, g, engine) for a, qk, g in zip(acc, each, gpu)]


def _faster_overlap(*args: Any) -> dict[str, Any]:
    """TBO left to the engine: a tuned deployment runs it only where it makes the step faster (engines' own
    defaults leave it off), so both are predicted and each case takes the faster; a tie keeps the overlap's
    answer, whose notes say why it could not act."""
    *common, opts, inputs = args
    (on, (on_speed, acts)), (off, (off_speed, _)) = (_refined(*common, dict(opts, tbo=flag), inputs)
                                                      for flag in (True, False))
    pick = np.asarray(off_speed > on_speed * (1 + 1e-12))
    if not pick.any():
        return on
    if pick.all():
        off["notes"] = [f"tbo off: two-batch overlap would make this step slower ({_speeds(on_speed, off_speed)})"] \
            + off["notes"]
        return off
    merged = _pick(pick, off, on)
    merged["accuracy"] = _widest(pick, off["accuracy"], on["accuracy"])
    # the echo is what was modelled, case by case
    merged["inputs"]["tbo"] = np.broadcast_to(~pick & np.asarray(acts, bool), pick.shape).copy()
    merged["notes"] = ["tbo: on where it makes the step faster, off elsewhere (inputs.tbo per case)"] + on["notes"]
    return merged


def _speeds(on: Any, off: Any) -> str:
    if np.ndim(on) or np.ndim(off):
        return "in every case"
    return f"{float(on):,.0f} tokens/s per GPU with it, {float(off):,.0f} without"


def _widest(pick: np.ndarray, off: Any, on: Any) -> Any:
    """The accuracy of cases each predicted with or without the overlap: each case's band from the prediction it
    took, and the summaries (``band``: the widest case; the spread and the rules' band) the wider of the two."""
    if not isinstance(on, dict) or "bands" not in on:
        return on
    out = dict(on, bands=np.where(pick, off["bands"], on["bands"]))
    out["band"] = float(np.max(out["bands"]))
    out.update({k: max(off[k], on[k]) for k in ("spread", "rules_band", "family_band") if k in on and k in off})
    return out


def _pick(pick: np.ndarray, yes: Any, no: Any) -> Any:
    """Case by case, ``yes`` where ``pick`` holds and ``no`` elsewhere, through nested results."""
    if isinstance(yes, dict):
        return {k: _pick(pick, v, no.get(k)) if k in no else v for k, v in yes.items()}
    if isinstance(yes, (bool, int, float, np.ndarray, np.generic)) and isinstance(no, (bool, int, float, np.ndarray,
                                                                                       np.generic)):
        if np.shape(yes) == np.shape(no) and np.array_equal(yes, no, equal_nan=True):
            return no
        try:
            return np.where(pick, yes, no)
        except ValueError:  # shapes that do not broadcast: a summary over the cases
            return no
    return no


def _power(request: Resolved, phase: str, q: dict[str, Any], out: dict[str, Any], facility: bool = True
           ) -> dict[str, Any]:
    """Board power at this configuration (``watts_per_gpu``, W) and GPU energy per token (``joules_per_token``:
    output tokens for decode and aggregated, input tokens for prefill), as InferenceX reports them from board
    telemetry, and its systems' facility power per instance unless ``facility`` is false (a search prices the
    configuration it chooses, not every candidate); None for a GPU without a row in ``templates/power.csv``.
    Aggregated serving takes the decode step's busy share."""
    rows = [gpu_power(g.name) for g in request.gpus]
    if any(r is None for r in rows):
        return {"watts_per_gpu": None, "joules_per_token": None, "facility_kw_per_instance": None}
    busy = power.busy_share(np.asarray(q["step_ms"]), np.asarray(q["overhead_ms"]))
    rate = out["output_tokens_per_s_per_gpu" if phase == "aggregated" else "tokens_per_s_per_gpu"]
    instance = np.asarray(q["instance_gpus"])
    if isinstance(request.gpu, GPU):
        watts = power.gpu_watts(rows[0].idle_w, rows[0].tdp_w, busy)
        kw = instance_facility_kw(rows[0].gpu, instance, busy) if facility else None
    else:  # a leading GPU axis: each GPU's own board and system
        lead = (len(rows),) + (1,) * max(np.ndim(busy) - 1, 0)
        watts = power.gpu_watts(np.array([r.idle_w for r in rows]).reshape(lead),
                                np.array([r.tdp_w for r in rows]).reshape(lead), busy)
        shape = np.broadcast_shapes(np.shape(instance), np.shape(busy), lead)
        each, busy_each = np.broadcast_to(instance, shape), np.broadcast_to(busy, shape)
        kw = np.stack([instance_facility_kw(r.gpu, each[k], busy_each[k]) for k, r in enumerate(rows)]) \
            if facility else None
    return {"watts_per_gpu": watts, "joules_per_token": power.joules_per_token(watts, np.asarray(rate)),
            "facility_kw_per_instance": kw}


def _profile_constants(profile: dict[str, Any], request: Resolved, engine: str) -> dict[str, Any]:
    """A profile's overrides for one GPU, or those every GPU of a list shares."""
    each = [profile_constants(profile, g.generation, engine) for g in request.gpus]
    return {k: v for k, v in each[0].items() if all(e.get(k) == v for e in each)}


FUSED_ALL_TO_ALL = ("the fused MoE kernel (DeepGEMM Mega MoE) dispatches and combines inside itself: there is no "
                    "separately issued all-to-all to hide")
NO_ALL_TO_ALL = "there is no expert all-to-all to hide (attention TP covers the instance; only an all-reduce follows)"


def _overlap_notes(q: dict[str, Any], opts: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    """TBO or SBO asked for where it cannot act runs off: echo it as off and say why (not an error)."""
    notes = []
    for flag, on, minimum in (("tbo", "tbo_on", "tbo_min_tokens" if "batch" in opts else "tbo_min_prefill_tokens"),
                              ("sbo", "sbo_on", None)):
        asked = opts.get(flag, False)
        if np.ndim(asked) or np.ndim(q[on]) or not asked or q[on]:
            continue
        inputs[flag] = False
        if q["fused_on"]:
            why = FUSED_ALL_TO_ALL
        elif q["a2a_ranks"] <= 1:
            why = NO_ALL_TO_ALL
        else:
            why = (f"{q['overlap_rank_tokens']:g} tokens per attention rank per step are below {opts['engine']}'s "
                   f"minimum of {q[minimum]:g} for two micro-batches")
        notes.append(f"{flag} off: {why}")
    return notes


ARTICLE_ACCURACY = {"band": None, "basis": [], "validated": False, "regime": None,
                    "note": "the article's model is the teaching reference, not calibrated: dsxl validate shows its "
                            "errors (C1 +45 %)"}


def _accuracy(phase: str, request: Resolved, opts: dict[str, Any]) -> Any:
    """The expected error of this request (a list, one per GPU, for a list of GPUs)."""
    if not isinstance(request.gpu, GPU):
        return [_accuracy(phase, replace(request, gpu=g), opts) for g in request.gpu]
    context = opts.get("kv_len", opts.get("prompt_len", opts.get("input_len")))
    shape = parallel_shape(opts["ep"], opts["moe_tp"], opts["attn_tp"])
    args = (phase, request.gpu.generation, opts["engine"], request.model_name, context, opts.get("batch"), opts["tbo"],
            opts["moe_dtype"], opts.get("mtp_draft", 0), shape)
    acc = accuracy(*args)
    if any(np.ndim(x) for x in (context, opts.get("batch"), opts.get("mtp_draft", 0), shape)):
        acc["bands"] = bands(*args)  # one per case
        acc["band"] = round(float(max(acc["band"], acc["bands"].max())), 4)  # the widest of them
    return acc


def quantities(phase: str, gpu: Any, model: str | ModelArgs | None = None, constants: dict[str, Any] | None = None,
               **options: Any) -> dict[str, Any]:
    """Every intermediate quantity of the refined decode or prefill chain (the workbook's audit trail)."""
    if phase not in ("decode", "prefill"):
        raise ValueError(f"phase must be decode or prefill; got {phase!r}")
    request = resolve(gpu, model)
    env = request_env(phase, request, normalise(phase, options, request.model.native_moe_dtype), constants)
    decode_steps, prefill_steps = refined_chain.chains(request.model)
    return run(decode_steps if phase == "decode" else prefill_steps, env)


CONCURRENCY_ROUNDS = 4  # fixed-point rounds of Little's law before the final run (the workbook writes as many)


def _aggregated(env: dict[str, Any], opts: dict[str, Any], fixed: dict[str, Any] | None, decode_steps: list[Any],
                prefill_steps: list[Any]) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """Prefill and decode on the same GPUs, as engines admit prompts (:mod:`dsxl.chains.aggregated`). With
    ``concurrency`` the decoding batch follows from Little's law: the requests in flight less those waiting for
    or in prefill (a few fixed-point rounds; the share moves by well under 1 % after the third)."""
    if opts["batch"] is None:
        ranks = dp_ranks(np.asarray(opts["ep"]) * np.asarray(opts["moe_tp"]), np.asarray(opts["attn_tp"]))
        batch = np.asarray(opts["concurrency"], dtype=float) / ranks
        for _ in range(CONCURRENCY_ROUNDS):
            d, a = run_aggregated(dict(env, batch=batch), decode_steps, prefill_steps, fixed)
            batch = np.asarray(opts["concurrency"]) * a["decoding_share"] / ranks
        env = dict(env, batch=batch)
    d, a = run_aggregated(env, decode_steps, prefill_steps, fixed)
    out = {"output_tokens_per_s_per_gpu": a["output_tokens_per_s_per_gpu"],
           "tokens_per_s_per_user": a["tokens_per_s_per_user"], "tpot_ms": a["tpot_ms"], "ttft_ms": a["ttft_ms"],
           "step_ms": a["step_ms"], "decode_step_ms": d["step_ms"], "decoding_batch": env["batch"],
           "prefill_chunk_tokens": a["piece_tokens"], "straggler_share": a["straggler_share"],
           "max_batch": d["max_batch"], "fits": d["fits"]}
    reason = _reason_decode(d) if np.ndim(d["fits"]) == 0 and not d["fits"] else None
    return out, reason, d


__all__ = ["predict", "quantities", "OPTIONS", "OPTION", "PHASES", "MODES"]
