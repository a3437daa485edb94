"""The generated workbook, recalculated by LibreOffice, against the article and the Python model."""

import math
import subprocess
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from dsxl.refined.predict import predict
from dsxl.refined.validation import validate
from dsxl.article.tables import WhatIf, compute_tables
from dsxl.workbook import build_workbook, workbook_bytes
from dsxl.workbook.libreoffice import convert, soffice, uno_python
from printed import KNOWN_TYPOS, printed_equal, text_equal
from workbook_helpers import (assert_tables_equal, blank, error_cells, name_cell, read_table, require_engine,
                              whatif_copies)

REPO = Path(__file__).resolve().parents[1]
EDITS = {
    "h800_fp8": WhatIf(hardware={"H800": {"fp8_flops": 1800, "mem": 96}}),
    "workload": WhatIf(scenario={"seq_len": 8000, "kv_cache_rate": 0.3, "decode_len": 2500}),
    "sla": WhatIf(scenario={"tps_threshold": 10, "pcie_bw_1_6t": 30}, hardware={"H800": {"nvlink_bw": 180}}),
}

require_engine(soffice(), "LibreOffice")
pytestmark = pytest.mark.slow  # recalculates in a spreadsheet engine: pytest -m "not slow" leaves it out


@pytest.fixture(scope="module")
def recalculated(tmp_path_factory):
    """A fresh build and three edited copies, all recalculated by LibreOffice in one run."""
    src = tmp_path_factory.mktemp("src")
    paths = whatif_copies(build_workbook(src / "fresh.xlsx"), src, EDITS)
    outs = convert(paths, tmp_path_factory.mktemp("lo"))
    return {p.stem: load_workbook(o, data_only=True) for p, o in zip(paths, outs)} | {"_paths": dict(zip(
        [p.stem for p in paths], outs))}


@pytest.fixture(scope="module")
def committed_cached():
    """The committed workbook as a viewer that does not recalculate sees it (cached values only)."""
    return load_workbook(REPO / "workbook" / "dsxl.xlsx", data_only=True)


@pytest.mark.parametrize("book", ["libreoffice", "cached"])
def test_every_article_cell_through_the_tbl_names(recalculated, committed_cached, article, book):
    wb = recalculated["fresh"] if book == "libreoffice" else committed_cached
    decimals = {tid: df.attrs["decimals"] for tid, df in compute_tables().items()}
    cells = 0
    for spec in article["tables"]:
        columns, labels, values = read_table(wb, spec["id"])
        n = len(spec["columns"])
        assert columns[:n] == spec["columns"] and all(blank(c) for c in columns[n:]), spec["id"]
        assert labels[:len(spec["rows"])] == [r["label"] for r in spec["rows"]], spec["id"]
        for i, row in enumerate(spec["rows"]):
            for j, printed in enumerate(row["values"]):
                got = values[i][j]
                if KNOWN_TYPOS.get((spec["id"], row["label"], j)):
                    assert got == KNOWN_TYPOS[(spec["id"], row["label"], j)]
                elif isinstance(printed, str):
                    assert text_equal(got, printed), (spec["id"], got, printed)
                else:
                    assert printed_equal(got, printed, decimals[spec["id"]]), (spec["id"], row["label"], j, got)
                cells += 1
    assert cells == 891


def test_cached_values_equal_libreoffice_in_every_formula_cell(recalculated, tmp_path):
    path = build_workbook(tmp_path / "book.xlsx")
    formulas, cached = load_workbook(path), load_workbook(path, data_only=True)
    lo, n = recalculated["fresh"], 0
    for ws in formulas.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    a, b = cached[ws.title][c.coordinate].value, lo[ws.title][c.coordinate].value
                    n += 1
                    if isinstance(a, float) and isinstance(b, (int, float)):
                        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (ws.title, c.coordinate, a, b)
                    else:
                        assert a == b or (blank(a) and blank(b)), (ws.title, c.coordinate, a, b)
    assert n > 10_000


def test_pandas_reads_numbers_from_the_committed_workbook():
    import pandas as pd
    df = pd.read_excel(REPO / "workbook" / "dsxl.xlsx", sheet_name="Predict", header=None)
    values = dict(zip(df[0], df[1]))  # the results sit under the inputs, labels in column A
    assert values["Decode TPOT"] == pytest.approx(predict("decode", "H800", ep=128, batch=128, kv_len=4096)["tpot_ms"])
    validation = pd.read_excel(REPO / "workbook" / "dsxl.xlsx", sheet_name="Validation", header=None)
    c1 = validation[validation[0] == "C1"]
    assert len(c1) == 1 and c1[2].iloc[0] == pytest.approx(validate()[0]["refined"])


def test_checks_sheet_passes_everything(recalculated):
    wb = recalculated["fresh"]
    total, passing = name_cell(wb, "checks_total").value, name_cell(wb, "checks_passing").value
    assert total == passing and total > 800 and name_cell(wb, "checks_status").value == "ALL PASS"


@pytest.mark.parametrize("edit", list(EDITS))
def test_checks_say_they_do_not_apply_after_an_edit(recalculated, edit):
    wb = recalculated[edit]
    assert name_cell(wb, "article_inputs").value is False
    assert "do not apply" in name_cell(wb, "checks_status").value and name_cell(wb, "checks_passing").value == 0


@pytest.mark.parametrize("edit", list(EDITS))
def test_edited_workbook_equals_python_model(recalculated, edit):
    assert_tables_equal(recalculated[edit], compute_tables(EDITS[edit]))


def test_the_sla_edit_changes_the_filtered_tables(recalculated):
    before = read_table(recalculated["fresh"], "decode_totals_sla")[0]
    after = read_table(recalculated["sla"], "decode_totals_sla")[0]
    assert sum(not blank(c) for c in after) > sum(not blank(c) for c in before)


@pytest.mark.parametrize("book", ["fresh", *EDITS])
def test_no_error_cells_after_recalculation(recalculated, book):
    assert error_cells(recalculated[book]) == []


def test_names_validation_protection_and_charts_survive_libreoffice(recalculated):
    path = recalculated["_paths"]["fresh"]
    wb = load_workbook(path)
    names = set(wb.defined_names)
    assert {"hardware", "seq_len", "kv_cache_rate", "tps_threshold", "dim", "tbl_decode_totals"} <= names
    assert all(f"tbl_{t}" in names for t in compute_tables())
    assert sum(len(ws.data_validations.dataValidation) for ws in wb.worksheets) >= 4
    assert all(ws.protection.sheet for ws in wb.worksheets if ws.title != "xlwings.conf")
    with zipfile.ZipFile(path) as z:
        assert len([n for n in z.namelist() if re.match(r"xl/charts/chart\d+\.xml", n)]) >= 2


def test_only_portable_functions():
    with zipfile.ZipFile(__import__("io").BytesIO(workbook_bytes())) as z:
        xml = " ".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))
    formulas = re.findall(r"<f>(.*?)</f>", xml)
    assert len(formulas) > 1000
    code = re.sub(r'(&quot;|").*?(&quot;|")', "", " ".join(formulas))  # drop string literals
    used = set(re.findall(r"([A-Z][A-Z0-9.]*)\(", code))
    assert used <= {"IF", "INDEX", "MATCH", "IFERROR", "TEXT", "COUNTA", "COUNTIF", "ABS", "ISNUMBER", "MAX", "MIN",
                    "INT", "AND", "OR", "NOT", "ISTEXT", "POISSON", "GAMMAINV", "NA"}, used


def test_inputs_are_named_styled_and_validated():
    from openpyxl import load_workbook as load
    import io
    wb = load(io.BytesIO(workbook_bytes()))
    cell = name_cell(wb, "seq_len")
    assert cell.value == 4383 and cell.protection.locked is False and cell.font.color.rgb.endswith("0000FF")
    ws = cell.parent
    assert any(cell.coordinate in dv.sqref for dv in ws.data_validations.dataValidation)
    assert name_cell(wb, "dim").value == 7168


def test_builds_are_byte_identical_and_committed_copy_is_fresh(tmp_path):
    a, b = build_workbook(tmp_path / "a.xlsx"), build_workbook(tmp_path / "b.xlsx")
    assert a.read_bytes() == b.read_bytes()
    committed = REPO / "workbook" / "dsxl.xlsx"
    assert committed.exists(), "run `dsxl build` and commit workbook/dsxl.xlsx"
    assert committed.read_bytes() == a.read_bytes(), "workbook/dsxl.xlsx is stale: run `dsxl build` and commit it"
    assert a.stat().st_size < 1_000_000


def test_failed_build_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "book.xlsx"
    target.write_bytes(b"old")
    import dsxl.workbook as wbmod
    monkeypatch.setattr(wbmod, "workbook_bytes", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        wbmod.build_workbook(target)
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def _pdf_words(pdf):
    """Each page of a PDF as (width, height, its words as (x0, y0, x1, y1, text) in points), from pdftotext."""
    import html
    xml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = []
    for m in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', xml, re.S):
        words = [(float(a), float(b), float(c), float(d), html.unescape(t)) for a, b, c, d, t in re.findall(
            r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', m[3])]
        pages.append((float(m[1]), float(m[2]), words))
    return pages


def _pdf_pages(pdf):
    """Each page of a PDF as (its words, the median word height in points)."""
    import statistics
    return [([w[4] for w in words], statistics.median(w[3] - w[1] for w in words) if words else 0.0)
            for _, _, words in _pdf_words(pdf)]


@pytest.fixture(scope="module")
def printed_book(tmp_path_factory):
    """A fresh build and the PDF LibreOffice prints of it."""
    folder = tmp_path_factory.mktemp("print")
    path = build_workbook(folder / "book.xlsx")
    return path, convert([path], folder / "pdf", fmt="pdf")[0]


def test_every_sheet_prints_legibly(printed_book):
    """Landscape at a fixed scale of at least 70 %, as measured in the PDF LibreOffice prints (each page's median
    word height against the pages printed at 100 %); no mostly empty page; a bounded page count per sheet."""
    path, pdf = printed_book
    wb = load_workbook(path)
    assert wb["xlwings.conf"].sheet_state == "hidden"  # the add-in's settings never print
    sheets = [ws for ws in wb.worksheets if ws.sheet_state == "visible"]
    for ws in sheets:
        setup = ws.page_setup
        assert setup.orientation == "landscape" and not ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert setup.scale >= 70 and ws.print_area, ws.title
    for audit in ("Prefill_chain", "Decode_chain", "Refined_chain", "Planner_grid", "Checks"):  # a first block
        assert "Printed: the first block" in wb[audit]["A2"].value, audit
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
    faces = {line.split()[0].split("+")[-1] for line in fonts}
    assert faces and all(f.startswith(("Carlito", "Calibri")) for f in faces), faces  # no serif fallback
    pages = _pdf_pages(pdf)
    owner = _page_owners(sheets, [words for words, _ in pages])
    assert set(owner) == {ws.title for ws in sheets}, "every sheet prints"
    full = [h for (words, h), o in zip(pages, owner) if wb[o].page_setup.scale == 100 and len(words) >= 20]
    reference = sorted(full)[len(full) // 2]  # the median word height at 100 %
    for (words, h), o in zip(pages, owner):
        assert len(words) >= 20, (o, words)  # no mostly empty page (a table's last rows may run over)
        assert h / reference >= 0.70, (o, h / reference)  # chart pages too (their own fonts)
    for ws in sheets:  # the scale each sheet declares is the one that prints (its pages of body text)
        measured = sorted(h / reference for (words, h), o in zip(pages, owner) if o == ws.title and len(words) >= 60)
        assert measured and abs(measured[len(measured) // 2] - ws.page_setup.scale / 100) <= 0.04, (ws.title, measured)
    counts = {ws.title: owner.count(ws.title) for ws in sheets}
    assert max(counts.values()) <= 15 and len(pages) <= 55, counts  # Decode: 20 tables, 13 columns wide
    # catalogs one page across, sources as notes; Hardware adds the power catalog and its chart (two pages)
    assert counts["Hardware"] <= 5 and counts["Constants"] <= 4, counts


def _page_owners(sheets, pages):
    """The sheet each page belongs to: pages follow the sheets in order, and a sheet's first page starts with its
    title (row 1)."""
    owner, k = [], -1
    for words in pages:
        text = " ".join(words)
        while k + 1 < len(sheets) and text.startswith(sheets[k + 1]["A1"].value[:30]):
            k += 1
        owner.append(sheets[k].title)
    return owner


def _printed_cells(ws):
    """The text cells a sheet prints: inside its print area, on the rows an audit sheet prints."""
    from openpyxl.utils.cell import range_boundaries
    c1, r1, c2, r2 = range_boundaries(ws.print_area.split("!")[1].replace("$", ""))
    for row in ws.iter_rows(min_row=max(r1, 3), max_row=r2, min_col=c1, max_col=c2):
        for c in row:
            if isinstance(c.value, str) and c.value.strip() and not c.value.startswith("="):
                yield c


def test_no_header_or_note_is_split_or_cut_in_print(printed_book):
    """Measured in the PDF: every word of every printed header and note (italic) cell appears whole on its sheet's
    pages, so no header breaks mid-word ("fp16_flo" / "ps") and no note is cut at the print edge."""
    path, pdf = printed_book
    wb = load_workbook(path)
    sheets = [ws for ws in wb.worksheets if ws.sheet_state == "visible"]
    pages = [[w[4] for w in words] for _, _, words in _pdf_words(pdf)]
    owner = _page_owners(sheets, pages)
    missing = {}
    for ws in sheets:
        printed = {w for words, o in zip(pages, owner) if o == ws.title for w in words}
        for c in _printed_cells(ws):
            header = c.fill is not None and c.fill.fgColor is not None and c.fill.fgColor.rgb == "001F3864"
            if header or (c.font is not None and c.font.i):
                lost = [w for w in c.value.split() if w not in printed  # a break after a hyphen is a line break
                        and not all(part in printed for part in re.findall(r"[^-]+-?", w))]
                if lost:
                    missing.setdefault(ws.title, []).append((c.coordinate, lost[:3]))
    assert not missing, missing


def _collisions(words):
    """Pairs of words printed over each other: a wrapped cell too short for its lines prints its last lines over the
    next row's text (LibreOffice clips them on screen, but the PDF keeps the text under the clip)."""
    hits, ordered = [], sorted(words)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b[0] >= a[2]:
                break
            overlap_x = min(a[2], b[2]) - max(a[0], b[0])
            overlap_y = min(a[3], b[3]) - max(a[1], b[1])
            if overlap_x > 1 and overlap_y > 0.3 * min(a[3] - a[1], b[3] - b[1]):
                hits.append((a[4], b[4]))
    return hits


def test_nothing_is_clipped_in_print(printed_book):
    """Measured in the PDF: no text printed over other text (a cell too short for its wrapped lines), no word past
    the right margin, and Start's paragraphs whole within their rows. Measured in LibreOffice's own pagination: no
    chart crosses a page break."""
    from dsxl.workbook.libreoffice import print_layout
    from dsxl.workbook.printing import MARGIN_IN
    require_engine(uno_python(), "LibreOffice's Python bridge (python3-uno)", module=False)
    path, pdf = printed_book
    pages = _pdf_words(pdf)
    for k, (width, height, words) in enumerate(pages, start=1):
        assert not _collisions(words), (k, _collisions(words)[:5])
        past = [w[4] for w in words if w[2] > width - MARGIN_IN * 72 + 1 or w[3] > height]
        assert not past, (k, past)
    wb = load_workbook(path)
    start = wb["Start"]
    scale = start.page_setup.scale / 100
    first = pages[0][2] + pages[1][2]
    paragraphs = [m for m in start.merged_cells.ranges if m.min_row > 2 and len(str(start.cell(m.min_row, m.min_col)
                                                                                      .value or "")) > 100]
    assert len(paragraphs) >= 3
    for m in paragraphs:  # the paragraph's words, in order, lie within its row's printed height
        text = str(start.cell(m.min_row, m.min_col).value).split()
        tokens = [w[4] for w in first]
        at = next(i for i in range(len(tokens)) if tokens[i:i + 4] == text[:4])
        span = first[at:at + len(text)]
        assert [w[4] for w in span] == text, m.coord  # every word printed
        printed_pt = max(w[3] for w in span) - min(w[1] for w in span)
        assert printed_pt <= start.row_dimensions[m.min_row].height * scale, (m.coord, printed_pt)
    from openpyxl.utils.cell import range_boundaries
    for name, sheet in print_layout(path).items():
        if wb[name].sheet_state != "visible":
            continue
        _, _, last_col, last_row = range_boundaries(wb[name].print_area.split("!")[1].replace("$", ""))
        for chart in sheet["shapes"]:
            (r1, r2), (c1, c2) = chart["rows"], chart["columns"]
            assert r2 <= last_row and c2 <= last_col, (name, chart, wb[name].print_area)  # not cut by the print area
            assert not [b for b in sheet["row_breaks"] if r1 < b <= r2], (name, chart, sheet["row_breaks"])
            assert not [b for b in sheet["column_breaks"] if c1 < b <= c2], (name, chart, sheet["column_breaks"])
    assert sum(len(s["shapes"]) for s in print_layout(path).values()) == sum(len(ws._charts) for ws in wb.worksheets)


def test_charts_cover_no_cells_with_content():
    """Each chart's footprint (its anchor, width and height over the columns and rows it spans) holds no value."""
    from dsxl.workbook.printing import chart_footprint
    wb = load_workbook(REPO / "workbook" / "dsxl.xlsx")
    charts = 0
    for ws in wb.worksheets:
        for chart in ws._charts:
            charts += 1
            rows, cols = chart_footprint(ws, chart)
            covered = [ws.cell(r, c).coordinate for r in rows for c in cols if ws.cell(r, c).value is not None]
            assert covered == [], (ws.title, covered)
    assert charts >= 3


def test_every_font_in_the_styles_is_named():
    """An unnamed font renders in a serif fallback in LibreOffice: every font of xl/styles.xml names Calibri."""
    import re
    import zipfile
    with zipfile.ZipFile(REPO / "workbook" / "dsxl.xlsx") as z:
        styles = z.read("xl/styles.xml").decode()
    fonts = re.findall(r"<font>.*?</font>|<font/>", styles, re.S)
    assert fonts and all(re.search(r'<name val="Calibri" ?/>', f) for f in fonts), fonts
