"""Recalculate workbooks with Gnumeric's ``ssconvert --recalc`` (the tests' second spreadsheet engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def ssconvert() -> str | None:
    return shutil.which("ssconvert")


def recalc(inputs: list[Path], out_dir: Path, timeout: float = 300) -> list[Path]:
    """Recalculate each workbook into ``out_dir`` (same file names); returns the output paths."""
    exe = ssconvert()
    if exe is None:
        raise RuntimeError("Gnumeric (ssconvert) is not installed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in inputs:
        if (out_dir / Path(p).name).resolve() == Path(p).resolve():
            raise ValueError(f"output folder must differ from the input's folder: {p}")

    def one(p: Path) -> Path:
        out = out_dir / Path(p).name
        proc = subprocess.run([exe, "--recalc", str(p), str(out)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"ssconvert failed on {p}: {proc.stderr.strip()}")
        return out

    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:  # one ssconvert per core
        return list(pool.map(one, inputs))


def recalc_to_csv(inputs: list[Path], out_dir: Path, timeout: float = 300) -> list[list[Path]]:
    """Recalculate each workbook and write every sheet's values as CSV, unformatted ("raw": numbers in full
    precision, errors as their text); returns, per input, the CSV paths in sheet order. Much faster to write and
    read than a recalculated xlsx when only values are wanted."""
    exe = ssconvert()
    if exe is None:
        raise RuntimeError("Gnumeric (ssconvert) is not installed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(k_p: tuple[int, Path]) -> list[Path]:
        k, p = k_p
        pattern = out_dir / f"{k}.%n.csv"  # %n: the sheet's index
        proc = subprocess.run([exe, "--recalc", "-S", "-T", "Gnumeric_stf:stf_assistant", "-O", "format=raw", str(p),
                               str(pattern)], capture_output=True, text=True, timeout=timeout)
        outs = sorted(out_dir.glob(f"{k}.*.csv"), key=lambda o: int(o.name.split(".")[1]))
        if proc.returncode != 0 or not outs:
            raise RuntimeError(f"ssconvert failed on {p}: {proc.stderr.strip()}")
        return outs

    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, enumerate(inputs)))
