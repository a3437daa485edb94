"""How each sheet prints: landscape at a fixed, legible scale, wide sheets in page-wide blocks.

Fit-to-width shrinks a wide sheet until nothing is legible, and a fixed scale alone splits columns wherever the page
ends. So each sheet is cut at column boundaries chosen here: side-by-side blocks (inputs, results) stay whole and
print one after another; a wide table repeats its label column on every page. The scale is the largest (at most
100 %) that needs the fewest pages across, never below MIN_SCALE.
"""

from __future__ import annotations

import math
from copy import copy
from typing import Any, Callable

from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter
from openpyxl.drawing.spreadsheet_drawing import AnchorMarker, OneCellAnchor
from openpyxl.drawing.xdr import XDRPositiveSize2D
from openpyxl.utils.cell import coordinate_to_tuple
from openpyxl.utils.units import cm_to_EMU
from openpyxl.worksheet.pagebreak import Break, ColBreak
from openpyxl.worksheet.page import PageMargins

# Letter landscape is the narrower page (11 in), A4 landscape the shorter (8.27 in): a layout fits both.
MARGIN_IN = 0.4
PAGE_WIDTH_PT = 11 * 72 - 2 * MARGIN_IN * 72
SAFETY = 0.97  # rounding in the engines' page layout
MIN_SCALE = 75  # percent; the floor is 70
DEFAULT_WIDTH = 8.43
DEFAULT_ROW_PT = 15.0
PAGE_HEIGHT_PT = 8.27 * 72 - 72 - 48  # A4 landscape less margins, header and footer
CM_PT = 72 / 2.54


def column_pt(width: float | None) -> float:
    """Printed width of a column ``width`` characters wide. LibreOffice prints 7 pt per character (measured: a
    10-character column spans 70 pt of a PDF at 100 %); Excel's rule (7 px at 96 dpi, about 5.3 pt) is narrower, so a
    layout that fits LibreOffice fits Excel."""
    return (width or DEFAULT_WIDTH) * 7.0


def _widths(ws: Any, last: int) -> list[float]:
    return [column_pt(ws.column_dimensions[get_column_letter(c)].width) for c in range(1, last + 1)]


def _used_columns(ws: Any, last_row: int) -> list[bool]:
    used = [False] * (ws.max_column + 1)
    for row in ws.iter_rows(min_row=3, max_row=last_row):  # rows 1-2 (title, intro) overflow by design
        for c in row:
            if c.value is not None:
                used[c.column] = True
    for m in ws.merged_cells.ranges:  # a merge prints over all its columns
        if m.min_row >= 3 and m.min_row <= last_row:
            for c in range(m.min_col, m.max_col + 1):
                used[c] = True
    return used


SHEET_PT_PER_CHARACTER = 5.55  # a column's width on LibreOffice's sheet, where charts are placed (measured through UNO)
INSET_CM = 0.1  # a chart starts this far inside its anchor cell: its frame never lies on a column A that repeats


def place_chart(ws: Any, chart: Any, cell: str) -> None:
    """Add ``chart`` at ``cell``, inset by :data:`INSET_CM`: at offset 0 LibreOffice paints the frame's left edge
    in the previous column, so a repeated column A would print a sliver of it on every later page."""
    row, col = coordinate_to_tuple(cell)
    inset = cm_to_EMU(INSET_CM)
    chart.width, chart.height = chart.width - INSET_CM, chart.height - INSET_CM  # the same footprint as at offset 0
    chart.anchor = OneCellAnchor(_from=AnchorMarker(col=col - 1, colOff=inset, row=row - 1, rowOff=inset),
                                 ext=XDRPositiveSize2D(cm_to_EMU(chart.width), cm_to_EMU(chart.height)))
    ws.add_chart(chart)


def chart_footprint(ws: Any, chart: Any) -> tuple[range, range]:
    """The rows and columns (1-based) a chart covers: from its anchor, its width over the columns' widths on the
    sheet (not as printed: a chart is sized in centimetres on the sheet) and its height over the rows' heights."""
    anchor = chart.anchor  # "A26" until saved, an anchor object after loading
    if isinstance(anchor, str):
        (row, col), col_off, row_off = coordinate_to_tuple(anchor), 0.0, 0.0
    else:  # its inset (place_chart) in points
        row, col = anchor._from.row + 1, anchor._from.col + 1
        col_off, row_off = (off / cm_to_EMU(1) * CM_PT for off in (anchor._from.colOff, anchor._from.rowOff))
    end_col, width = col, chart.width * CM_PT + col_off
    while width > 0:
        width -= (ws.column_dimensions[get_column_letter(end_col)].width or DEFAULT_WIDTH) * SHEET_PT_PER_CHARACTER
        end_col += 1
    end_row, height = row, chart.height * CM_PT + row_off
    while height > 0:
        height -= ws.row_dimensions[end_row].height or DEFAULT_ROW_PT
        end_row += 1
    return range(row, end_row), range(col, end_col)


def _units(used: list[bool], last: int, keep_blocks: bool) -> list[tuple[int, int]]:
    """Column ranges a page break may not cut: each block between empty columns (side-by-side blocks), or each
    column (a wide table)."""
    if not keep_blocks:
        return [(c, c) for c in range(2, last + 1)]
    units, start = [], None
    for c in range(1, last + 2):
        if c <= last and used[c]:
            start = c if start is None else start
        elif start is not None:
            units.append((start, c - 1))
            start = None
    return units


def _pack(units: list[tuple[int, int]], widths: list[float], capacity: float) -> list[int] | None:
    """Greedy pages over ``units``; returns the first column of each page after the first (None: a unit is wider
    than a page). A page ends with its last block: the empty columns between blocks start the next page."""
    breaks: list[int] = []
    used, prev_end = 0.0, None
    for a, b in units:
        w = sum(widths[a - 1:b])
        if w > capacity:
            return None
        gap = sum(widths[prev_end:a - 1]) if prev_end is not None else 0.0
        if prev_end is not None and used + gap + w > capacity:
            breaks.append(prev_end + 1)
            used = gap + w
        else:
            used += gap + w
        prev_end = b
    return breaks


def first_page_columns(ws: Any) -> int:
    """How many columns from A print on one page at 100 % (an audit sheet prints that block)."""
    widths, total = _widths(ws, ws.max_column), 0.0
    for c, w in enumerate(widths, start=1):
        total += w
        if total > PAGE_WIDTH_PT * SAFETY:
            return max(1, c - 1)
    return len(widths)


def _text_pt(cell: Any) -> float:
    """Printed width of a cell's text, on the generous side (0.58 em per character, 0.62 bold): a guess too wide
    wraps a line early, one too narrow cuts text."""
    size = (cell.font.sz if cell.font and cell.font.sz else 11)
    return len(str(cell.value)) * size * (0.62 if cell.font and cell.font.b else 0.58)


def _fit_wrapped_rows(ws: Any, widths: list[float], last_row: int) -> None:
    """Rows holding wrapped text get the height of their longest cell's lines, so nothing is cut and no row is
    taller than its text (a guess of a fixed height leaves pages half empty)."""
    merged = _merged(ws)
    for r in range(3, last_row + 1):
        lines, upright = 0, 0.0
        for cell in ws[r]:
            if not isinstance(cell.value, str) or cell.alignment is None or (cell.row, cell.column) in merged \
                    or cell.value.startswith("="):
                continue
            if cell.alignment.text_rotation:  # an upright header: its text runs up the row
                upright = max(upright, upright_pt(cell))
            elif cell.alignment.wrap_text:
                lines = max(lines, math.ceil(_text_pt(cell) / (widths[cell.column - 1] - 4)))
        if lines or upright:
            ws.row_dimensions[r].height = max(15, lines * 14.5, upright)


def upright_pt(cell: Any) -> float:
    """The row height an upright (rotated) header needs: its text's width, generously, and a margin."""
    return _text_pt(cell) * 0.7 + 10  # measured: a 14-letter bold name runs 0.6 of _text_pt


def wrapped_note(ws: Any, row: int, first: int, last: int, width: Callable[[int], float] | None = None) -> None:
    """Text at (row, first) wrapped in a merge to column ``last``, the row as tall as its lines (counted on the
    generous side, so no line is cut). ``width`` gives a column's width in characters when the sheet's own are set
    later."""
    cell = ws.cell(row, first)
    cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    width = width or (lambda j: ws.column_dimensions[get_column_letter(j)].width)
    span_pt = sum(column_pt(width(j)) for j in range(first, last + 1)) - 4
    ws.row_dimensions[row].height = 14.5 * max(1, math.ceil(_text_pt(cell) / span_pt))


def _merged(ws: Any) -> set[tuple[int, int]]:
    """(row, column) of every cell inside a merge."""
    return {c for m in ws.merged_cells.ranges for row in m.rows for c in row}


def _wrap_if_wider(ws: Any, cells: Any, widths: list[float], beside: bool = False) -> None:
    """Each of ``cells`` whose text is wider than its column wraps (formulas and merged cells aside); with
    ``beside``, only where the next cell holds a value (elsewhere the text may run over it)."""
    merged = _merged(ws)
    for cell in cells:
        if not isinstance(cell.value, str) or cell.value.startswith("=") or (cell.row, cell.column) in merged:
            continue
        if cell.alignment is not None and (cell.alignment.wrap_text or cell.alignment.text_rotation):
            continue  # wrapped already, or upright (its width is its row's height)
        if _text_pt(cell) > widths[cell.column - 1] - 4 and (not beside or ws.cell(cell.row, cell.column + 1).value
                                                               is not None):
            old = cell.alignment
            cell.alignment = Alignment(wrap_text=True, vertical="top",
                                       horizontal=old.horizontal if old is not None else None)


def _wrap_clipped_text(ws: Any, widths: list[float], last_row: int, last: int) -> None:
    """Text wider than its column with a value beside it would be cut at that value: it wraps instead."""
    _wrap_if_wider(ws, (c for row in ws.iter_rows(min_row=3, max_row=last_row, max_col=last) for c in row), widths,
                   beside=True)


def _wrap_overflowing_text(ws: Any, span_end: int, widths: list[float], last_row: int) -> None:
    """Text alone in its row that runs past column A (titles, notes, headings) is wrapped in a merge over the first
    page's columns, with the row as tall as its lines: it is never cut at a page edge or printed on a page of its
    own."""
    span_pt = sum(widths[:span_end])
    for r in range(1, last_row + 1):
        cell = ws.cell(r, 1)
        if not isinstance(cell.value, str) or cell.value.startswith("=") or _text_pt(cell) <= widths[0]:
            continue
        if any(ws.cell(r, c).value is not None for c in range(2, span_end + 1)):
            continue
        if span_end > 1:
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=span_end)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        lines = max(1, math.ceil(_text_pt(cell) / span_pt))
        size = cell.font.sz if cell.font and cell.font.sz else 11
        ws.row_dimensions[r].height = max(ws.row_dimensions[r].height or 0, lines * size * 1.4)


def _wrap_at_page_edges(ws: Any, page_starts: list[int], widths: list[float], last_row: int) -> None:
    """A cell in a page's last column whose text runs past it wraps instead (the rest would print on the next page
    or be cut)."""
    _wrap_if_wider(ws, (ws.cell(r, start - 1) for start in page_starts if start > 1 for r in range(1, last_row + 1)),
                   widths)


def _title_beside_labels(ws: Any, span_end: int, widths: list[float]) -> None:
    """On a sheet whose column A repeats on every printed page, the title keeps only the sheet's name in A1 (so each
    page names its sheet) and the rest of the title and the intro move beside it, wrapped over the first page."""
    title, intro = ws["A1"].value, ws["A2"].value
    moved = {}
    if isinstance(title, str) and ":" in title:
        name, rest = title.split(":", 1)
        ws["A1"].value = name
        moved[1] = (rest.strip(), ws["A1"].font)
    if isinstance(intro, str) and intro:
        moved[2] = (intro, ws["A2"].font)
        ws["A2"].value = None
    span_pt = sum(widths[1:span_end])
    for r, (text, font) in moved.items():
        cell = ws.cell(r, 2, text)
        cell.font = copy(font)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if span_end > 2:
            ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=span_end)
        size = font.sz if font is not None and font.sz else 11
        lines = max(1, math.ceil(_text_pt(cell) / span_pt))
        ws.row_dimensions[r].height = max(ws.row_dimensions[r].height or 0, lines * size * 1.4)


def _segment_heights(ws: Any, last_row: int) -> list[float]:
    """The sheet's height in points between its manual row breaks (each segment starts a page of its own)."""
    cuts = sorted({b.id for b in ws.row_breaks.brk if 0 < b.id < last_row}) + [last_row]
    out, first = [], 1
    for cut in cuts:
        out.append(sum(ws.row_dimensions[r].height or DEFAULT_ROW_PT for r in range(first, cut + 1)))
        first = cut + 1
    return out


def lay_out(ws: Any, label_column: bool, last_row: int | None = None, last_col: int | None = None) -> int:
    """Set ``ws`` to print landscape at a fixed scale with column breaks; returns the scale in percent.
    ``label_column``: the sheet is one wide table whose column A labels every row (it repeats on each page);
    otherwise the sheet is blocks side by side, separated by empty columns, and each block stays whole."""
    footprints = [chart_footprint(ws, chart) for chart in ws._charts]
    last_row = last_row or max([ws.max_row] + [rows[-1] for rows, _ in footprints])
    used = _used_columns(ws, last_row)
    last = max((c for c in range(1, len(used)) if used[c]), default=1)
    last = min(last, last_col or last)
    widths = _widths(ws, max(last, ws.max_column) + 40)
    _wrap_clipped_text(ws, widths, last_row, last)
    _fit_wrapped_rows(ws, widths, last_row)
    last = max([last] + [cols[-1] for _, cols in footprints])
    for c in range(len(used), last + 1):
        used.append(True)
    page = PAGE_WIDTH_PT * SAFETY
    total = sum(widths[:last])
    units = _units(used, last, not label_column)
    label = widths[0] if label_column else 0.0
    # a block sheet counts its pages between manual row breaks (a chart's page); a wide table reads across its
    # pages, so its whole height is what it has to fit
    heights = [sum(_segment_heights(ws, last_row))] if label_column else _segment_heights(ws, last_row)
    fit = int(100 * page / total)
    candidates = [min(fit, 100)] if fit >= MIN_SCALE else []  # one page across
    candidates += [s for s in range(100, MIN_SCALE - 1, -5) if s > fit]
    best: tuple[tuple[int, int, int], int, list[int]] | None = None
    for scale in candidates:  # the fewest pages, then the fewest across (read down), then the largest scale
        breaks = [] if scale <= fit else _pack(units, widths, page * 100 / scale - label)
        if breaks is None:
            continue
        across = len(breaks) + 1
        down = sum(math.ceil(h * scale / 100 / PAGE_HEIGHT_PT) for h in heights)
        key = (across * down, across, -scale)
        if best is None or key < best[0]:
            best = (key, scale, breaks)
    if best is None:  # a block wider than a page even at MIN_SCALE: shrink until the widest fits
        widest = max(sum(widths[a - 1:b]) for a, b in units)
        scale = int(100 * page / (widest + label))
        best = ((0, 0, 0), scale, _pack(units, widths, page * 100 / scale - label) or [])
    _, scale, breaks = best
    first_page_end = (breaks[0] - 1) if breaks else last
    if label_column and breaks:
        _title_beside_labels(ws, first_page_end, widths)
    _wrap_overflowing_text(ws, first_page_end, widths, last_row)
    ws.print_area = f"A1:{get_column_letter(last)}{last_row}"  # overflowing text never adds a page
    if breaks:  # later pages show other columns: rows 1-2 (merged over the first page's) print once
        ws._print_rows = None  # openpyxl's setter ignores None
    _wrap_at_page_edges(ws, [*breaks, last + 1], widths, last_row)
    _fit_wrapped_rows(ws, widths, last_row)  # again: the page edges may have wrapped more cells
    setup = ws.page_setup
    setup.orientation = "landscape"
    setup.scale = scale
    setup.fitToWidth = setup.fitToHeight = None
    setup.pageOrder = "overThenDown" if label_column else "downThenOver"  # a wide table's rows stay together
    ws.sheet_properties.pageSetUpPr.fitToPage = False
    ws.page_margins = PageMargins(left=MARGIN_IN, right=MARGIN_IN, top=0.5, bottom=0.5, header=0.3, footer=0.3)
    ws.col_breaks = ColBreak()
    for c in breaks:
        ws.col_breaks.append(Break(id=c - 1))  # zero-based id of the column a new page starts at
    if label_column and breaks:
        ws.print_title_cols = "A:A"
    ws.print_options.gridLines = False
    return scale
