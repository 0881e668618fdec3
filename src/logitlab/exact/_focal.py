"""Exact focal losses in mpmath: binary (torchvision's ``sigmoid_focal_loss``) and
categorical (kornia's ``focal_loss``), with gradients with respect to the logits.

**Binary**, per element with ``s = sigma(z)``, ``s' = sigma(-z)`` (each evaluated on the
side where ``exp`` cannot overflow)::

    ce     = y softplus(-z) + (1 - y) softplus(z)          (BCE with logits)
    q      = 1 - p_t = y s' + (1 - y) s                    (never formed as 1 - p_t)
    loss   = alpha_t q**gamma ce,   alpha_t = alpha y + (1 - alpha)(1 - y)  (1 if alpha is None)

Every factor is a sum of non-negative terms, so the value keeps the working precision
(160 bits).  The derivative is ``alpha_t q**(gamma - 1) (gamma q' ce + q ce')`` with
``q' = (1 - 2y) s s'`` and ``ce' = (1 - y) s - y s'``; the bracket is ``P - N`` with

    P = gamma (1 - y) s s' ce + q (1 - y) s,    N = gamma y s s' ce + q y s',

both non-negative.  For hard targets one of them is 0 (no cancellation); for soft targets
they cancel near the loss's minimum, so the difference is recomputed with more bits until
140 survive (as :func:`logitlab.exact.bce_grad` does).  At ``z = 0`` the bracket is
``(1 - 2y)(gamma log 2 + 1) / 4`` exactly (``s = s' = 1/2``), which is used there.
Infinite logits give the limits: ``q -> y`` or ``1 - y``, ``q' ce -> 0``.

**Categorical** (kornia's convention), per sample ``n`` with label ``t`` and
``L = log_softmax(z_n)_t``, ``P = exp(L)``, ``Q = 1 - P = -expm1(L)``::

    loss_n = -alpha_t Q**gamma L,   alpha_t = 1 - alpha for t = 0, alpha otherwise (1 if None)
    d loss_n / d z_nj = alpha_t (p_j - [j = t]) Q**(gamma - 1) (Q - gamma P L)

``Q - gamma P L`` is a sum of non-negative terms and ``p_t - 1 = -Q``: nothing cancels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from logitlab.core.mp import WORKING_PRECISION, mp_context
from logitlab.exact._loss import REDUCTIONS, ExactResult, _reduce
from logitlab.exact._scalar import sigmoid, softplus
from logitlab.exact._softmax import _log_softmax

__all__ = ["binary_focal_loss", "focal", "focal_grad", "softmax_focal_loss"]

Mpf = Any

_GOOD_BITS = 140
_MAX_PRECISION = 1 << 16


def _times(c: Mpf, v: Mpf) -> Mpf:
    # A zero coefficient removes its term, even where the term is infinite (the limit).
    return c * v if c != 0 else c


def _alpha_t(ctx: Any, y: Mpf, alpha: float | None) -> Mpf:
    if alpha is None:
        return ctx.mpf(1)
    a = ctx.mpf(alpha)
    return _times(a, y) + _times(1 - a, 1 - y)


def _check(alpha: float | None, gamma: float) -> None:
    if alpha is not None and not (0 <= alpha <= 1):
        raise ValueError(f"alpha must be in [0, 1] or None, not {alpha!r}")
    if not (gamma >= 0 and math.isfinite(gamma)):
        raise ValueError(f"gamma must be a finite number >= 0, not {gamma!r}")


def focal(z: float, y: float, alpha: float | None = 0.25, gamma: float = 2.0) -> Mpf:
    """The binary focal loss of one element (see the module docstring).

    >>> round(float(focal(0.0, 1.0)), 15)  # 0.25 * (1/2)**2 * log 2
    0.043321698784997
    """
    _check(alpha, gamma)
    ctx = mp_context()
    y_ = ctx.mpf(y)
    if math.isinf(z):
        s, s_neg = (ctx.mpf(1), ctx.mpf(0)) if z > 0 else (ctx.mpf(0), ctx.mpf(1))
    else:
        s, s_neg = sigmoid(z), sigmoid(-z)
    ce = _times(y_, softplus(-z)) + _times(1 - y_, softplus(z))
    q = _times(y_, s_neg) + _times(1 - y_, s)
    weight = _alpha_t(ctx, y_, alpha) * ctx.power(q, gamma)
    return _times(weight, ce)


def focal_grad(z: float, y: float, alpha: float | None = 0.25, gamma: float = 2.0) -> Mpf:
    """``d focal / dz`` of one element, accurate to the working precision (see the module
    docstring for the formula and where it cancels)."""
    _check(alpha, gamma)
    ctx = mp_context()
    g = ctx.mpf(gamma)
    if math.isinf(z):
        # limits: s s' ce -> 0, so the derivative is alpha_t q**gamma ce'
        y_ = ctx.mpf(y)
        s, s_neg = (ctx.mpf(1), ctx.mpf(0)) if z > 0 else (ctx.mpf(0), ctx.mpf(1))
        q = _times(y_, s_neg) + _times(1 - y_, s)
        ce_grad = _times(1 - y_, s) - _times(y_, s_neg)
        return _times(_alpha_t(ctx, y_, alpha), _times(ctx.power(q, g), ce_grad))
    if z == 0:
        # s = s' = q = 1/2: alpha_t (1/2)**(gamma - 1) (1 - 2y)(gamma log 2 + 1) / 4
        y_ = ctx.mpf(y)
        one_minus_2y = ctx.fsub(1, ctx.fmul(2, y, exact=True), exact=True)
        bracket = one_minus_2y * (g * ctx.ln2 + 1) / 4
        return _times(_alpha_t(ctx, y_, alpha), ctx.power(ctx.mpf(0.5), g - 1) * bracket)
    # At the caller's precision if it raised it (round_decided does, to decide a
    # near-tie), with as many more good bits; restored afterwards.
    saved = ctx.prec
    prec = max(WORKING_PRECISION, saved)
    good = _GOOD_BITS + (prec - WORKING_PRECISION)
    try:
        while True:
            ctx.prec = prec
            y_ = ctx.mpf(y)
            g = ctx.mpf(gamma)
            s, s_neg = sigmoid(z), sigmoid(-z)
            ce = _times(y_, softplus(-z)) + _times(1 - y_, softplus(z))
            q = _times(y_, s_neg) + _times(1 - y_, s)
            common = g * s * s_neg * ce
            pos = _times(1 - y_, common + q * s)
            neg = _times(y_, common + q * s_neg)
            diff = pos - neg
            scale = max(abs(pos), abs(neg))
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
                    f"focal_grad: cancellation at z={z!r}, y={y!r} beyond {_MAX_PRECISION} bits"
                )
        result = _alpha_t(ctx, y_, alpha) * ctx.power(q, g - 1) * diff
    finally:
        ctx.prec = saved
    return +result


def binary_focal_loss(
    logits: Any,
    targets: Any,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> ExactResult:
    """Exact binary focal loss from logits, torchvision's ``sigmoid_focal_loss`` semantics
    (``alpha=None`` is torchvision's ``alpha < 0``: no weighting), and its gradient.

    ``mean`` divides the sum by the number of elements.  Inputs are the values the
    framework received; ``alpha`` and ``gamma`` are taken as the float64 values given.

    >>> r = binary_focal_loss([0.0], [1.0])
    >>> round(float(r.values[0]), 15), round(float(r.grads[0]), 15)
    (0.043321698784997, -0.074571698784997)
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    _check(alpha, gamma)
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    shape = np.broadcast_shapes(z.shape, y.shape)
    pairs = [
        (float(a), float(b))
        for a, b in zip(np.broadcast_to(z, shape).ravel(), np.broadcast_to(y, shape).ravel())
    ]
    values = [focal(a, b, alpha, gamma) for a, b in pairs]
    grads = [focal_grad(a, b, alpha, gamma) for a, b in pairs]
    return _reduce(values, grads, shape, reduction)


def softmax_focal_loss(
    logits: Any,
    labels: Any,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> ExactResult:
    """Exact categorical focal loss, kornia's ``focal_loss`` convention for ``alpha``
    (class 0 weighted by ``1 - alpha``, every other class by ``alpha``; ``None``: 1).

    ``logits`` is ``(N, C)``, ``labels`` ``(N,)`` class indices.  ``none`` gives one value
    per sample (kornia's ``none`` returns an ``(N, C)`` map holding these values at the
    target class and 0 elsewhere); ``mean`` divides the sum by ``N`` (kornia's by ``N C``);
    ``grads`` has the logits' shape.

    >>> r = softmax_focal_loss([[0.0, 0.0]], [1], alpha=None, gamma=0.0)
    >>> round(float(r.values[0]), 15)  # plain cross-entropy: log 2
    0.693147180559945
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    _check(alpha, gamma)
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(labels).astype(np.int64).ravel()
    if z.ndim != 2 or t.shape[0] != z.shape[0]:
        raise ValueError(f"logits must be (N, C) and labels (N,); got {z.shape} and {t.shape}")
    ctx = mp_context()
    g = ctx.mpf(gamma)
    values: list[Mpf] = []
    grads: list[Mpf] = []
    for row, label in zip(z, t.tolist()):
        if not 0 <= label < z.shape[1]:
            raise ValueError(f"label {label} is not a class of {z.shape[1]}")
        a = ctx.mpf(1) if alpha is None else ctx.mpf(1 - alpha if label == 0 else alpha)
        logp = _log_softmax(ctx, _row(row))
        lt = logp[label]
        p_t = ctx.exp(lt)
        q = -ctx.expm1(lt)
        values.append(_times(a, -_times(ctx.power(q, g), lt)))
        if q == 0:
            grads += [ctx.mpf(0)] * z.shape[1]
            continue
        factor = a * ctx.power(q, g - 1) * (q - _times(g, p_t * lt))
        for j, lj in enumerate(logp):
            grads.append(-factor * q if j == label else factor * ctx.exp(lj))
    shape: tuple[int, ...] = (z.shape[0],)
    if reduction == "none":
        return ExactResult(tuple(values), tuple(grads), shape, tuple(z.shape))
    total = ctx.fsum(values)
    if reduction == "sum":
        return ExactResult((total,), tuple(grads), (), tuple(z.shape))
    n = z.shape[0]
    return ExactResult((total / n,), tuple(gr / n for gr in grads), (), tuple(z.shape))


def _row(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values]
