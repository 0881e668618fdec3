"""Audit inputs: exhaustive 16-bit logits, reproducible sweeps, edges found from the format."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from logitlab import exact
from logitlab.analysis.points import edges, logit_points, neighbours
from logitlab.core.formats import get_format
from logitlab.core.ulp import round_to_format


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_sixteen_bit_is_exhaustive(dtype: str) -> None:
    fmt = get_format(dtype)
    z = logit_points(fmt, 100, 0)
    finite = z[np.isfinite(z)]
    assert np.isin(fmt.values(), finite).all()
    assert np.isinf(z).sum() == 2
    assert np.signbit(z[z == 0]).sum() == 1  # -0 and +0 both present


def test_sweeps_are_reproducible_and_cover_edges() -> None:
    fmt = get_format("float32")
    a = logit_points(fmt, 3000, 7)
    b = logit_points(fmt, 3000, 7)
    c = logit_points(fmt, 3000, 8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    e = edges(fmt)
    named = (e.sigmoid_one, e.sigmoid_zero, e.exp_overflow, e.one_plus_exp, fmt.max, -fmt.max)
    for v in (*named, 2.0**-149):
        assert v in a
    assert np.array_equal(fmt.round(a), a)  # every point is a float32 value


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_edges_match_the_exact_sigmoid(dtype: str) -> None:
    fmt = get_format(dtype)
    e = edges(fmt)
    below = neighbours(e.sigmoid_one, fmt, 1)[0]
    assert round_to_format(exact.sigmoid(e.sigmoid_one), fmt) == 1.0
    assert round_to_format(exact.sigmoid(float(below)), fmt) < 1.0
    above = neighbours(e.sigmoid_zero, fmt, 1)[-1]
    assert round_to_format(exact.sigmoid(e.sigmoid_zero), fmt) == 0.0
    assert round_to_format(exact.sigmoid(float(above)), fmt) > 0.0
    # exp(z) rounds to inf once it reaches max + ulp(max) / 2: exp_overflow is the first
    # format value at or above log(max + 2**(emax - precision)), and the one before is below.
    with mpmath.workprec(200):
        top = mpmath.mpf(fmt.max) + mpmath.mpf(2) ** (fmt.emax - fmt.precision)
        before_over = float(neighbours(e.exp_overflow, fmt, 1)[0])
        assert mpmath.mpf(e.exp_overflow) >= mpmath.log(top) > mpmath.mpf(before_over)
    # 1 + exp(-z) rounds to 1 exactly from this logit on, and not before it
    assert fmt.round(1 + math.exp(-e.one_plus_exp)) == 1.0 or dtype == "float64"
    with mpmath.workprec(200):
        bound = fmt.precision * mpmath.log(2)
        before = float(neighbours(e.one_plus_exp, fmt, 1)[0])
        assert mpmath.mpf(e.one_plus_exp) >= bound > mpmath.mpf(before)
