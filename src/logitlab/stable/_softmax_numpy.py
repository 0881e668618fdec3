"""The NumPy fast path of softmax cross-entropy (narrow logits, class-index targets).

The algorithm and error bounds of :mod:`._softmax_fast` (the torch path), on NumPy
arrays in chunks of rows whose float64 buffers stay in cache: ``np.exp`` (within 1 ULP)
of ``z - m`` (no rounded ``log2 e`` product, so the torch path's bounds hold with room to
spare), pairwise row sums, each result rounded
once where ``round(v - E) == round(v + E)`` and recomputed exactly elsewhere.  The
gradient needs no autograd here, so it is formed in the same pass as ``r``: each
exponential is computed once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from logitlab.stable import _softmax_shared
from logitlab.stable._backend import to_dtype
from logitlab.stable._softmax_shared import (
    _FLOOR,
    _MAX_SCALE,
    _NARROW,
    _TAIL,
    _U,
    STATS,
    Saved,
    exact_loss,
    exact_reduced,
    fix_grads,
    levels,
    pairwise_,
)

__all__ = ["eligible", "grad", "loss"]

#: Elements per chunk: NumPy runs each op on one thread, so the chunk can be larger than
#: the torch path's (its buffers, about 1 MB each, stay in the shared cache).
CHUNK = 120_000
EXACT_REDUCTION_MAX = 1 << 12


def eligible(z: Any, weight: Any, integer: bool) -> bool:
    """Narrow NumPy logits with class-index targets and non-negative finite weights."""
    if not integer or not isinstance(z, np.ndarray) or z.size == 0:
        return False
    if str(z.dtype) not in _NARROW:
        return False
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64)
        if not np.isfinite(w).all() or (w < 0).any():
            return False
    return True


def _rows(z: np.ndarray) -> np.ndarray:
    """(C,) -> (1, C); (N, C, d...) -> (N d..., C), contiguous."""
    if z.ndim == 1:
        return z.reshape(1, -1)
    return np.ascontiguousarray(np.moveaxis(z, 1, -1).reshape(-1, z.shape[1]))


def _setup(
    z: np.ndarray, target: Any, weight: Any, ignore_index: int, reduction: str, eps: float
) -> Saved | None:
    """The per-row constants (r and the spread are filled in by the chunk loop)."""
    z2 = _rows(z)
    n_rows, n_classes = z2.shape
    with np.errstate(invalid="ignore"):
        m = z2.max(axis=1).astype(np.float64)
    if np.isnan(m).any() or (m == math.inf).any():
        return None
    k = np.argmax(z2, axis=1)
    live = m > -math.inf
    m = np.where(live, m, 0.0)
    t = np.asarray(target).reshape(-1).astype(np.int64)
    kept = (t != ignore_index) & live
    t = np.where(kept, t, 0)
    w64 = None if weight is None else np.asarray(weight, dtype=np.float64)
    w_t = np.ones(n_rows) if w64 is None else w64[t]
    b = np.where(kept, (1.0 - eps) * w_t, 0.0)
    alpha = kept.astype(np.float64)
    a = None
    big_a = 0.0
    if eps > 0:
        a = (np.ones(n_classes) if w64 is None else w64) * (eps / n_classes)
        big_a = math.fsum(a.tolist())
    denominator = math.fsum(np.where(kept, w_t, 0.0).tolist()) if reduction == "mean" else 1.0
    return Saved(
        z2,
        t,
        k,
        m,
        np.empty(n_rows),
        np.empty(n_rows),
        b,
        alpha,
        a,
        big_a,
        denominator,
        reduction,
        eps,
        w64,
        str(z.dtype),
    )


def _chunk_exp(saved: Saved, i: int, n: int, d: np.ndarray, e: np.ndarray, smooth: Any) -> None:
    """``e = exp(z - m)`` of rows ``i:i+n`` into ``e`` (``d`` the differences), with
    ``saved.spread`` and (label smoothing) ``sum_c a_c (-d_c)`` into ``smooth``."""
    d[:] = saved.z[i : i + n]
    d -= saved.m[i : i + n, None]
    saved.spread[i : i + n] = np.minimum(-d.min(axis=1), _TAIL)
    if saved.a is not None:
        np.multiply(d, -saved.a[None, :], out=e)
        smooth[i : i + n] = pairwise_(e)
    # NumPy's float64 exp is exact-argument and within 1 ULP on every SIMD path it
    # dispatches to (NumPy's own accuracy tests hold it to that), and twice as fast as
    # exp2 here; the bounds, written for exp2 of a rounded argument, hold a fortiori.
    np.exp(d, out=e)


def loss(
    z: np.ndarray, target: Any, weight: Any, ignore_index: int, reduction: str, eps: float
) -> Any:
    """The loss (correctly rounded as on the torch path), or None for the general path."""
    saved = _setup(z, target, weight, ignore_index, reduction, eps)
    if saved is None:
        return None
    z2 = saved.z
    n_rows, n_classes = z2.shape
    rows = max(1, CHUNK // n_classes)
    d = np.empty((min(rows, n_rows), n_classes))
    e = np.empty_like(d)
    smooth = np.zeros(n_rows) if saved.a is not None else None
    with np.errstate(all="ignore"):
        for i in range(0, n_rows, rows):
            n = min(rows, n_rows - i)
            eb = e[:n]
            _chunk_exp(saved, i, n, d[:n], eb, smooth)
            eb[np.arange(n), saved.k[i : i + n]] = 0.0
            saved.r[i : i + n] = pairwise_(eb)
        if smooth is not None and np.isnan(smooth).any():
            return None
        big_l = np.log1p(saved.r)
        d_t = z2[np.arange(n_rows), saved.t].astype(np.float64) - saved.m
        per_row = np.where(saved.b == 0, 0.0, saved.b * (big_l - d_t))
        if smooth is not None:
            per_row = per_row + np.where(saved.alpha == 0, 0.0, saved.big_a * big_l + smooth)
        slack = _U * _softmax_shared.SLACK
        bound = per_row * ((14 + 2 * levels(n_classes) + 3 * saved.spread) * slack) + _FLOOR
    STATS["fast_forward"] += 1
    name = saved.name
    if reduction == "none":
        with np.errstate(all="ignore"):
            out = np.asarray(to_dtype(per_row, name, np))
            lo, hi = to_dtype(per_row - bound, name, np), to_dtype(per_row + bound, name, np)
        for row in np.flatnonzero((lo != hi) & np.isfinite(per_row)).tolist():
            out[row] = exact_loss(saved, row)
            STATS["exact_losses"] += 1
        return out.reshape(()) if z.ndim == 1 else out.reshape((z.shape[0], *z.shape[2:]))
    total = math.fsum(per_row.tolist())
    total_bound = float(bound.sum()) * (1 + 4 * n_rows * _U) + abs(total) * _U
    if reduction == "mean":
        den = saved.denominator
        value = total / den if den else math.nan
        value_bound = total_bound / den + 2 * _U * abs(value) if den else 0.0
    else:
        value, value_bound = total, total_bound
    lo, hi = (to_dtype(np.float64(value + s * value_bound), name, np) for s in (-1.0, 1.0))
    if lo != hi and math.isfinite(value) and z.size <= EXACT_REDUCTION_MAX:
        STATS["exact_losses"] += 1
        return np.asarray(exact_reduced(saved)).astype(z.dtype)
    return np.asarray(to_dtype(np.float64(value), name, np))


def grad(
    z: np.ndarray, target: Any, weight: Any, ignore_index: int, reduction: str, eps: float
) -> Any:
    """The gradient (``z``'s shape, correctly rounded), or None for the general path."""
    saved = _setup(z, target, weight, ignore_index, reduction, eps)
    if saved is None:
        return None
    z2 = saved.z
    n_rows, n_classes = z2.shape
    den = saved.denominator if reduction == "mean" else 1.0
    # nothing counted in the mean (every sample ignored or masked): gradient 0, as ATen
    scale = 1.0 / den if den else 0.0
    q = saved.b + saved.alpha * saved.big_a
    s_alpha = scale * saved.alpha
    if not math.isfinite(scale) or not max(float(np.max(q)), 1.0) * scale <= _MAX_SCALE:
        return None
    depth = levels(n_classes)
    entropy_cap = math.log(n_classes)
    rows = max(1, CHUNK // n_classes)
    d = np.empty((min(rows, n_rows), n_classes))
    e = np.empty_like(d)
    spare = np.empty_like(d)
    p = np.empty_like(d) if saved.a is not None else None
    smooth = np.zeros(n_rows) if saved.a is not None else None
    out = np.empty((n_rows, n_classes), dtype=z.dtype)
    fused = saved.name == "float32"
    hold = np.empty(d.shape, dtype=z.dtype) if fused else None
    flagged: list[tuple[int, int]] = []
    with np.errstate(all="ignore"):
        for i in range(0, n_rows, rows):
            n = min(rows, n_rows - i)
            sl = slice(i, i + n)
            eb, vb = e[:n], spare[:n]
            _chunk_exp(saved, i, n, d[:n], eb, smooth)
            vb[:] = eb
            idx = np.arange(n)
            kc, tc = saved.k[sl], saved.t[sl]
            vb[idx, kc] = 0.0
            saved.r[sl] = pairwise_(vb)
            one_r = 1.0 + saved.r[sl]
            c = scale * q[sl] / one_r
            spread = saved.spread[sl]
            k_row = (19.0 + depth + 3 * np.minimum(spread, entropy_cap) + 3 * spread) * (
                _U * _softmax_shared.SLACK
            )
            np.multiply(eb, c[:, None], out=eb)  # c e_j
            if p is not None and saved.a is not None:
                pb = p[:n]
                np.multiply(np.abs(eb), k_row[:, None], out=pb)
                pb += (k_row * np.abs(s_alpha[sl]))[:, None] * saved.a[None, :]
                eb -= s_alpha[sl, None] * saved.a[None, :]
                bulk = np.stack([eb[idx, tc], eb[idx, kc]], axis=1)
                bulk_bound = np.stack([pb[idx, tc], pb[idx, kc]], axis=1)
                pb[idx, tc] = 0.0
                pb[idx, kc] = 0.0
            else:
                pb = None
                bulk = np.stack([eb[idx, tc], eb[idx, kc]], axis=1)
                bulk_bound = k_row[:, None] * np.abs(bulk)
            eb[idx, tc] = 0.0
            eb[idx, kc] = 0.0
            ob = out[sl]
            if pb is None and hold is not None:
                hb = hold[:n]
                np.multiply(eb, (1.0 - k_row)[:, None], out=ob, casting="same_kind")
                np.multiply(eb, (1.0 + k_row)[:, None], out=hb, casting="same_kind")
            elif pb is None:
                ob[:] = to_dtype(eb * (1.0 - k_row)[:, None], saved.name, np)
                hb = to_dtype(eb * (1.0 + k_row)[:, None], saved.name, np)
            elif hold is not None:
                hb = hold[:n]
                np.subtract(eb, pb, out=ob, casting="same_kind")
                np.add(eb, pb, out=hb, casting="same_kind")
            else:
                ob[:] = to_dtype(eb - pb, saved.name, np)
                hb = to_dtype(eb + pb, saved.name, np)
            if not np.array_equal(ob, hb):
                flagged.extend((i + r, col) for r, col in np.argwhere(ob != hb).tolist())
            values, bounds = _specials(saved, sl, bulk, bulk_bound, scale, one_r, depth)
            lo = to_dtype(values - bounds, saved.name, np)
            hi = to_dtype(values + bounds, saved.name, np)
            cols = np.stack([tc, kc], axis=1)
            ob[idx[:, None], cols] = to_dtype(values, saved.name, np)
            for r, which in np.argwhere((lo != hi) & np.isfinite(values)).tolist():
                flagged.append((i + r, int(cols[r, which])))
    if smooth is not None and np.isnan(smooth).any():
        return None
    STATS["fast_backward"] += 1
    if flagged:
        unique = sorted(set(flagged))
        STATS["exact_grads"] += len(unique)
        fix_grads(saved, out, unique, np.ones(n_rows))
    if z.ndim == 1:
        return out.reshape(z.shape)
    lead = (z.shape[0], *z.shape[2:], z.shape[1])
    return np.moveaxis(out.reshape(lead), -1, 1)


def _specials(
    saved: Saved,
    sl: slice,
    bulk: np.ndarray,
    bulk_bound: np.ndarray,
    s: float,
    one_r: np.ndarray,
    depth: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Values and bounds (rows, 2) at the target and arg-max columns (as on torch)."""
    t, k = saved.t[sl], saved.k[sl]
    b, alpha, r = saved.b[sl], saved.alpha[sl], saved.r[sl]
    vt = bulk[:, 0] - s * b
    bt = bulk_bound[:, 0] + 5 * _U * np.abs(s * b) + _U * np.abs(vt)
    bk = bulk_bound[:, 1] + _U * np.abs(bulk[:, 1])
    a_k = np.zeros_like(b) if saved.a is None else saved.a[k]
    others = alpha * (saved.big_a - a_k)
    y = r * (b + alpha * a_k)
    vm = s * (others - y) / one_r
    k_r = (2.1 + depth + 3 * saved.spread[sl]) * _U
    bm = (abs(s) / one_r) * (
        (k_r + 8 * _U) * (y + np.abs(others - y)) + 8 * _U * alpha * saved.big_a
    ) + _FLOOR
    same = t == k
    values = np.stack([np.where(same, vm, vt), np.where(same, vm, bulk[:, 1])], axis=1)
    bounds = np.stack([np.where(same, bm, bt), np.where(same, bm, bk)], axis=1)
    return values, bounds * (1 + 1e-9)
