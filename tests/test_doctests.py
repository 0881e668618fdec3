"""The examples in the core modules' docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "logitlab.core.ulp",
    "logitlab.core.numbers",
    "logitlab.exact._loss",
    "logitlab.exact.fast",
    "logitlab.analysis.compare",
    "logitlab.analysis.saturation",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
