"""The one analysis core: run formulations, classify each element, find saturation points and
breakpoints, and explain what ran.

Presentation (``logitlab.ui``: CLI tables, reports, the web page, the widget) only shows what
these modules return.  Names load on first use, so importing this package is cheap.
The functions themselves are ``logitlab.compare`` and ``logitlab.audit`` (here the names
``compare`` and ``audit`` are the modules).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from logitlab.analysis.audit import AuditResult, Settings
    from logitlab.analysis.compare import Comparison, Row
    from logitlab.analysis.curves import Curve, bce_curve
    from logitlab.analysis.explain import explain
    from logitlab.analysis.measure import Breakpoint, ErrorStats, Measures
    from logitlab.analysis.saturation import Thresholds, saturation_thresholds, sigmoid_report

__all__ = [
    "AuditResult",
    "Breakpoint",
    "Comparison",
    "Curve",
    "ErrorStats",
    "Measures",
    "Row",
    "Settings",
    "Thresholds",
    "bce_curve",
    "explain",
    "saturation_thresholds",
    "sigmoid_report",
]

_HOME = {
    "AuditResult": "audit",
    "Settings": "audit",
    "Comparison": "compare",
    "Row": "compare",
    "Curve": "curves",
    "bce_curve": "curves",
    "explain": "explain",
    "Breakpoint": "measure",
    "ErrorStats": "measure",
    "Measures": "measure",
    "Thresholds": "saturation",
    "saturation_thresholds": "saturation",
    "sigmoid_report": "saturation",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"logitlab.analysis.{_HOME[name]}"), name)
    raise AttributeError(f"module 'logitlab.analysis' has no attribute {name!r}")
