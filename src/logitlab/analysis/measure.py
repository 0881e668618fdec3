"""What an audit measures for one (formulation, dtype): errors and flag counts.

All functions take whole arrays: the computed values (float64 holding what the framework
returned, from :func:`logitlab.formulations.run.run`), the reference
(:class:`logitlab.exact.fast.Reference` arrays) and the logits.  Flags are counted through
:func:`logitlab.analysis.flags.classify` (one definition of each); breakpoints live in
:mod:`logitlab.analysis.breakpoints`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab.analysis.breakpoints import (
    BREAKPOINT_RELATIVE_ERROR,
    Onset,
    breakpoint_threshold,
)
from logitlab.analysis.flags import classify_run
from logitlab.core.formats import FloatFormat
from logitlab.exact import fast
from logitlab.formulations.run import RunResult

__all__ = [
    "BREAKPOINT_RELATIVE_ERROR",
    "Breakpoint",
    "ErrorStats",
    "Measures",
    "breakpoint_threshold",
    "error_stats",
    "measure",
    "relative_errors",
]

#: The audit's breakpoints are :class:`~logitlab.analysis.breakpoints.Onset` objects.
Breakpoint = Onset


def relative_errors(computed: Any, exact: np.ndarray) -> np.ndarray:
    """``|computed - exact| / |exact|`` elementwise, in the reference's precision.

    0 for a computed 0 against an exact 0 (inf for anything else), 0 for matching
    infinities, inf for any other infinity, NaN for NaN.
    """
    c = np.asarray(computed, dtype=np.float64).astype(exact.dtype)
    with np.errstate(all="ignore"):
        rel = np.abs(c - exact) / np.abs(exact)
    rel = rel.astype(np.float64)
    zero = exact == 0
    rel[zero] = np.where(c[zero] == 0, 0.0, np.inf)
    inf = np.isinf(c) | np.isinf(exact)
    same = inf & (c == exact)
    rel[inf] = np.inf
    rel[same] = 0.0
    rel[np.isnan(c) | np.isnan(exact)] = np.nan
    return rel


@dataclass(frozen=True)
class ErrorStats:
    """ULP and relative errors of one output (the loss or its gradient) over all points.

    ``max_ulp`` and ``p99_ulp`` ignore NaN results (counted in ``nan``); an infinite result
    where the exact value is finite has an infinite error and counts in ``inf``.
    """

    max_ulp: float
    p99_ulp: float
    max_relative: float
    share_above_1ulp: float
    nan: int
    inf: int

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def error_stats(ulps: np.ndarray, rels: np.ndarray, computed: Any, exact: np.ndarray) -> ErrorStats:
    """Summarise per-point errors (see :class:`ErrorStats`)."""
    c = np.asarray(computed, dtype=np.float64)
    finite_exact = np.isfinite(exact)
    nan = int(np.count_nonzero(np.isnan(c)))
    inf = int(np.count_nonzero(np.isinf(c) & finite_exact))
    valid = ulps[~np.isnan(ulps)]
    rel = rels[~np.isnan(rels)]
    if valid.size == 0:
        return ErrorStats(math.nan, math.nan, math.nan, math.nan, nan, inf)
    share = float(np.count_nonzero(~(ulps <= 1.0))) / ulps.size  # NaN counts as above
    return ErrorStats(
        max_ulp=float(valid.max()),
        p99_ulp=float(np.percentile(valid, 99, method="higher")),
        max_relative=float(rel.max()) if rel.size else math.nan,
        share_above_1ulp=share,
        nan=nan,
        inf=inf,
    )


@dataclass
class Measures:
    """Everything measured for one (formulation, dtype) on the audit's points; ``counts``
    are :meth:`~logitlab.analysis.flags.ElementFlags.counts` (elements per flag)."""

    points: int
    value: ErrorStats
    grad: ErrorStats | None
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "value": self.value.to_dict(),
            "grad": None if self.grad is None else self.grad.to_dict(),
            "counts": dict(self.counts),
        }


def _ulps_per_row(ulps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    u = np.where(np.isnan(ulps), np.inf, ulps)
    return u if u.shape == shape else u.reshape(*shape, -1).max(axis=-1)


def measure(
    fmt: FloatFormat,
    result: RunResult,
    ref: fast.Reference,
    *,
    logits: Any = None,
    weight: Any = None,
) -> tuple[Measures, np.ndarray, np.ndarray | None]:
    """Measure one run (status ``ok``); also return per-element ULP errors of the value
    and of the gradient (the largest over a softmax row's classes) for the plots."""
    assert result.value is not None
    value = result.value
    ulps = fast.ulp_errors(value, ref.value, fmt)
    vstats = error_stats(ulps, relative_errors(value, ref.value), value, ref.value)
    gstats = gulps = None
    if result.grad is not None:
        g = result.grad.ravel()
        eg = np.asarray(ref.grad).ravel()
        gulps_all = fast.ulp_errors(g, eg, fmt)
        gstats = error_stats(gulps_all, relative_errors(g, eg), g, eg)
        gulps = _ulps_per_row(gulps_all.reshape(result.grad.shape), value.shape)
    exact_value, exact_grad = ref.rounded(fmt)
    flags = classify_run(
        result,
        value=value,
        exact_value=exact_value,
        grad=result.grad,
        exact_grad=None if result.grad is None else exact_grad,
        logits=logits,
        weight=weight,
    )
    return Measures(int(value.size), vstats, gstats, flags.counts()), ulps, gulps
