"""The exact reference against values worked out independently."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logitlab import exact
from logitlab.core.formats import DTYPE_NAMES, get_format
from logitlab.core.ulp import round_to_format

F32 = np.float32


def mp(text: str) -> mpmath.mpf:
    with mpmath.workprec(300):
        return mpmath.mpf(text)


def direct_bce(z: float, y: float, w: float = 1.0, pw: float = 1.0) -> mpmath.mpf:
    """The textbook formula on probabilities, at 600 bits: a different route to the value."""
    with mpmath.workprec(600):
        p = 1 / (1 + mpmath.exp(-mpmath.mpf(z)))
        return -w * (mpmath.mpf(pw) * y * mpmath.log(p) + (1 - mpmath.mpf(y)) * mpmath.log(1 - p))


def test_post_first_example_float32_inputs() -> None:
    # The post's example as float32 tensors: 0.3 and 0.7 are float32 values, not decimals.
    r = exact.bce_loss([-2.0, 2.0], [float(F32(0.3)), float(F32(0.7))])
    assert mpmath.almosteq(r.values[0], mp("0.7269280348848304066"), rel_eps=1e-18)


def test_post_large_logits_float32_inputs() -> None:
    r = exact.bce_loss([20.0, 20.0], [float(F32(0.3)), float(F32(0.7))])
    assert mpmath.almosteq(r.values[0], mp("10.0000000020611536"), rel_eps=1e-17)


def test_decimal_targets_differ_from_float32_targets() -> None:
    # With the decimal 0.3 (as binary64) the loss is 0.72692801104..., not ...03488...:
    # the reference uses the rounded input it is given.
    r = exact.bce_loss([-2.0, 2.0], [0.3, 0.7])
    assert str(mpmath.nstr(r.values[0], 12)) == "0.726928011043"


@pytest.mark.parametrize(
    ("z", "y", "w", "pw"),
    [
        (-2.0, 0.3, 1.0, 1.0),
        (20.0, 0.7, 1.0, 1.0),
        (-30.0, 1e-10, 1.0, 1.0),
        (0.5, 0.0, 2.0, 3.0),
        (-700.0, 1.0, 1.0, 0.5),
        (35.0, 0.999, 0.25, 1e3),
        (1e-8, 0.5, 1.0, 1.0),
    ],
)
def test_bce_matches_probability_formula(z: float, y: float, w: float, pw: float) -> None:
    assert mpmath.almosteq(exact.bce(z, y, w, pw), direct_bce(z, y, w, pw), rel_eps=1e-40)


@pytest.mark.parametrize("z", [-745.0, -90.0, -30.0, -2.0, -1e-300, 0.0, 1e-300, 0.5, 16.64, 90.0])
def test_primitives_match_definitions(z: float) -> None:
    with mpmath.workprec(2000):  # exp(-745) needs no care at this precision
        x = mpmath.mpf(z)
        sig = 1 / (1 + mpmath.exp(-x))
        soft = mpmath.log(1 + mpmath.exp(x))
        assert mpmath.almosteq(exact.sigmoid(z), sig, rel_eps=1e-45)
        assert mpmath.almosteq(exact.softplus(z), soft, rel_eps=1e-45)
        assert mpmath.almosteq(exact.log_sigmoid(z), mpmath.log(sig), rel_eps=1e-45)


def numeric_derivative(f, z: float) -> mpmath.mpf:  # type: ignore[no-untyped-def]
    with mpmath.workprec(400):
        return mpmath.diff(lambda t: f(t), mpmath.mpf(z))


@pytest.mark.parametrize("z", [-50.0, -3.0, -0.25, 0.0, 0.7, 4.0, 30.0])
@pytest.mark.parametrize("y", [0.0, 1e-3, 0.3, 1.0])
def test_bce_gradient_matches_numerical_derivative(z: float, y: float) -> None:
    w, pw = 1.5, 2.0

    def f(t: mpmath.mpf) -> mpmath.mpf:
        p = 1 / (1 + mpmath.exp(-t))
        return -w * (mpmath.mpf(pw) * y * mpmath.log(p) + (1 - mpmath.mpf(y)) * mpmath.log(1 - p))

    assert mpmath.almosteq(exact.bce_grad(z, y, w, pw), numeric_derivative(f, z), rel_eps=1e-30)


@pytest.mark.parametrize("z", [-40.0, -1.0, 0.0, 2.5, 40.0])
def test_primitive_gradients_match_numerical_derivative(z: float) -> None:
    sig = numeric_derivative(lambda t: 1 / (1 + mpmath.exp(-t)), z)
    soft = numeric_derivative(lambda t: mpmath.log(1 + mpmath.exp(t)), z)
    logsig = numeric_derivative(lambda t: -mpmath.log(1 + mpmath.exp(-t)), z)
    assert mpmath.almosteq(exact.sigmoid_grad(z), sig, rel_eps=1e-30)
    assert mpmath.almosteq(exact.softplus_grad(z), soft, rel_eps=1e-30)
    assert mpmath.almosteq(exact.log_sigmoid_grad(z), logsig, rel_eps=1e-30)


def test_gradient_exact_zero_only_where_it_is() -> None:
    # sigma(0) = 1/2: with y = 1/2 and pos_weight 1 the gradient is exactly zero.
    assert exact.bce_grad(0.0, 0.5) == 0
    # Near z = logit(y) it cancels deeply but is not zero: y = sigma(2) rounded to binary64.
    y = float(1 / (1 + mpmath.exp(-2)))
    g = exact.bce_grad(2.0, y)
    expected = (1 - mpmath.mpf(y)) * exact.sigmoid(2.0) - mpmath.mpf(y) * exact.sigmoid(-2.0)
    with mpmath.workprec(1000):
        s = 1 / (1 + mpmath.exp(-mpmath.mpf(2)))
        expected = (1 - mpmath.mpf(y)) * s - mpmath.mpf(y) * (1 - s)
    assert g != 0
    assert mpmath.almosteq(g, expected, rel_eps=1e-35)


def test_infinite_logits_give_limits() -> None:
    assert exact.bce(math.inf, 1.0) == 0
    assert exact.bce(math.inf, 0.3) == mpmath.inf
    assert exact.bce(-math.inf, 0.0) == 0
    assert exact.bce_grad(math.inf, 0.3) == 1 - exact.sigmoid(0.0) * 2 * mpmath.mpf(0.3)  # 1 - y
    assert exact.bce_grad(-math.inf, 0.3) == -mpmath.mpf(0.3)
    assert exact.sigmoid(-math.inf) == 0 and exact.sigmoid(math.inf) == 1


def test_reductions_and_weights() -> None:
    z, y = [1.0, -2.0, 3.0], [0.0, 0.5, 1.0]
    w, pw = [2.0, 1.0, 0.5], [3.0, 3.0, 3.0]
    none = exact.bce_loss(z, y, w, pw, reduction="none")
    total = exact.bce_loss(z, y, w, pw, reduction="sum")
    mean = exact.bce_loss(z, y, w, pw, reduction="mean")
    loop = [exact.bce(a, b, c, d) for a, b, c, d in zip(z, y, w, pw)]
    assert list(none.values) == loop
    assert mpmath.almosteq(total.values[0], sum(loop), rel_eps=1e-40)
    assert mpmath.almosteq(mean.values[0], sum(loop) / 3, rel_eps=1e-40)
    assert mpmath.almosteq(mean.grads[1], exact.bce_grad(-2.0, 0.5, 1.0, 3.0) / 3, rel_eps=1e-40)
    assert none.shape == (3,) and mean.shape == ()


@pytest.mark.parametrize("name", DTYPE_NAMES)
@settings(max_examples=300, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_two_roundings_agree(name: str, x: float) -> None:
    # Integer rounding of the exact value (round_to_format) and the vectorised float64
    # rounding the inputs go through (FloatFormat.round) are written independently.
    fmt = get_format(name)
    assert round_to_format(mpmath.mpf(x), fmt) == float(fmt.round([x])[0])


@pytest.mark.parametrize("name", ["float16", "float32"])
@settings(max_examples=200, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_round_to_format_matches_numpy(name: str, x: float) -> None:
    # NumPy converts binary64 to float16 and float32 with one correct rounding.
    fmt = get_format(name)
    with np.errstate(over="ignore"):
        expected = float(np.array(x).astype(fmt.numpy_dtype).astype(np.float64))
    assert round_to_format(mpmath.mpf(x), fmt) == expected


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (1 + 2.0**-11 + 2.0**-40, 1 + 2.0**-10),  # just above a midpoint; float32 holds it
        (-(1 + 2.0**-11 + 2.0**-40), -(1 + 2.0**-10)),  # at the midpoint, then ties to 1
        (1 + 2.0**-11, 1.0),  # the midpoint itself: ties to even
        (2.0**-25 * (1 + 2.0**-40), 2.0**-24),  # above half the smallest subnormal
        (65520 - 2.0**-30, 65504.0),  # just below max + half an ULP
        (65520.0, math.inf),
    ],
)
def test_float16_rounds_once_not_through_float32(x: float, expected: float) -> None:
    # FloatFormat.round uses NumPy's float64 -> float16 cast: it must round once, not
    # through float32 (which would land these on a midpoint, or on max + half an ULP).
    fmt = get_format("float16")
    assert round_to_format(mpmath.mpf(x), fmt) == expected
    assert float(fmt.round([x])[0]) == expected


def test_bfloat16_rounds_once_not_through_float32() -> None:
    # 6.0156250014 is just above the midpoint 6.015625 of bfloat16's 6.0 and 6.03125;
    # rounding to float32 first lands on the midpoint, and then ties to even give 6.0.
    fmt = get_format("bfloat16")
    assert round_to_format(6.0156250014, fmt) == 6.03125
    assert fmt.round([6.0156250014, 6.015625, -6.0156250014]).tolist() == [6.03125, 6.0, -6.03125]


@pytest.mark.parametrize("z", [5e-324, -5e-324, 1e-300, -2.2250738585072014e-308])
def test_bce_gradient_at_tiny_logits(z: float) -> None:
    # y = 1/2: the gradient is tanh(z/2)/2 ~ z/4, after cancelling some 1076 bits.
    g = exact.bce_grad(z, 0.5)
    with mpmath.workprec(3000):
        x = mpmath.mpf(z)
        expected = (1 / (1 + mpmath.exp(-x)) - 1 / (1 + mpmath.exp(x))) / 2
    assert mpmath.almosteq(g, expected, rel_eps=1e-40)


@settings(max_examples=200, deadline=None)
@given(
    z=st.floats(-1e4, 1e4, allow_nan=False, width=32),
    y=st.floats(0, 1, width=32),
)
def test_exact_is_finite_for_finite_input(z: float, y: float) -> None:
    assert mpmath.isfinite(exact.bce(z, y))
    assert mpmath.isfinite(exact.bce_grad(z, y))
    assert exact.bce(z, y) >= 0
