"""The BCE gradient near its zero crossing, without cancellation, in double-double.

``g(z) = (1 - y) sigma(z) - p sigma(-z)`` (``p = pos_weight * y``) vanishes at
``z0 = log(p / q)``, ``q = 1 - y``.  With ``s0 = sigma(z0) = p / (p + q)`` and
``t = z0 - z``, ``sigma(z) = s0 / (1 + (1 - s0) expm1(t))``, so

    g = -A * m / (1 + B * m),   m = expm1(t),  A = q * s0,  B = 1 - s0 = q / (p + q).

Nothing here cancels: ``t`` is the difference of an exact float64 and ``z0`` held to some
156 bits, and the rest is a well-conditioned function of ``t`` (for ``|t| <= 1`` the
relative condition number of ``g`` with respect to ``t`` is below 3:
``t e^t / (e^t - 1) <= e / (e - 1)`` plus ``|t| (1 - s0) e^t / (s0 + (1 - s0) e^t) <= 1``).

The constants ``z0`` (three float64 words), ``A`` and ``B`` (two words) come from mpmath,
once per distinct ``(y, pos_weight)``.  The rest is vectorised double-double arithmetic in
float64 (unit roundoff ``u = 2**-53``), the algorithms and error bounds of Joldes, Muller
and Popescu, "Tight and rigorous error bounds for basic building blocks of double-word
arithmetic", ACM TOMS 44 (2017): each operation below has a relative error under
``16 u**2`` when nothing underflows (the guard in :func:`near_root` sees to that).

``expm1(t)`` for ``|t| <= 1``: ``t = j/64 + x`` with ``|x| <= 2**-7`` (``x`` exact),
``expm1(t) = (E_j - 1) + E_j * expm1(x)`` with ``E_j = exp(j/64)`` tabulated in double-double
from mpmath, and ``expm1(x) = x * sum_{k<=10} x**k / (k+1)!`` by Horner's rule (terms from
``x**6`` on in plain float64: their share is below ``2**-50`` of the sum, so their rounding
costs under ``u * 2**-48``; the truncation is below ``2**-105`` relative).  The two terms of
``expm1(t)`` have the same sign, or the second is at most half the first, so errors grow
at most threefold there; likewise in ``1 + B m >= 0.36`` (``|B m| <= 1.72``).

Summing: 21 double-double operations at ``16 u**2`` each, amplified at most fourfold, the
tables and constants at ``2 u**2``, the series at ``2**-100``: the relative error of
``w * g`` before its final rounding is below ``ROUNDING = 2**-90`` plus ``3`` times the
relative error of ``t``, which :func:`near_root` computes for each point.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["ROUNDING", "RootConstants", "near_root", "root_constants"]

#: Bound on the relative error of the double-double evaluation (not counting ``t``).
ROUNDING = 2.0**-90
_U = 2.0**-53
# Magnitudes below which a double-double step may underflow; the path is refused there.
_SAFE_MIN = 2.0**-600
_SCALE_EXP = 600
_SCALE = 2.0**_SCALE_EXP

F64 = np.ndarray


# -- error-free transformations and double-double operations (float64) ----------------


def _two_sum(a: F64, b: F64) -> tuple[F64, F64]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a: F64, b: F64) -> tuple[F64, F64]:
    # |a| >= |b| (or a == 0)
    s = a + b
    return s, b - (s - a)


_SPLITTER = 2.0**27 + 1


def _split(a: F64) -> tuple[F64, F64]:
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a: F64, b: F64) -> tuple[F64, F64]:
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _add(xh: F64, xl: F64, yh: Any, yl: Any) -> tuple[F64, F64]:
    """AccurateDWPlusDW (JMP Alg. 6): 3u^2 + 13u^3."""
    sh, sl = _two_sum(xh, yh)
    th, tl = _two_sum(xl, yl)
    c = sl + th
    vh, vl = _fast_two_sum(sh, c)
    w = tl + vl
    return _fast_two_sum(vh, w)


def _add_fp(xh: F64, xl: F64, y: Any) -> tuple[F64, F64]:
    """DWPlusFP (JMP Alg. 4): 2u^2."""
    sh, sl = _two_sum(xh, y)
    v = xl + sl
    return _fast_two_sum(sh, v)


def _mul(xh: F64, xl: F64, yh: Any, yl: Any) -> tuple[F64, F64]:
    """DWTimesDW1 (JMP Alg. 10, TwoProd without FMA): 7u^2."""
    ch, cl1 = _two_prod(xh, yh)
    cl2 = xh * yl + xl * yh
    return _fast_two_sum(ch, cl1 + cl2)


def _mul_fp(xh: F64, xl: F64, y: Any) -> tuple[F64, F64]:
    """DWTimesFP1 (JMP Alg. 7): 1.5u^2 + 4u^3."""
    ch, cl1 = _two_prod(xh, y)
    return _fast_two_sum(ch, xl * y + cl1)


def _div(xh: F64, xl: F64, yh: F64, yl: F64) -> tuple[F64, F64]:
    """DWDivDW2 (JMP Alg. 17): 15u^2 + 56u^3."""
    th = xh / yh
    rh, rl = _mul_fp(yh, yl, th)
    d = (xh - rh) + (xl - rl)
    return _fast_two_sum(th, d / yh)


# -- constants from mpmath -----------------------------------------------------------


def _words(v: Any, n: int) -> tuple[float, ...]:
    """``v`` (an mpf of at least 53 n bits) as ``n`` float64 words, greedily."""
    out = []
    for _ in range(n):
        w = float(v)
        out.append(w)
        v = v - w
    return tuple(out)


def _mp() -> Any:
    import mpmath

    ctx = mpmath.MPContext()
    ctx.prec = 320
    return ctx


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, ...]:
    """E_j = exp(j/64) and E_j - 1 for j in [-64, 64], as double-double columns."""
    ctx = _mp()
    e = [ctx.exp(ctx.mpf(j) / 64) for j in range(-64, 65)]
    eh, el = np.array([_words(v, 2) for v in e]).T
    mh, ml = np.array([_words(v - 1, 2) for v in e]).T
    return eh, el, mh, ml


def _coef(k: int) -> tuple[float, float]:
    f = Fraction(1, 1)
    for i in range(2, k + 2):
        f /= i
    hi = float(f)
    return hi, float(f - Fraction(hi))


_COEF = [_coef(k) for k in range(11)]  # 1 / (k + 1)!


class RootConstants:
    """``z0`` in three words and ``A``, ``B`` in two, per distinct ``(y, pos_weight)``.

    ``ok`` is False where the double-double path does not apply (``y`` outside (0, 1),
    ``pos_weight <= 0``, or constants too small for float64 double-double).
    """

    def __init__(self, y: np.ndarray, pw: np.ndarray) -> None:
        key = y + 1j * pw  # sorts by y, then pos_weight; cheaper than unique(axis=0)
        if key.size == 0 or (key == key[0]).all():
            self.inverse: np.ndarray | None = None
            first = key[:1]
        else:
            first, inverse = np.unique(key, return_inverse=True)
            self.inverse = inverse.reshape(-1)
        rows = [root_constants(float(v.real), float(v.imag)) for v in first]
        self.table = np.array(rows, dtype=np.float64).reshape(len(rows), 8)
        self.size = key.size

    def column(self, i: int) -> np.ndarray:
        col = self.table[:, i]
        if self.inverse is None:
            return np.full(self.size, col[0] if col.size else 0.0)
        return col[self.inverse]


@lru_cache(maxsize=4096)
def root_constants(y: float, pw: float) -> tuple[float, ...]:
    """(ok, z0 (3 words), A (2 words), B (2 words)) for one target and pos_weight."""
    if not (0 < y < 1 and 0 < pw < np.inf):
        return (0.0,) * 8
    ctx = _mp()
    p = ctx.fmul(pw, y, exact=True)
    q = ctx.fsub(1, y, exact=True)
    k = ctx.fadd(p, q, exact=True)
    z0 = ctx.mpf(0) if p == q else ctx.log(p / q)
    a = q * p / k
    b = q / k
    if not (a >= _SAFE_MIN and b >= _SAFE_MIN):
        return (0.0,) * 8
    return (1.0, *_words(z0, 3), *_words(a, 2), *_words(b, 2))


def near_root(
    z: np.ndarray, y: np.ndarray, pw: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``w * g = (hi + lo) * 2**e`` (``hi, lo`` a double-double) and a bound on its
    relative error.

    All inputs are flat float64 arrays of one size.  Where the bound is ``inf`` the path
    did not apply (the caller must look elsewhere for those points).  Works in chunks that
    stay in cache (about twice as fast as whole arrays).
    """
    if z.size <= _CHUNK:
        return _near_root(z, y, pw, w)
    parts = [
        _near_root(z[i : i + _CHUNK], y[i : i + _CHUNK], pw[i : i + _CHUNK], w[i : i + _CHUNK])
        for i in range(0, z.size, _CHUNK)
    ]
    gh, gl, e, bound = (np.concatenate(col) for col in zip(*parts))
    return gh, gl, e, bound


_CHUNK = 1 << 14


def _near_root(
    z: np.ndarray, y: np.ndarray, pw: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    c = RootConstants(y, pw)
    ok = c.column(0) == 1.0
    z0h, z0m, z0l = c.column(1), c.column(2), c.column(3)
    ah, al, bh, bl = c.column(4), c.column(5), c.column(6), c.column(7)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        # t = z0 - z: two exact steps, then one rounding of the low word
        s1, e1 = _two_sum(z0h, -z)
        s2, e2 = _two_sum(s1, z0m)
        low = e2 + (e1 + z0l)
        th, tl = _two_sum(s2, low)
        # |error of t| <= u (|e1 + z0l| + |e2 + (e1 + z0l)|) + |z0| 2**-150 (the words of z0)
        t_err = 1.01 * _U * (np.abs(e1 + z0l) + np.abs(low)) + np.abs(z0h) * 2.0**-150
        eps_t = t_err / np.abs(th)
        # t == 0 only at z == z0 == 0 (pw y == 1 - y, z = 0), where g is exactly zero;
        # any other z0 is irrational (a logarithm of a rational other than 1)
        zero = ok & (th == 0) & (tl == 0) & (z0h == 0)
        ok &= np.isfinite(z)
        # |t| < 2**-600 (z subnormal-small, z0 = 0): g = -A t (1 + rho) with
        # |rho| <= 2 |t|; computed scaled by 2**600 so that nothing underflows
        tiny = ok & (th != 0) & (np.abs(th) < _SAFE_MIN)
        sh, sl = _mul(ah, al, th * _SCALE, tl * _SCALE)
        sh, sl = _mul_fp(-sh, -sl, w)
        tiny &= np.isfinite(sh) & (np.abs(sh) >= _SAFE_MIN)
        ok &= (np.abs(th) <= 1.0) & (np.abs(th) >= _SAFE_MIN)
        th = np.where(ok, th, 0.5)
        tl = np.where(ok, tl, 0.0)

        # expm1(t) = (E_j - 1) + E_j * expm1(x),  x = t - j/64, |x| <= 2**-7
        j = np.rint(th * 64)
        xh, xl = _two_sum(th - j / 64, tl)  # th - j/64 is exact
        q = np.full_like(xh, _COEF[10][0])
        for k in range(9, 5, -1):
            q = _COEF[k][0] + xh * q  # plain float64 from x**6 on
        qh, ql = q, np.zeros_like(xh)
        for k in range(5, -1, -1):
            qh, ql = _mul(xh, xl, qh, ql)
            qh, ql = _add(qh, ql, _COEF[k][0], _COEF[k][1])
        mxh, mxl = _mul(xh, xl, qh, ql)
        eh, el, emh, eml = (col[j.astype(np.int64) + 64] for col in _tables())
        ph, pl = _mul(eh, el, mxh, mxl)
        mh, ml = _add(emh, eml, ph, pl)

        # g = -A m / (1 + B m), then times w
        nh, nl = _mul(ah, al, mh, ml)
        bmh, bml = _mul(bh, bl, mh, ml)
        dh, dl = _add_fp(bmh, bml, 1.0)
        gh, gl = _div(nh, nl, dh, dl)
        gh, gl = _mul_fp(-gh, -gl, w)
        ok &= np.isfinite(gh) & (np.abs(gh) >= _SAFE_MIN) & (np.abs(nh) >= _SAFE_MIN)
        bound = np.where(ok, ROUNDING + 3.0 * eps_t * 1.01, np.inf)
        gh, gl = np.where(tiny, sh, gh), np.where(tiny, sl, gl)
        bound = np.where(tiny, ROUNDING + 3.0 * eps_t * 1.01 + 2.0**-590, bound)
        gh, gl = np.where(zero, 0.0, gh), np.where(zero, 0.0, gl)
        bound = np.where(zero, 0.0, bound)
        e = np.where(tiny, -_SCALE_EXP, 0)
    return gh, gl, e, bound
