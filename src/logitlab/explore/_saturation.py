"""Where ``torch.sigmoid`` rounds to exactly 0 and 1 in each dtype, found by search.

The explorer shades these regions and names them in its explanation.  The thresholds come
from :func:`logitlab._sigmoid_table.saturation_thresholds` (which evaluates the real
``torch.sigmoid`` on the format's values) when that module is in this build; otherwise
from the small search below, which does the same with ``torch.sigmoid`` directly: every
value for the 16-bit formats, bisection over the format's values for float32 and float64.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from logitlab._dtypes import FloatFormat, get_format

__all__ = ["Saturation", "saturation"]


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
    try:
        from logitlab._sigmoid_table import saturation_thresholds
    except ImportError:
        return _search(fmt)
    t = saturation_thresholds(fmt, "torch.sigmoid")
    return Saturation(fmt.name, t.one_from, t.zero_up_to, f"torch.sigmoid, {t.method}")


def _sigmoid(values: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    import torch

    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(fmt.torch_dtype())
    return torch.sigmoid(t).double().numpy()


def _positive_values(fmt: FloatFormat, ordinals: np.ndarray) -> np.ndarray:
    uint = {4: np.uint32, 8: np.uint64}[fmt.numpy_dtype.itemsize]
    return ordinals.astype(uint).view(fmt.numpy_dtype).astype(np.float64)


def _search(fmt: FloatFormat) -> Saturation:
    """Fallback search, used only when ``logitlab._sigmoid_table`` is absent."""
    if fmt.bits == 16:
        values = fmt.values()
        out = _sigmoid(values, fmt)
        ones, zeros = np.flatnonzero(out != 1), np.flatnonzero(out != 0)
        one = float(values[ones[-1] + 1]) if out[-1] == 1 else None
        zero = float(values[zeros[0] - 1]) if out[0] == 0 else None
        return Saturation(fmt.name, one, zero, "torch.sigmoid on every finite value")
    top = int(
        np.array([fmt.max])
        .astype(fmt.numpy_dtype)
        .view({4: np.uint32, 8: np.uint64}[fmt.numpy_dtype.itemsize])[0]
    )

    def first(pred_sign: float, target: float) -> float | None:
        # Smallest ordinal k >= 0 with sigmoid(sign * value(k)) == target; monotone in k.
        def hit(k: int) -> bool:
            v = pred_sign * _positive_values(fmt, np.array([k]))
            return bool(_sigmoid(v, fmt)[0] == target)

        if not hit(top):
            return None
        lo, hi = 0, top
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if hit(mid):
                hi = mid
            else:
                lo = mid
        return float(pred_sign * _positive_values(fmt, np.array([hi]))[0])

    return Saturation(
        fmt.name, first(1.0, 1.0), first(-1.0, 0.0), "torch.sigmoid, bisection over the values"
    )
