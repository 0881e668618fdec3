"""The eager torch fast path of softmax cross-entropy (class-index targets).

One float64 pass per chunk of rows, whose buffers stay in cache, for the loss, and one
for the gradient in the backward; the rare elements whose float64 value lies within its
error bound of a rounding boundary of the result's format are recomputed exactly
(mpmath, precision raised until the rounding is decided), so every per-sample loss and
every gradient element is correctly rounded.  Only imported once a torch tensor is given.

Per row ``z`` (``C`` classes, maximum ``m`` at ``k``, target ``t``)::

    d_c = z_c - m <= 0,   e_c = exp(d_c),   r = sum_{c != k} e_c,   L = log1p(r)
    loss = b (L - d_t) + alpha (A L + sum_c a_c (-d_c))          every term >= 0
    grad_j = s (Q e_j / (1 + r) - a_j alpha - b [j == t])

with ``b = (1 - eps) w_t`` (0 for an ignored or fully masked row), ``a_c = w_c eps / C``,
``A = sum_c a_c``, ``alpha`` 1 for a kept row (else 0), ``Q = b + alpha A`` and ``s`` the
incoming gradient times the reduction's scale.  At ``j = k = t`` the gradient is
``s (alpha (A - a_k) - r (b + alpha a_k)) / (1 + r)``, which does not cancel.

Error bounds (``u = 2**-53``; float64 ``exp2`` within 1 ULP, as SLEEF's u10 and glibc's
are; ``exp2`` rather than ``exp``, which MKL may split across threads, slowly on a busy
machine):

* ``d_c`` is one float64 subtraction of two narrow values: exact unless their exponents
  differ by more than 28, and then within ``u |d_c|``.  ``e_c = exp2(d_c * log2 e)``: the
  rounded argument is within ``2 u |d_c| log2 e``, so ``e_c`` is within
  ``(2.1 + 3 |d_c|) u`` relative, the only error that grows with ``|d_c|``.  Per row it
  is bounded with ``Delta = min(max_c |d_c|, 746)`` (beyond 746, ``exp`` is 0 in float64
  and in the narrow formats alike).
* ``r`` is summed pairwise (``D = ceil(log2 C)`` levels, one rounding each): within
  ``(2.1 + D + 3 Delta) u`` relative; ``1 + r`` within ``(3.1 + D + 3 min(ln C, Delta)) u``,
  since the weighted mean ``sum_c p_c |d_c|`` is at most the entropy of ``p``, ``ln C``.
* the loss: within ``(14 + 2 D + 3 Delta) u`` relative (every term is non-negative).
* a gradient element ``c e_j`` (``c = s Q / (1 + r)``): within
  ``(19 + D + 3 min(ln C, Delta) + 3 Delta) u`` relative; with label smoothing the bound is
  absolute, that times ``|c e_j| + |s alpha a_j|``, since the two terms can cancel.  The
  target and arg-max columns get their own bounds (:func:`_specials`).

A result ``v`` within ``E`` of exact is correctly rounded when ``round(v - E)`` and
``round(v + E)`` agree; the other elements are recomputed exactly (about one gradient
element in 10**7 for logits of standard deviation 4 and 1000 classes).  float64 values
below ``2**-1000`` (exponential tails) have only an absolute error, but every narrow
format rounds them to 0 as it rounds the exact value (the incoming gradient times the
coefficients is required to be at most ``2**800``, else the general path runs).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from logitlab.stable import _native, _softmax_shared
from logitlab.stable._backend import to_dtype
from logitlab.stable._softmax_shared import (
    _FLOOR,
    _LOG2E,
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

__all__ = ["CHUNK", "STATS", "backward", "eligible", "forward"]

#: Elements per chunk: the float64 buffers (2 MB each) stay in cache, and each torch op
#: on them is large enough for ATen to split it across its threads (above its grain size,
#: 32,768) and to leave its per-call cost small.  Chunks of 30,000 (one thread per op)
#: measured 1.7-2.5x slower forward and backward at 2 * 10**4 x 1000 and 64 x 50,257,
#: on two threads.
CHUNK = 1 << 18


def _name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def eligible(z: torch.Tensor, weight: Any, integer: bool) -> bool:
    """Narrow CPU logits with class-index targets and non-negative finite weights."""
    if not integer or _name(z) not in _NARROW or z.device.type != "cpu" or z.numel() == 0:
        return False
    if weight is not None:
        w = weight.double()
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            return False
    return True


#: The spread's floor where the C kernel's exp ran: its ``4 u + |d| u`` is at most
#: ``(2.1 + 3 max(|d|, F)) u`` for every ``d`` when ``2.1 + 3 F >= 4 + F`` (``_native.c``).
NATIVE_SPREAD = (4.0 - 2.1) / 2


def _rows_per_chunk(n_classes: int) -> int:
    return max(1, CHUNK // n_classes)


def _column_blocks(n_classes: int) -> list[slice]:
    """The column slices each elementwise op runs on: the whole row, or, for a row wider
    than a chunk (a language model's vocabulary), pieces of at most ``CHUNK`` columns, so
    that every op stays on one thread there too (rows are then one per chunk)."""
    if n_classes <= CHUNK:
        return [slice(None)]
    return [slice(j, min(j + CHUNK, n_classes)) for j in range(0, n_classes, CHUNK)]


def forward(
    z: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    eps: float,
) -> tuple[torch.Tensor, Saved] | None:
    """Loss of (N, C) logits ``z`` and (N,) class indices; None where the general path
    must run (NaN or +inf logits, or a weighted label smoothing with masked logits)."""
    n_rows, n_classes = (int(n) for n in z.shape)
    name = _name(z)
    z = z.contiguous()
    native = eps == 0 and _native.serves(z)
    if native:
        # one C pass: each row's maximum, its first column, whether it holds a NaN, and
        # r and the spread (see below)
        m, k, nan_rows, r_native, spread_native = _native.softmax_rows(z, _TAIL)
        if bool(nan_rows.any()):
            return None
    else:
        m32, k = torch.max(z, dim=1)
        m = m32.double()
        if bool(torch.isnan(m).any()):
            return None
    if bool((m == math.inf).any()):
        return None
    live = m > -math.inf
    m = torch.where(live, m, 0.0)
    t = target.reshape(-1).long()
    kept = (t != ignore_index) & live
    t = torch.where(kept, t, 0)
    w64 = None if weight is None else weight.double()
    w_t = torch.ones(n_rows, dtype=torch.float64) if w64 is None else w64[t]
    b = torch.where(kept, (1.0 - eps) * w_t, 0.0)
    alpha = kept.double()
    a = None
    big_a = 0.0
    if eps > 0:
        a = (torch.ones(n_classes, dtype=torch.float64) if w64 is None else w64) * (eps / n_classes)
        big_a = math.fsum(a.tolist())
    if reduction == "mean":
        picked = w_t if w64 is not None else torch.ones(n_rows, dtype=torch.float64)
        denominator = math.fsum(torch.where(kept, picked, 0.0).tolist())
    else:
        denominator = 1.0
    rows = _rows_per_chunk(n_classes)
    d = torch.empty((min(rows, n_rows), n_classes), dtype=torch.float64)
    e = torch.empty_like(d)
    r = torch.empty(n_rows, dtype=torch.float64)
    spread = torch.empty(n_rows, dtype=torch.float64)
    smooth = torch.zeros(n_rows, dtype=torch.float64) if a is not None else None
    neg_a = None if a is None else (-a)[None, :]
    blocks = _column_blocks(n_classes)
    if native:
        r, spread = r_native, spread_native
        # its exp is within 4 u + |d_c| u: the bounds below, written for exp2's
        # (2.1 + 3 |d_c|) u, hold with the spread floored at NATIVE_SPREAD
        spread.clamp_(min=NATIVE_SPREAD)
        STATS["native_forward"] += 1
    for i in range(0, 0 if native else n_rows, rows):
        n = min(rows, n_rows - i)
        db, eb = d[:n], e[:n]
        zc, mc = z[i : i + n], m[i : i + n, None]
        low = None
        for cs in blocks:
            torch.sub(zc[:, cs], mc, out=db[:, cs])
            piece = db[:, cs].amin(dim=1)
            low = piece if low is None else torch.minimum(low, piece)
            if neg_a is not None:
                # a_c (-d_c) >= 0 (+inf at a masked class, a_c > 0 there)
                torch.mul(db[:, cs], neg_a[:, cs], out=eb[:, cs])
        assert low is not None
        spread[i : i + n] = low.neg_().clamp_(max=_TAIL)
        if smooth is not None:
            smooth[i : i + n] = pairwise_(eb)
        for cs in blocks:
            torch.mul(db[:, cs], _LOG2E, out=eb[:, cs])
            torch.exp2(eb[:, cs], out=eb[:, cs])
        eb.scatter_(1, k[i : i + n, None], 0.0)
        r[i : i + n] = pairwise_(eb)
    if smooth is not None and bool(torch.isnan(smooth).any()):
        return None  # 0 * inf at a masked class of weight 0: the general path's care
    big_l = torch.log1p(r)
    d_t = z.gather(1, t[:, None])[:, 0].double() - m
    loss = torch.where(b == 0, 0.0, b * (big_l - d_t))
    if smooth is not None:
        loss = loss + torch.where(alpha == 0, 0.0, big_a * big_l + smooth)
    depth = levels(n_classes)
    bound = loss * ((14 + 2 * depth + 3 * spread) * (_U * _softmax_shared.SLACK)) + _FLOOR
    saved = Saved(
        z, t, k, m, r, spread, b, alpha, a, big_a, denominator, reduction, eps, weight, name
    )
    STATS["fast_forward"] += 1
    if reduction == "none":
        out = _round_checked(loss, bound, name)
        flagged = out[1]
        result = out[0]
        if flagged.numel():
            exact = [exact_loss(saved, int(row)) for row in flagged.tolist()]
            result[flagged] = torch.tensor(exact, dtype=torch.float64).to(result.dtype)
            STATS["exact_losses"] += len(exact)
        return result, saved
    total = math.fsum(loss.tolist())
    # math.fsum rounds the sum of the float64 losses once
    total_bound = float(bound.sum()) * (1 + 4 * n_rows * _U) + abs(total) * _U
    if reduction == "mean":
        value = total / denominator if denominator else math.nan
        value_bound = total_bound / denominator + 2 * _U * abs(value) if denominator else 0.0
    else:
        value, value_bound = total, total_bound
    v = torch.tensor(value, dtype=torch.float64)
    lo, hi = (to_dtype(v + s * value_bound, name, torch) for s in (-1.0, 1.0))
    if bool(lo != hi) and math.isfinite(value) and z.numel() <= EXACT_REDUCTION_MAX:
        STATS["exact_losses"] += 1
        return torch.tensor(exact_reduced(saved), dtype=z.dtype), saved
    return to_dtype(v, name, torch), saved


#: Reductions over at most this many logits are decided exactly at a near-tie.
EXACT_REDUCTION_MAX = 1 << 12


def _round_checked(
    v: torch.Tensor, bound: torch.Tensor, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``v`` rounded to ``name`` and the (flat) indices where ``v -+ bound`` round apart."""
    lo = to_dtype(v - bound, name, torch)
    hi = to_dtype(v + bound, name, torch)
    out = to_dtype(v, name, torch)
    flagged = torch.nonzero((lo != hi).reshape(-1) & torch.isfinite(v.reshape(-1)))
    return out, flagged.reshape(-1)


def backward(saved: Saved, grad_out: torch.Tensor) -> torch.Tensor | None:
    """``grad_out`` times d loss / d z, (N, C) in the logits' dtype, correctly rounded;
    None (the general path) for an infinite, NaN or huge (``> 2**800``) incoming gradient."""
    z = saved.z
    n_rows, n_classes = (int(n) for n in z.shape)
    g = grad_out.double().reshape(-1)
    if saved.reduction == "none":
        s = g.expand(n_rows) if g.numel() == 1 else g
    else:
        den = saved.denominator if saved.reduction == "mean" else 1.0
        # nothing counted in the mean (every sample ignored or masked): gradient 0, as ATen
        scale = float(g[0]) / den if den else 0.0
        s = torch.full((n_rows,), scale, dtype=torch.float64)
    q = saved.b + saved.alpha * saved.big_a
    one_r = 1.0 + saved.r
    c = s * q / one_r
    s_alpha = s * saved.alpha
    largest = float(torch.maximum((s * saved.b).abs(), s_alpha.abs()).max())
    if not bool(torch.isfinite(c).all()) or not largest <= _MAX_SCALE:
        return None
    depth = levels(n_classes)
    a_row = None if saved.a is None else saved.a[None, :]
    use_native = a_row is None and _native.serves(z)
    # relative bound of c e_j per row, in units of u (see the module docstring)
    spread = saved.spread
    entropy = torch.clamp(spread, max=math.log(n_classes))
    if use_native:
        # the C kernel's exp: both floored (a larger bound is as valid), see NATIVE_SPREAD
        spread = spread.clamp(min=NATIVE_SPREAD)
        entropy = entropy.clamp(min=NATIVE_SPREAD)
    k_row = (19.0 + depth + 3 * entropy + 3 * spread) * (_U * _softmax_shared.SLACK)
    out = torch.empty((n_rows, n_classes), dtype=z.dtype)
    rows = _rows_per_chunk(n_classes)
    d = torch.empty((min(rows, n_rows), n_classes), dtype=torch.float64)
    v = torch.empty_like(d)
    p = torch.empty_like(d) if saved.a is not None else None
    fused = saved.name == "float32"
    spare = torch.empty(d.shape, dtype=z.dtype) if fused else None
    negative = bool((c < 0).any())
    low_factor, high_factor = 1.0 - k_row, 1.0 + k_row
    flagged: list[tuple[int, int]] = []
    cols = torch.stack([saved.t, saved.k], dim=1)
    bulk = torch.empty((n_rows, 2), dtype=torch.float64)  # c e_j - s alpha a_j at t and k
    bulk_bound = torch.empty((n_rows, 2), dtype=torch.float64) if p is not None else None
    blocks = _column_blocks(n_classes)
    native = None
    if use_native:
        native = _native.softmax_grad(z, saved.m, c, k_row, saved.t, saved.k)
        if native[2] is None:
            native = None  # too many near-ties for its lists (rare): the pass below
        else:
            out, bulk, flagged = native[0], native[1], native[2]
            STATS["native_backward"] += 1
    for i in range(0, 0 if native is not None else n_rows, rows):
        n = min(rows, n_rows - i)
        db, vb = d[:n], v[:n]
        sl = slice(i, i + n)
        c_sl = c[sl, None]
        for cs in blocks:
            dcs, vcs = db[:, cs], vb[:, cs]
            torch.sub(z[sl, cs], saved.m[sl, None], out=dcs)
            torch.mul(dcs, _LOG2E, out=vcs)
            torch.exp2(vcs, out=vcs)
            vcs.mul_(c_sl)  # c e_j
        ob = out[sl]
        hb = spare[:n] if fused and spare is not None else torch.empty_like(ob)
        low_f, high_f = low_factor[sl, None], high_factor[sl, None]
        if a_row is None or p is None or bulk_bound is None:
            torch.gather(vb, 1, cols[sl], out=bulk[sl])
            vb.scatter_(1, cols[sl], 0.0)
            for cs in blocks:
                if fused:
                    torch.mul(vb[:, cs], low_f, out=ob[:, cs])
                    torch.mul(vb[:, cs], high_f, out=hb[:, cs])
                else:
                    ob[:, cs] = to_dtype(vb[:, cs] * low_f, saved.name, torch)
                    hb[:, cs] = to_dtype(vb[:, cs] * high_f, saved.name, torch)
        else:
            # v = c e_j - s alpha a_j, bound k (|c e_j| + |s alpha| a_j): absolute
            pb = p[:n]
            k_sl, sa_sl = k_row[sl, None], s_alpha[sl, None]
            ka_sl = (k_row[sl] * s_alpha[sl].abs())[:, None]
            for cs in blocks:
                pcs, vcs = pb[:, cs], vb[:, cs]
                torch.mul(vcs, k_sl, out=pcs)
                if negative:
                    pcs.abs_()
                pcs.addcmul_(ka_sl, a_row[:, cs])
                vcs.addcmul_(sa_sl, a_row[:, cs], value=-1.0)
            torch.gather(vb, 1, cols[sl], out=bulk[sl])
            torch.gather(pb, 1, cols[sl], out=bulk_bound[sl])
            vb.scatter_(1, cols[sl], 0.0)
            pb.scatter_(1, cols[sl], 0.0)
            for cs in blocks:
                if fused:
                    torch.sub(vb[:, cs], pb[:, cs], out=ob[:, cs])
                    torch.add(vb[:, cs], pb[:, cs], out=hb[:, cs])
                else:
                    ob[:, cs] = to_dtype(vb[:, cs] - pb[:, cs], saved.name, torch)
                    hb[:, cs] = to_dtype(vb[:, cs] + pb[:, cs], saved.name, torch)
        if not all(torch.equal(ob[:, cs], hb[:, cs]) for cs in blocks):
            for row, col in torch.nonzero(ob != hb).tolist():
                flagged.append((i + row, col))
    if bulk_bound is None:
        bulk_bound = k_row[:, None] * bulk.abs()
    values, bounds = _specials(saved, bulk, bulk_bound, s, one_r, depth)
    r32, bad = _round_pair(values, bounds, saved.name)
    out.scatter_(1, cols, r32)
    for row, which in torch.nonzero(bad).tolist():
        flagged.append((row, int(cols[row, which])))
    STATS["fast_backward"] += 1
    if flagged:
        unique = sorted(set(flagged))
        STATS["exact_grads"] += len(unique)
        incoming = g.expand(n_rows) if g.numel() == 1 else g
        fix_grads(saved, out, unique, incoming)
    return out


def _specials(
    saved: Saved,
    bulk: torch.Tensor,
    bulk_bound: torch.Tensor,
    s: torch.Tensor,
    one_r: torch.Tensor,
    depth: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and bounds (N, 2) at the target and arg-max columns, from the bulk values
    ``c e_j - s alpha a_j`` there and their bounds."""
    t, k = saved.t, saved.k
    b, alpha, r = saved.b, saved.alpha, saved.r
    bulk_t, bulk_k = bulk[:, 0], bulk[:, 1]
    bound_t, bound_k = bulk_bound[:, 0], bulk_bound[:, 1]
    # j = t != k: the bulk value minus s b
    vt = bulk_t - s * b
    bt = bound_t + 5 * _U * (s * b).abs() + _U * vt.abs()
    # j = k != t: the bulk value (e_k = exp2(0) = 1)
    bk = bound_k + _U * bulk_k.abs()
    # j = k = t: s (alpha (A - a_k) - r (b + alpha a_k)) / (1 + r), no cancellation of p_k - 1
    a_k = torch.zeros_like(b) if saved.a is None else saved.a[k]
    others = alpha * (saved.big_a - a_k)
    y = r * (b + alpha * a_k)
    vm = s * (others - y) / one_r
    k_r = (2.1 + depth + 3 * saved.spread) * _U
    bm = (s.abs() / one_r) * (
        (k_r + 8 * _U) * (y + (others - y).abs()) + 8 * _U * alpha * saved.big_a
    ) + _FLOOR
    same = t == k
    v_t = torch.where(same, vm, vt)
    b_t = torch.where(same, bm, bt)
    v_k = torch.where(same, vm, bulk_k)
    b_k = torch.where(same, bm, bk)
    return torch.stack([v_t, v_k], dim=1), torch.stack([b_t, b_k], dim=1) * (1 + 1e-9)


def _round_pair(
    values: torch.Tensor, bounds: torch.Tensor, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    lo = to_dtype(values - bounds, name, torch)
    hi = to_dtype(values + bounds, name, torch)
    return to_dtype(values, name, torch), (lo != hi) & torch.isfinite(values)


# --- exact recomputation ---------------------------------------------------------------
