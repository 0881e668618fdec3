"""JAX custom derivatives, so that ``jax.grad`` uses the accurate analytic gradients.

Without them JAX would differentiate the kernels' ``where`` branches, whose untaken
sides can carry NaN cotangents (``log`` of 0, ``inf - inf``).  Only imported once the
caller has passed a JAX array.  Under ``jit`` the exact mpmath fixups (which need
concrete values) are skipped; everything else is the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from logitlab.stable import _exact, _kernels
from logitlab.stable._backend import namespace, to_dtype, widen
from logitlab.stable._primitives import ELEMENTWISE_ULPS
from logitlab.stable._rounding import relative_bound, round_once

__all__ = ["bce_with_logits", "elementwise"]


def _xp() -> Any:
    return namespace(jnp.zeros(()))


def _name(x: Any) -> str:
    return str(x.dtype)


_ELEMENTWISE: dict[str, Callable[[Any], Any]] = {}


def _make(name: str) -> Callable[[Any], Any]:
    kernel = getattr(_kernels, name)
    derivative = getattr(_kernels, name + "_grad")

    value_exact = _exact.ELEMENTWISE[name][0]

    @jax.custom_jvp
    def f(z: Any) -> Any:
        xp = _xp()
        wide = widen(z, xp)
        out = kernel(xp, wide)
        bound = relative_bound(xp, out, ELEMENTWISE_ULPS)
        return round_once(out, _name(z), xp, bound, value_exact, [wide])

    @f.defjvp
    def f_jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        (z,), (dz,) = primals, tangents
        xp = _xp()
        slope = derivative(xp, widen(z, xp))
        return f(z), to_dtype(widen(dz, xp) * slope, _name(z), xp)

    return f


def elementwise(name: str, z: Any) -> Any:
    """The primitive ``name`` with its analytic derivative for JAX."""
    if name not in _ELEMENTWISE:
        _ELEMENTWISE[name] = _make(name)
    return _ELEMENTWISE[name](z)


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def _bce(z: Any, y: Any, w: Any, p: Any, reduction: str) -> Any:
    xp = _xp()
    wide = [None if a is None else widen(a, xp) for a in (z, y, w, p)]
    loss = _kernels.bce_loss_terms(xp, *wide)
    if reduction == "none":
        one = xp.asarray(1.0, dtype=loss.dtype)
        args = [wide[0], wide[1], one if w is None else wide[2], one if p is None else wide[3]]
        bound = relative_bound(xp, loss, 6.0)
        return round_once(loss, _name(z), xp, bound, _exact.bce, args)
    if reduction != "none":
        loss = xp.sum(loss)
        if reduction == "mean":
            loss = loss / z.size
    return to_dtype(loss, _name(z), xp)


def _bce_fwd(z: Any, y: Any, w: Any, p: Any, reduction: str) -> tuple[Any, Any]:
    return _bce(z, y, w, p, reduction), (z, y, w, p)


def _bce_bwd(reduction: str, residuals: Any, g: Any) -> tuple[Any, ...]:
    from logitlab.stable._fixup import bce_fixup, cancel_factor

    z, y, w, p = residuals
    xp = _xp()
    z64, y64 = widen(z, xp), widen(y, xp)
    w64 = None if w is None else widen(w, xp)
    p64 = None if p is None else widen(p, xp)
    g64 = widen(g, xp)
    if reduction == "mean":
        g64 = g64 / z.size
    d, scale = _kernels.bce_grad_terms(xp, z64, y64, w64, p64)
    suspect = xp.abs(d) * cancel_factor(_name(z)) < scale
    d = xp.asarray(bce_fixup(d, suspect, z64, y64, w64, p64))
    grad_z = to_dtype(g64 * d, _name(z), xp)
    sp_z = _kernels.softplus(xp, z64)
    sp_minus_z = _kernels.softplus(xp, -z64)
    # d/dy = w (p softplus(-z) - softplus(z)); d/dw = the unweighted loss; d/dp = w y softplus(-z)
    dy = -z64 if p64 is None else p64 * sp_minus_z - sp_z
    dy = dy if w64 is None else w64 * dy
    grad_y = to_dtype(g64 * dy, _name(y), xp)
    grad_w = None
    if w is not None:
        unweighted = _kernels.bce_loss_terms(xp, z64, y64, None, p64)
        grad_w = _sum_to(g64 * unweighted, w)
    grad_p = None
    if p is not None:
        dp = y64 * sp_minus_z
        grad_p = _sum_to(g64 * (dp if w64 is None else w64 * dp), p)
    return grad_z, grad_y, grad_w, grad_p


def _sum_to(g: Any, like: Any) -> Any:
    lead = g.ndim - like.ndim
    if lead > 0:
        g = jnp.sum(g, axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(like.shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = jnp.sum(g, axis=axes, keepdims=True)
    return g.reshape(like.shape).astype(like.dtype)


_bce.defvjp(_bce_fwd, _bce_bwd)


def bce_with_logits(z: Any, y: Any, w: Any, p: Any, reduction: str) -> Any:
    """BCE with logits with its analytic ``jax.grad`` (inputs already checked)."""
    return _bce(z, y, w, p, reduction)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _focal(z: Any, y: Any, alpha: float | None, gamma: float, reduction: str) -> Any:
    from logitlab.stable._focal import focal_forward

    return focal_forward(_xp(), z, y, alpha, gamma, reduction, _name(z))


def _focal_fwd(
    z: Any, y: Any, alpha: float | None, gamma: float, reduction: str
) -> tuple[Any, Any]:
    return _focal(z, y, alpha, gamma, reduction), (z, y)


def _focal_bwd(
    alpha: float | None, gamma: float, reduction: str, residuals: Any, g: Any
) -> tuple[Any, Any]:
    from logitlab.stable._focal import focal_backward

    z, y = residuals
    xp = _xp()
    g64 = jnp.broadcast_to(widen(g, xp), z.shape)
    grad = focal_backward(xp, z, y, g64, alpha, gamma, reduction, _name(z))
    return jnp.asarray(grad), jnp.zeros_like(y)


_focal.defvjp(_focal_fwd, _focal_bwd)


def focal(z: Any, y: Any, alpha: float | None, gamma: float, reduction: str) -> Any:
    """Binary focal loss with its analytic ``jax.grad`` (inputs already checked)."""
    return _focal(z, y, alpha, gamma, reduction)
