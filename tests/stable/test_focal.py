"""binary_focal_loss_with_logits against torchvision's formula evaluated in mpmath.

The reference is written here, independently of the code under test: torchvision's own
steps (``p = sigmoid(z)``, ``ce = -(y log p + (1 - y) log(1 - p))``, ``p_t``, ``alpha_t``)
evaluated at 600 bits, where even ``1 - p_t`` keeps hundreds of digits for |z| <= 150;
the gradient is mpmath's numerical derivative of that same expression.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from logitlab import InputError, stable
from logitlab.core.formats import get_format
from logitlab.core.ulp import round_to_format
from logitlab.stable import _backend

from ._helpers import ulps_against, wide_mp

CTX = mpmath.MPContext()
CTX.prec = 600


def torchvision_focal(z: object, y: float, alpha: float | None, gamma: float) -> object:
    p = 1 / (1 + CTX.exp(-z))
    ce = (
        -(y * CTX.log(p) + (1 - y) * CTX.log(1 - p))
        if 0 < y < 1
        else (-CTX.log(p) if y == 1 else -CTX.log(1 - p))
    )
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def reference(z: float, y: float, alpha: float | None = 0.25, gamma: float = 2.0) -> object:
    return torchvision_focal(CTX.mpf(z), CTX.mpf(y), alpha, gamma)


def reference_grad(z: float, y: float, alpha: float | None = 0.25, gamma: float = 2.0) -> object:
    y_ = CTX.mpf(y)
    return CTX.diff(lambda t: torchvision_focal(t, y_, alpha, gamma), CTX.mpf(z))


def rounded(values: list[object], dtype: str) -> np.ndarray:
    # round_to_format rounds into the thread's context first: give it the 600 bits
    with wide_mp(700):
        return np.array([round_to_format(v, dtype) for v in values])


POINTS_Z = [-150.0, -40.0, -17.0, -3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 9.0, 16.0, 30.0, 88.0]
POINTS_Y = [0.0, 1.0, 0.3, 0.9]


@pytest.mark.parametrize("alpha", [0.25, None])
@pytest.mark.parametrize("gamma", [2.0, 0.5, 0.0, 3.0])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_values_and_gradients_correctly_rounded(
    dtype: str, gamma: float, alpha: float | None
) -> None:
    fmt = get_format(dtype)
    zz, yy = np.meshgrid(fmt.round(POINTS_Z), fmt.round(POINTS_Y), indexing="ij")
    zz, yy = zz.ravel(), yy.ravel()
    value = [reference(a, b, alpha, gamma) for a, b in zip(zz, yy)]
    grad = [reference_grad(a, b, alpha, gamma) for a, b in zip(zz, yy)]
    tdtype = getattr(torch, dtype)
    zt = torch.tensor(zz, dtype=tdtype, requires_grad=True)
    loss = stable.binary_focal_loss_with_logits(
        zt, torch.tensor(yy, dtype=tdtype), alpha, gamma, reduction="none"
    )
    assert loss.dtype == tdtype
    loss.backward(torch.ones_like(loss))
    np.testing.assert_array_equal(loss.detach().double().numpy(), rounded(value, dtype))
    np.testing.assert_array_equal(zt.grad.double().numpy(), rounded(grad, dtype))
    z_np, y_np = zz.astype(fmt.numpy_dtype), yy.astype(fmt.numpy_dtype)
    np_value = stable.binary_focal_loss_with_logits(z_np, y_np, alpha, gamma, reduction="none")
    np_grad = stable.binary_focal_loss_with_logits_grad(z_np, y_np, alpha, gamma, "none")
    np.testing.assert_array_equal(np_value.astype(np.float64), rounded(value, dtype))
    np.testing.assert_array_equal(np_grad.astype(np.float64), rounded(grad, dtype))


def test_mean_and_sum_of_a_small_batch_are_correctly_rounded(rng: np.random.Generator) -> None:
    z = (rng.normal(0, 5, 64)).astype(np.float32)
    y = rng.random(64).astype(np.float32)
    terms = [reference(float(a), float(b)) for a, b in zip(z, y)]
    total = CTX.fsum(terms)
    got_sum = stable.binary_focal_loss_with_logits(z, y, reduction="sum")
    got_mean = stable.binary_focal_loss_with_logits(torch.from_numpy(z), torch.from_numpy(y))
    assert float(got_sum) == rounded([total], "float32")[0]
    assert float(got_mean) == rounded([total / 64], "float32")[0]
    # the mean's gradient: d/dz_i = focal'(z_i) / 64
    zt = torch.from_numpy(z).requires_grad_(True)
    stable.binary_focal_loss_with_logits(zt, torch.from_numpy(y)).backward()
    expected = rounded([reference_grad(float(a), float(b)) / 64 for a, b in zip(z, y)], "float32")
    np.testing.assert_array_equal(zt.grad.double().numpy(), expected)


needs_extended = pytest.mark.skipif(
    _backend.extended() is None, reason="NumPy's longdouble is binary64 here"
)


@needs_extended
@settings(max_examples=80, deadline=None)
@given(
    z=st.floats(-60, 60, width=64),
    y=st.sampled_from([0.0, 1.0, 0.25, 0.7, 1e-6]),
    gamma=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7]),
)
@example(z=-13.133688133668059, y=0.0, gamma=2.0)  # 5.09 ULP in plain float64
def test_float64_within_half_ulp_in_extended_precision(z: float, y: float, gamma: float) -> None:
    # float64 is computed in x87 extended precision and rounded once: 0.5 ULP plus
    # (5 gamma + 8) 2**-64 relative, within 0.51 ULP; NumPy and CPU torch alike.
    zs, ys = np.array([z]), np.array([y])
    value = stable.binary_focal_loss_with_logits(zs, ys, 0.25, gamma, "none")
    err = ulps_against(value, lambda _: reference(z, y, 0.25, gamma), np.zeros(1), "float64")
    assert err[0] <= 0.51, (z, y, gamma, err)
    zt = torch.tensor(zs, requires_grad=True)
    loss = stable.binary_focal_loss_with_logits(zt, torch.tensor(ys), 0.25, gamma, "none")
    assert loss.item() == float(value[0])
    loss.sum().backward()
    assert zt.grad is not None
    exact_grad = reference_grad(z, y, 0.25, gamma)
    if exact_grad != 0:  # relative: the soft-target gradient passes through 0
        grad_err = ulps_against(zt.grad.numpy(), lambda _: exact_grad, np.zeros(1), "float64")
        assert grad_err[0] <= 0.51 or abs(float(exact_grad)) < 1e-300, (z, y, gamma, grad_err)


@settings(max_examples=60, deadline=None)
@given(
    z=st.floats(-60, 60, width=64),
    y=st.sampled_from([0.0, 1.0, 0.25, 0.7, 1e-6]),
    gamma=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
)
@example(z=-13.133688133668059, y=0.0, gamma=2.0)
def test_float64_without_extended_precision_within_its_bound(
    z: float, y: float, gamma: float
) -> None:
    # Where there is no x87 extended format (or for JAX and CUDA), float64 is computed
    # in float64: within the documented 5 gamma + 8 ULP.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_backend, "extended", lambda: None)
        value = stable.binary_focal_loss_with_logits(
            np.array([z]), np.array([y]), 0.25, gamma, "none"
        )
    err = ulps_against(value, lambda _: reference(z, y, 0.25, gamma), np.zeros(1), "float64")
    assert err[0] <= 5 * gamma + 8, (z, y, gamma, err)


def test_confident_correct_predictions_keep_their_loss_and_gamma_below_one_is_finite() -> None:
    # float32 z = 20, y = 1: 1 - p_t = sigma(-20) = 2.06e-9, which torchvision's
    # 1 - (p y + (1 - p)(1 - y)) rounds to 0; the loss is alpha sigma(-20)**2 softplus(-20).
    z = torch.tensor([20.0, 40.0, -30.0], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.0])
    loss = stable.binary_focal_loss_with_logits(z, y, 0.25, 0.5, reduction="none")
    expected = rounded(
        [
            reference(20.0, 1.0, 0.25, 0.5),
            reference(40.0, 1.0, 0.25, 0.5),
            reference(-30.0, 0.0, 0.25, 0.5),
        ],
        "float32",
    )
    np.testing.assert_array_equal(loss.detach().double().numpy(), expected)
    assert (loss > 0).all()
    loss.sum().backward()
    assert torch.isfinite(z.grad).all() and (z.grad != 0).all()
    # infinite logits: the limits, finite gradients
    zi = torch.tensor([math.inf, -math.inf, math.inf], requires_grad=True)
    li = stable.binary_focal_loss_with_logits(zi, torch.tensor([1.0, 0.0, 0.0]), reduction="none")
    assert li.tolist()[:2] == [0.0, 0.0] and li.tolist()[2] == math.inf
    li[:2].sum().backward()
    assert torch.isfinite(zi.grad).all()


def test_alpha_none_and_negative_mean_no_weighting() -> None:
    z, y = np.float32([-1.0, 2.0]), np.float32([1.0, 0.0])
    plain = stable.binary_focal_loss_with_logits(z, y, alpha=None, reduction="none")
    negative = stable.binary_focal_loss_with_logits(z, y, alpha=-1, reduction="none")
    np.testing.assert_array_equal(plain, negative)
    expected = rounded([reference(-1.0, 1.0, None), reference(2.0, 0.0, None)], "float32")
    np.testing.assert_array_equal(plain.astype(np.float64), expected)


def test_jax_values_and_grad() -> None:
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    z = np.float32([-3.0, 0.5, 7.0])
    y = np.float32([1.0, 0.3, 0.0])
    with jax.enable_x64(True):
        value = stable.binary_focal_loss_with_logits(jnp.asarray(z), jnp.asarray(y))
        grad = jax.grad(lambda t: stable.binary_focal_loss_with_logits(t, jnp.asarray(y)))(
            jnp.asarray(z)
        )
    terms = [reference(float(a), float(b)) for a, b in zip(z, y)]
    assert float(value) == rounded([CTX.fsum(terms) / 3], "float32")[0]
    expected = rounded([reference_grad(float(a), float(b)) / 3 for a, b in zip(z, y)], "float32")
    np.testing.assert_array_equal(np.asarray(grad).astype(np.float64), expected)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"gamma": -1.0}, "gamma"),
        ({"alpha": 2.0}, "alpha"),
        ({"reduction": "avg"}, "reduction"),
        ({"targets": np.float32([1.0, 0.0])}, "targets"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], argument: str) -> None:
    args: dict[str, object] = {"logits": np.float32([1.0]), "targets": np.float32([1.0])}
    args.update(kwargs)
    with pytest.raises(InputError) as info:
        stable.binary_focal_loss_with_logits(**args)  # type: ignore[arg-type]
    assert info.value.argument == argument


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_every_16_bit_logit_correctly_rounded(dtype: str) -> None:
    fmt = get_format(dtype)
    z = fmt.values()
    z = z[np.abs(z) <= 150]
    for y in (1.0, 0.0, float(fmt.round([0.3])[0])):
        expected = rounded([reference(float(a), y) for a in z], dtype)
        got = stable.binary_focal_loss_with_logits(
            z.astype(fmt.numpy_dtype), np.full(z.shape, y, dtype=fmt.numpy_dtype), reduction="none"
        )
        np.testing.assert_array_equal(got.astype(np.float64), expected)
