"""logitlab: see, measure and fix what floating point does to probabilities, logits and losses.

The package imports nothing heavy on its own: :func:`compare` and :func:`audit` (which load
NumPy and torch) are imported on first use, so ``logitlab lint`` starts fast.

Layout, in the direction data flows:

* :mod:`logitlab.core`: formats, ULP errors, number formatting, validated inputs;
* :mod:`logitlab.exact`: the exact reference (mpmath) and its fast, proven path;
* :mod:`logitlab.formulations`: the catalogue of real code paths, and the one run;
* :mod:`logitlab.analysis`: the analysis core (flags, saturation, breakpoints, compare,
  curves, audit, explanations);
* :mod:`logitlab.ui`: presentation only (CLI, reports, explorer, widget);
* :mod:`logitlab.stable`: accurate losses; :mod:`logitlab.lint`: the linter, which stands apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from logitlab._version import __version__
from logitlab.core.errors import InputError

if TYPE_CHECKING:
    from logitlab import watch as watch
    from logitlab.analysis.audit import AuditResult, audit
    from logitlab.analysis.compare import Comparison, compare

__all__ = [
    "AuditResult",
    "Comparison",
    "InputError",
    "__version__",
    "audit",
    "compare",
    "watch",
]

_LAZY = {
    "AuditResult": "logitlab.analysis.audit",
    "Comparison": "logitlab.analysis.compare",
    "audit": "logitlab.analysis.audit",
    "compare": "logitlab.analysis.compare",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "watch":
        # the module itself is callable: logitlab.watch() is logitlab.watch.watch()
        module = importlib.import_module("logitlab.watch")
        globals()[name] = module
        return module
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'logitlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"watch"})
