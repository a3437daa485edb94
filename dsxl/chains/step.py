"""A calculation chain is an ordered list of :class:`Step` s. Each step names one quantity, the model function that
computes it, and where each of the function's arguments comes from (another quantity's name or a constant; by
default the argument's own name). :func:`run` evaluates a chain in Python (numbers or broadcasting numpy arrays);
the workbook builder walks the same steps and writes each one as a labelled formula cell. That is how Excel and
Python share one definition of the math.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class Step:
    name: str
    fn: Callable[..., Any]
    label: str
    unit: str = ""
    bind: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def _arguments(self) -> tuple[tuple[str, Any], ...]:
        params = inspect.signature(self.fn).parameters
        return tuple((p, self.bind.get(p, p)) for p in params)

    def arguments(self) -> tuple[tuple[str, Any], ...]:
        """(parameter, source) pairs: source is a quantity name (str) or a constant."""
        return self._arguments

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        args = []
        for param, src in self._arguments:
            if isinstance(src, str):
                if src not in env:
                    raise KeyError(f"step {self.name!r} needs {src!r} (for {self.fn.__name__}.{param})")
                args.append(env[src])
            else:
                args.append(src)
        return self.fn(*args)


def run(steps: list[Step], env: Mapping[str, Any], fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``steps`` in order on top of ``env``; returns env plus every computed quantity.

    ``fixed`` pins named quantities to given values instead of computing them (how an ablation switches a
    term off). Arrays are evaluated with their longest axis innermost (see :func:`_longest_last`); the results
    come back in the caller's axis order."""
    fixed = fixed or {}
    order = _longest_last([*env.values(), *fixed.values()])
    if order is None:
        out = dict(env)
        for step in steps:
            out[step.name] = fixed[step.name] if step.name in fixed else step.evaluate(out)
        return out
    to_inner, back = order
    work = {k: to_inner(v) for k, v in env.items()}
    pinned = {k: to_inner(v) for k, v in fixed.items()}
    out = dict(env)
    for step in steps:
        work[step.name] = pinned[step.name] if step.name in pinned else step.evaluate(work)
        out[step.name] = back(work[step.name])
    return out


def _longest_last(values: list[Any]) -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:
    """For arrays that broadcast over several axes, the transpositions that put the longest axis last and back.

    A NumPy operation between arrays that broadcast differently runs its inner loop along the last axis only; when
    that axis is short (two overlap settings, say, behind 256 batch sizes) the loop overhead dominates. Moving the
    longest axis last makes the same sweep about a quarter faster. None when there is nothing to reorder."""
    shapes = [np.shape(v) for v in values if isinstance(v, np.ndarray) and v.ndim > 0]
    if not shapes:
        return None
    try:
        full = np.broadcast_shapes(*shapes)
    except ValueError:
        return None
    nd = len(full)
    perm = sorted(range(nd), key=lambda axis: full[axis])  # stable: equal lengths keep their order
    if nd < 2 or full[perm[-1]] == full[-1]:
        return None
    inverse = list(np.argsort(perm))

    def to_inner(v: Any) -> Any:
        if not isinstance(v, np.ndarray) or v.ndim == 0:
            return v
        # a contiguous copy (inputs are small): NumPy lays results out like their operands, so a transposed view
        # would keep the short axis innermost in memory
        return np.ascontiguousarray(v.reshape((1,) * (nd - v.ndim) + v.shape).transpose(perm))

    def back(v: Any) -> Any:
        return v.transpose(inverse) if isinstance(v, np.ndarray) and v.ndim == nd else v

    return to_inner, back


def pin(steps: list[Step], values: Mapping[str, Any]) -> list[Step]:
    """``steps`` with the named quantities pinned to constants: the same chain as ``run(..., fixed=values)``, as a
    list the workbook can write."""
    return [Step(s.name, _constant, s.label, s.unit, {"value": values[s.name]}) if s.name in values else s
            for s in steps]


def _constant(value: Any) -> Any:
    return value


def split_by_dependency(steps: list[Step], varying: set[str]) -> tuple[list[Step], list[Step]]:
    """(steps that depend on none of ``varying``, the rest), each in order: the first list can be evaluated once
    and shared by every variant (how the workbook keeps a grid of candidates small)."""
    tainted = set(varying)
    shared, per_variant = [], []
    for step in steps:
        if any(isinstance(src, str) and src in tainted for _, src in step.arguments()):
            tainted.add(step.name)
            per_variant.append(step)
        else:
            shared.append(step)
    return shared, per_variant


S = Step
MS = "ms"
GF = "GFLOPs"
