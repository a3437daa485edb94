"""Every text output and help fits 120 columns (markdown table rows and headings aside: markdown needs them whole);
a pasted command broken with backslashes still runs as printed (tests/test_plan.py, test_readme.py)."""

import pytest

from dsxl.cli import main

COMMANDS = [
    "--help", "predict --help", "predict decode --help", "plan --help", "validate --help", "calibrate --help",
    "report --help", "build --help", "models", "report --list", "report", "validate", "validate --ablate",
    "validate --runs templates/inferencex_dsr1.csv",
    "predict decode --gpu H800 --ep 128 --batch 128 --kv-len 4096",
    "predict prefill --gpu GB200 --ep 8 --tokens-per-gpu 16384 --prompt-len 4096",
    "predict aggregated --gpu H200 --ep 8 --concurrency 1024 --input-len 1024 --output-len 2048 --engine trtllm",
    "plan --gpu H200,GB300 --requests-per-s 40 --input-len 4000 --output-len 1500 --ttft-p99-ms 2000 --ownership own",
    "plan --gpu H200 --output-tokens-per-s 300000 --recipe trtllm",
    "plan --gpu H200 --output-tokens-per-s 300000 --recipe vllm",
    "plan --gpu B200 --power-budget-mw 5 --peak-to-average 1.5",
]  # calibrate --template prints a CSV file's header: data, not text


@pytest.mark.parametrize("command", COMMANDS)
def test_output_fits_120_columns(command, capsys, monkeypatch):
    from pathlib import Path
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    try:
        main(command.split())
    except SystemExit:  # --help exits
        pass
    out = capsys.readouterr().out
    assert out.strip(), command
    wide = [line for line in out.splitlines() if len(line) > 120 and not line.startswith(("|", "#"))]
    assert wide == [], (command, wide[:2])
