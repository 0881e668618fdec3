"""The explorer: the post's sliders as a web page (``logitlab explore``) and a notebook widget.

Nothing heavy is imported here: :func:`notebook_explorer` imports ipywidgets and
:func:`create_app` imports FastAPI when first used, so ``logitlab --help`` stays fast and
works without the ``web`` or ``notebook`` extras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from logitlab.ui.explore._notebook import notebook_explorer
    from logitlab.ui.explore.app import create_app

__all__ = [
    "create_app",
    "notebook_explorer",
]

_LAZY = {
    "create_app": "logitlab.ui.explore.app",
    "notebook_explorer": "logitlab.ui.explore._notebook",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'logitlab.ui.explore' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
