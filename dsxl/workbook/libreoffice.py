"""Recalculate workbooks in headless LibreOffice (the tests' real spreadsheet engine).

Where a Python with LibreOffice's ``uno`` module exists (``python3-uno``, which .ci/run installs), one soffice process
serves every call through ``uno_worker.py``: files are loaded, recalculated and stored without a new process each
time, and ``recalculate_edits`` applies many edits to one loaded workbook. Without it, each call runs
``soffice --convert-to``. LibreOffice trusts cached values unless told otherwise, so either way the profile forces a
full recalculation on load (OOXMLRecalcMode = 0, "always"). soffice exits 0 even when it fails, so the output files
are checked, and outputs never go into the inputs' folder.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

UNO_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")  # where python3-uno installs; DSXL_UNO_PYTHON overrides
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
    if uno_python():
        outs = [Path(o) for o in _Worker.shared(exe).ask(
            {"op": "convert", "inputs": [str(p) for p in inputs], "out_dir": str(out_dir), "fmt": fmt})["outputs"]]
        missing = [o for o in outs if not o.exists()]
        if missing:
            raise RuntimeError(f"LibreOffice did not write {missing}")
        return outs
    workers = max(1, min(os.cpu_count() or 1, len(inputs) // 8))
    chunks = [list(inputs[k::workers]) for k in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        logs = list(pool.map(lambda chunk: _convert_chunk(exe, chunk, out_dir, fmt, timeout_per_file), chunks))
    outs = [out_dir / (Path(p).stem + "." + fmt) for p in inputs]
    missing = [o for o in outs if not o.exists()]
    if missing:
        raise RuntimeError(f"LibreOffice did not write {missing}: {' '.join(logs)}")
    return outs


def _recalculating_profile(folder: str) -> str:
    """A LibreOffice user profile in ``folder`` that recalculates every formula on load; returns ``folder``."""
    user = Path(folder) / "user"
    user.mkdir(parents=True, exist_ok=True)
    (user / "registrymodifications.xcu").write_text(RECALC_ALWAYS, encoding="utf-8")
    return folder


def _convert_chunk(exe: str, inputs: list[Path], out_dir: Path, fmt: str, timeout_per_file: float) -> str:
    with tempfile.TemporaryDirectory(prefix="dsxl-lo-profile-") as profile:
        _recalculating_profile(profile)
        target = {"xlsx": "xlsx:Calc MS Excel 2007 XML", "pdf": "pdf"}[fmt]
        cmd = [exe, "--headless", "--norestore", "--nolockcheck", f"-env:UserInstallation={Path(profile).as_uri()}",
               "--convert-to", target, "--outdir", str(out_dir), *map(str, inputs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + timeout_per_file * len(inputs))
    return proc.stdout + proc.stderr


def recalculate_edits(src: Path, edits: list[list[tuple[str, int, int, object]]],
                      reads: list[tuple[str, int, int, int, int]]) -> list[list[list[list[object]]]]:
    """For each edit (cells as (sheet, row, column, value), 1-based; None clears a cell) applied alone to ``src``:
    the values of every range in ``reads`` (sheet, r1, c1, r2, c2) after a full recalculation, error values as
    their text. Needs ``uno_python()``."""
    return _uno_worker("in-place recalculation").ask({"op": "edits", "src": str(src),
                                                      "edits": [[list(c) for c in e] for e in edits],
                                                      "reads": [list(r) for r in reads]})["values"]


def print_layout(src: Path) -> dict[str, dict[str, list]]:
    """Each sheet of ``src`` as LibreOffice paginates it: ``row_breaks`` and ``column_breaks`` (the first row or column
    of every page after the first) and ``shapes`` (each chart's ``rows`` and ``columns``, first and last), all
    1-based. Needs ``uno_python()``."""
    return _uno_worker("reading the print layout").ask({"op": "layout", "src": str(src)})["sheets"]


def _uno_worker(purpose: str) -> "_Worker":
    """The shared UNO worker, or RuntimeError saying ``purpose`` needs LibreOffice and python3-uno."""
    exe = soffice()
    if exe is None or uno_python() is None:
        raise RuntimeError(f"{purpose} needs LibreOffice and its Python bridge (python3-uno)")
    return _Worker.shared(exe)


@functools.cache
def uno_python() -> str | None:
    """A Python that can import LibreOffice's ``uno`` module, if there is one."""
    for exe in (os.environ.get("DSXL_UNO_PYTHON"), *UNO_PYTHONS):
        if exe and Path(exe).exists() and subprocess.run([exe, "-c", "import uno"], capture_output=True).returncode == 0:
            return exe
    return None


class _Worker:
    """The one ``uno_worker.py`` process of this Python process: JSON lines in, JSON lines out."""
    _shared: "_Worker | None" = None
    _lock = threading.Lock()

    def __init__(self, exe: str):
        script = Path(__file__).with_name("uno_worker.py")
        self.profile = tempfile.TemporaryDirectory(prefix="dsxl-uno-profile-")
        self.proc = subprocess.Popen([uno_python(), str(script), exe, _recalculating_profile(self.profile.name)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        atexit.register(self.close)

    @classmethod
    def shared(cls, exe: str) -> "_Worker":
        with cls._lock:
            if cls._shared is None or cls._shared.proc.poll() is not None:
                cls._shared = cls(exe)
            return cls._shared

    def ask(self, request: dict) -> dict:
        with self._lock:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the LibreOffice worker stopped")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"LibreOffice: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.profile.cleanup()
