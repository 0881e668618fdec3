"""Validate and round user input once, at the public entry points.

A :class:`BCECase` holds what a framework is given: logits, targets, weight and
pos_weight as float64 arrays whose values are exactly representable in ``dtype`` (rounded
once, to nearest), the reduction and the format.  Every error names its argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab.core.errors import InputError
from logitlab.core.formats import FloatFormat, get_format

__all__ = [
    "MAX_ELEMENTS",
    "REDUCTIONS",
    "BCECase",
    "ElementwiseCase",
    "FocalCase",
    "SoftmaxCase",
    "as_float_array",
    "check_reduction",
]

#: The most elements one comparison accepts: each costs an exact mpmath evaluation.
MAX_ELEMENTS = 10_000
REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: Any) -> str:
    if not isinstance(reduction, str) or reduction.strip().lower() not in REDUCTIONS:
        raise InputError(
            "reduction", f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}"
        )
    return reduction.strip().lower()


#: Makes the error for an argument and a message (``InputError`` unless a caller, such as
#: ``--from``, names the argument its own way).
ErrorFactory = Callable[[str, str], InputError]


def as_float_array(
    values: Any,
    argument: str,
    *,
    allow_inf: bool = False,
    max_elements: int = MAX_ELEMENTS,
    error: ErrorFactory = InputError,
) -> np.ndarray:
    """``values`` as a non-empty float64 array with no NaN (and no inf unless allowed)."""
    if isinstance(values, str):
        raise error(argument, f"expected numbers, got the string {values!r}")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise error(argument, f"expected numbers, got {values!r}") from None
    if array.size == 0:
        raise error(argument, "is empty; give at least one value")
    if array.size > max_elements:
        raise error(argument, f"has {array.size} elements; at most {max_elements} allowed")
    bad = np.isnan(array) if allow_inf else ~np.isfinite(array)
    if bad.any():
        index = int(np.flatnonzero(bad.ravel())[0])
        what = "NaN" if allow_inf else "NaN or infinite"
        raise error(argument, f"value at index {index} is {what}; give finite numbers")
    return array


def _index(array: np.ndarray, mask: np.ndarray) -> tuple[int, float]:
    flat = int(np.flatnonzero(mask.ravel())[0])
    return flat, float(array.ravel()[flat])


@dataclass(frozen=True)
class ElementwiseCase:
    """Inputs of an elementwise quantity (sigmoid, log-sigmoid, softplus): logits as float64
    holding values of ``dtype``."""

    logits: np.ndarray
    dtype: FloatFormat


@dataclass(frozen=True)
class BCECase:
    """The inputs of one binary cross-entropy evaluation, as the framework receives them."""

    logits: np.ndarray
    targets: np.ndarray
    weight: np.ndarray | None
    pos_weight: np.ndarray | None
    reduction: str
    dtype: FloatFormat
    notes: tuple[str, ...] = field(default=())

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.logits.shape)

    @classmethod
    def from_user(
        cls,
        logits: Any,
        targets: Any,
        *,
        weight: Any = None,
        pos_weight: Any = None,
        reduction: Any = "mean",
        dtype: str | FloatFormat = "float32",
        max_elements: int = MAX_ELEMENTS,
        error: ErrorFactory = InputError,
    ) -> BCECase:
        """Check the input, broadcast logits with targets, and round everything to ``dtype``.

        Raises :class:`~logitlab.InputError` naming the argument for: non-numbers, empty or
        oversized input, NaN anywhere, infinite targets or weights, negative weights (the
        audit's rule too), targets outside [0, 1], shapes that do not broadcast, an unknown
        dtype or reduction.  Infinite logits are allowed: what frameworks do there is worth
        seeing.
        """
        fmt = get_format(dtype)
        reduction = check_reduction(reduction)
        z = as_float_array(logits, "logits", allow_inf=True, max_elements=max_elements, error=error)
        y = as_float_array(targets, "targets", max_elements=max_elements, error=error)
        outside = (y < 0) | (y > 1)
        if outside.any():
            i, v = _index(y, outside)
            raise error("targets", f"value {v!r} at index {i} is outside [0, 1]")
        try:
            shape = np.broadcast_shapes(z.shape, y.shape)
        except ValueError:
            raise error(
                "targets", f"shape {y.shape} does not broadcast with logits shape {z.shape}"
            ) from None
        if math.prod(shape) > max_elements:
            raise error(
                "targets", f"broadcasting gives {math.prod(shape)} elements; at most {max_elements}"
            )
        notes: list[str] = []
        z = np.broadcast_to(z, shape).copy()
        y = np.broadcast_to(y, shape).copy()
        z_rounded = fmt.round(z)
        changed = (z_rounded != z) & np.isfinite(z)
        overflowed = np.isinf(z_rounded) & np.isfinite(z)
        if overflowed.any():
            i, v = _index(z, overflowed)
            notes.append(f"logit {v!r} (index {i}) overflows {fmt.name} and becomes infinite")
        elif changed.any():
            i, v = _index(z, changed)
            notes.append(
                f"logits are rounded to {fmt.name}: {v!r} becomes {float(z_rounded.ravel()[i])!r}"
            )
        arrays: dict[str, np.ndarray | None] = {}
        for name, raw in (("weight", weight), ("pos_weight", pos_weight)):
            if raw is None:
                arrays[name] = None
                continue
            a = as_float_array(raw, name, max_elements=max_elements, error=error)
            try:
                ok = np.broadcast_shapes(a.shape, shape) == shape
            except ValueError:
                ok = False
            if not ok:
                raise error(name, f"shape {a.shape} does not broadcast to logits shape {shape}")
            if (a < 0).any():
                i, v = _index(a, a < 0)
                raise error(name, f"value {v!r} at index {i} is negative; give weights >= 0")
            rounded = fmt.round(a)
            if not np.isfinite(rounded).all():
                i, v = _index(a, ~np.isfinite(rounded))
                raise error(name, f"value {v!r} at index {i} overflows {fmt.name}")
            arrays[name] = rounded
        return cls(
            logits=z_rounded,
            targets=fmt.round(y),
            weight=arrays["weight"],
            pos_weight=arrays["pos_weight"],
            reduction=reduction,
            dtype=fmt,
            notes=tuple(notes),
        )


def parse_numbers(text: str | Sequence[str], argument: str) -> list[float]:
    """Parse ``"20 20"``, ``"20,20"`` or ``["20", "20"]`` into floats, naming the argument."""
    parts: list[str] = []
    for chunk in [text] if isinstance(text, str) else list(text):
        parts.extend(p for p in chunk.replace(",", " ").split() if p)
    if not parts:
        raise InputError(argument, "is empty; give at least one number")
    values = []
    for p in parts:
        try:
            values.append(float(p))
        except ValueError:
            raise InputError(argument, f"{p!r} is not a number") from None
    return values


@dataclass(frozen=True)
class SoftmaxCase:
    """Softmax cross-entropy inputs, as the framework receives them.

    ``logits`` is ``(N, C)`` float64 holding ``dtype`` values (``-inf`` marks a masked
    entry); ``target`` holds class indices (an integer array of shape ``(N,)``) or
    probabilities (a float64 array of the logits' shape, ``dtype`` values).  ``weight`` is
    a per-class weight ``(C,)`` or ``None``; ``ignore_index``, ``label_smoothing`` and
    ``reduction`` mean what they mean in ``F.cross_entropy``.
    """

    logits: np.ndarray
    target: np.ndarray
    dtype: FloatFormat
    reduction: str = "none"
    weight: np.ndarray | None = None
    ignore_index: int = -100
    label_smoothing: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def labels(self) -> np.ndarray:
        """The class-index target (an error for probability targets)."""
        if not self.class_indices:
            raise ValueError("this case has probability targets, not class indices")
        return self.target

    @property
    def class_indices(self) -> bool:
        return bool(np.issubdtype(np.asarray(self.target).dtype, np.integer))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.logits.shape)


@dataclass(frozen=True)
class FocalCase:
    """Binary focal loss inputs (torchvision's ``sigmoid_focal_loss`` semantics).

    ``loss = alpha_t * (1 - p_t)**gamma * BCE(z, y)`` with ``p = sigmoid(z)``,
    ``p_t = p y + (1 - p)(1 - y)`` and ``alpha_t = alpha y + (1 - alpha)(1 - y)``;
    ``alpha=None`` (torchvision's ``alpha < 0``) means no alpha weighting.
    """

    logits: np.ndarray
    targets: np.ndarray
    dtype: FloatFormat
    alpha: float | None = 0.25
    gamma: float = 2.0
    reduction: str = "none"
    notes: tuple[str, ...] = field(default=())

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.logits.shape)
