"""The README's "Extending dsxl" walk-through, followed: a made-up GPU added as two data rows in a private copy of
the catalogs (DSXL_TEMPLATES), then predicted and planned from the shell, with no code changed."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
NEW = "H300X"  # an H200 with twice its HBM bandwidth


def _dsxl(templates: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DSXL_TEMPLATES": str(templates)}
    return subprocess.run([sys.executable, "-m", "dsxl.cli", *args], capture_output=True, text=True, env=env)


def _append_copy_of(path: Path, name: str, key: str, **changes: str) -> None:
    """Step 1 and 2 of the walk-through: a row copied from an existing GPU's, renamed, changed, with its source."""
    rows = list(csv.DictReader(path.open()))
    row = {**next(r for r in rows if r[key] == name), key: NEW, **changes}
    with path.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerow(row)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalog")
    shutil.copytree(TEMPLATES, folder, dirs_exist_ok=True)
    h200 = next(r for r in csv.DictReader((TEMPLATES / "hardware.csv").open()) if r["name"] == "H200")
    _append_copy_of(folder / "hardware.csv", "H200", "name", mem_bw=str(2 * float(h200["mem_bw"])),
                    source="made up for the walk-through: an H200 with twice the HBM bandwidth")
    return folder


def test_a_new_gpu_row_predicts_with_no_code_changed(catalog):
    args = ("predict", "decode", "--ep", "16", "--batch", "8", "--kv-len", "4096", "--format", "json")
    new = json.loads(_dsxl(catalog, *args, "--gpu", NEW).stdout)
    old = json.loads(_dsxl(catalog, *args, "--gpu", "H200").stdout)
    # small-batch decode reads weights and KV: twice the bandwidth is faster, though less than twice
    assert 1.2 < old["tpot_ms"] / new["tpot_ms"] < 2.0
    assert new["watts_per_gpu"] is None  # no power row yet: no power figures, and plan says what is missing
    p = _dsxl(catalog, "plan", "--gpu", NEW)
    assert p.returncode == 2 and "H300X has no row in templates/power.csv" in p.stderr and "Traceback" not in p.stderr


def test_with_its_power_row_it_is_planned_and_costed(catalog, tmp_path):
    shutil.copytree(catalog, tmp_path, dirs_exist_ok=True)
    _append_copy_of(tmp_path / "power.csv", "H200", "gpu", tdp_source="made up: as H200")
    p = _dsxl(tmp_path, "plan", "--gpu", f"{NEW},H200", "--output-tokens-per-s", "100000", "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    new, old = r["gpus"][NEW], r["gpus"]["H200"]
    assert new["feasible"] and new["total_gpus"] <= old["total_gpus"] and new["power_mw"] > 0
    assert _dsxl(TEMPLATES, "predict", "decode", "--gpu", NEW, "--ep", "16", "--batch", "8",
                 "--kv-len", "4096").returncode == 2  # the shipped catalog is untouched
