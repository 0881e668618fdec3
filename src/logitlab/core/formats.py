"""The four floating-point formats logitlab measures, described once.

Each :class:`FloatFormat` knows its significand precision and exponent range (enough to
round an exact value into it and to count ULPs), and how to name it in NumPy (through
``ml_dtypes`` for bfloat16) and in PyTorch.  Every value of every format is exactly
representable as a Python ``float`` (binary64), which is how logitlab passes values
between frameworks without another rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ml_dtypes
import numpy as np

from logitlab.core.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["DTYPE_NAMES", "FLOAT_FORMATS", "FloatFormat", "get_format"]


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-754-style binary format.

    ``precision`` counts significand bits including the implicit one; normal numbers
    have exponents ``emin <= e <= emax`` (value in ``[2**e, 2**(e+1))``); below ``2**emin``
    the format has subnormals with spacing ``2**(emin - precision + 1)``.
    """

    name: str
    precision: int
    emin: int
    emax: int

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        if self.name == "bfloat16":
            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.name)

    def torch_dtype(self) -> torch.dtype:
        import torch

        dtype: torch.dtype = getattr(torch, self.name)
        return dtype

    @property
    def eps(self) -> float:
        """Spacing of the format just above 1."""
        return 2.0 ** (1 - self.precision)

    @property
    def smallest_normal(self) -> float:
        return 2.0**self.emin

    @property
    def smallest_subnormal(self) -> float:
        return 2.0 ** (self.emin - self.precision + 1)

    @property
    def max(self) -> float:
        return (2.0 - 2.0 ** (1 - self.precision)) * 2.0**self.emax

    @property
    def bits(self) -> int:
        return self.numpy_dtype.itemsize * 8

    def round(self, values: Any) -> np.ndarray:
        """Round float64 values to this format (nearest, ties to even) and return float64.

        One correct rounding straight from binary64, done here rather than by a cast:
        ml_dtypes converts float64 to bfloat16 through float32, rounding twice
        (6.0156250014 would become 6.0 instead of 6.03125).  The result is what logitlab
        hands to every framework, so all of them receive the same values.
        """
        x = np.asarray(values, dtype=np.float64)
        if self.name == "float64":
            return x.copy()
        if self.name in ("float16", "float32"):
            # NumPy's casts from binary64 to these two are one correct rounding (ties to
            # even, subnormals, overflow to inf): tests hold them to the integer rounding
            # of ``round_to_format``.  Several times faster than the general path below.
            with np.errstate(over="ignore"):
                return x.astype(self.numpy_dtype).astype(np.float64)
        out = x.copy()
        finite = np.isfinite(x) & (x != 0)
        xf = x[finite]
        _, e2 = np.frexp(xf)  # |x| in [2**(e2-1), 2**e2)
        quantum = np.maximum(e2 - 1, self.emin) - (self.precision - 1)
        # Power-of-two scalings are exact, and rint rounds half to even.
        with np.errstate(over="ignore"):  # overflow gives inf, as it should
            rounded = np.ldexp(np.rint(np.ldexp(xf, -quantum)), quantum)
        rounded[np.abs(rounded) > self.max] = np.inf
        out[finite] = np.copysign(rounded, xf)
        return out

    def values(self) -> np.ndarray:
        """Every finite value of a 16-bit format, ascending, as float64 (no -0)."""
        if self.bits != 16:
            raise ValueError(f"values() enumerates 16-bit formats only, not {self.name}")
        with np.errstate(invalid="ignore"):  # the NaN bit patterns
            raw = np.arange(2**16, dtype=np.uint16).view(self.numpy_dtype).astype(np.float64)
        finite = np.unique(raw[np.isfinite(raw)])  # unique also merges -0 into +0
        return finite


FLOAT_FORMATS: dict[str, FloatFormat] = {
    "float16": FloatFormat("float16", precision=11, emin=-14, emax=15),
    "bfloat16": FloatFormat("bfloat16", precision=8, emin=-126, emax=127),
    "float32": FloatFormat("float32", precision=24, emin=-126, emax=127),
    "float64": FloatFormat("float64", precision=53, emin=-1022, emax=1023),
}
DTYPE_NAMES: tuple[str, ...] = tuple(FLOAT_FORMATS)

_ALIASES = {
    "half": "float16",
    "f16": "float16",
    "fp16": "float16",
    "bf16": "bfloat16",
    "float": "float32",
    "single": "float32",
    "f32": "float32",
    "fp32": "float32",
    "double": "float64",
    "f64": "float64",
    "fp64": "float64",
}


def get_format(dtype: str | FloatFormat, argument: str = "dtype") -> FloatFormat:
    """Look a format up by name (``"float32"``, ``"bf16"``, ``"torch.float16"``, ...)."""
    if isinstance(dtype, FloatFormat):
        return dtype
    if not isinstance(dtype, str):
        dtype = str(dtype)
    key = dtype.strip().lower().removeprefix("torch.").removeprefix("np.")
    key = _ALIASES.get(key, key)
    try:
        return FLOAT_FORMATS[key]
    except KeyError:
        choices = ", ".join(DTYPE_NAMES)
        raise InputError(argument, f"unknown dtype {dtype!r}; choose one of {choices}") from None
