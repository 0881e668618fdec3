"""Printing numbers: the shortest decimal that round-trips in a format, and exact values."""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np

from logitlab.core.formats import FloatFormat, get_format

__all__ = ["exact_json", "exact_repr", "json_number", "json_numbers", "shortest_repr"]


def shortest_repr(value: float, dtype: str | FloatFormat) -> str:
    """The shortest decimal string that reads back as the same ``dtype`` value.

    >>> shortest_repr(0.7269279956817627, "float32")
    '0.726928'
    >>> shortest_repr(50.0, "float32")
    '50.0'
    """
    fmt = get_format(dtype)
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0.0" if math.copysign(1.0, v) < 0 else "0.0"
    if fmt.name == "float64":
        return repr(v)
    rounded = _scalar_rounding(fmt)
    target = rounded(v)
    for digits in range(1, 18):
        text = f"{v:.{digits}g}"
        if rounded(float(text)) == target:
            break
    # Present it the way Python's repr would (0.5, 50.0, 1e-08).
    return repr(float(text))


def _scalar_rounding(fmt: FloatFormat) -> Any:
    """``x -> fmt.round(x)`` for one float: NumPy's own float16/float32 conversions (a
    single correct rounding from binary64, as ``FloatFormat.round``) where they exist, which
    are some fifty times faster on a scalar; ``FloatFormat.round`` for the others."""
    cast = _CASTS.get(fmt.name)
    if cast is None:
        return lambda x: fmt.round(x).item()

    def rounded(x: float) -> float:
        with np.errstate(over="ignore"):  # beyond the format's range: inf, as round() gives
            return float(cast(x))

    return rounded


_CASTS: dict[str, Any] = {"float16": np.float16, "float32": np.float32}


def exact_repr(value: Any, digits: int = 17) -> str:
    """An exact (mpf) value to ``digits`` significant digits."""
    if mpmath.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0.0"
    return str(mpmath.nstr(value, digits, min_fixed=-4, max_fixed=16))


def json_number(value: float) -> float | str:
    """A float for JSON: NaN and infinities become the strings "NaN", "Infinity", "-Infinity"
    (which JavaScript's ``Number()`` reads back)."""
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def json_numbers(values: Any) -> list[float | str]:
    """:func:`json_number` of every element of an array-like, flattened, as a list.

    The same values as ``[json_number(v) for v in values]``, at a fraction of the cost for
    the long curves of the explorer: the finite elements go through NumPy's ``tolist`` (the
    same Python floats) and only the non-finite ones are spelled one by one.

    >>> json_numbers([1.5, float("nan"), -float("inf")])
    [1.5, 'NaN', '-Infinity']
    """
    a = np.asarray(values, dtype=np.float64).ravel()
    out: list[float | str] = a.tolist()
    bad = ~np.isfinite(a)
    if bad.any():
        for i in np.flatnonzero(bad).tolist():
            out[i] = json_number(out[i])
    return out


def exact_json(value: Any, digits: int = 30) -> str:
    """An exact value for JSON: ``digits`` significant digits as a decimal string, and the
    infinities as ``"Infinity"`` and ``"-Infinity"``, as :func:`json_number` writes them."""
    if mpmath.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return exact_repr(value, digits)
