"""Exact softmax-family references in mpmath: logsumexp, log_softmax, softmax, and
softmax cross-entropy with PyTorch's semantics, with its gradient.

Inputs are the binary values a framework received (Python floats).  Values are computed
at 160 bits (:data:`logitlab.core.mp.WORKING_PRECISION`); gradients, differences
``Q p_j - q_j`` that can cancel, at 480 bits, so that far more than 53 bits survive any
cancellation a float64 input can produce.

PyTorch's ``F.cross_entropy(z, target, weight, ignore_index, reduction, label_smoothing)``
with class axis 1 (axis 0 for a 1-D input), ``C`` classes and ``eps = label_smoothing``
is, per sample ``n``::

    loss_n = sum_c q_nc * (-log_softmax(z_n)_c)
    q_nc   = w_c * ((1 - eps) * [c == t_n] + eps / C)      (class-index targets)
    q_nc   = w_c * ((1 - eps) * y_nc + eps / C)             (probability targets)

with ``w = 1`` when no weight is given and ``q_n = 0`` for ``t_n == ignore_index``.  ``sum``
adds the ``loss_n``; ``mean`` divides that sum by ``sum_n w_{t_n}`` over the samples not
ignored (class indices; with label smoothing too, as ATen does) or by the number of
samples ``N`` (probability targets).  The gradient is ``d loss / d z_nj = s_n (Q_n p_nj -
q_nj)`` with ``Q_n = sum_c q_nc``, ``p = softmax(z_n)`` and ``s_n`` the reduction's
scale (1, or ``1 / denominator`` for mean).

Masked logits.  A ``-inf`` logit marks a masked class: its probability is exactly 0, its
log-probability ``-inf``, and a term ``q_c * (-log p_c)`` with ``q_c = 0`` is 0 (the limit
of the masked logit going to ``-inf``, not ``0 * inf = NaN``).  So a row with some classes
masked has the loss of its unmasked classes when the target puts no mass on a masked class,
and ``+inf`` when it does (the target itself, or label smoothing's ``eps / C`` on every
class); the gradient at a masked entry is then ``-q_c`` (``p_c = 0``).  A row whose every
logit is ``-inf`` has no softmax at all: its loss and gradient are undefined, NaN here
(and a mean or sum over it is NaN), unless its target is ``ignore_index`` (then 0).  A
``+inf`` logit is the limit as it grows: the ``+inf`` classes share all the mass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from logitlab.core.mp import WORKING_PRECISION, mp_context
from logitlab.exact._loss import REDUCTIONS, ExactResult

__all__ = [
    "log_softmax",
    "logsumexp",
    "softmax",
    "softmax_cross_entropy",
]

Mpf = Any

_GRAD_PRECISION = 3 * WORKING_PRECISION


def _row(z: Sequence[float]) -> list[float]:
    values = [float(v) for v in z]
    if not values:
        raise ValueError("a softmax row needs at least one logit")
    return values


def _parts(ctx: Any, values: list[float]) -> tuple[Mpf, list[Mpf], Mpf]:
    """``m = max z``, the exact differences ``z_c - m <= 0`` and ``L = log(sum exp(z_c - m))``.

    ``L = log1p(sum over all but one maximum)``, so that a tiny ``L`` keeps its relative
    accuracy; the differences are exact (mpmath's ``exact=True``), so ``d_c - L`` (two
    non-positive numbers) is accurate to the working precision relative to itself.
    """
    finite = [v for v in values if v != -math.inf]
    m = ctx.mpf(max(finite))
    diffs = [ctx.mpf(-math.inf) if v == -math.inf else ctx.fsub(v, m, exact=True) for v in values]
    k = values.index(max(finite))
    rest = ctx.fsum(ctx.exp(d) for i, d in enumerate(diffs) if i != k and d != -math.inf)
    return m, diffs, ctx.log1p(rest)


def _lse(ctx: Any, values: list[float]) -> Mpf:
    # Infinite logits: +inf dominates (its limit); all -inf has logsumexp -inf.
    if any(v == math.inf for v in values):
        return ctx.inf
    if all(v == -math.inf for v in values):
        return ctx.mpf(-math.inf)
    m, _, log_sum = _parts(ctx, values)
    return m + log_sum


def logsumexp(z: Sequence[float]) -> Mpf:
    """``log(sum_c exp(z_c))`` of one row.

    >>> float(logsumexp([0.0, 0.0]))
    0.6931471805599453
    """
    return _lse(mp_context(), _row(z))


def _log_softmax(ctx: Any, values: list[float]) -> list[Mpf]:
    n_inf = sum(v == math.inf for v in values)
    if n_inf:
        # The limit as those logits grow together: mass shared among them.
        share = -ctx.log(n_inf)
        return [share if v == math.inf else ctx.mpf(-math.inf) for v in values]
    if all(v == -math.inf for v in values):
        return [ctx.nan for _ in values]
    _, diffs, log_sum = _parts(ctx, values)
    return [d - log_sum for d in diffs]


def log_softmax(z: Sequence[float]) -> list[Mpf]:
    """``z_c - logsumexp(z)`` for each entry of one row.

    >>> [float(v) for v in log_softmax([0.0, 0.0])]
    [-0.6931471805599453, -0.6931471805599453]
    """
    return _log_softmax(mp_context(), _row(z))


def softmax(z: Sequence[float]) -> list[Mpf]:
    """``exp(z_c - logsumexp(z))`` for each entry of one row."""
    ctx = mp_context()
    return [ctx.exp(v) for v in _log_softmax(ctx, _row(z))]


def _times(c: Mpf, v: Mpf) -> Mpf:
    return c * v if c != 0 else c


def _ce_grad(ctx: Any, logp: list[Mpf], q: list[Mpf], qsum: Mpf, c: int) -> Mpf:
    """d loss / d z_c = qsum * p_c - q_c, without letting p_c - 1 cancel.

    Where p_c > 1/2 (a dominant logit), ``p_c`` rounds to 1 at any fixed precision once
    the margin is large (p_c = 1 - 2e-304 at a margin of 700), so it is rewritten as
    ``(qsum - q_c) + qsum * expm1(log p_c)``: ``qsum - q_c`` as the sum of the other
    weights and ``expm1`` of the accurate log-probability.
    """
    if logp[c] > -ctx.ln2:
        others = ctx.fsum(qd for d, qd in enumerate(q) if d != c)
        return +(others + qsum * ctx.expm1(logp[c]))
    return +(qsum * ctx.exp(logp[c]) - q[c])


def softmax_cross_entropy(
    logits: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> ExactResult:
    """Exact ``F.cross_entropy`` and its gradient with respect to the logits.

    ``logits`` has shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``; ``target`` holds class
    indices (an integer array of shape ``()``, ``(N,)`` or ``(N, d1, ...)``) or
    probabilities (a float array of the logits' shape).  ``values`` has one entry for
    mean/sum, one per sample for none; ``grads`` has the logits' shape (``backward`` of the
    sum of the outputs for none).

    >>> r = softmax_cross_entropy([[0.0, 0.0]], np.array([1]))
    >>> float(r.values[0])
    0.6931471805599453
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target)
    one_dim = z.ndim == 1
    zc = np.moveaxis(z[None] if one_dim else z, 1, -1)  # (N, d..., C)
    n_classes = zc.shape[-1]
    rows = zc.reshape(-1, n_classes)
    integer_targets = np.issubdtype(t.dtype, np.integer)
    tr: np.ndarray
    if integer_targets:
        tr = (t[None] if one_dim else t).reshape(-1)
        if tr.shape[0] != rows.shape[0]:
            raise ValueError(f"target shape {t.shape} does not match logits shape {z.shape}")
    else:
        tt = np.asarray(target, dtype=np.float64)
        if tt.shape != z.shape:
            raise ValueError(f"probability target shape {tt.shape} must be {z.shape}")
        tr = np.moveaxis(tt[None] if one_dim else tt, 1, -1).reshape(-1, n_classes)
    w = [1.0] * n_classes if weight is None else [float(v) for v in np.asarray(weight).ravel()]
    ctx = mp_context()
    eps = ctx.mpf(float(label_smoothing))
    per_sample: list[Mpf] = []
    grads: list[list[Mpf]] = []
    denominator = ctx.mpf(0)
    for i, row in enumerate(rows):
        values = [float(v) for v in row]
        if integer_targets:
            cls = int(tr[i])
            if cls == ignore_index:
                per_sample.append(ctx.mpf(0))
                grads.append([ctx.mpf(0)] * n_classes)
                continue
            q = [
                ctx.mpf(w[c]) * ((1 - eps) * (1 if c == cls else 0) + eps / n_classes)
                for c in range(n_classes)
            ]
            denominator += ctx.mpf(w[cls])
        else:
            q = [
                ctx.mpf(w[c]) * ((1 - eps) * ctx.mpf(float(tr[i][c])) + eps / n_classes)
                for c in range(n_classes)
            ]
            denominator += 1
        logp = _log_softmax(ctx, values)
        per_sample.append(ctx.fsum(_times(qc, -lp) for qc, lp in zip(q, logp)))
        try:
            ctx.prec = _GRAD_PRECISION
            lp_hi = _log_softmax(ctx, values)
            qsum = ctx.fsum(q)
            grads.append([_ce_grad(ctx, lp_hi, q, qsum, c) for c in range(n_classes)])
        finally:
            ctx.prec = WORKING_PRECISION
    batch_shape = zc.shape[:-1]
    if reduction == "none":
        scale = ctx.mpf(1)
        values_out: tuple[Mpf, ...] = tuple(per_sample)
        shape: tuple[int, ...] = () if one_dim else tuple(batch_shape)
    else:
        total = ctx.fsum(per_sample)
        scale = ctx.mpf(1) if reduction == "sum" else (1 / denominator if denominator else ctx.nan)
        values_out = (total * scale,)
        shape = ()
    grad_rows: np.ndarray = np.empty(rows.shape, dtype=object)
    for i, g in enumerate(grads):
        grad_rows[i] = [+(v * scale) for v in g]
    # back from (N, d..., C) rows to the logits' layout
    grad_array: np.ndarray = np.moveaxis(grad_rows.reshape(zc.shape), -1, 1)
    if one_dim:
        grad_array = grad_array.reshape(z.shape)
    return ExactResult(values_out, tuple(grad_array.ravel()), shape, tuple(z.shape))
