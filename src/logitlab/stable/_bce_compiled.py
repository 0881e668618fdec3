"""The compiled BCE fast path: the loss, its gradient and their checks in float64.

The common case, ``binary_cross_entropy_with_logits(z, y)`` with no ``weight`` or
``pos_weight``, logits and targets of the same narrow dtype (float16, bfloat16 or float32)
and reduction ``"mean"`` or ``"sum"``, runs as compiled kernels (one pass for
the loss, one for the gradient: inductor's single fused kernel for both measured slower
than the two) that read ``z`` and ``y`` and, in float64,

* sum the per-element losses ``(max(z, 0) - z y) + log1p(exp(-|z|))`` (two
  non-negative terms: nothing cancels; ``z y`` is exact, both being narrow);
* when the logits need a gradient, form ``d = sigma(z) - y`` and ``v = d g / N`` for
  the incoming gradient ``g = 1`` (``loss.backward()``), round ``v`` once to the dtype
  and check it: an element whose error bound contains a midpoint of the dtype (a
  near-tie) is written as NaN and counted;
* check that every logit is finite and every target in [0, 1] (otherwise the general
  kernels run instead: nothing here is then used).

The counted elements (a few per 10**7 for random soft targets) are then found and
recomputed exactly (mpmath), so every gradient element is correctly rounded.  The
backward returns that gradient when ``g`` is 1 (the usual ``loss.backward()``: no second
pass); for any other ``g`` it runs the gradient kernel again.  float64's
``log1p`` is the costliest function of the pass, so :func:`log1p_unit` evaluates it with
multiplications, additions and one division, which inductor vectorises.

Bounds are in units of ``u = 2**-53`` and assume ``exp`` within 1 ULP (glibc's and
SLEEF's u10, CUDA's) and correctly rounded division (IEEE).

float32 on the CPU runs the same pass as one C kernel instead (:mod:`._native`, the
source ``_native.c`` with its own bounds: each loss within 10 u), which measured
about twice as fast as inductor's two kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from logitlab.stable import _native
from logitlab.stable._backend import to_dtype
from logitlab.stable._rounding import UNIT

__all__ = ["STATS", "backward", "eligible", "forward", "log1p_unit"]

#: Calls of the compiled fast path and its elements recomputed exactly (for tests and
#: the benchmark): ``forward``, ``backward`` (kernel re-run for an incoming gradient
#: other than 1), ``reused`` (the forward's gradient returned), ``exact_grads``,
#: ``declined`` (a non-finite logit or a target outside [0, 1]: general kernels).
#: ``native`` counts the passes of those run by the C kernel (:mod:`._native`),
#: ``extended_grads`` the near-ties decided in x87 extended precision (no mpmath).
STATS = {
    "forward": 0,
    "backward": 0,
    "reused": 0,
    "exact_grads": 0,
    "declined": 0,
    "native": 0,
    "extended_grads": 0,
}

_NARROW = ("float16", "bfloat16", "float32")

# 2 atanh(s) = 2 s (1 + s**2/3 + s**4/5 + ...), summed to s**20 / 21.
_ATANH = tuple(1.0 / (2 * k + 1) for k in range(11))
_LN2 = 0.6931471805599453  # log 2 rounded to float64 (error < 0.5 u log 2)

#: ``log1p_unit`` is within this many ``u`` (relative, plus ``2**-1072``) of ``log1p(e)``
#: for float64 ``e`` in [0, 1].
LOG1P_ULPS = 5.0


def eligible(z: Any, y: Any, w: Any, p: Any, reduction: str) -> bool:
    """Whether the compiled fast path applies (the range of ``y`` is checked inside)."""
    name = str(z.dtype).removeprefix("torch.")
    return (
        w is None
        and p is None
        and reduction in ("mean", "sum")
        and z.dtype == y.dtype
        and name in _NARROW
        and tuple(z.shape) == tuple(y.shape)
        and z.numel() > 0
    )


def log1p_unit(xp: Any, e: Any) -> Any:
    """``log1p(e)`` for float64 ``e`` in [0, 1], within 5 u of it (relative), plus
    ``2**-1072`` (absolute: ``s`` rounds into the subnormals for ``e < 2**-1021``).

    ``log x = 2 atanh(s)`` with ``s = (x - 1) / (x + 1)``: for ``e < 1/2``, ``x = 1 + e``
    and ``s = e / (2 + e)`` in [0, 1/5]; for ``e >= 1/2``, ``x = (1 + e) / 2`` (plus
    ``log 2``) and ``s = (e - 1) / (e + 3)`` in [-1/7, 0], with ``e - 1`` exact
    (Sterbenz).  The series to ``s**20 / 21`` leaves a relative error below
    ``0.04**11 / 23 < 0.2 u``; ``s`` carries 2 u, ``P(s**2)`` 1.3 u, ``s P`` 1 u: 4.3 u,
    and for ``e >= 1/2`` adding ``log 2`` (result at least 0.405, the term at most 0.288)
    gives 4.9 u.
    """
    upper = e >= 0.5
    s = xp.where(upper, e - 1.0, e) / xp.where(upper, e + 3.0, e + 2.0)
    t = s * s
    poly: Any = _ATANH[-1]
    for c in reversed(_ATANH[:-1]):
        poly = poly * t + c
    a = 2.0 * (s * poly)
    return xp.where(upper, a + _LN2, a)


def fused_kernel(
    xp: Any, z: Any, y: Any, gs: Any, with_loss: bool, with_grad: bool, out_name: str
) -> tuple[Any, Any, Any, Any]:
    """``(loss sum, declined count, near-tie count, gradient)`` in one pass.

    ``gs`` (a float64 0-d tensor) is ``g / N``, the incoming gradient over the mean's
    divisor.  The loss sum is float64 and the declined count the number of elements
    whose logit is not finite or whose target is outside [0, 1] (both None without
    ``with_loss``; the sum is only used when none is declined); the gradient is
    ``out_name`` with NaN at the counted near-ties (None without ``with_grad``).

    Loss: ``m - z y`` rounds once (u), ``log1p(exp(-|z|))`` is within 7 u (``exp`` 2 u,
    which ``log1p`` passes on at most as is since ``e / (1 + e) <= log1p(e)``;
    :func:`log1p_unit` 5 u) and their sum rounds once: within 8 u, all terms >= 0.

    Gradient: ``r = 1 / (1 + e)`` within 3 u and ``e r`` within 6 u (relative), so
    ``sigma(z)`` and ``sigma(-z)`` are within 3 u absolute (both at most 1, ``e r`` at
    most 1/2).  For ``y`` 0 or 1, ``d = sigma(z)`` or ``-sigma(-z)`` is within 6 u
    relative; otherwise ``d = sigma(z) - y`` is within ``3 u + u |d|``.  With
    ``gs`` within u of ``g / N`` and one more rounding, ``v = d gs`` is within
    ``|gs| (3.5 u) + 4 u |v|`` (soft) or ``9 u |v|`` (hard targets) of the exact
    ``g d / N``; the terms ``|gs| 2**-1020 + 2**-1000`` cover float64 underflow.
    """
    z64, y64 = z.double(), y.double()
    zero = z64 >= 0
    e = xp.exp(-xp.abs(z64))  # in [0, 1]: cannot overflow
    total = declined = None
    if with_loss:
        # The declined elements counted from the narrow inputs, apart from the sum: a
        # NaN put into the sum where declined (one reduction, not two) measured 1.6x
        # slower (inductor's masked float64 sum).  NaN targets are declined.
        accepted = xp.isfinite(z) & (y >= 0.0) & (y <= 1.0)
        declined = (~accepted).sum()
        loss = (xp.where(zero, z64, 0.0) - z64 * y64) + log1p_unit(xp, e)
        total = loss.sum()
    if not with_grad:
        return total, declined, None, None
    r = 1.0 / (1.0 + e)
    er = e * r
    sig_z = xp.where(zero, r, er)
    sig_minus_z = xp.where(zero, er, r)
    d = xp.where(y64 == 1.0, -sig_minus_z, sig_z - y64)
    v = d * gs
    hard = (y64 == 0.0) | (y64 == 1.0)
    bound = (
        xp.abs(gs) * (xp.where(hard, 0.0, 3.5 * UNIT) + 2.0**-1020)
        + xp.abs(v) * (9 * UNIT)
        + 2.0**-1000
    )
    low, high = to_dtype(v - bound, out_name, xp), to_dtype(v + bound, out_name, xp)
    if out_name != "float32":
        # Compared as bits: inductor otherwise compares 16-bit values at float32
        # precision (it drops the rounding of a value it upcasts again), flagging far
        # too many; float32 comparisons it keeps (a bit view would cost a scalar loop).
        low, high = low.view(xp.int16), high.view(xp.int16)
    near = low != high
    grad = xp.where(near, math.nan, to_dtype(v, out_name, xp))
    return total, declined, near.sum(), grad


def _run_native(z: Any, y: Any, gs: float, with_grad: bool) -> tuple[Any, int, Any, Any]:
    """``(loss sum, declined, near-tie indices or None, gradient)`` from the C kernel."""
    import torch

    zf, yf = z.reshape(-1).contiguous(), y.reshape(-1).contiguous()
    total, declined, index, grad = _native.bce_f32(zf, yf, gs, with_grad)
    STATS["native"] += 1
    return torch.tensor(total, dtype=torch.float64), declined, index, grad


def _run(z: Any, y: Any, gs: float, with_loss: bool, with_grad: bool) -> tuple[Any, ...]:
    import torch

    from logitlab.stable._compile import run_kernel

    name = str(z.dtype).removeprefix("torch.")
    g64 = torch.tensor(gs, dtype=torch.float64, device=z.device)
    zf, yf = z.reshape(-1), y.reshape(-1)
    return tuple(run_kernel(fused_kernel, z.numel(), zf, yf, g64, with_loss, with_grad, name))


#: Above this many bits a gradient still cancelling to 0 is taken as 0 (it cannot be:
#: ``exp(z) = y / (1 - y)`` has no solution in floats but ``z = 0``, computed exactly).
_MAX_BITS = 1 << 16


def exact_grad_times(divisor: int) -> Any:
    """``(g, z, y) -> g ((1 - y) sigma(z) - y sigma(-z)) / divisor`` (mpmath), accurate to
    the context's precision *relative to the result*, whatever the cancellation.

    :func:`logitlab.stable._rounding._exact_rounded` raises the precision until the
    rounding is decided; this starts from that precision (and restores it), so a tail
    ``exp(-|z|)`` that decides a near-tie below 2**-160 is seen (``g = 2.5`` makes
    ``-2.5 y / 4096`` a float16 midpoint which ``sigma(-111)`` decides)."""

    def out(g: float, z: float, y: float) -> Any:
        from logitlab.core.mp import mp_context

        ctx = mp_context()
        if g == 0:
            return ctx.mpf(0)
        saved = ctx.prec
        prec = saved
        try:
            while True:
                ctx.prec = prec
                zz, yy = ctx.mpf(z), ctx.mpf(y)
                a = (1 - yy) / (1 + ctx.exp(-zz)) if yy != 1 else ctx.mpf(0)
                b = yy / (1 + ctx.exp(zz)) if yy != 0 else ctx.mpf(0)
                diff = a - b
                if z == 0 or prec >= _MAX_BITS:
                    break  # z = 0: a and b are dyadic, diff is exact
                if diff != 0:
                    lost = int(ctx.log(max(abs(a), abs(b)) / abs(diff), 2)) + 1
                    if prec - lost >= saved + 8:
                        break
                    prec = min(max(2 * prec, lost + saved + 32), _MAX_BITS)
                else:
                    prec = min(2 * prec, _MAX_BITS)
            return ctx.mpf(g) * diff / divisor
        finally:
            ctx.prec = saved

    return out


#: Elements per block of the NaN search.
_BLOCK = 4096


def _nan_index(grad: Any) -> Any:
    """Indices of the NaNs in the flat ``grad``: blocks whose float sum is NaN first
    (a NaN always makes the sum NaN; an inf - inf only adds a block to search), so the
    full-size search runs on those blocks alone."""
    import torch

    n = grad.numel()
    main = n - n % _BLOCK
    found = [torch.isnan(grad[main:]).nonzero().reshape(-1) + main]
    if main:
        blocks = torch.isnan(grad[:main].view(-1, _BLOCK).sum(dim=1)).nonzero().reshape(-1)
        for b in blocks.tolist():
            part = grad[b * _BLOCK : (b + 1) * _BLOCK]
            found.append(torch.isnan(part).nonzero().reshape(-1) + b * _BLOCK)
    return torch.cat(found)


#: The x87 extended tier's bound, in units of its ``w = 2**-64``: with ``exp``
#: (glibc's ``expl``) within 1 ULP (2 w), the float64 derivation of
#: :func:`fused_kernel` with ``w`` for ``u`` gives ``|gs| 7.5 w + 3 w |v|`` (soft) or
#: ``9 w |v|`` (hard targets); this allows an ``expl`` three times worse.
_EXTENDED_W = (24.0, 32.0)


def _extended_decided(
    g: float, z: np.ndarray, y: np.ndarray, divisor: int, name: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(values, decided)``: ``g d / divisor`` rounded to ``name`` in x87 extended
    precision, where its error interval holds no rounding boundary; None where NumPy's
    ``longdouble`` is binary64.  Decides all but about ``2**-11`` of the float64 pass's
    near-ties, each of which otherwise costs an mpmath evaluation (about a millisecond)."""
    from logitlab.stable._backend import extended

    ld = extended()
    if ld is None or name != "float32":
        return None
    w = float(np.finfo(ld).eps) / 2
    with np.errstate(all="ignore"):
        zz, yy = z.astype(ld), y.astype(ld)
        e = np.exp(-np.abs(zz))
        r = ld(1) / (ld(1) + e)
        er = e * r
        positive = zz >= 0
        sig_z, sig_minus_z = np.where(positive, r, er), np.where(positive, er, r)
        d = np.where(yy == 1, -sig_minus_z, sig_z - yy)
        gs = ld(g) / ld(divisor)
        v = d * gs
        hard = (yy == 0) | (yy == 1)
        soft_w, all_w = _EXTENDED_W
        bound = (abs(gs) * np.where(hard, ld(0), ld(soft_w * w)) + np.abs(v) * ld(all_w * w)) + ld(
            2.0**-1000
        )
        low, high = (v - bound).astype(np.float32), (v + bound).astype(np.float32)
        return v.astype(np.float32).astype(np.float64), (low == high) & np.isfinite(v)


def _fix(
    grad: Any,
    count: int,
    z: Any,
    y: Any,
    g: float,
    divisor: int,
    name: str,
    index: Any = None,
) -> Any:
    """``grad`` (flat) with its ``count`` NaN near-ties recomputed: in x87 extended
    precision where that decides them, else exactly (mpmath).  ``index``: their
    positions where known (the C kernel reports them), else searched for."""
    import torch

    from logitlab.stable._rounding import _exact_rounded

    if count == 0:
        return grad
    if index is None:
        index = _nan_index(grad)
    zs = z.reshape(-1)[index].double().cpu().numpy()
    ys = y.reshape(-1)[index].double().cpu().numpy()
    values = np.empty(len(index))
    todo = np.ones(len(index), dtype=bool)
    tier = _extended_decided(g, zs, ys, divisor, name)
    if tier is not None:
        values[tier[1]] = tier[0][tier[1]]
        todo = ~tier[1]
        STATS["extended_grads"] += int(tier[1].sum())
    if todo.any():
        picked = [np.full(int(todo.sum()), g), zs[todo], ys[todo]]
        values[todo] = _exact_rounded(name, exact_grad_times(divisor), picked, len(picked[1]))
        STATS["exact_grads"] += int(todo.sum())
    grad[index] = torch.as_tensor(values, device=grad.device).to(grad.dtype)
    return grad


def _fix_reported(grad: Any, index: Any, z: Any, y: Any, g: float, divisor: int, name: str) -> Any:
    """:func:`_fix` for the C kernel's gradient: at the near-ties it reported, or, where
    it found more than it could list (``index`` None), at the NaNs searched for."""
    if index is None:
        index = _nan_index(grad)
    return _fix(grad, len(index), z, y, g, divisor, name, index)


def forward(z: Any, y: Any, reduction: str, want_grad: bool) -> tuple[Any, Any] | None:
    """``(loss sum as float64 0-d tensor, gradient for g = 1 or None)``; None where an
    element is declined (the general kernels then run)."""
    n = z.numel()
    name = str(z.dtype).removeprefix("torch.")
    divisor = n if reduction == "mean" else 1
    if _native.serves(z):
        # One pass for the loss and the gradient.
        total, declined, index, grad = _run_native(z, y, 1.0 / divisor, want_grad)
        if declined:
            STATS["declined"] += 1
            return None
        STATS["forward"] += 1
        if grad is not None:
            grad = _fix_reported(grad, index, z, y, 1.0, divisor, name).reshape(z.shape)
        return total, grad
    # Two kernels, not one: inductor's single loss-and-gradient kernel measured slower
    # (192 ms at 10**7 float32, two threads) than the two apart (42 + 62 ms).
    total, declined, _, _ = _run(z, y, 1.0 / divisor, True, False)
    if int(declined):
        STATS["declined"] += 1
        return None
    STATS["forward"] += 1
    grad = None
    if want_grad:
        _, _, count, grad = _run(z, y, 1.0 / divisor, False, True)
        grad = _fix(grad, int(count), z, y, 1.0, divisor, name).reshape(z.shape)
    return total, grad


def backward(z: Any, y: Any, g_out: Any, divisor: int) -> Any:
    """The gradient ``g d / divisor`` for a scalar incoming gradient ``g_out``."""
    name = str(z.dtype).removeprefix("torch.")
    g = float(g_out)
    STATS["backward"] += 1
    if _native.serves(z):
        _, _, index, grad = _run_native(z, y, g / divisor, True)
        return _fix_reported(grad, index, z, y, g, divisor, name).reshape(z.shape)
    _, _, count, grad = _run(z, y, g / divisor, False, True)
    return _fix(grad, int(count), z, y, g, divisor, name).reshape(z.shape)
