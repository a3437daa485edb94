"""Recalculate workbooks with Gnumeric's ``ssconvert --recalc`` (the tests' second spreadsheet engine)."""

from __future__ import annotations

import shutil
import subprocess
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
    outs = []
    for p in inputs:
        out = out_dir / Path(p).name
        if out.resolve() == Path(p).resolve():
            raise ValueError(f"output folder must differ from the input's folder: {p}")
        proc = subprocess.run([exe, "--recalc", str(p), str(out)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"ssconvert failed on {p}: {proc.stderr.strip()}")
        outs.append(out)
    return outs
