"""Exact (mpmath) values for the few elements :mod:`._rounding` must decide exactly.

The BCE, sigmoid, log_sigmoid and softplus references are :mod:`logitlab.exact`'s; the
others are written here.  All take Python floats and return an ``mpf`` at the working
precision (160 bits), the limits at infinities.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from logitlab import exact
from logitlab.core.mp import mp_context

__all__ = ["ELEMENTWISE", "bce", "bce_grad", "focal", "focal_grad", "scaled"]

bce = exact.bce
bce_grad = exact.bce_grad


def bce_grad_times(divisor: int) -> Callable[..., Mpf]:
    """``(g, z, y[, w, p]) -> g * bce_grad(z, y, w, p) / divisor``, exactly."""

    def out(g: float, *args: float) -> Mpf:
        ctx = mp_context()
        return ctx.mpf(g) * exact.bce_grad(*args) / divisor if g != 0 else ctx.mpf(0)

    return out


Mpf = Any


def logit(p: float) -> Mpf:
    ctx = mp_context()
    if p == 0:
        return -ctx.inf
    if p == 1:
        return ctx.inf
    x = ctx.mpf(p)
    return ctx.log(x / (1 - x))


def logit_grad(p: float) -> Mpf:
    ctx = mp_context()
    x = ctx.mpf(p)
    return 1 / (x * (1 - x))


def log1mexp(a: float) -> Mpf:
    ctx = mp_context()
    if a == 0:
        return -ctx.inf
    if math.isinf(a):
        return ctx.mpf(0)
    x = ctx.mpf(a)
    return ctx.log(-ctx.expm1(-x)) if x < 1 else ctx.log1p(-ctx.exp(-x))


def log1mexp_grad(a: float) -> Mpf:
    ctx = mp_context()
    if math.isinf(a):
        return ctx.mpf(0)
    return 1 / ctx.expm1(ctx.mpf(a))


#: name -> (value, derivative), each a function of one float.
ELEMENTWISE: dict[str, tuple[Callable[[float], Mpf], Callable[[float], Mpf]]] = {
    "sigmoid": (exact.sigmoid, exact.sigmoid_grad),
    "log_sigmoid": (exact.log_sigmoid, exact.log_sigmoid_grad),
    "softplus": (exact.softplus, exact.softplus_grad),
    "logit": (logit, logit_grad),
    "log1mexp": (log1mexp, log1mexp_grad),
}


def scaled(fn: Callable[..., Mpf]) -> Callable[..., Mpf]:
    """``(g, *args) -> g * fn(*args)``, exactly (a backward's incoming gradient ``g``)."""

    def out(g: float, *args: float) -> Mpf:
        value = fn(*args)
        return value * mp_context().mpf(g) if g != 0 else mp_context().mpf(0)

    return out


def _focal_parts(z: float, y: float, alpha: float, gamma: float) -> tuple[Mpf, ...]:
    ctx = mp_context()
    s, s_minus = exact.sigmoid(z), exact.sigmoid(-z)
    y_ = ctx.mpf(y)
    # 1 - p_t = y sigma(-z) + (1 - y) sigma(z): two non-negative terms
    u = _times(y_, s_minus) + _times(1 - y_, s)
    bce = exact.bce(z, y)
    a = ctx.mpf(1) if math.isnan(alpha) else alpha * y_ + (1 - alpha) * (1 - y_)
    return a, u, bce, s, s_minus, y_


def _times(c: Mpf, v: Mpf) -> Mpf:
    return c * v if c != 0 else c


def focal(z: float, y: float, alpha: float, gamma: float) -> Mpf:
    """``alpha_t (1 - p_t)**gamma BCE(z, y)``; ``alpha`` NaN means no alpha weighting."""
    a, u, bce, *_ = _focal_parts(z, y, alpha, gamma)
    weight = u**gamma if gamma != 0 else 1
    return _times(a, _times(weight, bce))


def focal_grad(z: float, y: float, alpha: float, gamma: float) -> Mpf:
    """d focal / dz = a (gamma u**(gamma-1) (1-2y) s s' BCE + u**gamma (s - y)), with
    precision raised until the difference keeps 140 bits (soft targets cancel)."""
    ctx = mp_context()
    saved = ctx.prec
    try:
        prec = saved
        while True:
            ctx.prec = prec
            a, u, bce, s, s_minus, y_ = _focal_parts(z, y, alpha, gamma)
            if u == 0:
                return ctx.mpf(0)
            t1 = gamma * u ** (gamma - 1) * (1 - 2 * y_) * s * s_minus
            t1 = _times(t1, bce) if t1 != 0 else t1
            t2 = u**gamma * (_times(1 - y_, s) - _times(y_, s_minus))
            d = t1 + t2
            scale = max(abs(t1), abs(t2))
            if scale == 0 or (d != 0 and prec - int(ctx.log(scale / abs(d), 2)) >= 140):
                return a * d
            if prec > 1 << 14:
                return a * d
            prec *= 2
    finally:
        ctx.prec = saved
