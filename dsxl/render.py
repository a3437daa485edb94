"""Text rendering of predictions and validation (results first, units on every line). No math here."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .predict import BREAKDOWN, OPTION

LABELS = {"attention_projections": "attention projections", "attention_kernel": "attention kernel (FlashMLA)",
          "dsa_indexer": "DSA indexer", "attention_allreduce": "attention-TP all-reduce",
          "attention_launches": "attention kernel launches", "routed_experts": "routed experts",
          "shared_experts": "shared experts", "moe_launches": "MoE kernel launches", "dispatch": "dispatch (all-to-all)",
          "combine": "combine (all-to-all)", "dense_mlp": "DenseMLP (dense layers only)"}


def jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def to_json(obj: Any) -> str:
    return json.dumps(jsonable(obj), indent=1)


def _inputs_line(inputs: dict[str, Any]) -> str:
    parts = []
    for k, v in inputs.items():
        if k in ("phase", "gpu", "model", "mode"):
            continue
        unit = OPTION[k].unit if k in OPTION else ""
        text = ("on" if v else "off") if isinstance(v, bool) else f"{v:g}" if isinstance(v, (int, float)) else str(v)
        parts.append(f"{k} {text}" + (f" {unit}" if unit and unit not in ("share", "") else ""))
    return "inputs: " + ", ".join(parts)


def _num(x: float, decimals: int = 2) -> str:
    return f"{x:,.{decimals}f}"


def prediction_text(r: dict[str, Any]) -> str:
    i = r["inputs"]
    lines = [f"dsxl predict {i['phase']}: {i['model']} on {i['gpu']} ({i['mode']} model)", _inputs_line(i), ""]
    fits = "fits" if r["fits"] else "DOES NOT FIT"
    if i["phase"] == "decode":
        lines += [f"  TPOT                    {_num(r['tpot_ms'])} ms",
                  f"  tokens/s per user       {_num(r['tokens_per_s_per_user'])}",
                  f"  tokens/s per GPU        {_num(r['tokens_per_s_per_gpu'], 0)}",
                  f"  max batch               {r['max_batch']:,.0f} sequences per GPU ({fits})"]
    elif i["phase"] == "prefill":
        lines += [f"  input tokens/s per GPU  {_num(r['tokens_per_s_per_gpu'], 0)} (cache hits included)",
                  f"  forward step            {_num(r['step_ms'])} ms",
                  f"  TTFT                    {_num(r['ttft_ms'])} ms",
                  f"  memory                  {fits}"]
    else:
        lines += [f"  output tokens/s per GPU {_num(r['output_tokens_per_s_per_gpu'], 0)}",
                  f"  tokens/s per user       {_num(r['tokens_per_s_per_user'])}",
                  f"  step (decode + chunk)   {_num(r['step_ms'])} ms, prefill chunk "
                  f"{r['prefill_chunk_tokens']:,.0f} tokens",
                  f"  max batch               {r['max_batch']:,.0f} sequences per GPU ({fits})"]
    if "reason" in r:
        lines.append(f"  why                     {r['reason']}")
    b = r.get("breakdown", {})
    if "layer_ms" in b:
        lines += ["", "Per-layer time by component (ms per step, both micro-batches; components overlap under TBO):"]
        for key in BREAKDOWN:
            lines.append(f"  {LABELS[key]:<32}{b['per_layer_ms'][key]:>10.3f}")
        lines += [f"  {'= MoE layer (after overlap)':<32}{b['layer_ms']['moe_layer']:>10.3f}  x {b['layers']['moe']} layers",
                  f"  {'= dense layer':<32}{b['layer_ms']['dense_layer']:>10.3f}  x {b['layers']['dense']} layers",
                  f"  {'LM head + sampling':<32}{b['step_ms']['lm_head']:>10.3f}  per step",
                  f"  {'MTP drafting':<32}{b['step_ms']['mtp']:>10.3f}  per step",
                  f"  {'step overhead':<32}{b['step_ms']['step_overhead']:>10.3f}  per step",
                  f"  {'= forward step':<32}{b['step_ms']['step']:>10.3f}"]
    elif "per_layer_ms" in b:
        lines += ["", "Per-layer time by component (article model, ms):"]
        lines += [f"  {k:<32}{v:>10.3f}" for k, v in b["per_layer_ms"].items()]
    return "\n".join(lines) + "\n"


def validation_text(rows: list[dict[str, Any]]) -> str:
    head = f"{'id':<4} {'role':<12} {'phase':<8} {'gpu':<6} {'measured':>10} {'refined':>10} {'article':>10} " \
           f"{'refined err':>12} {'article err':>12}"
    lines = ["dsxl validate: published deployments vs the refined and the article model (tokens/s per GPU)", "",
             head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['id']:<4} {r['role']:<12} {r['phase']:<8} {r['gpu']:<6} {r['measured']:>10,.0f} "
                     f"{r['refined']:>10,.0f} {r['article']:>10,.0f} {r['error']:>+11.1%} {r['article_error']:>+11.1%}")
    lines.append("")
    for r in rows:
        note = f"; assumed: {r['assumed']}" if r["assumed"] else ""
        lines.append(f"{r['id']}: {r['metric']}; conditions {r['conditions']}{note}")
    lines.append("Calibration rows are held to +-10 %; sanity rows leave conditions unstated (see assumed).")
    return "\n".join(lines) + "\n"


def ablation_text(rows: list[dict[str, Any]], docs: dict[str, str]) -> str:
    names = list(rows[0]["ablations"])
    head = f"{'switched off':<20}" + "".join(f"{r['id']:>10}" for r in rows)
    lines = ["dsxl validate --ablate: change of the refined prediction when each refinement is switched off", "",
             f"{'refined (full)':<20}" + "".join(f"{r['refined']:>10,.0f}" for r in rows),
             f"{'measured':<20}" + "".join(f"{r['measured']:>10,.0f}" for r in rows), "", head, "-" * len(head)]
    for n in names:
        lines.append(f"{n:<20}" + "".join(f"{r['ablations'][n]['change']:>+10.1%}" for r in rows))
    lines += [""] + [f"{n}: {docs[n]}" for n in names]
    return "\n".join(lines) + "\n"
