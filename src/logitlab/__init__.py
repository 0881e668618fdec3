"""logitlab: see, measure and fix what floating point does to probabilities, logits and losses.

The package imports nothing heavy on its own: ``logitlab.compare`` (which loads torch)
is imported on first use, so ``logitlab lint`` starts fast.  ``logitlab.compare`` is
both the module and, called, the function ``logitlab.compare.compare``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from logitlab._errors import InputError
from logitlab._version import __version__

if TYPE_CHECKING:
    from logitlab.compare import Comparison, compare

__all__ = [
    "Comparison",
    "InputError",
    "__version__",
    "compare",
]


def __getattr__(name: str) -> Any:
    if name in ("compare", "Comparison"):
        import importlib

        module = importlib.import_module("logitlab.compare")
        return module if name == "compare" else module.Comparison
    raise AttributeError(f"module 'logitlab' has no attribute {name!r}")
