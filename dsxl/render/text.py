"""Text rendering of predictions and validation (results first, units on every line). No math here."""

from __future__ import annotations

import shlex
import textwrap

import json
import math
from typing import Any

import numpy as np

from dsxl.core.shell import continued
from dsxl.chains.breakdown import LABELS
from dsxl.inputs.request import OPTION
from dsxl.planner.plan import predict_options
from dsxl.refined.validation import families

def jsonable(x: Any) -> Any:
    """Plain JSON values; a non-finite number (an undefined result) becomes null."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def to_json(obj: Any) -> str:
    return json.dumps(jsonable(obj), indent=1, allow_nan=False)


def _inputs_line(inputs: dict[str, Any]) -> str:
    parts = []
    for k, v in inputs.items():
        if k in ("phase", "gpu", "model", "mode") or v is None:  # None: the alternative option was given
            continue
        unit = OPTION[k].unit if k in OPTION else ""
        text = (("on" if v else "off") if isinstance(v, bool) else
                (f"{v:,.0f}" if float(v).is_integer() else f"{v:,.4g}") if isinstance(v, (int, float)) else str(v))
        parts.append(f"{k} {text}" + (f" {unit}" if unit and unit not in ("share", "") else ""))
    return "\n".join(textwrap.wrap("inputs: " + ", ".join(parts), 120, subsequent_indent="        "))


def _count(n: float, noun: str) -> str:
    """"1 node", "2 nodes": a whole count with its noun."""
    return f"{n:,.0f} {noun}" + ("" if n == 1 else "s")


def _num(x: float | None, decimals: int = 2) -> str:
    """A number with thousands separators, or "does not fit" for the null speed of a configuration that cannot
    run."""
    return "does not fit" if x is None else f"{x:,.{decimals}f}"


def band_text(accuracy: dict[str, Any]) -> str:
    """" ±12 %" (empty for the uncalibrated article model)."""
    return "" if accuracy.get("band") is None else f" ±{accuracy['band'] * 100:.0f} %"


def accuracy_line(accuracy: dict[str, Any]) -> str:
    if accuracy.get("band") is None:
        return f"  accuracy                not estimated: {accuracy['note']}"
    basis = ", ".join(accuracy["basis"]) or "none"
    state = "validated" if accuracy["validated"] else "NOT VALIDATED"
    text = (f"  accuracy                ±{accuracy['band'] * 100:.0f} % expected error ({state}; {accuracy['regime']} regime; "
            f"calibration rows: {basis}): {accuracy['note']}")
    if accuracy.get("drivers"):  # the step's own spread, from the constants it rests on
        each = "; ".join(f"{d['constant']} {d['share'] * 100:.0f} % of the step, ±{d['uncertainty'] * 100:.0f} %"
                         for d in accuracy["drivers"])
        text += (f"; widened from the rules' ±{accuracy['rules_band'] * 100:.0f} % by the step's own spread "
                 f"±{accuracy['spread'] * 100:.0f} % (most from {each})")
    return text


def _labelled(line: str) -> list[str]:
    """A labelled line of a prediction, wrapped at WIDTH bytes under its value column (± is two bytes)."""
    return textwrap.wrap(line, WIDTH - line.count("±"), subsequent_indent=" " * 26) or [line]


def prediction_text(r: dict[str, Any]) -> str:
    i = r["inputs"]
    lines = [f"dsxl predict {i['phase']}: {i['model']} on {i['gpu']} ({i['mode']} model)", _inputs_line(i), ""]
    fits = "not estimated" if r["fits"] is None else "fits" if r["fits"] else "DOES NOT FIT"
    pm = band_text(r["accuracy"])
    def speed(key: str, unit: str = "", decimals: int = 2) -> str:
        return "does not fit" if r[key] is None else f"{_num(r[key], decimals)}{unit}{pm}"
    if i["phase"] == "decode":
        lines += [f"  TPOT                    {speed('tpot_ms', ' ms')}",
                  f"  tokens/s per user       {speed('tokens_per_s_per_user')}",
                  f"  tokens/s per GPU        {speed('tokens_per_s_per_gpu', '', 0)}",
                  f"  max batch               {r['max_batch']:,.0f} sequences per attention rank ({fits})"]
    elif i["phase"] == "prefill":
        lines += [f"  input tokens/s per GPU  {speed('tokens_per_s_per_gpu', '', 0)} (cache hits included)",
                  f"  forward step            {speed('step_ms', ' ms')}",
                  f"  TTFT                    {speed('ttft_ms', ' ms')}",
                  f"  memory                  {fits}"]
    else:
        lines += [f"  output tokens/s per GPU {speed('output_tokens_per_s_per_gpu', '', 0)}",
                  f"  tokens/s per user       {speed('tokens_per_s_per_user')} (time to first token counted)",
                  f"  TPOT / TTFT             {speed('tpot_ms', ' ms')} / {speed('ttft_ms', ' ms')}",
                  f"  decoding batch          {r['decoding_batch']:,.1f} sequences per attention rank; "
                  f"prompt pieces of {r['prefill_chunk_tokens']:,.0f} tokens slow {r['straggler_share']:.0%} of steps",
                  f"  max batch               {r['max_batch']:,.0f} sequences per attention rank ({fits})"]
    if r.get("watts_per_gpu") is not None:
        what = "input" if i["phase"] == "prefill" else "output"
        lines.append(f"  power per GPU           {r['watts_per_gpu']:,.0f} W at load; "
                     f"{r['joules_per_token']:.3g} J per {what} token (GPU board, as InferenceX measures)")
        lines.append(f"  facility power          {r['facility_kw_per_instance']:,.1f} kW per instance (its GPUs' "
                     "share of their systems, x PUE)")
    lines += _labelled(accuracy_line(r["accuracy"]))
    if r.get("reason"):
        lines += _labelled(f"  why                     {r['reason']}")
    for note in r.get("notes") or []:
        lines += _labelled(f"  note                    {note}")
    b = r.get("breakdown") or {}
    if b.get("layer_ms"):
        lines += _breakdown_lines(b)
    elif b.get("per_layer_ms"):
        lines += ["", "Per-layer time by component (article model, ms):"]
        lines += [f"  {k:<32}{v:>10.3f}" for k, v in b["per_layer_ms"].items()]
    return "\n".join(lines) + "\n"


def _breakdown_lines(b: dict[str, Any]) -> list[str]:
    """The refined breakdown: each block's parts, then the total they add up to."""
    def row(key: str, v: float, tail: str = "") -> str:
        label = f"{LABELS[key]} ({b['attention_kernel']})" if key == "attention_kernel" else LABELS[key]
        return f"  {label:<36}{v:>10.3f}{tail}"
    lines = ["", "Per-layer time by component (ms per step, both micro-batches):"]
    lines += [row(key, v) for key, v in b["per_layer_ms"].items()]
    lines.append(row("moe_layer", b["layer_ms"]["moe_layer"], f"  x {b['layers']['moe']} layers"))
    lines += [row(key, v) for key, v in b["dense_layer_parts_ms"].items()]
    lines += [row("dense_layer", b["layer_ms"]["dense_layer"], f"  x {b['layers']['dense']} layers"), "",
              "Forward step (ms):"]
    lines += [row(key, v) for key, v in b["step_ms"].items()]
    return lines


def _or_dash(x: Any, spec: str) -> str:
    """A number in ``spec``, or a dash padded to the same width."""
    if x is None:
        width = "".join(ch for ch in spec.split(",")[0].split(".")[0] if ch.isdigit())
        return format("—", f">{width}") if width else "—"
    return format(x, spec)


def validation_text(rows: list[dict[str, Any]]) -> str:
    head = (f"{'id':<4} {'role':<11} {'phase':<10} {'gpu':<6} {'engine':<6} {'measured':>9} {'refined':>9} "
            f"{'error':>7} {'LOGO err':>8} {'article':>9} {'art. err':>8}")
    lines = ["dsxl validate: published deployments vs the refined and the article model (tokens/s per GPU; per",
             "user where the metric says so). LOGO err: the row predicted by the joint fit without it (the fit also",
             "holds the InferenceX corpus: dsxl validate --runs; C6 is a corpus run, left out with its group).", "",
             head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['id']:<4} {r['role']:<11} {r['phase']:<10} {r['gpu']:<6} "
                     f"{r['conditions'].get('engine') or '':<6} {r['measured']:>9,.1f} {r['refined']:>9,.1f} "
                     f"{r['error']:>+7.1%} {_or_dash(r['loo_error'], '>+8.1%')} {_or_dash(r['article'], '>9,.1f')} "
                     f"{_or_dash(r['article_error'], '>+8.1%')}")
    lines.append("")
    for r in rows:
        conditions = ", ".join(f"{k} {v}" for k, v in r["conditions"].items())
        note = f"; assumed: {r['assumed']}" if r["assumed"] else ""
        lines += textwrap.wrap(f"{r['id']}: {r['metric']}; {conditions}{note}", 120, subsequent_indent="    ")
    lines.append("Calibration rows are held to +-10 %; sanity rows leave conditions unstated (see assumed).")
    lines += ["", "By family (GPU generation / engine / regime): the band a prediction of that family carries", ""]
    head = f"{'family':<36} {'rows':<12} {'max |error|':>12} {'max |LOGO|':>10} {'band':>6}"
    lines += [head, "-" * len(head)]
    for f in families(rows):
        err = f"{f['max_abs_error']:.1%}" if f["calibrated"] else "sanity only"
        loo = f"{f['max_abs_loo_error']:.1%}" if f["calibrated"] else ""
        lines.append(f"{f['family']:<36} {', '.join(f['rows']):<12} {err:>12} {loo:>10} {f['band']:>6.0%}")
    lines += textwrap.wrap("A band is the relative error a measurement should stay within about 80 % of the time, "
                           "from the leave-one-group-out errors of the nearest calibration rows and corpus groups, "
                           "widened for every way a configuration leaves them (README: accuracy).", 120)
    return "\n".join(lines) + "\n"


def _pct(x: Any) -> str:
    return "—" if x is None else f"{x:.1%}"


def runs_text(result: dict[str, Any], verbose: bool = False) -> str:
    """``dsxl validate --runs``: per group and overall, the median and largest |error| of each metric; with
    ``verbose``, every row."""
    s = result["summary"]
    lines = [f"dsxl validate --runs {result['file']}: {s['rows']:,} runs, {s['predicted']:,} predicted, "
             f"{s['not_predicted']:,} not predicted (reasons below)",
             *textwrap.wrap("error = predicted / measured - 1 of output tok/s per (decode) GPU, median TPOT and median "
                            "TTFT, as |error| median and max per group; LOGO: the group's median |error| of output "
                            "tok/s when the joint fit leaves the group out", 120), ""]
    head = (f"{'group':<26} {'rows':>5} {'output tok/s/GPU':>17} {'median TPOT':>15} {'median TTFT':>15} "
            f"{'band':>5} {'LOGO':>6}")
    lines += [head, "-" * len(head)]

    def cells(metrics: dict[str, Any]) -> str:
        return " ".join(f"{_pct(metrics[m]['median_abs_error']):>7} {_pct(metrics[m]['max_abs_error']):>7}"
                        for m in ("output_tput_per_gpu", "median_tpot", "median_ttft"))

    for g in result["groups"]:
        rows = f"{g['predicted']}/{g['rows']}" if g["predicted"] != g["rows"] else str(g["rows"])
        lines.append(f"{g['group']:<26} {rows:>5} {cells(g['metrics'])} {_pct(g['band']):>5} "
                     f"{_pct(g['logo_error']):>6}")
    lines += ["-" * len(head), f"{'all':<26} {s['predicted']:>5} {cells(s['metrics'])}"]
    cover = {m: s["metrics"][m]["within_band"] for m in ("output_tput_per_gpu", "median_tpot")}
    if None not in cover.values():
        lines += ["", f"Within their band (bands aim at about 80 %): output tok/s/GPU {cover['output_tput_per_gpu']:.0%} "
                      f"of runs, median TPOT {cover['median_tpot']:.0%}."]
    gap = s["metrics"]["median_ttft"]
    if gap["median_gap_ms"] is not None:
        lines += [""] + textwrap.wrap(
            f"TTFT: dsxl predicts the engine's (the wait for the running forward, the prefill and, disaggregated, the "
            f"KV transfer); a benchmark client's TTFT also holds the HTTP front end and tokenization. Here the measured "
            f"TTFT is above the prediction in {gap['measured_above_share']:.0%} of runs, by a median "
            f"{gap['median_gap_ms']:,.0f} ms.", 120)
    if verbose:
        lines += ["", f"{'row':>5} {'group':<26} {'isl/osl':>11} {'conc':>5} {'out meas':>9} {'pred':>9} "
                      f"{'TPOT ms':>8} {'pred':>7} {'TTFT ms':>8} {'pred':>8}"]
        for r in result["rows"]:
            o, t, f = r["output_tput_per_gpu"], r["median_tpot"], r["median_ttft"]

            def ms(x: Any) -> str:
                return "—" if x is None else f"{x * 1000:,.1f}"
            lines.append(f"{r['row']:>5} {r['group']:<26} {r['isl']:>5}/{r['osl']:<5} {r['conc']:>5} "
                         f"{_or_dash(o['measured'], '>9,.1f')} {_or_dash(o['predicted'], '>9,.1f')} "
                         f"{ms(t['measured']):>8} {ms(t['predicted']):>7} {ms(f['measured']):>8} "
                         f"{ms(f['predicted']):>8}")
    if s["reasons"]:
        lines += ["", "Not predicted:"]
        for why, n in s["reasons"].items():
            lines += textwrap.wrap(f"{n} run{'s' if n != 1 else ''}: {why}", 120, initial_indent="- ",
                                   subsequent_indent="  ")
    return "\n".join(lines) + "\n"


def ablation_text(rows: list[dict[str, Any]], docs: dict[str, str]) -> str:
    names = list(rows[0]["ablations"])
    head = f"{'switched off':<19}" + "".join(f"{r['id']:>8}" for r in rows)  # 12 rows in 120 columns
    lines = ["dsxl validate --ablate: change of the refined prediction when each refinement is switched off", "",
             f"{'refined (full)':<19}" + "".join(f"{r['refined']:>8,.0f}" for r in rows),
             f"{'measured':<19}" + "".join(f"{r['measured']:>8,.0f}" for r in rows), "", head, "-" * len(head)]
    for n in names:
        lines.append(f"{n:<19}" + "".join(f"{r['ablations'][n]['change']:>+8.1%}" for r in rows))
    lines += [""] + [f"{n}: {docs[n]}" for n in names]
    return "\n".join(lines) + "\n"


def _one(d: dict[str, Any], prefill: bool) -> str:
    tbo = "TBO" if d["tbo"] else "no TBO"
    if prefill:
        return f"EP{d['ep']} attn TP{d['attn_tp']} {d['tokens_per_forward']:,} tokens/forward {tbo}"
    mtp = f"MTP {d['mtp_draft']}/{d['mtp_accept']:g}" if d["mtp_draft"] else "no MTP"
    return f"EP{d['ep']} attn TP{d['attn_tp']} batch {d['batch']} {mtp} {tbo}"


def _cfg(d: dict[str, Any], prefill: bool = False) -> str:
    """A pool's configuration; with a mix of instance sizes, each with its count."""
    mix = d.get("mix") or [d]
    if len(mix) == 1:
        return _one(mix[0], prefill)
    return " + ".join(f"{m['instances']} x {_one(m, prefill)}" for m in mix)


GENERAL_NUMBERS = ("prompt_len", "cache_hit", "kv_len", "input_len", "output_len", "mtp_accept")  # printed as :g


def predict_command(d: dict[str, Any], phase: str, gpu: str, inputs: dict[str, Any]) -> str:
    """The dsxl predict command that reproduces one chosen configuration: the options the plan's own band was
    predicted with (:func:`dsxl.planner.plan.predict_options`), and the profile the plan used."""
    opts = predict_options(d, phase, inputs["engine"], inputs["input_len"], inputs["output_len"], inputs["cache_hit"])
    tbo = opts.pop("tbo")
    if isinstance(inputs.get("calibration"), str) and inputs["calibration"].strip():  # the profile the plan used
        opts["calibration"] = inputs["calibration"]
    flags = " ".join(f"--{k.replace('_', '-')} {shlex.quote(f'{v:g}' if k in GENERAL_NUMBERS else str(v))}"
                     for k, v in opts.items()) + (" --tbo" if tbo else " --no-tbo")
    return f"dsxl predict {phase} --gpu {shlex.quote(gpu)} --model {shlex.quote(str(inputs['model']))} {flags}"


def _answer(r: dict[str, Any], best: str) -> str:
    """The line that answers the question asked: the fleet and its cost for a load, tokens/s for a budget."""
    x, i = r["gpus"][best], r["inputs"]
    on = "" if len(r["gpus"]) == 1 else f" on {best}, the cheapest"
    if x.get("power_budget_mw") is not None and i["load_output_tokens_per_s"] is None:
        on = "" if len(r["gpus"]) == 1 else f" on {best}, the most"
        return (f"Answer: {x['power_budget_mw']:g} MW serve at most {x['capacity_output_tokens_per_s']:,.0f} output "
                f"tokens/s ({_requests(x, i)}) at the SLA{on} ({x['total_gpus']:,} GPUs, {x['power_mw']:.2f} MW "
                "provisioned; "
                f"±{x['accuracy']['band'] * 100:.0f} %).")
    if x.get("capacity_output_tokens_per_s") is not None and i["load_output_tokens_per_s"] is None:
        return (f"Answer: {x['budget_gpus']:,} GPUs serve at most {x['capacity_output_tokens_per_s']:,.0f} output "
                f"tokens/s ({_requests(x, i)}) at the SLA{on} (±{x['accuracy']['band'] * 100:.0f} %).")
    return (f"Answer: {x['total_gpus']:,} GPUs = {_systems_text(x)}{on}, ${x['cost_per_day']:,.0f} per day, "
            f"for {i['load_output_tokens_per_s']:,.0f} output tokens/s at the SLA (±{x['accuracy']['band'] * 100:.0f} %).")


def _requests(x: dict[str, Any], i: dict[str, Any]) -> str:
    """A budget's capacity in requests per second (output tokens/s over the output length)."""
    return f"{x['capacity_output_tokens_per_s'] / i['output_len']:,.1f} requests/s"


def _node_noun(x: dict[str, Any], gpu: str) -> str:
    """What a node of this GPU is called: an NVL72 rack's compute tray, or a node."""
    return "tray" if any(e["gpu"] == gpu and e["kind"] == "rack" for e in x.get("systems") or []) else "node"


def _systems_text(x: dict[str, Any]) -> str:
    """How the fleet is bought: nodes, or NVL72 trays in whole racks."""
    systems = x.get("systems") or []
    if not any(e["kind"] == "rack" for e in systems):
        return f"{x['total_nodes']:,.0f} nodes"
    return " + ".join(f"{_count(e['nodes'], 'tray')} in {_count(e['racks'], 'NVL72 rack')}" if e["kind"] == "rack"
                      else _count(e["nodes"], "node") for e in systems)


def _power_lines(x: dict[str, Any]) -> list[str]:
    """The fleet's megawatts and tokens per megawatt, and its cost owned beside rented."""
    if not x.get("power"):
        return []
    p, own, rent = x["power"], x["cost_breakdown"]["own"], x["cost_breakdown"]["rent"]
    watts = ", ".join(f"{role} {q['watts_per_gpu']:,.0f} W" for role, q in p["pools"].items())
    spare = [e for e in x.get("systems") or [] if e["spare_gpus"]]
    bought = "".join(f"; {e['gpus_bought']:,} {e['gpu']} GPUs bought in whole {'racks' if e['kind'] == 'rack' else 'nodes'}, "
                     f"{e['spare_gpus']:,} of them spare (idle, provisioned, owned)" for e in spare)
    pue = sorted({q["pue"] for q in p["pools"].values()})
    lines = [f"Power: {x['power_mw']:,.2f} MW facility provisioned ({p['provisioned_it_mw']:,.2f} MW IT at full board "
             f"power, PUE {'/'.join(f'{v:g}' for v in pue)}); {p['facility_mw']:,.2f} MW drawn at load (per GPU: "
             f"{watts}); {x['tokens_per_s_per_mw']:,.0f} output tokens/s per MW{bought}.",
             f"Owned: ${own['cost_per_hour']:,.0f} per hour = capital ${own['capital_per_hour']:,.0f} + power "
             f"${own['power_per_hour']:,.0f} + hosting ${own['hosting_per_hour']:,.0f}; "
             f"${own['cost_per_m_output_all_in']:.3f} per M output tokens all-in (rented: ${rent['cost_per_hour']:,.0f} "
             f"per hour, ${rent['cost_per_m_output_all_in']:.3f}); the table shows the "
             f"{'rented' if x['cost_breakdown']['ownership'] == 'rent' else 'owned'} cost."]
    return [piece for line in lines for piece in textwrap.wrap(line, WIDTH, subsequent_indent="  ")]


def _other_fleet(x: dict[str, Any], i: dict[str, Any]) -> list[str]:
    """When peak and average load differ, the fleet not bought, labelled as such (the table and Answer are one fleet)."""
    if i.get("peak_to_average", 1) == 1 or x.get("capacity_output_tokens_per_s") is not None:
        return []
    other = "average" if x["costed_at"] == "peak" else "peak"
    why = ("sized for the peak load, " if other == "average" else "scaled to the average load (--autoscale), ")
    return [f"The fleet is {why}{i['peak_to_average']:g} x the average; at the {other} load it would be "
            f"{x[other + '_total_gpus']:,} GPUs = {x[other + '_total_nodes']:,.0f} nodes."]


WIDTH = 120  # text output fits a terminal of this width; wide detail is in --format json


def fit_width(line: str) -> list[str]:
    """A line within :data:`WIDTH`: a command breaks between words with a shell continuation (pasting it still
    runs it); a table row continues its last column, indented under it; prose wraps."""
    if len(line.encode()) <= WIDTH:  # bytes: a terminal tool counting bytes sees no wider line either
        return [line]
    if line.startswith("Reproduce: "):  # break between shell words, never inside a quoted one
        return continued(line, WIDTH)
    if "  " in line[:80] and not line.startswith(" "):  # a table row: wrap its trailing text column
        head = line[:line.index("  ", 60) + 2] if "  " in line[60:] else line[:80]
        body = textwrap.wrap(line[len(head):], WIDTH - len(head.encode()) - line[len(head):].count("±"))
        return [head + body[0]] + [" " * len(head) + b for b in body[1:]]
    indent = len(line) - len(line.lstrip())
    return textwrap.wrap(line, WIDTH, subsequent_indent=" " * (indent + 2))


def _table_notes(r: dict[str, Any]) -> list[str]:
    """The lines under a plan's table: unvalidated rows, what $/M out means when both modes are ranked, and a
    ranking the error bands do not decide."""
    lines = []
    if any(x["feasible"] and not x["accuracy"]["validated"] for x in r["gpus"].values()):
        lines.append("* outside what the calibration rows validate (dsxl predict explains why for a configuration)")
    modes = {x["prefill"] is None for x in r["gpus"].values() if x["feasible"]}
    if modes == {True, False}:  # one column, two meanings: say which
        lines += textwrap.wrap("$/M out: a disaggregated row's decode pool (its prefill pool is priced per input "
                               "token); an aggregated row's whole fleet, as all-in, since prefill shares its GPUs. "
                               "GPUs rank on all-in.", WIDTH)
    if r.get("ranking_decisive") is False:
        a, b = r["ranking"][:2]
        what = "serve" if r.get("ranked_on") == "capacity_output_tokens_per_s" else "cost"
        lines.append(f"The ranking is not decisive: {a} and {b} {what} within each other's error bands.")
    return lines


def plan_text(r: dict[str, Any]) -> str:
    i = r["inputs"]
    t = i["ttft_limits_ms"]
    sla = f"TPOT <= {i['tpot_limit_ms']:.1f} ms, TTFT mean <= {t['mean']:,.0f} ms" + \
        (" (default)" if t["mean_is_default"] else "") + \
        "".join(f", {p} <= {t[p]:,.0f} ms" for p in ("p90", "p99") if t[p] is not None)
    load = (f"{i['load_output_tokens_per_s']:,.0f} output tokens/s" if i["load_output_tokens_per_s"] is not None
            else f"the most {i['power_budget_mw']:g} facility MW serve" if i.get("power_budget_mw") is not None
            else f"the most a budget of {i['budget_gpus']:,} GPUs serves")
    lines = [f"dsxl plan: {i['model']}, {i['input_len']:,.0f} in / {i['output_len']:,.0f} out tokens, cache hit "
             f"{i['cache_hit']:.1%}, {load}, {sla}, {i['serving']}", ""]
    columns = ("GPU", "GPUs", "nodes", "MW", "$/h", "$/M out", "$/M out all-in", "tok/s/MW", "band")
    rows = []
    for g in r["ranking"] + [g for g in r["gpus"] if g not in r["ranking"]]:
        x = r["gpus"][g]
        if not x["feasible"]:
            rows.append(([g] + ["-"] * 8, f"infeasible: {x['reason']}"))
            continue
        conf = _cfg(x["decode"]) + (f" | {_cfg(x['prefill'], True)}" if x["prefill"] else " (aggregated)")
        band = f"±{x['accuracy']['band'] * 100:.0f}%" + ("" if x["accuracy"]["validated"] else "*")
        rows.append(([g, f"{x['total_gpus']:,}", f"{x['total_nodes']:,.0f}", f"{x['power_mw']:,.2f}",
                      f"{x['cost_per_hour']:,.0f}", f"{x['cost_per_m_output']:.3f}",
                      f"{x['cost_per_m_output_all_in']:.3f}", f"{x['tokens_per_s_per_mw']:,.0f}", band], conf))
    # each column as wide as its widest entry (a planet-sized load still reads), at least the usual width
    widths = [max([len(c), minimum] + [len(cells[k]) for cells, _ in rows])
              for k, (c, minimum) in enumerate(zip(columns, (9, 6, 6, 5, 7, 7, 14, 9, 6)))]
    def line(cells: list[str], tail: str) -> str:
        """A row; its configuration wraps under its own column (bytes counted: '±' takes two)."""
        start = f"{cells[0]:<{widths[0]}}" + "".join(f" {c:>{w}}" for c, w in zip(cells[1:], widths[1:])) + "  "
        body = textwrap.wrap(tail, max(WIDTH - len(start.encode()), 20))
        return "\n".join([start + body[0]] + [" " * len(start) + b for b in body[1:]])
    head = line(list(columns), "decode / prefill configuration")
    lines += [head, "-" * min(len(head) + 40, WIDTH)] + [part for cells, tail in rows
                                                         for part in line(cells, tail).split("\n")]
    lines += _table_notes(r)
    best = r["ranking"][0] if r["ranking"] else None
    if best:
        x = r["gpus"][best]
        d = x["decode"]
        lines += ["", _answer(r, best)] + _other_fleet(x, i)
        if x.get("serving_choice"):
            lines += textwrap.wrap(f"Serving: {x['serving_choice']}.", 120, subsequent_indent="  ")
        first = "Serves the most" if r.get("ranked_on") == "capacity_output_tokens_per_s" else "Cheapest"
        which = "Decode" if len(r["gpus"]) == 1 else f"{first}: {best}. Decode"
        lines += [f"{which} {d['tokens_per_s_per_gpu']:,.0f} output tokens/s per GPU at "
                      f"{d['tokens_per_s_per_user']:.1f} tokens/s per user (TPOT {d['tpot_ms']:.1f} ms), max batch "
                      f"{d['max_batch']:,}; {_count(d['instances'], 'instance')} = {d['gpus']:,} GPUs = "
                      f"{_count(d['nodes'], _node_noun(x, d['gpu']))}."]
        if x["prefill"]:
            p = x["prefill"]
            lines.append(f"Prefill {p['tokens_per_s_per_gpu']:,.0f} input tokens/s per GPU, TTFT {p['ttft_ms']:,.0f} ms; "
                         f"{_count(p['instances'], 'instance')} = {p['gpus']:,} GPUs = {_count(p['nodes'], _node_noun(x, p['gpu']))}; "
                         "prefill:decode "
                         f"nodes {x['prefill_decode_node_ratio']:.2f}.")
            if x.get("kv_transfer") and x["kv_transfer"]["binds"]:
                t = x["kv_transfer"]
                lines.append(f"KV transfer binds: prefill would send {t['gb_per_s_per_prefill_gpu']:.1f} GB/s per GPU "
                             f"over a {t['nic_gb_per_s']:g} GB/s NIC, so the prefill rate is held to the NIC's.")
            t = x.get("ttft_ms") or {}
            arrivals = ("Poisson arrivals" if i.get("arrival_cv", 1) == 1 else
                        f"arrivals with CV {i['arrival_cv']:g}")
            if t.get("p99") is not None and not math.isfinite(t["p99"]):  # a pool at its full capacity: words, never inf
                lines.append(f"TTFT ({arrivals}, queueing included): unbounded, the prefill pool runs at "
                             f"{p['utilization']:.0%} utilization and its queue grows without end; serve less than the "
                             "budget's capacity for a bounded TTFT.")
            elif t.get("p99") is not None:
                lines.append(f"TTFT ({arrivals}, queueing included): mean {t['mean']:,.0f} ms, p50 "
                             f"{t['p50']:,.0f}, p90 {t['p90']:,.0f}, p99 {t['p99']:,.0f}; utilization prefill "
                             f"{p['utilization']:.0%}, decode {d['utilization']:.0%}.")
            fleet = (f"the fleet of {x['total_gpus']:,} GPUs" if i.get("peak_to_average", 1) == 1 else
                     f"the peak fleet of {x['total_gpus']:,} GPUs" if x.get("costed_at") == "peak" else
                     f"the average fleet of {x['total_gpus']:,} GPUs (--autoscale)")
            lines.append(f"Cost ${x['cost_per_day']:,.0f} per day for {fleet}; ${x['cost_per_m_input']:.3f} per M input tokens "
                         f"(${x['cost_per_m_input_miss']:.3f} per M cache misses, cache hits skip compute), "
                         f"${x['cost_per_m_output']:.3f} per M output tokens.")
        lines += _power_lines(x)
        if "revenue_per_day" in x:
            margin = "undefined at zero cost" if x["margin"] is None else f"{x['margin']:.0%}"
            lines.append(f"Revenue ${x['revenue_per_day']:,.0f} per day, margin {margin}.")
        if x.get("capacity_output_tokens_per_s") is not None:
            covers = {None: "", True: "; it covers the load", False: "; it does NOT cover the load"}
            budget = (f"{x['power_budget_mw']:g} MW ({x['budget_gpus']:,} GPUs at their systems' provisioned watts)"
                      if x.get("power_budget_mw") is not None else f"{x['budget_gpus']:,} GPUs")
            lines.append(f"Budget {budget}: at most {x['capacity_output_tokens_per_s']:,.0f} output "
                         f"tokens/s at the SLA (plan above uses {x['total_gpus']:,}){covers[x['budget_covers_load']]}.")
        for m in d.get("mix") or [d]:  # one line per instance size of a mixed pool
            lines.append("Reproduce: " + predict_command({**d, **m}, "decode" if x["prefill"] else "aggregated",
                                                         d["gpu"], i))
        if x["prefill"]:
            for m in x["prefill"].get("mix") or [x["prefill"]]:
                lines.append("Reproduce: " + predict_command({**x["prefill"], **m}, "prefill", x["prefill"]["gpu"], i))
        other = x.get("disaggregated" if x["serving"] == "aggregated" else "aggregated")
        if other and other["feasible"]:
            lines += textwrap.wrap(f"{other['serving'].capitalize()} serving instead: {other['total_gpus']:,.0f} GPUs, "
                                   f"${other['cost_per_m_output_all_in']:.3f} per M output tokens all-in "
                                   f"({_cfg(other['decode'])}).", 120, subsequent_indent="  ")
    if "scenario" in r and r["scenario"]:
        s = r["scenario"]
        pub, rec = s["published"], s["recomputed"]
        lines += ["", "DeepSeek day-6 economics (published, recomputed):",
                  f"  {pub['nodes']} nodes x {pub['gpus_per_node']} GPUs x ${pub['price_gpu_hour']:g} x 24 h = "
                  f"${rec['cost_per_day']:,.0f} per day (published ${pub['cost_per_day']:,})",
                  f"  revenue {pub['input_hit_b']}B x ${pub['price_input_hit']} + {pub['input_miss_b']}B x "
                  f"${pub['price_input_miss']} + {pub['output_b']}B x ${pub['price_output']} per M = "
                  f"${rec['revenue_per_day']:,.0f} per day (published ${pub['revenue_per_day']:,}, from unrounded "
                  f"token counts)",
                  f"  margin {rec['margin']:.1%} (published {pub['margin']:.0%}); with the published revenue "
                  f"{pub['revenue_per_day'] / rec['cost_per_day'] - 1:.1%}",
                  f"  nodes: the planner sizes {s['planner_nodes']} for the day's average traffic and "
                  f"{s['planner_peak_nodes']} for its peak, vs {pub['nodes']} occupied on average and "
                  f"{s['published_peak_nodes']} at the peak. {s['why_they_differ']}"]
    return "\n".join(fitted for line in lines for fitted in fit_width(line)) + "\n"


def pareto_plot(r: dict[str, Any], path: str) -> None:
    """Tokens/s per GPU against tokens/s per user for every GPU planned, with the SLA line."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'dsxl[plot]'") from None
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    colours = plt.get_cmap("tab20").colors
    for k, (g, x) in enumerate(r["gpus"].items()):
        pts = x.get("pareto") or []
        if pts:
            ax.plot([p["tokens_per_s_per_user"] for p in pts], [p["tokens_per_s_per_gpu"] for p in pts], marker=".",
                    color=colours[(2 * k) % 20 + (k // 10) % 2], linestyle=("-", "--", ":")[k % 3], label=g)
    ax.axvline(1000 / r["inputs"]["tpot_limit_ms"], color="grey", linestyle="--", label="SLA")
    ax.set_xlabel("output tokens/s per user")
    ax.set_ylabel("output tokens/s per GPU")
    ax.set_title(f"Decode throughput-latency frontier, {r['inputs']['model']} "
                 f"({r['inputs']['input_len']:,.0f} in / {r['inputs']['output_len']:,.0f} out)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    import io
    from pathlib import Path

    from dsxl.render.files import write_bytes
    kind = "png" if str(path).lower().endswith(".png") else "svg"
    buf = io.BytesIO()
    fig.savefig(buf, format=kind, metadata={"Software": None} if kind == "png" else None)
    write_bytes(Path(path), buf.getvalue())
    plt.close(fig)
