"""The softmax cross-entropy audit: margin sweeps in named families of rows.

Every family sweeps a margin ``m`` over the same values as the BCE audit (every finite
value of a 16-bit format; the float32/float64 sweep otherwise).  A row is ``m`` on class 0
(the *swept* class), ``0`` on class 1 (the runner-up, so the margin over the rest is
exactly ``m``) and the family's other logits on classes 2.. (:data:`FAMILIES`):

* ``m,0,0``: three classes, the others 0 (the loss is ``log(1 + 2 exp(-m))`` for
  ``t=swept``);
* ``K=10`` (and ``K=1000``, on request): the other logits drawn uniformly from
  ``[-6, 0)`` (seeded by the audit's ``--seed``) and rounded to the dtype, one draw per
  family and dtype shared by every ``m``;
* ``masked``: ``K=10`` with three of the other logits ``-inf`` (neither label is masked,
  so every row stays defined);
* ``smoothing``: ``m,0,0`` rows with ``label_smoothing=0.1``, run only through the paths
  that take it (the others are *not applicable* rows; a path that ignores the setting,
  found by a probe against both references, is one too);
* ``target masked``: not a sweep: rows whose target logit is ``-inf`` (the exact loss is
  ``+inf``, its gradient the finite limit ``p - onehot``) and a row of only ``-inf``
  (undefined); each path's loss and gradient there are classified, not breakpointed.

The labels are the swept class (``t=swept``: the loss falls like ``exp(-m)``) and the
runner-up (``t=other``: it grows like ``m``); *against* the label is ``m < 0`` for
``t=swept`` and ``m > 0`` for ``t=other``.  Breakpoints are in ``m``, with the BCE audit's
criteria (:mod:`logitlab.analysis.breakpoints`): 16-bit formats from the exhaustive run,
float32/float64 by :func:`~logitlab.analysis.breakpoints.search`.  The reference is
:func:`logitlab.exact.fast.softmax_ce`: exact (to 0.01 ULP, mpmath where its bound says
so) for the measures; in the search its bounds decide, and the rows where the bound could
change a criterion are recomputed exactly.  Every row runs through
:func:`logitlab.formulations.run.run`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from logitlab.analysis.audit_rows import Row, plot_bins, plot_limit, row_from
from logitlab.analysis.breakpoints import (
    CLEAN,
    CRITERIA,
    SIDES,
    WINDOW,
    Onset,
    breakpoint_threshold,
    criteria,
    magnitudes,
    onsets_from_masks,
    search,
)
from logitlab.analysis.measure import measure
from logitlab.analysis.points import edges, logit_points
from logitlab.core.formats import FloatFormat, get_format
from logitlab.core.inputs import SoftmaxCase
from logitlab.exact import fast
from logitlab.formulations import Formulation
from logitlab.formulations.run import RunResult, run

__all__ = [
    "DEFAULT_FAMILIES",
    "FAMILIES",
    "LABELS",
    "SMOOTHING",
    "Family",
    "base_row",
    "family_rows",
    "run_dtype",
]

#: The two labels: the swept class (0), and the runner-up (1).
LABELS = ("t=swept", "t=other")
#: The smoothing family's ``label_smoothing``.
SMOOTHING = 0.1


@dataclass(frozen=True)
class Family:
    """A family of softmax rows (see the module docstring)."""

    name: str
    classes: int
    summary: str
    random_others: bool = False
    masked: int = 0
    smoothing: float = 0.0
    sweep: bool = True


FAMILIES: tuple[Family, ...] = (
    Family("m,0,0", 3, "rows (m, 0, 0)"),
    Family("K=10", 10, "rows (m, 0, r...), 8 other logits r uniform in [-6, 0)", True),
    Family("masked", 10, "K=10 rows with 3 of the other logits -inf", True, masked=3),
    Family("smoothing", 3, f"rows (m, 0, 0), label_smoothing={SMOOTHING}", smoothing=SMOOTHING),
    Family(
        "target masked",
        10,
        "K=10 rows whose target logit is -inf, and a row of -inf only",
        True,
        sweep=False,
    ),
    Family("K=1000", 1000, "rows (m, 0, r...), 998 other logits r uniform in [-6, 0)", True),
)
#: The families a default audit runs (``K=1000`` on request: 1000 classes per row).
DEFAULT_FAMILIES: tuple[str, ...] = ("m,0,0", "K=10", "masked", "smoothing", "target masked")
_BY_NAME = {f.name: f for f in FAMILIES}


def base_row(family: Family, fmt: FloatFormat, seed: int) -> np.ndarray:
    """The family's row with ``m = 0``: class 1 is 0, the others as the family says."""
    z = np.zeros(family.classes)
    if family.random_others and family.classes > 2:
        index = [f.name for f in FAMILIES].index(family.name)
        rng = np.random.default_rng([seed, index, family.classes])
        z[2:] = fmt.round(rng.uniform(-6.0, 0.0, family.classes - 2))
        z[2:] = np.minimum(z[2:], 0.0)  # rounding never lifts one above the runner-up
    z[2 : 2 + family.masked] = -np.inf
    return z


def family_rows(base: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Rows ``base`` with ``m`` on class 0."""
    z = np.repeat(base[None, :], m.size, axis=0)
    z[:, 0] = m
    return z


def _sign(label: str, side: str) -> int:
    against = -1 if label == "t=swept" else 1
    return against if side == "against" else -against


def _case(fmt: FloatFormat, z: np.ndarray, labels: np.ndarray, family: Family) -> SoftmaxCase:
    return SoftmaxCase(z, labels, fmt, label_smoothing=family.smoothing)


def _slice(result: RunResult, n: int) -> RunResult:
    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[:n]

    return dataclasses.replace(
        result,
        value=cut(result.value),
        grad=cut(result.grad),
        probabilities=cut(result.probabilities),
        clamped=cut(result.clamped),
        grad_clamped=cut(result.grad_clamped),
        clipped=cut(result.clipped),
    )


def _run(f: Formulation, fmt: FloatFormat, z: np.ndarray, labels: np.ndarray, fam: Family) -> Any:
    """:func:`run`, with XLA's paths given row counts padded to a power of four, at least
    256 (by copies of the last row, dropped again), so that a search compiles a few shapes,
    not one per round: each new shape costs JAX about two seconds of compiling, a padded
    row microseconds."""
    n = z.shape[0]
    if f.framework != "jax" or n == 0:
        return run(f, _case(fmt, z, labels, fam))
    bits = max(8, (n - 1).bit_length())
    size = 1 << (bits + bits % 2)
    zp = np.concatenate([z, np.repeat(z[-1:], size - n, axis=0)])
    lp = np.concatenate([labels, np.repeat(labels[-1:], size - n)])
    result = run(f, _case(fmt, zp, lp, fam))
    return _slice(result, n) if result.ok else result


def _exact_criteria(
    fmt: FloatFormat, result: RunResult, z: np.ndarray, labels: np.ndarray, fam: Family
) -> dict[str, np.ndarray]:
    """:func:`~logitlab.analysis.breakpoints.criteria` against the fast reference where
    its bounds decide every criterion, and against the exact one (recomputed) elsewhere."""
    ref = fast.softmax_ce(z, labels, fmt, label_smoothing=fam.smoothing, exact=False)
    masks = criteria(fmt, result, ref, logits=z)
    if ref.value_err is None or ref.grad_err is None:
        return masks
    near = _near(fmt, result.value, ref.value, ref.value_err)
    if result.grad is not None:
        scale = np.abs(ref.grad).max(axis=1, keepdims=True)
        scale_err = ref.grad_err.max(axis=1, keepdims=True)
        g_near = _near(fmt, result.grad, ref.grad, ref.grad_err)
        # near the "real" cut |g| > 2 eps max|g| of the row
        cut = 2 * fmt.eps * scale
        g_near |= np.abs(np.abs(ref.grad) - cut) <= ref.grad_err + 2 * fmt.eps * scale_err
        near |= g_near.any(axis=1)
    cand = np.flatnonzero(near)
    undecided = np.zeros(z.shape[0], dtype=bool)
    if cand.size:
        sub = _slice_rows(result, cand)
        base = {name: mask[cand] for name, mask in masks.items()}
        for grow in (-1.0, 1.0):
            v = ref.value[cand]
            v = np.sign(v) * np.maximum(np.abs(v) + grow * ref.value_err[cand], 0)
            g = ref.grad[cand]
            g = np.sign(g) * np.maximum(np.abs(g) + grow * ref.grad_err[cand], 0)
            other = criteria(fmt, sub, fast.Reference(v, g), logits=z[cand])
            for name, mask in base.items():
                undecided[cand] |= mask != other[name]
        # where the bound is a good part of the threshold, the relative error is unsure
        thr = 0.25 * breakpoint_threshold(fmt)
        gref, gerr = ref.grad[cand], ref.grad_err[cand]
        real = np.abs(gref) + gerr > 2 * fmt.eps * np.abs(gref).max(axis=1, keepdims=True)
        undecided[cand] |= ((gerr > thr * np.abs(gref)) & real).any(axis=1)
        undecided[cand] |= ref.value_err[cand] > thr * np.abs(ref.value[cand])
    idx = np.flatnonzero(undecided)
    if idx.size:
        exact_ref = fast.softmax_ce(z[idx], labels[idx], fmt, label_smoothing=fam.smoothing)
        exact_masks = criteria(fmt, _slice_rows(result, idx), exact_ref, logits=z[idx])
        for name in masks:
            masks[name][idx] = exact_masks[name]
    return masks


def _near(fmt: FloatFormat, computed: Any, exact: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Entries where moving ``exact`` by ``err`` could change a criterion's decision:
    the relative error near the threshold, the ULP error near 1, or ``exact`` near a
    rounding boundary of ``fmt`` (the flags compare with the rounded exact value)."""
    c = np.asarray(computed, dtype=np.float64)
    with np.errstate(all="ignore"):
        ex = np.asarray(exact, dtype=np.float64)
        e = np.asarray(err, dtype=np.float64)
        big = ~(e < 0.5 * np.abs(ex))  # the bound is not small: decide exactly
        rel = np.abs(c - ex) / np.abs(ex)
        d_rel = 2 * e * (1 + rel) / np.abs(ex)
        thr = breakpoint_threshold(fmt)
        near = big | (np.abs(rel - thr) <= 2 * d_rel)
        # ULP errors matter only past the relative threshold
        past = ~(rel <= thr - 2 * d_rel)
        idx = np.flatnonzero(past)
        if idx.size:
            lo = np.maximum(
                np.abs(ex.ravel()[idx]) * 2.0 ** (-fmt.precision), fmt.smallest_subnormal
            )
            u = fast.ulp_errors(c.ravel()[idx], np.asarray(exact).ravel()[idx], fmt)
            flat = near.ravel()
            flat[idx] |= ~(np.abs(u - 1) > 2 * e.ravel()[idx] / lo)
            near = flat.reshape(near.shape)
        near |= fmt.round(ex - e) != fmt.round(ex + e)
    return np.asarray(near, dtype=bool)


def _slice_rows(result: RunResult, idx: np.ndarray) -> RunResult:
    def take(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[idx]

    return dataclasses.replace(
        result,
        value=take(result.value),
        grad=take(result.grad),
        probabilities=take(result.probabilities),
        clamped=take(result.clamped),
        grad_clamped=take(result.grad_clamped),
        clipped=take(result.clipped),
    )


def _ignores_smoothing(f: Formulation, fmt: FloatFormat, fam: Family) -> str | None:
    """Why ``f`` is not applicable to ``fam``'s smoothing when it returns the unsmoothed
    loss for a row where the two differ by far (``(10, 0, 0)``, label 0)."""
    if fam.smoothing == 0:
        return None
    z = np.zeros((1, fam.classes))
    z[0, 0] = 10.0
    lab = np.array([0])
    r = run(f, _case(fmt, z, lab, fam))
    if not r.ok or r.value is None:
        return None
    plain = float(fast.softmax_ce(z, lab, fmt).value[0])
    smooth = float(fast.softmax_ce(z, lab, fmt, label_smoothing=fam.smoothing).value[0])
    got = float(r.value[0])
    if abs(got - plain) < abs(got - smooth):
        return (
            f"ignores label_smoothing={fam.smoothing} "
            f"(returned {got:.4g}, the unsmoothed loss {plain:.4g}, not {smooth:.4g})"
        )
    return None


def _lanes() -> list[tuple[str, str]]:
    return [(label, side) for label in LABELS for side in SIDES]


class FirstVerdicts:
    """The first verdicts given for each (lane, ordinal) of a search, kept so that a point
    evaluated again (in a batch of another shape, where XLA may round otherwise) keeps
    them: :meth:`settle` returns the masks with every point seen before set back to its
    first verdicts (and a point twice in one batch to its first occurrence's), and counts
    in ``changed`` the points whose verdicts differed.  Vectorised: per lane, the seen
    ordinals are one sorted array, the verdicts one packed integer per point."""

    def __init__(self) -> None:
        self.changed = 0
        self._names: list[str] | None = None
        self._seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def settle(
        self, lane_ids: np.ndarray, ordinals: np.ndarray, masks: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        if self._names is None:
            self._names = list(masks)
        names = self._names
        if len(names) > 62 or set(masks) != set(names):
            raise ValueError(f"the criteria changed during the search: {list(masks)}")
        bit = np.int64(1) << np.arange(len(names), dtype=np.int64)
        packed = np.stack([masks[n] for n in names], axis=1).astype(np.int64) @ bit
        lanes = np.asarray(lane_ids, dtype=np.int64)
        ords = np.asarray(ordinals).astype(np.uint64)
        for lane in np.unique(lanes).tolist():
            at = np.flatnonzero(lanes == lane)
            packed[at] = self._settle_lane(lane, ords[at], packed[at])
        return {n: (packed & bit[j]) != 0 for j, n in enumerate(names)}

    def _settle_lane(self, lane: int, ords: np.ndarray, packed: np.ndarray) -> np.ndarray:
        known, known_bits = self._seen.get(
            lane, (np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64))
        )
        idx = np.searchsorted(known, ords)
        hit = idx < known.size
        hit[hit] = known[idx[hit]] == ords[hit]
        out = packed.copy()
        old = known_bits[idx[hit]]
        self.changed += int(np.count_nonzero(old != out[hit]))
        out[hit] = old
        new = np.flatnonzero(~hit)
        if new.size:
            fresh, first = np.unique(ords[new], return_index=True)
            fresh_bits = out[new][first]
            again = fresh_bits[np.searchsorted(fresh, ords[new])]
            self.changed += int(np.count_nonzero(again != out[new]))
            out[new] = again
            merged = np.concatenate([known, fresh])
            order = np.argsort(merged, kind="stable")
            self._seen[lane] = (merged[order], np.concatenate([known_bits, fresh_bits])[order])
        return out


def _sweep_row(
    f: Formulation,
    fmt: FloatFormat,
    fam: Family,
    base: np.ndarray,
    m: np.ndarray,
    labels: np.ndarray,
    ref: fast.Reference,
) -> Row:
    z = family_rows(base, m)
    why = _ignores_smoothing(f, fmt, fam) if f.missing() is None else None
    result = _run(f, fmt, z, labels, fam)
    if why is not None and result.ok:
        result = dataclasses.replace(result, status="not applicable", reason=why)
    row = row_from(result)
    row.code = result.code
    row.family = fam.name
    if not result.ok:
        return row
    meas, ulps, gulps = measure(fmt, result, ref, logits=z)
    row.measures = meas
    limit = plot_limit(fmt)
    row.plot = {"value": plot_bins(m, ulps, limit), "grad": plot_bins(m, gulps, limit)}
    lanes = _lanes()
    if fmt.bits == 16:
        masks = criteria(fmt, result, ref, logits=z)
        lane_of = np.full(m.shape, -1, dtype=np.int64)
        for i, (label, side) in enumerate(lanes):
            mine = (labels == LABELS.index(label)) & (np.sign(m) == _sign(label, side))
            lane_of[mine & np.isfinite(m)] = i
        found = onsets_from_masks(m, lane_of, masks, len(lanes))
        method = "every finite value"
    else:
        signs = np.array([_sign(label, side) for label, side in lanes], dtype=np.float64)
        ids = np.array([LABELS.index(label) for label, _ in lanes])

        # The first answer for a (lane, margin) stands: XLA's results can depend on the
        # batch's shape, and the search must not see a value change its mind.
        verdicts = FirstVerdicts()

        def evaluate(lane_ids: np.ndarray, ordinals: np.ndarray) -> dict[str, np.ndarray] | None:
            mm = signs[lane_ids] * magnitudes(ordinals, fmt)
            lab = ids[lane_ids]
            zz = family_rows(base, mm)
            r = _run(f, fmt, zz, lab, fam)
            if not r.ok:
                return None
            return verdicts.settle(lane_ids, ordinals, _exact_criteria(fmt, r, zz, lab, fam))

        clean = CLEAN if fmt.bits == 32 else WINDOW  # as the BCE audit's search
        ords = search(evaluate, fmt, len(lanes), list(CRITERIA), clean=clean)
        found = {
            key: None if k is None else signs[key[0]] * float(magnitudes(np.array([k]), fmt)[0])
            for key, k in ords.items()
        }
        method = f"grid, 64-way bisection, windows down to {clean} clean values"
        if verdicts.changed:
            row.notes.append(
                f"{verdicts.changed} margins gave another verdict when run again in a batch of "
                "another shape; the search kept the first"
            )
    row.onsets = [
        Onset(f.name, fmt.name, label, side, c, found[(i, c)], method, fam.name)
        for i, (label, side) in enumerate(lanes)
        for c in CRITERIA
        if (i, c) in found
    ]
    return row


# --- the target-masked family: behaviour, not breakpoints -------------------------------

#: Margins of the target-masked rows.
MASKED_MARGINS = (-30.0, 0.0, 30.0)


def masked_cases(fmt: FloatFormat, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{case: (rows, labels)}``: ``target masked`` (the runner-up, the label, is
    ``-inf``; the margins :data:`MASKED_MARGINS`) and ``all masked``."""
    fam = _BY_NAME["target masked"]
    base = base_row(fam, fmt, seed)
    z = family_rows(base, fmt.round(np.asarray(MASKED_MARGINS)))
    z[:, 1] = -np.inf
    every = np.full((1, fam.classes), -np.inf)
    return {
        "target masked": (z, np.ones(z.shape[0], dtype=np.int64)),
        "all masked": (every, np.ones(1, dtype=np.int64)),
    }


def _words(x: np.ndarray) -> str:
    """What an array of results is: ``NaN``, ``inf``, ``finite``, or a mix."""
    kinds = []
    if np.isnan(x).any():
        kinds.append("NaN")
    if np.isinf(x).any():
        kinds.append("inf")
    if np.isfinite(x).any():
        kinds.append("finite")
    return "/".join(kinds) or "empty"


def _behaviour(result: RunResult, ref: fast.Reference, fmt: FloatFormat) -> dict[str, Any]:
    """How one path's results on a masked case compare with the exact limit: the kind
    of each result (NaN, infinite, finite) and, for the gradient, the largest relative
    error of the finite entries (the dtype's rounding, not the masking)."""
    assert result.value is not None
    v, ev = result.value, np.asarray(ref.value, dtype=np.float64)
    out: dict[str, Any] = {
        "loss": _words(v),
        "exact_loss": _words(ev),
        "loss_matches": bool(np.all((v == ev) | (np.isnan(v) & np.isnan(ev)))),
    }
    if result.grad is not None:
        g, eg = result.grad, fmt.round(np.asarray(ref.grad, dtype=np.float64))
        # the same kind (NaN, infinite, finite) entry by entry; how far, as a number
        same = (np.isnan(g) == np.isnan(eg)) & (np.isinf(g) == np.isinf(eg))
        with np.errstate(all="ignore"):
            both = np.isfinite(g) & np.isfinite(eg) & (eg != 0)
            rel = np.abs(g[both] - eg[both]) / np.abs(eg[both])
        out.update(
            grad=_words(g),
            exact_grad=_words(eg),
            grad_matches=bool(same.all()),
            grad_max_relative=float(rel.max()) if rel.size else None,
        )
    else:
        out.update(grad=None, exact_grad=_words(np.asarray(ref.grad, dtype=np.float64)))
    return out


def classify_masked(behaviour: dict[str, Any]) -> str:
    """One phrase: ``as the limit`` (the exact loss, and a gradient of the limit's kind
    entry by entry), ``NaN`` (a NaN where the limit is defined), ``off the limit``, or
    for an undefined row whether the path returned NaN."""
    exact_defined = behaviour["exact_loss"] != "NaN"
    nan = "NaN" in behaviour["loss"] or "NaN" in (behaviour.get("grad") or "")
    if not exact_defined:
        return "undefined (exact NaN)" if nan else "defined where exact is undefined"
    if behaviour["loss_matches"] and behaviour.get("grad_matches", True):
        return "as the limit"
    return "NaN" if nan else "off the limit"


def _masked_row(f: Formulation, fmt: FloatFormat, seed: int, fam: Family) -> Row:
    cases = masked_cases(fmt, seed)
    rows: dict[str, Any] = {}
    first: RunResult | None = None
    for case, (z, labels) in cases.items():
        result = run(f, _case(fmt, z, labels, fam))
        first = first or result
        if not result.ok:
            return _with_family(row_from(result), fam)
        ref = fast.softmax_ce(z, labels, fmt)
        b = _behaviour(result, ref, fmt)
        b["class"] = classify_masked(b)
        rows[case] = b
    assert first is not None
    row = _with_family(row_from(first), fam)
    row.behaviour = rows
    return row


def _with_family(row: Row, fam: Family) -> Row:
    row.family = fam.name
    return row


def run_dtype(settings: Any, dtype: str, emit: Any) -> None:
    """The softmax counterpart of :func:`logitlab.analysis.audit._run_dtype`: one
    ``reference`` event for the dtype, then one row per family and formulation."""
    from logitlab.formulations import get

    fmt = get_format(dtype)
    families = [_BY_NAME[n] for n in getattr(settings, "families", None) or DEFAULT_FAMILIES]
    m = logit_points(fmt, settings.points, settings.seed)
    m = m[np.isfinite(m)]  # an infinite logit makes the row's differences NaN in torch too
    labels = np.repeat(np.array([0, 1]), m.size)
    mm = np.tile(m, 2)
    refs: dict[str, tuple[np.ndarray, fast.Reference]] = {}
    start = time.perf_counter()
    points = fallback = 0
    for fam in families:
        if not fam.sweep:
            continue
        base = base_row(fam, fmt, settings.seed)
        ref = fast.softmax_ce(family_rows(base, mm), labels, fmt, label_smoothing=fam.smoothing)
        refs[fam.name] = (base, ref)
        points += mm.size
        fallback += ref.fallback
    notes = [f"softmax family {f.name}: {f.summary}" for f in families]
    notes.append(
        f"labels: class 0 (t=swept, its logit m) and class 1 (t=other, logit 0), {fmt.name}"
    )
    emit(
        "reference",
        {
            "dtype": dtype,
            "points": points,
            "seconds": time.perf_counter() - start,
            "mpmath_fallback": fallback,
            "notes": notes,
            "edges": edges(fmt).named(fmt),
        },
    )
    for fam in families:
        for name in settings.formulations:
            f = get(name)
            if fam.sweep:
                base, ref = refs[fam.name]
                emit("row", _sweep_row(f, fmt, fam, base, mm, labels, ref))
            else:
                emit("row", _masked_row(f, fmt, settings.seed, fam))
