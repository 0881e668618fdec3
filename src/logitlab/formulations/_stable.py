"""logitlab's own stable functions, as rows beside the frameworks' code paths.

They run on torch tensors of the case's dtype, so values are what a training loop gets
and gradients come from :mod:`logitlab.stable`'s own ``torch.autograd.Function``.
Nothing is imported until a formulation runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logitlab.formulations._base import BCEInputs, ElementwiseInputs, Formulation, Outcome

# Same plumbing as PyTorch's own rows: exact conversion in, autograd out.
from logitlab.formulations._torch import _args, _outcome, _tensor

__all__ = ["FORMULATIONS"]


def _bce(case: BCEInputs) -> Outcome:
    from logitlab import stable

    z = _tensor(case.logits, case, requires_grad=True)
    loss = stable.binary_cross_entropy_with_logits(
        z,
        _tensor(case.targets, case),
        weight=_tensor(case.weight, case),
        pos_weight=_tensor(case.pos_weight, case),
        reduction=case.reduction,
    )
    return _outcome(loss, z)


def _bce_code(case: BCEInputs) -> str:
    return f"logitlab.stable.binary_cross_entropy_with_logits(z, y{_args(case)})"


def _focal(case: Any) -> Outcome:
    from logitlab import stable

    z = _tensor(case.logits, case, requires_grad=True)
    loss = stable.binary_focal_loss_with_logits(
        z, _tensor(case.targets, case), alpha=case.alpha, gamma=case.gamma, reduction=case.reduction
    )
    return _outcome(loss, z)


def _elementwise(name: str) -> Callable[[Any], Outcome]:
    def compute(case: ElementwiseInputs) -> Outcome:
        from logitlab import stable

        z = _tensor(case.logits, case, requires_grad=True)
        return _outcome(getattr(stable, name)(z), z)

    return compute


_WHY = {
    "sigmoid": "1/(1+e) or e/(1+e) with e = exp(-|z|), in float64, rounded once",
    "log_sigmoid": "min(z, 0) - log1p(exp(-|z|)), in float64, rounded once",
    "softplus": "max(z, 0) + log1p(exp(-|z|)), in float64, rounded once",
}

FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="stable.bce",
        framework="stable",
        quantity="bce",
        via_probabilities=False,
        code="logitlab.stable.binary_cross_entropy_with_logits(z, y)",
        summary=(
            "y*softplus(-z) + (1-y)*softplus(z): non-negative terms, float64 inside, "
            "one rounding; accurate backward"
        ),
        compute=_bce,
        requires=("torch",),
        code_for=_bce_code,
    ),
    Formulation(
        name="stable.focal",
        framework="stable",
        quantity="focal",
        via_probabilities=False,
        code="logitlab.stable.binary_focal_loss_with_logits(z, y, alpha, gamma)",
        summary=(
            "torchvision's focal loss with 1 - p_t = y*sigmoid(-z) + (1-y)*sigmoid(z) and "
            "log-sigmoid terms, float64 inside, one rounding"
        ),
        compute=_focal,
        requires=("torch",),
    ),
    *(
        Formulation(
            name=f"stable.{name}",
            framework="stable",
            quantity=name,
            via_probabilities=name == "sigmoid",
            code=f"logitlab.stable.{name}(z)",
            summary=_WHY[name],
            compute=_elementwise(name),
            requires=("torch",),
        )
        for name in ("sigmoid", "log_sigmoid", "softplus")
    ),
)
