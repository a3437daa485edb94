"""Visual conventions of the generated workbook (one place, so every sheet looks the same)."""

from functools import partial
from typing import Any

from openpyxl.styles import Alignment, Border, Font as _Font, PatternFill, Protection, Side

# Every font is named: Calibri, which Excel ships; LibreOffice lays it out with its metric-compatible twin Carlito
# (fonts-crosextra-carlito, installed by .ci/run). An unnamed font falls back to a serif face in LibreOffice.
FONT_NAME = "Calibri"
Font = partial(_Font, name=FONT_NAME, size=11)

INPUT_FONT = Font(color="0000FF")
INPUT_FILL = PatternFill("solid", fgColor="FFF9C4")  # pale yellow
TITLE_FONT = Font(bold=True, size=16, color="1F3864")
H2_FONT = Font(bold=True, size=12, color="1F3864")
HEADER_FONT = Font(bold=True, color="FFFFFF")
UPRIGHT_FONT = Font(bold=True, color="FFFFFF", size=9)  # an upright header in 9 pt: a shorter row
HEADER_FILL = PatternFill("solid", fgColor="1F3864")
LABEL_FONT = Font(bold=True)
CALC_FILL = PatternFill("solid", fgColor="F2F2F2")  # the calculation chain: grey, audit only
TABLE_FILL = PatternFill("solid", fgColor="FFFFFF")
NOTE_FONT = Font(italic=True, color="595959")
PASS_FONT = Font(bold=True, color="006100")
PASS_FILL = PatternFill("solid", fgColor="C6EFCE")
FAIL_FILL = PatternFill("solid", fgColor="FFC7CE")
LINK_FONT = Font(color="0563C1", underline="single")
THIN = Side(style="thin", color="BFBFBF")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
UNLOCKED = Protection(locked=False)
WRAP = Alignment(wrap_text=True, vertical="top")
CENTER = Alignment(horizontal="center")
UPRIGHT = Alignment(horizontal="center", vertical="bottom", text_rotation=90)  # a header read bottom to top
HEADER_WRAP = Alignment(horizontal="center", vertical="center", wrap_text=True)  # a long field name on two lines
TOP = Alignment(vertical="top")


def number_format(decimals: int) -> str:
    return "0" if decimals == 0 else "0." + "0" * decimals
SERIES_COLOURS = ("1F77B4", "FF7F0E", "2CA02C", "9467BD", "8C564B", "E377C2", "17BECF")  # distinct chart series
WARN_FONT = Font(bold=True, color="9C0006")
BOOLEAN = '"TRUE";"TRUE";"FALSE"'  # a truth value shows as a word even where an engine stores 1/0


def axis_format(axis, code: str) -> None:
    """A chart axis's number format, not linked to its source cells (which carry the tables' decimals)."""
    from openpyxl.chart.data_source import NumFmt
    axis.numFmt = NumFmt(formatCode=code, sourceLinked=False)


def points(series: Any, symbol: str, size: int, fill: str, edge: str) -> Any:
    """A scatter series drawn as markers only (no line): ``symbol`` of ``size`` points, filled ``fill``, edged
    ``edge`` (RGB hex)."""
    series.marker.symbol, series.marker.size = symbol, size
    series.marker.graphicalProperties.solidFill = fill
    series.marker.graphicalProperties.line.solidFill = edge
    series.graphicalProperties.line.noFill = True
    return series
