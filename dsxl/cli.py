"""Command line: ``dsxl report`` prints the article's tables, ``dsxl build`` writes the workbook."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_WORKBOOK = Path("workbook") / "dsxl.xlsx"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dsxl", description="DeepSeek-V3/R1 inference sizing: tables and workbook")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="print the article's tables computed by the model")
    r.add_argument("tables", nargs="*", metavar="TABLE_ID", help="table ids (default: all)")
    r.add_argument("--format", choices=("markdown", "json", "csv"), default="markdown")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="what-if input, e.g. seq_len=8000, kv_cache_rate=0.5, H800.fp8_flops=1800 (repeatable)")
    r.add_argument("--list", action="store_true", help="list table ids and settable inputs, then exit")
    b = sub.add_parser("build", help="write the shareable workbook")
    b.add_argument("-o", "--output", type=Path, default=DEFAULT_WORKBOOK, help=f"default {DEFAULT_WORKBOOK}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "report":
            return _report(args)
        return _build(args)
    except ValueError as exc:
        print(f"dsxl: error: {exc}", file=sys.stderr)
        return 2


def _report(args: argparse.Namespace) -> int:
    from .validate import GPU_FIELDS
    from .report import parse_sets, to_csv, to_json, to_markdown
    from .tables import MODEL_FIELDS, SCENARIO_FIELDS, compute_tables, table_ids

    if args.list:
        print("tables: " + " ".join(table_ids()))
        print("inputs: " + " ".join(SCENARIO_FIELDS + MODEL_FIELDS))
        print("hardware: GPU." + "|".join(GPU_FIELDS))
        return 0
    whatif = parse_sets(args.sets)
    tables = compute_tables(whatif, args.tables or None)
    render = {"markdown": to_markdown, "json": to_json, "csv": to_csv}[args.format]
    sys.stdout.write(render(tables) if args.format != "json" else render(tables) + "\n")
    return 0


def _build(args: argparse.Namespace) -> int:
    from .workbook import build_workbook

    start = time.perf_counter()
    path = build_workbook(args.output)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1024:.0f} KiB) in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
