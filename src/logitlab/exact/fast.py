"""A fast, vectorised reference for audits, proven against mpmath in the tests.

Per-point mpmath (:mod:`logitlab.exact`) runs at some 10^4 points/s; an audit needs
millions.  This module evaluates the same functions on whole arrays with stable formulas
in a wider format than the audited one, and hands the few points it cannot vouch for to
mpmath:

* inputs of float16, bfloat16 and float32 are evaluated in float64 (unit roundoff
  ``2**-53``, some 2**29 times finer than a float32 ULP);
* float64 inputs are evaluated in ``np.longdouble``, which must be x87 extended precision
  (64-bit significand, checked at import of :func:`working_format`); the result stays a
  longdouble array so nothing is lost to float64's subnormal range;
* the only difference that can cancel, the BCE gradient
  ``w * ((1 - y) * sigma(z) - pw * y * sigma(-z))``, carries a conditioning estimate
  ``r = max(|a|, |b|) / |a - b|``; where ``(C * r + 1) * u`` exceeds ``TOLERANCE`` ULPs of the
  audited format (``u`` the working unit roundoff) the point is near the zero crossing
  ``z0 = log(pw * y / (1 - y))`` and is recomputed without cancellation as
  ``-w A expm1(z0 - z) / (1 + B expm1(z0 - z))`` in double-double arithmetic, with ``z0``
  held to 156 bits and a rigorous error bound per point (:mod:`logitlab.exact._root`);
* the points that bound cannot vouch for (``z`` within some ``2**-100 |z0|`` of ``z0``,
  or exotic weights) are recomputed in mpmath, in one context for the batch, and counted
  in ``fallback``.

Everything else is a sum or product of non-negative terms (no cancellation):

* ``softplus(z) = max(z, 0) + log1p(exp(-|z|))``;
* ``sigma(z) = 1 / (1 + exp(-z))`` for ``z >= 0`` and ``exp(z) / (1 + exp(z))`` below;
* ``bce = w * (pw * y * softplus(-z) + (1 - y) * softplus(z))``
  (``-log sigma(z) = softplus(-z)``, ``-log(1 - sigma(z)) = softplus(z)``).

The tests compare every function with mpmath on samples from every region (zero,
subnormals, the saturation thresholds, overflow, infinities, the gradient's zero
crossing) and require agreement within 0.01 ULP of the audited format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from logitlab.core.formats import FloatFormat, get_format
from logitlab.exact import _root

__all__ = [
    "ELEMENTWISE",
    "SOFTMAX_TOLERANCE",
    "TOLERANCE",
    "Reference",
    "bce",
    "elementwise",
    "from_mpf",
    "softmax_ce",
    "to_mpf",
    "ulp_errors",
    "working_format",
]

#: ULPs of the audited format that the reference's error may use, by its own estimate.
TOLERANCE = 0.004
# Bound, in working-format ulps, on the relative error of each gradient term
# (exp, 1 + e, a division, the coefficient and its product).
_TERM_ULPS = 4.0

#: Elementwise quantities: value and derivative.
ELEMENTWISE = ("sigmoid", "log_sigmoid", "softplus")


@dataclass(frozen=True)
class Reference:
    """Exact values and derivatives, to well below 0.01 ULP of ``dtype``.

    ``value`` and ``grad`` are float64 arrays for float16/bfloat16/float32 and longdouble
    arrays for float64; ``fallback`` counts the points recomputed in mpmath.
    """

    value: np.ndarray
    grad: np.ndarray
    fallback: int = 0
    grad_scale: np.ndarray | None = None
    #: Absolute bounds on the error of ``value`` and ``grad`` where the reference gives
    #: them (:func:`softmax_ce` with ``exact=False``); ``None``: within its tolerance.
    value_err: np.ndarray | None = None
    grad_err: np.ndarray | None = None

    def rounded(self, fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
        """``value`` and ``grad`` correctly rounded to ``fmt``, as float64 arrays.

        A longdouble value beyond float64's range rounds to an infinity, as it should,
        without NumPy's overflow warning (its error state is restored after)."""
        with np.errstate(over="ignore"):
            v = np.asarray(self.value, dtype=np.float64)
            g = np.asarray(self.grad, dtype=np.float64)
        return fmt.round(v), fmt.round(g)


def working_format(dtype: str | FloatFormat) -> type[np.floating[Any]]:
    """The NumPy type the reference computes in for ``dtype``."""
    fmt = get_format(dtype)
    if fmt.precision <= 24:
        return np.float64
    if np.finfo(np.longdouble).nmant < 63:
        raise RuntimeError(
            "the fast float64 reference needs np.longdouble with a 64-bit significand "
            f"(x86-64); this platform's has {np.finfo(np.longdouble).nmant + 1} bits"
        )
    return np.longdouble


def _pieces(z: np.ndarray) -> tuple[np.ndarray, ...]:
    """exp(-|z|), log1p(exp(-|z|)), sigma(z), sigma(-z), softplus(z), softplus(-z)."""
    e = np.exp(-np.abs(z))
    log1p_e = np.log1p(e)
    one = np.ones((), dtype=z.dtype)
    big = one / (one + e)  # sigma(|z|)
    small = e / (one + e)  # sigma(-|z|) = exp(-|z|) / (1 + exp(-|z|)), no overflow
    positive = z >= 0
    sig = np.where(positive, big, small)
    sig_neg = np.where(positive, small, big)
    # softplus(z) = max(z, 0) + log1p(exp(-|z|)); softplus(-z) = softplus(z) - z
    sp = np.maximum(z, 0) + log1p_e
    sp_neg = np.maximum(-z, 0) + log1p_e
    return e, log1p_e, sig, sig_neg, sp, sp_neg


def _times(coef: Any, values: np.ndarray) -> np.ndarray:
    # A zero coefficient removes its term even where the term is infinite (the limit).
    with np.errstate(invalid="ignore"):
        out = coef * values
    return np.where(np.asarray(coef) == 0, np.zeros((), dtype=values.dtype), out)


def elementwise(quantity: str, logits: Any, dtype: str | FloatFormat) -> Reference:
    """``sigmoid``, ``log_sigmoid`` or ``softplus`` of every logit, and its derivative.

    >>> r = elementwise("sigmoid", np.array([0.0, 2.0]), "float32")
    >>> [float(v) for v in r.value]
    [0.5, 0.8807970779778823]
    """
    work = working_format(dtype)
    z = np.asarray(logits, dtype=np.float64).astype(work)
    with np.errstate(over="ignore", under="ignore"):
        _, _, sig, sig_neg, sp, sp_neg = _pieces(z)
        if quantity == "sigmoid":
            # d sigma / dz = sigma(z) * sigma(-z)
            return Reference(sig, sig * sig_neg)
        if quantity == "log_sigmoid":
            # log sigma(z) = -softplus(-z); derivative sigma(-z)
            return Reference(-sp_neg, sig_neg)
        if quantity == "softplus":
            return Reference(sp, sig)
    raise ValueError(f"unknown elementwise quantity {quantity!r}; choose from {ELEMENTWISE}")


def bce(
    logits: Any,
    targets: Any,
    dtype: str | FloatFormat,
    weight: Any = None,
    pos_weight: Any = None,
) -> Reference:
    """Elementwise BCE with logits (PyTorch's definition) and ``d loss_i / d z_i``.

    ``loss = w * (pw * y * softplus(-z) + (1 - y) * softplus(z))`` and
    ``grad = w * ((1 - y) * sigma(z) - pw * y * sigma(-z))``; arrays broadcast together.
    Inputs hold values of ``dtype`` (as float64).

    >>> r = bce(np.array([20.0]), np.float32([0.3]), "float32")  # the target torch receives
    >>> round(float(r.value[0]), 9), round(float(r.grad[0]), 11)
    (13.999999764, 0.69999998602)
    >>> r = bce(np.array([-0.8472978603872037]), np.array([0.3]), "float64")  # ~log(3/7)
    >>> float(r.grad[0]), r.fallback  # no digit lost to the cancellation, no mpmath
    (-1.0978815579014908e-18, 0)
    """
    fmt = get_format(dtype)
    work = working_format(fmt)
    arrays = [np.asarray(a, dtype=np.float64) for a in (logits, targets)]
    w64 = None if weight is None else np.asarray(weight, dtype=np.float64)
    pw64 = None if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    shape = np.broadcast_shapes(*(a.shape for a in arrays if a is not None))
    z = np.broadcast_to(arrays[0], shape).astype(work)
    y = np.broadcast_to(arrays[1], shape).astype(work)
    one = np.ones((), dtype=work)
    pw = one if pw64 is None else pw64.astype(work)
    w = one if w64 is None else w64.astype(work)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        _, _, sig, sig_neg, sp, sp_neg = _pieces(z)
        pos = pw * y  # pos_weight * y
        neg = one - y
        loss = _times(w, _times(pos, sp_neg) + _times(neg, sp))
        a = _times(neg, sig)
        b = _times(pos, sig_neg)
        diff = a - b
        u = float(np.finfo(work).eps) / 2
        # The plain difference's error is about (C r + 1) u relative, r = max(|a|,|b|)/|a-b|.
        err = (_TERM_ULPS * np.maximum(np.abs(a), np.abs(b)) + np.abs(diff)) * u
        # A ULP of the format is at least 2**-p relative, or the smallest subnormal.
        tol = TOLERANCE * 2.0 ** (-fmt.precision)
        tiny = TOLERANCE * fmt.smallest_subnormal
        doubtful = np.isfinite(z) & ~(err * np.abs(w) <= np.maximum(tol * np.abs(w * diff), tiny))
        grad = _times(w, diff)
    fallback = 0
    if doubtful.any():
        idx = np.flatnonzero(doubtful.ravel())
        z64 = np.broadcast_to(arrays[0], shape).ravel()[idx]
        y64 = np.broadcast_to(arrays[1], shape).ravel()[idx]
        pw_i = np.broadcast_to(1.0 if pw64 is None else pw64, shape).ravel()[idx]
        w_i = np.broadcast_to(1.0 if w64 is None else w64, shape).ravel()[idx]
        # Near the zero crossing: double-double without cancellation (see _root), then
        # one rounding to the working format.
        gh, gl, e2, bound = _root.near_root(z64, y64, pw_i, w_i)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            g = np.ldexp(gh.astype(work) + gl.astype(work), e2.astype(np.int32))
            # one rounding (and, in float64, perhaps a subnormal one from ldexp)
            sub = float(np.finfo(work).smallest_subnormal)
            err = (u + bound) * (1 + 4 * u) * np.abs(g) + sub
            good = np.isfinite(g) & (err <= np.maximum(tol * np.abs(g), tiny))
        gflat = grad.reshape(-1).copy()
        gflat[idx[good]] = g[good]
        rest = ~good
        if rest.any():
            fallback = int(rest.sum())
            exact = _bce_grad_batch(z64[rest], y64[rest], w_i[rest], pw_i[rest])
            gflat[idx[rest]] = from_mpf(exact, work)
        grad = gflat.reshape(shape)
    scale = np.abs(w) * np.maximum(np.abs(a), np.abs(b))
    return Reference(loss, grad, fallback, scale)


_GOOD_BITS = 120


def _bce_grad_batch(z: np.ndarray, y: np.ndarray, w: np.ndarray, pw: np.ndarray) -> list[Any]:
    """The BCE gradients of a few points in mpmath, sharing one context.

    For ``0 < y < 1`` and ``pos_weight > 0`` it evaluates ``-w A m / (1 + B m)`` with
    ``m = expm1(z0 - z)`` (see :mod:`logitlab.exact._root`): only ``t = z0 - z`` cancels,
    so ``z0`` (once per distinct target) gets the bits that ``t`` loses plus
    ``_GOOD_BITS``.  Other points take the adaptive definition, :func:`_bce_grad_mp`.
    """
    import mpmath

    ctx = mpmath.MPContext()
    roots: dict[tuple[float, float, int], tuple[Any, Any, Any]] = {}

    def constants(yi: float, pwi: float, prec: int) -> tuple[Any, Any, Any]:
        key = (yi, pwi, prec)
        if key not in roots:
            ctx.prec = prec
            p = ctx.fmul(pwi, yi, exact=True)
            q = ctx.fsub(1, yi, exact=True)
            k = ctx.fadd(p, q, exact=True)
            z0 = ctx.mpf(0) if p == q else ctx.log(p / q)
            roots[key] = (z0, q * p / k, q / k)
        return roots[key]

    out = []
    for zi, yi, wi, pwi in zip(z.tolist(), y.tolist(), w.tolist(), pw.tolist()):
        if not (0 < yi < 1 and 0 < pwi < math.inf and math.isfinite(zi)):
            out.append(_bce_grad_mp(zi, yi, wi, pwi, ctx))
            continue
        prec = 2 * _GOOD_BITS + 64
        while True:
            z0, a, b = constants(yi, pwi, prec)
            ctx.prec = prec
            t = z0 - zi
            if t == 0:  # z0 == 0 == z: the gradient is exactly zero
                out.append(ctx.mpf(0))
                break
            # t keeps prec - lost bits (z0's error is 2**-prec relative to 1 + |z0|)
            lost = int(ctx.log((1 + abs(z0)) / abs(t), 2)) + 2
            if prec - lost >= _GOOD_BITS + 16:
                m = ctx.expm1(t)
                out.append(-ctx.mpf(wi) * a * m / (1 + b * m))
                break
            prec = lost + 2 * _GOOD_BITS
    return out


def _bce_grad_mp(z: float, y: float, w: float, pw: float, ctx: Any) -> Any:
    """The BCE gradient of one point in mpmath (``ctx``), with precision raised until the
    difference keeps ``_GOOD_BITS`` bits after cancellation (z is finite)."""
    if z == 0:
        # sigma(0) = 1/2 exactly: w * ((1 - y) - pw * y) / 2, exact in rationals
        ctx.prec = 400
        return ctx.mpf(w) * ((1 - ctx.mpf(y)) - ctx.mpf(pw) * ctx.mpf(y)) / 2
    prec = 160
    while True:
        ctx.prec = prec
        x = ctx.mpf(z)
        if x >= 0:
            s, s_neg = 1 / (1 + ctx.exp(-x)), ctx.exp(-x) / (1 + ctx.exp(-x))
        else:
            s, s_neg = ctx.exp(x) / (1 + ctx.exp(x)), 1 / (1 + ctx.exp(x))
        a = (1 - ctx.mpf(y)) * s
        b = ctx.mpf(pw) * ctx.mpf(y) * s_neg
        diff = a - b
        scale = max(abs(a), abs(b))
        if scale == 0:
            return ctx.mpf(0)
        if diff != 0:
            lost = int(ctx.log(scale / abs(diff), 2)) + 1
            if prec - lost >= _GOOD_BITS:
                return ctx.mpf(w) * diff
            prec = lost + _GOOD_BITS + 32
        else:
            # a and b agree to every bit at this precision: the difference is below
            # 2**-prec relative (z is a dyadic rational, so it is not exactly zero
            # unless y, pw make it so; more bits decide)
            if prec > 1 << 14:
                return ctx.mpf(0)
            prec *= 4


#: ULPs of the audited format within which :func:`softmax_ce` vouches for every output
#: (its tests check 0.01 ULP against mpmath); outputs whose bound is larger go to mpmath.
SOFTMAX_TOLERANCE = 0.01
# Bounds, in working unit roundoffs, on the relative error of the terms of softmax_ce:
# the value (exp, the compensated sum, log1p, the subtraction of d_t, smoothing's
# weights and products) and each of the two terms a_j, b_j of a gradient entry.
_SM_VALUE_U = 12.0
_SM_TERM_U = 10.0


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a + b = s + err`` exactly (Knuth's TwoSum; no branch, any order)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _comp_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the last axis with a compensation term (TwoSum per addition): relative
    error ``2u + O(K u**2)`` for non-negative terms, ``u`` the unit roundoff."""
    s = np.zeros(x.shape[:-1], dtype=x.dtype)
    c = np.zeros_like(s)
    for j in range(x.shape[-1]):
        s, e = _two_sum(s, x[..., j])
        c += e
    return s + c


def softmax_ce(
    logits: Any,
    labels: Any,
    dtype: str | FloatFormat,
    *,
    label_smoothing: float = 0.0,
    weight: Any = None,
    ignore_index: int = -100,
    exact: bool = True,
) -> Reference:
    """Softmax cross-entropy per row (``F.cross_entropy(..., reduction="none")``) and its
    gradient, for rows ``(N, K)`` of ``dtype`` values (as float64) and class labels.

    With ``d = z - max(z)`` held exactly as ``d_hi + d_lo`` (TwoSum), ``e = exp(d)``
    (``exp(d_hi) (1 + d_lo)``), ``R`` the compensated sum of ``e`` over all but one maximum
    and ``S = 1 + R``, ``L = log1p(R)``, smoothed weights
    ``q_c = w_c ((1 - eps) [c == t] + eps / K)`` and ``Q = sum q``:

    * ``loss = Q L - sum_c q_c d_c`` (every term non-negative; ``L - d_t`` without
      smoothing or weights);
    * ``grad_j = (a_j - b_j) / S`` with ``a_j = (Q - q_j) e_j`` and
      ``b_j = q_j (S - e_j)`` (``S - e_j`` is ``R`` for the maximum, else a difference that
      loses at most one bit).  Without smoothing one of ``a_j``, ``b_j`` is 0: no
      cancellation; with it ``a_j - b_j`` cancels where ``p_j`` nears ``q_j / Q``.

    The relative error of the value is below ``12 u`` and that of a gradient entry below
    ``(10 (a_j + b_j) + 2 |a_j - b_j|) u / |a_j - b_j|`` (``u``: the working format's unit
    roundoff, :func:`working_format`), which is ``value_err`` and ``grad_err`` (absolute).
    With ``exact=True`` every row with an output whose bound exceeds
    :data:`SOFTMAX_TOLERANCE` ULPs of ``dtype``, and every row the formulas do not cover
    (a ``+inf`` or NaN logit, a masked (``-inf``) target, a masked class with a smoothed
    weight, every entry masked), is recomputed in mpmath
    (:func:`logitlab.exact._softmax.softmax_cross_entropy`) and counted in ``fallback``;
    with ``exact=False`` only the rows the formulas do not cover are, and the bounds say
    how far the rest may be off.  ``-inf`` entries elsewhere contribute 0.

    >>> r = softmax_ce(np.array([[0.0, 0.0]]), np.array([1]), "float32")
    >>> float(r.value[0]), [float(g) for g in r.grad[0]]
    (0.6931471805599453, [0.5, -0.5])
    """
    fmt = get_format(dtype)
    work = working_format(fmt)
    z64 = np.asarray(logits, dtype=np.float64)
    if z64.ndim != 2:
        raise ValueError(f"softmax_ce takes rows (N, K), not shape {z64.shape}")
    n, k = z64.shape
    t = np.asarray(labels, dtype=np.int64).reshape(n)
    eps = float(label_smoothing)
    w64 = None if weight is None else np.asarray(weight, dtype=np.float64).reshape(k)
    rows = np.arange(n)
    ignored = t == ignore_index
    tt = np.where(ignored, 0, t)
    one = np.ones((), dtype=work)
    zero = np.zeros((), dtype=work)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        z = z64.astype(work)
        masked = z == -np.inf
        # smoothed class weights q (N, K), in the working format
        w = np.ones(k, dtype=work) if w64 is None else w64.astype(work)
        base = np.broadcast_to(w * (work(eps) / work(k)), (n, k)).copy()
        onehot = np.zeros((n, k), dtype=bool)
        onehot[rows, tt] = True
        q = np.where(onehot, w[tt][:, None] * ((one - work(eps)) + work(eps) / work(k)), base)
        if eps == 0:
            q = np.where(onehot, w[tt][:, None], zero)
        q[ignored] = 0
        special = (
            (np.isnan(z64) | (z64 == np.inf)).any(axis=1)
            | masked.all(axis=1)
            | (masked & (q != 0)).any(axis=1)
        ) & ~ignored
        zs = np.where(masked | special[:, None], zero, z)
        top = np.where(masked, -np.inf, zs).max(axis=1)
        top = np.where(np.isfinite(top), top, zero)
        first = np.argmax(np.where(masked, -np.inf, zs), axis=1)
        d_hi, d_lo = _two_sum(zs, -top[:, None])
        e = np.exp(d_hi)
        e = e + e * d_lo
        e[masked] = 0
        e[rows, first] = 1
        others = e.copy()
        others[rows, first] = 0
        r = _comp_sum(others)
        s = one + r
        ell = np.log1p(r)
        u = float(np.finfo(work).eps) / 2
        if eps == 0 and w64 is None:
            loss = (ell - d_hi[rows, tt]) - d_lo[rows, tt]
        else:
            qsum = _comp_sum(q)
            neg_d = np.where(masked, zero, -d_hi) + np.where(masked, zero, -d_lo)
            loss = qsum * ell + _comp_sum(q * neg_d)
        loss = np.where(ignored, zero, loss)
        # gradient: (a - b) / S
        excl = s[:, None] - e
        excl[rows, first] = r
        rest_q = (_comp_sum(q) if not (eps == 0 and w64 is None) else np.ones(n, dtype=work))[
            :, None
        ] - q
        q_not_t = q.copy()
        q_not_t[rows, tt] = 0
        rest_q[rows, tt] = _comp_sum(q_not_t)
        if eps == 0:
            rest_q[rows, tt] = 0  # exactly: all the weight sits on t
        a = rest_q * e
        b = q * excl
        diff = a - b
        grad = diff / s[:, None]
        sub = float(np.finfo(work).smallest_subnormal)
        value_err = _SM_VALUE_U * u * np.abs(loss) + sub
        grad_err = (_SM_TERM_U * (a + b) + 2 * np.abs(diff)) * u / s[:, None] + sub
        grad[ignored] = 0
        grad_err[ignored] = 0
    fallback_rows = special.copy()
    if exact:
        tol = SOFTMAX_TOLERANCE
        floor = fmt.smallest_subnormal

        def doubtful(x: np.ndarray, err: np.ndarray) -> np.ndarray:
            return ~(err <= tol * np.maximum(np.abs(x) * 2.0 ** (-fmt.precision), floor))

        fallback_rows |= doubtful(loss, value_err) | doubtful(grad, grad_err).any(axis=1)
        fallback_rows &= ~ignored
    idx = np.flatnonzero(fallback_rows)
    if idx.size:
        from logitlab.exact._softmax import softmax_cross_entropy

        ex = softmax_cross_entropy(
            z64[idx],
            t[idx],
            weight=w64,
            ignore_index=ignore_index,
            reduction="none",
            label_smoothing=eps,
        )
        loss[idx] = from_mpf(list(ex.values), work)
        grad[idx] = from_mpf(list(ex.grads), work).reshape(idx.size, k)
        value_err[idx] = 0
        grad_err[idx] = 0
    return Reference(loss, grad, int(idx.size), None, value_err, grad_err)


def from_mpf(values: Any, work: Any = np.longdouble) -> np.ndarray:
    """mpmath numbers as an array of ``work`` (float64 or longdouble), correctly split."""
    import mpmath

    out = np.empty(len(values), dtype=work)
    for i, v in enumerate(values):
        if not mpmath.isfinite(v) or v == 0:
            out[i] = work(float(v))
            continue
        m, e = mpmath.frexp(v)
        hi = float(m)
        lo = float(m - hi)
        out[i] = np.ldexp(work(hi) + work(lo), int(e))
    return out


def to_mpf(values: Any) -> list[Any]:
    """A float64 or longdouble array as exact mpmath numbers."""
    import mpmath

    ctx = mpmath.mp
    arr = np.asarray(values)
    out = []
    for v in arr.ravel():
        if not np.isfinite(v) or v == 0:
            out.append(ctx.mpf(float(v)))
            continue
        m, e = np.frexp(v)
        hi = float(m)
        lo = float(m - type(m)(hi))
        with mpmath.workprec(200):
            out.append(mpmath.ldexp(ctx.mpf(hi) + ctx.mpf(lo), int(e)))
    return out


def _ordinal_parts_ld(x: np.ndarray, fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """Integer and fractional ordinal of finite ``x`` (longdouble) in ``fmt``.

    Same convention as :func:`logitlab.core.ulp.ulp_error_array`, computed in longdouble so an
    exact value below float64's normal range keeps its digits.
    """
    sign = np.where(np.signbit(x), -1, 1)
    a = np.abs(x)
    _, e2 = np.frexp(a)
    top = e2.astype(np.int64) - 1
    normal = a >= np.ldexp(np.longdouble(1), fmt.emin)
    top = np.where(normal, top, fmt.emin)
    spacing_exp = top - (fmt.precision - 1)
    mant = np.ldexp(a, (-spacing_exp).astype(np.int32))  # exact power-of-two scaling
    whole = np.floor(mant)
    frac = (mant - whole).astype(np.float64)
    half_range = 2 ** (fmt.precision - 1)
    base = np.where(normal, (top - fmt.emin + 1) * half_range - half_range, 0)
    integer = base + whole.astype(np.int64)
    return integer * sign, frac * sign


def ulp_errors(computed: Any, exact: np.ndarray, dtype: str | FloatFormat) -> np.ndarray:
    """ULP errors of ``computed`` against a :class:`Reference` array, in ``dtype``.

    Float64 references go to :func:`logitlab.core.ulp.ulp_error_array`; longdouble ones are
    measured in longdouble with the same conventions (NaN -> NaN, matching infinities
    -> 0, any other infinity -> inf).
    """
    from logitlab.core.ulp import ulp_error_array

    fmt = get_format(dtype)
    if exact.dtype != np.longdouble:
        return ulp_error_array(computed, exact, fmt)
    c = np.asarray(computed, dtype=np.float64)
    c, e = np.broadcast_arrays(c, exact)
    out = np.empty(c.shape, dtype=np.float64)
    nan = np.isnan(c) | np.isnan(e)
    inf = ~nan & (np.isinf(c) | np.isinf(e))
    same_inf = inf & np.isinf(c) & np.isinf(e) & (np.sign(c) == np.sign(e))
    finite = ~nan & ~inf
    ci, cf = _ordinal_parts_ld(c[finite].astype(np.longdouble), fmt)
    ei, ef = _ordinal_parts_ld(e[finite], fmt)
    out[finite] = np.abs((ci - ei).astype(np.float64) + (cf - ef))
    out[nan] = np.nan
    out[inf] = np.inf
    out[same_inf] = 0.0
    return out
