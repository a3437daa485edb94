"""Editing a generated workbook the way a planner would, and reading it back after LibreOffice."""

import math
import os
import re

import pytest

from openpyxl import load_workbook
from openpyxl.utils.cell import range_boundaries

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


def edited_copies(src, folder, edits):
    """One copy of ``src`` per (named inputs, named-table cells) pair in ``edits``, each with only that edit: the
    workbook is read once and each edit undone after its copy is saved."""
    wb = load_workbook(src)
    paths = []
    for i, (names, cells) in enumerate(edits):
        targets = [(name_cell(wb, n), v) for n, v in names.items()] + \
            [(table_cell(wb, *key), v) for key, v in cells.items()]
        before = [c.value for c, _ in targets]
        for c, v in targets:
            c.value = v
        paths.append(folder / f"edit{i}.xlsx")
        wb.save(paths[-1])
        for (c, _), v in zip(targets, before):
            c.value = v
    return paths


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
    return [(ws.title, c.coordinate, c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if isinstance(c.value, str) and ERROR.match(c.value)]


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
