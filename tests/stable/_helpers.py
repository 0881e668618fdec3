"""Shared helpers for the logitlab.stable tests: exact values as float64 hi + lo."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import mpmath
import numpy as np

from logitlab.core.formats import get_format
from logitlab.core.ulp import ulp_error_array


def hi_lo(values: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """mpmath values as float64 ``hi`` (correctly rounded) plus float64 ``lo`` remainder."""
    his, los = [], []
    for v in values:
        if not mpmath.isfinite(v):
            his.append(float(v))
            los.append(0.0)
            continue
        hi = float(v)
        his.append(hi)
        los.append(float(v - mpmath.mpf(hi)) if np.isfinite(hi) else 0.0)
    return np.array(his), np.array(los)


def ulps_against(
    computed: Any, exact_fn: Callable[[float], Any], inputs: np.ndarray, dtype: str
) -> np.ndarray:
    """ULP errors in ``dtype`` of ``computed`` against ``exact_fn`` at each input."""
    hi, lo = hi_lo(exact_fn(float(v)) for v in np.ravel(inputs))
    c = np.asarray(computed, dtype=np.float64).ravel()
    errors = ulp_error_array(c, hi, dtype, lo)
    # An exact value that overflows the format rounds to infinity: that is no error.
    fmt = get_format(dtype)
    top = fmt.max + 2.0 ** (fmt.emax - fmt.precision)  # max + ulp(max) / 2 rounds up
    overflow = np.isinf(c) & (np.abs(hi) >= top) & (np.sign(c) == np.sign(hi))
    errors[overflow] = 0.0
    return errors


def narrow_values(dtype: str) -> np.ndarray:
    """Every finite value of a 16-bit format, plus -0.0, as float64."""
    return np.append(get_format(dtype).values(), -0.0)


def assert_correctly_rounded(
    computed: Any,
    reference: np.ndarray,
    dtype: str,
    exact_at: Callable[[int], Any],
    tolerance: float,
) -> int:
    """Every element of ``computed`` is the exact value correctly rounded to ``dtype``.

    ``reference`` is a fast reference within ``tolerance`` ULP of exact (proven against
    mpmath elsewhere): an element within ``0.5 - tolerance`` ULP of it is correctly
    rounded, one beyond ``0.5 + tolerance`` is not, and the few in between (near-ties,
    which the reference cannot decide) are decided by ``exact_at(i)`` (an mpmath value),
    rounded with :func:`logitlab.core.ulp.round_to_format`.  Returns how many needed mpmath.
    """
    from logitlab.core.mp import mp_context
    from logitlab.core.ulp import round_to_format
    from logitlab.exact import fast

    c = np.asarray(computed, dtype=np.float64).ravel()
    errors = fast.ulp_errors(c, reference, dtype)
    assert not np.isnan(errors).any()
    assert errors.max() <= 0.5 + tolerance, (np.argmax(errors), errors.max())
    close = np.flatnonzero(errors > 0.5 - tolerance)
    # 2,000 bits decide nearly every near-tie; the few still within 2**-1980 of a
    # midpoint at 2,000 bits get 100,000 (the tail exp(-|z|) of float16's largest
    # logits, |z| <= 65504, needs 94,500).
    for i in close:
        with wide_mp(2000):
            x = mp_context().mpf(exact_at(int(i)))  # this thread's context, not mpmath.mp
            slack = abs(x) * mp_context().ldexp(1, -1980)
            low = round_to_format(x - slack, dtype)
            expected = low if low == round_to_format(x + slack, dtype) else None
        if expected is None:
            with wide_mp(100_000):
                expected = round_to_format(exact_at(int(i)), dtype)
        assert c[i] == expected, (int(i), c[i], expected)
    return len(close)


@contextlib.contextmanager
def wide_mp(bits: int = 2000) -> Iterator[None]:
    """This thread's mpmath context at ``bits`` (``round_to_format`` first rounds to it):
    a near-tie can hinge on a tail ``exp(-|z|)`` far below 160 bits (z up to ~1000)."""
    from logitlab.core.mp import mp_context

    ctx = mp_context()
    saved = ctx.prec
    ctx.prec = bits
    try:
        yield
    finally:
        ctx.prec = saved
