"""Elementwise float64 kernels shared by the NumPy, JAX and torch paths.

Every kernel takes the namespace ``xp`` first (``torch`` itself works: the elementwise
names ``exp``, ``log1p``, ``expm1``, ``log``, ``abs``, ``where`` are the same) and float64
arrays, and uses only elementwise operations, so ``torch.compile`` can fuse it.

Rounding-error bounds below are in float64 ULPs and assume ``exp``, ``expm1``, ``log``
and ``log1p`` within 1 ULP (glibc and SLEEF's u10 functions are).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logitlab.stable._backend import LN2

__all__ = [
    "bce_grad_careful",
    "bce_grad_fast",
    "bce_grad_terms",
    "bce_loss_careful",
    "bce_loss_fast",
    "bce_loss_terms",
    "bce_needs_care",
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


# Past |z| = 700, exp(-|z|) nears float64's subnormal range, where it keeps fewer digits
# and a coefficient p * y or w > 1 multiplies its absolute error.  There the tail is
# carried scaled by 2**64, exp(64 log 2 - |z|), and scaled back after the coefficients
# have been applied, so that the one rounding into the subnormal range comes last.
# 64 log 2 = 64 LN2_HI (exact: 32 significant bits) + 64 LN2_LO, folded in as a factor.
_TINY = 700.0
_LN2_HI = 0.6931471803691238  # log 2 rounded down to 32 significant bits
_LN2_LO = (0.6931471805599453 - _LN2_HI) + 2.3190468138462996e-17  # double-double log 2
_SHIFT_HI = 64.0 * _LN2_HI
_SHIFT_FACTOR = 1.2212575621905263e-08  # expm1(64 * _LN2_LO), from mpmath
_UNSCALE = 2.0**-64


def _scaled_tail(xp: Any, a: Array) -> Array:
    """``exp(-a) * 2**64`` for ``a >= _TINY``, without passing through subnormals.

    ``-a + 64 LN2_HI`` is exact (both are multiples of ``2**-43`` in this range), and
    ``exp(-a) = log1p(exp(-a)) = sigma(-a)`` to float64 precision here.
    """
    t = xp.exp(_SHIFT_HI - xp.where(a > _TINY, a, _TINY))
    return t + t * _SHIFT_FACTOR


_SMALL = 2.0**-900  # a target or weight below this sends its element to the careful kernel
_LOW = 2.0**-256  # the careful product keeps every factor and partial product in
_HIGH = 2.0**256  # [_LOW, _HIGH], so no step in between can underflow or overflow
_UP = 2.0**256
_DOWN = 2.0**-256
_MAX_STEPS = 20  # 4 factors of up to 4 scalings each, and one per partial product


def _renormalise(xp: Any, x: Array, steps: Array) -> tuple[Array, Array]:
    """Scale ``x`` by exact powers of two into [2**-256, 2**256] (zero and inf stay).

    ``steps`` counts the scalings: +1 for each ``* 2**256``, -1 for each ``* 2**-256``.
    Keeping every factor and partial product in that range means a product of two of
    them can neither underflow nor overflow; only the final scaling back can, exactly
    where the true product does.
    """
    for _ in range(4):  # 2**-1074 * 2**(4 * 256) >= 2**-256, 2**1024 * 2**(-3 * 256) <= 2**256
        magnitude = xp.abs(x)
        small = (magnitude < _LOW) & (x != 0)
        large = (magnitude > _HIGH) & xp.isfinite(x)
        if not _any(xp, small | large):  # the usual case: nothing to scale
            break
        x = xp.where(small, x * _UP, xp.where(large, x * _DOWN, x))
        steps = steps + xp.where(small, 1, 0) - xp.where(large, 1, 0)
    return x, steps


def _product(xp: Any, factors: list[Array], shifts: list[Array | int]) -> Array:
    """The product of ``factors`` with one rounding into the subnormals, if any.

    Every factor and partial product is brought into ``[2**-256, 2**256]`` by exact
    scalings, which are counted (:func:`_renormalise`), so no intermediate step can
    overflow or underflow: a tiny weight times a huge softplus is formed as the true
    product, not as inf (found by hypothesis: w = 2.2e-311, pos_weight 513, z = -8.8e307).
    ``shifts`` marks factors already scaled by ``2**64`` (the scaled tail).  The product is
    scaled back at the end by exact powers of two: only the step that enters the
    subnormal range rounds (any later step gives 0, as the exact value would).  A zero
    factor gives 0, even against an infinite one.
    """
    out: Array = None
    zero: Array = None
    steps: Array = 0
    tail: Array = 0
    for factor, shift in zip(factors, shifts):
        scaled, steps = _renormalise(xp, factor, steps)
        tail = tail + shift
        out = scaled if out is None else out * scaled
        out, steps = _renormalise(xp, out, steps)
        zero = factor == 0 if zero is None else zero | (factor == 0)
    if not isinstance(tail, int):
        out = xp.where(tail > 0, out * _UNSCALE, out)
    for _ in range(_MAX_STEPS if not isinstance(steps, int) else 0):
        down, up = steps > 0, steps < 0
        if not _any(xp, down | up):
            break
        # Exact until the step that enters the subnormals (rounds once) or overflows.
        out = xp.where(down, out * _DOWN, xp.where(up, out * _UP, out))
        steps = steps - xp.where(down, 1, 0) + xp.where(up, 1, 0)
    return xp.where(zero, 0.0, out)


def _softplus_scaled(xp: Any, z: Array, a: Array, e: Array) -> tuple[Array, Array]:
    """softplus(z) and its power-of-two scale: ``exp(-|z|) * 2**64`` when z < -700."""
    plain = xp.where(z > 0, z, 0.0) + xp.log1p(e)
    return xp.where(z < -_TINY, _scaled_tail(xp, a), plain), xp.where(z < -_TINY, 64, 0)


def bce_loss_careful(xp: Any, z: Array, y: Array, w: Array | None, p: Array | None) -> Array:
    """Per-element BCE: w * (p * y * softplus(-z) + (1 - y) * softplus(z)), everywhere.

    Both terms are non-negative for y in [0, 1] and p, w >= 0, so the sum cannot cancel
    (PyTorch's ``(1 - y) z - log_sigmoid(z)`` does, for small y and very negative z).
    Error <= 5 float64 ULP: softplus 3, coefficient 0.5, products and sum 1.5.  Products
    that reach float64's subnormal range are formed scaled and rounded once (see
    ``_product``), so a weight > 1 cannot multiply the error of a subnormal softplus.
    """
    a = xp.abs(z)
    e = xp.exp(-a)  # exp(-|z|) <= 1 cannot overflow
    sp_z, k_z = _softplus_scaled(xp, z, a, e)  # -log(1 - sigma(z)) = softplus(z)
    sp_minus_z, k_minus_z = _softplus_scaled(xp, -z, a, e)  # -log sigma(z) = softplus(-z)
    extra_pos = [] if p is None else [p]
    extra_w = [] if w is None else [w]
    # Coefficients first, the softplus last: an intermediate cannot overflow unless the
    # loss itself does (softplus reaches 1.8e308 where z does).
    positive = _product(
        xp, [*extra_w, *extra_pos, y, sp_minus_z], [*[0] * len(extra_pos + extra_w), 0, k_minus_z]
    )
    negative = _product(xp, [*extra_w, 1.0 - y, sp_z], [*[0] * len(extra_w), 0, k_z])
    return positive + negative


def bce_grad_careful(
    xp: Any, z: Array, y: Array, w: Array | None, p: Array | None
) -> tuple[Array, Array]:
    """d BCE / dz per element and the size of its two terms, everywhere.

    ``d = w * ((1 - y) * sigma(z) - p * y * sigma(-z))`` and ``scale = max(a, b)`` of the
    two terms ``a, b``.  Each term is within 4 float64 ULP; their difference has an
    absolute error below ``2**-50 * scale``, a relative error below ``2**-50 * scale / |d|``:
    large only near ``z = log(p y / (1 - y))``, where the exact gradient is near zero.
    Products reaching the subnormals are formed as in :func:`bce_loss_terms`.
    """
    a_z = xp.abs(z)
    e = xp.exp(-a_z)
    r = 1.0 / (1.0 + e)
    tiny = _scaled_tail(xp, a_z)
    big = a_z > _TINY
    small_sig = xp.where(big, tiny, e * r)  # sigma(-|z|) = e / (1 + e), no 1 - sigma
    small_k = xp.where(big, 64, 0)
    positive_z = z >= 0
    sig_z = xp.where(positive_z, r, small_sig)  # sigma(z)
    sig_minus_z = xp.where(positive_z, small_sig, r)  # sigma(-z)
    k_z = xp.where(positive_z, 0, small_k)
    k_minus_z = xp.where(positive_z, small_k, 0)
    extra_pos = [] if p is None else [p]
    extra_w = [] if w is None else [w]
    a = _product(xp, [*extra_w, 1.0 - y, sig_z], [*[0] * len(extra_w), 0, k_z])
    b = _product(
        xp, [*extra_w, *extra_pos, y, sig_minus_z], [*[0] * len(extra_pos + extra_w), 0, k_minus_z]
    )
    return a - b, xp.where(a > b, a, b)


def bce_needs_care(xp: Any, z: Array, y: Array, w: Array | None, p: Array | None) -> Array:
    """Elements the fast kernels do not cover: ``|z| > 700`` (tails near the subnormals,
    infinite logits) and tiny non-zero targets or weights (products through subnormals)."""
    mask = xp.abs(z) > _TINY
    for factor in (y, w, p):
        if factor is not None:
            mask = mask | ((xp.abs(factor) < _SMALL) & (factor != 0))
    return mask


def bce_loss_fast(xp: Any, z: Array, y: Array, w: Array | None, p: Array | None) -> Array:
    """:func:`bce_loss_careful` where :func:`bce_needs_care` is false (finite z, |z| <= 700).

    The same formula, without the scaling the subnormal range needs: with finite z no
    term is infinite, so no zero coefficient needs guarding.
    """
    e = xp.exp(-xp.abs(z))  # exp(-|z|) <= 1 cannot overflow
    shared = xp.log1p(e)
    softplus_z = xp.where(z > 0, z, 0.0) + shared  # -log(1 - sigma(z))
    softplus_minus_z = xp.where(z < 0, -z, 0.0) + shared  # -log sigma(z)
    positive = y * softplus_minus_z if p is None else (y * softplus_minus_z) * p
    loss = positive + (1.0 - y) * softplus_z  # two non-negative terms: no cancellation
    return loss if w is None else loss * w


def bce_grad_fast(
    xp: Any, z: Array, y: Array, w: Array | None, p: Array | None
) -> tuple[Array, Array]:
    """:func:`bce_grad_careful` where :func:`bce_needs_care` is false."""
    e = xp.exp(-xp.abs(z))
    r = 1.0 / (1.0 + e)
    small = e * r  # sigma(-|z|) = e / (1 + e): no 1 - sigma
    sig_z = xp.where(z >= 0, r, small)
    sig_minus_z = xp.where(z >= 0, small, r)
    a = (1.0 - y) * sig_z
    b = y * sig_minus_z if p is None else (y * sig_minus_z) * p
    d, scale = a - b, xp.where(a > b, a, b)
    if p is None:
        # Near z = 0 both terms are near y/2 and (1-y)/2 and their difference would carry
        # float64's absolute error: write sigma(z) = 1/2 + tanh(z/2)/2 instead, so that
        # sigma(z) - y = (1/2 - y) + tanh(z/2)/2, with 1/2 - y exact for y >= 1/4 and
        # |tanh(z/2)/2| < 1/4 below |z| = 1: only the true zero at z = logit(y) cancels.
        half_tanh = xp.tanh(0.5 * z) * 0.5
        offset = 0.5 - y
        near_zero = xp.abs(z) < 1.0
        d = xp.where(near_zero, offset + half_tanh, d)
        scale = xp.where(near_zero, xp.maximum(xp.abs(offset), xp.abs(half_tanh)), scale)
    if w is not None:
        d, scale = d * w, scale * xp.abs(w)
    return d, scale


def _on_subset(
    xp: Any, mask: Array, fn: Any, base: tuple[Array, ...], arrays: tuple[Array | None, ...]
) -> tuple[Array, ...]:
    """``fn(*arrays)`` where ``mask`` holds, ``base`` elsewhere; ``fn`` runs on the masked
    elements only (NumPy and torch; other namespaces run it everywhere and select)."""
    import sys

    torch = sys.modules.get("torch")
    is_torch = torch is not None and isinstance(mask, torch.Tensor)
    if not (is_torch or isinstance(mask, np.ndarray)):
        full = fn(*arrays)
        return tuple(xp.where(mask, f, b) for f, b in zip(full, base))
    shape = tuple(mask.shape)
    flat_mask = mask.reshape(-1)
    picked = [
        None
        if a is None
        else (xp.broadcast_to(a, shape) if tuple(a.shape) != shape else a).reshape(-1)[flat_mask]
        for a in arrays
    ]
    values = fn(*picked)
    out = []
    for value, b in zip(values, base):
        flat = (b.clone() if is_torch else b.copy()).reshape(-1)
        flat[flat_mask] = value
        out.append(flat.reshape(shape))
    return tuple(out)


def bce_loss_terms(xp: Any, z: Array, y: Array, w: Array | None, p: Array | None) -> Array:
    """Per-element BCE, fast where it can be and careful where it must (any namespace)."""
    loss = bce_loss_fast(xp, z, y, w, p)
    care = bce_needs_care(xp, z, y, w, p)
    if _any(xp, care):
        (loss,) = _on_subset(
            xp, care, lambda *a: (bce_loss_careful(xp, *a),), (loss,), (z, y, w, p)
        )
    return loss


def bce_grad_terms(
    xp: Any, z: Array, y: Array, w: Array | None, p: Array | None
) -> tuple[Array, Array]:
    """Per-element BCE gradient and term size, fast where it can be, careful where it must."""
    d, scale = bce_grad_fast(xp, z, y, w, p)
    care = bce_needs_care(xp, z, y, w, p)
    if _any(xp, care):
        d, scale = _on_subset(
            xp, care, lambda *a: bce_grad_careful(xp, *a), (d, scale), (z, y, w, p)
        )
    return d, scale


def _any(xp: Any, mask: Array) -> bool:
    try:
        return bool(xp.any(mask))
    except Exception:  # a JAX tracer: take the careful branch, which is always right
        return True
