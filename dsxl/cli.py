"""Command line: ``dsxl report`` prints the article's tables, ``dsxl build`` writes the workbook."""

from __future__ import annotations

import argparse
import json
import difflib
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from dsxl._version import __version__
from dsxl.data.catalog import default_engine, load_catalog, load_engines
from dsxl.core.rules import show

DEFAULT_WORKBOOK = Path("workbook") / "dsxl.xlsx"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("unrecognized arguments:"):  # suggest the nearest option (a typo's usual fix)
            parsers = [self] + [p for a in self._actions if isinstance(a, argparse._SubParsersAction)
                                for p in a.choices.values()]
            known = sorted({s for p in parsers for a in p._actions for s in a.option_strings})
            # a value given as a flag (--json for --format json) first, then the nearest spelling
            as_value = {f"--{c}": f"{a.option_strings[-1]} {c}" for p in parsers for a in p._actions
                        if a.option_strings and a.choices for c in a.choices if isinstance(c, str)}
            words = message.split(":", 1)[1].split()
            near = [[as_value[w]] if w in as_value else difflib.get_close_matches(w.split("=")[0], known, n=1)
                    for w in words]
            hints = [f"{w} (did you mean {m[0]}?)" for w, m in zip(words, near) if m]
            if hints:
                message = "unrecognized arguments: " + ", ".join(hints)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _predict_parser(sub: Any) -> None:
    from dsxl.inputs.request import MODES, OPTIONS, PHASES

    p = sub.add_parser("predict", help="predict decode, prefill or aggregated serving on one GPU")
    p.add_argument("phase", choices=PHASES)
    p.add_argument("--gpu", required=True, help="catalog GPU name, e.g. H800 (an unknown name lists them all)")
    p.add_argument("--model", default=None, help="preset id (dsxl models) or path to a config.json")
    p.add_argument("--mode", choices=MODES, default="refined")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--calibration", metavar="PROFILE.json", help="a profile written by dsxl calibrate")
    for o in OPTIONS:
        flag = "--" + o.name.replace("_", "-")
        if o.rng is None and not o.choices:  # a switch: --tbo / --no-tbo
            p.add_argument(flag, dest=o.name, action="store_true", default=None, help=o.doc)
            p.add_argument("--no-" + flag[2:], dest=o.name, action="store_false", help=f"not: {o.doc}")
        elif o.choices:
            default = o.default or {"engine": default_engine(), "moe_dtype": "as the model ships"}.get(o.name, "")
            p.add_argument(flag, dest=o.name, type=str.lower, choices=o.choices, default=None,
                           help=f"{o.doc} (default {default})")
        else:
            kind = _auto_or(_number_type(o)) if o.auto else _number_type(o)
            default = "required" if o.default is None else f"default {o.default}"
            p.add_argument(flag, dest=o.name, type=kind, default=None, metavar=o.name.upper(),
                           help=f"{o.doc}, {o.unit} ({default}; {', '.join(o.phases)})")


def _number_type(o: Any) -> Any:
    """argparse type for a numeric option: whole numbers for integer options; the range in the message."""
    def parse(text: str) -> Any:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {o.rng.describe()}; got {show(text)}") from None
        if o.rng.integer and value.is_integer():
            return int(value)
        return value
    parse.__name__ = o.name
    return parse


def _auto_or(kind: Any) -> Any:
    def parse(text: str) -> Any:
        return "auto" if text.strip().lower() == "auto" else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _plan_parser(sub: Any) -> None:
    from dsxl.planner.plan import SERVING
    from dsxl.planner.recipes import RECIPE_ENGINES

    p = sub.add_parser("plan", help="size a cluster: SLA search, prefill/decode split, cost per million tokens")
    p.add_argument("--gpu", default=None, help="GPU name(s), comma-separated, or all (default "
                                              f"{load_catalog().default_gpu})")
    p.add_argument("--model", default=None, help="preset id or path to a config.json")
    p.add_argument("--scenario", default=None, help="a stored scenario, e.g. deepseek_day6")
    p.add_argument("--input-len", type=float, help="input tokens per request (default 4096)")
    p.add_argument("--output-len", type=float, help="output tokens per request (default 1536)")
    p.add_argument("--cache-hit", type=float, help="share of input tokens hitting the prefix cache (default 0)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--output-tokens-per-s", type=float, help="average load (default 100000)")
    load.add_argument("--requests-per-s", type=float, help="average load as requests/s")
    sla = p.add_mutually_exclusive_group()
    sla.add_argument("--tpot-ms", type=float, help="max time per output token (default 50)")
    sla.add_argument("--min-tokens-per-s-per-user", type=float, help="min output tokens/s per user")
    p.add_argument("--ttft-ms", type=float, help="max mean time to first token, queueing included (default 3000)")
    p.add_argument("--ttft-p90-ms", type=float, help="max 90th-percentile time to first token")
    p.add_argument("--ttft-p99-ms", type=float, help="max 99th-percentile time to first token")
    p.add_argument("--arrival-cv", type=float, help="coefficient of variation of request inter-arrival times "
                                                    "(default 1: Poisson; above 1: burstier)")
    p.add_argument("--autoscale", action="store_true", help="with --peak-to-average: price the average fleet "
                                                            "(nodes handed back off-peak) instead of the peak")
    p.add_argument("--serving", type=str.lower, choices=SERVING, help="default disaggregated")
    p.add_argument("--price-gpu-hour", type=float, help="$ per GPU-hour (default: the catalog's column)")
    p.add_argument("--gpu-per-node", type=float, help="default 8")
    p.add_argument("--ep-sizes", help="comma-separated EP sizes to search (default 1,2,4,...,256)")
    p.add_argument("--mtp-draft", type=float, help="draft tokens when MTP is on (default 1)")
    p.add_argument("--mtp-accept", type=float, help="tokens per step with MTP (default 1.8)")
    p.add_argument("--peak-to-average", type=float, help="peak load over average (default 1)")
    p.add_argument("--price-input-hit", type=float, help="$ per M cache-hit input tokens (revenue)")
    p.add_argument("--price-input-miss", type=float, help="$ per M cache-miss input tokens (revenue)")
    p.add_argument("--price-output", type=float, help="$ per M output tokens (revenue)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget-gpus", type=float, help="best use of a fixed cluster: the most output tokens/s at the "
                                                         "SLA within this many GPUs")
    budget.add_argument("--budget-nodes", type=float, help="the same in nodes (x --gpu-per-node)")
    budget.add_argument("--power-budget-mw", type=float, help="the most output tokens/s at the SLA within this many "
                                                              "facility MW (provisioned: GPUs at full board power)")
    p.add_argument("--ownership", type=str.lower, choices=("rent", "own"),
                   help="rent (default): GPU-hours at --price-gpu-hour; own: capital, power and hosting")
    p.add_argument("--capital-per-gpu", type=float, help="$ all-in system price per GPU (default: templates/power.csv)")
    p.add_argument("--amortization-years", type=float, help="years the capital is repaid over (default 4)")
    p.add_argument("--cost-of-capital", type=float, help="annual rate, e.g. 0.1 (default 0.10)")
    p.add_argument("--electricity-per-kwh", type=float, help="$ per kWh at the facility meter (default 0.08)")
    p.add_argument("--pue", type=float, help="facility over IT power (default: the system's, 1.3 air, 1.1 liquid)")
    p.add_argument("--hosting-per-kw-month", type=float, help="$ per provisioned IT kW per month (default 150)")
    p.add_argument("--prefill-gpu", help="disaggregated pools of different GPUs: the prefill pool's GPU")
    p.add_argument("--decode-gpu", help="... and the decode pool's GPU")
    p.add_argument("--mixed", action="store_true", help="with several GPUs: also rank every prefill/decode pair")
    p.add_argument("--engine", type=str.lower, help=f"serving engine profile ({', '.join(load_engines())}; default "
                                                     f"{default_engine()}, or the --recipe engine)")
    p.add_argument("--recipe", type=str.lower, choices=RECIPE_ENGINES,
                   help="print the launch command of each instance for this engine")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--plot", metavar="FILE.png|.svg", help="draw the throughput-latency frontier")
    p.add_argument("--calibration", metavar="PROFILE.json", help="a profile written by dsxl calibrate")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dsxl", description="Size DeepSeek-style MoE serving: refined predictions, the article's "
                                         "tables and a workbook")
    p.add_argument("--version", action="version", version=f"dsxl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _predict_parser(sub)
    v = sub.add_parser("validate", help="refined and article model against published deployments")
    v.add_argument("--format", choices=("text", "json"), default="text")
    v.add_argument("--ablate", action="store_true", help="switch each refinement off in turn")
    v.add_argument("--calibration", metavar="PROFILE.json", help="a profile written by dsxl calibrate: its "
                                                                  "constants apply and its rows are listed")
    v.add_argument("--runs", metavar="RUNS.csv", type=Path,
                   help="predict every run of a file in InferenceX's export columns (the shipped corpus: "
                        "templates/inferencex_dsr1.csv) and compare")
    v.add_argument("--rows", action="store_true", help="with --runs, list every row")
    c = sub.add_parser("calibrate", help="fit the refined model to your own measured runs: a profile for predict, "
                                         "plan, validate, the UDFs and build")
    c.add_argument("runs", nargs="?", type=Path, help="RUNS.csv with the columns of templates/measurements.csv")
    c.add_argument("-o", "--output", type=Path, default=None, help="the profile, a .json path (default RUNS.json); "
                                                                   "with --template, the .csv to write (default: "
                                                                   "print it)")
    c.add_argument("--force", action="store_true", help="replace an existing output file (never the runs file)")
    c.add_argument("--template", action="store_true", help="print (or -o write) an empty runs file with a commented "
                                                           "example row")
    c.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_parser("models", help="list model presets with parameters and KV bytes per token")
    _plan_parser(sub)
    r = sub.add_parser("report", help="print the article's tables computed by the model")
    r.add_argument("tables", nargs="*", metavar="TABLE_ID", help="table ids (default: all)")
    r.add_argument("--format", choices=("markdown", "json", "csv"), default="markdown")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="what-if input, e.g. seq_len=8000, kv_cache_rate=0.5, H800.fp8_flops=1800 (repeatable)")
    r.add_argument("--list", action="store_true", help="list table ids and settable inputs, then exit")
    r.add_argument("--model", default=None, help="the article's method on another preset or config.json "
                                                 "(the memory tables keep the article's parameter constants)")
    r.add_argument("--gpu", default=None, help="catalog GPUs for the per-GPU tables, comma-separated (default: the "
                                               "article's H800, H20, H20_3e)")
    r.add_argument("-o", "--output", type=Path, default=None,
                   help="with --format csv and several tables: a folder (must exist) for one CSV per table")
    b = sub.add_parser("build", help="write the shareable workbook")
    b.add_argument("-o", "--output", type=Path, default=None,
                   help=f"an .xlsx path in an existing folder (default {DEFAULT_WORKBOOK}, its folder created)")
    b.add_argument("--model", default=None, help="preset id or config.json the workbook holds (default "
                                                 f"{load_catalog().default_model})")
    b.add_argument("--calibration", metavar="PROFILE.json", help="a profile written by dsxl calibrate: the workbook "
                                                                  "computes with its values and lists its runs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"report": _report, "build": _build, "predict": _predict, "validate": _validate, "models": _models,
                "plan": _plan, "calibrate": _calibrate}
    try:
        return commands[args.command](args)
    except ValueError as exc:
        print(f"dsxl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dsxl: interrupted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader closed the pipe (dsxl models | head -c1): say so once, exit quietly
        _silence_stdout()
        print("dsxl: the output pipe closed before everything was written", file=sys.stderr)
        return 1
    except OSError as exc:  # the environment, not the arguments: a full disk, an unreadable folder, a long name
        _silence_stdout()
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"dsxl: cannot read or write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush raises nothing more."""
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _report(args: argparse.Namespace) -> int:
    from dsxl.render.article import to_csv, to_json, to_markdown
    from dsxl.article.tables import compute_tables
    from dsxl.inputs.article_request import parse_sets

    if args.list:
        sys.stdout.write(_report_list(args.format))
        return 0
    gpus = tuple(g.strip() for g in args.gpu.split(",")) if args.gpu else ()
    whatif = parse_sets(args.sets, preset=args.model, gpus=gpus)
    tables = compute_tables(whatif, args.tables or None)
    inputs = whatif.echo()
    if args.format == "csv":
        if len(tables) == 1 and args.output is None:
            sys.stdout.write(to_csv(next(iter(tables.values())), inputs))
            return 0
        if args.output is None:
            raise ValueError("--format csv writes one table to standard output; for several give -o FOLDER "
                             "(an existing folder) for one file per table")
        from dsxl.render.files import write_folder
        write_folder(args.output, {f"{tid}.csv": to_csv(df, inputs) for tid, df in tables.items()})
        print(f"wrote {len(tables)} CSV files to {args.output}")
        return 0
    if args.output is not None:
        raise ValueError("-o applies to --format csv only (markdown and JSON go to standard output)")
    sys.stdout.write(to_json(tables, inputs) + "\n" if args.format == "json" else to_markdown(tables, inputs))
    return 0


def _report_list(fmt: str) -> str:
    """What ``report`` can print and change: as text, or as JSON with the same content."""
    from dataclasses import fields

    from dsxl.data.catalog import ModelArgs, load_catalog
    from dsxl.article.tables import table_ids
    from dsxl.core.rules import GPU_RANGES, GPU_UNITS, MODEL_COUNT, MODEL_RANGES, SCENARIO_RANGES

    cat = load_catalog()
    model = cat.model()
    scenario = {name: {"default": getattr(cat.scenario, name), "allowed": rng.describe()}
                for name, rng in SCENARIO_RANGES.items()}
    scenario["batch_sizes"] = {"default": list(cat.scenario.batch_sizes), "allowed": "whole numbers >= 1, comma-separated"}
    listing = {"tables": list(table_ids()), "scenario_inputs": scenario,
               "model_arguments": {f.name: {"default": getattr(model, f.name),
                                            "allowed": MODEL_RANGES.get(f.name, MODEL_COUNT).describe()}
                                   for f in fields(ModelArgs)},
               "hardware_fields": {k: {"unit": GPU_UNITS[k], "allowed": r.describe()} for k, r in GPU_RANGES.items()},
               "gpus": list(cat.gpus), "models": list(cat.models), "default_model": cat.default_model}
    if fmt == "json":
        return json.dumps(listing, indent=1) + "\n"
    if fmt == "csv":
        raise ValueError("--list prints text (--format markdown) or JSON (--format json), not csv")
    lines = [*textwrap.wrap("tables: " + " ".join(listing["tables"]), 120, subsequent_indent="  "), "",
             "scenario inputs (--set NAME=VALUE): name = default  [allowed]"]
    for name, x in scenario.items():
        default = ",".join(map(str, x["default"])) if isinstance(x["default"], list) else x["default"]
        lines.append(f"  {name} = {default}  [{x['allowed']}]")
    lines += ["", f"model arguments (--set NAME=VALUE; defaults of {cat.default_model}):"]
    lines += [f"  {name} = {x['default']}  [{x['allowed']}]" for name, x in listing["model_arguments"].items()]
    lines += ["", "hardware fields (--set GPU.FIELD=VALUE, datasheet values): field  unit  [allowed]"]
    lines += [f"  {k}  {x['unit']}  [{x['allowed']}]" for k, x in listing["hardware_fields"].items()]
    lines += ["", *textwrap.wrap("GPUs (--gpu, GPU.FIELD): " + ", ".join(cat.gpus), 120, subsequent_indent="  "),
              *textwrap.wrap("models (--model): " + ", ".join(cat.models), 120, subsequent_indent="  ")]
    return "\n".join(lines) + "\n"


def _build(args: argparse.Namespace) -> int:
    from dsxl.render.files import check_target
    from dsxl.workbook import workbook_bytes
    from dsxl.render.files import write_bytes

    if args.output is None:
        DEFAULT_WORKBOOK.parent.mkdir(exist_ok=True)
        args.output = DEFAULT_WORKBOOK
    path = check_target(args.output, "-o", (".xlsx",))  # before the build, not after
    start = time.perf_counter()
    data = workbook_bytes(model=args.model, calibration=args.calibration)
    write_bytes(path, data)
    print(f"wrote {path} ({len(data) / 1024:.0f} KiB) in {time.perf_counter() - start:.2f} s")
    return 0


def _new_file(path: Path, suffixes: tuple[str, ...], force: bool) -> Path:
    """An output path that replaces nothing unless ``--force`` says so."""
    from dsxl.render.files import check_target
    path = check_target(path, "-o", suffixes)
    if path.exists() and not force:
        raise ValueError(f"-o: {str(path)!r} exists; give another name, or --force to replace it")
    return path


def _calibrate(args: argparse.Namespace) -> int:
    import json

    from dsxl.refined.profile import calibrate, profile_text, template_text
    from dsxl.render.files import write_bytes

    if args.template:
        if args.runs is not None or args.format != "text":
            raise ValueError("--template prints an empty runs file (or writes it with -o); it takes no RUNS.csv "
                             "and no --format")
        if args.output is None:
            sys.stdout.write(template_text())
            return 0
        path = _new_file(args.output, (".csv",), args.force)
        write_bytes(path, template_text().encode())
        print(f"wrote {path}: one row per measured run (the columns of templates/measurements.csv)")
        return 0
    if args.runs is None:
        raise ValueError("calibrate needs RUNS.csv (dsxl calibrate --template prints an empty one)")
    path = _new_file(args.output or args.runs.with_suffix(".json"), (".json",), args.force)
    if path.resolve() == Path(args.runs).resolve() or (path.exists() and Path(args.runs).exists()
                                                       and os.path.samefile(path, args.runs)):
        raise ValueError("-o must differ from RUNS.csv (it names the same file)")
    profile = calibrate(args.runs)
    write_bytes(path, (json.dumps(profile, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())
    sys.stdout.write(json.dumps(profile, indent=2) + "\n" if args.format == "json" else
                     profile_text(profile) + f"wrote {path}\n")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from dsxl.refined.predict import predict
    from dsxl.inputs.request import OPTIONS, options_for
    from dsxl.render.text import prediction_text, to_json

    given = {o.name: getattr(args, o.name) for o in options_for(args.phase) if getattr(args, o.name) is not None}
    stray = [o.name for o in OPTIONS if getattr(args, o.name, None) is not None and o.name not in given]
    if stray:
        names = ", ".join("--" + s.replace("_", "-") for s in stray)
        raise ValueError(f"{names} does not apply to {args.phase}")
    r = predict(args.phase, args.gpu, args.model, mode=args.mode, calibration=args.calibration, **given)
    sys.stdout.write(to_json(r) + "\n" if args.format == "json" else prediction_text(r))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from dsxl.render.text import ablation_text, to_json, validation_text
    from dsxl.refined.validation import ABLATIONS, ablate, validate

    if args.runs is not None:
        from dsxl.data.runs import parse_runs
        from dsxl.data.user_files import read_text
        from dsxl.refined.runs import validate_runs
        from dsxl.render.text import runs_text
        from dsxl.data.catalog import load_fit
        from dsxl.data.fingerprint import stale_fit_reason
        fit = load_fit()
        if stale_fit_reason(fit):
            raise ValueError(stale_fit_reason(fit))
        logo = {g: e.get("logo_error") for g, e in fit.get("groups", {}).items()}
        result = validate_runs(parse_runs(read_text(args.runs, "runs file"), args.runs.name), str(args.runs), logo)
        sys.stdout.write(to_json(result) + "\n" if args.format == "json" else runs_text(result, args.rows))
        return 0
    if args.ablate:
        rows = ablate()
        sys.stdout.write(to_json(rows) + "\n" if args.format == "json" else
                         ablation_text(rows, {k: v["doc"] for k, v in ABLATIONS.items()}))
        return 0
    rows = validate(calibration=args.calibration)
    sys.stdout.write(to_json(rows) + "\n" if args.format == "json" else validation_text(rows))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from dsxl.planner.plan import plan
    from dsxl.render.text import pareto_plot, plan_text, to_json

    names = ("model", "scenario", "input_len", "output_len", "cache_hit", "output_tokens_per_s", "requests_per_s",
             "tpot_ms", "min_tokens_per_s_per_user", "ttft_ms", "serving", "price_gpu_hour", "gpu_per_node",
             "mtp_draft", "mtp_accept", "peak_to_average", "price_input_hit", "price_input_miss", "price_output",
             "budget_gpus", "budget_nodes", "prefill_gpu", "decode_gpu", "calibration", "ttft_p90_ms", "ttft_p99_ms",
             "arrival_cv", "power_budget_mw", "ownership", "capital_per_gpu", "amortization_years", "cost_of_capital",
             "electricity_per_kwh", "pue", "hosting_per_kw_month")
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if args.gpu is not None:
        given["gpus"] = args.gpu
    if args.ep_sizes is not None:
        try:
            given["ep_sizes"] = tuple(int(x) for x in args.ep_sizes.split(","))
        except ValueError:
            raise ValueError(f"ep_sizes must be whole numbers separated by commas; got {show(args.ep_sizes)}") from None
    if args.plot:
        from dsxl.render.files import check_target
        check_target(Path(args.plot), "--plot", (".png", ".svg"))  # before the search, not after
    if args.mixed:
        given["mixed"] = True
    if args.autoscale:
        given["autoscale"] = True
    if args.engine and args.recipe and args.engine != args.recipe:
        raise ValueError(f"--recipe {args.recipe} launches {args.recipe} but --engine {args.engine} plans with "
                         f"{args.engine}'s profile: give one of them, or the same engine to both")
    if args.engine or args.recipe:
        given["engine"] = args.engine or args.recipe  # a recipe is planned with its engine's profile
    r = plan(**given)
    if args.recipe:
        from dsxl.planner.recipes import recipe, recipe_text
        r["recipe"] = recipe(r, engine=args.recipe)
    if args.plot:
        pareto_plot(r, args.plot)
        print(f"wrote {args.plot} (the decode throughput-latency frontier)", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(to_json(r) + "\n")
    else:
        sys.stdout.write(plan_text(r) + (recipe_text(r["recipe"]) if args.recipe else ""))
    return 0


def _models(args: argparse.Namespace) -> int:
    from dsxl.refined.models import model_summaries

    rows = model_summaries()
    head = f"{'model':<20}{'total params':>14}{'activated':>12}{'KV bytes/token':>16}  attention"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['id']:<20}{r['total_params'] / 1e9:>13.1f}B{r['activated_params'] / 1e9:>11.1f}B"
              f"{r['kv_bytes_per_token']:>16,.0f}  {r['attention']}")
    print(textwrap.fill("KV bytes per token of context over all layers in FlashMLA's FP8 layout: the MLA family's "
                        "latent KV plus DSA indexer keys; V4's CSA/HCA compressed entries plus indexer keys (its "
                        "128-token window per layer is a fixed cost per sequence on top).", 120))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
