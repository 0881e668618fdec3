"""``torch.autograd.Function`` wrappers: forward and backward both float64-internal.

Each forward widens its inputs to float64 (exact), runs the kernel, and rounds once to
the input's dtype; each backward does the same with the analytic derivative, multiplied
by the incoming gradient in float64.  Nothing here names a device, so CUDA tensors work
as CPU ones do.  Only imported once the caller has passed a torch tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from logitlab.stable import _exact, _kernels
from logitlab.stable._backend import to_dtype
from logitlab.stable._compile import run_kernel
from logitlab.stable._fixup import bce_fixup
from logitlab.stable._primitives import ELEMENTWISE_ULPS
from logitlab.stable._rounding import relative_bound, round_once

__all__ = [
    "bce_with_logits",
    "cross_entropy",
    "elementwise",
    "softmax_family",
    "sum_to_shape",
]


def _name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def sum_to_shape(g: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Sum a broadcast gradient back to the shape of the input it came from."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = g.dim() - len(shape)
    if lead > 0:
        g = g.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g.reshape(shape)


def _make_elementwise(
    kernel: Callable[..., Any], derivative: Callable[..., Any], label: str
) -> type[torch.autograd.Function]:
    value_exact, derivative_exact = _exact.ELEMENTWISE[label]

    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z)
        z64 = z.double()
        out = run_kernel(kernel, z.numel(), z64)
        bound = relative_bound(torch, out, ELEMENTWISE_ULPS)
        return round_once(out, _name(z), torch, bound, value_exact, [z64])

    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        z64, g64 = z.double(), grad_out.double()
        v = g64 * run_kernel(derivative, z.numel(), z64)
        bound = relative_bound(torch, v, ELEMENTWISE_ULPS)
        return round_once(v, _name(z), torch, bound, _exact.scaled(derivative_exact), [g64, z64])

    # Built with type() so that the backward node is named after the primitive.
    namespace = {"forward": staticmethod(forward), "backward": staticmethod(backward)}
    return type(f"Stable{label}", (torch.autograd.Function,), namespace)


_ELEMENTWISE: dict[str, type[torch.autograd.Function]] = {
    name: _make_elementwise(getattr(_kernels, name), getattr(_kernels, name + "_grad"), name)
    for name in ("sigmoid", "log_sigmoid", "softplus", "logit", "log1mexp")
}


def elementwise(name: str, z: torch.Tensor) -> torch.Tensor:
    """Apply the primitive ``name`` with its accurate backward."""
    return _ELEMENTWISE[name].apply(z)


def _bce_forward_kernel(
    xp: Any, z: Any, y: Any, w: Any, p: Any, reduction_sum: bool, out_name: str
) -> tuple[Any, Any]:
    """Fast loss (summed in float64, or per element rounded to ``out_name``) and whether
    any element needs the careful kernel; fused into one pass when compiled."""
    z64, y64, w64, p64 = z.double(), y.double(), _wide(w), _wide(p)
    loss = _kernels.bce_loss_fast(xp, z64, y64, w64, p64)
    care = _kernels.bce_needs_care(xp, z64, y64, w64, p64)
    if reduction_sum:
        return xp.where(care, 0.0, loss).sum(), care.any()
    return to_dtype(loss, out_name, xp), care.any()


def _bce_backward_kernel(
    xp: Any, z: Any, y: Any, w: Any, p: Any, g: Any, cancel: float, out_name: str
) -> tuple[Any, Any]:
    """``g * d loss / d z`` rounded to ``out_name`` from the fast kernel, and whether any
    element needs the careful kernel or cancels past float64's reach."""
    z64, y64, w64, p64 = z.double(), y.double(), _wide(w), _wide(p)
    d, scale = _kernels.bce_grad_fast(xp, z64, y64, w64, p64)
    care = _kernels.bce_needs_care(xp, z64, y64, w64, p64)
    # Elements whose two terms cancel beyond what float64 can carry into this dtype.
    suspect = care | (xp.abs(d) * cancel < scale)
    return to_dtype(g * d, out_name, xp), suspect.any()


def _wide(t: Any) -> Any:
    return None if t is None else t.double()


def _wide_all(*tensors: Any) -> list[Any]:
    return [None if t is None else t.double() for t in tensors]


class BCEWithLogits(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        z: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        p: torch.Tensor | None,
        reduction: str,
    ) -> torch.Tensor:
        ctx.save_for_backward(z, y, w, p)
        ctx.reduction = reduction
        n = z.numel()
        name = _name(z)
        reduce = reduction != "none"
        out, any_care = run_kernel(_bce_forward_kernel, n, z, y, w, p, reduce, name)
        if bool(any_care):
            # Rare: infinite or |z| > 700 logits, subnormal targets or weights.
            z64, y64, w64, p64 = _wide_all(z, y, w, p)
            careful = _kernels.bce_loss_terms(torch, z64, y64, w64, p64)
            if reduce:
                care = _kernels.bce_needs_care(torch, z64, y64, w64, p64)
                out = out + torch.where(care, careful, 0.0).sum()
            else:
                out = to_dtype(careful, name, torch)
        if reduction == "mean":
            out = out / n
        return to_dtype(out, name, torch) if reduce else out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        z, y, w, p = ctx.saved_tensors
        reduction = ctx.reduction
        name = _name(z)
        g = grad_out.double()
        if reduction == "mean":
            g = g / z.numel()
        grads: list[Any] = [None, None, None, None, None]
        if ctx.needs_input_grad[0]:
            grad, suspect_any = run_kernel(
                _bce_backward_kernel, z.numel(), z, y, w, p, g, _cancel_factor(name), name
            )
            if bool(suspect_any):
                # Rare: the careful kernel, and exact mpmath where float64 cancels too far.
                z64, y64, w64, p64 = _wide_all(z, y, w, p)
                d, scale = _kernels.bce_grad_terms(torch, z64, y64, w64, p64)
                suspect = d.abs() * _cancel_factor(name) < scale
                d = bce_fixup(d, suspect, z, y, w, p)
                grad = to_dtype(g * d, name, torch)
            if tuple(grad.shape) != tuple(z.shape):
                grad = grad.expand(z.shape).clone()
            grads[0] = grad
        if any(ctx.needs_input_grad[1:4]):
            grads[1:4] = _other_grads(ctx.needs_input_grad, z, y, w, p, g)
        return tuple(grads)


def _other_grads(
    needs: tuple[bool, ...],
    z: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    p: torch.Tensor | None,
    g: torch.Tensor,
) -> list[Any]:
    """Gradients for targets, weight and pos_weight (rarely needed; eager float64)."""
    z64, y64 = z.double(), y.double()
    w64 = None if w is None else w.double()
    p64 = None if p is None else p.double()
    sp_z = _kernels.softplus(torch, z64)
    sp_minus_z = _kernels.softplus(torch, -z64)
    out: list[Any] = [None, None, None]
    if needs[1]:
        # d/dy: p softplus(-z) - softplus(z), which is -z when p = 1.
        dy = -z64 if p64 is None else p64 * sp_minus_z - sp_z
        if w64 is not None:
            dy = w64 * dy
        out[0] = sum_to_shape(to_dtype(g * dy, _name(y), torch), tuple(y.shape))
    if needs[2] and w is not None:
        unweighted = _kernels.bce_loss_terms(torch, z64, y64, None, p64)
        out[1] = sum_to_shape(to_dtype(g * unweighted, _name(w), torch), tuple(w.shape))
    if needs[3] and p is not None:
        dp = y64 * sp_minus_z
        if w64 is not None:
            dp = w64 * dp
        out[2] = sum_to_shape(to_dtype(g * dp, _name(p), torch), tuple(p.shape))
    return out


def _cancel_factor(name: str) -> float:
    from logitlab.stable._fixup import cancel_factor

    return cancel_factor(name)


def bce_with_logits(
    z: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    p: torch.Tensor | None,
    reduction: str,
) -> torch.Tensor:
    """BCE with logits through :class:`BCEWithLogits` (inputs already checked)."""
    return BCEWithLogits.apply(z, y, w, p, reduction)


# --- softmax family -------------------------------------------------------------------


def _xp() -> Any:
    import array_api_compat.torch as xp

    return xp


class SoftmaxFamily(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, name: str, axis: int) -> torch.Tensor:
        from logitlab.stable._softmax import row_parts

        ctx.save_for_backward(z)
        ctx.name, ctx.axis = name, axis
        parts = row_parts(_xp(), torch.movedim(z.double(), axis, -1))
        if name == "logsumexp":
            out = (parts["m"] + parts["L"]).squeeze(-1)
        elif name == "log_softmax":
            out = torch.movedim((parts["d"] - parts["L"]) + parts["err"], -1, axis)
        else:
            out = torch.movedim(parts["e"] / (1.0 + parts["r"]), -1, axis)
        return to_dtype(out, _name(z), torch)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, None, None]:
        from logitlab.stable._softmax import row_parts

        (z,) = ctx.saved_tensors
        parts = row_parts(_xp(), torch.movedim(z.double(), ctx.axis, -1))
        p = parts["e"] / (1.0 + parts["r"])
        if ctx.name == "logsumexp":
            grad = grad_out.double().unsqueeze(-1) * p
        else:
            g = torch.movedim(grad_out.double(), ctx.axis, -1)
            if ctx.name == "log_softmax":
                grad = g - p * g.sum(dim=-1, keepdim=True)
            else:
                grad = p * (g - (g * p).sum(dim=-1, keepdim=True))
        return to_dtype(torch.movedim(grad, -1, ctx.axis), _name(z), torch), None, None


def softmax_family(name: str, z: torch.Tensor, axis: int) -> torch.Tensor:
    """logsumexp, log_softmax or softmax over ``axis`` with an accurate backward."""
    return SoftmaxFamily.apply(z, name, axis)


class CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        z: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None,
        ignore_index: int,
        reduction: str,
        label_smoothing: float,
        integer: bool,
    ) -> torch.Tensor:
        from logitlab.stable._softmax import ce_loss_kernel, ce_weights, class_last

        xp = _xp()
        ctx.save_for_backward(z, target, weight)
        ctx.args = (ignore_index, reduction, label_smoothing, integer)
        z64 = class_last(xp, z.double())
        w64 = None if weight is None else weight.double()
        q, denominator = ce_weights(xp, z64, target, w64, ignore_index, label_smoothing, integer)
        per_sample = ce_loss_kernel(xp, z64, q)
        if reduction == "none":
            out = per_sample.reshape(()) if z.dim() == 1 else per_sample
        else:
            out = per_sample.sum()
            if reduction == "mean":
                out = out / denominator
        return to_dtype(out, _name(z), torch)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        from logitlab.stable._softmax import (
            ce_grad_fixed,
            ce_weights,
            class_back,
            class_last,
            row_parts,
        )

        xp = _xp()
        z, target, weight = ctx.saved_tensors
        ignore_index, reduction, label_smoothing, integer = ctx.args
        z64 = class_last(xp, z.double())
        w64 = None if weight is None else weight.double()
        q, denominator = ce_weights(xp, z64, target, w64, ignore_index, label_smoothing, integer)
        g = grad_out.double()
        if reduction == "none":
            g = g.reshape((*z64.shape[:-1], 1))
        elif reduction == "mean":
            g = g / denominator
        grads: list[Any] = [None] * 7
        if ctx.needs_input_grad[0]:
            d = ce_grad_fixed(
                xp, z64, q, z, target, weight, ignore_index, label_smoothing, _name(z)
            )
            grads[0] = to_dtype(class_back(xp, g * d, tuple(z.shape)), _name(z), torch)
        if ctx.needs_input_grad[1] and not integer:
            # d loss / d y_c = w_c (1 - eps) (-log softmax(z)_c)
            parts = row_parts(xp, z64)
            minus_log_p = (parts["L"] - parts["d"]) - parts["err"]
            dy = (1.0 - label_smoothing) * minus_log_p * (1.0 if w64 is None else w64)
            grads[1] = to_dtype(class_back(xp, g * dy, tuple(z.shape)), _name(target), torch)
        return tuple(grads)


def cross_entropy(
    z: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    integer: bool,
) -> torch.Tensor:
    """Softmax cross-entropy through :class:`CrossEntropy` (inputs already checked)."""
    if weight is not None and weight.requires_grad:
        from logitlab.core.errors import InputError

        raise InputError("weight", "gradients with respect to the class weights are not supported")
    return CrossEntropy.apply(z, target, weight, ignore_index, reduction, label_smoothing, integer)
