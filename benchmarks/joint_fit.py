"""The joint fit's speed: one finite-difference Jacobian over the corpus and C1-C10 with the part cache (a step
predicts again only the parts its parameter applies to) and without it, then the whole fit and its
leave-one-group-out refits.

Run: python benchmarks/joint_fit.py [--no-fit]   (prints figures; never a timed test)
"""

from __future__ import annotations

import sys
import time

import numpy as np
from rates import best_seconds

from dsxl.refined import calibration
from dsxl.refined.fit_parameters import parameters, shipped_values


def jacobian(problem: calibration._Problem, cached: bool) -> np.ndarray:
    """The data residuals' forward differences at the shipped values, one parameter at a time."""
    x = problem.x0()
    cols = []
    for k in range(x.size):
        if not cached:
            problem.rows.memo = [{} for _ in problem.rows.parts]
            problem.runs.memo = [{} for _ in problem.runs.parts]
        base = problem.data_residuals(problem.unpack(x))
        xk = x.copy()
        xk[k] += 1e-3 if x[k] < 1 - 1e-3 else -1e-3
        cols.append((problem.data_residuals(problem.unpack(xk)) - base) / 1e-3)
    return np.stack(cols, axis=1)


def main() -> None:
    ev, params = calibration.shipped_evidence(), parameters()
    problem = calibration._Problem(ev, params, shipped_values(params), params, [])
    parts = len(problem.rows.parts) + len(problem.runs.parts)
    cached, a = best_seconds(lambda: jacobian(problem, True), repeats=2)
    fresh, b = best_seconds(lambda: jacobian(problem, False), repeats=1)
    assert np.allclose(a, b)  # the cache changes the time, not the numbers
    print(f"evidence             {len(ev.runs)} runs and {len(ev.rows)} calibration rows in {parts} parts, "
          f"{len(params)} parameters")
    print(f"Jacobian, cached     {cached:6.2f} s")
    print(f"Jacobian, uncached   {fresh:6.2f} s  ({fresh / cached:.1f}x)")
    if "--no-fit" in sys.argv:
        return
    start = time.perf_counter()
    fit = calibration.fit_evidence(ev, params)
    mid = time.perf_counter()
    calibration.leave_one_group_out(ev, fit, params)
    print(f"joint fit            {mid - start:6.1f} s  ({len(fit.released)} constants fitted)")
    print(f"leave-one-group-out  {time.perf_counter() - mid:6.1f} s  ({len(ev.groups())} groups)")


if __name__ == "__main__":
    main()
