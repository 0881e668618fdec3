"""Binary cross-entropy with logits, and its gradient, written so that nothing cancels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from logitlab.core.errors import InputError
from logitlab.stable import _exact, _kernels
from logitlab.stable._backend import (
    as_array,
    dtype_name,
    is_torch,
    namespace,
    to_dtype,
    torch_outside_dynamo,
    widen,
)
from logitlab.stable._rounding import UNIT, fix_flagged, relative_bound, round_once

#: Reductions of at most this many elements are decided exactly at a near-tie.
EXACT_REDUCTION_MAX = 1 << 12

__all__ = ["binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad"]

REDUCTIONS = ("none", "mean", "sum")


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in x.shape)


def _check(
    z: Any, y: Any, weight: Any, pos_weight: Any, reduction: Any
) -> tuple[Any, Any, Any, Any, Any, str]:
    """Arrays in one namespace, dtypes and shapes checked once; names each bad argument."""
    if reduction not in REDUCTIONS:
        raise InputError(
            "reduction", f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}"
        )
    xp = namespace(z, y, weight, pos_weight)
    z = as_array(z, xp, "z")
    y = as_array(y, xp, "y", like=z)
    w = None if weight is None else as_array(weight, xp, "weight", like=z)
    p = None if pos_weight is None else as_array(pos_weight, xp, "pos_weight", like=z)
    dtype = dtype_name(z, "z")
    dtype_name(y, "y")
    if _shape(y) != _shape(z):
        raise InputError(
            "y", f"shape {_shape(y)} must be the logits' shape {_shape(z)} (as in PyTorch)"
        )
    for argument, value in (("weight", w), ("pos_weight", p)):
        if value is None:
            continue
        dtype_name(value, argument)
        try:
            ok = np.broadcast_shapes(_shape(value), _shape(z)) == _shape(z)
        except ValueError:
            ok = False
        if not ok:
            raise InputError(
                argument,
                f"shape {_shape(value)} does not broadcast to the logits' shape {_shape(z)}",
            )
    return xp, z, y, w, p, dtype


@torch_outside_dynamo
def binary_cross_entropy_with_logits(
    z: Any,
    y: Any,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> Any:
    """Binary cross-entropy from logits, with no cancellation anywhere.

    Formula, per element (PyTorch's definition, including ``weight`` and ``pos_weight``)::

        loss = w * (p * y * softplus(-z) + (1 - y) * softplus(z))
        softplus(z) = max(z, 0) + log1p(exp(-|z|))

    which equals ``-w * (p * y * log sigma(z) + (1 - y) * log(1 - sigma(z)))``.  For
    targets in [0, 1] and non-negative weights both terms are non-negative, so their sum
    keeps full relative accuracy.  PyTorch computes ``(1 - y) z - log_sigmoid(z)`` (with
    ``pos_weight``, ``(1 - y) z + (1 + (p - 1) y) softplus(-z)``), a difference that cancels
    when ``y`` is small and ``z`` very negative: float32, ``z = -30``, ``y = 1e-10`` gives
    0.0 there, exact 3.0000936e-09.

    Args:
        z: logits, shape ``S``; float16, bfloat16, float32 or float64 (NumPy, torch with
            autograd, JAX), or Python numbers.
        y: targets in [0, 1] (hard or soft), shape ``S``.
        weight: optional per-element weight, broadcastable to ``S``.
        pos_weight: optional weight of the positive term, broadcastable to ``S`` (usually
            shape ``(C,)`` for ``C`` classes on the last axis).
        reduction: ``"mean"`` (sum over all elements divided by their number, as PyTorch
            does, not by the sum of the weights), ``"sum"`` or ``"none"``.

    Returns:
        The loss in ``z``'s dtype: a 0-d array for ``mean``/``sum``, shape ``S`` for
        ``none``.  float16/bfloat16/float32 are computed in float64 and rounded once,
        the elements within the float64 error bound of a midpoint recomputed exactly
        (mpmath): correctly rounded for ``none``, and for ``mean``/``sum`` of up to 4096
        elements (larger: the float64 sum, within ``(log2 n + 8) 2**-53`` relative,
        rounded once).  Without weights the eager path computes ``softplus(z) - z y``
        (``z y`` exact in float64 for narrow inputs) in cache-sized chunks, and falls back
        to the two-term form when its cancellation bound is too loose.  float64: the
        worst-case bound from the steps is 5 ULP
        per element (softplus 3, products and sum 2); tested within 4 ULP (hypothesis
        against mpmath, measured at most 2.6), and the sum of non-negative terms keeps
        that up to the reduction's own rounding.  Infinite
        logits give the limits (a zero coefficient removes its infinite term).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> z, y = np.float32([-30.0]), np.float32([1e-10])
    >>> float(stable.binary_cross_entropy_with_logits(z, y))
    3.0000935069551815e-09
    """
    xp, z, y, w, p, dtype = _check(z, y, weight, pos_weight, reduction)
    if is_torch(z):
        from logitlab.stable import _torch_autograd

        return _torch_autograd.bce_with_logits(z, y, w, p, reduction)
    if _is_jax(xp):
        from logitlab.stable import _jax_autograd

        return _jax_autograd.bce_with_logits(z, y, w, p, reduction)
    if _numpy_fast(z, y, w, p) and reduction != "none":
        with np.errstate(all="ignore"):
            fast = _numpy_fast_loss(z, y, reduction)
        if fast is not None:
            return fast
    wide = [None if a is None else widen(a, xp) for a in (z, y, w, p)]
    with np.errstate(all="ignore"):
        loss = _kernels.bce_loss_terms(xp, *wide)
        if reduction == "none":
            bound = relative_bound(xp, loss, 6.0)
            args = [wide[0], wide[1], _one(wide[2]), _one(wide[3])]
            return round_once(loss, dtype, xp, bound, _exact.bce, args)
        loss = xp.sum(loss)
        if reduction == "mean":
            loss = loss / _numel(z)
    return to_dtype(loss, dtype, xp)


def _one(a: Any) -> Any:
    return np.float64(1.0) if a is None else a


#: Elements per chunk of the NumPy fast path (float64 buffers of 128 KiB, kept in cache).
CHUNK = 1 << 14


def _numpy_fast(z: Any, y: Any, w: Any, p: Any) -> bool:
    """NumPy, no weights, narrow logits and targets of one dtype (``z * y`` exact in
    float64), targets in [0, 1]."""
    if not (isinstance(z, np.ndarray) and isinstance(y, np.ndarray)) or z.size == 0:
        return False
    if w is not None or p is not None or z.dtype != y.dtype or z.dtype.itemsize > 4:
        return False
    return bool(np.min(y) >= 0) and bool(np.max(y) <= 1)


def _numpy_fast_loss(z: np.ndarray, y: np.ndarray, reduction: str) -> Any:
    """``sum(softplus(z) - z y)`` in cache-sized float64 chunks, or None (careful path).

    ``np.logaddexp(0, z)`` is ``max(z, 0) + log1p(exp(-|z|))`` (within 2 ULP), ``z y`` is
    exact, one rounding per element: each element is within ``3 u (2 |z| + 1)``.
    """
    n = z.size
    zf, yf = z.reshape(-1), y.reshape(-1)
    buf = np.empty(min(n, CHUNK))
    prod = np.empty_like(buf)
    partials = []
    for i in range(0, n, CHUNK):
        m = min(CHUNK, n - i)
        zb, tb, pb = buf[:m], prod[:m], np.empty(0)
        zb[...] = zf[i : i + m]
        np.multiply(zb, yf[i : i + m], out=tb)
        np.logaddexp(0.0, zb, out=zb)
        np.subtract(zb, tb, out=zb)
        partials.append(float(np.sum(zb)))
        del pb
    total = math.fsum(partials)
    if not math.isfinite(total):
        return None
    sum_abs = float(np.sum(np.abs(zf), dtype=np.float64))
    elements = 3 * UNIT * (2 * sum_abs + n)
    if elements > 2.0**-40 * abs(total):
        return None
    # NumPy's pairwise sum of each chunk: within (log2 CHUNK + 2) u of the chunk's sum.
    bound = elements + (math.log2(CHUNK) + 3) * UNIT * abs(total) + n * 2.0**-1000
    value = total
    if reduction == "mean":
        value, bound = total / n, bound / n + UNIT * abs(total / n)
    name = dtype_name(z, "z")
    if n > EXACT_REDUCTION_MAX:
        return to_dtype(np.float64(value), name, np)

    def exact_sum() -> Any:
        from logitlab.core.mp import mp_context

        ctx = mp_context()
        total = ctx.fsum(_exact.bce(float(a), float(b)) for a, b in zip(zf, yf))
        return total / n if reduction == "mean" else total

    return round_once(np.float64(value), name, np, np.float64(bound), exact_sum, [])


def _numpy_fast_grad(z: np.ndarray, y: np.ndarray, reduction: str) -> Any:
    """``(sigma(z) - y) / n`` in float64 chunks, correctly rounded: ``1 / (1 + exp(-z))``
    is within 3 ULP, so ``g (sigma(z) - y)`` is within ``6 u |g|`` (absolute, both terms
    at most 1); elements within that of a midpoint are recomputed exactly."""
    n = z.size
    name = dtype_name(z, "z")
    divisor = n if reduction == "mean" else 1
    g = 1.0 / divisor
    bound = abs(g) * 6 * UNIT + 2.0**-1000
    zf, yf = z.reshape(-1), y.reshape(-1)
    out = np.empty(n, dtype=z.dtype)
    buf = np.empty(min(n, CHUNK))
    ybuf = np.empty(min(n, CHUNK))
    high = np.empty(min(n, CHUNK), dtype=z.dtype)
    hard = []
    narrow32 = z.dtype == np.float32
    for i in range(0, n, CHUNK):
        m = min(CHUNK, n - i)
        tb, hb, ob = buf[:m], high[:m], out[i : i + m]
        np.negative(zf[i : i + m], out=tb)
        np.exp(tb, out=tb)
        tb += 1.0
        np.divide(g, tb, out=tb)  # g sigma(z)
        yb = ybuf[:m]
        yb[...] = yf[i : i + m]  # float64: g * y must not round to the targets' dtype
        if divisor != 1:
            yb *= g
        tb -= yb
        if narrow32:
            np.subtract(tb, bound, out=ob, casting="same_kind")
            np.add(tb, bound, out=hb, casting="same_kind")
        else:
            ob[...] = to_dtype(tb - bound, name, np)
            hb[...] = to_dtype(tb + bound, name, np)
        if not np.array_equal(ob, hb):
            hard.append(i)
    if hard:
        flagged = np.zeros(n, dtype=bool)
        for i in hard:
            m = min(CHUNK, n - i)
            zb = zf[i : i + m].astype(np.float64)
            v = g / (1.0 + np.exp(-zb)) - g * yf[i : i + m].astype(np.float64)
            flagged[i : i + m] = out[i : i + m] != to_dtype(v + bound, name, np)
        exact = _exact.bce_grad_times(divisor)
        out = fix_flagged(out, flagged, name, exact, [np.float64(1.0), zf, yf])
    return out.reshape(z.shape)


def _is_jax(xp: Any) -> bool:
    return str(getattr(xp, "__name__", "")).startswith("jax")


def _numel(x: Any) -> int:
    n = 1
    for d in _shape(x):
        n *= d
    return n


@torch_outside_dynamo
def binary_cross_entropy_with_logits_grad(
    z: Any,
    y: Any,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> Any:
    """Gradient of :func:`binary_cross_entropy_with_logits` with respect to the logits.

    Formula, per element: ``w * ((1 - y) * sigma(z) - p * y * sigma(-z))`` (``sigma(z) - y``
    without weights), divided by the number of elements for ``mean``; for ``none`` it is
    the elementwise derivative (what ``backward(ones)`` gives).  ``sigma(z)`` and
    ``sigma(-z)`` are both formed from ``exp(-|z|)``, never as ``1 - sigma``.

    The difference of the two terms is ill-conditioned near ``z = log(p y / (1 - y))``
    (``= logit(y)`` without pos_weight), where the gradient passes through zero.  For
    float16/bfloat16/float32 every element's float64 value carries an absolute bound
    (``10 u max(a, b) + 3 u |d|``, ``u = 2**-53``); the elements with a midpoint of the
    format within it (near-ties, and the cancelling elements near the zero crossing) are
    recomputed exactly, so every element is correctly rounded.  For float64 the error is within
    4 ULP away from that region (hard targets everywhere) and, in it, the absolute error
    is below ``2**-50 * |w| * max((1 - y) sigma(z), p y sigma(-z))`` per element.

    Args:
        z, y, weight, pos_weight, reduction: as for
            :func:`binary_cross_entropy_with_logits`.

    Returns:
        ``d loss / d z``, shape and dtype of ``z``.

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.binary_cross_entropy_with_logits_grad(
    ...     np.float32([20.0, -2.0]), np.float32([0.3, 0.7]), reduction="none")
    array([ 0.7      , -0.5807971], dtype=float32)
    """
    xp, z, y, w, p, dtype = _check(z, y, weight, pos_weight, reduction)
    if is_torch(z):
        import torch

        zg = z.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = binary_cross_entropy_with_logits(zg, y.detach(), w, p, reduction)
            (grad,) = torch.autograd.grad(loss, zg, torch.ones_like(loss))
        return grad
    if _numpy_fast(z, y, w, p):
        with np.errstate(all="ignore"):
            return _numpy_fast_grad(z, y, reduction)
    wide = [None if a is None else widen(a, xp) for a in (z, y, w, p)]
    divisor = _numel(z) if reduction == "mean" else 1
    with np.errstate(all="ignore"):
        d, scale = _kernels.bce_grad_terms(xp, *wide)
        if reduction == "mean":
            d, scale = d / divisor, scale / divisor
        d = xp.broadcast_to(d, _shape(z)) if _shape(d) != _shape(z) else d
        bound = scale * (10 * UNIT) + xp.abs(d) * (3 * UNIT) + 2.0**-1000
        args = [np.float64(1.0), wide[0], wide[1], _one(wide[2]), _one(wide[3])]
        return round_once(d, dtype, xp, bound, _exact.bce_grad_times(divisor), args)
