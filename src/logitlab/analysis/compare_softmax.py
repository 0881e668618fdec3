"""compare for softmax cross-entropy: every code path on one ``(N, C)`` input, measured
against the exact value (:func:`logitlab.exact.softmax_cross_entropy`).

Values are per sample (``N`` of them unreduced, one for mean/sum), gradients per logit
(``N x C``), flags per sample (a row's gradient flags hold where any of its ``C``
entries' do).  The rows, flags and JSON are those of :mod:`logitlab.analysis.compare`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from logitlab import exact
from logitlab.analysis.compare import Comparison, _row, select_formulations
from logitlab.core.formats import FloatFormat
from logitlab.core.inputs import SoftmaxCase

__all__ = ["compare_softmax"]


def compare_softmax(
    logits: Any,
    target: Any,
    *,
    dtype: str | FloatFormat = "float32",
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
) -> Comparison:
    """Run every softmax cross-entropy code path on the same input, against the exact value.

    ``logits`` is one row of ``C`` logits or ``N`` rows (``-inf`` masks a class);
    ``target`` class indices (one per row) or probabilities (the logits' shape); the other
    arguments are ``F.cross_entropy``'s.  Rows: PyTorch's paths and ``logitlab.stable`` by
    default, ``frameworks=["all"]`` for every one (optax, Keras, NumPy, SciPy, autocast).
    Raises :class:`~logitlab.InputError` naming the argument for bad input.

    >>> c = compare_softmax([0, -110], 1)
    >>> c.row("torch.cross_entropy").value.item(), c.row("torch.log_of_softmax").value.item()
    (110.0, inf)
    >>> c.row("torch.log_of_softmax").loss_flags
    ('softmax underflow', 'log of 0', 'non-finite')
    """
    case = SoftmaxCase.from_user(
        logits,
        target,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
        dtype=dtype,
    )
    chosen = select_formulations("softmax_ce", formulations, frameworks)
    args = (case.logits, case.target, case.weight, case.ignore_index)
    per_sample = exact.softmax_cross_entropy(
        *args, reduction="none", label_smoothing=case.label_smoothing
    )
    ex = (
        per_sample
        if case.reduction == "none"
        else exact.softmax_cross_entropy(
            *args, reduction=case.reduction, label_smoothing=case.label_smoothing
        )
    )
    exact_value, exact_grad = ex.value_rounded(case.dtype), ex.grad_rounded(case.dtype)
    exact_samples = (
        exact_value if case.reduction == "none" else per_sample.value_rounded(case.dtype)
    )
    # A reduced loss's gradient is the per-sample gradient scaled; flags read the one
    # the row returned against the exact one of the same reduction.
    q = case.coefficients
    rows = tuple(
        _row(
            f,
            case,
            ex,
            exact_value,
            exact_grad,
            exact_samples,
            quantity="softmax_ce",
            element_shape=(case.shape[0],),
            classify_kwargs={"coefficients": q},
        )
        for f in chosen
    )
    return Comparison(
        case=replace(case), exact=ex, rows=rows, notes=case.notes, quantity="softmax_ce"
    )
