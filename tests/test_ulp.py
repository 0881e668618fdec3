"""ULP distance and error: conventions and properties in every format."""

from __future__ import annotations

import math

import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logitlab.core.formats import DTYPE_NAMES, get_format
from logitlab.core.ulp import (
    relative_error,
    round_to_format,
    ulp_distance,
    ulp_error,
    ulp_error_array,
    ulp_of,
)

UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def neighbours(name: str, bits: int) -> tuple[float, float]:
    """The value with this bit pattern and the next one up, as float64."""
    fmt = get_format(name)
    u = UINT[fmt.numpy_dtype.itemsize]
    pair = np.array([bits, bits + 1], dtype=u).view(fmt.numpy_dtype).astype(np.float64)
    return float(pair[0]), float(pair[1])


def boundary_patterns(name: str) -> list[int]:
    fmt = get_format(name)
    mant = fmt.precision - 1
    return [
        0,  # 0 and the smallest subnormal
        (1 << mant) - 1,  # largest subnormal and smallest normal
        (1 << mant),  # first normal step
        ((fmt.emin + (1 << (fmt.bits - mant - 2)) - 1 + 1) << mant) - 1,  # just below 2.0 ** ...
        ((1 << (fmt.bits - mant - 2)) - 1) << mant,  # 1.0 and the value above
        (((1 << (fmt.bits - mant - 2)) - 1) << mant) - 1,  # the value below 1.0 and 1.0
    ]


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_neighbours_are_one_ulp_apart(name: str) -> None:
    for bits in boundary_patterns(name):
        a, b = neighbours(name, bits)
        assert ulp_distance(a, b, name) == 1, (a, b)
        assert ulp_error(a, b, name) == 1.0
        assert ulp_error(b, a, name) == 1.0
        assert ulp_error(-a, -b, name) == 1.0
        assert ulp_error_array([a], [b], name)[0] == 1.0


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_around_zero(name: str) -> None:
    s = get_format(name).smallest_subnormal
    assert ulp_distance(0.0, s, name) == 1
    assert ulp_distance(-s, s, name) == 2
    assert ulp_distance(-0.0, 0.0, name) == 0
    assert ulp_error(0.0, mpmath.mpf(s) / 2, name) == 0.5


def test_one_and_its_lower_neighbour_across_the_binade() -> None:
    below = float(np.nextafter(np.float32(1), np.float32(0)))
    assert ulp_error(below, 1, "float32") == 1.0
    # The spacing halves below 1: halfway between them is half an ULP from each.
    mid = (below + 1.0) / 2
    assert ulp_error(1.0, mid, "float32") == 0.5
    assert ulp_error(below, mid, "float32") == 0.5


def test_bfloat16_against_ml_dtypes() -> None:
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 0x7F7F, size=500).astype(np.uint16)
    a = patterns.view(ml_dtypes.bfloat16)
    b = (patterns + 1).view(ml_dtypes.bfloat16)
    # ml_dtypes' own nextafter agrees with the bit-pattern neighbour...
    assert np.array_equal(np.nextafter(a, np.array(np.inf, dtype=ml_dtypes.bfloat16)), b)
    # ... and we count one step between them.
    errs = ulp_error_array(a.astype(np.float64), b.astype(np.float64), "bfloat16")
    assert np.all(errs == 1.0)


def test_conventions() -> None:
    assert math.isnan(ulp_error(math.nan, 1.0, "float32"))
    assert math.isnan(relative_error(math.nan, 1.0))
    assert ulp_error(math.inf, 1.0, "float32") == math.inf
    assert ulp_error(math.inf, mpmath.inf, "float32") == 0.0
    assert ulp_error(-math.inf, mpmath.inf, "float32") == math.inf
    assert relative_error(0.0, 0) == 0.0
    assert relative_error(1e-30, 0) == math.inf
    # A computed 0 for 3e-9 loses everything: relative error 1, hundreds of millions of ULPs.
    assert relative_error(0.0, mpmath.mpf("3.0000936e-9")) == 1.0
    assert ulp_error(0.0, mpmath.mpf("3.0000936e-9"), "float32") > 8e8


def test_subnormal_spacing() -> None:
    s = get_format("float32").smallest_subnormal
    assert ulp_of(3 * s, "float32") == s
    assert ulp_of(1.0, "float32") == 2.0**-23
    assert ulp_error(5 * s, 2 * s, "float32") == 3.0


def test_round_to_format_overflow_and_underflow() -> None:
    fmt = get_format("float16")
    assert round_to_format(65504, fmt) == 65504.0
    assert round_to_format(65520, fmt) == math.inf  # max + half ulp rounds to inf
    assert round_to_format(65519.99, fmt) == 65504.0
    assert round_to_format(mpmath.mpf(2) ** -25, fmt) == 0.0  # half the smallest: ties to even
    assert round_to_format(mpmath.mpf(2) ** -25 * 1.0001, fmt) == 2.0**-24
    assert round_to_format(-(mpmath.mpf(10) ** -400000), fmt) == 0.0
    assert round_to_format(mpmath.mpf(10) ** 400000, fmt) == math.inf


@pytest.mark.parametrize("name", DTYPE_NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data(), e=st.floats(-1e30, 1e30))
def test_array_matches_scalar(name: str, data: st.DataObject, e: float) -> None:
    # The computed value is drawn from the format's own finite range (it used to be drawn
    # from +-1e30 and most float16 and bfloat16-rounded examples were inf and skipped).
    fmt = get_format(name)
    c = data.draw(st.floats(-min(fmt.max, 1e30), min(fmt.max, 1e30)), label="c")
    cr = round_to_format(c, fmt)
    er = round_to_format(e, "float64")
    assert math.isfinite(cr) and math.isfinite(er)
    scalar = ulp_error(cr, er, fmt)
    array = ulp_error_array([cr], [er], fmt)[0]
    assert array == pytest.approx(scalar, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize(
    ("computed", "exact", "expected"),
    [
        (math.inf, 1.0, math.inf),
        (-math.inf, 1.0, math.inf),
        (math.inf, math.inf, 0.0),
        (-math.inf, -math.inf, 0.0),
        (-math.inf, math.inf, math.inf),
        (math.nan, 1.0, math.nan),
    ],
)
def test_array_matches_scalar_for_non_finite(
    name: str, computed: float, exact: float, expected: float
) -> None:
    # The examples the hypothesis test above used to drop: the documented conventions.
    scalar = ulp_error(computed, mpmath.mpf(exact), name)
    array = ulp_error_array([computed], [exact], name)[0]
    if math.isnan(expected):
        assert math.isnan(scalar) and math.isnan(array)
    else:
        assert scalar == array == expected


def test_array_uses_the_low_part_for_float64() -> None:
    one_below = float(np.nextafter(1.0, 0.0))
    # exact = 1 - 2**-54 - 2**-80 : just below the midpoint between one_below and 1
    exact_hi, exact_lo = 1.0, -(2.0**-54) - 2.0**-80
    with mpmath.workprec(200):
        exact = mpmath.mpf(1) - mpmath.mpf(2) ** -54 - mpmath.mpf(2) ** -80
    expected = ulp_error(one_below, exact, "float64")
    assert expected == pytest.approx(0.5 - 2.0**-27, abs=1e-15)  # spacing below 1 is 2**-53
    got = ulp_error_array([one_below], [exact_hi], "float64", exact_lo=[exact_lo])[0]
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", ["float16", "float32"])
def test_array_ordinals_of_values_read_from_the_bits(name: str) -> None:
    """ulp_error_array reads a float16/float32 computed value's ordinal from its bits:
    held to the mpmath ordinal over bit patterns of every kind (both signs, zeros,
    subnormals, the normal boundary, the largest value), against exact values between
    them and at a distance."""
    fmt = get_format(name)
    u = UINT[fmt.numpy_dtype.itemsize]
    top = 0x7C00 if name == "float16" else 0x7F800000  # +inf's bits: finite ones below
    rng = np.random.default_rng(5)
    mags = np.concatenate(
        [np.arange(0, 40), np.arange(top - 40, top), rng.integers(0, top, 3000)]
    ).astype(np.int64)
    normal = 1 << (fmt.precision - 1)
    mags = np.concatenate([mags, np.arange(normal - 20, normal + 20)])
    sign = rng.integers(0, 2, mags.size).astype(np.int64) << (fmt.bits - 1)
    c = (mags | sign).astype(u).view(fmt.numpy_dtype).astype(np.float64)
    exact = c * (1 + rng.uniform(-3, 3, c.size) * fmt.eps) + rng.choice([0.0, 1e-3, -7.5], c.size)
    got = ulp_error_array(c, exact, fmt)
    want = [ulp_error(a, mpmath.mpf(b), fmt) for a, b in zip(c.tolist(), exact.tolist())]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
