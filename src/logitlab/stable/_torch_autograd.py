"""``torch.autograd.Function`` wrappers: forward and backward both float64-internal.

Each forward widens its inputs to float64 (exact), runs the kernel, and rounds once to
the input's dtype; each backward does the same with the analytic derivative, multiplied
by the incoming gradient in float64.  Nothing here names a device, so CUDA tensors work
as CPU ones do.  Only imported once the caller has passed a torch tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from logitlab.stable import _bce_compiled, _exact, _kernels
from logitlab.stable._backend import to_dtype
from logitlab.stable._compile import _wants_compile, run_kernel
from logitlab.stable._primitives import ELEMENTWISE_ULPS
from logitlab.stable._rounding import UNIT, fix_flagged, relative_bound, round_once

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
    """Fast loss (summed in float64, or per element in float64) and whether any element
    needs the careful kernel; fused into one pass when compiled."""
    z64, y64, w64, p64 = z.double(), y.double(), _wide(w), _wide(p)
    loss = _kernels.bce_loss_fast(xp, z64, y64, w64, p64)
    care = _kernels.bce_needs_care(xp, z64, y64, w64, p64)
    if reduction_sum:
        return xp.where(care, 0.0, loss).sum(), care.any()
    return loss, care.any()


def _bce_backward_kernel(
    xp: Any, z: Any, y: Any, w: Any, p: Any, g: Any, out_name: str
) -> tuple[Any, Any, Any]:
    """``g * d loss / d z`` rounded to ``out_name`` from the fast kernel, the elements
    within its error bound of a midpoint of ``out_name`` (near-ties: decided exactly
    afterwards), and whether any element needs the careful kernel."""
    z64, y64, w64, p64 = z.double(), y.double(), _wide(w), _wide(p)
    d, scale = _kernels.bce_grad_fast(xp, z64, y64, w64, p64)
    care = _kernels.bce_needs_care(xp, z64, y64, w64, p64)
    v = g * d
    bound = grad_bound(xp, v, g, scale)
    low, high = to_dtype(v - bound, out_name, xp), to_dtype(v + bound, out_name, xp)
    if out_name in ("float16", "bfloat16"):
        # as bits: compiled, inductor compares 16-bit values at float32 precision (it
        # drops a rounding it would undo), which flags far more elements than needed
        low, high = low.view(xp.int16), high.view(xp.int16)
    return to_dtype(v, out_name, xp), low != high, care.any()


def grad_bound(xp: Any, v: Any, g: Any, scale: Any) -> Any:
    """Error bound of ``v = g * d`` where ``d = a - b`` carries ``scale = max(a, b)``.

    Each term is within 4 float64 ULP (``_kernels.bce_grad_fast``), so ``d`` is within
    ``8 u scale + u |d|``; the product with ``g`` adds ``u |v|`` (``u = 2**-53``)."""
    return xp.abs(g) * scale * (10 * UNIT) + xp.abs(v) * (3 * UNIT) + 2.0**-1000


def _wide(t: Any) -> Any:
    return None if t is None else t.double()


def _wide_all(*tensors: Any) -> list[Any]:
    return [None if t is None else t.double() for t in tensors]


_NARROW = ("float16", "bfloat16", "float32")


def _fast_eligible(z: torch.Tensor, y: torch.Tensor, w: Any, p: Any) -> bool:
    """The eager fast path: no weights, narrow logits and targets of the same dtype (so
    ``z * y`` is exact in float64) and targets in [0, 1] (so every term is bounded)."""
    if w is not None or p is not None or z.dtype != y.dtype or _name(z) not in _NARROW:
        return False
    if z.numel() == 0 or _wants_compile(z.numel()):
        return False
    low, high = torch.aminmax(y)
    return bool(low >= 0) and bool(high <= 1)


def _exact_reduced(z: torch.Tensor, y: torch.Tensor, reduction: str) -> Any:
    """The exact sum or mean (mpmath) of a small batch."""
    from logitlab.core.mp import mp_context

    ctx = mp_context()
    zs, ys = z.double().reshape(-1).tolist(), y.double().reshape(-1).tolist()
    total = ctx.fsum(_exact.bce(a, b) for a, b in zip(zs, ys))
    return total / len(zs) if reduction == "mean" else total


#: Reductions of at most this many elements are decided exactly at a near-tie.
EXACT_REDUCTION_MAX = 1 << 12


#: Elements per chunk of the eager fast path: its float64 buffers (256 KiB each) stay in
#: cache and are reused, where whole-array float64 temporaries would each be a fresh
#: allocation streamed through memory.
CHUNK = 1 << 14


def _chunks(n: int) -> range:
    return range(0, n, CHUNK)


def _fast_forward(
    z: torch.Tensor, y: torch.Tensor, reduction: str, need_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """The eager fast loss and ``sigma(z) - y`` (float64, for the backward), or None where
    an element needs the careful kernel (an infinite or NaN logit, or cancellation too
    large to bound usefully)."""
    n, name = z.numel(), _name(z)
    zf, yf = z.reshape(-1), y.reshape(-1)
    d = torch.empty(n, dtype=torch.float64, device=z.device) if need_grad else None
    if reduction == "none":
        z64 = zf.double()
        # max(z, 0) - z y (z y exact, one rounding) + log1p(exp(-|z|)): both terms >= 0.
        t = z64.clamp(min=0.0).addcmul_(z64, yf, value=-1.0)
        t.add_(torch.nn.functional.softplus(z64.abs().neg_()))
        if not bool(torch.isfinite(t).all()):
            return None
        if d is not None:
            torch.sigmoid(z64, out=d).sub_(yf)
        bound = relative_bound(torch, t, 5.0)
        out = round_once(t, name, torch, bound, _exact.bce, [z64, yf.double()])
        return out.reshape(z.shape), d
    # softplus(z) - z y summed: softplus within 2 ULP, z y exact, one rounding per element,
    # so each element is within 3 u (|z| + softplus(z)) <= 3 u (2 |z| + 1) of exact.
    z64 = torch.empty(min(n, CHUNK), dtype=torch.float64, device=z.device)
    t = torch.empty_like(z64)
    partials = []
    for i in _chunks(n):
        zc, yc = zf[i : i + CHUNK], yf[i : i + CHUNK]
        m = zc.numel()
        zb, tb = z64[:m], t[:m]
        zb.copy_(zc)
        # z itself above 700: error < 1e-304
        torch._C._nn.softplus(zb, 1.0, 700.0, out=tb)  # type: ignore[call-arg]
        tb.addcmul_(zb, yc, value=-1.0)
        partials.append(tb.sum())
        if d is not None:
            torch.sigmoid(zb, out=d[i : i + m]).sub_(yc)
    total = math.fsum(torch.stack(partials).tolist())
    if not math.isfinite(total):
        return None
    sum_abs = float(torch.linalg.vector_norm(zf, 1)) * 1.01  # float32 accumulation: margin
    elements = 3 * UNIT * (2 * sum_abs + n)
    if elements > 2.0**-40 * abs(total):
        return None  # heavy cancellation (targets near 1 on large logits): careful kernel
    # torch's cascade sum of each chunk's non-negative terms: within (log2 CHUNK + 2) u.
    bound = elements + (math.log2(CHUNK) + 3) * UNIT * abs(total) + n * 2.0**-1000
    value = total
    if reduction == "mean":
        value, bound = total / n, bound / n + UNIT * abs(total / n)
    v = torch.tensor(value, dtype=torch.float64, device=z.device)
    if n > EXACT_REDUCTION_MAX:
        return to_dtype(v, name, torch), d
    exact_sum = lambda: _exact_reduced(z, y, reduction)  # noqa: E731
    return round_once(v, name, torch, bound, exact_sum, []), d


def _reduced(total: torch.Tensor, z: torch.Tensor, y: torch.Tensor, reduction: str) -> Any:
    """The float64 loss sum of the compiled fast path, as ``reduction`` asks, rounded.

    Each element is within 10 u of exact (8 u in :func:`._bce_compiled.fused_kernel`, 10 u
    in the C kernel ``_native.c``) and all are non-negative, so the sum in any order
    is within ``(n + 10) u`` of exact, the mean one rounding more; small batches are
    decided exactly at a near-tie, as elsewhere."""
    n, name = z.numel(), _name(z)
    out = total / n if reduction == "mean" else total
    if n > EXACT_REDUCTION_MAX:
        return to_dtype(out, name, torch)
    bound = relative_bound(torch, out, n + 12.0)
    exact_sum = lambda: _exact_reduced(z, y, reduction)  # noqa: E731
    return round_once(out, name, torch, bound, exact_sum, [])


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
        ctx.reduction = reduction
        ctx.compiled_grad = None
        n = z.numel()
        name = _name(z)
        reduce = reduction != "none"
        if _wants_compile(n) and _bce_compiled.eligible(z, y, w, p, reduction):
            compiled = _bce_compiled.forward(z, y, reduction, bool(ctx.needs_input_grad[0]))
            if compiled is not None:
                # The gradient for an incoming 1 is formed in the same pass.
                ctx.save_for_backward(z, y, w, p, None)
                ctx.compiled = True
                ctx.compiled_grad = compiled[1]
                return _reduced(compiled[0], z, y, reduction)
        ctx.compiled = False
        if _fast_eligible(z, y, w, p):
            # sigma(z) - y is formed in the same chunks as the loss: the backward only
            # scales it.
            fast = _fast_forward(z, y, reduction, bool(ctx.needs_input_grad[0]))
            if fast is not None:
                ctx.save_for_backward(z, y, w, p, fast[1])
                return fast[0]
        ctx.save_for_backward(z, y, w, p, None)
        out, any_care = run_kernel(_bce_forward_kernel, n, z, y, w, p, reduce, name)
        if bool(any_care):
            # Rare: infinite or |z| > 700 logits, subnormal targets or weights.
            z64, y64, w64, p64 = _wide_all(z, y, w, p)
            careful = _kernels.bce_loss_terms(torch, z64, y64, w64, p64)
            if reduce:
                care = _kernels.bce_needs_care(torch, z64, y64, w64, p64)
                out = out + torch.where(care, careful, 0.0).sum()
            else:
                out = careful
        if reduce:
            if reduction == "mean":
                out = out / n
            if n <= EXACT_REDUCTION_MAX and w is None and p is None:
                bound = relative_bound(torch, out, 5.0 + math.log2(max(n, 1)) + 2)
                exact_sum = lambda: _exact_reduced(z, y, reduction)  # noqa: E731
                return round_once(out, name, torch, bound, exact_sum, [])
            return to_dtype(out, name, torch)
        bound = relative_bound(torch, out, 6.0)
        args = _wide_all(z, y, _ones(w, z), _ones(p, z))
        return round_once(out, name, torch, bound, _exact.bce, args)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        z, y, w, p, d = ctx.saved_tensors
        reduction = ctx.reduction
        name = _name(z)
        g = grad_out.double()
        if reduction == "mean":
            g = g / z.numel()
        # the exact references take the incoming gradient and the mean's divisor apart
        ctx.divisor = z.numel() if reduction == "mean" else 1
        grads: list[Any] = [None, None, None, None, None]
        if ctx.needs_input_grad[0]:
            reuse, ctx.compiled_grad = ctx.compiled_grad, None
            if ctx.compiled and grad_out.numel() == 1 and math.isfinite(float(grad_out)):
                if reuse is not None and float(grad_out) == 1.0:
                    _bce_compiled.STATS["reused"] += 1
                    grad = reuse
                else:
                    grad = _bce_compiled.backward(z, y, grad_out, ctx.divisor)
            elif d is not None:
                grad = _fast_backward(z, y, d, g, grad_out, ctx.divisor, name)
            else:
                grad = _careful_backward(z, y, w, p, g, grad_out, ctx.divisor, name)
            if tuple(grad.shape) != tuple(z.shape):
                grad = grad.expand(z.shape).clone()
            grads[0] = grad
        if any(ctx.needs_input_grad[1:4]):
            grads[1:4] = _other_grads(ctx.needs_input_grad, z, y, w, p, g)
        return tuple(grads)


def _ones(t: Any, like: torch.Tensor) -> torch.Tensor:
    return torch.ones((), dtype=torch.float64, device=like.device) if t is None else t


def _fast_backward(
    z: torch.Tensor,
    y: torch.Tensor,
    d: torch.Tensor,
    g: torch.Tensor,
    g_out: torch.Tensor,
    divisor: int,
    name: str,
) -> Any:
    """``g * d`` with ``d = sigma(z) - y`` from the forward: torch's float64 sigmoid
    ``1 / (1 + exp(-z))`` is within 3 ULP for every z, y in [0, 1] is exact, so ``d`` is
    within ``4 u`` (absolute: both terms are at most 1) and ``g d`` within ``5 u |g|``.
    Elements within that of a midpoint of the result's format are recomputed exactly."""
    if g.numel() != 1 or name != "float32":
        g = g.expand(z.shape).reshape(-1) if g.numel() != 1 else g
        g_out = g_out.expand(z.shape).reshape(-1) if g_out.numel() != 1 else g_out
        v = d * g
        bound = g.abs() * (6 * UNIT) + 2.0**-1000
        r = to_dtype(v, name, torch)
        flagged = to_dtype(v - bound, name, torch) != to_dtype(v + bound, name, torch)
    else:
        gs = float(g)
        bound_s = abs(gs) * 6 * UNIT + 2.0**-1000
        n = d.numel()
        r = torch.empty(n, dtype=torch.float32, device=d.device)
        v = torch.empty(min(n, CHUNK), dtype=torch.float64, device=d.device)
        high = torch.empty(min(n, CHUNK), dtype=torch.float32, device=d.device)
        hard = []
        for i in _chunks(n):
            m = min(CHUNK, n - i)
            vb, hb, rb = v[:m], high[:m], r[i : i + m]
            torch.mul(d[i : i + m], gs, out=vb)
            # g d -+ bound rounded once: where both agree, that is the correctly rounded
            # g d (no midpoint lies within the bound).
            rb.copy_(vb.sub_(bound_s))
            hb.copy_(vb.add_(2 * bound_s))
            if not torch.equal(rb, hb):
                hard.append(i)
        if not hard:
            return r.reshape(z.shape)
        flagged = torch.zeros(n, dtype=torch.bool, device=d.device)
        for i in hard:
            m = min(CHUNK, n - i)
            flagged[i : i + m] = r[i : i + m] != (d[i : i + m] * gs + bound_s).float()
    if not bool(flagged.any()):
        return r.reshape(z.shape)
    exact = _exact.bce_grad_times(divisor)
    fixed = fix_flagged(r, flagged, name, exact, [g_out, z.reshape(-1), y.reshape(-1)])
    return fixed.reshape(z.shape)


def _careful_backward(
    z: torch.Tensor,
    y: torch.Tensor,
    w: Any,
    p: Any,
    g: torch.Tensor,
    g_out: torch.Tensor,
    divisor: int,
    name: str,
) -> Any:
    grad, flagged, care_any = run_kernel(_bce_backward_kernel, z.numel(), z, y, w, p, g, name)
    if not bool(care_any):
        if tuple(grad.shape) != tuple(z.shape):
            grad, flagged = grad.expand(z.shape), flagged.expand(z.shape)
        if not bool(flagged.any()):
            return grad
        # only the flagged elements are gathered and widened
        args = [g_out, z, y, _ones(w, z), _ones(p, z)]
        return fix_flagged(grad, flagged, name, _exact.bce_grad_times(divisor), args)
    # Rare: the careful kernel, and exact mpmath at near-ties.
    z64, y64, w64, p64 = _wide_all(z, y, w, p)
    d, scale = _kernels.bce_grad_terms(torch, z64, y64, w64, p64)
    v = g * d
    if tuple(v.shape) != tuple(z.shape):
        v = v.expand(z.shape)
    bound = grad_bound(torch, v, g, scale)
    args = [g_out, z64, y64, _ones(w64, z), _ones(p64, z)]
    return round_once(v, name, torch, bound, _exact.bce_grad_times(divisor), args)


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


@torch.compiler.disable
def outside_dynamo(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` run eagerly, never traced by dynamo (see
    :func:`logitlab.stable._backend.torch_outside_dynamo`): the rounding checks and exact
    fix-ups need concrete values, and the kernels are compiled on their own
    (:mod:`._compile`), so a user's graph breaks at the call and resumes after it."""
    return fn(*args, **kwargs)


def bce_with_logits(
    z: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    p: torch.Tensor | None,
    reduction: str,
) -> torch.Tensor:
    """BCE with logits through :class:`BCEWithLogits` (inputs already checked; called
    from the public function, which runs outside dynamo: :func:`outside_dynamo`)."""
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
        ctx.fast = None
        fast = _fast_cross_entropy(z, target, weight, ignore_index, reduction, label_smoothing)
        if fast is not None and integer:
            ctx.fast = fast[1]
            return fast[0]
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
            over_denominator,
            row_parts,
        )

        xp = _xp()
        z, target, weight = ctx.saved_tensors
        ignore_index, reduction, label_smoothing, integer = ctx.args
        if ctx.needs_input_grad[0] and ctx.fast is not None:
            from logitlab.stable import _softmax_fast

            fast_grad = _softmax_fast.backward(ctx.fast, grad_out)
            if fast_grad is not None:
                return (_class_back_2d(fast_grad, tuple(z.shape)), *[None] * 6)
        z64 = class_last(xp, z.double())
        w64 = None if weight is None else weight.double()
        q, denominator = ce_weights(xp, z64, target, w64, ignore_index, label_smoothing, integer)
        g = grad_out.double()
        if reduction == "none":
            g = g.reshape((*z64.shape[:-1], 1))
        elif reduction == "mean":
            g = over_denominator(xp, g, denominator)
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


def _fast_cross_entropy(
    z: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> tuple[torch.Tensor, Any] | None:
    """The eager fast path (:mod:`._softmax_fast`) on class-index targets, if it applies:
    (N, C) rows, class axis last; None where the general kernels must run."""
    from logitlab.stable import _softmax_fast

    integer = not (target.dtype.is_floating_point or target.dtype.is_complex)
    if not _softmax_fast.eligible(z, weight, integer):
        return None
    n_classes = z.shape[0] if z.dim() == 1 else z.shape[1]
    z2 = z.reshape(1, -1) if z.dim() == 1 else torch.movedim(z, 1, -1).reshape(-1, n_classes)
    with torch.no_grad():
        fast = _softmax_fast.forward(
            z2.detach(), target, weight, ignore_index, reduction, label_smoothing
        )
    if fast is None:
        return None
    out, saved = fast
    if reduction == "none":
        out = out.reshape(target.shape)
    return out, saved


def _class_back_2d(grad: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """(N', C) class-last rows back to the logits' ``shape`` (class axis 1, or 0 in 1-D)."""
    if len(shape) == 1:
        return grad.reshape(shape)
    lead = (shape[0], *shape[2:], shape[1])
    return torch.movedim(grad.reshape(lead), -1, 1)


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


# --- focal loss -----------------------------------------------------------------------


class FocalWithLogits(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        z: torch.Tensor,
        y: torch.Tensor,
        alpha: float | None,
        gamma: float,
        reduction: str,
    ) -> torch.Tensor:
        from logitlab.stable._focal import focal_forward

        ctx.save_for_backward(z, y)
        ctx.args = (alpha, gamma, reduction)
        return focal_forward(_xp(), z, y, alpha, gamma, reduction, _name(z))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        from logitlab.stable._focal import focal_backward

        z, y = ctx.saved_tensors
        alpha, gamma, reduction = ctx.args
        g = grad_out.double()
        if reduction != "none":
            g = g.expand(z.shape)
        grad = focal_backward(_xp(), z, y, g, alpha, gamma, reduction, _name(z))
        return grad, None, None, None, None


def focal(
    z: torch.Tensor, y: torch.Tensor, alpha: float | None, gamma: float, reduction: str
) -> torch.Tensor:
    """Binary focal loss through :class:`FocalWithLogits` (inputs already checked)."""
    if y.requires_grad:
        from logitlab.core.errors import InputError

        raise InputError("targets", "gradients with respect to the targets are not supported")
    return FocalWithLogits.apply(z, y, alpha, gamma, reduction)
