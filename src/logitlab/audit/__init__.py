"""Audit: many inputs x formulations x dtypes -> errors, breakpoints, reports and plots."""

from logitlab.audit._measure import Breakpoint, ErrorStats, Measures
from logitlab.audit._run import DEFAULT_POINTS, QUANTITIES, AuditResult, Row, Settings, audit

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
