"""A tiny expression type so one model definition serves Python and Excel.

Model functions are written with ordinary arithmetic (``+ - * /``) and the helpers below.
Called with numbers or numpy arrays they return numbers or arrays; called with :class:`Expr`
values (cell references or defined names) they return an :class:`Expr` whose ``text`` is an
Excel formula body. The workbook is therefore generated from the same code Python evaluates.
Only operators and functions common to Excel 2010+, LibreOffice 7.4 and Google Sheets are emitted.
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

# Excel operator precedence, loosest first; atoms bind tightest.
_CMP, _CONCAT, _ADD, _MUL, _POW, _ATOM = 0, 1, 2, 3, 4, 9


class Expr:
    """Formula text with the precedence of its outermost operator."""

    __slots__ = ("text", "prec")

    def __init__(self, text: str, prec: int = _ATOM) -> None:
        self.text = text
        self.prec = prec

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"

    @property
    def formula(self) -> str:
        return "=" + self.text

    # arithmetic -------------------------------------------------------------------------
    def __add__(self, other: Any) -> "Expr":
        return _binary(self, "+", other, _ADD)

    def __radd__(self, other: Any) -> "Expr":
        return _binary(other, "+", self, _ADD)

    def __sub__(self, other: Any) -> "Expr":
        return _binary(self, "-", other, _ADD)

    def __rsub__(self, other: Any) -> "Expr":
        return _binary(other, "-", self, _ADD)

    def __mul__(self, other: Any) -> "Expr":
        return _binary(self, "*", other, _MUL)

    def __rmul__(self, other: Any) -> "Expr":
        return _binary(other, "*", self, _MUL)

    def __truediv__(self, other: Any) -> "Expr":
        return _binary(self, "/", other, _MUL)

    def __rtruediv__(self, other: Any) -> "Expr":
        return _binary(other, "/", self, _MUL)

    def __pow__(self, other: Any) -> "Expr":
        return _binary(self, "^", other, _POW)

    def __rpow__(self, other: Any) -> "Expr":
        return _binary(other, "^", self, _POW)

    def __neg__(self) -> "Expr":
        return Expr("-" + _wrap(self, _ATOM), _ADD)

    # comparisons build formula text; equality stays identity so Expr can be hashed
    def __gt__(self, other: Any) -> "Expr":
        return _binary(self, ">", other, _CMP)

    def __lt__(self, other: Any) -> "Expr":
        return _binary(self, "<", other, _CMP)

    def __ge__(self, other: Any) -> "Expr":
        return _binary(self, ">=", other, _CMP)

    def __le__(self, other: Any) -> "Expr":
        return _binary(self, "<=", other, _CMP)

    __hash__ = object.__hash__


Value = Union[float, int, np.ndarray, Expr]


def number_text(x: float | int) -> str:
    """Render a Python number as an Excel literal that parses back to the same float."""
    if isinstance(x, (bool, np.bool_)):
        return "TRUE" if x else "FALSE"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"cannot write the non-finite number {x} into a formula")
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x).upper()


def lit(x: Any) -> Expr:
    """Any operand as an Expr (numbers and strings become literals)."""
    if isinstance(x, Expr):
        return x
    if isinstance(x, str):
        return Expr('"' + x.replace('"', '""') + '"')
    text = number_text(x)
    return Expr(text, _ADD if text.startswith("-") else _ATOM)


def _wrap(e: Expr, prec: int) -> str:
    return e.text if e.prec >= prec else f"({e.text})"


def _binary(a: Any, op: str, b: Any, prec: int) -> Expr:
    ea, eb = lit(a), lit(b)
    # left-associative: the right operand needs parentheses at equal precedence for - and /
    right_prec = prec + 1 if op in "-/^" or prec == _CMP else prec
    if op == "^":  # Excel reads -2^2 as 4 and a^b^c left to right: parenthesise both sides unless atomic
        return Expr(f"{_wrap(ea, _ATOM)}^{_wrap(eb, _ATOM)}", prec)
    return Expr(f"{_wrap(ea, prec)}{op}{_wrap(eb, right_prec)}", prec)


def is_symbolic(*xs: Any) -> bool:
    return any(isinstance(x, Expr) for x in xs)


def is_plain_zero(x: Any) -> bool:
    """A number (not a formula, not an array) equal to 0: a term that vanishes for every configuration, so array
    work on it can be skipped (a model without the DSA indexer, a step without MTP drafts)."""
    return not isinstance(x, Expr) and np.ndim(x) == 0 and x == 0


def where(cond: Any, if_true: Any, if_false: Any) -> Value:
    """``IF(cond, a, b)`` in Excel, ``np.where`` for arrays, a plain choice for scalars."""
    if is_symbolic(cond, if_true, if_false):
        return Expr(f"IF({lit(cond).text},{lit(if_true).text},{lit(if_false).text})")
    if np.ndim(cond) == 0:  # one branch for every element: no need to build the other's shape
        return if_true if bool(cond) else if_false
    return np.where(cond, if_true, if_false)


def maximum(a: Any, b: Any) -> Value:
    """The larger of two values: ``MAX(a,b)`` in Excel, ``np.maximum`` for arrays."""
    if is_symbolic(a, b):
        return Expr(f"MAX({lit(a).text},{lit(b).text})")
    if np.ndim(a) == 0 and np.ndim(b) == 0:
        return a if a >= b else b
    return np.maximum(a, b)


def minimum(a: Any, b: Any) -> Value:
    """The smaller of two values: ``MIN(a,b)`` in Excel, ``np.minimum`` for arrays."""
    if is_symbolic(a, b):
        return Expr(f"MIN({lit(a).text},{lit(b).text})")
    if np.ndim(a) == 0 and np.ndim(b) == 0:
        return a if a <= b else b
    return np.minimum(a, b)


def magnitude(x: Any) -> Value:
    """The absolute value: ``ABS(x)`` in Excel, ``np.abs`` otherwise."""
    if is_symbolic(x):
        return Expr(f"ABS({lit(x).text})")
    return np.abs(x) if np.ndim(x) else abs(x)


def floor(x: Any) -> Value:
    """Round down to a whole number: ``INT(x)`` in Excel (the same for negatives), ``np.floor`` otherwise."""
    if type(x) is float or type(x) is int:  # the planner's sizing loops: plain numbers first
        return math.floor(x)
    if is_symbolic(x):
        return Expr(f"INT({lit(x).text})")
    return np.floor(x) if np.ndim(x) else math.floor(x)


def gamma_quantile(p: Any, shape: Any, scale: Any) -> Value:
    """The ``p`` quantile of a gamma distribution (``shape``, ``scale``): ``GAMMAINV(p,shape,scale)`` in Excel,
    scipy's regularised incomplete gamma inverse otherwise (nan outside 0 < p < 1, as the spreadsheet errs)."""
    if is_symbolic(p, shape, scale):
        return Expr(f"GAMMAINV({lit(p).text},{lit(shape).text},{lit(scale).text})")
    from scipy.special import gammaincinv  # imported here so a CLI start stays quick
    return gammaincinv(shape, p) * scale


def erlang_b(servers: Any, offered: Any) -> Value:
    """Erlang B, the blocking probability of ``servers`` with ``offered`` Erlangs: Poisson's pmf at ``servers``
    over its cdf (``POISSON(c,a,FALSE)/POISSON(c,a,TRUE)`` in Excel); in Python the exact recursion up to 2,000
    servers, the same ratio in closed form beyond (a planet-sized load stays fast)."""
    if is_symbolic(servers, offered):
        c, a = lit(servers).text, lit(offered).text
        return Expr(f"POISSON({c},{a},FALSE)/POISSON({c},{a},TRUE)")
    servers = int(servers)  # whole slots (a count read back from a sheet may be a float)
    if servers <= ERLANG_RECURSION_SERVERS:
        b = 1.0
        for k in range(1, servers + 1):
            b = offered * b / (k + offered * b)
        return b
    from scipy.special import gammaincc, gammaln
    return math.exp(servers * math.log(offered) - offered - gammaln(servers + 1)) / gammaincc(servers + 1, offered)


ERLANG_RECURSION_SERVERS = 2000  # Erlang B's recursion up to here (exact, O(servers)); the closed form beyond


def both(a: Any, b: Any) -> Any:
    """Logical and: ``AND(a,b)`` in Excel."""
    if is_symbolic(a, b):
        return Expr(f"AND({lit(a).text},{lit(b).text})")
    return np.logical_and(a, b) if (np.ndim(a) or np.ndim(b)) else bool(a) and bool(b)


def either(a: Any, b: Any) -> Any:
    """Logical or: ``OR(a,b)`` in Excel."""
    if is_symbolic(a, b):
        return Expr(f"OR({lit(a).text},{lit(b).text})")
    return np.logical_or(a, b) if (np.ndim(a) or np.ndim(b)) else bool(a) or bool(b)


def divides(divisor: Any, n: Any) -> Any:
    """Whether ``divisor`` divides ``n`` into whole parts (formula: n - INT(n / divisor) * divisor = 0)."""
    return eq(n - floor(n / divisor) * divisor, 0)


def eq(a: Any, b: Any) -> Any:
    """Equality test that also works on formulas (``==`` on Expr stays identity)."""
    if is_symbolic(a, b):
        return _binary(a, "=", b, _CMP)
    return np.equal(a, b) if (np.ndim(a) or np.ndim(b)) else a == b


def concat(*parts: Any) -> Any:
    """String concatenation: ``a&b`` in Excel."""
    if is_symbolic(*parts):
        return Expr("&".join(_wrap(lit(p), _CONCAT + 1) for p in parts), _CONCAT)
    return "".join(_fmt_label_part(p) for p in parts)


def _fmt_label_part(p: Any) -> str:
    if isinstance(p, (float, np.floating)) and float(p).is_integer():
        return str(int(p))
    return str(p)
