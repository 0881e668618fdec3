"""PyTorch's softmax cross-entropy paths, each the line a user writes.

``F.cross_entropy`` (log-softmax and NLL fused; weight, ignore_index, label smoothing and
probability targets passed through), ``F.nll_loss(F.log_softmax(z))``, the probabilities
path ``F.nll_loss(torch.log(F.softmax(z)))`` (``inf`` once a class probability underflows
to 0), the hand-written ``-(t * torch.log(F.softmax(z, 1))).sum(1)``, the double-softmax
mistake ``F.cross_entropy(F.softmax(z, 1), t)``, and ``F.cross_entropy`` and
``log(softmax)`` under ``torch.autocast("cpu", dtype=torch.bfloat16)``.

What CPU autocast does here (torch 2.x, measured by the tests): it lowers only the ops on
its lower-precision list (matmul, conv, linear ...); ``cross_entropy`` and ``nll_loss`` are
on its float32 list, so their result is float32 whatever the input dtype, while
``softmax``, ``log_softmax`` and ``log`` run in their input's dtype.  For float32 logits
the autocast rows therefore equal the eager ones; for float16/bfloat16 logits the loss
comes back as float32 (the row's note says so).

Gradients come from torch autograd (``backward`` with ones on the unreduced loss: the
gradient of the sum), run outside the autocast region as training loops do.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from logitlab.core.inputs import SoftmaxCase
from logitlab.formulations._base import Formulation, NotApplicable, Outcome
from logitlab.formulations._torch import _outcome, _tensor

__all__ = ["FORMULATIONS", "SoftmaxCase", "autocast_cpu", "ce_args"]


def autocast_cpu() -> Any:
    """``torch.autocast("cpu", dtype=torch.bfloat16)``, the context users write."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


def _target(case: SoftmaxCase) -> Any:
    import torch

    if case.class_indices:
        return torch.from_numpy(np.asarray(case.target, dtype=np.int64))
    return _tensor(case.target, case)


def _has_ignored(case: SoftmaxCase) -> bool:
    return case.class_indices and bool((np.asarray(case.target) == case.ignore_index).any())


def ce_args(case: SoftmaxCase, smoothing: bool = True) -> str:
    """The keyword arguments of the user's line that differ from the defaults."""
    extra = ""
    if case.weight is not None:
        extra += ", weight=w"
    if _has_ignored(case):
        extra += f", ignore_index={case.ignore_index}"
    if case.reduction != "mean":
        extra += f", reduction={case.reduction!r}"
    if smoothing and case.label_smoothing:
        extra += f", label_smoothing={case.label_smoothing!r}"
    return extra


def _nll_only(case: SoftmaxCase, what: str) -> None:
    if not case.class_indices:
        raise NotApplicable(f"{what} takes class indices; probability targets need F.cross_entropy")
    if case.label_smoothing:
        raise NotApplicable(f"{what} has no label_smoothing; F.cross_entropy has")


def _ce(kind: str, autocast: bool = False) -> Any:
    def compute(case: SoftmaxCase) -> Outcome:
        import torch
        import torch.nn.functional as F

        z = _tensor(case.logits, case, requires_grad=True)
        t = _target(case)
        w = _tensor(case.weight, case)
        kw: dict[str, Any] = {"weight": w, "ignore_index": case.ignore_index}
        p = None
        if kind in ("log_softmax", "log_of_softmax"):
            _nll_only(case, "F.nll_loss")
        with autocast_cpu() if autocast else contextlib.nullcontext():
            if kind == "cross_entropy":
                loss = F.cross_entropy(
                    z, t, **kw, reduction=case.reduction, label_smoothing=case.label_smoothing
                )
            elif kind == "double_softmax":
                p = F.softmax(z, dim=1)
                loss = F.cross_entropy(
                    p, t, **kw, reduction=case.reduction, label_smoothing=case.label_smoothing
                )
            elif kind == "log_softmax":
                loss = F.nll_loss(F.log_softmax(z, dim=1), t, **kw, reduction=case.reduction)
            else:
                p = F.softmax(z, dim=1)
                loss = F.nll_loss(torch.log(p), t, **kw, reduction=case.reduction)
        return _outcome(loss, z, p)

    return compute


def _handwritten(case: SoftmaxCase) -> Outcome:
    import torch
    import torch.nn.functional as F

    if case.weight is not None:
        raise NotApplicable(
            "the hand-written line has no class weight (its mean divides by N, "
            "F.cross_entropy's by the summed weight)"
        )
    if _has_ignored(case):
        raise NotApplicable("the hand-written line has no ignore_index")
    z = _tensor(case.logits, case, requires_grad=True)
    n_classes = case.logits.shape[1]
    if case.class_indices:
        t = F.one_hot(torch.from_numpy(np.asarray(case.target, dtype=np.int64)), n_classes)
        t = t.to(z.dtype)
    else:
        t = _tensor(case.target, case)
    if case.label_smoothing:
        t = t * (1 - case.label_smoothing) + case.label_smoothing / n_classes
    p = F.softmax(z, 1)
    loss = -(t * torch.log(p)).sum(1)
    if case.reduction == "mean":
        loss = loss.mean()
    elif case.reduction == "sum":
        loss = loss.sum()
    return _outcome(loss, z, p)


def _handwritten_code(case: SoftmaxCase) -> str:
    t = "F.one_hot(t, C)" if case.class_indices else "t"
    if case.label_smoothing:
        t = f"({t}*(1-{case.label_smoothing!r}) + {case.label_smoothing!r}/C)"
    suffix = {"mean": ".mean()", "sum": ".sum()", "none": ""}[case.reduction]
    return f"-({t} * torch.log(F.softmax(z, 1))).sum(1){suffix}"


_AUTOCAST = 'with torch.autocast("cpu", dtype=torch.bfloat16): '

FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="torch.cross_entropy",
        framework="torch",
        quantity="softmax_ce",
        via_probabilities=False,
        code="F.cross_entropy(z, t)",
        summary="PyTorch's fused log-softmax + NLL (nn.CrossEntropyLoss)",
        compute=_ce("cross_entropy"),
        requires=("torch",),
        code_for=lambda c: f"F.cross_entropy(z, t{ce_args(c)})",
    ),
    Formulation(
        name="torch.log_softmax_nll",
        framework="torch",
        quantity="softmax_ce",
        via_probabilities=False,
        code="F.nll_loss(F.log_softmax(z, dim=1), t)",
        summary="log-softmax, then NLL (nn.LogSoftmax + nn.NLLLoss)",
        compute=_ce("log_softmax"),
        requires=("torch",),
        code_for=lambda c: f"F.nll_loss(F.log_softmax(z, dim=1), t{ce_args(c, False)})",
    ),
    Formulation(
        name="torch.log_of_softmax",
        framework="torch",
        quantity="softmax_ce",
        via_probabilities=True,
        code="F.nll_loss(torch.log(F.softmax(z, dim=1)), t)",
        summary="log of the softmax probabilities: inf once a probability underflows",
        compute=_ce("log_of_softmax"),
        requires=("torch",),
        code_for=lambda c: f"F.nll_loss(torch.log(F.softmax(z, dim=1)), t{ce_args(c, False)})",
    ),
    Formulation(
        name="torch.handwritten",
        framework="torch",
        quantity="softmax_ce",
        via_probabilities=True,
        code="-(F.one_hot(t, C) * torch.log(F.softmax(z, 1))).sum(1).mean()",
        summary="cross-entropy written out on the probabilities: 0 * log 0 = NaN at a mask",
        compute=_handwritten,
        requires=("torch",),
        code_for=_handwritten_code,
    ),
    Formulation(
        name="torch.double_softmax",
        framework="torch",
        quantity="softmax_ce",
        via_probabilities=True,
        code="F.cross_entropy(F.softmax(z, dim=1), t)",
        summary="softmax applied twice: F.cross_entropy expects logits, not probabilities",
        compute=_ce("double_softmax"),
        requires=("torch",),
        code_for=lambda c: f"F.cross_entropy(F.softmax(z, dim=1), t{ce_args(c)})",
        double_softmax=True,
    ),
    Formulation(
        name="autocast.cross_entropy",
        framework="autocast",
        quantity="softmax_ce",
        via_probabilities=False,
        code=_AUTOCAST + "F.cross_entropy(z, t)",
        summary="F.cross_entropy under CPU autocast (bfloat16): autocast runs it in float32",
        compute=_ce("cross_entropy", autocast=True),
        requires=("torch",),
        code_for=lambda c: _AUTOCAST + f"F.cross_entropy(z, t{ce_args(c)})",
    ),
    Formulation(
        name="autocast.log_of_softmax",
        framework="autocast",
        quantity="softmax_ce",
        via_probabilities=True,
        code=_AUTOCAST + "F.nll_loss(torch.log(F.softmax(z, dim=1)), t)",
        summary="log(softmax) under CPU autocast: softmax and log in the input dtype, NLL in "
        "float32",
        compute=_ce("log_of_softmax", autocast=True),
        requires=("torch",),
        code_for=lambda c: (
            _AUTOCAST + f"F.nll_loss(torch.log(F.softmax(z, dim=1)), t{ce_args(c, False)})"
        ),
    ),
)
