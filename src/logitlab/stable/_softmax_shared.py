"""Pieces of the softmax cross-entropy fast paths shared by torch and NumPy: the bounds'
constants, the pairwise row sum, what a forward keeps for its backward, and the exact
recomputation of flagged elements (a tighter float64 evaluation, then one in x87
extended precision where NumPy has it, then mpmath).  Imports no framework.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from logitlab.stable._backend import as_extended
from logitlab.stable._backend import extended as _extended

__all__ = ["STATS", "Saved", "exact_loss", "exact_reduced", "fix_grads", "levels", "pairwise_"]

#: log2(e) rounded to float64.
_LOG2E = 1.4426950408889634
_U = 2.0**-53
#: Past 746, exp(d) is below float64's smallest subnormal: 0, as in every narrow format.
_TAIL = 746.0
_FLOOR = 2.0**-1000
_MAX_SCALE = 2.0**800
#: Multiplies the chunked bounds (tests raise it, so that every element takes the
#: exact path and the path is checked against mpmath).
SLACK = 1.0
_NARROW = ("float16", "bfloat16", "float32")

#: Counters of the exact recomputations (for tests and benchmarks).
STATS = {
    "fast_forward": 0,
    "fast_backward": 0,
    "exact_losses": 0,
    "exact_grads": 0,
    "exact_long": 0,  # of the exact gradients, those decided in extended precision
    "exact_mpmath": 0,  # of the exact gradients, those that needed mpmath
    "native_forward": 0,  # passes run by the C kernels (_native.c)
    "native_backward": 0,
}


def levels(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def pairwise_(b: Any) -> Any:
    """Row sums of ``b`` (rows, W), summed pairwise in place: ``ceil(log2 W)`` levels."""
    w = b.shape[1]
    while w > 1:
        h = (w + 1) // 2
        b[:, : w - h] += b[:, h:w]  # in place, torch and NumPy alike
        w = h
    return b[:, 0]


@dataclass
class Saved:
    """What the backward needs: per-row float64 vectors and the problem's constants."""

    z: Any  # (N, C) narrow logits, contiguous
    t: Any  # (N,) target, 0 where not kept
    k: Any  # (N,) arg-max
    m: Any  # (N,) max (0 for fully masked rows), float64
    r: Any  # (N,) sum of exp(d) over c != k, float64
    spread: Any  # (N,) min(max |d_c|, 746), float64
    b: Any  # (N,) coefficient of the target class, float64
    alpha: Any  # (N,) 1.0 for kept rows, float64
    a: Any  # (C,) w_c eps / C, float64 (None without label smoothing)
    big_a: float  # sum of a
    denominator: float
    reduction: str
    eps: float
    weight: Any
    name: str
    cache: dict[str, Any] = field(default_factory=dict)


class _ExactRow:
    """One row's exact softmax pieces in mpmath, cached per precision.

    ``d_c = z_c - m`` exactly, ``r = sum_{c != k} exp(d_c)`` and ``L = log1p(r)`` at the
    context's precision plus guard bits; the coefficients ``q_c`` exactly.
    """

    def __init__(self, saved: Saved, row: int) -> None:
        from logitlab.core.mp import mp_context

        ctx = mp_context()
        self.values = floats(saved.z[row])
        finite = [x for x in self.values if x != -math.inf]
        self.kept = float(saved.alpha[row]) != 0.0 and bool(finite)
        self.m = max(finite) if finite else 0.0
        self.k = self.values.index(self.m) if finite else 0
        self.spread = min(self.m - min(finite), _TAIL) if finite else 0.0
        n_classes = len(self.values)
        weights = _weights(saved)
        self.t = int(saved.t[row])
        saved_prec = ctx.prec
        try:
            ctx.prec = 1200  # the coefficients exactly (products and sums of a few floats)
            eps = ctx.mpf(saved.eps)
            self.w = [ctx.mpf(1)] * n_classes if weights is None else [ctx.mpf(x) for x in weights]
            self.smooth = eps / n_classes  # q_c = w_c (smooth + [c == t] (1 - eps))
            self.hard = 1 - eps
            self.kept_f = 1 if self.kept else 0
            total_w = saved.cache.get("total_w")
            if total_w is None:
                total_w = saved.cache["total_w"] = ctx.fsum(self.w)
            self.q_total = self.kept_f * (self.w[self.t] * self.hard + self.smooth * total_w)
            self.q_others = self.q_total - self.q_of(self.k)
        finally:
            ctx.prec = saved_prec
        self._parts: dict[int, tuple[list[Any], Any, Any]] = {}

    def q_of(self, c: int) -> Any:
        """The exact coefficient ``q_c`` (the context must hold enough bits: 1200)."""
        if not self.kept:
            return 0
        return self.w[c] * (self.smooth + (self.hard if c == self.t else 0))

    def parts(self) -> tuple[list[Any], Any, Any]:
        """(d, r, L) at the context's precision."""
        from mpmath import libmp

        from logitlab.core.mp import mp_context

        ctx = mp_context()
        prec = ctx.prec
        cached = self._parts.get(prec)
        if cached is not None:
            return cached
        work = prec + 16 + len(self.values).bit_length()
        top = libmp.from_float(self.m)
        d: list[Any] = []
        terms = []
        for c, x in enumerate(self.values):
            if x == -math.inf:
                d.append(ctx.mpf(-math.inf))
                continue
            dc = libmp.mpf_sub(libmp.from_float(x), top)  # exact
            d.append(ctx.make_mpf(dc))
            if c != self.k:
                terms.append(ctx.make_mpf(libmp.mpf_exp(dc, work, "n")))
        saved_prec = ctx.prec
        try:
            ctx.prec = work
            r = ctx.fsum(terms)
            big_l = ctx.log1p(r)
        finally:
            ctx.prec = saved_prec
        self._parts[prec] = (d, r, big_l)
        return d, r, big_l

    def loss(self) -> Any:
        from logitlab.core.mp import mp_context

        ctx = mp_context()
        if not self.kept:
            return ctx.mpf(0)
        d, _, big_l = self.parts()
        target = ctx.prec
        try:
            ctx.prec = 1200
            qs = [self.q_of(c) for c in range(len(d))] if self.smooth else None
        finally:
            ctx.prec = target
        if qs is None:
            q_t = self.q_of(self.t)
            return q_t * (big_l - d[self.t]) if q_t != 0 else ctx.mpf(0)
        return ctx.fsum(q * (big_l - dc) for q, dc in zip(qs, d) if q != 0)

    def grad(self, col: int, g: float, den: Any) -> Any:
        """``g (Q p_col - q_col) / den``, with bits added until its cancellation is
        accounted for (relative accuracy of the context's precision)."""
        from logitlab.core.mp import mp_context

        ctx = mp_context()
        if not self.kept or g == 0:
            return ctx.mpf(0)
        target = ctx.prec
        extra = 16
        try:
            while True:
                ctx.prec = target + extra
                d, r, _ = self.parts()
                one_r = 1 + r
                if col == self.k:
                    first, second = self.q_others, self.q_of(col) * r
                    scale = ctx.mpf(1) / one_r
                else:
                    first = self.q_total * ctx.exp(d[col]) / one_r
                    second, scale = ctx.mpf(self.q_of(col)), ctx.mpf(1)
                value = (first - second) * scale
                size = max(abs(first), abs(second)) * scale
                if value == 0 or size == 0:
                    break
                lost = int(ctx.log(size / abs(value), 2)) + 1
                if lost + 8 <= extra or extra > 1 << 15:
                    break
                extra = lost + 32
            result = value * ctx.mpf(g) / den
        finally:
            ctx.prec = target
        return +result


def exact_sum(values: list[float]) -> Any:
    """The exact sum of finite floats, as a Fraction: each is ``n / 2**p``, so the sum is
    one integer over the largest ``2**p`` (fast where Fraction additions are not: a
    vocabulary of 50,257 weights takes milliseconds, not a second)."""
    from fractions import Fraction

    ratios = [x.as_integer_ratio() for x in values]
    shift = max((den.bit_length() - 1 for _, den in ratios), default=0)
    total = sum(num << (shift - (den.bit_length() - 1)) for num, den in ratios)
    return Fraction(total, 1 << shift)


def floats(a: Any) -> list[float]:
    """A torch tensor's or NumPy array's values as Python floats (exact)."""
    # float64 tolist() gives Python floats already (the same doubles)
    if hasattr(a, "double"):
        return a.detach().double().reshape(-1).tolist()
    import numpy as np

    return np.asarray(a, dtype=np.float64).reshape(-1).tolist()


def _weights(saved: Saved) -> list[float] | None:
    """The class weights as Python floats (exact), listed once per loss and kept."""
    if saved.weight is None:
        return None
    cached = saved.cache.get("weights")
    if cached is None:
        cached = saved.cache["weights"] = floats(saved.weight)
    return cached


def _row64(z: Any) -> Any:
    """One row of logits as a float64 NumPy array (exact), from torch or NumPy."""
    import numpy as np

    if hasattr(z, "double"):
        return z.detach().double().cpu().numpy().reshape(-1)
    return np.asarray(z, dtype=np.float64).reshape(-1)


def _cap(row: _ExactRow) -> int:
    from logitlab.core.mp import WORKING_PRECISION
    from logitlab.stable._rounding import TAIL_LIMIT

    spread = min(row.spread, TAIL_LIMIT)
    # a tiny difference's Taylor tail lies about d**2 below the value (see _rounding)
    gaps = [abs(x - row.m) for x in row.values if math.isfinite(x) and x != row.m]
    tiny = min(gaps, default=1.0)
    small = 2 * max(0, -math.frexp(tiny)[1]) if tiny > 0 else 0
    return WORKING_PRECISION + 64 + int(spread / math.log(2)) + 1 + small


def exact_loss(saved: Saved, row: int) -> float:
    from logitlab.core.mp import WORKING_PRECISION
    from logitlab.core.ulp import round_decided

    exact = _ExactRow(saved, row)
    return round_decided(exact.loss, saved.name, start_bits=WORKING_PRECISION, max_bits=_cap(exact))


def exact_reduced(saved: Saved) -> float:
    from logitlab.core.mp import WORKING_PRECISION, mp_context
    from logitlab.core.ulp import round_decided

    rows = [_ExactRow(saved, row) for row in range(int(saved.z.shape[0]))]

    def evaluate() -> Any:
        ctx = mp_context()
        total = ctx.fsum(row.loss() for row in rows)
        if saved.reduction == "mean":
            den = _exact_denominator(saved)
            return total / den if den else ctx.nan
        return total

    cap = max(_cap(row) for row in rows)
    return round_decided(evaluate, saved.name, start_bits=WORKING_PRECISION, max_bits=cap)


def _exact_denominator(saved: Saved) -> Any:
    """The mean's denominator, the weights of the kept rows summed exactly (cached)."""
    from fractions import Fraction

    from logitlab.core.mp import mp_context

    ctx = mp_context()
    cached = saved.cache.get("denominator")
    if cached is None:
        kept = [a != 0.0 for a in floats(saved.alpha)]
        if saved.weight is None:
            cached = ctx.mpf(sum(kept))  # a count: exact
        else:
            weights = _weights(saved)
            assert weights is not None
            targets = [int(x) for x in saved.t.tolist()]
            total = sum(
                (Fraction(weights[t]) for t, keep in zip(targets, kept) if keep), Fraction(0)
            )
            saved_prec = ctx.prec
            try:
                ctx.prec = 1200
                cached = ctx.mpf(total.numerator) / total.denominator
            finally:
                ctx.prec = saved_prec
        saved.cache["denominator"] = cached
    return cached


class _CloserRow:
    """A second float64 evaluation of one flagged row, tighter than the chunked one: each
    ``exp`` one float64 ``exp`` of an exact ``z_c - m`` (within 1 ULP), ``r`` summed by
    ``math.fsum`` (one rounding), the coefficients exact (fractions).  A gradient element is
    then within ``16 u (|T1| + |T2|)`` of its two terms (and ``4 u`` of itself), which
    decides most flagged elements without mpmath.  ``ok`` is False where it does not
    apply (an inexact ``z_c - m``, a row that contributes nothing)."""

    def __init__(self, saved: Saved, row: int) -> None:
        from fractions import Fraction

        import numpy as np

        values = _row64(saved.z[row])
        live = values != -math.inf
        self.ok = bool(live.any()) and float(saved.alpha[row]) != 0.0
        if not self.ok:
            return
        m = float(values[live].max())
        self.k = int(np.argmax(values == m))
        with np.errstate(all="ignore"):
            d = np.where(live, values - m, -math.inf)
            back = d - values
            if bool(np.any(live & ((values - (d - back)) + (-m - back) != 0.0))):
                self.ok = False  # TwoSum: some z_c - m is not exact
                return
        self._d = d
        self._sums: tuple[Any, float] | None = None
        n_classes = values.size
        self.weights = _weights(saved)
        total_w = saved.cache.get("fraction_w")
        if total_w is None:
            total_w = Fraction(n_classes) if self.weights is None else exact_sum(self.weights)
            saved.cache["fraction_w"] = total_w
        eps = Fraction(saved.eps)
        self.t = int(saved.t[row])
        self.smooth, self.hard = eps / n_classes, 1 - eps
        self.q_total = Fraction(self._weight(self.t)) * self.hard + self.smooth * total_w

    def sums(self) -> tuple[Any, float]:
        """``(e, r)``: every ``exp(z_c - m)`` and their sum but the maximum's, computed on
        first use (:func:`fix_grads` sends a wide row straight to the extended pass)."""
        import numpy as np

        if self._sums is None:
            with np.errstate(all="ignore"):
                e = np.exp(self._d)  # NumPy's float64 exp: within 1 ULP, as math.exp
            others = e.copy()
            others[self.k] = 0.0
            self._sums = (e, math.fsum(others.tolist()))
        return self._sums

    def _weight(self, c: int) -> float:
        return 1.0 if self.weights is None else self.weights[c]

    def q_of(self, c: int) -> Any:
        from fractions import Fraction

        return Fraction(self._weight(c)) * (self.smooth + (self.hard if c == self.t else 0))

    def grad(self, col: int, g: float, den: float, name: str) -> float | None:
        """The element correctly rounded to ``name``, or None if this cannot decide it."""
        from logitlab.core.ulp import round_to_format

        tiny = 2.0**-1000
        if not self.ok:
            return None
        e, r = self.sums()
        e_col = float(e[col])
        if (0 < r < tiny) or (0 < e_col < tiny):
            return None
        one_r = 1.0 + r
        if col == self.k:
            q_k = self.q_of(col)
            first, second = float(self.q_total - q_k), float(q_k) * r
            diff, size = (first - second) / one_r, (first + second) / one_r
        else:
            first = float(self.q_total) * e_col / one_r
            second = float(self.q_of(col))
            diff, size = first - second, first + second
        scale = g / den
        value = diff * scale
        bound = 16 * _U * size * abs(scale) + 4 * _U * abs(value)
        if not math.isfinite(value) or (value != 0 and abs(value) < tiny):
            return None
        low = round_to_format(value - bound, name)
        return low if low == round_to_format(value + bound, name) else None


def _extended_of(x: Any, ld: Any) -> Any:
    """A Fraction or mpf as ``ld`` within one rounding (``hi + lo`` holds 106 bits)."""
    from fractions import Fraction

    hi = float(x)
    lo = float(Fraction(x) - Fraction(hi)) if isinstance(x, Fraction) else float(x - hi)
    return ld(hi) + ld(lo)


def _float_below(x: Any, ld: Any) -> float:
    """The largest float64 at most ``x`` (an ``ld``)."""
    f = float(x)
    return math.nextafter(f, -math.inf) if ld(f) > x else f


def _float_above(x: Any, ld: Any) -> float:
    f = float(x)
    return math.nextafter(f, math.inf) if ld(f) < x else f


class _ExtendedRow:
    """A third evaluation of a flagged row, vectorised in x87 extended precision
    (``U = 2**-63`` bounds one rounding): ``exp`` of an exact ``z_c - m`` within 2 ULP
    (glibc's ``expl``; tested against mpmath), ``r`` summed pairwise, the coefficients
    within one rounding of their exact values.  A gradient element is then within
    ``(16 + 2 D) U (|T1| + |T2|) + 8 U |v|`` of its two terms: about ``2**10`` times
    tighter than :class:`_CloserRow`, so only elements within about ``1e-17`` relative of
    a rounding boundary reach mpmath, which costs some 50 us per class (seconds for a
    row of 50,257).  ``ok`` is False where it does not apply."""

    U = 2.0**-63

    def __init__(self, saved: Saved, row: int, closer: _CloserRow, ld: Any) -> None:
        import numpy as np

        self.ok = closer.ok
        if not self.ok:
            return
        self.ld, self.closer = ld, closer
        wide = as_extended(saved.z[row])
        if wide is None:
            self.ok = False
            return
        z = wide[0]
        live = z != -math.inf
        m = z[live].max()
        with np.errstate(all="ignore"):
            d = np.where(live, z - m, -np.inf).astype(ld)
            # TwoSum: z_c - m is exact in 64 bits (closer.ok says it is in 53 already)
            back = d - z
            exact = (z - (d - back)) + (-m - back)
            if bool(np.any(live & (exact != 0))):
                self.ok = False
                return
            e = np.exp(d)
        self.e = e
        others = e.copy()
        others[closer.k] = 0
        self.r = pairwise_(others.reshape(1, -1).copy())[0]
        self.depth = levels(z.size)
        self.q_total = _extended_of(closer.q_total, ld)

    def grad(self, col: int, g: float, den: Any, name: str) -> float | None:
        """The element correctly rounded to ``name``, or None if this cannot decide it."""
        from fractions import Fraction

        import numpy as np

        from logitlab.core.ulp import round_to_format

        if not self.ok:
            return None
        ld, closer = self.ld, self.closer
        one_r = ld(1) + self.r
        q_col = closer.q_of(col)
        if col == closer.k:
            first = _extended_of(Fraction(closer.q_total) - q_col, ld)
            second = _extended_of(q_col, ld) * self.r
            diff, size = (first - second) / one_r, (abs(first) + abs(second)) / one_r
        else:
            first = self.q_total * self.e[col] / one_r
            second = _extended_of(q_col, ld)
            diff, size = first - second, abs(first) + abs(second)
        scale = ld(g) / _extended_of(den, ld)
        value = diff * scale
        u = ld(self.U)
        bound = (16 + 2 * self.depth) * u * size * abs(scale) + 8 * u * abs(value)
        if not (np.isfinite(value) and np.isfinite(bound)):
            return None
        low = round_to_format(_float_below(value - bound, ld), name)
        high = round_to_format(_float_above(value + bound, ld), name)
        return low if low == high else None


#: Classes beyond which :func:`fix_grads` skips the float64 second pass.
WIDE_ROW = 2048


def fix_grads(saved: Saved, out: Any, cells: list[tuple[int, int]], s: Any) -> None:
    from logitlab.core.mp import WORKING_PRECISION, mp_context
    from logitlab.core.ulp import round_decided

    den = _exact_denominator(saved) if saved.reduction == "mean" else mp_context().mpf(1)
    den_float = float(den)
    closer: dict[int, _CloserRow] = {}
    extended: dict[int, _ExtendedRow] = {}
    ld = _extended()
    rows: dict[int, _ExactRow] = {}
    # A wide row (a vocabulary) goes straight to the extended pass, which decides all the
    # float64 one does and more: the float64 exp and fsum of 50,257 classes cost 5 ms.
    skip_closer = ld is not None and int(saved.z.shape[-1]) > WIDE_ROW
    for row, col in cells:
        near = closer.get(row)
        if near is None:
            near = closer[row] = _CloserRow(saved, row)
        decided = None if skip_closer else near.grad(col, float(s[row]), den_float, saved.name)
        if decided is not None:
            out[row, col] = decided
            continue
        if ld is not None:
            wide = extended.get(row)
            if wide is None:
                wide = extended[row] = _ExtendedRow(saved, row, near, ld)
            decided = wide.grad(col, float(s[row]), den, saved.name)
            if decided is not None:
                STATS["exact_long"] += 1
                out[row, col] = decided
                continue
        STATS["exact_mpmath"] += 1
        exact = rows.get(row)
        if exact is None:
            exact = rows[row] = _ExactRow(saved, row)
        value = round_decided(
            functools.partial(exact.grad, col, float(s[row]), den),
            saved.name,
            start_bits=WORKING_PRECISION,
            max_bits=_cap(exact),
        )
        out[row, col] = value
