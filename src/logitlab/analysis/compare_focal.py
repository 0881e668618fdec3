"""Binary focal loss, every code path: what each returns against the exact value.

:func:`compare_focal` builds the same :class:`~logitlab.analysis.compare.Comparison`
and :class:`~logitlab.analysis.compare.Row` objects as :func:`~logitlab.analysis.compare.compare`
does for BCE, with the same row builder (``compare._row``: the run, the errors, the
flags); the exact reference is :func:`logitlab.exact.binary_focal_loss`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from logitlab import exact
from logitlab.analysis.compare import Comparison, _row, select_formulations
from logitlab.core.focal_inputs import focal_case
from logitlab.core.formats import FloatFormat
from logitlab.formulations import Formulation, all_formulations

__all__ = ["DEFAULT_FRAMEWORKS", "compare_focal"]

#: The rows shown unless asked for more: PyTorch's own formula and the torch libraries.
DEFAULT_FRAMEWORKS = ("torch", "kornia", "torchvision", "stable")


def _chosen(
    formulations: Sequence[str] | None, frameworks: Sequence[str] | None
) -> list[Formulation]:
    if formulations is None and frameworks is None:
        return [f for f in all_formulations("focal") if f.framework in DEFAULT_FRAMEWORKS]
    return select_formulations("focal", formulations, frameworks)


def compare_focal(
    logits: Any = (-3.0, 3.0, 20.0),
    targets: Any = (1.0, 1.0, 1.0),
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    dtype: str | FloatFormat = "float32",
    reduction: str = "mean",
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
) -> Comparison:
    """Run every binary focal loss code path on one input, against the exact value.

    ``alpha`` in [0, 1] or ``None`` (no weighting), ``gamma >= 0``; semantics are
    torchvision's ``sigmoid_focal_loss``.  By default the rows are PyTorch's, kornia's,
    torchvision's and ``logitlab.stable``'s (:data:`DEFAULT_FRAMEWORKS`);
    ``frameworks=["all"]`` adds optax and Keras.  Raises :class:`~logitlab.InputError`
    naming the argument for bad input.

    >>> c = compare_focal([20.0], [1.0], reduction="none", formulations=["torch.naive_focal"])
    >>> c.row("torch.naive_focal").value.tolist(), c.row("torch.naive_focal").flags
    ([nan], ('sigmoid saturated', 'non-finite'))
    """
    case = focal_case(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction, dtype=dtype)
    chosen = _chosen(formulations, frameworks)
    per_element = exact.binary_focal_loss(case.logits, case.targets, case.alpha, case.gamma, "none")
    ex = exact.reduce(per_element, case.reduction)
    exact_value, exact_grad = ex.value_rounded(case.dtype), ex.grad_rounded(case.dtype)
    exact_elements = per_element.value_rounded(case.dtype)
    rows = tuple(
        _row(
            f,
            case,
            ex,
            exact_value,
            exact_grad,
            exact_elements,
            quantity="focal",
            classify_kwargs={},
        )
        for f in chosen
    )
    return Comparison(case=case, exact=ex, rows=rows, notes=case.notes, quantity="focal")
