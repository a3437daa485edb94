"""Front door of the planner: search the deployment space, size a cluster, cost it.

``plan(**inputs)`` searches, per GPU, the decode space (EP x attention TP x sequences per GPU x MTP x TBO) for the
highest output tokens/s per GPU that meets the TPOT SLA and fits in memory, and the prefill space (EP x attention
TP x tokens per forward x TBO) for the highest input tokens/s per GPU whose TTFT meets its SLA; then sizes whole EP
groups for the load and costs them. Each search is one vectorised :func:`dsxl.refined.predict.predict` call, so every chosen
configuration reproduces exactly with ``dsxl predict`` and the options it lists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from typing import Any

import numpy as np

from dsxl.refined.accuracy import parallel_shape
from dsxl.refined.models import cache_bytes
from dsxl.data.catalog import ModelArgs, load_catalog, load_engines, load_refined, read_template_text
from dsxl.inputs.request import Resolved, catalog_model_name, resolve
from dsxl.physics import memory, moe, queueing, sizing
from dsxl.planner import economics, ownership
from dsxl.data.power import system_of
from dsxl.physics.attention import mean_decode_context
from dsxl.refined.predict import predict
from dsxl.inputs.plan_request import (RANGES, SERVING, SMALLEST_LOAD, PlanInputs, check_inputs,  # noqa: F401
                                     resolve_plan)
from dsxl.core.rules import refuse

PRICE_FIELDS = {"price_input_hit": "cache_hit", "price_input_miss": "cache_miss", "price_output": "output"}
BATCH_GRID = tuple(range(1, 1025))


# --------------------------------------------------------------------------------------------- search
def mtp_options(inp: PlanInputs, m: ModelArgs) -> list[tuple[int, float]]:
    """MTP off, and on where the model ships an MTP module."""
    return [(0, 1.0)] + ([(inp.mtp_draft, inp.mtp_accept)] if m.n_mtp_layers > 0 else [])


def _tp_sizes(inp: PlanInputs, m: ModelArgs) -> np.ndarray:
    return np.array([t for t in inp.attn_tp_sizes if m.n_heads % t == 0])


def _grid(inp: PlanInputs, m: ModelArgs) -> dict[str, np.ndarray]:
    """Decode candidates: EP x attn TP x batch x MTP x TBO as broadcastable axes (this order is the tie-break)."""
    ep = np.array(inp.ep_sizes)[:, None, None, None, None]
    mtp = mtp_options(inp, m)
    tp = _tp_sizes(inp, m)[None, :, None, None, None]
    return {"ep": ep, "attn_tp": _valid_tp(ep, tp),
            "batch": np.array(inp.batch_sizes or BATCH_GRID)[None, None, :, None, None] * tp,
            "mtp_draft": np.array([d for d, _ in mtp])[None, None, None, :, None],
            "mtp_accept": np.array([a for _, a in mtp])[None, None, None, :, None],
            "tbo": np.array(inp.tbo_options)[None, None, None, None, :],
            "redundant_experts": moe.even_redundant_experts(ep, m.n_routed_experts)}


def _valid_tp(ep: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """Attention TP per candidate; where it does not divide the EP group, 1 stands in (and _fitting drops it)."""
    return np.where(ep % tp == 0, tp, 1)


def _fitting(r: dict[str, Any], grid: dict[str, np.ndarray], shape: tuple[int, ...], tp: np.ndarray) -> np.ndarray:
    """Candidates that fit in memory with attention-TP groups that divide the EP group (``tp`` the grid's
    nominal attention TP)."""
    return np.asarray(r["fits"]) & np.broadcast_to(grid["ep"] % tp == 0, shape)


def _best(values: np.ndarray, ok: np.ndarray) -> float:
    """The lowest value among the candidates that are ``ok`` (the best achievable latency)."""
    return float(np.min(np.where(ok, values, np.inf)))


def _per_ep(score: np.ndarray, ok: np.ndarray) -> list[tuple[int, ...]]:
    """For each EP size (the first axis) that has a qualifying candidate, the index of its best one."""
    masked = np.where(ok, score, -np.inf).reshape(score.shape[0], -1)
    out = []
    for i, row in enumerate(masked):
        j = int(np.argmax(row))
        if np.isfinite(row[j]):
            out.append((i, *np.unravel_index(j, score.shape[1:])))
    return out


def _at(grid: dict[str, np.ndarray], idx: tuple[int, ...]) -> dict[str, Any]:
    out = {}
    for k, v in grid.items():
        x = np.broadcast_to(v, np.broadcast_shapes(*[g.shape for g in grid.values()]))[idx]
        out[k] = bool(x) if k == "tbo" else int(x) if float(x).is_integer() else float(x)
    return out


def search_decode(gpu: str | Resolved, inp: PlanInputs) -> dict[str, Any]:
    """Per EP size, the decode configuration with the most tokens/s per GPU at the TPOT SLA (``options``; sizing
    picks among them), or why there is none; plus the Pareto frontier."""
    req = _request(gpu, inp)
    grid = _grid(inp, req.model)
    kv = mean_decode_context(inp.input_len, inp.output_len)
    r = predict("decode", req, kv_len=kv, engine=inp.engine, detail=False, calibration=inp.calibration, **grid)
    tpot, per_gpu, per_user = (np.asarray(r[k]) for k in ("tpot_ms", "tokens_per_s_per_gpu", "tokens_per_s_per_user"))
    fits = _fitting(r, grid, tpot.shape, _tp_sizes(inp, req.model)[None, :, None, None, None])
    meets = np.broadcast_to(sizing.decode_ok(fits, tpot, inp.tpot_limit_ms(), grid["mtp_draft"],
                                             req.model.n_mtp_layers), tpot.shape)
    frontier = pareto(per_user[fits], per_gpu[fits])
    if not meets.any():
        return {"feasible": False, "reason": _decode_reason(fits, tpot, inp, r), "pareto": frontier}
    options = [{**_at(grid, idx), "kv_len": kv, "tpot_ms": float(tpot[idx]),
                "tokens_per_s_per_gpu": float(per_gpu[idx]), "tokens_per_s_per_user": float(per_user[idx]),
                "max_batch": int(np.asarray(r["max_batch"])[idx]), "watts_per_gpu": _watts(r, idx, tpot.shape),
                "gpu": req.gpu.name} for idx in _per_ep(per_gpu, meets)]
    return {"feasible": True, "options": options, "pareto": frontier}


def _watts(r: dict[str, Any], idx: tuple, shape: tuple) -> float | None:
    """A searched configuration's board power (W), None for a GPU without a power row."""
    w = r.get("watts_per_gpu")
    value = None if w is None else np.broadcast_to(np.asarray(w), shape)[idx]
    return None if value is None else float(value)  # a sweep keeps None in the cells it cannot power


def _decode_reason(fits: np.ndarray, tpot: np.ndarray, inp: PlanInputs, r: dict[str, Any]) -> str:
    if not fits.any():
        need = float(np.min(np.asarray(r["weights_gb"])))
        return (f"memory binds: no EP size up to {max(inp.ep_sizes)} fits even one sequence "
                f"(weights need at least {need:.1f} GB per GPU); allow larger EP or use fp4 experts")
    return (f"the TPOT SLA binds: the best achievable TPOT is {_best(tpot, fits):.1f} ms against "
            f"{inp.tpot_limit_ms():.1f} ms")


def search_prefill(gpu: str | Resolved, inp: PlanInputs) -> dict[str, Any]:
    """Per EP size, the prefill configuration with the most input tokens/s per GPU at the TTFT SLA; ``request``:
    the GPU and model it ran on."""
    req = _request(gpu, inp)
    m = req.model
    ep = np.array(inp.ep_sizes)[:, None, None, None]
    tp = _tp_sizes(inp, m)[None, :, None, None]
    grid = {"ep": ep, "attn_tp": _valid_tp(ep, tp),
            "tokens_per_gpu": np.array(inp.forward_sizes)[None, None, :, None],
            "tbo": np.array(inp.tbo_options)[None, None, None, :],
            "redundant_experts": moe.even_redundant_experts(ep, m.n_routed_experts)}
    r = predict("prefill", req, prompt_len=inp.input_len, cache_hit=inp.cache_hit, engine=inp.engine,
                calibration=inp.calibration, detail=False, **grid)
    ttft, per_gpu = np.asarray(r["ttft_ms"]), np.asarray(r["tokens_per_s_per_gpu"])
    fits = _fitting(r, grid, ttft.shape, tp)
    # a prompt waits out the forward in progress: half of one on average (in ttft), 90 / 99 % of one at the
    # percentiles; the queue's own wait is sized for later
    step = np.broadcast_to(np.asarray(r["step_ms"]), ttft.shape)
    unqueued = queueing.unqueued_ttft_ms(ttft, step, _constant("ttft_queue_factor", req), inp.ttft_mean_limit_ms(),
                                         inp.ttft_p90_ms, inp.ttft_p99_ms)
    ok = np.broadcast_to(sizing.prefill_ok(fits, unqueued, inp.ttft_mean_limit_ms()), ttft.shape)
    if not ok.any():
        reason = "memory binds: no prefill configuration fits" if not fits.any() else \
            f"the TTFT SLA binds: the best achievable TTFT is {_best(ttft, fits):.0f} ms against {inp.ttft_mean_limit_ms():.0f} ms"
        return {"feasible": False, "reason": reason}
    options = []
    fastest = _per_ep(per_gpu, ok)
    for idx in fastest + _faster_to_first_token(per_gpu, unqueued, ok):
        opts = _at(grid, idx)
        options.append({**opts, "prompt_len": inp.input_len, "cache_hit": inp.cache_hit,
                        "tokens_per_forward": opts["tokens_per_gpu"], "ttft_ms": float(ttft[idx]),
                        "tokens_per_s_per_gpu": float(per_gpu[idx]), "watts_per_gpu": _watts(r, idx, ttft.shape),
                        "gpu": req.gpu.name})
    # "options": the fastest per EP size, what throughput sizing mixes; "ttft_options": those and, for the queue,
    # the candidates that trade throughput for a shorter TTFT
    return {"feasible": True, "options": options[:len(fastest)], "ttft_options": options, "request": req}


def _faster_to_first_token(per_gpu: np.ndarray, ttft: np.ndarray, ok: np.ndarray) -> list[tuple[int, ...]]:
    """Per EP size, the qualifying candidates that trade throughput for a shorter TTFT (the Pareto front of tokens/s
    per GPU against TTFT, less the fastest, which :func:`_per_ep` gives). A queue may need fewer instances of one
    of them, and every candidate a stricter TTFT target keeps stays in reach of a looser one."""
    out = []
    for i in range(per_gpu.shape[0]):
        flat = np.flatnonzero(ok[i].ravel())
        if flat.size < 2:
            continue
        rate, wait = per_gpu[i].ravel()[flat], ttft[i].ravel()[flat]
        order = np.lexsort((-rate, wait))  # shortest TTFT first, faster first among equals
        best = -np.inf
        front = []
        for j in order:
            if rate[j] > best:
                best = rate[j]
                front.append(j)
        out += [(i, *np.unravel_index(flat[j], per_gpu.shape[1:])) for j in front[:-1]]  # the last is the fastest
    return out


def search_aggregated(gpu: str | Resolved, inp: PlanInputs) -> dict[str, Any]:
    """Per EP size, the aggregated configuration with the most output tokens/s per GPU at both SLAs."""
    req = _request(gpu, inp)
    grid = _grid(inp, req.model)
    r = predict("aggregated", req, input_len=inp.input_len, output_len=inp.output_len, engine=inp.engine,
                calibration=inp.calibration, detail=False, cache_hit=inp.cache_hit, **grid)
    per_user, per_gpu, ttft = (np.asarray(r[k]) for k in ("tokens_per_s_per_user", "output_tokens_per_s_per_gpu",
                                                           "ttft_ms"))
    fits = _fitting(r, grid, per_user.shape, _tp_sizes(inp, req.model)[None, :, None, None, None])
    tpot = 1000 / per_user
    ok = fits & (tpot <= inp.tpot_limit_ms()) & (ttft <= inp.ttft_mean_limit_ms())
    if not ok.any():
        reason = "memory binds: nothing fits" if not fits.any() else \
            f"the SLA binds: best TPOT {_best(tpot, fits):.1f} ms, best TTFT {_best(ttft, fits):.0f} ms"
        return {"feasible": False, "reason": reason}
    options = [{**_at(grid, idx), "tpot_ms": float(tpot[idx]), "ttft_ms": float(ttft[idx]),
                "tokens_per_s_per_gpu": float(per_gpu[idx]), "tokens_per_s_per_user": float(per_user[idx]),
                "max_batch": int(np.asarray(r["max_batch"])[idx]), "watts_per_gpu": _watts(r, idx, per_gpu.shape),
                "gpu": req.gpu.name} for idx in _per_ep(per_gpu, ok)]
    return {"feasible": True, "options": options}


def pareto(per_user: np.ndarray, per_gpu: np.ndarray, points: int = 40) -> list[dict[str, float]]:
    """Throughput-latency frontier: the best tokens/s per GPU at each tokens/s per user (upper envelope)."""
    if per_user.size == 0:
        return []
    order = np.argsort(-per_user)
    u, g = per_user[order], per_gpu[order]
    best = np.maximum.accumulate(g)
    keep = np.r_[True, best[1:] > best[:-1]]
    u, g = u[keep], best[keep]
    step = max(1, len(u) // points)
    idx = sorted(set(range(0, len(u), step)) | {len(u) - 1})
    return [{"tokens_per_s_per_user": float(u[i]), "tokens_per_s_per_gpu": float(g[i])} for i in idx]


# --------------------------------------------------------------------------------------------- sizing, cost
def least_gpus(load: float, options: list[dict[str, Any]], mix: bool = True) -> dict[str, Any]:
    """The fewest GPUs that serve ``load`` (tokens/s) with whole instances of the ``options`` (one per EP size, each
    with its tokens/s per GPU at the SLA): every single size rounded up, and every bulk of one size topped up by
    instances of another for the remainder. Ties go to more capacity, then to the smaller instance size (a smaller
    failure domain; the Planner sheet breaks ties the same way)."""
    best: tuple | None = None
    for a in options:
        cap_a = a["tokens_per_s_per_gpu"] * a["ep"]
        bulk = int(sizing.floor(load / cap_a))
        mixes = [[(a, max(int(sizing.ceil(load / cap_a)), 1))]]
        remainder = load - bulk * cap_a
        if mix and bulk >= 1 and remainder > 0:
            mixes += [[(a, bulk), (b, int(sizing.ceil(remainder / (b["tokens_per_s_per_gpu"] * b["ep"]))))]
                      for b in options if b is not a]
        for parts in mixes:
            gpus = sum(n * o["ep"] for o, n in parts)
            capacity = sum(n * o["ep"] * o["tokens_per_s_per_gpu"] for o, n in parts)
            key = (gpus, -capacity)
            if best is None or key < best[0]:
                best = (key, parts)
    chosen = sorted(best[1], key=lambda part: -part[1] * part[0]["ep"])
    return {"gpus": best[0][0], "instances": sum(n for _, n in chosen), "capacity": -best[0][1],
            "mix": [{**o, "instances": n, "gpus": n * o["ep"]} for o, n in chosen]}


def _pool(load: float, options: list[dict[str, Any]], gpu_per_node: int, mix: bool = True) -> dict[str, Any]:
    """A pool sized for ``load``: its main configuration's fields, then instances, GPUs, nodes and the mix."""
    sized = least_gpus(load, options, mix)
    main = {k: v for k, v in sized["mix"][0].items() if k not in ("instances", "gpus")}
    return {**main, "instances": sized["instances"], "gpus": sized["gpus"],
            "nodes": int(sizing.nodes(sized["gpus"], gpu_per_node)), "capacity_tokens_per_s": sized["capacity"],
            "mix": sized["mix"]}


def _request(gpu: str | Resolved, inp: PlanInputs) -> Resolved:
    """A plan's GPU with its model: as the plan resolved it, or looked up for a caller that names it."""
    return gpu if isinstance(gpu, Resolved) else resolve(gpu, inp.model)


def _name(gpu: str | Resolved) -> str:
    return gpu.gpu.name if isinstance(gpu, Resolved) else gpu


def _node_gpus(inp: PlanInputs, gpu: str | Resolved) -> int:
    """GPUs per node as the GPU is bought: an NVL72 rack's compute tray, else the plan's gpu_per_node."""
    system = system_of(_name(gpu))
    return system["tray_gpus"] if system["kind"] == "rack" else inp.gpu_per_node


def _price(gpu: Resolved, inp: PlanInputs) -> float:
    return inp.price_gpu_hour if inp.price_gpu_hour is not None else gpu.gpu.price_gpu_hour


def _constant(name: str, gpu: Resolved) -> float:
    """A refined constant's value on a GPU's generation."""
    return load_refined()[name].values[gpu.gpu.generation]


def _decode_concurrency_factor(inp: PlanInputs, out_tps: float, gpu: Resolved) -> float:
    """How much more decode capacity holds the p99 of the sequences in flight than their mean (Little's law:
    requests/s x output time at the SLA's TPOT, the same for every candidate), so the planned batch holds at p99
    concurrency, not only on average."""
    mean = out_tps * inp.tpot_limit_ms() / 1000  # sequences in flight
    return queueing.headroom_factor(mean, inp.arrival_cv, _constant("decode_headroom_z", gpu))


def _prefill_slots(inp: PlanInputs, part: dict[str, Any]) -> tuple[int, float, float]:
    """(prompts an instance of this prefill configuration works on at once, ms one takes, ms of one forward):
    every attention rank's forward holds whole prompts, or one prompt over several forwards."""
    slots, service, forward = queueing.prefill_slots(part["ep"], part["attn_tp"], part["tokens_per_forward"],
                                                     part["tokens_per_s_per_gpu"], inp.input_len, inp.cache_hit)
    return int(slots), float(service), float(forward)


def prefill_queue(inp: PlanInputs, pool: dict[str, Any], in_tps: float, transfer_ms: float,
                  queue_factor: float) -> dict[str, float]:
    """TTFT percentiles of a prefill pool at ``in_tps`` (its slots and service from its main configuration;
    ``queue_factor``: its GPU's forwards waited out on arrival, ttft_queue_factor)."""
    _, service, forward = _prefill_slots(inp, pool["mix"][0])
    servers = sum(part["instances"] * _prefill_slots(inp, part)[0] for part in pool["mix"])
    return queueing.ttft_ms(servers, in_tps / inp.input_len, service, transfer_ms, inp.arrival_cv, forward,
                            queue_factor)


def _ttft_ok(inp: PlanInputs, t: dict[str, float]) -> bool:
    return all(t[k] <= limit for k, limit in (("mean", inp.ttft_mean_limit_ms()), ("p90", inp.ttft_p90_ms),
                                              ("p99", inp.ttft_p99_ms))
               if limit is not None)


def _queued_prefill_pool(inp: PlanInputs, load: float, prefill: dict[str, Any], transfer_ms: float) -> dict[str, Any]:
    """The least prefill pool for ``load`` input tokens/s whose TTFT meets the mean and percentile targets:
    throughput first, then instances of the main configuration added until the queue is short enough."""
    per_node = _node_gpus(inp, prefill["request"])
    factor = _constant("ttft_queue_factor", prefill["request"])
    pools = [_queue_sized(inp, load, _pool(load, prefill["options"], per_node, inp.mix_sizes), transfer_ms, factor)]
    pools += [_queue_sized(inp, load, _pool(load, [o], per_node, False), transfer_ms, factor)
              for o in prefill["ttft_options"]]  # each alone too: the queue may favour another than throughput
    met = [p for p in pools if p is not None]
    if not met:
        t = prefill_queue(inp, _pool(load, prefill["options"], per_node, inp.mix_sizes), 0.0, transfer_ms, factor)
        raise _Unmet(f"the TTFT targets bind: a prompt that never queues still takes {t['p99']:,.0f} ms at p99 "
                     "(the rest of the forward in progress, its own forwards, the KV transfer)")
    return min(met, key=lambda p: (p["gpus"], -p["capacity_tokens_per_s"]))


def _queue_sized(inp: PlanInputs, load: float, base: dict[str, Any], transfer_ms: float,
                 queue_factor: float) -> dict[str, Any] | None:
    """``base`` grown by the fewest instances of its main configuration that meet the TTFT targets (None when no
    number does)."""
    def grown(extra: int) -> tuple[dict[str, Any], dict[str, float]]:
        """The pool with ``extra`` more instances of its main configuration, and its TTFT."""
        main = dict(base["mix"][0], instances=base["mix"][0]["instances"] + extra)
        main["gpus"] = main["instances"] * main["ep"]
        pool = dict(base, mix=[main] + base["mix"][1:], instances=base["instances"] + extra,
                    gpus=base["gpus"] + extra * main["ep"],
                    capacity_tokens_per_s=base["capacity_tokens_per_s"] + extra * main["ep"] * main["tokens_per_s_per_gpu"])
        return pool, prefill_queue(inp, pool, load, transfer_ms, queue_factor)

    pool, t = grown(0)
    if not _ttft_ok(inp, t):  # the fewest extra instances that meet the targets: doubling, then bisection
        hi = 1
        while not _ttft_ok(inp, grown(hi)[1]):
            hi *= 2
            if hi > 1 << 16:
                return None
        lo = hi // 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _ttft_ok(inp, grown(mid)[1]) else (mid, hi)
        pool, t = grown(hi)
    pool["nodes"] = int(sizing.nodes(pool["gpus"], _node_gpus(inp, pool["gpu"])))
    return {**pool, "queue_ttft_ms": {k: t[k] for k in ("mean", "p50", "p90", "p99")}, "utilization": t["utilization"]}


class _Unmet(ValueError):
    """A plan target that no pool size meets (an infeasible plan, not an error)."""


def _transfer_ms(inp: PlanInputs, prefill: dict[str, Any], prefill_gpu: Resolved) -> float:
    """Time to send one prompt's KV cache to the decode pool over a prefill GPU's NIC (ms)."""
    t = kv_transfer(inp, prefill["options"][0], prefill_gpu)
    return memory.prompt_kv_transfer_ms(inp.input_len, t["token_bytes"], t["window_bytes"], t["nic_gb_per_s"])


def _pools(inp: PlanInputs, out_tps: float, decode: dict[str, Any], prefill: dict[str, Any] | None,
           decode_gpu: Resolved, transfer_ms: float) -> dict[str, Any]:
    """The decode (and prefill) pools that serve ``out_tps`` output tokens/s at the least GPUs: with queueing the
    prefill pool meets the TTFT targets under random arrivals and the decode pool holds p99 concurrency."""
    in_tps = sizing.input_tokens_per_s(out_tps, inp.input_len, inp.output_len)
    spread = _decode_concurrency_factor(inp, out_tps, decode_gpu) if inp.queueing else 1.0
    pools = {"decode": _pool(out_tps * spread, decode["options"], _node_gpus(inp, decode_gpu), inp.mix_sizes)}
    pools["decode"]["utilization"] = out_tps / pools["decode"]["capacity_tokens_per_s"]
    if prefill:
        pools["prefill"] = (_queued_prefill_pool(inp, in_tps, prefill, transfer_ms) if inp.queueing
                            else _pool(in_tps, prefill["options"], _node_gpus(inp, prefill["request"]),
                                       inp.mix_sizes))
        pools["prefill"].setdefault("utilization", in_tps / pools["prefill"]["capacity_tokens_per_s"])
    return pools


def _summary(pools: dict[str, Any]) -> dict[str, Any]:
    """A fleet in a line: each pool's instances, GPUs, nodes and utilization, and the totals."""
    out: dict[str, Any] = {k: {x: v[x] for x in ("instances", "gpus", "nodes", "utilization")} for k, v in pools.items()}
    out.update(total_gpus=sum(p["gpus"] for p in pools.values()), total_nodes=sum(p["nodes"] for p in pools.values()))
    return out


def size_and_cost(inp: PlanInputs, out_tps: float, decode: dict[str, Any], prefill: dict[str, Any] | None,
                  decode_gpu: Resolved, prefill_gpu: Resolved | None = None) -> dict[str, Any]:
    """One fleet per plan: the pools sized at the peak load (``out_tps`` x peak-to-average) and costed, or with
    autoscale the average fleet; ``decode``, ``prefill``, ``total_gpus`` and the cost are that fleet's, and
    ``peak_*`` / ``average_*`` summarise the fleet at each load. Each pool is costed at its own GPU's price."""
    in_tps = sizing.input_tokens_per_s(out_tps, inp.input_len, inp.output_len)
    transfer_ms = _transfer_ms(inp, prefill, prefill_gpu or decode_gpu) if prefill and inp.queueing else 0.0
    costed = "average" if inp.autoscale else "peak"
    fleets = {"peak": _pools(inp, out_tps * inp.peak_to_average, decode, prefill, decode_gpu, transfer_ms)}
    fleets["average"] = fleets["peak"] if inp.peak_to_average == 1 else \
        _pools(inp, out_tps, decode, prefill, decode_gpu, transfer_ms)
    result: dict[str, Any] = {**fleets[costed], "costed_at": costed}
    for load, pools in fleets.items():
        summary = _summary(pools)
        result.update({f"{load}_{k}": v for k, v in summary.items()})
        if prefill and inp.queueing:
            result[f"{load}_ttft_ms"] = pools["prefill"].get("queue_ttft_ms")
    result.update(total_gpus=result[f"{costed}_total_gpus"], total_nodes=result[f"{costed}_total_nodes"])
    owned = _power_and_ownership(inp, result, out_tps, decode_gpu, prefill_gpu if prefill else None)
    result.update(owned)
    hours = owned["cost_breakdown"][inp.ownership]
    decode_hour, prefill_hour = hours["decode_per_hour"], hours["prefill_per_hour"]
    hour = hours["cost_per_hour"]  # owned: the spare GPUs of whole systems too
    per_m = economics.per_million
    prices = {_price(decode_gpu, inp), _price(prefill_gpu or decode_gpu, inp)}
    cost = {"price_gpu_hour": prices.pop() if len(prices) == 1 else None, "cost_per_hour": hour,
            "cost_per_day": economics.cost_per_day(hour),
            "cost_per_m_output": per_m(decode_hour if prefill else hour, out_tps),
            "cost_per_m_input": per_m(prefill_hour, in_tps) if prefill else per_m(hour, in_tps),
            "cost_per_m_input_miss": per_m(prefill_hour, in_tps * (1 - inp.cache_hit)) if prefill else None,
            "cost_per_m_input_hit": 0.0 if prefill else None,
            "cost_per_m_output_all_in": per_m(hour, out_tps),
            "prefill_decode_node_ratio": (result["prefill"]["nodes"] / result["decode"]["nodes"]) if prefill else None}
    return {**result, **cost}


def _power_and_ownership(inp: PlanInputs, fleet: dict[str, Any], out_tps: float, decode_gpu: Resolved,
                         prefill_gpu: Resolved | None) -> dict[str, Any]:
    """The costed fleet's power (``power``; ``power_mw``: facility MW provisioned, what a hall's budget holds;
    ``tokens_per_s_per_mw``: output tokens/s served per such MW) and its hourly cost rented and owned
    (``cost_breakdown``: each with the decode and prefill pools' share; owned split into capital, power, hosting)."""
    gpus = {"decode": decode_gpu, "prefill": prefill_gpu}
    pools = {"decode": (fleet["decode"], decode_gpu.gpu.name)}
    if prefill_gpu is not None:
        pools["prefill"] = (fleet["prefill"], prefill_gpu.gpu.name)
    watts = ownership.fleet_power(pools, inp)
    rent = {f"{role}_per_hour": economics.cost_per_hour(pool["gpus"], _price(gpus[role], inp))
            for role, (pool, _) in pools.items()}
    own_parts = {role: ownership.owned_per_hour(p, inp) for role, p in watts["pools"].items()}
    own: dict[str, Any] = {f"{role}_per_hour": own_parts[role]["total"] for role in pools}
    own["spare_per_hour"] = sum(p["total"] for role, p in own_parts.items() if role not in pools)  # bought, unused
    for part in ("capital", "power", "hosting"):
        own[f"{part}_per_hour"] = sum(p[part] for p in own_parts.values())
    for costs in (rent, own):
        costs.setdefault("prefill_per_hour", 0.0)
        costs["cost_per_hour"] = costs["decode_per_hour"] + costs["prefill_per_hour"] + costs.get("spare_per_hour", 0)
        costs["cost_per_m_output_all_in"] = economics.per_million(costs["cost_per_hour"], out_tps)
    mw = watts["provisioned_facility_mw"]
    return {"power": watts, "power_mw": mw, "tokens_per_s_per_mw": out_tps / mw, "systems": watts["systems"],
            "cost_breakdown": {"ownership": inp.ownership, "rent": rent, "own": own}}


def revenue(inp: PlanInputs, out_tps: float, cost_per_day: float) -> dict[str, Any]:
    if None in (inp.price_input_hit, inp.price_input_miss, inp.price_output):
        return {}
    out_day = out_tps * 86400
    in_day = sizing.input_tokens_per_s(out_day, inp.input_len, inp.output_len)
    rev = economics.revenue_per_day(in_day * inp.cache_hit, in_day * (1 - inp.cache_hit), out_day, inp.price_input_hit,
                                 inp.price_input_miss, inp.price_output)
    return {"revenue_per_day": rev, "margin": economics.margin(rev, cost_per_day) if cost_per_day > 0 else None}


def kv_transfer(inp: PlanInputs, prefill: dict[str, Any], prefill_gpu: Resolved) -> dict[str, Any]:
    """KV moved from the prefill pool to the decode pool over the prefill GPUs' NICs: every prompt's cache (hits
    included) leaves its prefill GPU once. ``binds`` when that needs more than the NIC gives."""
    m = prefill_gpu.model
    token, window = cache_bytes(lambda f: getattr(m, f), lambda name: _constant(name, prefill_gpu),
                                m.compressed_attention)  # the window of every layer travels with the sequence
    per_token = token + window / inp.input_len
    need = prefill["tokens_per_s_per_gpu"] * per_token / 1e9
    nic = float(prefill_gpu.gpu.pcie_bw)
    return {"gb_per_s_per_prefill_gpu": need, "nic_gb_per_s": nic, "binds": need > nic,
            "bytes_per_token": per_token, "token_bytes": token, "window_bytes": window}


def _limit_prefill_by_nic(inp: PlanInputs, pre: dict[str, Any], prefill_gpu: Resolved) -> dict[str, Any]:
    """Prefill options whose KV would outrun the NIC are slowed to the NIC's rate (the transfer binds)."""
    def limited(o: dict[str, Any]) -> dict[str, Any]:
        t = kv_transfer(inp, o, prefill_gpu)
        rate = min(o["tokens_per_s_per_gpu"], t["nic_gb_per_s"] * 1e9 / t["bytes_per_token"])
        return {**o, "tokens_per_s_per_gpu": rate, "kv_transfer_binds": t["binds"]}
    return {**pre, "options": [limited(o) for o in pre["options"]],
            "ttft_options": [limited(o) for o in pre["ttft_options"]]}


def _infeasible(serving: str, reason: str, **extra: Any) -> dict[str, Any]:
    """An infeasible entry with the same keys as a feasible one (null where not applicable)."""
    return {"serving": serving, "feasible": False, "reason": reason, "decode": None, "prefill": None,
            "total_gpus": None, "total_nodes": None, "cost_per_hour": None, "cost_per_day": None,
            "cost_per_m_input": None, "cost_per_m_output": None, "cost_per_m_output_all_in": None, "accuracy": None,
            "costed_at": None, "ttft_ms": None, "peak_ttft_ms": None, "average_ttft_ms": None,
            "power": None, "power_mw": None, "tokens_per_s_per_mw": None, "cost_breakdown": None, "systems": None,
            **extra}


def _searches(inp: PlanInputs, decode_gpu: Resolved, prefill_gpu: Resolved, serving: str,
              cache: dict[tuple, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The configuration searches a plan needs, each run once per GPU and phase."""
    if serving == "aggregated":
        key = ("aggregated", decode_gpu.gpu.name)
        if key not in cache:
            cache[key] = search_aggregated(decode_gpu, inp)
        return cache[key], None
    for phase, gpu, fn in (("decode", decode_gpu, search_decode), ("prefill", prefill_gpu, search_prefill)):
        if (phase, gpu.gpu.name) not in cache:
            cache[(phase, gpu.gpu.name)] = fn(gpu, inp)
    return cache[("decode", decode_gpu.gpu.name)], cache[("prefill", prefill_gpu.gpu.name)]


def costed_gpus(sized: dict[str, Any], inp: PlanInputs) -> int:
    """The GPUs of the fleet a plan buys and costs: the peak fleet, or the average one with autoscale."""
    return sized["total_gpus"]


def capacity(inp: PlanInputs, decode: dict[str, Any], prefill: dict[str, Any] | None, budget: int,
             decode_gpu: Resolved, prefill_gpu: Resolved | None) -> float:
    """The most output tokens/s whose own load plan (the same pools, queueing targets, p99 decode headroom and
    costed fleet as ``--output-tokens-per-s`` would size) fits in ``budget`` GPUs, or with a power budget whose
    systems bought draw at most its megawatts provisioned; 0 if not even the smallest load does. Round trip: that
    load, planned as a load, needs at most the budget."""
    def fits(load: float) -> bool:
        try:
            sized = size_and_cost(inp, load, decode, prefill, decode_gpu, prefill_gpu)
        except _Unmet:
            return False
        if inp.power_budget_mw is not None:  # the systems bought, provisioned, within the megawatts
            return sized["power_mw"] <= inp.power_budget_mw
        return costed_gpus(sized, inp) <= budget
    if not fits(SMALLEST_LOAD):
        if prefill and inp.queueing:  # the TTFT targets may bind at any load: say so rather than "too small"
            in_tps = sizing.input_tokens_per_s(SMALLEST_LOAD, inp.input_len, inp.output_len)
            _queued_prefill_pool(inp, in_tps, prefill, _transfer_ms(inp, prefill, prefill_gpu or decode_gpu))
        return 0.0
    lo, hi = SMALLEST_LOAD, budget * max(o["tokens_per_s_per_gpu"] for o in decode["options"])
    for _ in range(40):  # GPUs needed never fall as the load grows, so bisection finds the edge (to 1e-12)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def plan_gpu(gpu: str | Resolved, inp: PlanInputs, serving: str, cache: dict[tuple, dict[str, Any]] | None = None,
             prefill_gpu: str | Resolved | None = None) -> dict[str, Any]:
    """One GPU (or a prefill/decode pair): searches, least-cost pools for the load (or the budget's capacity),
    cost, bands."""
    cache = {} if cache is None else cache
    dec_req = _request(gpu, inp)
    pre_req = _request(prefill_gpu, inp) if prefill_gpu is not None else dec_req
    gpu, prefill_gpu = dec_req.gpu.name, pre_req.gpu.name
    engine = load_engines()[inp.engine]
    unsupported = [r.gpu.name for r in dict.fromkeys((pre_req, dec_req))
                   if r.gpu.generation not in engine.text["generations"]]
    if unsupported:
        return _infeasible(serving, f"engine {inp.engine} does not run on {', '.join(unsupported)}; it runs on "
                                    f"{', '.join(engine.text['generations'])} GPUs", pareto=[])
    dec, pre = _searches(inp, dec_req, pre_req, serving, cache)
    frontier = dec.get("pareto", [])
    failed = [x["reason"] for x in (dec, pre) if x is not None and not x["feasible"]]
    if failed:
        return _infeasible(serving, "; ".join(failed), pareto=frontier)
    transfer = None
    if pre is not None:
        transfer = kv_transfer(inp, max(pre["options"], key=lambda o: o["tokens_per_s_per_gpu"]), pre_req)
        pre = _limit_prefill_by_nic(inp, pre, pre_req)
    if inp.power_budget_mw is not None:  # megawatts as GPUs: each at its system's provisioned facility watts
        per_gpu = max(ownership.provisioned_w_per_gpu(g, inp, True) for g in {gpu, prefill_gpu})
        inp = replace(inp, budget_gpus=int(inp.power_budget_mw * 1e6 // per_gpu))
    out_tps = inp.load_output_tokens_per_s() if inp.budget_gpus is None or inp.has_load() else None
    extra: dict[str, Any] = {}
    if inp.budget_gpus is not None:
        try:
            cap = capacity(inp, dec, pre, inp.budget_gpus, dec_req, pre_req if pre else None)
        except _Unmet as exc:  # the TTFT targets bind at any load
            return _infeasible(serving, str(exc), pareto=frontier)
        smallest = min(o["ep"] for o in dec["options"]) + (min(o["ep"] for o in pre["options"]) if pre else 0)
        extra = {"budget_gpus": inp.budget_gpus, "capacity_output_tokens_per_s": cap,
                 "budget_covers_load": None if out_tps is None else cap >= out_tps,
                 "power_budget_mw": inp.power_budget_mw}
        if cap <= 0:
            what = (f"{inp.power_budget_mw:g} MW ({inp.budget_gpus:,} GPUs at {per_gpu:,.0f} W each, provisioned)"
                    if inp.power_budget_mw is not None else f"{inp.budget_gpus} GPUs")
            return _infeasible(serving, f"the budget of {what} is below the smallest plan: one decode "
                               f"and one prefill instance take {smallest} GPUs", pareto=frontier, **extra)
        if out_tps is None or cap < out_tps:
            out_tps = cap
    try:  # a budget's plan is the load plan of its capacity (capacity sized it the same way)
        sized = size_and_cost(inp, out_tps, dec, pre, dec_req, pre_req if pre else None)
    except _Unmet as exc:
        return _infeasible(serving, str(exc), pareto=frontier, **extra)
    decode = {**sized.pop("decode"), "gpu": gpu}
    prefill = {**sized.pop("prefill"), "gpu": prefill_gpu} if pre else None
    queued = prefill.pop("queue_ttft_ms", None) if prefill else None
    sized["ttft_ms"] = queued or {"mean": (prefill or decode)["ttft_ms"], "p50": None, "p90": None, "p99": None}
    sized.setdefault("peak_ttft_ms", None)
    return {"serving": serving, "feasible": True, "reason": None, "decode": decode, "prefill": prefill,
            "pareto": frontier, "served_output_tokens_per_s": out_tps, **sized, **extra,
            "kv_transfer": transfer, "accuracy": plan_accuracy(dec_req, inp, decode, prefill, pre_req)}


def _shape(part: dict[str, Any]) -> str:
    """A chosen configuration's parallel shape (the planner runs MoE TP 1)."""
    return str(parallel_shape(part["ep"], part.get("moe_tp", 1), part["attn_tp"]))


def plan_accuracy(gpu: Resolved, inp: PlanInputs, decode: dict[str, Any], prefill: dict[str, Any] | None,
                  prefill_gpu: Resolved | None = None) -> dict[str, Any]:
    """The expected error of the chosen configurations, as their Reproduce lines' predictions give it (the family's
    band widened by the step's own spread); the plan's cost carries the wider."""
    phase = "decode" if prefill is not None else "aggregated"
    load = (inp.engine, inp.input_len, inp.output_len, inp.cache_hit)
    d = predict(phase, gpu, calibration=inp.calibration, **predict_options(decode, phase, *load))["accuracy"]
    p = predict("prefill", prefill_gpu or gpu, calibration=inp.calibration,
                **predict_options(prefill, "prefill", *load))["accuracy"] if prefill else None
    return {"band": max(d["band"], p["band"] if p else 0), "validated": d["validated"] and (p is None or p["validated"]),
            "decode": d, "prefill": p}


def predict_options(part: dict[str, Any], phase: str, engine: str, input_len: float, output_len: float,
                    cache_hit: float) -> dict[str, Any]:
    """The ``predict`` options of a chosen configuration of a plan with this engine and workload: what its Reproduce
    line runs (:func:`dsxl.render.text.predict_command` prints them)."""
    opts = {"ep": part["ep"], "attn_tp": part["attn_tp"], "redundant_experts": part.get("redundant_experts", "auto"),
            "engine": engine, "tbo": part["tbo"]}
    if phase == "prefill":
        return {**opts, "tokens_per_gpu": part["tokens_per_forward"], "prompt_len": part["prompt_len"],
                "cache_hit": part["cache_hit"]}
    context = ({"kv_len": part["kv_len"]} if phase == "decode" else
               {"input_len": input_len, "output_len": output_len, "cache_hit": cache_hit})
    return {**opts, "batch": part["batch"], **context, "mtp_draft": part["mtp_draft"], "mtp_accept": part["mtp_accept"]}


def decisive(r: dict[str, Any]) -> bool | None:
    """Whether the cheapest GPU is cheaper than the runner-up beyond both their bands (None with fewer than two)."""
    if len(r["ranking"]) < 2:
        return None
    a, b = (r["gpus"][g] for g in r["ranking"][:2])
    if r.get("ranked_on") == "capacity_output_tokens_per_s":  # the most traffic first
        ca, cb = a["capacity_output_tokens_per_s"], b["capacity_output_tokens_per_s"]
        return ca * (1 - a["accuracy"]["band"]) > cb * (1 + b["accuracy"]["band"])
    ca, cb = a["cost_per_m_output_all_in"], b["cost_per_m_output_all_in"]
    return ca * (1 + a["accuracy"]["band"]) < cb * (1 - b["accuracy"]["band"])


COMPARED_ON = "cost_per_m_output_all_in"  # every plan, mode and GPU is compared on the all-in fleet cost per M output


def _serving_choice(inp: PlanInputs, dis: dict[str, Any], agg: dict[str, Any]) -> dict[str, Any]:
    """``--serving both``: the mode that serves the load at the lower all-in cost per million output tokens (at the
    plan's costing mode), or, for a budget, the one that serves more in it; the other mode's plan is kept beside
    it and the choice says why."""
    if not (dis["feasible"] and agg["feasible"]):
        if not (dis["feasible"] or agg["feasible"]):
            return dict(dis, serving_choice="neither: " + "; ".join(x["reason"] for x in (dis, agg)), aggregated=agg)
        win, lose = (dis, agg) if dis["feasible"] else (agg, dis)
        return dict(win, serving_choice=f"{win['serving']}: {lose['serving']} does not fit ({lose['reason']})",
                    aggregated=agg)
    if inp.budgeted() and not inp.has_load():
        key, better, what, unit = ("capacity_output_tokens_per_s", max, "serves more in the budget",
                                   lambda v: f"{v:,.0f} output tokens/s")
    else:
        key, better, what, unit = (COMPARED_ON, min, f"costs less all-in ({dis['costed_at']} fleet)",
                                   lambda v: f"${v:,.3f} per M output tokens")
    win = better((dis, agg), key=lambda x: x[key])
    lose = agg if win is dis else dis
    why = f"{win['serving']} {what}: {unit(win[key])} against {unit(lose[key])} {lose['serving']}"
    return dict(win, serving_choice=why, compared_on=key, aggregated=agg, disaggregated=dis)


def plan(**kwargs: Any) -> dict[str, Any]:
    """Plan a deployment; keyword arguments are :class:`PlanInputs` fields (``gpus`` may be "all")."""
    scenario = kwargs.pop("scenario", None)
    base = scenario_inputs(scenario) if scenario else PlanInputs()
    if isinstance(kwargs.get("gpus"), str):
        kwargs["gpus"] = tuple(g.strip() for g in kwargs["gpus"].split(","))
    unknown = set(kwargs) - {f.name for f in fields(PlanInputs)}
    if unknown:
        raise ValueError(f"unknown plan input {sorted(unknown)[0]!r}; allowed: {', '.join(f.name for f in fields(PlanInputs))}")
    if "output_tokens_per_s" in kwargs or "requests_per_s" in kwargs:
        base = replace(base, output_tokens_per_s=None, requests_per_s=None)
    if "min_tokens_per_s_per_user" in kwargs:
        base = replace(base, tpot_ms=None)
    budgeted = any(kwargs.get(k) is not None for k in ("budget_gpus", "budget_nodes", "power_budget_mw"))
    if base.output_tokens_per_s is None and base.requests_per_s is None and not budgeted and not (
            {"output_tokens_per_s", "requests_per_s"} & set(kwargs)):
        base = replace(base, output_tokens_per_s=100_000.0)
    prices = load_catalog().model_prices.get(catalog_model_name(kwargs.get("model") or base.model) or "", {})
    if prices and all(getattr(base, k) is None and k not in kwargs for k in PRICE_FIELDS):
        base = replace(base, **{k: prices[v] for k, v in PRICE_FIELDS.items()})  # the provider's list prices
    inp, requests = resolve_plan(replace(base, **kwargs))
    styles = ("disaggregated", "aggregated") if inp.serving == "both" else (inp.serving,)
    cache: dict[tuple, dict[str, Any]] = {}
    entries = [(g, g) for g in inp.gpus]
    if inp.prefill_gpu is not None:
        entries = [(inp.prefill_gpu, inp.decode_gpu)]
    elif inp.mixed:
        entries += [(p, d) for p in inp.gpus for d in inp.gpus if p != d]
    gpus = {}
    for pre_gpu, dec_gpu in entries:
        key = dec_gpu if pre_gpu == dec_gpu else f"{pre_gpu}/{dec_gpu}"
        res = {s: plan_gpu(requests[dec_gpu], inp, s, cache, requests[pre_gpu]) for s in styles
               if pre_gpu == dec_gpu or s == "disaggregated"}
        main = dict(res[styles[0]])
        if "aggregated" in res and len(res) == 2:
            main = _serving_choice(inp, res["disaggregated"], res["aggregated"])
        if main["feasible"]:
            main.update(revenue(inp, main["served_output_tokens_per_s"], main["cost_per_day"]))
        gpus[key] = main
    # a budget without a load ranks by the traffic it serves; otherwise by the one cost basis
    by_capacity = inp.budgeted() and not inp.has_load()
    ranking = sorted((g for g in gpus if gpus[g]["feasible"]),
                     key=lambda g: -gpus[g]["capacity_output_tokens_per_s"] if by_capacity else gpus[g][COMPARED_ON])
    out = {"inputs": {**asdict(inp), "load_output_tokens_per_s": inp.load_output_tokens_per_s(),
                      "tpot_limit_ms": inp.tpot_limit_ms(), "ttft_limits_ms": inp.ttft_limits_ms(),
                      "scenario": scenario},
           "gpus": gpus, "ranking": ranking, "compared_on": COMPARED_ON,
           "ranked_on": "capacity_output_tokens_per_s" if by_capacity else COMPARED_ON}
    out["ranking_decisive"] = decisive(out)
    if scenario:
        out["scenario"] = scenario_check(scenario, out)
    return out


# --------------------------------------------------------------------------------------------- scenarios
def _scenarios() -> dict[str, Any]:
    return json.loads(read_template_text("plan_scenarios.json"))


def scenario_inputs(name: str) -> PlanInputs:
    scenarios = _scenarios()
    if name not in scenarios:
        refuse("scenario", name, scenarios)
    spec = scenarios[name]["inputs"]
    return PlanInputs(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})


def published_economics(published: dict[str, Any]) -> dict[str, Any]:
    """Cost, revenue and margin recomputed from the published figures (tokens per day in billions)."""
    cost = economics.cost_per_day(economics.cost_per_hour(published["nodes"] * published["gpus_per_node"],
                                                    published["price_gpu_hour"]))
    rev = economics.revenue_per_day(published["input_hit_b"] * 1e9, published["input_miss_b"] * 1e9,
                                 published["output_b"] * 1e9, published["price_input_hit"],
                                 published["price_input_miss"], published["price_output"])
    return {"cost_per_day": cost, "revenue_per_day": rev, "margin": economics.margin(rev, cost)}


def scenario_check(name: str, result: dict[str, Any]) -> dict[str, Any]:
    spec = _scenarios()[name]
    pub = spec["published"]
    ours = published_economics(pub)
    g = result["gpus"][result["inputs"]["gpus"][0]]
    # like for like: the planner's fleet for the day's average traffic against the nodes occupied on average, and
    # its fleet for the peak against the peak
    average, peak = (g["average_total_nodes"], g["peak_total_nodes"]) if g["feasible"] else (None, None)
    return {"published": pub, "recomputed": ours, "planner_nodes": average, "published_nodes": pub["nodes"],
            "planner_peak_nodes": peak, "published_peak_nodes": pub["peak_nodes"],
            "why_they_differ": spec["why_they_differ"], "source": spec["source"]}


__all__ = ["plan", "PlanInputs", "pareto", "search_decode", "search_prefill", "search_aggregated"]
