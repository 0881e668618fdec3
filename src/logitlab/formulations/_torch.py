"""PyTorch's code paths: the probabilities path, the logits path, hand-written ones.

Values go to torch exactly: the case's float64 arrays hold values of the target dtype, so
converting them is exact.  Gradients come from torch autograd: ``backward()`` on a reduced
loss, ``backward(ones)`` on an unreduced one (the elementwise derivative).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from logitlab.formulations._base import (
    BCEInputs,
    ElementwiseInputs,
    Formulation,
    NotApplicable,
    Outcome,
    as_float64,
    wants_gradient,
)

if TYPE_CHECKING:
    import torch

    from logitlab.core.inputs import BCECase

__all__ = ["FORMULATIONS"]

# PyTorch's binary_cross_entropy clamps each log at -100, and its backward divides by
# max(p * (1 - p), 1e-12) (ATen's Loss.cpp, EPSILON).
TORCH_LOG_CLAMP = -100.0
TORCH_BACKWARD_EPSILON = 1e-12


def _tensor(values: np.ndarray | None, case: ElementwiseInputs, requires_grad: bool = False) -> Any:
    import torch

    if values is None:
        return None
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(
        case.dtype.torch_dtype()
    )
    return t.requires_grad_(requires_grad)


def _backward(loss: torch.Tensor) -> None:
    import torch

    if loss.dim() == 0:
        loss.backward()
    else:
        loss.backward(torch.ones_like(loss))


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _outcome(
    loss: Any,
    z: Any,
    p: Any = None,
    clamped: Any = None,
    grad_clamped: Any = None,
    clipped: Any = None,
) -> Outcome:
    want = wants_gradient()
    if want:
        _backward(loss)
    return Outcome(
        value=as_float64(_up(loss.detach())),
        grad=None if not want or z.grad is None else as_float64(_up(z.grad)),
        probabilities=None if p is None else as_float64(_up(p.detach())),
        clamped=None if clamped is None else np.asarray(clamped, dtype=bool),
        grad_clamped=None if grad_clamped is None else np.asarray(grad_clamped, dtype=bool),
        clipped=None if clipped is None else np.asarray(clipped, dtype=bool),
    )


def _up(t: Any) -> Any:
    # NumPy has no bfloat16: widen to float32 (exact) before handing over.
    import torch

    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _args(case: BCEInputs) -> str:
    extra = ""
    if case.weight is not None:
        extra += ", weight=w"
    if case.pos_weight is not None:
        extra += ", pos_weight=pw"
    if case.reduction != "mean":
        extra += f", reduction={case.reduction!r}"
    return extra


# --- binary cross-entropy -------------------------------------------------------------


def _probabilities(case: BCECase, autocast: Callable[[], Any] | None = None) -> Outcome:
    import torch
    import torch.nn.functional as F

    if case.pos_weight is not None:
        raise NotApplicable(
            "F.binary_cross_entropy takes no pos_weight; use the logits path, or weight "
            "each element by pos_weight ** y when targets are hard 0/1"
        )
    z = _tensor(case.logits, case, requires_grad=True)
    y = _tensor(case.targets, case)
    w = _tensor(case.weight, case)
    with contextlib.nullcontext() if autocast is None else autocast():
        p = torch.sigmoid(z)
        p.retain_grad()
        loss = F.binary_cross_entropy(p, y, weight=w, reduction=case.reduction)
    with torch.no_grad():
        # Which logs the -100 clamp replaced, in the dtype torch computed them in.
        pd = p.detach()
        clamp_log_p = (torch.log(pd) < TORCH_LOG_CLAMP) & (y != 0)
        clamp_log_1mp = (torch.log1p(-pd) < TORCH_LOG_CLAMP) & (y != 1)
        clamped = (clamp_log_p | clamp_log_1mp).numpy()
        # Where 0 < p(1-p) < 1e-12 the backward's clamp shrinks a gradient that would
        # otherwise be right (|z| > 27.6); at p = 0 or 1 saturation is the explanation.
        variance = (1 - pd) * pd
        epsilon = torch.tensor(TORCH_BACKWARD_EPSILON, dtype=pd.dtype)
        grad_clamped = ((variance > 0) & (variance < epsilon)).numpy()
    return _outcome(loss, z, p, clamped, grad_clamped)


def _logits(case: BCECase, autocast: Callable[[], Any] | None = None) -> Outcome:
    import torch.nn.functional as F

    z = _tensor(case.logits, case, requires_grad=True)
    with contextlib.nullcontext() if autocast is None else autocast():
        loss = F.binary_cross_entropy_with_logits(
            z,
            _tensor(case.targets, case),
            weight=_tensor(case.weight, case),
            pos_weight=_tensor(case.pos_weight, case),
            reduction=case.reduction,
        )
    return _outcome(loss, z)


# --- autocast -------------------------------------------------------------------------
# CPU autocast (torch 2.x) keeps binary_cross_entropy and its logits form on its float32
# list: the loss comes back float32 for float16/bfloat16 input, the same as eager for
# float32.  CUDA autocast refuses binary_cross_entropy ("unsafe to autocast"); that row
# runs on a CUDA device only and reports torch's refusal as its status.


def _cpu_autocast() -> Any:
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


def _cuda_probabilities(case: BCECase) -> Outcome:
    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        raise NotApplicable("needs a CUDA device (CUDA autocast); torch sees none")
    if case.pos_weight is not None:
        raise NotApplicable("F.binary_cross_entropy takes no pos_weight")
    z = _tensor(case.logits, case).cuda().requires_grad_(True)
    y = _tensor(case.targets, case).cuda()
    w = None if case.weight is None else _tensor(case.weight, case).cuda()
    with torch.autocast("cuda", dtype=torch.float16):
        loss = F.binary_cross_entropy(torch.sigmoid(z), y, weight=w, reduction=case.reduction)
    return _outcome(loss, z)


_CPU_AUTOCAST = 'with torch.autocast("cpu", dtype=torch.bfloat16): '
_CUDA_AUTOCAST = 'with torch.autocast("cuda"): '


def _naive(case: BCECase) -> Outcome:
    import torch

    z = _tensor(case.logits, case, requires_grad=True)
    y = _tensor(case.targets, case)
    p = torch.sigmoid(z)
    positive = y * torch.log(p)
    if case.pos_weight is not None:
        positive = _tensor(case.pos_weight, case) * positive
    loss = -(positive + (1 - y) * torch.log(1 - p))
    if case.weight is not None:
        loss = _tensor(case.weight, case) * loss
    return _outcome(_reduce(loss, case.reduction), z, p)


def _naive_code(case: BCECase) -> str:
    pw = "pw*" if case.pos_weight is not None else ""
    body = f"-({pw}y*torch.log(torch.sigmoid(z)) + (1-y)*torch.log(1-torch.sigmoid(z)))"
    if case.weight is not None:
        body = f"w*{body}"
    suffix = {"mean": ".mean()", "sum": ".sum()", "none": ""}[case.reduction]
    return f"({body}){suffix}" if suffix else body


# --- elementwise primitives -----------------------------------------------------------


def _elementwise(fn_name: str) -> Any:
    def compute(case: ElementwiseInputs) -> Outcome:
        import torch
        import torch.nn.functional as F

        z = _tensor(case.logits, case, requires_grad=True)
        fns = {
            "sigmoid": torch.sigmoid,
            "naive_sigmoid": lambda t: 1 / (1 + torch.exp(-t)),
            "logsigmoid": F.logsigmoid,
            "softplus": F.softplus,
            "naive_softplus": lambda t: torch.log(1 + torch.exp(t)),
            "log_of_sigmoid": lambda t: torch.log(torch.sigmoid(t)),
        }
        out = fns[fn_name](z)
        through_sigmoid = fn_name in ("sigmoid", "naive_sigmoid")
        return _outcome(out, z, out if through_sigmoid else None)

    return compute


FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="torch.probabilities",
        framework="torch",
        quantity="bce",
        via_probabilities=True,
        code="F.binary_cross_entropy(torch.sigmoid(z), y)",
        summary="sigmoid first, then BCE on the probabilities (nn.Sigmoid + nn.BCELoss)",
        compute=_probabilities,
        requires=("torch",),
        code_for=lambda c: f"F.binary_cross_entropy(torch.sigmoid(z), y{_args(c)})",
    ),
    Formulation(
        name="torch.logits",
        framework="torch",
        quantity="bce",
        via_probabilities=False,
        code="F.binary_cross_entropy_with_logits(z, y)",
        summary="BCE straight from the logits (nn.BCEWithLogitsLoss)",
        compute=_logits,
        requires=("torch",),
        code_for=lambda c: f"F.binary_cross_entropy_with_logits(z, y{_args(c)})",
    ),
    Formulation(
        name="torch.naive",
        framework="torch",
        quantity="bce",
        via_probabilities=True,
        code="-(y*torch.log(torch.sigmoid(z)) + (1-y)*torch.log(1-torch.sigmoid(z))).mean()",
        summary="BCE written out by hand on the probabilities, no clamp",
        compute=_naive,
        requires=("torch",),
        code_for=_naive_code,
    ),
    Formulation(
        name="autocast.probabilities",
        framework="autocast",
        quantity="bce",
        via_probabilities=True,
        code=_CPU_AUTOCAST + "F.binary_cross_entropy(torch.sigmoid(z), y)",
        summary="BCE on probabilities under CPU autocast: allowed on CPU, computed in float32",
        compute=lambda case: _probabilities(case, _cpu_autocast),
        requires=("torch",),
        code_for=lambda c: _CPU_AUTOCAST + f"F.binary_cross_entropy(torch.sigmoid(z), y{_args(c)})",
    ),
    Formulation(
        name="autocast.logits",
        framework="autocast",
        quantity="bce",
        via_probabilities=False,
        code=_CPU_AUTOCAST + "F.binary_cross_entropy_with_logits(z, y)",
        summary="BCE from logits under CPU autocast: computed in float32",
        compute=lambda case: _logits(case, _cpu_autocast),
        requires=("torch",),
        code_for=lambda c: _CPU_AUTOCAST + f"F.binary_cross_entropy_with_logits(z, y{_args(c)})",
    ),
    Formulation(
        name="autocast.cuda_probabilities",
        framework="autocast",
        quantity="bce",
        via_probabilities=True,
        code=_CUDA_AUTOCAST + "F.binary_cross_entropy(torch.sigmoid(z), y)",
        summary="BCE on probabilities under CUDA autocast, which refuses it (status: torch's "
        "error); needs a CUDA device",
        compute=_cuda_probabilities,
        requires=("torch",),
        code_for=lambda c: (
            _CUDA_AUTOCAST + f"F.binary_cross_entropy(torch.sigmoid(z), y{_args(c)})"
        ),
    ),
    Formulation(
        name="torch.sigmoid",
        framework="torch",
        quantity="sigmoid",
        via_probabilities=True,
        code="torch.sigmoid(z)",
        summary="PyTorch's sigmoid",
        compute=_elementwise("sigmoid"),
        requires=("torch",),
    ),
    Formulation(
        name="torch.naive_sigmoid",
        framework="torch",
        quantity="sigmoid",
        via_probabilities=True,
        code="1/(1+torch.exp(-z))",
        summary="sigmoid written out by hand: exp(-z) overflows for very negative z",
        compute=_elementwise("naive_sigmoid"),
        requires=("torch",),
    ),
    Formulation(
        name="torch.logsigmoid",
        framework="torch",
        quantity="log_sigmoid",
        via_probabilities=False,
        code="F.logsigmoid(z)",
        summary="PyTorch's log-sigmoid",
        compute=_elementwise("logsigmoid"),
        requires=("torch",),
    ),
    Formulation(
        name="torch.log_of_sigmoid",
        framework="torch",
        quantity="log_sigmoid",
        via_probabilities=True,
        code="torch.log(torch.sigmoid(z))",
        summary="log of the probability: -inf once sigmoid underflows",
        compute=_elementwise("log_of_sigmoid"),
        requires=("torch",),
    ),
    Formulation(
        name="torch.softplus",
        framework="torch",
        quantity="softplus",
        via_probabilities=False,
        code="F.softplus(z)",
        summary="PyTorch's softplus (switches to z above its threshold of 20)",
        compute=_elementwise("softplus"),
        requires=("torch",),
    ),
    Formulation(
        name="torch.naive_softplus",
        framework="torch",
        quantity="softplus",
        via_probabilities=False,
        code="torch.log(1 + torch.exp(z))",
        summary="softplus written out by hand: exp(z) overflows",
        compute=_elementwise("naive_softplus"),
        requires=("torch",),
    ),
)
