"""Recalculate workbooks in headless LibreOffice (the tests' real spreadsheet engine).

LibreOffice trusts cached values unless told otherwise, so each call uses a fresh profile whose
settings force a full recalculation on load (OOXMLRecalcMode = 0, "always"). soffice exits 0 even
when it fails, so the output files are checked, and outputs never go into the inputs' folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert(inputs: list[Path], out_dir: Path, fmt: str = "xlsx", timeout_per_file: float = 30) -> list[Path]:
    """Convert (and so recalculate) ``inputs`` into ``out_dir``; returns the output paths. Large batches run as one
    soffice process per core, each with its own profile (one process converts files one after another)."""
    exe = soffice()
    if exe is None:
        raise RuntimeError("LibreOffice (soffice) is not installed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in inputs:
        if Path(p).resolve().parent == out_dir.resolve():
            raise ValueError(f"output folder must differ from the input's folder: {p}")
    workers = max(1, min(os.cpu_count() or 1, len(inputs) // 8))
    chunks = [list(inputs[k::workers]) for k in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        logs = list(pool.map(lambda chunk: _convert_chunk(exe, chunk, out_dir, fmt, timeout_per_file), chunks))
    outs = [out_dir / (Path(p).stem + "." + fmt) for p in inputs]
    missing = [o for o in outs if not o.exists()]
    if missing:
        raise RuntimeError(f"LibreOffice did not write {missing}: {' '.join(logs)}")
    return outs


def _convert_chunk(exe: str, inputs: list[Path], out_dir: Path, fmt: str, timeout_per_file: float) -> str:
    with tempfile.TemporaryDirectory(prefix="dsxl-lo-profile-") as profile:
        user = Path(profile) / "user"
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(RECALC_ALWAYS, encoding="utf-8")
        target = {"xlsx": "xlsx:Calc MS Excel 2007 XML", "pdf": "pdf"}[fmt]
        cmd = [exe, "--headless", "--norestore", "--nolockcheck", f"-env:UserInstallation={Path(profile).as_uri()}",
               "--convert-to", target, "--outdir", str(out_dir), *map(str, inputs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + timeout_per_file * len(inputs))
    return proc.stdout + proc.stderr
