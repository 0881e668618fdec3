"""Validate a binary focal loss input once, at the public entry points.

:func:`focal_case` checks logits and targets as :meth:`BCECase.from_user` does (and with
its messages), then ``alpha`` and ``gamma``, and returns the
:class:`~logitlab.core.inputs.FocalCase` every focal formulation and reference reads.
"""

from __future__ import annotations

import math
from typing import Any

from logitlab.core.errors import InputError
from logitlab.core.formats import FloatFormat
from logitlab.core.inputs import MAX_ELEMENTS, BCECase, ErrorFactory, FocalCase

__all__ = ["check_alpha", "check_gamma", "focal_case"]


def _number(value: Any, argument: str, error: ErrorFactory) -> float:
    if isinstance(value, (bool, str)):
        raise error(argument, f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise error(argument, f"expected a number, got {value!r}") from None


def check_alpha(alpha: Any, error: ErrorFactory = InputError) -> float | None:
    """``alpha`` as a float in [0, 1], or ``None`` (no class weighting)."""
    if alpha is None:
        return None
    a = _number(alpha, "alpha", error)
    if not (0.0 <= a <= 1.0):
        raise error("alpha", f"{alpha!r} is outside [0, 1]; give a number in [0, 1] or None")
    return a


def check_gamma(gamma: Any, error: ErrorFactory = InputError) -> float:
    """``gamma`` as a finite float >= 0."""
    g = _number(gamma, "gamma", error)
    if not (math.isfinite(g) and g >= 0):
        raise error("gamma", f"{gamma!r} is not a finite number >= 0")
    return g


def focal_case(
    logits: Any,
    targets: Any,
    *,
    alpha: Any = 0.25,
    gamma: Any = 2.0,
    reduction: Any = "mean",
    dtype: str | FloatFormat = "float32",
    max_elements: int = MAX_ELEMENTS,
    error: ErrorFactory = InputError,
) -> FocalCase:
    """A :class:`FocalCase` from user input, every error naming its argument.

    Logits and targets: as :meth:`BCECase.from_user` (numbers, no NaN, finite targets in
    [0, 1], shapes that broadcast, rounded once to ``dtype``; infinite logits allowed).
    ``alpha`` is a number in [0, 1] or ``None``; ``gamma`` a finite number >= 0.  Both are
    kept as the float64 values given (frameworks combine them with tensors in their own
    ways; at the defaults 0.25 and 2 every format holds them exactly).

    >>> case = focal_case([1, 2], 1, alpha=None, gamma=0)
    >>> case.targets.tolist(), case.alpha, case.gamma, case.reduction
    ([1.0, 1.0], None, 0.0, 'mean')
    """
    a = check_alpha(alpha, error)
    g = check_gamma(gamma, error)
    bce = BCECase.from_user(
        logits,
        targets,
        reduction=reduction,
        dtype=dtype,
        max_elements=max_elements,
        error=error,
    )
    return FocalCase(
        logits=bce.logits,
        targets=bce.targets,
        dtype=bce.dtype,
        alpha=a,
        gamma=g,
        reduction=bce.reduction,
        notes=bce.notes,
    )
