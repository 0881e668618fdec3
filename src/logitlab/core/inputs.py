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

    @property
    def coefficients(self) -> np.ndarray:
        """``q`` of shape ``(N, C)``: how much each class's ``-log p`` counts in each row's
        loss (``w_c ((1 - eps) t_c + eps / C)``, 0 for an ignored row), as float64."""
        n, c = self.logits.shape
        eps = float(self.label_smoothing)
        if self.class_indices:
            t = np.asarray(self.target, dtype=np.int64)
            onehot = np.zeros((n, c))
            kept = t != self.ignore_index
            onehot[np.flatnonzero(kept), t[kept]] = 1.0
            q = (1 - eps) * onehot + eps / c
            q[~kept] = 0.0
        else:
            q = (1 - eps) * np.asarray(self.target, dtype=np.float64) + eps / c
        if self.weight is not None:
            q = q * np.asarray(self.weight, dtype=np.float64)[None, :]
        return np.asarray(q, dtype=np.float64)

    @property
    def masked(self) -> np.ndarray:
        """``(N, C)``: where a logit is ``-inf`` (a masked class)."""
        return np.asarray(self.logits == -np.inf)

    @classmethod
    def from_user(
        cls,
        logits: Any,
        target: Any,
        *,
        weight: Any = None,
        ignore_index: Any = -100,
        label_smoothing: Any = 0.0,
        reduction: Any = "mean",
        dtype: str | FloatFormat = "float32",
        max_elements: int = MAX_ELEMENTS,
        error: ErrorFactory = InputError,
    ) -> SoftmaxCase:
        """Check softmax cross-entropy input and round it to ``dtype``.

        ``logits`` is one row (a flat list of ``C`` logits) or ``N`` rows (a nested list);
        ``target`` is class indices (a number for one row, ``N`` integers) or probabilities
        (the logits' shape).  ``-inf`` logits are masked classes; ``+inf`` is allowed (the
        limit); NaN is refused.  Raises :class:`~logitlab.InputError` naming the argument
        for: ragged rows, fewer than 2 classes, a class index outside ``[0, C)`` that is not
        ``ignore_index``, a non-integer index, probabilities outside [0, 1] or of the wrong
        shape, a weight that is not ``C`` finite values >= 0, ``label_smoothing`` outside
        [0, 1], an unknown dtype or reduction.
        """
        fmt = get_format(dtype)
        reduction = check_reduction(reduction)
        z = _rows(logits, "logits", max_elements, error)
        c = z.shape[1]
        if c < 2:
            raise error("logits", f"each row needs at least 2 classes, got {c}")
        try:
            ii = int(ignore_index)
            if isinstance(ignore_index, bool) or ii != float(ignore_index):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise error("ignore_index", f"expected an integer, got {ignore_index!r}") from None
        try:
            eps = float(label_smoothing)
        except (TypeError, ValueError):
            raise error("label_smoothing", f"expected a number, got {label_smoothing!r}") from None
        if not 0.0 <= eps <= 1.0:
            raise error("label_smoothing", f"{eps!r} is outside [0, 1]")
        one_row = np.ndim(np.asarray(logits, dtype=np.float64)) <= 1
        t = _target(target, (z.shape[0], c), one_row, ii, error)
        notes: list[str] = []
        z_rounded = fmt.round(z)
        finite = np.isfinite(z)
        overflowed = np.isinf(z_rounded) & finite
        changed = (z_rounded != z) & finite
        if overflowed.any():
            i, v = _index(z, overflowed)
            notes.append(f"logit {v!r} (index {i}) overflows {fmt.name} and becomes infinite")
        elif changed.any():
            i, v = _index(z, changed)
            notes.append(
                f"logits are rounded to {fmt.name}: {v!r} becomes {float(z_rounded.ravel()[i])!r}"
            )
        if not np.issubdtype(t.dtype, np.integer):
            t_rounded = fmt.round(t)
            if not np.array_equal(t_rounded, t):
                i, v = _index(t, t_rounded != t)
                notes.append(
                    f"targets are rounded to {fmt.name}: {v!r} becomes "
                    f"{float(t_rounded.ravel()[i])!r}"
                )
            t = t_rounded
        w = None
        if weight is not None:
            a = as_float_array(weight, "weight", max_elements=max_elements, error=error).ravel()
            if a.shape != (c,):
                raise error("weight", f"has {a.size} values; give one per class ({c})")
            if (a < 0).any():
                i, v = _index(a, a < 0)
                raise error("weight", f"value {v!r} at index {i} is negative; give weights >= 0")
            w = fmt.round(a)
            if not np.isfinite(w).all():
                i, v = _index(a, ~np.isfinite(w))
                raise error("weight", f"value {v!r} at index {i} overflows {fmt.name}")
        return cls(
            logits=z_rounded,
            target=t,
            dtype=fmt,
            reduction=reduction,
            weight=w,
            ignore_index=ii,
            label_smoothing=eps,
            notes=tuple(notes),
        )


def _rows(values: Any, argument: str, max_elements: int, error: ErrorFactory) -> np.ndarray:
    """Logits as an ``(N, C)`` float64 array: one flat row, or N rows of equal length."""
    if isinstance(values, str):
        raise error(argument, f"expected numbers, got the string {values!r}")
    if isinstance(values, (list, tuple)) and values and isinstance(values[0], (list, tuple)):
        lengths = [len(r) if isinstance(r, (list, tuple)) else -1 for r in values]
        for i, length in enumerate(lengths):
            if length != lengths[0]:
                got = "a number" if length < 0 else f"{length} entries"
                raise error(
                    argument, f"row {i} has {got}, row 0 has {lengths[0]}; rows must be equal"
                )
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise error(
            argument, f"expected numbers (one row, or rows of equal length), got {values!r}"
        ) from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise error(argument, f"has {array.ndim} dimensions; give one row or a list of rows")
    if array.size == 0:
        raise error(argument, "is empty; give at least one row of logits")
    if array.size > max_elements:
        raise error(argument, f"has {array.size} elements; at most {max_elements} allowed")
    if np.isnan(array).any():
        i, _ = _index(array, np.isnan(array))
        raise error(argument, f"value at index {i} is NaN; give numbers (-inf masks a class)")
    return array


def _target(
    target: Any, shape: tuple[int, int], one_row: bool, ignore_index: int, error: ErrorFactory
) -> np.ndarray:
    """Class indices ``(N,)`` as int64, or probabilities ``(N, C)`` as float64."""
    n, c = shape
    if isinstance(target, str):
        raise error("target", f"expected class indices or probabilities, got {target!r}")
    try:
        raw = np.asarray(target)
        t = np.asarray(target, dtype=np.float64)
    except (TypeError, ValueError):
        raise error("target", f"expected numbers of equal-length rows, got {target!r}") from None
    if t.size == 0:
        raise error("target", "is empty; give a class index per row")
    probabilities = t.ndim == 2 or (one_row and t.ndim == 1 and t.size == c and t.size != 1)
    if probabilities:
        t = t.reshape(1, -1) if t.ndim == 1 else t
        if t.shape != shape:
            raise error("target", f"probabilities have shape {t.shape}; the logits' is {shape}")
        bad = ~np.isfinite(t) | (t < 0) | (t > 1)
        if bad.any():
            i, v = _index(t, bad)
            raise error("target", f"probability {v!r} at index {i} is outside [0, 1]")
        return t
    t = t.reshape(-1)
    if t.size != n:
        raise error("target", f"has {t.size} class indices for {n} row(s) of logits")
    integral = np.isfinite(t) & (t == np.round(t))
    if not integral.all() or raw.dtype == np.bool_:
        i, v = _index(t, ~integral)
        raise error("target", f"value {v!r} at index {i} is not a class index (an integer)")
    idx = t.astype(np.int64)
    bad_idx = ((idx < 0) | (idx >= c)) & (idx != ignore_index)
    if bad_idx.any():
        i = int(np.flatnonzero(bad_idx)[0])
        raise error(
            "target",
            f"class {int(idx[i])} at index {i} is outside [0, {c - 1}] ({c} classes) and is "
            f"not ignore_index ({ignore_index})",
        )
    return idx


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
