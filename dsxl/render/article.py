"""Rendering the article's tables as markdown, JSON or CSV."""

from __future__ import annotations

import textwrap

import csv
import io
import json
from typing import Any

import pandas as pd

from dsxl.article.layout import cell_decimals


def _cell(x: Any) -> Any:
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return float(x)
    return x


EMPTY = "No configuration passes the filter (TPS_O > tps_threshold): lower tps_threshold or change the inputs."


def _inputs_lines(inputs: dict[str, Any]) -> list[str]:
    whatifs = ", ".join(f"{k}={v}" for k, v in inputs["what_ifs"].items()) or "none (the article's inputs)"
    lines = [f"model: {inputs['model']}; GPUs: {', '.join(inputs['gpus'])}; what-ifs: {whatifs}",
             "inputs: " + ", ".join(f"{k}={v}" for k, v in inputs["scenario"].items())]
    return [part for line in lines for part in textwrap.wrap(line, 118, subsequent_indent="  ")]  # + "> " or "# "


def to_json(tables: dict[str, pd.DataFrame], inputs: dict[str, Any]) -> str:
    out = []
    for tid, df in tables.items():
        out.append({
            "id": tid, "title": df.attrs.get("title", ""), "section": df.attrs.get("section", ""),
            "unit": df.attrs.get("unit", ""), "index": df.index.name,
            "columns": [str(c) for c in df.columns],
            "rows": [{"label": str(label), "values": [_cell(v) for v in row]}
                     for label, row in zip(df.index, df.itertuples(index=False))],
        })
    return json.dumps({"inputs": inputs, "tables": out}, indent=1, ensure_ascii=False)


def to_markdown(tables: dict[str, pd.DataFrame], inputs: dict[str, Any]) -> str:
    parts = ["\n".join(f"> {line}" for line in _inputs_lines(inputs))]
    for tid, df in tables.items():
        dec = int(df.attrs.get("decimals", 3))
        head = [df.index.name or ""] + [str(c) for c in df.columns]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for label, row in zip(df.index, df.itertuples(index=False)):
            cells = [str(label)] + [_fmt_cell(label, col, v, dec) for col, v in zip(df.columns, row)]
            lines.append("| " + " | ".join(cells) + " |")
        unit = df.attrs.get("unit", "")
        title = f"### {tid}: {df.attrs.get('title', '')}" + (f" ({unit})" if unit else "")
        note = df.attrs.get("note", "")
        if df.empty:
            lines = [EMPTY]
        parts.append("\n".join([title, ""] + lines + ([f"\n_{note}_"] if note else [])))
    return "\n\n".join(parts) + "\n"


def _fmt_cell(label: Any, column: Any, v: Any, decimals: int) -> str:
    if isinstance(v, str):
        return v
    return f"{float(v):.{cell_decimals(decimals, label, column)}f}"


def _csv_cell(label: Any, column: Any, v: Any) -> Any:
    if isinstance(v, str):
        return v
    return f"{float(v):.0f}" if cell_decimals(1, label, column) == 0 else repr(float(v))


def to_csv(df: pd.DataFrame, inputs: dict[str, Any]) -> str:
    """One table as CSV: a commented header block with the inputs, then the header row and the rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for line in _inputs_lines(inputs):  # free of the delimiter: read_csv(comment="#") sees only the table
        buf.write(f"# {line.replace(',', ';')}\n")
    w.writerow([df.index.name or ""] + [str(c) for c in df.columns])
    for label, row in zip(df.index, df.itertuples(index=False)):
        w.writerow([label] + [_csv_cell(label, col, v) for col, v in zip(df.columns, row)])
    if df.empty:
        buf.write(f"# {EMPTY.replace(',', ';')}\n")
    return buf.getvalue()
