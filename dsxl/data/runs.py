"""Measured serving runs in InferenceX's export format (``templates/inferencex_dsr1.csv``, or any file a planner
exports from InferenceX), read into typed records, and the conventions that map them onto dsxl's serving model
(``templates/runs.json``).

A record states its GPU (``hardware``), engine (``framework``), precision, parallel shape, lengths and concurrency;
its metrics are seconds (``median_tpot``, ``median_ttft``, ...) and tokens/s per GPU. A problem with a file is one
line naming the file, the row and the column. What the model can or cannot express of a valid record is decided in
:mod:`dsxl.refined.runs`, not here.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dsxl.data.records import read_template_text

# Columns a runs file must have; the metrics are numbers (blank where the record gave none).
CONDITION_COLUMNS = ("hardware", "framework", "model", "precision", "spec_method", "disagg", "prefill_tp",
                     "prefill_ep", "prefill_dp_attention", "prefill_num_workers", "decode_tp", "decode_ep",
                     "decode_dp_attention", "decode_num_workers", "num_prefill_gpu", "num_decode_gpu", "isl", "osl",
                     "conc")
METRIC_COLUMNS = ("mean_tpot", "median_tpot", "p99_tpot", "mean_ttft", "median_ttft", "p99_ttft", "tput_per_gpu",
                  "output_tput_per_gpu", "input_tput_per_gpu")
COUNTS = ("prefill_tp", "prefill_ep", "prefill_num_workers", "decode_tp", "decode_ep", "decode_num_workers",
          "num_prefill_gpu", "num_decode_gpu", "isl", "osl", "conc")
FLAGS = ("disagg", "prefill_dp_attention", "decode_dp_attention")
MAX_FIELD = 100_000  # characters in one field


@dataclass(frozen=True)
class Run:
    """One measured run: its conditions as the record states them and its metrics (seconds; tokens/s per GPU)."""

    row: int  # line in its file (the header is line 1)
    hardware: str
    framework: str
    model: str
    precision: str
    spec_method: str
    disagg: bool
    prefill_tp: int
    prefill_ep: int
    prefill_dp_attention: bool
    prefill_num_workers: int
    decode_tp: int
    decode_ep: int
    decode_dp_attention: bool
    decode_num_workers: int
    num_prefill_gpu: int
    num_decode_gpu: int
    isl: int
    osl: int
    conc: int
    metrics: dict[str, float | None]
    image: str = ""
    date: str = ""
    run_url: str = ""

    @property
    def group(self) -> str:
        """GPU x engine x precision, as the corpus groups its runs (``h200 sglang fp8``)."""
        return f"{self.hardware} {self.framework} {self.precision}"


def _flag(where: str, text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise ValueError(f"{where}: must be true or false; got {text[:40]!r}")


def _count(where: str, text: str) -> int:
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{where}: must be a whole number; got {text[:40]!r}") from None
    if not (math.isfinite(x) and x >= 0 and x == int(x)):
        raise ValueError(f"{where}: must be a whole number from 0; got {text[:40]!r}")
    return int(x)


def _metric(where: str, text: str) -> float | None:
    if not text.strip():
        return None
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{where}: must be a number (seconds or tokens/s per GPU); got {text[:40]!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{where}: must be a finite number above 0; got {text[:40]!r}")
    return x


def parse_runs(text: str, source: str) -> list[Run]:
    """Runs from CSV text in InferenceX's columns; a problem is one line naming ``source``, the row and the
    column."""
    csv.field_size_limit(MAX_FIELD + 1)
    try:
        records = list(csv.DictReader(io.StringIO(text)))
        header = list(csv.DictReader(io.StringIO(text)).fieldnames or [])
    except csv.Error as e:
        raise ValueError(f"{source}: not a readable CSV file ({e})") from None
    missing = [c for c in CONDITION_COLUMNS + METRIC_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{source}: column {missing[0]} is missing; a runs file has InferenceX's columns "
                         f"({', '.join(CONDITION_COLUMNS)}, and the metrics {', '.join(METRIC_COLUMNS)})")
    conventions = load_conventions()
    out = []
    for n, r in enumerate(records, start=2):
        def where(column: str) -> str:
            return f"{source} row {n}, column {column}"
        if None in r or any(v is None for v in r.values()):
            raise ValueError(f"{source} row {n}: has {'more' if None in r else 'fewer'} fields than the header")
        for column, allowed in (("hardware", conventions["gpus"]), ("framework", conventions["frameworks"]),
                                ("model", conventions["models"]), ("precision", conventions["precisions"])):
            if r[column].strip().lower() not in allowed:
                raise ValueError(f"{where(column)}: {r[column][:40]!r} is not known; allowed: {', '.join(allowed)}")
        values: dict[str, Any] = {c: _count(where(c), r[c]) for c in COUNTS}
        values.update({c: _flag(where(c), r[c]) for c in FLAGS})
        metrics = {c: _metric(where(c), r[c]) for c in METRIC_COLUMNS}
        out.append(Run(row=n, **{c: r[c].strip().lower() for c in ("hardware", "framework", "model", "precision")},
                       spec_method=r["spec_method"].strip().lower(), metrics=metrics,
                       image=r.get("image", ""), date=r.get("date", ""), run_url=r.get("run_url", ""), **values))
    return out


@lru_cache(maxsize=1)
def load_conventions() -> dict[str, Any]:
    """``templates/runs.json``: GPU, engine, model and precision names, lengths and each group's launch settings."""
    return json.loads(read_template_text("runs.json"))


@lru_cache(maxsize=1)
def load_corpus() -> tuple[Run, ...]:
    """The shipped corpus of InferenceX runs (``templates/inferencex_dsr1.csv``)."""
    name = load_conventions()["corpus"]["file"]
    return tuple(parse_runs(read_template_text(name), name))
