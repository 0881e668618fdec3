"""PyTorch's softmax cross-entropy paths, and the case they take.

``F.cross_entropy`` (log-softmax and NLL fused), ``F.nll_loss(F.log_softmax(z))`` and the
probabilities path ``F.nll_loss(torch.log(F.softmax(z)))``, which gives ``inf`` once a
class probability underflows to 0.  Gradients come from torch autograd (``backward`` with
ones on the unreduced loss: the gradient of the sum).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logitlab.core.inputs import SoftmaxCase
from logitlab.formulations._base import Formulation, Outcome
from logitlab.formulations._torch import _outcome, _tensor

__all__ = ["FORMULATIONS", "SoftmaxCase"]


def _ce(kind: str) -> Any:
    def compute(case: SoftmaxCase) -> Outcome:
        import torch
        import torch.nn.functional as F

        z = _tensor(case.logits, case, requires_grad=True)
        t = torch.from_numpy(np.asarray(case.labels, dtype=np.int64))
        p = None
        if kind == "cross_entropy":
            loss = F.cross_entropy(z, t, reduction=case.reduction)
        elif kind == "log_softmax":
            loss = F.nll_loss(F.log_softmax(z, dim=1), t, reduction=case.reduction)
        else:
            p = F.softmax(z, dim=1)
            loss = F.nll_loss(torch.log(p), t, reduction=case.reduction)
        return _outcome(loss, z, p)

    return compute


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
    ),
)
