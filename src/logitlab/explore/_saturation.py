"""Where ``torch.sigmoid`` rounds to exactly 0 and 1 in each dtype, found by search.

The explorer shades these regions and names them in its explanation.  The thresholds come
from :func:`logitlab._sigmoid_table.saturation_thresholds`, the search ``logitlab sigmoid``
shows (the real ``torch.sigmoid`` on every value of the 16-bit formats; bisection over the
format's values, checked on neighbours, for float32 and float64), cached per dtype here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from logitlab._dtypes import get_format
from logitlab._sigmoid_table import saturation_thresholds

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
    t = saturation_thresholds(fmt, "torch.sigmoid")
    return Saturation(fmt.name, t.one_from, t.zero_up_to, f"torch.sigmoid, {t.method}")
