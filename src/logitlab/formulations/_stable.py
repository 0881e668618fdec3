"""logitlab's own stable functions, as rows beside the frameworks' code paths.

They run on torch tensors of the case's dtype, so values are what a training loop gets
and gradients come from :mod:`logitlab.stable`'s own ``torch.autograd.Function``.
Nothing is imported until a formulation runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from logitlab.formulations._base import Formulation, Outcome, as_float64

__all__ = ["FORMULATIONS"]


def _tensor(values: np.ndarray | None, case: Any, requires_grad: bool = False) -> Any:
    import torch

    if values is None:
        return None
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
    return t.to(case.dtype.torch_dtype()).requires_grad_(requires_grad)


def _to_numpy(t: Any) -> np.ndarray:
    # NumPy has no bfloat16: widen to float64 (exact) before handing over.
    return as_float64(t.detach().double().numpy())


def _outcome(out: Any, z: Any) -> Outcome:
    import torch

    out.backward(torch.ones_like(out))
    return Outcome(value=_to_numpy(out), grad=None if z.grad is None else _to_numpy(z.grad))


def _bce(case: Any) -> Outcome:
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


def _bce_code(case: Any) -> str:
    extra = ""
    if case.weight is not None:
        extra += ", weight=w"
    if case.pos_weight is not None:
        extra += ", pos_weight=pw"
    if case.reduction != "mean":
        extra += f", reduction={case.reduction!r}"
    return f"logitlab.stable.binary_cross_entropy_with_logits(z, y{extra})"


def _elementwise(name: str) -> Callable[[Any], Outcome]:
    def compute(case: Any) -> Outcome:
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
