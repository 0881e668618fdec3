"""Exact recomputation of the rare BCE gradients that cancel beyond float64's reach.

The gradient ``w ((1 - y) sigma(z) - p y sigma(-z))`` is a difference of two terms, each
within a few float64 ULP; near ``z = log(p y / (1 - y))`` they agree to many bits and the
difference's relative error grows as ``2**-50 * max(a, b) / |d|``.  For a result in a
format of precision ``P`` bits, we want that below a quarter of an ULP, ``2**-(P + 2)``:
so the elements where ``|d| * 2**(48 - P) < max(a, b)`` are recomputed exactly (mpmath,
:func:`logitlab.exact.bce_grad`).  For random data they are about one in ``2**(48 - P)``
(one in 16 million for float32); for adversarial data (a logit placed right at
``logit(y)``) they are each recomputed, at some 30 microseconds apiece.

float64 results cannot be rescued this way without making every element exact, so they
are never flagged; their absolute error is documented instead.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from logitlab.stable._backend import is_torch

__all__ = ["bce_fixup", "cancel_factor", "softmax_rows_fixup"]

_PRECISION = {"float16": 11, "bfloat16": 8, "float32": 24}


def cancel_factor(name: str) -> float:
    """``2**(48 - P)`` for a format of precision ``P``; ``inf`` (never flag) for float64."""
    precision = _PRECISION.get(name)
    return math.inf if precision is None else float(2 ** (48 - precision))


def _exact_values(z: np.ndarray, y: np.ndarray, w: np.ndarray, p: np.ndarray) -> np.ndarray:
    from logitlab.exact import bce_grad

    return np.array(
        [float(bce_grad(float(a), float(b), float(c), float(e))) for a, b, c, e in zip(z, y, w, p)],
        dtype=np.float64,
    )


def _broadcast_pick(values: Any, shape: tuple[int, ...], index: Any, fill: float) -> np.ndarray:
    if values is None:
        return np.full(len(index), fill)
    if is_torch(values):
        picked = values.double().broadcast_to(shape).reshape(-1)[index]
        return np.asarray(picked.cpu().numpy(), dtype=np.float64)
    return np.broadcast_to(np.asarray(values, dtype=np.float64), shape).reshape(-1)[index]


def bce_fixup(d: Any, suspect: Any, z: Any, y: Any, w: Any, p: Any) -> Any:
    """``d`` with the ``suspect`` elements replaced by the exact gradient (as float64)."""
    shape = tuple(d.shape)
    if is_torch(d):
        import torch

        if not bool(suspect.any()):
            return d
        index = torch.nonzero(suspect.reshape(-1)).reshape(-1)
        picks = [_broadcast_pick(v, shape, index, 1.0) for v in (z, y, w, p)]
        exact = torch.as_tensor(_exact_values(*picks), dtype=torch.float64, device=d.device)
        fixed = d.reshape(-1).clone()
        fixed[index] = exact
        return fixed.reshape(shape)
    try:
        suspect_np = np.asarray(suspect)
    except Exception:  # a JAX tracer under jit: no concrete values to recompute
        return d
    if not suspect_np.any() or str(d.dtype) != "float64":
        return d
    index_np = np.flatnonzero(suspect_np)
    picks = [_broadcast_pick(v, shape, index_np, 1.0) for v in (z, y, w, p)]
    fixed_np = np.array(d, dtype=np.float64).reshape(-1)
    fixed_np[index_np] = _exact_values(*picks)
    return fixed_np.reshape(shape)


def _to_numpy(a: Any) -> np.ndarray:
    if is_torch(a):
        a = a.detach().cpu()
        return np.asarray((a.double() if a.dtype.is_floating_point else a).numpy())
    return np.asarray(a)


def softmax_rows_fixup(
    xp: Any,
    grad: Any,
    suspect: Any,
    z: Any,
    target: Any,
    weight: Any,
    ignore_index: int,
    label_smoothing: float,
) -> Any:
    """``grad`` (class-last rows of ``Q p - q``) with ``suspect`` rows recomputed exactly."""
    try:
        if str(grad.dtype) != "float64" or not bool(xp.any(suspect)):
            return grad
    except Exception:  # a JAX tracer under jit: no concrete values to recompute
        return grad
    from logitlab.exact._softmax import softmax_cross_entropy as exact_ce

    z_np = _to_numpy(z).astype(np.float64)
    t_np = _to_numpy(target)
    n_classes = z_np.shape[0] if z_np.ndim == 1 else z_np.shape[1]
    z_rows = (z_np[None] if z_np.ndim == 1 else np.moveaxis(z_np, 1, -1)).reshape(-1, n_classes)
    integer = np.issubdtype(t_np.dtype, np.integer)
    if integer:
        t_rows: np.ndarray = t_np.reshape(-1)
    else:
        t64 = t_np.astype(np.float64)
        t_rows = (t64[None] if t64.ndim == 1 else np.moveaxis(t64, 1, -1)).reshape(-1, n_classes)
    w_np = None if weight is None else _to_numpy(weight).astype(np.float64)
    shape = tuple(grad.shape)
    fixed = _to_numpy(grad).astype(np.float64).reshape(-1, n_classes)
    for row in np.flatnonzero(_to_numpy(suspect).reshape(-1)):
        result = exact_ce(
            z_rows[row][None],
            t_rows[row : row + 1] if integer else t_rows[row][None],
            w_np,
            ignore_index=ignore_index,
            reduction="sum",
            label_smoothing=label_smoothing,
        )
        fixed[row] = [float(g) for g in result.grads]
    fixed = fixed.reshape(shape)
    if is_torch(grad):
        import torch

        return torch.as_tensor(fixed, dtype=torch.float64, device=grad.device)
    return xp.asarray(fixed)
