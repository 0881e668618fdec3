"""Exact values and derivatives for one element, in mpmath.

Every function takes the *binary* values the framework received (Python floats hold every
float16/bfloat16/float32/float64 value exactly) and returns an ``mpf`` from this thread's
context.  Infinite logits give the mathematical limits.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from logitlab.core.mp import WORKING_PRECISION, mp_context

__all__ = [
    "bce",
    "bce_grad",
    "log_sigmoid",
    "log_sigmoid_grad",
    "sigmoid",
    "sigmoid_grad",
    "softplus",
    "softplus_grad",
]

Mpf = Any  # mpmath has no type stubs

# Bits that a difference must keep after cancellation before it is trusted, and the most
# precision the adaptive gradient will try.
_GRAD_GOOD_BITS = 140
_MAX_PRECISION = 1 << 16


def sigmoid(z: float) -> Mpf:
    """sigma(z) = 1 / (1 + exp(-z)), evaluated on the side where exp cannot overflow."""
    ctx = mp_context()
    if math.isinf(z):
        return ctx.mpf(1 if z > 0 else 0)
    x = ctx.mpf(z)
    if x >= 0:
        return 1 / (1 + ctx.exp(-x))
    e = ctx.exp(x)
    return e / (1 + e)


def sigmoid_grad(z: float) -> Mpf:
    """d sigma / dz = sigma(z) * sigma(-z)."""
    if math.isinf(z):
        return mp_context().mpf(0)
    return sigmoid(z) * sigmoid(-z)


def softplus(z: float) -> Mpf:
    """softplus(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))."""
    ctx = mp_context()
    if math.isinf(z):
        return ctx.inf if z > 0 else ctx.mpf(0)
    x = ctx.mpf(z)
    if x > 0:
        return x + ctx.log1p(ctx.exp(-x))
    return ctx.log1p(ctx.exp(x))


def softplus_grad(z: float) -> Mpf:
    """d softplus / dz = sigma(z)."""
    return sigmoid(z)


def log_sigmoid(z: float) -> Mpf:
    """log sigma(z) = -softplus(-z)."""
    return -softplus(-z)


def log_sigmoid_grad(z: float) -> Mpf:
    """d log sigma / dz = sigma(-z)."""
    return sigmoid(-z)


def _times(c: Mpf, v: Mpf) -> Mpf:
    # A zero coefficient removes its term, even where the term is infinite (z = +-inf),
    # which is the limit of the loss as z grows with that target.
    return c * v if c != 0 else c


def bce(z: float, y: float, weight: float = 1.0, pos_weight: float = 1.0) -> Mpf:
    """Binary cross-entropy of one logit, PyTorch's definition with pos_weight.

    ``weight * (pos_weight * y * softplus(-z) + (1 - y) * softplus(z))``, which equals
    ``-weight * (pos_weight * y * log(sigma(z)) + (1 - y) * log(1 - sigma(z)))``.
    Both terms are non-negative for non-negative weights, so nothing cancels.
    """
    ctx = mp_context()
    y_ = ctx.mpf(y)
    loss = _times(ctx.mpf(pos_weight) * y_, softplus(-z)) + _times(1 - y_, softplus(z))
    return _times(ctx.mpf(weight), loss)


def bce_grad(z: float, y: float, weight: float = 1.0, pos_weight: float = 1.0) -> Mpf:
    """d bce / dz = weight * ((1 - y) * sigma(z) - pos_weight * y * sigma(-z)).

    The difference cancels near ``z = log(pos_weight * y / (1 - y))``, so it is evaluated
    with adaptive precision: more bits until at least 140 survive the cancellation.  At
    ``z = 0`` (the one logit where it can be exactly zero) it is computed in rationals.
    """
    if z == 0:
        half = Fraction(1, 2)
        f = Fraction(weight) * (
            (1 - Fraction(y)) * half - Fraction(pos_weight) * Fraction(y) * half
        )
        ctx = mp_context()
        return ctx.mpf(f.numerator) / f.denominator
    ctx = mp_context()
    # At the caller's precision if it raised it (round_decided does, to decide a
    # near-tie), with as many more good bits; restored afterwards.
    saved = ctx.prec
    prec = max(WORKING_PRECISION, saved)
    good = _GRAD_GOOD_BITS + (prec - WORKING_PRECISION)
    try:
        while True:
            ctx.prec = prec
            y_ = ctx.mpf(y)
            a = _times(1 - y_, sigmoid(z))
            b = _times(ctx.mpf(pos_weight) * y_, sigmoid(-z))
            diff = a - b
            scale = max(abs(a), abs(b))
            if scale == 0 or (diff == 0 and prec >= _MAX_PRECISION):
                break
            if diff != 0:
                lost = int(ctx.log(scale / abs(diff), 2)) + 1
                if prec - lost >= good:
                    break
                prec = max(2 * prec, lost + good + 32)
            else:
                prec *= 2
            if prec > _MAX_PRECISION:
                raise ArithmeticError(
                    f"bce_grad: cancellation at z={z!r}, y={y!r} beyond {_MAX_PRECISION} bits"
                )
        result = _times(ctx.mpf(weight), diff)
    finally:
        ctx.prec = saved
    return +result  # rounds to the working precision
