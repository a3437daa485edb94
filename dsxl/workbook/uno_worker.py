"""A LibreOffice worker driven through UNO: one soffice process for many recalculations.

Run by ``dsxl.workbook.libreoffice`` under a Python that has LibreOffice's ``uno`` module (on Debian, the system
``/usr/bin/python3`` with ``python3-uno``), with soffice's path and a prepared profile folder as arguments; it
imports nothing from dsxl. It reads one JSON request per line on stdin
and answers each with one JSON line on stdout:

- ``{"op": "convert", "inputs": [...], "out_dir": ..., "fmt": "xlsx" | "pdf"}``: load, recalculate, store.
- ``{"op": "edits", "src": ..., "edits": [[[sheet, row, column, value], ...], ...], "reads": [[sheet, r1, c1, r2,
  c2], ...]}``: load ``src`` once; for each edit set the cells, recalculate, read every range, and undo the edit.
  Rows and columns count from 1, as in openpyxl. An error value reads as its text (``#DIV/0!``, ``Err:502``).
- ``{"op": "layout", "src": ...}``: each sheet's page breaks as LibreOffice prints them (the first row and column of
  every page after the first) and each drawing's (chart's) first and last row and column, all counted from 1.

Starting soffice and loading the workbook take seconds; an edit and its recalculation take milliseconds, which is
why the tests' input walks run here rather than one ``soffice --convert-to`` per edited copy.
"""

import bisect
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uno  # noqa: F401  (LibreOffice's bridge; must come before the com.sun.star imports)
from com.sun.star.beans import PropertyValue

FILTERS = {"xlsx": "Calc MS Excel 2007 XML", "pdf": "calc_pdf_Export"}
CELL_EMPTY, CELL_VALUE, CELL_TEXT = "EMPTY", "VALUE", "TEXT"


def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def start(soffice, profile):
    """soffice listening on a private pipe, and its Desktop; ``profile`` is the user profile the caller prepared
    (it forces a full recalculation on load)."""
    pipe = f"dsxl{os.getpid()}"
    proc = subprocess.Popen([soffice, "--headless", "--invisible", "--norestore", "--nolockcheck", "--nodefault",
                             f"-env:UserInstallation={Path(profile).as_uri()}", f"--accept=pipe,name={pipe};urp;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 60
    while True:
        try:
            ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("LibreOffice did not start")
            time.sleep(0.1)
    return proc, ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)


@contextlib.contextmanager
def opened(desktop, path):
    """``path`` loaded and fully recalculated, closed on leaving."""
    doc = desktop.loadComponentFromURL(Path(path).resolve().as_uri(), "_blank", 0, (prop("Hidden", True),))
    if doc is None:
        raise RuntimeError(f"LibreOffice could not open {path}")
    try:
        doc.calculateAll()
        yield doc
    finally:
        doc.close(True)


def store(doc, out, fmt):
    doc.storeToURL(Path(out).resolve().as_uri(), (prop("FilterName", FILTERS[fmt]),))


def convert(desktop, inputs, out_dir, fmt):
    outs = []
    for path in inputs:
        out = Path(out_dir) / (Path(path).stem + "." + fmt)
        with opened(desktop, path) as doc:
            store(doc, out, fmt)
        outs.append(str(out))
    return {"outputs": outs}


def set_cell(cell, value):
    if value is None:
        cell.setFormula("")
    elif isinstance(value, str):
        cell.setString(value)
    else:
        cell.setValue(float(value))


def snapshot(cell):
    """A function that puts ``cell`` back as it was."""
    kind = cell.Type.value
    if kind == CELL_EMPTY:
        return lambda: cell.setFormula("")
    if kind == CELL_VALUE:
        value = cell.getValue()
        return lambda: cell.setValue(value)
    if kind == CELL_TEXT:
        text = cell.getString()
        return lambda: cell.setString(text)
    formula = cell.getFormula()
    return lambda: cell.setFormula(formula)


def read(sheet_range):
    rows = [list(r) for r in sheet_range.getDataArray()]
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v is None:  # an error value: getDataArray gives None, the cell's text names it
                row[j] = sheet_range.getCellByPosition(j, i).getString()
    return rows


def edits(desktop, src, edit_list, reads):
    with opened(desktop, src) as doc:
        sheets = doc.Sheets
        ranges = [sheets.getByName(s).getCellRangeByPosition(c1 - 1, r1 - 1, c2 - 1, r2 - 1)
                  for s, r1, c1, r2, c2 in reads]
        results = []
        for edit in edit_list:
            cells = [(sheets.getByName(s).getCellByPosition(c - 1, r - 1), v) for s, r, c, v in edit]
            undo = [snapshot(cell) for cell, _ in cells]
            for cell, value in cells:
                set_cell(cell, value)
            doc.calculateAll()
            results.append([read(rng) for rng in ranges])
            for restore in reversed(undo):
                restore()
        return {"values": results}


def layout(desktop, src):
    with opened(desktop, src) as doc:
        with tempfile.TemporaryDirectory() as tmp:  # printing lays the pages out: the breaks are the printed ones
            store(doc, Path(tmp) / "layout.pdf", "pdf")
        sheets = {}
        for sheet in doc.Sheets:
            used = sheet.createCursor()
            used.gotoEndOfUsedArea(False)
            last_row, last_col = used.RangeAddress.EndRow + 40, used.RangeAddress.EndColumn + 20
            tops = [sheet.getCellByPosition(0, r).Position.Y for r in range(last_row + 1)]
            lefts = [sheet.getCellByPosition(c, 0).Position.X for c in range(last_col + 1)]
            # the 1-based row or column whose span holds a point: how many of them start at or before it
            row_at, col_at = (lambda y: bisect.bisect_right(tops, y)), (lambda x: bisect.bisect_right(lefts, x))
            shapes = []
            for i in range(sheet.DrawPage.Count):
                shape = sheet.DrawPage.getByIndex(i)
                if not shape.supportsService("com.sun.star.drawing.OLE2Shape"):  # comments' captions
                    continue
                pos, size = shape.Position, shape.Size
                shapes.append({"rows": [row_at(pos.Y), row_at(pos.Y + size.Height - 1)],
                               "columns": [col_at(pos.X), col_at(pos.X + size.Width - 1)]})
            sheets[sheet.Name] = {"row_breaks": [b.Position + 1 for b in sheet.getRowPageBreaks() if b.Position],
                                  "column_breaks": [b.Position + 1 for b in sheet.getColumnPageBreaks() if b.Position],
                                  "shapes": shapes}
        return {"sheets": sheets}


def main():
    soffice, profile = sys.argv[1], sys.argv[2]
    proc, desktop = start(soffice, profile)
    try:
        for line in sys.stdin:
            request = json.loads(line)
            try:
                if request["op"] == "convert":
                    answer = convert(desktop, request["inputs"], request["out_dir"], request["fmt"])
                elif request["op"] == "layout":
                    answer = layout(desktop, request["src"])
                else:
                    answer = edits(desktop, request["src"], request["edits"], request["reads"])
            except Exception as exc:  # reported to the caller, who raises it
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        try:
            desktop.terminate()
        except Exception:
            pass  # the bridge drops as soffice exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
