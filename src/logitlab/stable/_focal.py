"""Binary focal loss on logits (torchvision's ``sigmoid_focal_loss``), without cancellation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from logitlab.core.errors import InputError
from logitlab.stable import _exact
from logitlab.stable._backend import (
    as_array,
    as_extended,
    dtype_name,
    from_extended,
    is_torch,
    namespace,
    to_dtype,
    torch_outside_dynamo,
    widen,
)
from logitlab.stable._rounding import UNIT, relative_bound, round_once

__all__ = ["binary_focal_loss_with_logits", "binary_focal_loss_with_logits_grad"]

REDUCTIONS = ("none", "mean", "sum")
#: Reductions of at most this many elements are decided exactly at a near-tie.
EXACT_REDUCTION_MAX = 1 << 12

Array = Any


def _times(xp: Any, c: Array, v: Array) -> Array:
    # A zero coefficient removes its term, even where the term is infinite (z = +-inf).
    return xp.where(c == 0, 0.0, c * v)


def focal_parts(xp: Any, z: Array, y: Array, alpha: float | None, gamma: float) -> dict[str, Any]:
    """The pieces of the loss and its derivative, every one a sum of non-negative terms.

    ``s = sigma(z)``, ``t = sigma(-z)`` from ``e = exp(-|z|)`` (no ``1 - sigma``);
    ``u = 1 - p_t = y t + (1 - y) s``; ``bce = y softplus(-z) + (1 - y) softplus(z)``
    (``-log sigma`` is ``softplus(-z)``); ``a = alpha_t = alpha y + (1 - alpha)(1 - y)``.
    """
    e = xp.exp(-xp.abs(z))
    r = 1.0 / (1.0 + e)
    small = e * r
    s = xp.where(z >= 0, r, small)
    t = xp.where(z >= 0, small, r)
    tail = xp.log1p(e)
    sp = xp.where(z > 0, z, 0.0) + tail  # softplus(z) = -log(1 - sigma(z))
    sp_minus = xp.where(z < 0, -z, 0.0) + tail  # softplus(-z) = -log sigma(z)
    u = _times(xp, y, t) + _times(xp, 1.0 - y, s)
    bce = _times(xp, y, sp_minus) + _times(xp, 1.0 - y, sp)
    a = xp.ones_like(z) if alpha is None else alpha * y + (1.0 - alpha) * (1.0 - y)
    weight = u**gamma if gamma != 0 else xp.ones_like(u)
    return {"s": s, "t": t, "u": u, "bce": bce, "a": a, "w": weight}


def focal_loss_kernel(xp: Any, z: Array, y: Array, alpha: float | None, gamma: float) -> Array:
    """``alpha_t (1 - p_t)**gamma BCE`` per element (float64)."""
    q = focal_parts(xp, z, y, alpha, gamma)
    return _times(xp, q["a"], _times(xp, q["w"], q["bce"]))


def focal_grad_kernel(
    xp: Any, z: Array, y: Array, alpha: float | None, gamma: float
) -> tuple[Array, Array]:
    """d loss / dz per element and the size of its terms (for the error bound).

    ``a (gamma u**(gamma-1) (1 - 2y) s t BCE + u**gamma ((1 - y) s - y t))``: for hard
    targets both terms have one sign (no cancellation); soft targets pass through zero.
    """
    q = focal_parts(xp, z, y, alpha, gamma)
    s, t, u, bce = q["s"], q["t"], q["u"], q["bce"]
    positive_u = u > 0
    safe_u = xp.where(positive_u, u, 1.0)
    slope = (1.0 - 2.0 * y) * (s * t)
    if gamma == 0:
        first = xp.zeros_like(u)
    else:
        # u**(gamma - 1) s t: where u underflows to 0 (a hard target on a saturated,
        # correct logit) the term's limit is 0.
        first = xp.where(positive_u, gamma * safe_u ** (gamma - 1.0) * _times(xp, slope, bce), 0.0)
    plus = _times(xp, 1.0 - y, s)
    minus = _times(xp, y, t)
    second_plus, second_minus = q["w"] * plus, q["w"] * minus
    d = q["a"] * (first + (second_plus - second_minus))
    scale = xp.abs(q["a"]) * (xp.abs(first) + second_plus + second_minus)
    return d, scale


def _check(
    logits: Any, targets: Any, alpha: Any, gamma: Any, reduction: Any
) -> tuple[Any, Any, Any, float | None, float, str]:
    if reduction not in REDUCTIONS:
        raise InputError(
            "reduction", f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}"
        )
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha > 1:
            raise InputError(
                "alpha", f"must be None or a number <= 1 (negative: none), not {alpha!r}"
            )
        alpha = None if alpha < 0 else float(alpha)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma >= 0:
        raise InputError("gamma", f"must be a number >= 0, not {gamma!r}")
    if math.isinf(gamma):
        raise InputError("gamma", "must be finite")
    xp = namespace(logits, targets)
    z = as_array(logits, xp, "logits")
    y = as_array(targets, xp, "targets", like=z)
    dtype = dtype_name(z, "logits")
    dtype_name(y, "targets")
    if tuple(z.shape) != tuple(y.shape):
        raise InputError(
            "targets", f"shape {tuple(y.shape)} must be the logits' shape {tuple(z.shape)}"
        )
    return xp, z, y, alpha, float(gamma), dtype


def _loss_bound_ulps(gamma: float) -> float:
    # u within 5 ULP, so u**gamma within 5 gamma + 1; BCE within 4; two products: 2.
    return 5.0 * gamma + 8.0


def _exact_args(alpha: float | None, gamma: float) -> tuple[float, float]:
    return (math.nan if alpha is None else alpha), gamma


@torch_outside_dynamo
def binary_focal_loss_with_logits(
    logits: Any,
    targets: Any,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> Any:
    """Binary focal loss from logits (Lin et al. 2017), torchvision's definition.

    Formula, per element (``sigmoid_focal_loss`` in torchvision)::

        p_t     = p y + (1 - p)(1 - y),  p = sigma(z)
        alpha_t = alpha y + (1 - alpha)(1 - y)           (alpha=None: 1)
        loss    = alpha_t (1 - p_t)**gamma BCE(z, y)

    Why it is stable: ``1 - p_t`` is formed as ``y sigma(-z) + (1 - y) sigma(z)``, a sum
    of non-negative terms with both sigmoids taken from ``exp(-|z|)``, never as ``1 - p_t``
    (which is 0 in float32 once ``p_t`` rounds to 1, so a confident correct prediction
    loses its loss entirely, and ``(1 - p_t)**gamma`` with ``gamma < 1`` differentiates
    to NaN there); the BCE is ``y softplus(-z) + (1 - y) softplus(z)`` (the log-sigmoid
    terms), non-negative, with no ``log(p)`` of a rounded probability.

    Args:
        logits: ``z``, any shape; float16, bfloat16, float32 or float64 (NumPy, torch with
            autograd, JAX).
        targets: ``y`` in [0, 1] (hard or soft), the logits' shape.
        alpha: weight of the positive class in [0, 1]; ``None`` (or a negative number,
            torchvision's ``-1``) for no alpha weighting.  Default 0.25, as torchvision.
        gamma: focusing parameter ``>= 0`` (0 gives alpha-weighted BCE).  Default 2.
        reduction: ``"mean"`` (torchvision's default is ``"none"``), ``"sum"`` or ``"none"``.

    Returns:
        The loss in the logits' dtype.  float16/bfloat16/float32 elements are computed in
        float64 (relative error below ``(5 gamma + 8) 2**-53``) and rounded once, the
        elements within that bound of a midpoint recomputed exactly (mpmath): correctly
        rounded.  ``mean``/``sum`` are correctly rounded up to 4096 elements, beyond that
        within ``0.5 + 2**-20`` ULP.  float64 (NumPy and CPU torch): computed in x87
        extended precision where NumPy's ``longdouble`` is that (x86-64 Linux) and rounded
        once, within ``0.51`` ULP; elsewhere (JAX, CUDA, a ``longdouble`` that is binary64)
        in float64, within ``5 gamma + 8`` ULP by that bound, where the exponential's error
        enters ``gamma + 1`` times (5.1 ULP measured at ``z = -13.13``, ``gamma = 2``).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> print(stable.binary_focal_loss_with_logits(np.float32([20.0]), np.float32([1.0])))
    2.1891277e-27
    """
    xp, z, y, alpha, gamma, dtype = _check(logits, targets, alpha, gamma, reduction)
    if is_torch(z):
        from logitlab.stable import _torch_autograd

        return _torch_autograd.focal(z, y, alpha, gamma, reduction)
    if str(getattr(xp, "__name__", "")).startswith("jax"):
        from logitlab.stable import _jax_autograd

        return _jax_autograd.focal(z, y, alpha, gamma, reduction)
    with np.errstate(all="ignore"):
        return focal_forward(xp, z, y, alpha, gamma, reduction, dtype)


def focal_forward(
    xp: Any, z: Any, y: Any, alpha: float | None, gamma: float, reduction: str, dtype: str
) -> Any:
    """The rounded loss for any namespace (the autograd wrappers call this too)."""
    wide = as_extended(z, y) if dtype == "float64" else None
    if wide is not None:
        # float64 in x87 extended precision, rounded once: within 0.5 ULP + (5 gamma + 8)
        # 2**-64 relative (with the 4096-element sums' log2 n more)
        loss = focal_loss_kernel(np, wide[0], wide[1], alpha, gamma)
        if reduction != "none":
            loss = np.sum(loss) / (loss.size if reduction == "mean" else 1)
        return from_extended(loss, z)
    z64, y64 = widen(z, xp), widen(y, xp)
    loss = focal_loss_kernel(xp, z64, y64, alpha, gamma)
    ulps = _loss_bound_ulps(gamma)
    exact_args = _exact_args(alpha, gamma)
    if reduction == "none":
        bound = relative_bound(xp, loss, ulps)
        return round_once(
            loss, dtype, xp, bound, lambda a, b: _exact.focal(a, b, *exact_args), [z64, y64]
        )
    n = int(np.prod(tuple(int(d) for d in z.shape)))
    total = xp.sum(loss)
    if reduction == "mean":
        total = total / n
    if n > EXACT_REDUCTION_MAX:
        return to_dtype(total, dtype, xp)
    bound = relative_bound(xp, total, ulps + math.log2(max(n, 1)) + 3)
    zs = np.asarray(z64, dtype=np.float64).reshape(-1)
    ys = np.asarray(y64, dtype=np.float64).reshape(-1)

    def exact_total() -> Any:
        from logitlab.core.mp import mp_context

        ctx = mp_context()
        s = ctx.fsum(_exact.focal(float(a), float(b), *exact_args) for a, b in zip(zs, ys))
        return s / n if reduction == "mean" else s

    try:
        return round_once(total, dtype, xp, bound, exact_total, [])
    except TypeError:  # a tracer (jit): no values for the exact fallback
        return to_dtype(total, dtype, xp)


def focal_backward(
    xp: Any,
    z: Any,
    y: Any,
    g: Any,
    alpha: float | None,
    gamma: float,
    reduction: str,
    dtype: str,
) -> Any:
    """``g * d loss / d z`` rounded to ``dtype``; ``g`` the incoming gradient (float64)."""
    n = int(np.prod(tuple(int(d) for d in z.shape)))
    divisor = n if reduction == "mean" else 1
    wide = as_extended(z, y, g) if dtype == "float64" else None
    if wide is not None:
        d_ld, _ = focal_grad_kernel(np, wide[0], wide[1], alpha, gamma)
        return from_extended(wide[2] * d_ld / divisor, z)
    z64, y64 = widen(z, xp), widen(y, xp)
    d, scale = focal_grad_kernel(xp, z64, y64, alpha, gamma)
    v = g * d / divisor if divisor != 1 else g * d
    ulps = _loss_bound_ulps(gamma) + 4
    bound = xp.abs(g) * scale * (ulps * UNIT) / divisor + xp.abs(v) * (3 * UNIT) + 2.0**-1000
    exact_args = _exact_args(alpha, gamma)

    def exact(gg: float, a: float, b: float) -> Any:
        from logitlab.core.mp import mp_context

        ctx = mp_context()
        if gg == 0:
            return ctx.mpf(0)
        return ctx.mpf(gg) * _exact.focal_grad(a, b, *exact_args) / divisor

    return round_once(v, dtype, xp, bound, exact, [g, z64, y64])


@torch_outside_dynamo
def binary_focal_loss_with_logits_grad(
    logits: Any,
    targets: Any,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> Any:
    """Gradient of :func:`binary_focal_loss_with_logits` with respect to the logits.

    Formula, per element, with ``s = sigma(z)``, ``t = sigma(-z)``, ``u = 1 - p_t``::

        d loss / dz = alpha_t (gamma u**(gamma - 1) (1 - 2y) s t BCE + u**gamma (s - y))

    with ``s - y`` as ``(1 - y) s - y t`` and ``u**(gamma-1) s t`` taken as 0 where ``u``
    underflows (its limit).  For hard targets both terms have the same sign, so nothing
    cancels; soft targets pass through zero, where float64 keeps an absolute error below
    ``(5 gamma + 12) 2**-53`` times the terms' size, and the narrow-format elements within
    that bound of a midpoint are recomputed exactly: float16/bfloat16/float32 are
    correctly rounded.  Divided by the number of elements for ``mean``; ``none`` gives
    the elementwise derivative.

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.binary_focal_loss_with_logits_grad(
    ...     np.float32([-3.0, 3.0]), np.float32([1.0, 0.0]), reduction="none")
    array([-0.28168747,  0.84506243], dtype=float32)
    """
    xp, z, y, alpha, gamma, dtype = _check(logits, targets, alpha, gamma, reduction)
    if is_torch(z):
        import torch

        zg = z.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = binary_focal_loss_with_logits(zg, y.detach(), alpha, gamma, reduction)
            (grad,) = torch.autograd.grad(loss, zg, torch.ones_like(loss))
        return grad
    with np.errstate(all="ignore"):
        g = xp.ones_like(widen(z, xp))
        return focal_backward(xp, z, y, g, alpha, gamma, reduction, dtype)
