"""A fast, vectorised binary focal loss reference for the audit, proven against mpmath.

Same scheme as :mod:`logitlab.exact.fast`: float16/bfloat16/float32 inputs are evaluated
in float64, float64 inputs in x87 ``np.longdouble`` (:func:`~logitlab.exact.fast.working_format`),
with the stable pieces ``sigma(+-z)`` and ``softplus(+-z)``.  With ``u`` the working unit
roundoff, each point carries a bound on its relative error:

* the loss ``alpha_t q**gamma ce`` (``q = y sigma(-z) + (1 - y) sigma(z)``, ``ce`` the BCE
  with logits) is a product of sums of non-negative terms: at most ``(12 + 5 gamma) u``
  (``sigma`` and ``softplus`` 3u each, the sums ``ce`` and ``q`` 5u, ``q**gamma``
  ``(5 gamma + 2) u``, ``alpha_t`` 3u, two products);
* the gradient for hard targets, ``-alpha sigma(-z)**gamma (gamma sigma(z) softplus(-z) +
  sigma(-z))`` for ``y = 1`` and its mirror for ``y = 0``, has no cancellation: at most
  ``(15 + 3 gamma) u``;
* for soft targets the gradient is ``alpha_t q**(gamma - 1) (P - N)`` (see
  :mod:`logitlab.exact._focal`) and ``P - N`` can cancel: at most
  ``(16 r + 8 + 5 |gamma - 1|) u`` with ``r = max(P, N) / |P - N|``.

Points whose bound exceeds :data:`TOLERANCE` ULPs of the audited format (``2**-p``
relative, or the smallest subnormal absolute) are recomputed with the mpmath reference
(:func:`logitlab.exact._focal.focal` and ``focal_grad``) and counted in ``fallback``.  The
tests compare the result with mpmath on hard points and require :data:`TOLERANCE`.
Infinite logits give the mpmath reference's limits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logitlab.core.formats import FloatFormat, get_format
from logitlab.exact import _focal
from logitlab.exact.fast import Reference, _pieces, from_mpf, working_format

__all__ = ["TOLERANCE", "focal"]

#: ULPs of the audited format that a point's error may reach, by its own bound; points
#: above it are recomputed in mpmath.
TOLERANCE = 0.03


def _times(coef: Any, values: Any) -> np.ndarray:
    # A zero coefficient removes its term even where the term is infinite (the limit).
    with np.errstate(invalid="ignore"):
        out = coef * values
    return np.where(np.asarray(coef) == 0, np.zeros((), dtype=np.asarray(out).dtype), out)


def focal(
    logits: Any,
    targets: Any,
    dtype: str | FloatFormat,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
) -> Reference:
    """Elementwise binary focal loss (torchvision's semantics) and ``d loss_i / d z_i``.

    Inputs hold values of ``dtype`` (as float64) and broadcast together; ``value`` and
    ``grad`` are float64 arrays (longdouble for float64), ``grad_scale`` the size of the
    gradient's larger term (``max(P, N)`` times its factor) for the audit's criteria.

    >>> r = focal(np.array([0.0, 20.0]), np.array([1.0, 1.0]), "float32")
    >>> [float(v) for v in r.value], r.fallback
    ([0.04332169878499658, 2.1891276793938085e-27], 0)
    """
    fmt = get_format(dtype)
    work = working_format(fmt)
    z64 = np.asarray(logits, dtype=np.float64)
    y64 = np.asarray(targets, dtype=np.float64)
    shape = np.broadcast_shapes(z64.shape, y64.shape)
    z64 = np.broadcast_to(z64, shape)
    y64 = np.broadcast_to(y64, shape)
    z = z64.astype(work)
    y = y64.astype(work)
    one = np.ones((), dtype=work)
    g = work(gamma)
    u = float(np.finfo(work).eps) / 2
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        _, _, s, s_neg, sp, sp_neg = _pieces(z)
        if alpha is None:
            at = np.broadcast_to(one, shape)
        else:
            a = work(alpha)
            at = _times(a, y) + _times(one - a, one - y)
        ce = _times(y, sp_neg) + _times(one - y, sp)
        q = _times(y, s_neg) + _times(one - y, s)
        qg = np.power(q, g)
        value = _times(at * qg, ce)
        value_bound = np.full(shape, (12 + 5 * gamma) * u)
        infinite = np.isinf(z)
        hard1 = (y == 1) & ~infinite
        hard0 = (y == 0) & ~infinite
        soft = ~hard1 & ~hard0 & ~infinite
        grad = np.zeros(shape, dtype=work)
        scale = np.zeros(shape, dtype=work)
        grad_bound = np.full(shape, (15 + 3 * gamma) * u)
        # y = 1: -alpha s'**gamma (gamma s softplus(-z) + s'); y = 0 mirrored
        g1 = -at * np.power(s_neg, g) * (_times(g, s * sp_neg) + s_neg)
        g0 = at * np.power(s, g) * (_times(g, s_neg * sp) + s)
        grad = np.where(hard1, g1, grad)
        grad = np.where(hard0, g0, grad)
        # soft: alpha_t q**(gamma - 1) (P - N)
        common = _times(g, s * s_neg * ce)
        pos = (one - y) * (common + q * s)
        neg = y * (common + q * s_neg)
        diff = pos - neg
        factor = at * np.power(q, g - 1)
        gs = factor * diff
        grad = np.where(soft, gs, grad)
        r = np.maximum(pos, neg) / np.abs(diff)
        grad_bound = np.where(soft, (16 * r + 8 + 5 * abs(gamma - 1)) * u, grad_bound)
        scale = np.where(soft, np.abs(factor) * np.maximum(pos, neg), np.abs(grad))
        # infinite logits: the limit alpha_t q**gamma ((1 - y) s - y s')
        limit = _times(at * qg, _times(one - y, s) - _times(y, s_neg))
        grad = np.where(infinite, limit, grad)
        scale = np.where(infinite, np.abs(limit), scale)
        grad_bound = np.where(infinite, 0.0, grad_bound)
        tol = TOLERANCE * 2.0 ** (-fmt.precision)
        tiny = TOLERANCE * fmt.smallest_subnormal
        doubtful_value = ~(value_bound * np.abs(value) <= np.maximum(tol * np.abs(value), tiny))
        doubtful_value &= ~infinite
        doubtful_grad = ~(grad_bound * np.abs(grad) <= np.maximum(tol * np.abs(grad), tiny))
        doubtful_grad &= ~infinite
    fallback = 0
    for array, doubtful, fn in (
        (value, doubtful_value, _focal.focal),
        (grad, doubtful_grad, _focal.focal_grad),
    ):
        idx = np.flatnonzero(doubtful.ravel())
        if idx.size == 0:
            continue
        fallback += int(idx.size)
        zs, ys = z64.ravel()[idx], y64.ravel()[idx]
        exact = [fn(float(a), float(b), alpha, gamma) for a, b in zip(zs, ys)]
        flat = array.reshape(-1)
        flat[idx] = from_mpf(exact, work)
    return Reference(value, grad, fallback, scale)
