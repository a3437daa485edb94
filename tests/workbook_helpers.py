"""Editing a generated workbook the way a planner would, and reading it back after LibreOffice."""

import math
import re

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


def set_in_table(wb, range_name, row_key, column, value):
    """Set the cell of a named table whose first column is ``row_key`` and header is ``column``."""
    ws, r1, c1, r2, c2 = name_range(wb, range_name)
    header = [ws.cell(r1, c).value for c in range(c1, c2 + 1)]
    for r in range(r1 + 1, r2 + 1):
        if ws.cell(r, c1).value == row_key:
            ws.cell(r, c1 + header.index(column)).value = value
            return
    raise KeyError(row_key)


def set_hardware(wb, gpu, field, value):
    set_in_table(wb, "hardware", gpu, field, value)


def apply_edits(src, dst, scenario=None, hardware=None):
    wb = load_workbook(src)
    for name, value in (scenario or {}).items():
        name_cell(wb, name).value = value
    for (gpu, field), value in (hardware or {}).items():
        set_hardware(wb, gpu, field, value)
    wb.save(dst)


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
