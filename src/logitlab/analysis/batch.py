"""A large batch, every code path: error statistics, histograms, flag counts, worst elements.

:func:`compare_batch` is what ``logitlab compare`` does for a batch too large for one row
per element.  It measures exactly what :func:`logitlab.analysis.compare.compare` measures,
per element, with the same tools, but vectorised:

* each formulation runs **once** on the whole batch with ``reduction="none"`` through
  :func:`logitlab.formulations.run.run` (and once more with the batch's own reduction, for
  the reduced loss the framework returns);
* the exact reference is :func:`logitlab.exact.fast.bce`, proven against mpmath in the
  tests; it recomputes in mpmath only the gradients it cannot vouch for (counted in
  :attr:`BatchSummary.fallback`);
* ULP errors come from :func:`logitlab.exact.fast.ulp_errors`, relative errors from
  :func:`logitlab.analysis.measure.relative_errors`, flags from
  :func:`logitlab.analysis.flags.classify` (exact values rounded to the dtype), as in
  compare.  Gradients are the elementwise ``d loss_i / d z_i`` (what compare shows for
  ``reduction="none"``).

ULP histogram bins (:data:`HISTOGRAM_BINS`): exactly 0, (0, 0.5], (0.5, 1], (1, 4],
(4, 2**10], (2**10, inf), inf (an infinite result where the exact value is finite, or the
other way round), NaN.  A correctly rounded result falls in the first three.

The exact reduced loss is the sum of the reference's per-element values, added exactly
with :func:`math.fsum` (float64 pieces; a longdouble value is split into two float64
pieces first) and kept as a double-double, then divided by the element count for
``mean`` in the working format.  Each per-element value carries a relative error of a few
units ``u`` of the working format (``2**-53`` for float16/bfloat16/float32, ``2**-64`` for
float64: :mod:`logitlab.exact.fast`), so the reduced value's relative error is at most
``c u * sum|l_i| / |sum l_i| + 2**-106`` (plus ``u`` for ``mean``), that is ``c u`` when
the weights are non-negative (every ``l_i >= 0``): below ``2**-48`` relative for float32
and ``2**-59`` for float64, far under a ULP of the dtype.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from logitlab.analysis.compare import select_formulations
from logitlab.analysis.flags import FLAGS, GRAD_FLAGS, LOSS_FLAGS, ElementFlags, classify_run
from logitlab.analysis.measure import relative_errors
from logitlab.core.batch_file import batch_case, read_batch
from logitlab.core.formats import FloatFormat, get_format
from logitlab.core.inputs import BCECase
from logitlab.core.numbers import json_number, shortest_repr
from logitlab.exact import fast
from logitlab.formulations import Formulation
from logitlab.formulations.run import run

__all__ = [
    "HISTOGRAM_BINS",
    "SUMMARY_THRESHOLD",
    "BatchSummary",
    "Element",
    "PathSummary",
    "Reduced",
    "SideStats",
    "compare_batch",
    "exact_reduced",
    "from_file",
    "histogram",
    "resolve_dtype",
]

#: Batches with more elements than this get the summary rather than per-element tables.
SUMMARY_THRESHOLD = 20
#: The ULP error histogram's bins, in order.
HISTOGRAM_BINS = ("0", "(0, 0.5]", "(0.5, 1]", "(1, 4]", "(4, 1024]", "(1024, inf)", "inf", "NaN")
_EDGES = (0.5, 1.0, 4.0, 1024.0)
#: How many worst elements each path lists, for the loss and for the gradient.
WORST = 5


def histogram(ulps: np.ndarray) -> dict[str, int]:
    """Counts of ``ulps`` in each of :data:`HISTOGRAM_BINS`.

    >>> list(histogram(np.array([0.0, 0.5, 0.7, 1.0, 3.0, 5.0, 2e3, np.inf, np.nan])).values())
    [1, 1, 2, 1, 1, 1, 1, 1]
    """
    u = np.asarray(ulps, dtype=np.float64).ravel()
    nan = np.isnan(u)
    inf = np.isinf(u)
    finite = u[~nan & ~inf]
    zero = int(np.count_nonzero(finite == 0))
    positive = finite[finite > 0]
    # right-closed bins: searchsorted(..., "left") puts x == edge in the bin ending there
    counts = np.bincount(np.searchsorted(_EDGES, positive, side="left"), minlength=5)
    values = [zero, *(int(c) for c in counts), int(np.count_nonzero(inf)), int(nan.sum())]
    return dict(zip(HISTOGRAM_BINS, values))


@dataclass(frozen=True)
class SideStats:
    """Errors of the loss or of the gradient over the batch.

    ``max_ulp``, ``p50_ulp`` and ``p99_ulp`` (the value at or above that share of the
    elements) ignore NaN errors, counted in ``nan``; ``flags`` counts the elements each
    flag of this side holds for.
    """

    max_ulp: float
    p50_ulp: float
    p99_ulp: float
    max_relative: float
    nan: int
    histogram: dict[str, int]
    flags: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_ulp_error": json_number(self.max_ulp),
            "p50_ulp_error": json_number(self.p50_ulp),
            "p99_ulp_error": json_number(self.p99_ulp),
            "max_relative_error": json_number(self.max_relative),
            "nan_errors": self.nan,
            "histogram": dict(self.histogram),
            "flags": dict(self.flags),
        }


def _side(ulps: np.ndarray, rels: np.ndarray, masks: dict[str, np.ndarray]) -> SideStats:
    valid = ulps[~np.isnan(ulps)]
    rel = rels[~np.isnan(rels)]

    def pct(q: float) -> float:
        return float(np.percentile(valid, q, method="higher")) if valid.size else math.nan

    return SideStats(
        max_ulp=float(valid.max()) if valid.size else math.nan,
        p50_ulp=pct(50),
        p99_ulp=pct(99),
        max_relative=float(rel.max()) if rel.size else math.nan,
        nan=int(ulps.size - valid.size),
        histogram=histogram(ulps),
        flags={name: int(np.count_nonzero(m)) for name, m in masks.items()},
    )


@dataclass(frozen=True)
class Element:
    """One element of the batch, as a path computed it: flat ``index``, logit ``z`` and
    target ``y`` (dtype values), the path's ``value`` and the ``exact`` one rounded to the
    dtype, its ULP error and that side's flags."""

    index: int
    z: float
    y: float
    value: float
    exact: float
    ulp_error: float
    flags: tuple[str, ...]

    def to_dict(self, fmt: FloatFormat) -> dict[str, Any]:
        return {
            "index": self.index,
            "z": json_number(self.z),
            "y": json_number(self.y),
            "value": json_number(self.value),
            "value_repr": shortest_repr(self.value, fmt),
            "exact": json_number(self.exact),
            "exact_repr": shortest_repr(self.exact, fmt),
            "ulp_error": json_number(self.ulp_error),
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class Reduced:
    """The reduced loss (``mean`` or ``sum``) the path returned, against the exact one."""

    reduction: str
    value: float
    exact: float
    ulp_error: float
    relative_error: float

    def to_dict(self, fmt: FloatFormat) -> dict[str, Any]:
        return {
            "reduction": self.reduction,
            "value": json_number(self.value),
            "value_repr": shortest_repr(self.value, fmt),
            "exact": json_number(self.exact),
            "ulp_error": json_number(self.ulp_error),
            "relative_error": json_number(self.relative_error),
        }


@dataclass(frozen=True)
class PathSummary:
    """One formulation on the batch.  ``status``/``reason`` as in compare's rows; the rest
    is ``None``/empty unless it ran.  ``ulp_error``, ``grad_ulp_error`` and
    ``element_flags`` keep the per-element results (not in :meth:`to_dict`)."""

    formulation: Formulation
    code: str
    status: str
    reason: str | None = None
    loss: SideStats | None = None
    grad: SideStats | None = None
    flag_counts: dict[str, int] = field(default_factory=dict)
    worst_loss: tuple[Element, ...] = ()
    worst_grad: tuple[Element, ...] = ()
    reduced: Reduced | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    ulp_error: np.ndarray | None = None
    grad_ulp_error: np.ndarray | None = None
    element_flags: ElementFlags | None = None

    def to_dict(self, fmt: FloatFormat) -> dict[str, Any]:
        return {
            "name": self.formulation.name,
            "framework": self.formulation.framework,
            "via_probabilities": self.formulation.via_probabilities,
            "code": self.code,
            "status": self.status,
            "reason": self.reason,
            "loss": None if self.loss is None else self.loss.to_dict(),
            "grad": None if self.grad is None else self.grad.to_dict(),
            "flag_counts": dict(self.flag_counts),
            "worst_loss": [e.to_dict(fmt) for e in self.worst_loss],
            "worst_grad": [e.to_dict(fmt) for e in self.worst_grad],
            "reduced": None if self.reduced is None else self.reduced.to_dict(fmt),
            "notes": list(self.notes),
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class BatchSummary:
    """Every path's summary on one batch.  ``dtype_source`` says where the dtype came from
    (``"--dtype"``, ``"file"`` or ``"default"``); ``fallback`` counts the gradients the fast
    reference recomputed in mpmath."""

    case: BCECase
    paths: tuple[PathSummary, ...]
    source: str
    dtype_source: str
    fallback: int
    exact_reduced: float | None
    seconds: dict[str, float]
    notes: tuple[str, ...] = ()

    @property
    def dtype(self) -> FloatFormat:
        return self.case.dtype

    @property
    def size(self) -> int:
        return int(self.case.logits.size)

    def path(self, name: str) -> PathSummary:
        for p in self.paths:
            if p.formulation.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        fmt = self.dtype
        case = self.case
        return {
            "mode": "summary",
            "source": self.source,
            "dtype": fmt.name,
            "dtype_source": self.dtype_source,
            "elements": self.size,
            "shape": list(case.shape),
            "reduction": case.reduction,
            "weight": case.weight is not None,
            "pos_weight": case.pos_weight is not None,
            "histogram_bins": list(HISTOGRAM_BINS),
            "reference": {
                "method": "logitlab.exact.fast (vectorised, proven against mpmath)",
                "mpmath_fallback": self.fallback,
                "exact_reduced": (
                    None if self.exact_reduced is None else json_number(self.exact_reduced)
                ),
            },
            "paths": [p.to_dict(fmt) for p in self.paths],
            "flags": dict(FLAGS),
            "seconds": dict(self.seconds),
            "notes": list(self.notes),
        }


def resolve_dtype(explicit: str | None, file_dtype: str | None) -> tuple[FloatFormat, str]:
    """The dtype to measure in and where it came from: an explicit ``--dtype`` wins, then
    the file's float format, else float32."""
    if explicit is not None:
        return get_format(explicit), "--dtype"
    if file_dtype is not None:
        return get_format(file_dtype), "file"
    return get_format("float32"), "default"


def exact_reduced(values: np.ndarray, reduction: str, n: int) -> np.ndarray:
    """The exact sum or mean of per-element reference ``values`` as a 0-d array of their
    working type (see the module docstring for the bound)."""
    v = np.asarray(values).ravel()
    work = v.dtype.type
    if v.dtype == np.longdouble:
        hi = v.astype(np.float64)
        lo = (v - hi.astype(np.longdouble)).astype(np.float64)
        pieces = np.concatenate([hi, lo])
    else:
        pieces = v.astype(np.float64)
    if not np.isfinite(pieces).all():
        with np.errstate(invalid="ignore"):
            total = np.asarray(np.sum(v), dtype=v.dtype)
    else:
        listed = pieces.tolist()
        s = math.fsum(listed)
        if math.isfinite(s):
            listed.append(-s)
            r = math.fsum(listed)
        else:
            r = 0.0
        total = np.asarray(work(s) + work(r), dtype=v.dtype)
    if reduction == "mean":
        total = np.asarray(total / work(n), dtype=v.dtype)
    return total


def _worst(
    ulps: np.ndarray,
    masks: dict[str, np.ndarray],
    value: np.ndarray,
    exact: np.ndarray,
    case: BCECase,
    k: int,
) -> tuple[Element, ...]:
    u = ulps.ravel()
    key = np.where(np.isnan(u), np.inf, u)
    flagged = np.zeros(u.shape, dtype=bool)
    for m in masks.values():
        flagged |= m.ravel()
    # flagged elements rank above unflagged ones with the same error
    interesting = (key > 0) | flagged
    idx = np.flatnonzero(interesting)
    if idx.size == 0 or k <= 0:
        return ()
    if idx.size > k:
        top = np.argpartition(-key[idx], k - 1)[:k]
        cut = key[idx][top].min()
        idx = idx[key[idx] >= cut]
    order = np.lexsort((idx, ~flagged[idx], -key[idx], ~np.isnan(u[idx])))
    chosen = idx[order][:k]
    z = case.logits.ravel()
    y = np.broadcast_to(case.targets, case.shape).ravel()
    v = value.ravel()
    e = exact.ravel()
    flat = {name: m.ravel() for name, m in masks.items()}
    return tuple(
        Element(
            index=int(i),
            z=float(z[i]),
            y=float(y[i]),
            value=float(v[i]),
            exact=float(e[i]),
            ulp_error=float(u[i]),
            flags=tuple(name for name, m in flat.items() if m[i]),
        )
        for i in chosen
    )


def _path(
    f: Formulation,
    case: BCECase,
    ref: fast.Reference,
    exact_value: np.ndarray,
    exact_grad: np.ndarray,
    reduced_exact: np.ndarray | None,
    k: int,
) -> PathSummary:
    fmt = case.dtype
    elementwise = case if case.reduction == "none" else replace(case, reduction="none")
    result = run(f, elementwise)
    if not result.ok:
        return PathSummary(f, result.code, result.status, result.reason)
    assert result.value is not None
    value = result.value.reshape(case.shape)
    ulps = fast.ulp_errors(value, ref.value, fmt)
    rels = relative_errors(value, ref.value)
    grad = gulps = grels = None
    if result.grad is not None:
        grad = result.grad.reshape(case.shape)
        gulps = fast.ulp_errors(grad, ref.grad, fmt)
        grels = relative_errors(grad, ref.grad)
    flags = classify_run(
        result,
        value=value,
        exact_value=exact_value,
        grad=grad,
        exact_grad=exact_grad,
        logits=case.logits,
        weight=case.weight,
    )
    loss_masks = {n: flags.loss[n] for n in LOSS_FLAGS if n in flags.loss}
    grad_masks = {n: flags.grad[n] for n in GRAD_FLAGS if n in flags.grad}
    loss = _side(ulps, rels, loss_masks)
    gstats = None
    worst_grad: tuple[Element, ...] = ()
    if grad is not None and gulps is not None and grels is not None:
        gstats = _side(gulps, grels, grad_masks)
        worst_grad = _worst(gulps, grad_masks, grad, exact_grad, case, k)
    reduced = None
    seconds = result.seconds
    if case.reduction != "none" and reduced_exact is not None:
        whole = run(f, case, code=result.code)
        seconds += whole.seconds
        if whole.ok and whole.value is not None:
            computed = np.asarray(whole.value, dtype=np.float64).reshape(-1)[:1]
            ex = reduced_exact.reshape(1)
            reduced = Reduced(
                case.reduction,
                float(computed[0]),
                float(ex[0]),
                float(fast.ulp_errors(computed, ex, fmt)[0]),
                float(relative_errors(computed, ex)[0]),
            )
    return PathSummary(
        f,
        result.code,
        "ok",
        None,
        loss=loss,
        grad=gstats,
        flag_counts=flags.counts(),
        worst_loss=_worst(ulps, loss_masks, value, exact_value, case, k),
        worst_grad=worst_grad,
        reduced=reduced,
        notes=tuple(result.notes()),
        seconds=seconds,
        ulp_error=ulps,
        grad_ulp_error=gulps,
        element_flags=flags,
    )


def compare_batch(
    case: BCECase,
    *,
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
    source: str = "arguments",
    dtype_source: str = "--dtype",
    worst: int = WORST,
    notes: Sequence[str] = (),
) -> BatchSummary:
    """Measure every chosen path on the whole batch ``case`` (see the module docstring)."""
    chosen = select_formulations("bce", formulations, frameworks)
    fmt = case.dtype
    start = time.perf_counter()
    ref = fast.bce(case.logits, case.targets, fmt, case.weight, case.pos_weight)
    exact_value = fmt.round(ref.value)
    exact_grad = fmt.round(ref.grad)
    reduced = None
    if case.reduction != "none":
        reduced = exact_reduced(ref.value, case.reduction, case.logits.size)
    reference_s = time.perf_counter() - start
    paths = tuple(_path(f, case, ref, exact_value, exact_grad, reduced, worst) for f in chosen)
    total = time.perf_counter() - start
    return BatchSummary(
        case=case,
        paths=paths,
        source=source,
        dtype_source=dtype_source,
        fallback=ref.fallback,
        exact_reduced=None if reduced is None else float(reduced),
        seconds={"reference": reference_s, "total": total},
        notes=(*notes, *case.notes),
    )


def case_from_file(path: str, dtype: str | None, reduction: str) -> tuple[Any, Any, str, BCECase]:
    """Read ``path`` and check it as a case: ``(data, format, where the dtype came from,
    case)``; errors name ``--from`` and the file's key."""
    data = read_batch(path)
    fmt, where = resolve_dtype(dtype, data.file_dtype)
    case = batch_case(
        data.logits,
        data.targets,
        weight=data.weight,
        pos_weight=data.pos_weight,
        reduction=reduction,
        dtype=fmt,
        names=data.keys,
        argument="--from",
    )
    return data, fmt, where, case


def from_file(
    path: str,
    *,
    dtype: str | None = None,
    reduction: str = "mean",
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
    worst: int = WORST,
) -> BatchSummary:
    """Read ``path`` (:func:`logitlab.core.batch_file.read_batch`) and summarise it."""
    data, _, where, case = case_from_file(path, dtype, reduction)
    return compare_batch(
        case,
        formulations=formulations,
        frameworks=frameworks,
        source=data.path,
        dtype_source=where,
        worst=worst,
        notes=data.notes,
    )
