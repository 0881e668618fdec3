"""Which pip extra installs which module, and a one-line error when one is missing.

Standard library only: the CLI checks here before importing anything heavy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from logitlab.core.errors import InputError

__all__ = ["EXTRA_OF", "MissingExtra", "install_hint", "missing_modules", "require"]

#: The extra that brings each optional module.
EXTRA_OF = {
    "numpy": "numeric",
    "mpmath": "numeric",
    "ml_dtypes": "numeric",
    "array_api_compat": "numeric",
    "torch": "torch",
    "libcst": "lint",
    "fastapi": "web",
    "uvicorn": "web",
    "plotly": "notebook",
    "swagger_ui_bundle": "web",
    "ipywidgets": "notebook",
    "matplotlib": "audit",
    "scipy": "scipy",
    "sklearn": "sklearn",
    "jax": "jax",
    "optax": "jax",
    "keras": "keras",
    "kornia": "kornia",
    "torchvision": "torchvision",
    "lightning": "lightning",
}

#: What each command needs before it can start.
NUMERIC = ("numpy", "mpmath", "ml_dtypes", "array_api_compat", "torch")


class MissingExtra(InputError):
    """A command needs a module that is not installed; the message says which extra."""


def install_hint(module: str) -> str:
    extra = EXTRA_OF.get(module)
    return f"pip install 'logitlab[{extra}]'" if extra else f"pip install {module}"


def missing_modules(modules: Sequence[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(what: str, modules: Sequence[str] = NUMERIC) -> None:
    """Raise :class:`MissingExtra` naming ``what`` (a command or flag) and the extra to
    install when one of ``modules`` is missing."""
    missing = missing_modules(modules)
    if missing:
        raise MissingExtra(
            what, f"needs {missing[0]}, which is not installed: {install_hint(missing[0])}"
        )
