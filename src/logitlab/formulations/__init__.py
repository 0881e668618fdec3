"""The catalogue of real code paths, per framework and quantity.

Each framework's formulations live in a private module that imports nothing heavy at
import time; the framework itself is imported inside ``compute``.  A framework that is
not installed stays in the catalogue and reports why it is skipped.
"""

from __future__ import annotations

import importlib

from logitlab.core.errors import InputError
from logitlab.formulations._base import (
    QUANTITIES,
    BCEInputs,
    ElementwiseInputs,
    Formulation,
    NotApplicable,
    Outcome,
    SoftmaxInputs,
)

__all__ = [
    "QUANTITIES",
    "BCEInputs",
    "ElementwiseInputs",
    "Formulation",
    "NotApplicable",
    "Outcome",
    "SoftmaxInputs",
    "all_formulations",
    "get",
    "names",
]

# Modules that define ``FORMULATIONS: tuple[Formulation, ...]``, in display order.  A
# module that is not in this build is passed over; the frameworks themselves are only
# imported when a formulation runs.
_MODULES = (
    "logitlab.formulations._torch",
    "logitlab.formulations._torch_softmax",
    "logitlab.formulations._softmax_frameworks",
    "logitlab.formulations._focal",
    "logitlab.formulations._numpy",
    "logitlab.formulations._scipy",
    "logitlab.formulations._sklearn",
    "logitlab.formulations._keras",
    "logitlab.formulations._jax",
    "logitlab.formulations._stable",
)

_catalogue: dict[str, Formulation] | None = None


def _load() -> dict[str, Formulation]:
    global _catalogue
    if _catalogue is None:
        catalogue: dict[str, Formulation] = {}
        for module_name in _MODULES:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as err:
                if err.name == module_name:
                    continue
                raise
            for f in module.FORMULATIONS:
                if f.name in catalogue:
                    raise RuntimeError(f"formulation {f.name!r} is defined twice")
                catalogue[f.name] = f
        _catalogue = catalogue
    return _catalogue


def all_formulations(quantity: str | None = None) -> list[Formulation]:
    """Every formulation (of one quantity, if given), installed or not, in catalogue order."""
    return [f for f in _load().values() if quantity is None or f.quantity == quantity]


def names(quantity: str | None = None) -> list[str]:
    return [f.name for f in all_formulations(quantity)]


def get(name: str, quantity: str | None = None, argument: str = "formulation") -> Formulation:
    """Look a formulation up by name; the error lists the choices."""
    catalogue = _load()
    f = catalogue.get(name)
    if f is None or (quantity is not None and f.quantity != quantity):
        choices = ", ".join(names(quantity))
        raise InputError(argument, f"unknown formulation {name!r}; choose from {choices}")
    return f
