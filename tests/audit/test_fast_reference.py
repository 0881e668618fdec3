"""The fast reference against mpmath: below 0.01 ULP of the audited format in every region."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logitlab import exact
from logitlab.analysis.points import FULL_TARGETS, edges, logit_points, neighbours, targets_for
from logitlab.core.formats import get_format
from logitlab.core.ulp import ordinal
from logitlab.exact import fast

DTYPES = ("float16", "bfloat16", "float32", "float64")
LIMIT = 0.01


def _mp_grad(z: float, y: float, w: float = 1.0, pw: float = 1.0) -> object:
    """The BCE gradient straight from the definition at 1300 bits (independent of fast)."""
    with mpmath.workprec(1300):
        s = mpmath.mpf(1 if z > 0 else 0) if math.isinf(z) else 1 / (1 + mpmath.exp(-mpmath.mpf(z)))
        y_ = mpmath.mpf(y)
        return +(mpmath.mpf(w) * ((1 - y_) * s - mpmath.mpf(pw) * y_ * (1 - s)))


def _region_logits(dtype: str, rng: np.random.Generator) -> np.ndarray:
    fmt = get_format(dtype)
    e = edges(fmt)
    named = [
        0.0,
        -0.0,
        fmt.smallest_subnormal,
        fmt.max,
        e.sigmoid_one,
        e.sigmoid_zero,
        e.exp_overflow,
    ]
    named += [-v for v in named] + [math.inf, -math.inf]
    tiny = 10 ** rng.uniform(math.log10(fmt.smallest_subnormal), -3, 25)
    mid = 10 ** rng.uniform(-3, 1.5, 40)
    far = 10 ** rng.uniform(1.5, math.log10(fmt.max), 25)
    z = np.concatenate([named, tiny, -tiny, mid, -mid, far, -far])
    return fmt.round(z)


def _ulp(a: object, b: object, fmt: object) -> float:
    if mpmath.isinf(a) or mpmath.isinf(b):
        return 0.0 if a == b else math.inf
    with mpmath.workprec(1300):
        return float(abs(ordinal(a, fmt) - ordinal(b, fmt)))


@pytest.mark.parametrize(
    "dtype",
    # float64 takes ~11 s on 2 idle cores (over 40 s loaded): slow, run with --run-slow
    [pytest.param(d, marks=pytest.mark.slow) if d == "float64" else d for d in DTYPES],
)
def test_bce_against_mpmath(dtype: str) -> None:
    fmt = get_format(dtype)
    rng = np.random.default_rng(1)
    z0 = _region_logits(dtype, rng)
    worst = worst_g = 0.0
    for y in fmt.round(np.asarray(FULL_TARGETS)):
        y = float(y)
        z = z0
        if 0 < y < 1:
            # the gradient's zero crossing z* = log(y / (1 - y)) and its neighbourhood
            zstar = math.log(y / (1 - y))
            z = np.concatenate([z0, fmt.round(zstar + rng.uniform(-1e-3, 1e-3, 10) * abs(zstar))])
        weights = ((1.0, 1.0), (0.5, 3.0)) if y in (1.0, float(fmt.round(0.3))) else ((1.0, 1.0),)
        for w, pw in weights:
            ref = fast.bce(z, np.full(z.shape, y), fmt, np.asarray(w), np.asarray(pw))
            values, grads = fast.to_mpf(ref.value), fast.to_mpf(ref.grad)
            for i, zi in enumerate(z):
                with mpmath.workprec(1300):
                    v = exact.bce(float(zi), y, w, pw)
                worst = max(worst, _ulp(values[i], v, fmt))
                worst_g = max(worst_g, _ulp(grads[i], _mp_grad(float(zi), y, w, pw), fmt))
    assert worst < LIMIT
    assert worst_g < LIMIT


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("quantity", "value", "grad"),
    [
        ("sigmoid", exact.sigmoid, exact.sigmoid_grad),
        ("log_sigmoid", exact.log_sigmoid, exact.log_sigmoid_grad),
        ("softplus", exact.softplus, exact.softplus_grad),
    ],
)
def test_elementwise_against_mpmath(dtype: str, quantity: str, value: object, grad: object) -> None:
    fmt = get_format(dtype)
    z = _region_logits(dtype, np.random.default_rng(2))
    ref = fast.elementwise(quantity, z, fmt)
    values, grads = fast.to_mpf(ref.value), fast.to_mpf(ref.grad)
    for i, zi in enumerate(z):
        assert _ulp(values[i], value(float(zi)), fmt) < LIMIT, (zi, quantity)  # type: ignore[operator]
        assert _ulp(grads[i], grad(float(zi)), fmt) < LIMIT, (zi, quantity)  # type: ignore[operator]


ROOT_TARGETS = (1e-10, 1e-3, 0.05, 0.3, 0.5, 0.7, 0.95, 0.999, 1 - 1e-10)


def _near_zero_crossing(fmt: object, y: float, pw: float, rng: np.random.Generator) -> np.ndarray:
    """Logits of ``fmt`` at the gradient's zero crossing: the nearest values and their
    neighbours, relative offsets down to 1e-12, and a uniform spread of +-1."""
    z0 = math.log(pw * y / (1 - y))
    near = float(fmt.round(z0))  # type: ignore[attr-defined]
    z = np.concatenate(
        [
            neighbours(near, fmt, 4),  # type: ignore[arg-type]
            z0 + z0 * rng.choice([-1, 1], 8) * 10 ** rng.uniform(-12, -2, 8),
            z0 + rng.uniform(-1, 1, 6),
        ]
    )
    return fmt.round(z)  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_at_zero_crossing_against_per_point_mpmath(dtype: str) -> None:
    fmt = get_format(dtype)
    rng = np.random.default_rng(7)
    worst = worst_v = 0.0
    checked = 0
    for y_raw in ROOT_TARGETS:
        y = float(fmt.round(y_raw))
        if not 0 < y < 1:
            continue  # 1 - 1e-10 is 1 below float64
        for pw_raw, w_raw in ((1.0, 1.0), (3.0, 0.5), (1e-3, 2.0)):
            pw, w = float(fmt.round(pw_raw)), float(fmt.round(w_raw))
            z = _near_zero_crossing(fmt, y, pw, rng)
            ref = fast.bce(z, np.full(z.shape, y), fmt, np.asarray(w), np.asarray(pw))
            assert ref.fallback <= 1  # at most the one value nearest z0
            values, grads = fast.to_mpf(ref.value), fast.to_mpf(ref.grad)
            for i, zi in enumerate(z.tolist()):
                g = exact.bce_grad(zi, y, w, pw)
                worst = max(worst, _ulp(grads[i], g, fmt))
                worst_v = max(worst_v, _ulp(values[i], exact.bce(zi, y, w, pw), fmt))
                checked += 1
    assert checked > 300
    assert worst < LIMIT
    assert worst_v < LIMIT


def _boundary_points(n: int) -> tuple[np.ndarray, np.ndarray]:
    z = np.random.default_rng(0).uniform(-3, 1, n)
    return z, np.full(n, 0.3)


def test_fallback_is_rare_near_the_decision_boundary() -> None:
    z, y = _boundary_points(50_000)
    ref = fast.bce(z, y, "float64")
    assert ref.fallback < 0.01 * z.size
    # the double-double path handled the cancelling points: the plain estimate doubts ~40%
    zstar = math.log(3 / 7)
    assert np.count_nonzero(np.abs(z - zstar) < 0.5) > 0.1 * z.size


@pytest.mark.parametrize("dtype", DTYPES)
def test_fallback_is_rare_on_a_mixed_audit_set(dtype: str) -> None:
    fmt = get_format(dtype)
    z = logit_points(fmt, 2_000, 0)
    ys, _ = targets_for(fmt, FULL_TARGETS)
    zz, yy = np.tile(z, ys.size), np.repeat(ys, z.size)
    for pw in (1.0, 3.0, 1e-3):
        ref = fast.bce(zz, yy, fmt, np.asarray(0.5), np.asarray(float(fmt.round(pw))))
        assert ref.fallback < 0.01 * zz.size


def test_mpmath_fallback_is_counted_and_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the double-double path refused, every doubtful point goes to mpmath."""
    from logitlab.exact import _root

    fmt = get_format("float64")
    rng = np.random.default_rng(5)
    z = _near_zero_crossing(fmt, 0.3, 3.0, rng)
    z = np.concatenate([z, [0.0, 5.0]])
    y = np.full(z.shape, 0.3)
    y[-2] = 0.25  # pw * y = 1 - y at z = 0: exactly zero
    pw = np.full(z.shape, 3.0)
    pw[-1] = -1.0  # not the double-double path's business: the general definition

    def refuse(z: np.ndarray, *args: np.ndarray) -> tuple[np.ndarray, ...]:
        return np.zeros_like(z), np.zeros_like(z), np.zeros(z.shape, int), np.full(z.shape, np.inf)

    monkeypatch.setattr(_root, "near_root", refuse)
    ref = fast.bce(z, y, fmt, None, pw)
    assert 0 < ref.fallback <= z.size
    grads = fast.to_mpf(ref.grad)
    for i, zi in enumerate(z.tolist()):
        assert _ulp(grads[i], _mp_grad(zi, float(y[i]), 1.0, float(pw[i])), fmt) < LIMIT
    assert ref.grad[-2] == 0


def test_double_double_bound_is_honest() -> None:
    """The double-double gradient's error stays below its own bound, 2**-90 + 3 eps_t."""
    from logitlab.exact import _root

    rng = np.random.default_rng(11)
    fmt = get_format("float64")
    zs, ys, pws = [], [], []
    for y in ROOT_TARGETS[:-1]:
        for pw in (1.0, 3.0, 1e-3):
            z = _near_zero_crossing(fmt, y, pw, rng)
            zs.append(z)
            ys.append(np.full(z.shape, y))
            pws.append(np.full(z.shape, pw))
    z, y, pw = np.concatenate(zs), np.concatenate(ys), np.concatenate(pws)
    w = np.full(z.shape, 0.5)
    gh, gl, e, bound = _root.near_root(z, y, pw, w)
    assert np.isfinite(bound).mean() > 0.9
    assert (bound[np.isfinite(bound)] < 2.0**-70).all()
    with mpmath.workprec(1300):
        for i in np.flatnonzero(np.isfinite(bound)):
            g = _mp_grad(float(z[i]), float(y[i]), 0.5, float(pw[i]))
            got = mpmath.ldexp(mpmath.mpf(float(gh[i])) + mpmath.mpf(float(gl[i])), int(e[i]))
            if g == 0:  # z = z0 = 0
                assert got == 0
                continue
            rel = abs(got - g) / abs(g)
            assert rel <= bound[i], (z[i], y[i], pw[i], float(rel), bound[i])
            # and the bound itself is not vacuous: the value is far better than float64
            assert rel < 2.0**-85


def test_ulp_errors_longdouble_matches_float64_path() -> None:
    from logitlab.core.ulp import ulp_error_array

    rng = np.random.default_rng(3)
    exact_ = rng.standard_normal(1000) * 10.0 ** rng.integers(-300, 300, 1000)
    computed = exact_ * (1 + rng.standard_normal(1000) * 1e-15)
    a = ulp_error_array(computed, exact_, "float64")
    b = fast.ulp_errors(computed, exact_.astype(np.longdouble), "float64")
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_ulp_errors_below_float64_subnormals() -> None:
    # an exact value below float64's subnormal spacing keeps its fraction in longdouble
    e = np.asarray([np.ldexp(np.longdouble(3), -1076)])  # 0.75 of the smallest subnormal
    assert fast.ulp_errors(np.asarray([0.0]), e, "float64")[0] == pytest.approx(0.75)


@settings(max_examples=150, deadline=None)
@given(
    z=st.floats(allow_nan=False, width=32),
    y=st.sampled_from([0.0, 1.0, 1e-10, 1e-3, 0.05, 0.3, 0.5, 0.7, 0.95, 0.999]),
    pw=st.sampled_from([1.0, 0.25, 3.0]),
)
def test_bce_property_float32(z: float, y: float, pw: float) -> None:
    fmt = get_format("float32")
    y = float(fmt.round(y))
    ref = fast.bce(np.array([z]), np.array([y]), fmt, None, np.asarray(pw))
    (v,), (g,) = fast.to_mpf(ref.value), fast.to_mpf(ref.grad)
    with mpmath.workprec(1300):
        exact_v = exact.bce(z, y, 1.0, pw)
    if mpmath.isinf(exact_v):
        assert v == exact_v  # an infinite exact loss (z = +-inf) must come back infinite
    else:
        assert _ulp(v, exact_v, fmt) < LIMIT
    assert _ulp(g, _mp_grad(z, y, 1.0, pw), fmt) < LIMIT
