"""Errors of computed values against exact ones: in ULPs of a format, and relative.

Conventions
-----------
**ULP error.**  Number the finite values of a format in order, ``0`` for zero (``+0`` and
``-0`` share it), ``1`` for the smallest positive subnormal, ``-1`` for its negative, and
so on: this is the value's *ordinal*.  Extend the numbering to every real number by
straight-line interpolation between neighbouring values (the spacing is constant inside a
binade, so this is ``(x - f) / spacing`` past the value ``f`` just below ``x``).  The ULP
error of a computed value against an exact one is ``|ordinal(computed) - ordinal(exact)|``.
So:

* a correctly rounded result has error ``<= 0.5``; a faithfully rounded one ``< 1``;
* two neighbouring values of a format are exactly ``1`` apart, across binade boundaries
  (``1`` and the value just below it) and across zero (``0`` and the smallest subnormal)
  alike;
* subnormals count like any other value: their spacing is the smallest subnormal;
* a computed ``0`` where the exact value is ``3e-9`` in float32 is about ``8.2e8`` ULP away,
  and its relative error is ``1``: every digit is lost;
* past the largest finite value the top binade's spacing continues;
* a computed infinity is ``0`` ULP from an exact infinity of the same sign and infinitely
  far from anything else; a computed NaN has error NaN (never a number).

**Relative error.** ``|computed - exact| / |exact|``; when ``exact`` is zero it is ``0`` for a
computed zero and ``inf`` otherwise; NaN for a NaN.

The scalar functions take the exact value as an ``mpmath.mpf`` (or a float) and work in
exact arithmetic.  :func:`ulp_error_array` is the vectorised form for large audits: the
exact value comes as float64 ``hi`` plus an optional float64 ``lo`` correction
(double-double), which is more than enough resolution for float16/bfloat16/float32 and,
with ``lo``, for float64.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np

from logitlab.core.formats import FloatFormat, get_format
from logitlab.core.mp import mp_context

__all__ = [
    "ordinal",
    "relative_error",
    "round_decided",
    "round_to_format",
    "ulp_distance",
    "ulp_error",
    "ulp_error_array",
    "ulp_of",
]


def _mpf(x: Any) -> Any:
    # Into this thread's 160-bit context: exact for floats and for the exact values
    # logitlab computes (which are held at that precision).
    return mp_context().mpf(x)


def round_to_format(exact: Any, dtype: str | FloatFormat) -> float:
    """Round an exact value (``mpf``, int or float) to ``dtype``, nearest with ties to even.

    Subnormals and overflow are handled as IEEE-754 does: values at or beyond
    ``max + ulp(max)/2`` become infinity.  The result is a Python float holding the
    rounded value exactly (every value of every format fits in binary64).

    >>> round_to_format(mpmath.mpf(1) / 3, "bfloat16")
    0.333984375
    """
    fmt = get_format(dtype)
    x = _mpf(exact)
    if mpmath.isnan(x):
        return math.nan
    if mpmath.isinf(x):
        return math.inf if x > 0 else -math.inf
    if x == 0:
        return 0.0
    sign, man, exp, bc = x._mpf_
    top = exp + bc - 1  # |x| lies in [2**top, 2**(top+1))
    if top > fmt.emax:
        return -math.inf if sign else math.inf
    if top < fmt.emin - fmt.precision:
        # below half the smallest subnormal: rounds to zero (mpmath has no -0)
        return 0.0
    quantum = max(top, fmt.emin) - (fmt.precision - 1)
    shift = quantum - exp
    if shift <= 0:
        n = man << -shift
    else:
        n = man >> shift
        rem = man - (n << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and n & 1):
            n += 1
    # n * 2**quantum; overflow if it reaches 2**(emax+1).
    overflow = n.bit_length() + quantum > fmt.emax + 1
    value = math.inf if overflow else math.ldexp(float(n), quantum)
    return -value if sign else value


def round_decided(
    evaluate: Any, dtype: str | FloatFormat, *, start_bits: int = 160, max_bits: int = 30000
) -> float:
    """``evaluate()`` (an mpmath value computed at the context's precision) correctly
    rounded to ``dtype``, with the precision raised until the rounding is decided.

    A value within a few of its last bits of a midpoint of ``dtype`` (a tail such as
    ``exp(-|z|)`` far below 160 bits) is re-evaluated at four times the precision, up to
    ``max_bits``; most values are decided at ``start_bits``.  The context's precision is
    restored.
    """
    ctx = mp_context()
    saved = ctx.prec
    prec = start_bits
    try:
        while True:
            ctx.prec = prec
            x = _mpf(evaluate())
            if not mpmath.isfinite(x) or x == 0 or prec >= max_bits:
                return round_to_format(x, dtype)
            slack = abs(x) * mpmath.ldexp(1, 16 - prec)
            low, high = round_to_format(x - slack, dtype), round_to_format(x + slack, dtype)
            if low == high:
                return low
            prec = min(4 * prec, max_bits)
    finally:
        ctx.prec = saved


def ordinal(x: Any, dtype: str | FloatFormat) -> Any:
    """The real-valued ordinal of ``x`` in ``dtype`` (see the module docstring), as ``mpf``.

    Integer for values of the format; ``inf`` for infinities.
    """
    fmt = get_format(dtype)
    ctx = mp_context()  # 160 bits: room for float64's 63-bit ordinals and a fraction
    v = _mpf(x)
    if mpmath.isnan(v):
        return ctx.nan
    if mpmath.isinf(v):
        return v
    if v == 0:
        return ctx.mpf(0)
    sign = -1 if v < 0 else 1
    a = abs(v)
    half_range = 2 ** (fmt.precision - 1)
    if a < ctx.ldexp(1, fmt.emin):
        return sign * ctx.ldexp(a, -(fmt.emin - fmt.precision + 1))
    _, _, exp, bc = a._mpf_
    top = exp + bc - 1
    scaled = ctx.ldexp(a, -(top - fmt.precision + 1))  # in [2**(p-1), 2**p)
    return sign * ((top - fmt.emin + 1) * half_range + (scaled - half_range))


def _non_finite_error(c: float, e: Any) -> float | None:
    """The error when either side is NaN or infinite (shared by both measures), else None."""
    if math.isnan(c) or mpmath.isnan(e):
        return math.nan
    if math.isinf(c) or mpmath.isinf(e):
        same = math.isinf(c) and mpmath.isinf(e) and (c > 0) == (e > 0)
        return 0.0 if same else math.inf
    return None


def ulp_error(computed: float, exact: Any, dtype: str | FloatFormat) -> float:
    """``|ordinal(computed) - ordinal(exact)|`` in ``dtype``; see the module conventions.

    >>> ulp_error(0.0, 3e-9, "float32") > 1e8
    True
    >>> ulp_error(float(np.nextafter(np.float32(1), np.float32(0))), 1, "float32")
    1.0
    """
    c = float(computed)
    e = _mpf(exact)
    special = _non_finite_error(c, e)
    if special is not None:
        return special
    return float(abs(ordinal(c, dtype) - ordinal(e, dtype)))


def relative_error(computed: float, exact: Any) -> float:
    """``|computed - exact| / |exact|``; 0 or inf when exact is 0; NaN for NaN.

    >>> relative_error(0.0, 3e-9)
    1.0
    """
    c = float(computed)
    e = _mpf(exact)
    special = _non_finite_error(c, e)
    if special is not None:
        return special
    if e == 0:
        return 0.0 if c == 0 else math.inf
    return float(abs(_mpf(c) - e) / abs(e))


def ulp_distance(a: float, b: float, dtype: str | FloatFormat) -> int:
    """Number of steps between two values of ``dtype`` (both must be representable).

    >>> ulp_distance(0.0, 2.0**-149, "float32")
    1
    """
    fmt = get_format(dtype)
    for name, value in (("a", a), ("b", b)):
        if not math.isfinite(value) or round_to_format(value, fmt) != value:
            raise ValueError(f"{name}={value!r} is not a finite {fmt.name} value")
    return int(abs(ordinal(b, fmt) - ordinal(a, fmt)))


def ulp_of(x: Any, dtype: str | FloatFormat) -> float:
    """The spacing of ``dtype`` at ``x``: the size of one ULP where ``x`` lies."""
    fmt = get_format(dtype)
    v = abs(_mpf(x))
    if v < mpmath.ldexp(1, fmt.emin):
        return fmt.smallest_subnormal
    _, _, exp, bc = v._mpf_
    return math.ldexp(1.0, exp + bc - 1 - fmt.precision + 1)


def _ordinal_parts(
    hi: np.ndarray, lo: np.ndarray, fmt: FloatFormat
) -> tuple[np.ndarray, np.ndarray]:
    """Integer and fractional part of the ordinal of ``hi + lo`` (finite, any sign)."""
    sign = np.where(np.signbit(hi), -1.0, 1.0)
    a = np.abs(hi)
    alo = lo * sign
    _, e2 = np.frexp(a)
    top = e2.astype(np.int64) - 1
    normal = a >= math.ldexp(1.0, fmt.emin)
    top = np.where(normal, top, fmt.emin)
    # spacing exponent; for subnormals the formula below reduces to a / sub_spacing
    spacing_exp = top - (fmt.precision - 1)
    mant = np.ldexp(a, -spacing_exp)  # exact: a power-of-two scaling
    mant_lo = np.ldexp(alo, -spacing_exp)
    whole = np.floor(mant)
    # hi a power of two with lo pulling below it: the value lies in the binade below,
    # whose spacing is half as large.
    below_power = normal & (top > fmt.emin) & (mant == 2.0 ** (fmt.precision - 1)) & (mant_lo < 0)
    frac = (mant - whole) + np.where(below_power, 2 * mant_lo, mant_lo)
    half_range = 2 ** (fmt.precision - 1)
    base = np.where(normal, (top - fmt.emin + 1) * half_range - half_range, 0)
    integer = base + whole.astype(np.int64)
    signi = sign.astype(np.int64)
    return integer * signi, frac * sign


def _value_ordinals(c: np.ndarray, fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_ordinal_parts` of finite float64 ``c`` without a correction term.

    For float16 and float32 values the ordinal is the bit pattern's magnitude, signed
    (IEEE-754 orders a sign's values by their bits, the subnormals first from 1): read
    from the bits, a few times faster.  Values not of the format take the general path.
    """
    if fmt.name in ("float16", "float32"):
        with np.errstate(over="ignore"):
            v = c.astype(fmt.numpy_dtype)
        if np.array_equal(v, c):
            ints = np.uint16 if fmt.name == "float16" else np.uint32
            bits = v.view(ints).astype(np.int64)
            magnitude = bits & ((1 << (fmt.bits - 1)) - 1)
            return np.where(bits >> (fmt.bits - 1), -magnitude, magnitude), np.zeros(c.shape)
    return _ordinal_parts(c, np.zeros(c.shape), fmt)


def ulp_error_array(
    computed: Any,
    exact: Any,
    dtype: str | FloatFormat,
    exact_lo: Any = None,
) -> np.ndarray:
    """Vectorised :func:`ulp_error`: computed values against ``exact + exact_lo`` (float64).

    ``computed`` holds values of ``dtype`` (as any float array; they are read as float64).
    The exact value is ``exact`` (float64) plus the optional correction ``exact_lo``,
    ``|exact_lo| <= ulp(exact)/2``.  Integer parts of the ordinals are subtracted in int64
    so the result keeps its fractional resolution even for float64's 2**63 ordinals.
    """
    fmt = get_format(dtype)
    c = np.asarray(computed, dtype=np.float64)
    e = np.asarray(exact, dtype=np.float64)
    lo = np.zeros_like(e) if exact_lo is None else np.asarray(exact_lo, dtype=np.float64)
    c, e, lo = np.broadcast_arrays(c, e, lo)
    out = np.empty(c.shape, dtype=np.float64)
    nan = np.isnan(c) | np.isnan(e)
    inf = ~nan & (np.isinf(c) | np.isinf(e))
    same_inf = inf & np.isinf(c) & np.isinf(e) & (np.sign(c) == np.sign(e))
    finite = ~nan & ~inf
    ci, cf = _value_ordinals(c[finite], fmt)
    ei, ef = _ordinal_parts(e[finite], lo[finite], fmt)
    # Same sign: subtract the int64 parts exactly.  Opposite signs: the distance is huge
    # (and could overflow int64), so add magnitudes in float64.
    same = (ci >= 0) == (ei >= 0)
    with np.errstate(over="ignore"):
        whole = np.where(
            same,
            (ci - np.where(same, ei, 0)).astype(np.float64),
            ci.astype(np.float64) - ei.astype(np.float64),
        )
    out[finite] = np.abs(whole + (cf - ef))
    out[nan] = np.nan
    out[inf] = np.inf
    out[same_inf] = 0.0
    return out
