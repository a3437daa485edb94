"""A third engine: the pure-Python `formulas` package recalculates the generated workbook and every article table
equals Python, as in LibreOffice and Gnumeric. Skipped when `formulas` is not installed, except in CI (the test
extra installs it)."""

import pytest
from openpyxl import load_workbook

from dsxl.article.tables import compute_tables
from dsxl.workbook import build_workbook
from workbook_helpers import assert_tables_equal, error_cells, name_cell, require_engine

try:
    import formulas
except ImportError:
    formulas = None
require_engine(formulas, "the formulas package")
pytestmark = pytest.mark.slow


def test_every_table_equals_python_in_formulas(tmp_path):
    src = build_workbook(tmp_path / "book.xlsx")
    model = formulas.ExcelModel().loads(str(src)).finish()
    model.calculate()
    written = model.write(dirpath=str(tmp_path / "out"))  # {book file: {sheet: ...}}, in upper case
    (path,) = [tmp_path / "out" / name for name in written]
    computed = load_workbook(path, data_only=True)  # values only: no defined names, sheet names upper case
    wb = load_workbook(src)  # the layout and names, each formula replaced by what `formulas` computed
    cells = 0
    for ws in wb.worksheets:
        if ws.sheet_state != "visible":
            continue
        other = computed[next(s for s in computed.sheetnames if s.upper() == ws.title.upper())]
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    c.value = other[c.coordinate].value
                    cells += 1
    assert cells > 10_000
    assert_tables_equal(wb, compute_tables())
    assert error_cells(wb) == []
    passing, total = (name_cell(wb, n).value for n in ("checks_passing", "checks_total"))
    assert passing == total and total > 800
