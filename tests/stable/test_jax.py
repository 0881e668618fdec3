"""The JAX path: values as NumPy's, and jax.grad through the custom derivatives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from logitlab import exact, stable
from logitlab.core.ulp import round_to_format

from ._helpers import ulps_against

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")


@pytest.fixture(autouse=True)
def x64() -> object:
    # float64 inside needs jax_enable_x64; scoped so other tests keep JAX's default.
    with jax.enable_x64(True):
        yield


def test_values_match_numpy(rng: np.random.Generator) -> None:
    z = rng.normal(0, 10, 50).astype(np.float32)
    y = rng.random(50).astype(np.float32)
    for name in ("sigmoid", "log_sigmoid", "softplus"):
        np.testing.assert_array_equal(
            np.asarray(getattr(stable, name)(jnp.asarray(z))), getattr(stable, name)(z)
        )
    got = stable.binary_cross_entropy_with_logits(jnp.asarray(z), jnp.asarray(y), reduction="none")
    np.testing.assert_array_equal(
        np.asarray(got), stable.binary_cross_entropy_with_logits(z, y, reduction="none")
    )
    zz = z.reshape(10, 5)
    t = rng.integers(0, 5, 10)
    np.testing.assert_allclose(
        np.asarray(stable.softmax_cross_entropy(jnp.asarray(zz), jnp.asarray(t))),
        stable.softmax_cross_entropy(zz, t),
        rtol=1e-7,
    )


def test_grad_is_the_accurate_analytic_gradient(rng: np.random.Generator) -> None:
    z = np.float32([-30.0, -2.0, 2.0, 20.0, math.inf, -math.inf])
    y = np.float32([1e-10, 0.3, 0.7, 0.3, 0.5, 0.25])
    # Expected: the exact (mpmath) gradient of the mean, d/dz_i = bce_grad(z_i, y_i) / 6;
    # the README promises it correctly rounded in float32 (0.5 ULP, + 1e-6 for ties).
    reference = exact.bce_loss(z.astype(np.float64), y.astype(np.float64), reduction="mean")
    # the limits at +-inf by hand: (1 - y) sigma(z) - y sigma(-z) -> 1 - y at +inf, -y at -inf
    assert [float(g) for g in reference.grads[4:]] == [0.5 / 6, -0.25 / 6]
    for transform in (lambda f: f, jax.jit):
        grad = transform(jax.grad(lambda t: stable.binary_cross_entropy_with_logits(t, y)))
        got = np.asarray(grad(jnp.asarray(z)))
        assert got.dtype == np.float32
        ulps = ulps_against(got, lambda i: reference.grads[int(i)], np.arange(6), "float32")
        assert ulps.max() <= 0.5 + 1e-6, ulps


def test_grad_of_primitives_is_finite_at_infinite_logits() -> None:
    z = jnp.asarray(np.float32([-math.inf, 0.0, math.inf]))
    for name in ("sigmoid", "log_sigmoid", "softplus"):
        grad = jax.grad(lambda t, f=getattr(stable, name): f(t).sum())(z)
        assert np.isfinite(np.asarray(grad)).all(), name


def test_grad_for_targets_weight_and_pos_weight() -> None:
    z = jnp.asarray(np.array([[-1.0, 2.0], [0.5, -3.0]]))
    y = jnp.asarray(np.array([[0.2, 0.9], [0.0, 1.0]]))
    w = jnp.asarray(np.array([1.0, 2.0]))
    p = jnp.asarray(np.array([3.0, 0.5]))

    def loss(y_: object, w_: object, p_: object) -> object:
        return stable.binary_cross_entropy_with_logits(z, y_, w_, p_, "mean")

    def plain(y_: object, w_: object, p_: object) -> object:
        sp = jax.nn.softplus
        return jnp.mean(w_ * (p_ * y_ * sp(-z) + (1 - y_) * sp(z)))

    ours = jax.grad(loss, argnums=(0, 1, 2))(y, w, p)
    theirs = jax.grad(plain, argnums=(0, 1, 2))(y, w, p)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)


def test_without_x64_it_still_runs_in_float32() -> None:
    with jax.enable_x64(False):
        got = stable.binary_cross_entropy_with_logits(
            jnp.asarray([-30.0], dtype=jnp.float32), jnp.asarray([1e-10], dtype=jnp.float32)
        )
        # Without float64 the kernels run in float32: "within a few float32 ULP" (4 here)
        # of the exact loss, y softplus(30) + (1 - y) softplus(-30) = 3.0000936e-9.
        reference = exact.bce(-30.0, float(np.float32(1e-10)))
        assert ulps_against([float(got)], lambda _: reference, np.zeros(1), "float32")[0] <= 4


def test_subnormal_results_eager_correct_and_the_jit_limit() -> None:
    # sigma(-100), sigma(-103), sigma(-90) are float32 subnormals: 3.78e-44, 1.4e-45 (the
    # smallest subnormal), 8.19e-40.  XLA's float64 -> float32 conversion flushes them to
    # 0, so eager JAX rounds on the host: the same bits as NumPy, correctly rounded.
    z = np.float32([-100.0, -103.0, -90.0])
    expected = [round_to_format(exact.sigmoid(float(v)), "float32") for v in z]
    assert all(0 < e < 1.18e-38 for e in expected)
    assert np.asarray(stable.sigmoid(jnp.asarray(z))).astype(np.float64).tolist() == expected
    # The documented limit: under jax.jit (tracers, no host values) and in jax.grad the
    # conversion is XLA's, which gives 0 here (or, should XLA keep subnormals, the value).
    jitted = np.asarray(jax.jit(stable.sigmoid)(jnp.asarray(z))).astype(np.float64)
    assert all(v in (0.0, e) for v, e in zip(jitted, expected))
