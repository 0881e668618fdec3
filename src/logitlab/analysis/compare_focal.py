"""Binary focal loss, every code path: what each returns against the exact value.

:func:`compare_focal` builds the same :class:`~logitlab.analysis.compare.Comparison`
and :class:`~logitlab.analysis.compare.Row` objects as :func:`~logitlab.analysis.compare.compare`
does for BCE: every row runs through :func:`logitlab.formulations.run.run`, errors come
from :mod:`logitlab.core.ulp`, flags from :func:`logitlab.analysis.flags.classify_run`,
and the exact reference is :func:`logitlab.exact.binary_focal_loss`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from logitlab import exact
from logitlab.analysis.compare import Comparison, Row, _errors, select_formulations
from logitlab.analysis.flags import classify_run
from logitlab.core.focal_inputs import focal_case
from logitlab.core.formats import FloatFormat
from logitlab.core.inputs import FocalCase
from logitlab.formulations import Formulation, all_formulations
from logitlab.formulations.run import run

__all__ = ["DEFAULT_FRAMEWORKS", "compare_focal", "focal_row"]

#: The rows shown unless asked for more: PyTorch's own formula and the torch libraries.
DEFAULT_FRAMEWORKS = ("torch", "kornia", "torchvision", "stable")


def focal_row(
    f: Formulation,
    case: FocalCase,
    ex: exact.ExactResult,
    exact_grad: np.ndarray,
    exact_elements: np.ndarray,
) -> Row:
    """One formulation's :class:`Row` on ``case`` (``ex`` reduced as the case says,
    ``exact_elements`` the unreduced exact values rounded to the dtype)."""
    result = run(f, case)
    if not result.ok:
        return Row(f, result.code, result.status, result.reason)
    fmt = case.dtype
    assert result.value is not None
    value = result.value.reshape(ex.shape)
    ulps, rels = _errors(value, ex.values, fmt)
    grad = gulps = grels = None
    if result.grad is not None:
        grad = result.grad.reshape(ex.grad_shape)
        gulps, grels = _errors(grad, ex.grads, fmt)
    # A reduced value cannot say which element went wrong: the same path, unreduced, can.
    elements = value
    if case.reduction != "none":
        unreduced = run(f, replace(case, reduction="none"))
        elements = (
            unreduced.value.reshape(case.shape)
            if unreduced.ok and unreduced.value is not None
            else np.full(case.shape, np.nan if not np.isfinite(value).all() else 0.0)
        )
    flags = classify_run(
        result,
        value=elements,
        exact_value=exact_elements,
        grad=grad,
        exact_grad=exact_grad,
        logits=case.logits,
    )
    return Row(
        f,
        result.code,
        "ok",
        None,
        value,
        grad,
        ulps,
        rels,
        gulps,
        grels,
        element_flags=flags.per_element("both"),
        flags=flags.flags,
        element_loss_flags=flags.per_element("loss"),
        element_grad_flags=flags.per_element("gradient"),
        loss_flags=flags.loss_flags,
        grad_flags=flags.grad_flags,
        notes=tuple(result.notes()),
    )


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
    exact_grad = ex.grad_rounded(case.dtype)
    exact_elements = per_element.value_rounded(case.dtype)
    rows = tuple(focal_row(f, case, ex, exact_grad, exact_elements) for f in chosen)
    extra: dict[str, Any] = {}
    if "quantity" in {fl.name for fl in dataclasses.fields(Comparison)}:
        extra["quantity"] = "focal"
    return Comparison(case=case, exact=ex, rows=rows, notes=case.notes, **extra)  # type: ignore[arg-type]
