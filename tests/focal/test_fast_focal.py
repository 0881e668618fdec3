"""The fast focal reference against the mpmath one: within its TOLERANCE of ULPs of the
audited format on hard points (large |z|, z near 0, subnormals, infinities, soft targets
and the gradient's zero crossing)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from logitlab import exact
from logitlab.analysis.points import edges
from logitlab.core.formats import get_format
from logitlab.core.ulp import ordinal
from logitlab.exact import _fast_focal, fast

DTYPES = ("float16", "bfloat16", "float32", "float64")


def _ulp(a: object, b: object, fmt: object) -> float:
    if mpmath.isinf(a) or mpmath.isinf(b):
        return 0.0 if a == b else math.inf
    with mpmath.workprec(1300):
        return float(abs(ordinal(a, fmt) - ordinal(b, fmt)))


def _points(dtype: str, rng: np.random.Generator) -> np.ndarray:
    fmt = get_format(dtype)
    e = edges(fmt)
    named = [0.0, fmt.smallest_subnormal, fmt.max, e.sigmoid_one, e.sigmoid_zero, e.exp_overflow]
    named += [-v for v in named] + [math.inf, -math.inf]
    tiny = 10 ** rng.uniform(math.log10(fmt.smallest_subnormal), -3, 8)
    mid = 10 ** rng.uniform(-3, 1.5, 16)
    far = 10 ** rng.uniform(1.5, math.log10(fmt.max), 8)
    return fmt.round(np.concatenate([named, tiny, -tiny, mid, -mid, far, -far]))


def _root(y: float, alpha: float | None, gamma: float) -> float:
    """The soft target's gradient zero crossing, by bisection on the exact gradient."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if exact.binary_focal_loss([mid], [y], alpha, gamma).grads[0] < 0:
            lo = mid
        else:
            hi = mid
    return lo


@pytest.mark.parametrize(
    "dtype", [pytest.param(d, marks=pytest.mark.slow) if d == "float64" else d for d in DTYPES]
)
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (None, 0.5), (0.75, 5.0)])
def test_fast_focal_against_mpmath(dtype: str, alpha: float | None, gamma: float) -> None:
    fmt = get_format(dtype)
    rng = np.random.default_rng(7)
    z0 = _points(dtype, rng)
    for y in fmt.round(np.asarray([0.0, 1.0, 0.3, 1e-3, 0.999])):
        y = float(y)
        z = z0
        if 0 < y < 1:
            r = _root(y, alpha, gamma)
            z = np.concatenate([z0, fmt.round(r + rng.uniform(-1e-3, 1e-3, 6) * abs(r))])
        ref = _fast_focal.focal(z, np.full(z.shape, y), fmt, alpha, gamma)
        ex = exact.binary_focal_loss(z, np.full(z.shape, y), alpha, gamma)
        values, grads = fast.to_mpf(ref.value), fast.to_mpf(ref.grad)
        for i, zi in enumerate(z):
            assert _ulp(values[i], ex.values[i], fmt) <= _fast_focal.TOLERANCE, (zi, y, "value")
            assert _ulp(grads[i], ex.grads[i], fmt) <= _fast_focal.TOLERANCE, (zi, y, "grad")


def test_float64_hard_points_quick() -> None:
    # The float64 (longdouble) path on a few of the hardest points, in the default suite.
    fmt = get_format("float64")
    z = np.array([0.0, 1e-300, -1e-300, 0.5, -36.7, 36.7, 700.0, -700.0, 1e300, math.inf])
    for y in (0.0, 1.0, 0.3):
        ref = _fast_focal.focal(z, np.full(z.shape, y), fmt, 0.25, 2.0)
        ex = exact.binary_focal_loss(z, np.full(z.shape, y), 0.25, 2.0)
        for i in range(z.size):
            v = fast.to_mpf(ref.value[i : i + 1])[0]
            g = fast.to_mpf(ref.grad[i : i + 1])[0]
            assert _ulp(v, ex.values[i], fmt) <= _fast_focal.TOLERANCE
            assert _ulp(g, ex.grads[i], fmt) <= _fast_focal.TOLERANCE


def test_cancellation_goes_to_mpmath_and_is_counted() -> None:
    # At the float64 neighbours of a soft target's zero crossing P - N cancels to a few
    # bits: the bound says so and those points take the mpmath value.
    y = 0.3
    r = _root(y, 0.25, 2.0)
    z = np.array([r, float(np.nextafter(r, 1)), float(np.nextafter(r, -1))])
    ref = _fast_focal.focal(z, np.full(3, y), "float64", 0.25, 2.0)
    assert ref.fallback >= 1
    ex = exact.binary_focal_loss(z, np.full(3, y), 0.25, 2.0)
    for i in range(3):
        g = fast.to_mpf(ref.grad[i : i + 1])[0]
        assert _ulp(g, ex.grads[i], get_format("float64")) <= _fast_focal.TOLERANCE
