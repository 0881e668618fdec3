"""``logitlab lint``: find probability-space loss code and rewrite it in logit space.

Detection uses only :mod:`ast` and never imports a framework; fixes use LibCST, imported
only when fixes are asked for (``logitlab.lint._fixes``).
"""

from logitlab.lint._codes import CODES, Code
from logitlab.lint._engine import Options, lint_paths, lint_source
from logitlab.lint._finding import Edit, Finding, Fix

__all__ = [
    "CODES",
    "Code",
    "Edit",
    "Finding",
    "Fix",
    "Options",
    "lint_paths",
    "lint_source",
]
