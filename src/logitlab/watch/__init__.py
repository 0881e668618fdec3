"""``logitlab.watch``: see what a *running* PyTorch job does to probabilities.

::

    import logitlab.watch

    with logitlab.watch() as w:        # or: from logitlab.watch import watch
        train()
    print(w.report())

The module is callable (``logitlab.watch()`` is :func:`watch`), so the package and the
function share one name.  Nothing here imports torch until a watcher is entered.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from logitlab.watch._kinds import KINDS, WATCH_CODES, expand_codes
from logitlab.watch._report import Finding, Report
from logitlab.watch._watcher import Watcher, WatchWarning, active, on_step, watch

if TYPE_CHECKING:
    from logitlab.watch._lightning import LightningCallback

__all__ = [
    "KINDS",
    "WATCH_CODES",
    "Finding",
    "LightningCallback",
    "Report",
    "WatchWarning",
    "Watcher",
    "active",
    "expand_codes",
    "on_step",
    "watch",
]


def __getattr__(name: str) -> Any:
    if name == "LightningCallback":
        from logitlab.watch._lightning import LightningCallback

        return LightningCallback
    raise AttributeError(f"module 'logitlab.watch' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """Lets ``logitlab.watch(...)`` call :func:`watch` while ``logitlab.watch`` stays a package."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return watch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
