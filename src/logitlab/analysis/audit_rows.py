"""What the BCE/elementwise audit (:mod:`logitlab.analysis.audit`) and the softmax one
(:mod:`logitlab.analysis.audit_softmax`) share: rows, plot bins, the plots' range, and
how one :class:`~logitlab.formulations.run.RunResult` becomes a row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab.analysis.breakpoints import Onset
from logitlab.analysis.points import edges
from logitlab.core.formats import FloatFormat
from logitlab.formulations.run import RunResult

__all__ = ["PLOT_BINS", "Row", "plot_bins", "plot_limit", "row_from"]

#: Bins of z in each plotted line.
PLOT_BINS = 300


@dataclass
class Row:
    """One (formulation, dtype): its status and, when it ran, what was measured.

    ``status`` is ``ok``, ``skipped`` (framework not installed), ``not applicable`` or
    ``error`` (the framework refused; ``reason`` has its message).  ``onsets`` are the
    breakpoints (:class:`~logitlab.analysis.breakpoints.Onset`, one per target x side x
    criterion); ``family`` names the softmax audit's family of rows; ``plot`` holds
    per-bin maxima of the ULP errors against z for the plots.
    """

    name: str
    framework: str
    code: str
    dtype: str
    status: str
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    measures: Any = None
    seconds: float = 0.0
    has_autograd: bool = True
    plot: dict[str, Any] = field(default_factory=dict)
    onsets: list[Onset] = field(default_factory=list)
    #: The softmax audit's family of rows (``None`` for the other quantities).
    family: str | None = None
    #: For families that are classified rather than measured (softmax ``target
    #: masked``): per case, what the path returned against the exact limit.
    behaviour: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "formulation": self.name,
            "family": self.family,
            "framework": self.framework,
            "code": self.code,
            "dtype": self.dtype,
            "status": self.status,
            "reason": self.reason,
            "notes": list(self.notes),
            "seconds": self.seconds,
            "autograd": self.has_autograd,
            "measures": None if self.measures is None else self.measures.to_dict(),
            "breakpoints": [o.to_dict() for o in self.onsets],
            "behaviour": self.behaviour,
        }


def row_from(result: RunResult, notes: list[str] | None = None) -> Row:
    """A row with ``result``'s status, reason, code, time and precision notes."""
    f = result.formulation
    return Row(
        f.name,
        f.framework,
        result.code,
        result.dtype.name,
        result.status,
        result.reason,
        notes=[*(notes or []), *result.notes()],
        seconds=result.seconds,
        has_autograd=result.grad is not None if result.ok else True,
    )


def plot_limit(fmt: FloatFormat) -> float:
    """Plots show |z| up to twice where sigmoid rounds to 0 (the table covers the rest)."""
    return 2 * abs(edges(fmt).sigmoid_zero)


def plot_bins(z: np.ndarray, ulps: np.ndarray | None, limit: float) -> dict[str, list[float]]:
    """The largest ULP error in each of :data:`PLOT_BINS` bins of a symmetric log axis."""
    if ulps is None:
        return {}
    ok = np.isfinite(z) & (np.abs(z) <= limit)
    if not ok.any():
        return {}
    u = np.sign(z[ok]) * np.log10(1 + np.abs(z[ok]))  # a symmetric log axis
    e = np.where(np.isnan(ulps[ok]), np.inf, ulps[ok])
    edges_ = np.linspace(u.min(), u.max(), PLOT_BINS + 1)
    which = np.clip(np.searchsorted(edges_, u, side="right") - 1, 0, PLOT_BINS - 1)
    top = np.full(PLOT_BINS, -1.0)
    np.maximum.at(top, which, e)
    centres = (edges_[:-1] + edges_[1:]) / 2
    zc = np.sign(centres) * (10 ** np.abs(centres) - 1)
    keep = top >= 0
    return {"z": zc[keep].tolist(), "ulp": top[keep].tolist()}
