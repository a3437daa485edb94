"""Editing a generated workbook the way a planner would, and reading it back after LibreOffice."""

import csv
import math
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from xml.sax.saxutils import escape

import pytest

from openpyxl import load_workbook
from openpyxl.utils.cell import coordinate_from_string, column_index_from_string, get_column_letter, range_boundaries

from dsxl.workbook import gnumeric, libreoffice

ERROR = re.compile(r"^(#REF!|#NAME\?|#DIV/0!|#VALUE!|#N/A|#NUM!|#NULL!|Err:\d+)")


def name_cell(wb, name):
    (sheet, coord), = list(wb.defined_names[name].destinations)
    return wb[sheet][coord.replace("$", "")]


def name_range(wb, name):
    (sheet, coord), = list(wb.defined_names[name].destinations)
    c1, r1, c2, r2 = range_boundaries(coord.replace("$", ""))
    return wb[sheet], r1, c1, r2, c2


def table_cell(wb, range_name, row_key, column):
    """The cell of a named table whose first column is ``row_key`` and header is ``column``."""
    ws, r1, c1, r2, c2 = name_range(wb, range_name)
    header = [ws.cell(r1, c).value for c in range(c1, c2 + 1)]
    for r in range(r1 + 1, r2 + 1):
        if ws.cell(r, c1).value == row_key:
            return ws.cell(r, c1 + header.index(column))
    raise KeyError(row_key)


def set_in_table(wb, range_name, row_key, column, value):
    table_cell(wb, range_name, row_key, column).value = value


def _edited_cells(wb, names, cells):
    """(cell, new value) of one edit: named inputs, then named-table cells keyed (range name, row key, column)."""
    return [(name_cell(wb, n), v) for n, v in names.items()] + [(table_cell(wb, *key), v) for key, v in cells.items()]


def edited_copies(src, folder, edits, wb=None):
    """One copy of ``src`` per (named inputs, named-table cells) pair in ``edits``, each with only that edit. The
    cells are found once with openpyxl; each copy is the generated file with those cells' XML replaced (stored
    uncompressed), so every other byte is what the generator wrote and no copy costs a workbook save
    (``wb``: ``src`` already loaded by the caller)."""
    wb = wb or load_workbook(src)
    with zipfile.ZipFile(src) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    sheet_part = _sheet_parts(parts)
    paths = []
    for i, (names, cells) in enumerate(edits):
        copy = dict(parts)
        for c, v in _edited_cells(wb, names, cells):
            part = sheet_part[c.parent.title]
            copy[part] = _set_cell_xml(copy[part].decode("utf-8"), c.coordinate, v).encode("utf-8")
        paths.append(folder / f"edit{i}.xlsx")
        with zipfile.ZipFile(paths[-1], "w", zipfile.ZIP_STORED) as z:
            for name, data in copy.items():
                z.writestr(name, data)
    return paths


def _sheet_parts(parts):
    """Sheet title -> the zip member holding its XML."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
          "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}
    rels = {r.get("Id"): r.get("Target") for r in ET.fromstring(parts["xl/_rels/workbook.xml.rels"])}
    out = {}
    for sheet in ET.fromstring(parts["xl/workbook.xml"]).find("m:sheets", ns):
        target = rels[sheet.get(f"{{{ns['r']}}}id")]
        out[sheet.get("name")] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    return out


def _set_cell_xml(xml, coordinate, value):
    """``xml`` with cell ``coordinate`` holding ``value`` (None blank, text inline), its style kept."""
    cell = re.compile(rf'<c r="{coordinate}"(?P<attrs>[^>]*?)(?:/>|>.*?</c>)', re.S)
    m = cell.search(xml)
    if m is None:
        raise KeyError(f"cell {coordinate} is not in the sheet's XML")
    style_attr = re.search(r'\ss="\d+"', m["attrs"])
    head = f'<c r="{coordinate}"{style_attr.group(0) if style_attr else ""}'
    if value is None:
        new = head + "/>"
    elif isinstance(value, bool):
        new = f'{head} t="b"><v>{int(value)}</v></c>'
    elif isinstance(value, str):
        new = f'{head} t="inlineStr"><is><t>{escape(value)}</t></is></c>'
    else:
        new = f"{head}><v>{value!r}</v></c>"
    return xml[:m.start()] + new + xml[m.end():]


def recalculated_edits(engine, src, folder, edits, range_names):
    """One recalculated workbook per (named inputs, named-table cells) pair in ``edits``, each with only that edit.
    ``engine`` is ``libreoffice.convert`` or ``gnumeric.recalc``. LibreOffice with its Python bridge edits one loaded
    copy in place and reads back the ranges named in ``range_names`` (prefixes), so the result answers only for those
    cells; otherwise each edit is saved as a copy and recalculated as a file."""
    wb = load_workbook(src)
    reads = [name_range(wb, n) for n in wb.defined_names if n.startswith(range_names)]
    if engine is libreoffice.convert and libreoffice.uno_python():
        changes = [[(c.parent.title, c.row, c.column, v) for c, v in _edited_cells(wb, names, cells)]
                   for names, cells in edits]
        values = libreoffice.recalculate_edits(src, changes, [(ws.title, r1, c1, r2, c2)
                                                              for ws, r1, c1, r2, c2 in reads])
        return [RangeValues(wb, reads, v) for v in values]
    if engine is gnumeric.recalc:
        sheets = wb.sheetnames
        books = []
        for csvs in gnumeric.recalc_to_csv(edited_copies(src, folder, edits, wb), folder / "csv"):
            grids = {sheets[k]: list(csv.reader(open(path, newline="", encoding="utf-8"))) for k, path in enumerate(csvs)}
            books.append(RangeValues(wb, reads, [_csv_block(grids[ws.title], r1, c1, r2, c2)
                                                 for ws, r1, c1, r2, c2 in reads]))
        return books
    outs = engine(edited_copies(src, folder, edits, wb), folder / "out")
    return [load_workbook(o, data_only=True) for o in outs]


def _csv_block(grid, r1, c1, r2, c2):
    """The values of rows r1..r2 and columns c1..c2 (1-based) of a sheet exported as raw CSV, typed as openpyxl
    reads them: blank None, TRUE/FALSE booleans, numbers as numbers, anything else (error values too) as text."""
    def typed(text):
        if text in ("TRUE", "FALSE"):
            return text == "TRUE"
        try:
            return float(text)
        except ValueError:
            return text or None
    return [[typed(grid[r][c]) if r < len(grid) and c < len(grid[r]) else None for c in range(c1 - 1, c2)]
            for r in range(r1 - 1, r2)]


class RangeValues:
    """The read-back ranges of an in-place recalculation, addressed like an openpyxl workbook (names, sheets,
    cells); a cell outside them raises KeyError rather than answering with a stale value."""

    def __init__(self, wb, reads, values):
        self.defined_names = wb.defined_names
        self.cells = {}
        for (ws, r1, c1, _, _), rows in zip(reads, values):
            for i, row in enumerate(rows):
                for j, v in enumerate(row):
                    self.cells[(ws.title, r1 + i, c1 + j)] = None if v == "" else v
        self.worksheets = []

    def __getitem__(self, sheet):
        return _SheetValues(self, sheet)


class _SheetValues:
    def __init__(self, book, title):
        self.book, self.title = book, title

    def cell(self, row, column):
        return _CellValue(self.book.cells[(self.title, row, column)], f"{get_column_letter(column)}{row}")

    def __getitem__(self, coordinate):
        letters, row = coordinate_from_string(coordinate)
        return self.cell(row, column_index_from_string(letters))


class _CellValue:
    def __init__(self, value, coordinate):
        self.value, self.coordinate = value, coordinate


def apply_edits(src, dst, names=None, cells=None):
    """Save a copy of ``src`` as ``dst`` with named inputs set (``names``) and named-table cells set
    (``cells``: {(range name, row key, column header): value}), in that order."""
    wb = load_workbook(src)
    for name, value in (names or {}).items():
        name_cell(wb, name).value = value
    for (range_name, row_key, column), value in (cells or {}).items():
        set_in_table(wb, range_name, row_key, column, value)
    wb.save(dst)
    return dst


def whatif_copies(fresh, folder, edits):
    """``fresh`` plus one edited copy per WhatIf in ``edits`` (scenario inputs and hardware fields), by name."""
    paths = [fresh]
    for name, w in edits.items():
        cells = {("hardware", g, f): v for g, changes in w.hardware.items() for f, v in changes.items()}
        paths.append(apply_edits(fresh, folder / f"{name}.xlsx", w.scenario, cells))
    return paths


def require_engine(found, what, module=True):
    """The one guard for every test that needs a spreadsheet engine (or the formulas package): skip without it,
    except in CI (.ci/run installs it), where a missing engine fails instead of skipping silently."""
    if found:
        return
    if os.environ.get("CI"):
        raise RuntimeError(f"{what} is required in CI (.ci/run installs it)")
    pytest.skip(f"{what} not installed", allow_module_level=module)


def read_table(wb, table_id):
    """(columns, labels, values) of a tbl_ range as LibreOffice computed it."""
    ws, r1, c1, r2, c2 = name_range(wb, f"tbl_{table_id}")
    columns = [ws.cell(r1, c).value for c in range(c1 + 1, c2 + 1)]
    labels = [ws.cell(r, c1).value for r in range(r1 + 1, r2 + 1)]
    values = [[ws.cell(r, c).value for c in range(c1 + 1, c2 + 1)] for r in range(r1 + 1, r2 + 1)]
    return columns, labels, values


def error_cells(wb):
    """Every cell holding an error value, but #N/A in a chart's data ranges (CHART_GAPS: a point left out)."""
    from dsxl.workbook.planner_sheet import CHART_GAPS
    gaps = set()
    for name in CHART_GAPS:
        ws, r1, c1, r2, c2 = name_range(wb, name)
        gaps |= {(ws.title, r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)}
    return [(ws.title, c.coordinate, c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if isinstance(c.value, str) and ERROR.match(c.value)
            and not (c.value == "#N/A" and (ws.title, c.row, c.column) in gaps)]


def blank(x):
    return x is None or x == ""


def assert_tables_equal(wb, expected):
    """Every tbl_ range of a recalculated workbook equals the Python tables (labels exactly, numbers to 1e-9)."""
    for tid, df in expected.items():
        columns, labels, values = read_table(wb, tid)
        ncol, nrow = df.shape[1], df.shape[0]
        assert columns[:ncol] == [str(c) for c in df.columns], tid
        assert all(blank(c) for c in columns[ncol:]), tid
        assert labels[:nrow] == [str(x) for x in df.index], tid
        assert all(blank(x) for x in labels[nrow:]), tid
        for i in range(nrow):
            for j in range(ncol):
                want, got = df.iat[i, j], values[i][j]
                if isinstance(want, str):
                    assert got == want, (tid, i, j)
                else:
                    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (tid, i, j, got, want)
