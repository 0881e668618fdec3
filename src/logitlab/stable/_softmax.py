"""The softmax family: logsumexp, log_softmax, softmax and softmax cross-entropy.

All are built on one decomposition of a row ``z`` (class axis last), with ``m = max z``
and ``k = argmax z`` (the first maximum)::

    d_c = z_c - m <= 0,  r = sum_{c != k} exp(d_c) >= 0,  L = log1p(r) >= 0
    logsumexp(z) = m + L,   log_softmax(z)_c = d_c - L,   softmax(z)_c = exp(d_c) / (1 + r)

Leaving the maximum's own ``exp(0) = 1`` out of the sum and using ``log1p`` keeps ``L``
accurate when the other classes are negligible (``log(1 + r)`` with ``1 + r`` rounded
first would give 0 below ``r = 2**-53``, and a confident correct prediction would get a
loss of 0 instead of ``r``).  ``d_c - L`` is a sum of two non-positive numbers, so
``log_softmax`` never cancels, and the cross-entropy is a sum of non-negative terms
``q_c (L - d_c)``.  The rounding error of ``z_c - m`` is recovered exactly (TwoSum,
Knuth) and folded back into ``exp`` and ``log_softmax``, which matters in float64 where
``z_c - m`` can be large and inexact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logitlab.core.errors import InputError
from logitlab.stable._backend import (
    as_array,
    dtype_name,
    is_torch,
    namespace,
    to_dtype,
    torch_outside_dynamo,
    widen,
)

__all__ = [
    "log_softmax",
    "logsumexp",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
]

REDUCTIONS = ("none", "mean", "sum")
Array = Any


def _device(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(x)


def row_parts(xp: Any, z: Array) -> dict[str, Array]:
    """The decomposition above for float64 ``z`` with the class axis last."""
    n_classes = z.shape[-1]
    m = xp.max(z, axis=-1, keepdims=True)
    m_finite = xp.where(xp.isfinite(m), m, 0.0)
    s = z - m_finite
    # TwoSum: s + err == z - m_finite exactly (Knuth, TAOCP vol. 2, 4.2.2).
    back = s - z
    err = (z - (s - back)) + (-m_finite - back)
    err = xp.where(xp.isfinite(err), err, 0.0)
    # With +inf logits, the limit shares the mass among them: d = 0 there, -inf elsewhere.
    d = xp.where(m == float("inf"), xp.where(z == float("inf"), 0.0, -float("inf")), s)
    err = xp.where(m == float("inf"), 0.0, err)
    k = xp.argmax(z, axis=-1, keepdims=True)
    is_max = xp.arange(n_classes, device=_device(z)) == k
    e = xp.exp(d)
    e = e + e * err  # exp(d + err) = exp(d) (1 + err + O(err**2)), |err| <= 2**-53 |d|
    r = xp.sum(xp.where(is_max, 0.0, e), axis=-1, keepdims=True)
    return {"m": m, "d": d, "err": err, "is_max": is_max, "e": e, "r": r, "L": xp.log1p(r)}


def _check_axis(z: Any, axis: int) -> int:
    ndim = len(z.shape)
    if ndim == 0:
        raise InputError("z", "is 0-d; the softmax family needs at least one axis")
    if not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise InputError("axis", f"{axis!r} is not an axis of z with shape {tuple(z.shape)}")
    return axis % ndim


def _prepare(z: Any, axis: int) -> tuple[Any, Any, str, int]:
    xp = namespace(z)
    array = as_array(z, xp, "z")
    dtype = dtype_name(array, "z")
    return xp, array, dtype, _check_axis(array, axis)


def _lse_kernel(xp: Any, z: Array) -> Array:
    parts = row_parts(xp, z)
    return parts["m"] + parts["L"]


def _log_softmax_kernel(xp: Any, z: Array) -> Array:
    parts = row_parts(xp, z)
    # Both d and -L are <= 0: the sum cannot cancel.
    return (parts["d"] - parts["L"]) + parts["err"]


def _softmax_kernel(xp: Any, z: Array) -> Array:
    parts = row_parts(xp, z)
    return parts["e"] / (1.0 + parts["r"])


def _run_axis(kernel: Any, xp: Any, z: Array, dtype: str, axis: int, squeeze: bool) -> Any:
    with np.errstate(all="ignore"):
        out = kernel(xp, xp.moveaxis(widen(z, xp), axis, -1))
    out = xp.squeeze(out, axis=-1) if squeeze else xp.moveaxis(out, -1, axis)
    return to_dtype(out, dtype, xp)


@torch_outside_dynamo
def logsumexp(z: Any, axis: int = -1, keepdims: bool = False) -> Any:
    """``log(sum(exp(z), axis))`` without overflow or lost digits.

    Formula: ``m + log1p(sum_{c != k} exp(z_c - m))`` with ``m = max z`` at index ``k``.
    Subtracting the maximum keeps ``exp`` from overflowing; leaving ``exp(0)`` out of the
    sum and taking ``log1p`` keeps the digits of a tiny remainder.

    Args:
        z: logits, any shape with at least one axis; floating dtype.
        axis: the axis to reduce (default last).
        keepdims: keep the reduced axis with size 1.

    Returns:
        ``z``'s dtype.  Narrow dtypes: float64 inside, one rounding (within 1 ULP unless the
        result is near 0, where ``m < 0 < log1p(r)`` cancel: absolute error below
        ``2**-52 (|m| + L)``).  float64: within 3 ULP away from that cancellation, the same
        absolute bound in it.  A ``+inf`` logit gives ``inf``.

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.logsumexp(np.array([1000.0, 1000.0, -1000.0]))
    array(1000.69314718)
    """
    if is_torch(z):
        from logitlab.stable import _torch_autograd

        dtype_name(z, "z")
        out = _torch_autograd.softmax_family("logsumexp", z, _check_axis(z, axis))
        return out.unsqueeze(axis) if keepdims else out
    xp, array, dtype, ax = _prepare(z, axis)
    out = _run_axis(_lse_kernel, xp, array, dtype, ax, squeeze=True)
    return xp.expand_dims(out, axis=ax) if keepdims else out


@torch_outside_dynamo
def log_softmax(z: Any, axis: int = -1) -> Any:
    """``z - logsumexp(z, axis)``, computed as ``(z_c - m) - log1p(r)``: no cancellation.

    Both terms are non-positive, so the result keeps full relative accuracy, including
    ``log_softmax = -r`` (not 0) for the winning class of a confident prediction.

    Args:
        z: logits, any shape with at least one axis; floating dtype.
        axis: the class axis (default last).

    Returns:
        Same shape and dtype.  Within 1 ULP (narrow dtypes) or 3 ULP (float64).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.log_softmax(np.float32([40.0, 0.0]))
    array([-4.248354e-18, -4.000000e+01], dtype=float32)
    """
    if is_torch(z):
        from logitlab.stable import _torch_autograd

        dtype_name(z, "z")
        return _torch_autograd.softmax_family("log_softmax", z, _check_axis(z, axis))
    xp, array, dtype, ax = _prepare(z, axis)
    return _run_axis(_log_softmax_kernel, xp, array, dtype, ax, squeeze=False)


@torch_outside_dynamo
def softmax(z: Any, axis: int = -1) -> Any:
    """``exp(z_c - m) / (1 + r)``: the normalised exponentials, accurate in the tails.

    ``z_c - m <= 0`` so ``exp`` cannot overflow; its rounding error is recovered exactly
    and folded into ``exp``, so tiny probabilities keep their relative accuracy.

    Args:
        z: logits, any shape with at least one axis; floating dtype.
        axis: the class axis (default last).

    Returns:
        Same shape and dtype.  Within 1 ULP (narrow dtypes) or 3 ULP (float64).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.softmax(np.array([0.0, -745.0]))
    array([1.e+000, 5.e-324])
    """
    if is_torch(z):
        from logitlab.stable import _torch_autograd

        dtype_name(z, "z")
        return _torch_autograd.softmax_family("softmax", z, _check_axis(z, axis))
    xp, array, dtype, ax = _prepare(z, axis)
    return _run_axis(_softmax_kernel, xp, array, dtype, ax, squeeze=False)


# --- cross-entropy --------------------------------------------------------------------


def _is_integer(xp: Any, t: Any) -> bool:
    if is_torch(t):
        return not (t.dtype.is_floating_point or t.dtype.is_complex)
    return bool(xp.isdtype(t.dtype, "integral"))


def check_cross_entropy(
    z: Any,
    target: Any,
    weight: Any,
    ignore_index: Any,
    reduction: Any,
    label_smoothing: Any,
) -> tuple[Any, Any, Any, Any, str, bool]:
    """Check arguments once; returns (xp, z, target, weight, dtype, integer_targets)."""
    if reduction not in REDUCTIONS:
        raise InputError(
            "reduction", f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}"
        )
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise InputError("label_smoothing", f"must be a number in [0, 1], not {label_smoothing!r}")
    if not isinstance(ignore_index, int):
        raise InputError("ignore_index", f"must be an int, not {ignore_index!r}")
    xp = namespace(z, target, weight)
    z = as_array(z, xp, "z")
    dtype = dtype_name(z, "z")
    shape = tuple(int(n) for n in z.shape)
    if len(shape) == 0:
        raise InputError("z", "is 0-d; expected (C,), (N, C) or (N, C, d1, ...)")
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    if not hasattr(target, "dtype"):
        target = np.asarray(target)
    if isinstance(target, np.ndarray) and not isinstance(z, np.ndarray):
        if is_torch(z):
            import torch

            target = torch.as_tensor(target, device=z.device)
        else:
            target = xp.asarray(target)
    integer = _is_integer(xp, target)
    tshape = tuple(int(n) for n in target.shape)
    if integer:
        expected = () if len(shape) == 1 else (shape[0], *shape[2:])
        if tshape != expected:
            raise InputError(
                "target", f"class indices have shape {tshape}; logits {shape} need {expected}"
            )
        valid = (target == ignore_index) | ((target >= 0) & (target < n_classes))
        if not _concrete_all(xp, valid):
            raise InputError(
                "target", f"class indices must lie in [0, {n_classes}) or equal ignore_index"
            )
    else:
        dtype_name(target, "target")
        if tshape != shape:
            raise InputError(
                "target", f"probabilities have shape {tshape}; they must have the logits' {shape}"
            )
    if weight is not None:
        weight = as_array(weight, xp, "weight", like=z)
        dtype_name(weight, "weight")
        if tuple(int(n) for n in weight.shape) != (n_classes,):
            raise InputError("weight", f"shape {tuple(weight.shape)} must be (C,) = ({n_classes},)")
    return xp, z, target, weight, dtype, integer


def _concrete_all(xp: Any, mask: Any) -> bool:
    try:
        return bool(xp.all(mask))
    except Exception:  # a JAX tracer under jit: no values to check here
        return True


def class_last(xp: Any, a: Any) -> Any:
    """(C,) -> (1, C); (N, C, d...) -> (N, d..., C)."""
    if len(a.shape) == 1:
        return xp.reshape(a, (1, a.shape[0]))
    return xp.moveaxis(a, 1, -1)


def class_back(xp: Any, a: Any, shape: tuple[int, ...]) -> Any:
    """The inverse of :func:`class_last`, to the logits' ``shape``."""
    if len(shape) == 1:
        return xp.reshape(a, shape)
    return xp.moveaxis(a, -1, 1)


def ce_weights(
    xp: Any,
    z64: Any,
    target: Any,
    weight64: Any,
    ignore_index: int,
    label_smoothing: float,
    integer: bool,
) -> tuple[Any, Any]:
    """Per-class coefficients ``q`` (class-last) and the denominator of ``mean``.

    ``q_c = w_c ((1 - eps) [c == t] + eps / C)`` (zero for ignored samples) or
    ``w_c ((1 - eps) y_c + eps / C)``; the denominator is the summed ``w_t`` of the samples
    not ignored, or the number of samples for probability targets (as ATen does).
    """
    n_classes = z64.shape[-1]
    eps = float(label_smoothing)
    w = 1.0 if weight64 is None else weight64
    # A row whose logits are all -inf (fully masked) has no distribution: it contributes
    # 0 to the loss and 0 to the gradient, and (class indices) is left out of the mean's
    # denominator, as an ignored sample is.
    live = xp.any(z64 != -float("inf"), axis=-1)
    if not integer:
        y = class_last(xp, widen(target, xp))
        q = w * (y if eps == 0 else (1.0 - eps) * y + eps / n_classes)
        q = xp.where(live[..., None], q, 0.0)
        return q, float(np.prod(q.shape[:-1]))
    t = target if len(target.shape) else xp.reshape(target, (1,))
    kept = (t != ignore_index) & xp.reshape(live, t.shape)
    safe = xp.where(kept, t, xp.zeros_like(t))
    onehot = xp.astype(xp.arange(n_classes, device=_device(z64)) == safe[..., None], z64.dtype)
    base = onehot if eps == 0 else (1.0 - eps) * onehot + eps / n_classes
    q = xp.where(kept[..., None], w * base, 0.0)
    picked = xp.sum(onehot * w, axis=-1) if weight64 is not None else 1.0
    denominator = xp.sum(xp.where(kept, picked, 0.0))
    return q, denominator


def ce_loss_kernel(xp: Any, z64: Any, q: Any) -> Any:
    """Per-sample loss ``sum_c q_c (L - d_c)``, every term non-negative."""
    parts = row_parts(xp, z64)
    minus_log_p = (parts["L"] - parts["d"]) - parts["err"]  # -log softmax >= 0
    terms = xp.where(q == 0, 0.0, q * minus_log_p)
    return xp.sum(terms, axis=-1)


def ce_grad_kernel(xp: Any, z64: Any, q: Any) -> tuple[Any, Any]:
    """Per-sample ``Q p_j - q_j`` and the size of its larger term (class-last).

    At the maximum ``k`` (``p_k = 1 / (1 + r)``) it is rewritten without cancellation as
    ``(sum_{c != k} q_c - q_k r) / (1 + r)``: for a hard label on a confident prediction
    that is ``-r / (1 + r)`` to full accuracy, where ``p_k - 1`` would round to 0.
    """
    parts = row_parts(xp, z64)
    one_r = 1.0 + parts["r"]
    p = parts["e"] / one_r
    is_max = parts["is_max"]
    total = xp.sum(q, axis=-1, keepdims=True)
    others = xp.sum(xp.where(is_max, 0.0, q), axis=-1, keepdims=True)
    q_max = xp.sum(xp.where(is_max, q, 0.0), axis=-1, keepdims=True)
    at_max = (others - q_max * parts["r"]) / one_r
    grad = xp.where(is_max, at_max, total * p - q)
    scale_max = xp.where(others > q_max * parts["r"], others, q_max * parts["r"]) / one_r
    scale_rest = xp.where(total * p > q, total * p, q)
    return grad, xp.where(is_max, scale_max, scale_rest)


@torch_outside_dynamo
def softmax_cross_entropy(
    z: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """Softmax cross-entropy with ``torch.nn.functional.cross_entropy``'s semantics.

    Formula, per sample (class axis 1, or 0 for a 1-D input, ``C`` classes)::

        loss = sum_c q_c * (-log_softmax(z)_c) = sum_c q_c * (log1p(r) - (z_c - m))
        q_c  = w_c * ((1 - eps) * [c == target] + eps / C)     class-index targets
        q_c  = w_c * ((1 - eps) * target_c + eps / C)          probability targets

    Every term is non-negative, so nothing cancels; for a confident correct prediction the
    loss is ``log1p(r) ~ r`` to full accuracy (PyTorch's float32 ``log_softmax`` rounds it
    to 0 once ``r < 2**-24``).

    Masked (``-inf``) logits never give NaN, in the loss or the gradient:

    * a masked class with zero target weight contributes nothing (``0 log 0 = 0``);
    * a masked class with non-zero target weight (the target class itself, or label
      smoothing's ``eps / C``, which goes to every class as in PyTorch) gives the exact
      loss, ``+inf``, and the gradient's finite limit ``Q softmax(z) - q``;
    * a fully masked row (every logit ``-inf``) has no distribution: it is given loss 0
      and gradient 0, and for class-index targets it is left out of the ``mean``'s
      denominator, as an ``ignore_index`` sample is (probability targets keep ATen's
      denominator, the number of samples).  ``F.cross_entropy`` gives NaN there, and so
      does optax's ``safe_softmax_cross_entropy`` (which only makes ``0 log 0 = 0``).
    * when every sample is ignored or fully masked, the ``mean`` is ``0 / 0``: NaN, as
      in ATen, and its gradient 0, as in ATen.

    Args:
        z: logits of shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``; floating dtype.
        target: class indices (integer array of shape ``()``, ``(N,)`` or
            ``(N, d1, ...)``) or probabilities (floating array of ``z``'s shape).
        weight: optional per-class weight, shape ``(C,)``.
        ignore_index: class index whose samples contribute nothing (class indices only).
        reduction: ``"mean"`` (divided by the summed weight of the samples not ignored
            for class indices, by the number of samples for probabilities), ``"sum"`` or
            ``"none"`` (per sample, shape of the class-index target).
        label_smoothing: ``eps`` in [0, 1].

    Returns:
        ``z``'s dtype.  Narrow dtypes: float64 inside, one rounding (within 1 ULP); float64:
        within 4 ULP per sample for non-negative weights and targets.  torch CPU tensors and
        NumPy arrays of float16, bfloat16 or float32 with class-index targets (and
        non-negative weights) take a chunked fast path (:mod:`._softmax_fast`,
        :mod:`._softmax_numpy`) that is correctly rounded: every
        per-sample loss (``"none"``) and every gradient element, near-ties decided exactly
        in mpmath; ``"mean"`` and ``"sum"`` over at most 4,096 logits too, and over more
        within ``0.5 + 2**-18`` ULP (the float64 sum within its bound, rounded once).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> z = np.float32([[40.0, 0.0], [0.0, 1.0]])
    >>> stable.softmax_cross_entropy(z, np.array([0, 1]), reduction="none")
    array([4.248354e-18, 3.132617e-01], dtype=float32)
    """
    checked = check_cross_entropy(z, target, weight, ignore_index, reduction, label_smoothing)
    xp, z, target, weight, dtype, integer = checked
    if is_torch(z):
        from logitlab.stable import _torch_autograd

        return _torch_autograd.cross_entropy(
            z, target, weight, ignore_index, reduction, float(label_smoothing), integer
        )
    fast = _numpy_fast("loss", z, target, weight, ignore_index, reduction, label_smoothing, integer)
    if fast is not None:
        return fast
    shape = tuple(int(n) for n in z.shape)
    with np.errstate(all="ignore"):
        z64 = class_last(xp, widen(z, xp))
        w64 = None if weight is None else widen(weight, xp)
        q, denominator = ce_weights(
            xp, z64, target, w64, ignore_index, float(label_smoothing), integer
        )
        per_sample = ce_loss_kernel(xp, z64, q)
        if reduction == "none":
            out = xp.reshape(per_sample, ()) if len(shape) == 1 else per_sample
        else:
            out = xp.sum(per_sample)
            if reduction == "mean":
                out = out / denominator
    return to_dtype(out, dtype, xp)


def over_denominator(xp: Any, grad: Any, denominator: Any) -> Any:
    """``grad / denominator`` for the ``mean``, and 0 where the denominator is 0: when
    every sample is ignored or fully masked the mean is 0 / 0, NaN (as ATen's), and its
    gradient 0 (as ATen's): no sample contributes to it."""
    if isinstance(denominator, (int, float)):
        return grad / denominator if denominator else 0.0 * grad
    empty = denominator == 0
    return xp.where(empty, 0.0 * grad, grad / xp.where(empty, 1.0, denominator))


@torch_outside_dynamo
def softmax_cross_entropy_grad(
    z: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """Gradient of :func:`softmax_cross_entropy` with respect to ``z`` (``z``'s shape).

    Per sample ``s * (Q softmax(z)_j - q_j)`` with ``Q = sum_c q_c`` and ``s`` the
    reduction's scale (1 for sum and none, ``1 / denominator`` for mean); at the arg-max
    class it is computed as ``(sum_{c != k} q_c - q_k r) / (1 + r)``, so hard labels never
    cancel.  With soft targets or label smoothing the gradient crosses zero where
    ``Q p_j = q_j``; for float16/bfloat16/float32 the rows where float64 cannot carry that
    cancellation into the result are recomputed exactly (mpmath), so every element is
    within 1 ULP (correctly rounded on the fast paths, see
    :func:`softmax_cross_entropy`).  For float64, the absolute error there is below
    ``2**-49 * s * max(Q p_j, q_j)``; elsewhere it is within 4 ULP.

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.softmax_cross_entropy_grad(np.float32([[40.0, 0.0]]), np.array([0]))
    array([[-4.248354e-18,  4.248354e-18]], dtype=float32)
    """
    checked = check_cross_entropy(z, target, weight, ignore_index, reduction, label_smoothing)
    xp, z, target, weight, dtype, integer = checked
    if is_torch(z):
        import torch

        zg = z.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = softmax_cross_entropy(
                zg, target, weight, ignore_index, reduction, label_smoothing
            )
            (grad,) = torch.autograd.grad(loss, zg, torch.ones_like(loss))
        return grad
    fast = _numpy_fast("grad", z, target, weight, ignore_index, reduction, label_smoothing, integer)
    if fast is not None:
        return fast
    shape = tuple(int(n) for n in z.shape)
    with np.errstate(all="ignore"):
        z64 = class_last(xp, widen(z, xp))
        w64 = None if weight is None else widen(weight, xp)
        q, denominator = ce_weights(
            xp, z64, target, w64, ignore_index, float(label_smoothing), integer
        )
        grad = ce_grad_fixed(xp, z64, q, z, target, weight, ignore_index, label_smoothing, dtype)
        if reduction == "mean":
            grad = over_denominator(xp, grad, denominator)
    return to_dtype(class_back(xp, grad, shape), dtype, xp)


def _numpy_fast(
    which: str,
    z: Any,
    target: Any,
    weight: Any,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    integer: bool,
) -> Any:
    """The NumPy fast path (:mod:`._softmax_numpy`) where it applies, else None."""
    from logitlab.stable import _softmax_numpy

    if not _softmax_numpy.eligible(z, weight, integer):
        return None
    fn = _softmax_numpy.loss if which == "loss" else _softmax_numpy.grad
    return fn(z, target, weight, ignore_index, reduction, float(label_smoothing))


def ce_grad_fixed(
    xp: Any,
    z64: Any,
    q: Any,
    z: Any,
    target: Any,
    weight: Any,
    ignore_index: int,
    label_smoothing: float,
    dtype: str,
) -> Any:
    """:func:`ce_grad_kernel` with rows that cancel too far recomputed exactly."""
    from logitlab.stable._fixup import cancel_factor, softmax_rows_fixup

    grad, scale = ce_grad_kernel(xp, z64, q)
    suspect = xp.any(xp.abs(grad) * cancel_factor(dtype) < scale, axis=-1)
    return softmax_rows_fixup(
        xp, grad, suspect, z, target, weight, ignore_index, float(label_smoothing)
    )
