"""The post's third example: where sigmoid rounds to exactly 0 and 1, per dtype.

Thresholds are *found*, never typed in: for 16-bit formats by evaluating the real
framework on every finite value; for float32 and float64 by bisection over the format's
values (ordinals), then checked on a window of neighbouring values on both sides.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from logitlab import exact
from logitlab.core.formats import DTYPE_NAMES, FloatFormat, get_format
from logitlab.core.inputs import ElementwiseCase
from logitlab.core.numbers import exact_repr, shortest_repr
from logitlab.core.ulp import relative_error, round_to_format, ulp_error
from logitlab.formulations import Formulation
from logitlab.formulations.run import run

__all__ = [
    "EXACT",
    "Saturation",
    "SearchError",
    "SigmoidRow",
    "Thresholds",
    "saturation",
    "saturation_thresholds",
    "sigmoid_report",
]

#: Name used for the correctly rounded exact sigmoid in tables.
EXACT = "exact, correctly rounded"
# Neighbours checked on each side of a bisected threshold.
_WINDOW = 4096


@dataclass(frozen=True)
class Thresholds:
    """Where one sigmoid implementation saturates in one format.

    ``one_from``: the smallest value from which every larger value gives exactly 1.
    ``zero_up_to``: the largest value at or below which every value gives exactly 0.
    ``None`` when it never happens for finite inputs.  ``method`` says how it was found.
    """

    dtype: str
    implementation: str
    one_from: float | None
    zero_up_to: float | None
    method: str


def _ordinal_to_value(ordinals: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Values of ``fmt`` with the given signed ordinals (0 is +0), as float64."""
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[fmt.numpy_dtype.itemsize]
    k = np.asarray(ordinals, dtype=np.int64)
    mag = np.abs(k).astype(uint).view(fmt.numpy_dtype).astype(np.float64)
    return np.where(k < 0, -mag, mag)


def _value_to_ordinal(value: float, fmt: FloatFormat) -> int:
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[fmt.numpy_dtype.itemsize]
    bits = int(np.array([abs(value)]).astype(fmt.numpy_dtype).view(uint)[0])
    return -bits if value < 0 else bits


def _evaluator(
    implementation: Formulation | str, fmt: FloatFormat
) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(implementation, str):  # the exact sigmoid, correctly rounded
        return lambda z: np.array([round_to_format(exact.sigmoid(float(v)), fmt) for v in z])
    f = implementation

    def evaluate(z: np.ndarray) -> np.ndarray:
        result = run(f, ElementwiseCase(np.asarray(z, dtype=np.float64), fmt))
        if not result.ok or result.value is None:
            raise SearchError(f"{f.name} did not run in {fmt.name}: {result.reason}")
        return result.value

    return evaluate


def _name(implementation: Formulation | str) -> str:
    return implementation if isinstance(implementation, str) else implementation.name


def _bisect(pred: Callable[[int], bool], lo: int, hi: int) -> int:
    """Smallest k in (lo, hi] with pred(k), given pred(hi) and not pred(lo), pred monotone."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid
    return hi


class SearchError(RuntimeError):
    """The implementation could not be run, so there is nothing to search."""


def saturation_thresholds(
    dtype: str | FloatFormat, implementation: Formulation | str = "torch.sigmoid"
) -> Thresholds:
    """Find where ``implementation`` (a sigmoid formulation, its name, or :data:`EXACT`)
    returns exactly 1 and exactly 0 in ``dtype``.

    This is the one saturation table: each implementation is searched once per dtype and
    the result cached for the process; compare, ``logitlab sigmoid``, the explorer, the
    audit and the explanations all read it from here.

    >>> t = saturation_thresholds("float16")
    >>> t.one_from, t.zero_up_to
    (8.3203125, -17.34375)
    """
    fmt = get_format(dtype)
    return _thresholds(fmt.name, _name(implementation))


@functools.cache
def _thresholds(dtype: str, name: str) -> Thresholds:
    fmt = get_format(dtype)
    implementation: Formulation | str = name
    if name != EXACT:
        from logitlab.formulations import get

        implementation = get(name, "sigmoid")
    f = _evaluator(implementation, fmt)
    name = _name(implementation)
    if fmt.bits == 16 and not isinstance(implementation, str):
        values = fmt.values()
        out = f(values)
        return Thresholds(
            fmt.name,
            name,
            _first_of_run(values, out == 1),
            _last_of_run(values, out == 0),
            f"exhaustive over all {values.size} finite {fmt.name} values",
        )
    top = _value_to_ordinal(fmt.max, fmt)
    one = _search(f, fmt, 0, top, lambda v: v == 1)
    # For zero, search the mirrored predicate: ordinal -k from 0 to top.
    zero = _search(f, fmt, 0, top, lambda v: v == 0, mirror=True)
    method = "bisection over the format's values"
    if not isinstance(implementation, str):
        method += f", confirmed on {_WINDOW} neighbours each side"
    return Thresholds(fmt.name, name, one, zero, method)


def _first_of_run(values: np.ndarray, hit: np.ndarray) -> float | None:
    """Smallest value from which ``hit`` holds for every larger value."""
    if not hit[-1]:
        return None
    misses = np.flatnonzero(~hit)
    return float(values[0] if misses.size == 0 else values[misses[-1] + 1])


def _last_of_run(values: np.ndarray, hit: np.ndarray) -> float | None:
    if not hit[0]:
        return None
    misses = np.flatnonzero(~hit)
    return float(values[-1] if misses.size == 0 else values[misses[0] - 1])


def _search(
    f: Callable[[np.ndarray], np.ndarray],
    fmt: FloatFormat,
    lo: int,
    hi: int,
    hit: Callable[[np.ndarray], np.ndarray],
    mirror: bool = False,
) -> float | None:
    sign = -1 if mirror else 1

    def value(k: int) -> np.ndarray:
        return _ordinal_to_value(np.array([sign * k]), fmt)

    if not bool(hit(f(value(hi)))[0]):
        return None
    if bool(hit(f(value(lo)))[0]):
        return float(value(lo)[0])
    k = _bisect(lambda m: bool(hit(f(value(m)))[0]), lo, hi)
    window = np.arange(max(lo, k - _WINDOW), min(hi, k + _WINDOW) + 1)
    values = _ordinal_to_value(sign * window, fmt)
    hits = hit(f(values))
    if mirror:
        values, hits = values[::-1], hits[::-1]
        result = _last_of_run(values, hits)
    else:
        result = _first_of_run(values, hits)
    return result


@dataclass(frozen=True)
class SigmoidRow:
    dtype: str
    implementation: str
    code: str
    z: float
    value: float | None
    exact: Any
    ulp_error: float | None
    relative_error: float | None
    thresholds: Thresholds
    status: str = "ok"
    reason: str | None = None


def sigmoid_report(
    z: float,
    dtypes: Sequence[str] = DTYPE_NAMES,
    *,
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
) -> list[SigmoidRow]:
    """Sigmoid formulations at ``z`` in each dtype, with the exact value and thresholds.

    The rows are chosen as :func:`logitlab.analysis.compare.compare` chooses them: PyTorch's and
    ``logitlab.stable``'s by default, ``frameworks=["all"]`` for the whole catalogue.
    """
    from logitlab.analysis.compare import select_formulations

    chosen = select_formulations("sigmoid", formulations, frameworks)
    rows: list[SigmoidRow] = []
    for name in dtypes:
        fmt = get_format(name)
        zr = float(fmt.round(z))
        ex = exact.sigmoid(zr)
        rows.append(
            SigmoidRow(
                fmt.name,
                EXACT,
                "exact sigmoid, rounded once",
                zr,
                round_to_format(ex, fmt),
                ex,
                0.0 if ex == 0 else ulp_error(round_to_format(ex, fmt), ex, fmt),
                relative_error(round_to_format(ex, fmt), ex),
                saturation_thresholds(fmt, EXACT),
            )
        )
        for f in chosen:
            result = run(f, ElementwiseCase(np.array([zr]), fmt))
            if not result.ok or result.value is None:
                rows.append(
                    SigmoidRow(
                        fmt.name,
                        f.name,
                        f.code,
                        zr,
                        None,
                        ex,
                        None,
                        None,
                        Thresholds(fmt.name, f.name, None, None, "not run"),
                        result.status,
                        result.reason,
                    )
                )
                continue
            value = float(result.value.ravel()[0])
            rows.append(
                SigmoidRow(
                    fmt.name,
                    f.name,
                    f.code,
                    zr,
                    value,
                    ex,
                    ulp_error(value, ex, fmt),
                    relative_error(value, ex),
                    saturation_thresholds(fmt, f),
                )
            )
    return rows


def row_to_dict(row: SigmoidRow) -> dict[str, Any]:
    from logitlab.core.numbers import json_number

    fmt = get_format(row.dtype)
    t = row.thresholds
    return {
        "dtype": row.dtype,
        "implementation": row.implementation,
        "code": row.code,
        "z": json_number(row.z),
        "status": row.status,
        "reason": row.reason,
        "value": None if row.value is None else json_number(row.value),
        "value_repr": None if row.value is None else shortest_repr(row.value, fmt),
        "exact": exact_repr(row.exact, 30),
        "ulp_error": None if row.ulp_error is None else json_number(row.ulp_error),
        "relative_error": None if row.relative_error is None else json_number(row.relative_error),
        "one_from": t.one_from,
        "zero_up_to": t.zero_up_to,
        "threshold_method": t.method,
    }


@dataclass(frozen=True)
class Saturation:
    """``one_from``: smallest z from which sigmoid is exactly 1; ``zero_up_to``: largest z at
    or below which it is exactly 0 (``None`` where that never happens for finite z)."""

    dtype: str
    one_from: float | None
    zero_up_to: float | None
    method: str

    def to_dict(self) -> dict[str, object]:
        return {
            "dtype": self.dtype,
            "one_from": self.one_from,
            "zero_up_to": self.zero_up_to,
            "method": self.method,
        }


@functools.cache
def saturation(dtype: str) -> Saturation:
    """The saturation thresholds of ``torch.sigmoid`` in ``dtype`` (cached per dtype).

    >>> s = saturation("float32")
    >>> round(s.one_from, 2), round(s.zero_up_to, 2)
    (16.64, -88.72)
    """
    fmt = get_format(dtype)
    t = saturation_thresholds(fmt, "torch.sigmoid")
    return Saturation(fmt.name, t.one_from, t.zero_up_to, f"torch.sigmoid, {t.method}")
