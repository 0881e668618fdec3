"""sigmoid, log_sigmoid, softplus, logit, log1mexp against the exact mpmath reference."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logitlab import exact, stable
from logitlab.core.formats import get_format
from logitlab.core.mp import mp_context
from logitlab.core.ulp import round_to_format
from logitlab.exact import fast

from ._helpers import assert_correctly_rounded, narrow_values, ulps_against


def exact_logit(p: float) -> object:
    ctx = mp_context()
    if p == 0:
        return ctx.mpf("-inf")
    if p == 1:
        return ctx.inf
    x = ctx.mpf(p)
    return ctx.log(x / (1 - x))


def exact_logit_grad(p: float) -> object:
    ctx = mp_context()
    if p in (0.0, 1.0):
        return ctx.inf
    x = ctx.mpf(p)
    return 1 / (x * (1 - x))


def exact_log1mexp(a: float) -> object:
    ctx = mp_context()
    if a == 0:
        return ctx.mpf("-inf")
    if math.isinf(a):
        return ctx.mpf(0)
    # log1p for large a: log of a number near 1 would spend the working precision
    return ctx.log(-ctx.expm1(-ctx.mpf(a))) if a < 1 else ctx.log1p(-ctx.exp(-ctx.mpf(a)))


def exact_log1mexp_grad(a: float) -> object:
    ctx = mp_context()
    if math.isinf(a):
        return ctx.mpf(0)
    if a == 0:
        return ctx.inf
    return 1 / ctx.expm1(ctx.mpf(a))


EXACT = {
    "sigmoid": (exact.sigmoid, exact.sigmoid_grad),
    "log_sigmoid": (exact.log_sigmoid, exact.log_sigmoid_grad),
    "softplus": (exact.softplus, exact.softplus_grad),
    "logit": (exact_logit, exact_logit_grad),
    "log1mexp": (exact_log1mexp, exact_log1mexp_grad),
}
ON_LOGITS = ("sigmoid", "log_sigmoid", "softplus")
NARROW = ("float16", "bfloat16")


def domain(name: str, values: np.ndarray) -> np.ndarray:
    if name == "logit":
        return values[(values >= 0) & (values <= 1)]
    if name == "log1mexp":
        return values[values >= 0]
    return values


def as_numpy(values: np.ndarray, dtype: str) -> np.ndarray:
    return values.astype(get_format(dtype).numpy_dtype)


# --- exhaustive over float16 and bfloat16 -------------------------------------------------


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", ON_LOGITS)
def test_every_16_bit_logit_within_half_ulp_of_the_fast_reference(name: str, dtype: str) -> None:
    # The fast reference is itself proven within 0.004 ULP of mpmath (tests/test_exact*).
    z = narrow_values(dtype)
    computed = getattr(stable, name)(as_numpy(z, dtype))
    assert computed.dtype == get_format(dtype).numpy_dtype
    reference = fast.elementwise(name, z, dtype)
    # correctly rounded: near-ties, which the fast reference cannot decide, by mpmath
    exact_fn = EXACT[name][0]
    assert_correctly_rounded(
        computed, reference.value, dtype, lambda i: exact_fn(float(z[i])), fast.TOLERANCE
    )


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", sorted(EXACT))
def test_16_bit_sample_against_mpmath(name: str, dtype: str) -> None:
    # Every 29th value (a stride prime to the binade length) reaches every binade.
    z = domain(name, narrow_values(dtype))[::29]
    computed = getattr(stable, name)(as_numpy(z, dtype))
    expected = [round_to_format(EXACT[name][0](float(v)), dtype) for v in z]
    np.testing.assert_array_equal(computed.astype(np.float64), expected)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", sorted(EXACT))
def test_every_16_bit_input_against_mpmath(name: str, dtype: str) -> None:
    z = domain(name, narrow_values(dtype))
    computed = getattr(stable, name)(as_numpy(z, dtype))
    # correctly rounded, ties decided exactly: equal to mpmath's value rounded
    expected = [round_to_format(EXACT[name][0](float(v)), dtype) for v in z]
    np.testing.assert_array_equal(computed.astype(np.float64), expected)


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", sorted(EXACT))
def test_torch_16_bit_forward_and_backward(name: str, dtype: str) -> None:
    z = domain(name, narrow_values(dtype))
    if name in ("logit", "log1mexp"):
        z = z[(z > 0) & (z < 1) if name == "logit" else z > 0]  # finite derivative
    z = z[::7]
    t = torch.tensor(z, dtype=getattr(torch, dtype), requires_grad=True)
    out = getattr(stable, name)(t)
    assert out.dtype == t.dtype
    out.backward(torch.ones_like(out))
    value = [round_to_format(EXACT[name][0](float(v)), dtype) for v in z]
    grad = [round_to_format(EXACT[name][1](float(v)), dtype) for v in z]
    np.testing.assert_array_equal(out.detach().double().numpy(), value)
    np.testing.assert_array_equal(t.grad.double().numpy(), grad)
    # The NumPy path rounds the same float64 values once: the same bits.
    np_out = getattr(stable, name)(as_numpy(z, dtype)).astype(np.float64)
    np.testing.assert_array_equal(np_out, out.detach().double().numpy())


# --- hypothesis: float32 and float64 -----------------------------------------------------


def _float(width: int, name: str) -> st.SearchStrategy[float]:
    if name == "logit":
        return st.floats(0.0, 1.0, width=width)
    if name == "log1mexp":
        return st.floats(0.0, allow_infinity=False, width=width)
    return st.floats(allow_nan=False, allow_infinity=False, width=width)


def _check_scalar(name: str, z: float, dtype: str, bound: float) -> None:
    np_dtype = np.float32 if dtype == "float32" else np.float64
    value = float(getattr(stable, name)(np.array([z], dtype=np_dtype))[0])
    err = ulps_against([value], EXACT[name][0], np.array([z]), dtype)[0]
    assert err <= bound, (name, z, value, err)
    t = torch.tensor([z], dtype=getattr(torch, dtype), requires_grad=True)
    out = getattr(stable, name)(t)
    out.backward(torch.ones_like(out))
    # torch's float64 libm (SLEEF) differs from NumPy's in the last bit: check each path.
    torch_err = ulps_against([float(out.detach()[0])], EXACT[name][0], np.array([z]), dtype)[0]
    assert torch_err <= bound, (name, z, float(out.detach()[0]), torch_err)
    exact_grad = EXACT[name][1](z)
    if mpmath.isfinite(exact_grad):
        grad_err = ulps_against([float(t.grad[0])], EXACT[name][1], np.array([z]), dtype)[0]
        assert grad_err <= bound, (name, z, float(t.grad[0]), grad_err)


@pytest.mark.parametrize("name", sorted(EXACT))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_float32_within_one_ulp(name: str, data: st.DataObject) -> None:
    _check_scalar(name, data.draw(_float(32, name)), "float32", 0.5 + 1e-6)


@pytest.mark.parametrize("name", sorted(EXACT))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_float64_within_four_ulp(name: str, data: st.DataObject) -> None:
    _check_scalar(name, data.draw(_float(64, name)), "float64", 4.0)


@pytest.mark.parametrize("name", ON_LOGITS)
@given(z=st.floats(allow_nan=False, width=64))
@settings(max_examples=200, deadline=None)
def test_never_nan_and_finite_where_exact_is(name: str, z: float) -> None:
    value = float(getattr(stable, name)(np.array([z]))[0])
    assert not math.isnan(value)
    if math.isfinite(z) or name == "sigmoid":
        assert math.isfinite(value) or not mpmath.isfinite(EXACT[name][0](z))


# --- values worked out by hand ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "z", "expected"),
    [
        ("sigmoid", math.inf, 1.0),
        ("sigmoid", -math.inf, 0.0),
        ("sigmoid", 0.0, 0.5),
        ("sigmoid", -1e9, 0.0),
        ("sigmoid", 1e9, 1.0),
        ("softplus", math.inf, math.inf),
        ("softplus", -math.inf, 0.0),
        ("softplus", 1e9, 1e9),
        ("softplus", -1e9, 0.0),
        ("log_sigmoid", -1e9, -1e9),
        ("log_sigmoid", math.inf, 0.0),
        ("log_sigmoid", -math.inf, -math.inf),
        ("logit", 0.5, 0.0),
        ("logit", 0.0, -math.inf),
        ("logit", 1.0, math.inf),
        ("log1mexp", 0.0, -math.inf),
        ("log1mexp", math.inf, 0.0),
    ],
)
def test_limits(name: str, z: float, expected: float) -> None:
    for dtype in (np.float64, np.float32):
        assert float(getattr(stable, name)(np.array([z], dtype=dtype))[0]) == expected


def test_float32_saturation_points_keep_their_digits() -> None:
    # torch.sigmoid rounds to 1 from 16.64 and to 0 below -88.73 in float32; log_sigmoid
    # and softplus keep the tail: log sigma(16.64) = -exp(-16.64) to full accuracy.
    z = np.float32([16.64, -88.73, 88.7, -16.64, -103.0])
    for name in ("log_sigmoid", "softplus"):
        errors = ulps_against(getattr(stable, name)(z), EXACT[name][0], z, "float32")
        assert errors.max() <= 0.5 + 1e-6
    # sigmoid(-103) is a float32 subnormal, not 0
    assert float(stable.sigmoid(np.float32([-103.0]))[0]) > 0


def test_subnormal_logits() -> None:
    tiny = np.float32([1e-45, -1e-45, 1e-40])
    assert np.all(stable.sigmoid(tiny) == np.float32(0.5))
    err = ulps_against(stable.softplus(tiny), exact.softplus, tiny, "float32")
    assert err.max() <= 0.5 + 1e-6


def test_infinite_logits_give_finite_torch_gradients() -> None:
    z = torch.tensor([-math.inf, math.inf], requires_grad=True)
    for name in ON_LOGITS:
        z.grad = None
        getattr(stable, name)(z).sum().backward()
        assert torch.isfinite(z.grad).all(), name


def test_python_numbers_and_lists_go_through_numpy() -> None:
    assert float(stable.sigmoid(0.0)) == 0.5
    assert stable.softplus([0.0, 1.0]).dtype == np.float64


def test_integer_input_is_refused_naming_the_argument() -> None:
    from logitlab import InputError

    with pytest.raises(InputError) as info:
        stable.sigmoid(np.array([1, 2]))
    assert info.value.argument == "z"
    with pytest.raises(InputError) as info:
        stable.logit(torch.tensor([1, 2]))
    assert info.value.argument == "p"
