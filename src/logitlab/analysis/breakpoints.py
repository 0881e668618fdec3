"""Exact breakpoints: for each formulation x dtype x target, per criterion and per side,
the onset: the value of smallest ``|z|`` at which the criterion holds.

**Sides.**  *Against* the target is the sign of ``z`` that pushes the prediction away from
the target's nearer label: ``z > 0`` for ``y < 0.5`` (``y = 0``: confident mistakes, where
training breaks), ``z < 0`` for ``y > 0.5``.  *With* the target is the other sign (small
losses losing their digits).  ``y = 0.5`` is symmetric; by convention its *against* side is
``z > 0``.  Elementwise quantities (sigmoid, log_sigmoid, softplus) have no target: their
sides are ``"negative"`` (``z < 0``) and ``"positive"``.  Softmax rows ``(m, 0, 0)``: for
``t=swept`` (the label is the swept class) *against* is ``m < 0``; for ``t=other``, ``m > 0``.

**Criteria** (:data:`CRITERIA`), decided per element from one :func:`~logitlab.formulations.run.run`
and the exact reference (:mod:`logitlab.exact.fast`), flags through
:func:`~logitlab.analysis.flags.classify`:

* ``loss relative error``: relative error > :func:`breakpoint_threshold` (``max(1e-3,
  2 eps)``: a correctly rounded bfloat16 result is already 3.9e-3 off) *and* > 1 ULP (a
  correctly rounded subnormal can be far off in relative terms);
* ``gradient vanishes``: classify's ``gradient vanished`` (exactly 0 where the exact
  gradient, rounded to the dtype, is not), where the exact gradient is not within
  rounding of zero (``|g| > 2 eps`` times its larger term: at a soft target's zero crossing
  any code that subtracts may return 0);
* ``gradient relative error``: as for the loss, on the same elements;
* ``loss non-finite`` and ``gradient non-finite``: classify's ``non-finite``.

**Search** (:func:`search`), over the magnitudes' ordinals (the ``k``-th positive value
of the format), all lanes (target x side) of one formulation batched into one framework
call per round:

1. *16-bit formats*: every finite value (the audit's own exhaustive run) and nothing else;
2. *bracket*: a grid of values (float32: every 2**14-th value for ``|z|`` in
   ``[2**-8, 2**8]``, every 2**20-th elsewhere; float64: 256 values per binade in
   ``[2**-8, 2**10]``, 4 elsewhere); the first grid value where the criterion holds and
   the grid value before it bracket the onset;
3. *bisect*: 64 evenly spaced values a round (a 64-way bisection) shrink the bracket to
   at most 64 values, every one of which is then tried;
4. *window*: windows of 2**14 values below the first hit found are tried, the lowest hit
   becoming the first hit, until the 2**16 values below the first hit are all clean.

The onset is first in the sense that every value from it down to a clean stretch of
2**16 values was tried, and the grid found no hit further down.  Criteria often hold on
short runs spaced far apart near their onset (``BCELoss(sigmoid(z))`` for y = 0 near
z = 12.24 in float32: ``1 + exp(-z)`` moves one float32 step every ~26,000 values of z,
and only the peaks of that sawtooth pass 1e-3), which is why the clean stretch is long.
A criterion that first holds on a run further below a clean stretch of 2**16 values (and
between grid points) would be missed; the tests compare the float32 onsets with a
brute-force scan of every float32 value in ``[0.5, 120]`` on the real frameworks (no
difference), which is the proof this design relies on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from logitlab.analysis.flags import classify_run
from logitlab.core.formats import FloatFormat, get_format
from logitlab.exact import fast
from logitlab.formulations.run import RunResult

__all__ = [
    "BREAKPOINT_RELATIVE_ERROR",
    "CLEAN",
    "CRITERIA",
    "SIDES",
    "WINDOW",
    "Evaluate",
    "Onset",
    "breakpoint_threshold",
    "criteria",
    "grid",
    "magnitudes",
    "onsets_from_masks",
    "ordinal_of",
    "search",
    "side_sign",
]

#: A result is off when its relative error exceeds this (or 2 eps of a coarser format).
BREAKPOINT_RELATIVE_ERROR = 1e-3

#: The criteria, in the order they are shown.
CRITERIA: dict[str, str] = {
    "loss relative error": "loss relative error > max(1e-3, 2 eps) and > 1 ULP",
    "gradient vanishes": "gradient exactly 0 where the exact one is not (nor within rounding of 0)",
    "gradient relative error": "gradient relative error > max(1e-3, 2 eps) and > 1 ULP",
    "loss non-finite": "loss NaN or infinite where the exact loss is finite",
    "gradient non-finite": "gradient NaN or infinite where the exact gradient is finite",
}
#: Sides for BCE: against the target (confident mistakes) and with it (small losses).
SIDES = ("against", "with")
#: Values in each window checked below an onset, and the clean stretch below the onset
#: (every value tried, none holding) at which the walk down stops.
WINDOW = 2**14
CLEAN = 2**16
#: Points tried per sectioning round, and the bracket size from which every value is tried.
SECTION = 64


def breakpoint_threshold(fmt: FloatFormat) -> float:
    """``max(1e-3, 2 eps)``: a correctly rounded bfloat16 result is already up to 3.9e-3 off."""
    return max(BREAKPOINT_RELATIVE_ERROR, 2 * fmt.eps)


def side_sign(y: float, side: str) -> int:
    """The sign of ``z`` on ``side`` of target ``y`` (see the module docstring).

    >>> side_sign(0.0, "against"), side_sign(1.0, "against"), side_sign(0.5, "with")
    (1, -1, -1)
    """
    against = 1 if y <= 0.5 else -1
    if side == "against":
        return against
    if side == "with":
        return -against
    return {"positive": 1, "negative": -1}[side]


@dataclass(frozen=True)
class Onset:
    """Where one criterion first holds: ``z`` signed (``None``: never, for finite ``z``)."""

    formulation: str
    dtype: str
    target: float | str | None
    side: str
    criterion: str
    z: float | None
    method: str
    #: The softmax audit's family of rows (``None`` elsewhere).
    family: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "formulation": self.formulation,
            "family": self.family,
            "dtype": self.dtype,
            "target": self.target,
            "side": self.side,
            "criterion": self.criterion,
            "z": self.z,
            "abs_z": None if self.z is None else abs(self.z),
            "method": self.method,
        }


# --- per element ------------------------------------------------------------------------


def _relative_off(computed: np.ndarray, exact: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Relative error > threshold and > 1 ULP (NaN counts as off); ULPs only where needed."""
    from logitlab.analysis.measure import relative_errors

    rel = relative_errors(computed, exact)
    bad = ~(rel <= breakpoint_threshold(fmt))
    idx = np.flatnonzero(bad)
    if idx.size:
        u = fast.ulp_errors(computed.ravel()[idx], exact.ravel()[idx], fmt)
        flat = bad.ravel()
        flat[idx] = ~(u <= 1.0)
        bad = flat.reshape(bad.shape)
    return bad


def criteria(
    fmt: FloatFormat,
    result: RunResult,
    ref: fast.Reference,
    *,
    logits: Any = None,
    weight: Any = None,
) -> dict[str, np.ndarray]:
    """Per element, where each criterion of :data:`CRITERIA` holds (gradient criteria only
    with a gradient).  ``result`` is ``ok``; values per element (one per softmax row)."""
    assert result.value is not None
    value = result.value
    ev, eg = ref.rounded(fmt)
    flags = classify_run(
        result,
        value=value,
        exact_value=ev,
        grad=result.grad,
        exact_grad=None if result.grad is None else eg,
        logits=logits,
        weight=weight,
    )
    with np.errstate(all="ignore"):
        out = {
            "loss relative error": _relative_off(value, ref.value, fmt),
            "loss non-finite": flags.loss["non-finite"],
        }
        if result.grad is not None:
            g = result.grad
            exact_g = np.asarray(ref.grad)
            if ref.grad_scale is not None:
                scale = np.asarray(ref.grad_scale)
            elif exact_g.ndim == value.ndim + 1:  # softmax: a row's largest entry
                scale = np.abs(exact_g).max(axis=-1, keepdims=True)
            else:
                scale = np.abs(exact_g)
            real = np.abs(exact_g) > 2 * fmt.eps * scale
            rel = _relative_off(g, exact_g, fmt) & real
            vanished = (g == 0) & real
            if g.ndim == value.ndim + 1:
                rel, vanished = rel.any(axis=-1), vanished.any(axis=-1)
            out["gradient vanishes"] = flags.grad["gradient vanished"] & vanished
            out["gradient relative error"] = rel
            out["gradient non-finite"] = flags.grad["non-finite"]
    return {name: np.asarray(out[name], dtype=bool) for name in CRITERIA if name in out}


def onsets_from_masks(
    z: np.ndarray, lanes: np.ndarray, masks: dict[str, np.ndarray], n_lanes: int
) -> dict[tuple[int, str], float | None]:
    """``(lane, criterion) -> z`` of smallest ``|z|`` where the mask holds (finite ``z``
    only), from an exhaustive evaluation; ``lanes`` gives each element's lane."""
    out: dict[tuple[int, str], float | None] = {}
    finite = np.isfinite(z) & (z != 0)
    for name, m in masks.items():
        hit = m & finite
        for lane in range(n_lanes):
            idx = np.flatnonzero(hit & (lanes == lane))
            out[(lane, name)] = None if idx.size == 0 else float(z[idx[np.argmin(np.abs(z[idx]))]])
    return out


# --- the search -------------------------------------------------------------------------

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def magnitudes(ordinals: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """The positive values of ``fmt`` with these ordinals (1: the smallest subnormal)."""
    uint = _UINT[fmt.numpy_dtype.itemsize]
    return np.asarray(ordinals).astype(uint).view(fmt.numpy_dtype).astype(np.float64)


def ordinal_of(value: float, fmt: FloatFormat) -> int:
    """The ordinal of ``|value|`` (a value of ``fmt``)."""
    uint = _UINT[fmt.numpy_dtype.itemsize]
    return int(np.array([abs(value)]).astype(fmt.numpy_dtype).view(uint)[0])


def _spread(lo: int, hi: int, per: int) -> np.ndarray:
    # ``per`` ordinals from lo (included) to hi (excluded), evenly spaced, as int64
    step = max(1, (hi - lo) // per)
    return np.arange(lo, hi, step, dtype=np.int64)


def grid(fmt: FloatFormat, band: tuple[float, float] | None = None) -> np.ndarray:
    """The ordinals the search tries first (ascending, unique, within ``band`` of |z|)."""
    return _grid(fmt.name, band).copy()


@functools.cache
def _grid(name: str, band: tuple[float, float] | None) -> np.ndarray:
    fmt = get_format(name)
    top = ordinal_of(fmt.max, fmt)
    if fmt.bits == 16:
        g = np.arange(1, top + 1, dtype=np.int64)
    else:
        if fmt.bits == 32:
            dense_lo, dense_hi, dense_step, sparse_step = 2.0**-8, 2.0**8, 2**14, 2**20
            a, b = ordinal_of(dense_lo, fmt), ordinal_of(dense_hi, fmt)
            parts = [
                np.arange(1, a, sparse_step, dtype=np.int64),
                np.arange(a, b, dense_step, dtype=np.int64),
                np.arange(b, top, sparse_step, dtype=np.int64),
            ]
        else:
            binade = 2**52  # values per binade (and in the subnormal range)
            parts = [_spread(1, binade, 4)]
            for e in range(-1022, 1024):
                lo = ordinal_of(2.0**e, fmt)
                parts.append(_spread(lo, lo + binade, 256 if -8 <= e < 10 else 4))
        g = np.concatenate([*parts, np.asarray([top], dtype=np.int64)])
    if band is not None:  # from band[0] up (the search drops onsets above band[1])
        lo = ordinal_of(band[0], fmt)
        g = np.concatenate([[lo], g[g > lo]]).astype(np.int64)
    return np.unique(g)


#: ``evaluate(lane_of_each_element, ordinals) -> {criterion: mask}`` (``None``: did not run).
Evaluate = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray] | None]


def search(
    evaluate: Evaluate,
    fmt: FloatFormat,
    n_lanes: int,
    names: Sequence[str],
    *,
    band: tuple[float, float] | None = None,
    clean: int = CLEAN,
) -> dict[tuple[int, str], int | None]:
    """``(lane, criterion) -> ordinal`` of the onset (``None``: none), see the module
    docstring.  ``evaluate`` is called with every lane's ordinals batched together.

    ``band=(lo, hi)`` searches ``|z| >= lo`` only and reports onsets above ``hi`` as none
    (the brute-force tests scan exactly that band); ``clean`` is the clean stretch the walk
    down needs below an onset."""
    g = grid(fmt, band)
    floor = int(g[0])
    lanes = np.repeat(np.arange(n_lanes), g.size)
    masks = evaluate(lanes, np.tile(g, n_lanes))
    if masks is None:
        return {}
    out: dict[tuple[int, str], int | None] = {}
    # brackets (lo, hi]: hi holds the criterion, lo is the last clean value tried (or floor-1)
    open_: dict[tuple[int, str], tuple[int, int]] = {}
    for name in names:
        if name not in masks:
            continue
        m = masks[name].reshape(n_lanes, g.size)
        for lane in range(n_lanes):
            hits = np.flatnonzero(m[lane])
            if hits.size == 0:
                out[(lane, name)] = None
                continue
            i = int(hits[0])
            hi = int(g[i])
            lo = int(g[i - 1]) if i > 0 else floor - 1
            if fmt.bits == 16:
                out[(lane, name)] = hi
                continue
            open_[(lane, name)] = (lo, hi)
    if fmt.bits == 16:
        return out
    per = SECTION

    def batch(requests: dict[tuple[int, str], np.ndarray]) -> dict[tuple[int, str], np.ndarray]:
        """Evaluate each request's ordinals; one call, each lane's ordinals deduplicated."""
        by_lane: dict[int, list[np.ndarray]] = {}
        for (lane, _), ks in requests.items():
            by_lane.setdefault(lane, []).append(ks)
        uniq = {lane: np.unique(np.concatenate(v)) for lane, v in by_lane.items()}
        lane_ids = np.concatenate([np.full(u.size, lane) for lane, u in uniq.items()])
        ords = np.concatenate(list(uniq.values()))
        res = evaluate(lane_ids, ords)
        assert res is not None
        starts: dict[int, int] = {}
        pos = 0
        for lane, u in uniq.items():
            starts[lane] = pos
            pos += u.size
        answer = {}
        for (lane, name), ks in requests.items():
            u = uniq[lane]
            where = starts[lane] + np.searchsorted(u, ks)
            answer[(lane, name)] = res[name][where]
        return answer

    # sectioning: shrink each bracket to at most SECTION values
    while any(hi - lo > SECTION for lo, hi in open_.values()):
        req = {}
        for key, (lo, hi) in open_.items():
            if hi - lo > SECTION:
                span = hi - lo  # Python ints: exact for float64's ordinals
                req[key] = np.unique(
                    np.array([lo + span * j // per for j in range(1, per + 1)], dtype=np.int64)
                )
        got = batch(req)
        for key, pts in req.items():
            lo, _ = open_[key]
            j = int(np.flatnonzero(got[key])[0])  # hi itself holds
            open_[key] = (lo if j == 0 else int(pts[j - 1]), int(pts[j]))
    # every value of the bracket, then clean windows below the first hit
    first: dict[tuple[int, str], int] = {}
    req = {
        key: np.arange(max(floor, lo + 1), hi + 1, dtype=np.int64)
        for key, (lo, hi) in open_.items()
    }
    if req:
        got = batch(req)
        for key, ks in req.items():
            first[key] = int(ks[np.flatnonzero(got[key])[0]])
    # walk down from each first hit, a window at a time, until CLEAN values below it are clean
    pending = {key: (k, k) for key, k in first.items()}  # (first hit, lowest value tried)
    while pending:
        req = {
            key: np.arange(max(floor, low - WINDOW), low, dtype=np.int64)
            for key, (k, low) in pending.items()
            if low > floor and k - low < clean
        }
        for key in [key for key in pending if key not in req]:
            out[key] = pending.pop(key)[0]
        if not req:
            break
        got = batch(req)
        for key, ks in req.items():
            hits = np.flatnonzero(got[key])
            k = pending[key][0] if hits.size == 0 else int(ks[hits[0]])
            pending[key] = (k, int(ks[0]))
    if band is not None:
        top = ordinal_of(band[1], fmt)
        out = {key: None if k is None or k > top else k for key, k in out.items()}
    return out
