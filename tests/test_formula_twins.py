"""One body per formula (issue 36, item 2): where a function skips work for the common case (no SBO, no TBO, no
calibration scale), the shortcut equals the general path it stands for, element by element."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsxl.physics import serving

ms = st.floats(0.001, 50, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(attn=ms, moe=ms, dispatch=ms, combine=ms, overlap=ms, share=st.floats(0.6, 1.0))
def test_the_moe_layer_shortcuts_equal_the_general_path(attn, moe, dispatch, combine, overlap, share):
    args = dict(attn_ms=attn, moe_ms=moe, dispatch_ms=dispatch, combine_ms=combine, overlap_ms=overlap,
                overlap_compute_share=share)
    plain = serving.moe_layer_ms(1, False, False, **args)  # the shortcut: no SBO anywhere, no TBO anywhere
    mixed = serving.moe_layer_ms(np.array([1, 2]), np.array([False, True]), np.array([False, True]), **args)
    assert plain == pytest.approx(float(mixed[0]), rel=1e-12)  # the general path's element without either
    tbo_only = serving.moe_layer_ms(2, True, False, **args)  # the shortcut: TBO, no SBO anywhere
    general = serving.moe_layer_ms(np.array([2, 1]), np.array([True, False]), np.array([False, True]), **args)
    assert tbo_only == pytest.approx(float(general[0]), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(moe=ms, dense=ms, lm=ms, mtp=ms, overhead=ms)
def test_the_uncalibrated_step_equals_the_scaled_step_at_scale_one(moe, dense, lm, mtp, overhead):
    plain = serving.step_ms(61, 3, dense, moe, lm, mtp, overhead, 1)  # the shortcut: no calibration profile
    general = serving.step_ms(61, 3, dense, moe, lm, mtp, overhead, np.array([1.0, 0.8]))
    assert plain == pytest.approx(float(general[0]), rel=1e-12)


@pytest.mark.parametrize("offered", [1500.0, 1990.0, 2100.0])
def test_erlang_b_closed_form_continues_the_recursion(offered):
    """Past 2,000 servers Erlang B switches from its recursion to the closed form: the closed form at 2,001 is one
    more step of the recursion from 2,000 (B(c) = a B(c-1) / (c + a B(c-1)))."""
    from dsxl.core.expr import ERLANG_RECURSION_SERVERS, erlang_b
    c = ERLANG_RECURSION_SERVERS
    below = erlang_b(c, offered)
    assert erlang_b(c + 1, offered) == pytest.approx(offered * below / (c + 1 + offered * below), rel=1e-9)


def test_the_queue_formulas_are_the_python_ones():
    """wait_ms has one body: the workbook's GAMMAINV and POISSON come from the same lines as scipy's numbers."""
    from dsxl.core.expr import Expr
    from dsxl.physics.queueing import wait_ms
    w = wait_ms(Expr("c"), Expr("r"), Expr("s"), Expr("cv"))
    assert "POISSON(c," in w["probability"].text and "GAMMAINV(" in w["p99"].text
