"""Audit: many inputs x formulations x dtypes -> errors, breakpoints, reports and plots.

The names below load on first use, so importing ``logitlab.audit.cli`` (which the
``logitlab`` command does at start-up) brings in neither NumPy nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from logitlab.audit._measure import Breakpoint, ErrorStats, Measures
    from logitlab.audit._run import (
        DEFAULT_POINTS,
        QUANTITIES,
        AuditResult,
        Row,
        Settings,
        audit,
    )

__all__ = [
    "DEFAULT_POINTS",
    "QUANTITIES",
    "AuditResult",
    "Breakpoint",
    "ErrorStats",
    "Measures",
    "Row",
    "Settings",
    "audit",
]

_HOME = {
    "Breakpoint": "_measure",
    "ErrorStats": "_measure",
    "Measures": "_measure",
    "DEFAULT_POINTS": "_run",
    "QUANTITIES": "_run",
    "AuditResult": "_run",
    "Row": "_run",
    "Settings": "_run",
    "audit": "_run",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"logitlab.audit.{_HOME[name]}"), name)
    raise AttributeError(f"module 'logitlab.audit' has no attribute {name!r}")
