"""Numbers the messages quote, derived from the floating-point formats themselves.

A binary format with ``p`` significand bits (the implicit one included) and largest
exponent ``emax`` has spacing ``2**-p`` just below 1 and ``2**(1-p)`` just above it,
largest finite value ``(2 - 2**(1-p)) * 2**emax`` and smallest subnormal
``2**(2 - emax - p)``. Everything below is pure Python arithmetic on those two numbers
(no numpy): round to nearest, ties to even.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    p: int  # significand bits, the implicit leading one included
    emax: int

    @property
    def spacing_below_one(self) -> float:
        """Distance from 1 to the next smaller value (``1 - nextafter(1, 0)``)."""
        return 2.0**-self.p

    @property
    def one_minus_eps_is_one(self) -> float:
        """``1 - eps`` rounds to 1.0 exactly when ``eps <= this`` (half the spacing below
        1; at the tie, 1.0 has the even significand)."""
        return 2.0 ** -(self.p + 1)

    @property
    def one_plus_eps_is_one(self) -> float:
        """``1 + eps`` rounds to 1.0 exactly when ``eps <= this`` (half the spacing above 1)."""
        return 2.0**-self.p

    @property
    def log_max(self) -> float:
        """``exp(x)`` overflows to inf for ``x`` above this (log of the largest finite value)."""
        return math.log(2.0 - 2.0 ** (1 - self.p)) + self.emax * math.log(2.0)

    @property
    def log_underflow(self) -> float:
        """``exp(x)`` rounds to 0 for ``x`` below this: log of half the smallest subnormal
        (gradual underflow; with flush-to-zero it happens earlier)."""
        return (1 - self.emax - self.p) * math.log(2.0)

    @property
    def sigmoid_is_one(self) -> float:
        """``sigmoid(z)`` rounds to 1.0 once ``z >= this``: ``1 - sigmoid(z) = 1/(1 + e**z)``
        is at most half the spacing below 1 when ``e**z >= 2**(p+1) - 1``."""
        return math.log(2.0 ** (self.p + 1) - 1)


FLOAT16 = Format("float16", 11, 15)
BFLOAT16 = Format("bfloat16", 8, 127)
FLOAT32 = Format("float32", 24, 127)
FLOAT64 = Format("float64", 53, 1023)
FORMATS = {f.name: f for f in (FLOAT16, BFLOAT16, FLOAT32, FLOAT64)}


def approx(x: float) -> str:
    """A derived threshold for a message: three significant digits (``17.3``, ``-745``)."""
    return f"{x:.3g}"


def per_format(value: str, dtype: str | None = None) -> str:
    """``"17.3 in float32, 37.4 in float64"`` for a :class:`Format` property name, or only
    the one ``dtype`` when the code shows it."""
    names = [dtype] if dtype in FORMATS else ["float32", "float64"]
    return ", ".join(f"{approx(getattr(FORMATS[n], value))} in {n}" for n in names if n)
