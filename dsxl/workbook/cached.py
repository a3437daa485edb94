"""Cached values for every formula cell, so viewers that do not recalculate (previews, mail, pandas, openpyxl
``data_only``) still show numbers. The file keeps ``fullCalcOnLoad``: spreadsheet programs recalculate anyway.

A small evaluator of exactly the formula language the builder emits (the functions in the portability test,
arithmetic, comparison, ``&``, cell and range references, defined names) computes each cell from the built
workbook; :func:`inject` writes the values into the saved sheets' XML.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable
from xml.sax.saxutils import escape

from openpyxl.utils.cell import column_index_from_string, range_boundaries
from openpyxl.workbook import Workbook


class CellError(Exception):
    """A spreadsheet error value (#N/A, #DIV/0!, #VALUE!, #REF!, #NUM!)."""


_TOKEN = re.compile(r"""\s*(?:
    (?P<num>\d+\.?\d*(?:[Ee][+-]?\d+)?|\.\d+(?:[Ee][+-]?\d+)?)
  | (?P<str>"(?:[^"]|"")*")
  | (?P<ref>(?:'(?:[^']|'')+'|[A-Za-z_][\w.]*)!\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?)
  | (?P<local>\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?(?![\w(]))
  | (?P<func>[A-Z][A-Z0-9.]*)\(
  | (?P<name>[A-Za-z_][\w.]*)
  | (?P<op><=|>=|<>|[-+*/^&=<>(),])
)""", re.VERBOSE)

_PREC = {"=": 1, "<": 1, ">": 1, "<=": 1, ">=": 1, "<>": 1, "&": 2, "+": 3, "-": 3, "*": 4, "/": 4, "^": 5}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read formula at {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.t, self.i = tokens, 0

    def peek(self) -> tuple[str, str] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> tuple[str, str]:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def expr(self, min_prec: int = 0) -> Any:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in _PREC or _PREC[tok[1]] < min_prec:
                return left
            op = self.take()[1]
            right = self.expr(_PREC[op] + 1)
            left = ("bin", op, left, right)

    def unary(self) -> Any:
        tok = self.peek()
        if tok == ("op", "-"):
            self.take()
            return ("neg", self.unary_power())
        if tok == ("op", "+"):
            self.take()
            return self.unary_power()
        return self.atom()

    def unary_power(self) -> Any:
        operand = self.atom()
        if self.peek() == ("op", "^"):  # Excel: unary minus binds tighter than ^
            self.take()
            return ("bin", "^", operand, self.expr(_PREC["^"] + 1))
        return operand

    def atom(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text))
        if kind == "str":
            return ("lit", text[1:-1].replace('""', '"'))
        if kind in ("ref", "local"):
            return ("ref", text)
        if kind == "func":
            args = []
            if self.peek() != ("op", ")"):
                while True:
                    args.append(self.expr())
                    if self.peek() == ("op", ","):
                        self.take()
                        continue
                    break
            self.take()  # ")"
            return ("call", text, args)
        if kind == "name":
            if text.upper() in ("TRUE", "FALSE"):
                return ("lit", text.upper() == "TRUE")
            return ("name", text)
        if (kind, text) == ("op", "("):
            inner = self.expr()
            self.take()  # ")"
            return inner
        raise ValueError(f"unexpected {text!r}")


class Evaluator:
    """Values of a built workbook's cells, formulas computed on demand (memoised)."""

    def __init__(self, wb: Workbook) -> None:
        self.cells_of = {ws.title: ws._cells for ws in wb.worksheets}  # read without creating cells (openpyxl < 3.2)
        self.names = {name: dn.attr_text for name, dn in wb.defined_names.items()}
        self.memo: dict[tuple[str, int, int], Any] = {}
        self.parsed: dict[str, Any] = {}

    # ---------------------------------------------------------------- references
    def _sheet_ref(self, text: str, here: str) -> tuple[str, str]:
        if "!" in text:
            sheet, addr = text.rsplit("!", 1)
            return sheet.strip("'").replace("''", "'"), addr.replace("$", "")
        return here, text.replace("$", "")

    def _resolve(self, text: str, here: str) -> Any:
        sheet, addr = self._sheet_ref(text, here)
        if ":" in addr:
            c1, r1, c2, r2 = range_boundaries(addr)
            return [[self.cell(sheet, r, c) for c in range(c1, c2 + 1)] for r in range(r1, r2 + 1)]
        m = re.match(r"([A-Z]+)(\d+)$", addr)
        return self.cell(sheet, int(m.group(2)), column_index_from_string(m.group(1)))

    def cell(self, sheet: str, row: int, col: int) -> Any:
        key = (sheet, row, col)
        if key in self.memo:
            value = self.memo[key]
            if isinstance(value, _InProgress):
                raise CellError("#REF!")  # a cycle: not emitted by the builder
            return value
        found = self.cells_of[sheet].get((row, col))
        raw = None if found is None else found.value
        if not (isinstance(raw, str) and raw.startswith("=")):
            self.memo[key] = raw
            return raw
        self.memo[key] = _InProgress()
        try:
            value = self.formula(raw[1:], sheet)
        except CellError as err:
            value = err
        self.memo[key] = value
        return value

    def formula(self, text: str, here: str) -> Any:
        if text not in self.parsed:
            self.parsed[text] = _Parser(_tokens(text)).expr()
        value = self.eval(self.parsed[text], here)
        if isinstance(value, list):
            value = value[0][0]
        if isinstance(value, CellError):
            raise value
        return value

    # ---------------------------------------------------------------- evaluation
    def eval(self, node: Any, here: str) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "ref":
            return self._value(self._resolve(node[1], here))
        if kind == "name":
            if node[1] not in self.names:
                raise CellError("#NAME?")
            return self._value(self._resolve(self.names[node[1]], here))
        if kind == "neg":
            return -_num(self.eval(node[1], here))
        if kind == "bin":
            return _binary(node[1], self.eval(node[2], here), self.eval(node[3], here))
        return self.call(node[1], node[2], here)

    @staticmethod
    def _value(v: Any) -> Any:
        if isinstance(v, CellError):
            raise v
        return v

    def call(self, fn: str, args: list[Any], here: str) -> Any:
        ev: Callable[[Any], Any] = lambda a: self.eval(a, here)  # noqa: E731
        if fn == "NA":  # a chart's gap
            raise CellError("#N/A")
        if fn == "IF":
            cond = _truth(ev(args[0]))
            return ev(args[1]) if cond else (ev(args[2]) if len(args) > 2 else False)
        if fn == "IFERROR":
            try:
                value = ev(args[0])
                return value[0][0] if isinstance(value, list) else value
            except CellError:
                return ev(args[1])
        values = [ev(a) for a in args]
        if fn == "INDEX":
            rng, r, c = values[0], int(_num(values[1])), int(_num(values[2])) if len(values) > 2 else 1
            if r < 1 or c < 1 or r > len(rng) or c > len(rng[0]):
                raise CellError("#REF!")
            return self._value(rng[r - 1][c - 1])
        if fn == "MATCH":
            needle, flat = values[0], [v for row in values[1] for v in row]
            for i, v in enumerate(flat, start=1):
                if _equal(v, needle):
                    return float(i)
            raise CellError("#N/A")
        if fn == "MAX" or fn == "MIN":
            nums = [v for v in _flatten(values) if isinstance(v, (int, float)) and not isinstance(v, bool)]
            return (max if fn == "MAX" else min)(nums) if nums else 0.0
        if fn == "INT":
            return float(math.floor(_num(values[0])))
        if fn == "ABS":
            return abs(_num(values[0]))
        if fn == "AND":
            return all(_truth(v) for v in _flatten(values))
        if fn == "OR":
            return any(_truth(v) for v in _flatten(values))
        if fn == "NOT":
            return not _truth(values[0])
        if fn == "ISTEXT":
            return isinstance(values[0], str)
        if fn == "ISNUMBER":
            v = values[0]
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if fn == "TEXT":
            return _text(_num(values[0]), values[1])
        if fn == "COUNTA":
            return float(sum(1 for v in _flatten(values) if v not in (None, "")))
        if fn == "COUNTIF":
            return float(sum(1 for v in _flatten(values[:1]) if _equal(v, values[1])))
        if fn == "POISSON":  # POISSON(x, mean, cumulative): x truncated, as spreadsheets do
            from scipy.stats import poisson
            x, mean = math.floor(_num(values[0])), _num(values[1])
            if x < 0 or mean < 0:
                raise CellError("#NUM!")
            return float(poisson.cdf(x, mean) if _truth(values[2]) else poisson.pmf(x, mean))
        if fn == "GAMMAINV":  # GAMMAINV(probability, shape, scale)
            from scipy.stats import gamma
            prob, shape, scale = (_num(v) for v in values[:3])
            if not 0 <= prob < 1 or shape <= 0 or scale <= 0:
                raise CellError("#NUM!")
            return float(gamma.ppf(prob, shape, scale=scale))
        raise CellError("#NAME?")


class _InProgress:
    pass


def _flatten(values: list[Any]) -> list[Any]:
    out = []
    for v in values:
        if isinstance(v, list):
            out.extend(x for row in v for x in row)
        else:
            out.append(v)
    return out


def _num(v: Any) -> float:
    if isinstance(v, list):
        v = v[0][0]
    if v is None or v == "":
        return 0.0
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    raise CellError("#VALUE!")


def _truth(v: Any) -> bool:
    if isinstance(v, str):
        if v.upper() in ("TRUE", "FALSE"):
            return v.upper() == "TRUE"
        raise CellError("#VALUE!")
    return bool(_num(v))


def _text_of(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.15g}"
    return str(v)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()
    if a is None or b is None:
        return False
    return _num(a) == _num(b)


def _binary(op: str, a: Any, b: Any) -> Any:
    if op == "&":
        return _text_of(a) + _text_of(b)
    if op in ("=", "<>", "<", ">", "<=", ">="):
        if isinstance(a, str) or isinstance(b, str):
            x, y = _text_of(a).lower(), _text_of(b).lower()
        else:
            x, y = _num(a), _num(b)
        return {"=": x == y, "<>": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]
    x, y = _num(a), _num(b)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        if y == 0:
            raise CellError("#DIV/0!")
        return x / y
    try:
        return float(x ** y)
    except (OverflowError, ZeroDivisionError):
        raise CellError("#NUM!") from None


def _text(v: float, fmt: str) -> str:
    m = re.fullmatch(r"0(?:\.(0+))?", fmt)
    if not m:
        raise CellError("#VALUE!")
    return f"{v:.{len(m.group(1) or '')}f}"


def values(wb: Workbook) -> dict[str, dict[str, Any]]:
    """Sheet title -> cell coordinate -> computed value, for every formula cell."""
    ev = Evaluator(wb)
    out: dict[str, dict[str, Any]] = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    out.setdefault(ws.title, {})[c.coordinate] = ev.cell(ws.title, c.row, c.column)
    return out


_CELL = re.compile(r'<c r="([A-Z]+\d+)"([^>]*)><f>(.*?)</f><v\s*/>(</c>)', re.S)


def inject(sheet_xml: bytes, cell_values: dict[str, Any]) -> bytes:
    """Fill each formula cell's empty ``<v/>`` with its computed value (typed as Excel expects)."""
    def repl(m: re.Match) -> str:
        coord, attrs, formula, end = m.groups()
        if coord not in cell_values:
            return m.group(0)
        v = cell_values[coord]
        if isinstance(v, CellError):
            typed, text = ' t="e"', str(v.args[0])
        elif isinstance(v, bool):
            typed, text = ' t="b"', "1" if v else "0"
        elif isinstance(v, (int, float)):
            if not math.isfinite(v):
                typed, text = ' t="e"', "#NUM!"
            else:
                typed, text = "", repr(float(v))
        elif v is None:
            typed, text = ' t="str"', ""
        else:
            typed, text = ' t="str"', escape(str(v))
        attrs = re.sub(r'\s+t="[^"]*"', "", attrs)
        return f'<c r="{coord}"{attrs}{typed}><f>{formula}</f><v>{text}</v>{end}'
    return _CELL.sub(repl, sheet_xml.decode("utf-8")).encode("utf-8")
