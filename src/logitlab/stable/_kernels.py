"""Elementwise float64 kernels shared by the NumPy, JAX and torch paths.

Every kernel takes the namespace ``xp`` first (``torch`` itself works: the elementwise
names ``exp``, ``log1p``, ``expm1``, ``log``, ``abs``, ``where`` are the same) and float64
arrays, and uses only elementwise operations, so ``torch.compile`` can fuse it.

Rounding-error bounds below are in float64 ULPs and assume ``exp``, ``expm1``, ``log``
and ``log1p`` within 1 ULP (glibc and SLEEF's u10 functions are).
"""

from __future__ import annotations

from typing import Any

from logitlab.stable._backend import LN2

__all__ = [
    "bce_grad_terms",
    "bce_loss_terms",
    "log1mexp",
    "log1mexp_grad",
    "log_sigmoid",
    "log_sigmoid_grad",
    "logit",
    "logit_grad",
    "sigmoid",
    "sigmoid_grad",
    "softplus",
    "softplus_grad",
]

Array = Any


def _exp_neg_abs(xp: Any, z: Array) -> Array:
    # exp(-|z|) lies in [0, 1]: it cannot overflow, whatever z is.
    return xp.exp(-xp.abs(z))


def sigmoid(xp: Any, z: Array) -> Array:
    """sigma(z): 1/(1+e) for z >= 0 and e/(1+e) for z < 0, e = exp(-|z|); <= 2.5 ULP."""
    e = _exp_neg_abs(xp, z)
    r = 1.0 / (1.0 + e)
    # sigma(-|z|) = e * sigma(|z|): no 1 - sigma(|z|), which would cancel.
    return xp.where(z >= 0, r, e * r)


def sigmoid_grad(xp: Any, z: Array) -> Array:
    """sigma(z) * sigma(-z) = e / (1 + e)**2, symmetric in z; <= 3 ULP."""
    e = _exp_neg_abs(xp, z)
    r = 1.0 / (1.0 + e)
    return (e * r) * r


def softplus(xp: Any, z: Array) -> Array:
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)); both terms >= 0; <= 3 ULP."""
    return xp.where(z > 0, z, 0.0) + xp.log1p(_exp_neg_abs(xp, z))


softplus_grad = sigmoid


def log_sigmoid(xp: Any, z: Array) -> Array:
    """log sigma(z) = -softplus(-z) = min(z, 0) - log1p(exp(-|z|)); <= 3 ULP."""
    return xp.where(z < 0, z, 0.0) - xp.log1p(_exp_neg_abs(xp, z))


def log_sigmoid_grad(xp: Any, z: Array) -> Array:
    """d log sigma(z) / dz = sigma(-z)."""
    return sigmoid(xp, -z)


def logit(xp: Any, p: Array) -> Array:
    """log(p / (1 - p)) in three ranges, each without cancellation; <= 3 ULP.

    p < 1/4: log(p / q); 1/4 <= p <= 3/4: log1p((2p - 1) / q), where 2p - 1 is exact
    (Sterbenz) and log1p is well conditioned; p > 3/4: -log(q / p) with q = 1 - p exact.
    """
    q = 1.0 - p
    low = xp.log(p / q)
    middle = xp.log1p((2.0 * p - 1.0) / q)
    high = -xp.log(q / p)
    return xp.where(p < 0.25, low, xp.where(p > 0.75, high, middle))


def logit_grad(xp: Any, p: Array) -> Array:
    """d logit(p) / dp = 1 / (p (1 - p))."""
    return 1.0 / (p * (1.0 - p))


def log1mexp(xp: Any, a: Array) -> Array:
    """log(1 - exp(-a)), a >= 0, switching at a = log 2 (Maechler 2012); <= 2.5 ULP.

    a <= log 2: log(-expm1(-a)) (1 - exp(-a) would cancel); a > log 2: log1p(-exp(-a))
    (log of a number near 1 would lose digits).
    """
    small = xp.log(-xp.expm1(-xp.where(a <= LN2, a, LN2)))
    large = xp.log1p(-xp.exp(-xp.where(a > LN2, a, LN2)))
    return xp.where(a <= LN2, small, large)


def log1mexp_grad(xp: Any, a: Array) -> Array:
    """d log1mexp(a) / da = exp(-a) / (1 - exp(-a)) = 1 / expm1(a)."""
    return 1.0 / xp.expm1(a)


def _times(xp: Any, coefficient: Array, value: Array) -> Array:
    # A zero coefficient removes its term, even where the term is infinite (z = +-inf).
    return xp.where(coefficient == 0, 0.0, coefficient * value)


def bce_loss_terms(xp: Any, z: Array, y: Array, w: Array | None, p: Array | None) -> Array:
    """Per-element BCE: w * (p * y * softplus(-z) + (1 - y) * softplus(z)).

    Both terms are non-negative for y in [0, 1] and p, w >= 0, so the sum cannot cancel
    (PyTorch's ``(1 - y) z - log_sigmoid(z)`` does, for small y and very negative z).
    Error <= 5 float64 ULP: softplus 3, coefficient 1, product and sum 1.
    """
    e = _exp_neg_abs(xp, z)
    shared = xp.log1p(e)
    softplus_z = xp.where(z > 0, z, 0.0) + shared  # softplus(z)
    softplus_minus_z = xp.where(z < 0, -z, 0.0) + shared  # softplus(-z) = -log sigma(z)
    positive = y if p is None else p * y
    loss = _times(xp, positive, softplus_minus_z) + _times(xp, 1.0 - y, softplus_z)
    return loss if w is None else _times(xp, w, loss)


def bce_grad_terms(
    xp: Any, z: Array, y: Array, w: Array | None, p: Array | None
) -> tuple[Array, Array]:
    """d BCE / dz per element and the size of its two terms.

    ``d = w * ((1 - y) * sigma(z) - p * y * sigma(-z))`` and ``scale = w * max(a, b)`` of
    the two terms ``a, b``.  Each term is within 4 float64 ULP; their difference has an
    absolute error below ``2**-50 * scale``, a relative error below ``2**-50 * scale / |d|``:
    large only near ``z = log(p y / (1 - y))``, where the exact gradient is near zero.
    """
    e = _exp_neg_abs(xp, z)
    r = 1.0 / (1.0 + e)
    sig_z = xp.where(z >= 0, r, e * r)  # sigma(z)
    sig_minus_z = xp.where(z >= 0, e * r, r)  # sigma(-z) = 1 - sigma(z), without cancelling
    positive = y if p is None else p * y
    a = (1.0 - y) * sig_z
    b = positive * sig_minus_z
    d = a - b
    scale = xp.where(a > b, a, b)
    if w is not None:
        d = w * d
        scale = xp.abs(w) * scale
    return d, scale
