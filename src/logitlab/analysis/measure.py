"""What an audit measures for one (formulation, dtype): errors, counts and breakpoints.

All functions take whole arrays: the computed values (float64 holding what the framework
returned), the reference (:class:`logitlab.exact.fast.Reference` arrays) and the logits.
Flags mean what :data:`logitlab.analysis.compare.FLAGS` says they mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab.core.formats import FloatFormat
from logitlab.exact import fast

__all__ = [
    "BREAKPOINT_RELATIVE_ERROR",
    "Breakpoint",
    "ErrorStats",
    "Measures",
    "breakpoint",
    "breakpoint_threshold",
    "error_stats",
    "relative_errors",
    "target_class",
    "vanished",
]

#: A point is broken when its relative error exceeds this (or 2 eps of a coarser format)
#: and its error exceeds 1 ULP (a correctly rounded subnormal result can be far off in
#: relative terms without any fault of the formula).
BREAKPOINT_RELATIVE_ERROR = 1e-3


def breakpoint_threshold(fmt: FloatFormat) -> float:
    """``max(1e-3, 2 eps)``: a correctly rounded bfloat16 result is already up to 3.9e-3 off."""
    return max(BREAKPOINT_RELATIVE_ERROR, 2 * fmt.eps)


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


def vanished(grad: np.ndarray, exact_grad: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """A zero gradient where the exact one, rounded to the format, is not zero."""
    rounded = fmt.round(exact_grad.astype(np.float64))
    return (np.asarray(grad) == 0) & (rounded != 0) & ~np.isnan(rounded)


@dataclass(frozen=True)
class Breakpoint:
    """The smallest ``|z|`` of a target class where the relative error first exceeds the
    threshold (``relative``) and where the gradient first vanishes (``vanished``: zero
    where the exact gradient exceeds 2 eps of its largest term), each with its signed
    logit and target; ``None`` where it never happens."""

    relative: float | None = None
    relative_at: tuple[float, float] | None = None
    vanished: float | None = None
    vanished_at: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "relative_error": self.relative,
            "relative_error_at": list(self.relative_at) if self.relative_at else None,
            "gradient_vanishes": self.vanished,
            "gradient_vanishes_at": list(self.vanished_at) if self.vanished_at else None,
        }


def breakpoint(z: np.ndarray, bad: np.ndarray) -> tuple[float, int] | None:
    """``(min |z|, index)`` over the finite logits where ``bad`` holds, or ``None``.

    >>> breakpoint(np.array([-3.0, 1.0, 2.0, -0.5]), np.array([True, False, True, False]))
    (2.0, 2)
    """
    mask = np.asarray(bad, dtype=bool) & np.isfinite(z)
    if not mask.any():
        return None
    idx = np.flatnonzero(mask)
    i = int(idx[np.argmin(np.abs(z[idx]))])
    return float(abs(z[i])), i


def target_class(y: np.ndarray) -> np.ndarray:
    """``"y=0"``, ``"y=1"`` or ``"soft"`` for each target."""
    return np.where(y == 0, "y=0", np.where(y == 1, "y=1", "soft"))


@dataclass
class Measures:
    """Everything measured for one (formulation, dtype)."""

    points: int
    value: ErrorStats
    grad: ErrorStats | None
    counts: dict[str, int] = field(default_factory=dict)
    breakpoints: dict[str, Breakpoint] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "value": self.value.to_dict(),
            "grad": None if self.grad is None else self.grad.to_dict(),
            "counts": dict(self.counts),
            "breakpoints": {k: b.to_dict() for k, b in self.breakpoints.items()},
        }


def measure(
    fmt: FloatFormat,
    z: np.ndarray,
    y: np.ndarray | None,
    value: np.ndarray,
    grad: np.ndarray | None,
    ref: fast.Reference,
    probabilities: np.ndarray | None = None,
    clamped: np.ndarray | None = None,
    grad_clamped: np.ndarray | None = None,
    classes: np.ndarray | None = None,
) -> tuple[Measures, np.ndarray, np.ndarray | None]:
    """Measure one run; also return the per-point ULP errors (value, gradient) for plots.

    Breakpoints are found per target class (:func:`target_class` of ``y``, or ``classes``
    when given, else one class ``"all"``)."""
    ulps = fast.ulp_errors(value, ref.value, fmt)
    rels = relative_errors(value, ref.value)
    vstats = error_stats(ulps, rels, value, ref.value)
    gstats = gulps = None
    gone = np.zeros(z.shape, dtype=bool)
    if grad is not None:
        gulps = fast.ulp_errors(grad, ref.grad, fmt)
        grels = relative_errors(grad, ref.grad)
        gstats = error_stats(gulps, grels, grad, ref.grad)
        gone = vanished(grad, ref.grad, fmt)
    counts = {
        "sigmoid saturated": 0
        if probabilities is None
        else int(np.count_nonzero((probabilities == 0) | (probabilities == 1))),
        "log clamped": 0 if clamped is None else int(np.count_nonzero(clamped)),
        "gradient clamped": 0 if grad_clamped is None else int(np.count_nonzero(grad_clamped)),
        "gradient vanished": int(np.count_nonzero(gone)),
        "non-finite": int(
            np.count_nonzero(
                (~np.isfinite(value) & np.isfinite(ref.value))
                | (
                    np.zeros(z.shape, dtype=bool)
                    if grad is None
                    else (~np.isfinite(grad) & np.isfinite(ref.grad))
                )
            )
        ),
    }
    threshold = breakpoint_threshold(fmt)
    # A vanished gradient marks a breakpoint only where the exact gradient is not within
    # rounding of zero: at the zero crossing of a difference (soft targets) any code that
    # subtracts may return 0, and that is no breakdown.
    scale = np.abs(ref.grad) if ref.grad_scale is None else ref.grad_scale
    real = np.abs(ref.grad) > 2 * fmt.eps * scale
    if classes is None:
        classes = np.full(z.shape, "all") if y is None else target_class(y)
    breakpoints: dict[str, Breakpoint] = {}
    for cls in dict.fromkeys(["y=0", "y=1", "soft", "all", *np.unique(classes).tolist()]):
        in_class = classes == cls
        if not in_class.any():
            continue
        zc = np.where(in_class, z, np.nan)
        rel_bp = breakpoint(zc, ~(rels <= threshold) & ~(ulps <= 1.0))
        van_bp = breakpoint(zc, gone & real) if grad is not None else None

        def at(bp: tuple[float, int] | None) -> tuple[float, float] | None:
            if bp is None:
                return None
            return (float(z[bp[1]]), math.nan if y is None else float(y[bp[1]]))

        breakpoints[cls] = Breakpoint(
            relative=None if rel_bp is None else rel_bp[0],
            relative_at=at(rel_bp),
            vanished=None if van_bp is None else van_bp[0],
            vanished_at=at(van_bp),
        )
    return Measures(int(z.size), vstats, gstats, counts, breakpoints), ulps, gulps
