"""The public surface of logitlab.stable: names, docs, doctests, imports."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

from logitlab import stable

MODULES = [
    "logitlab.stable._primitives",
    "logitlab.stable._binary",
    "logitlab.stable._softmax",
    "logitlab.stable._compile",
    "logitlab.exact._softmax",
]


def test_all_is_sorted_and_complete() -> None:
    assert stable.__all__ == sorted(stable.__all__)
    public = {n for n in dir(stable) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(stable, n)).__name__ == "module"}
    assert public - modules == set(stable.__all__)


@pytest.mark.parametrize("name", stable.__all__)
def test_every_function_documents_formula_and_example(name: str) -> None:
    doc = getattr(stable, name).__doc__ or ""
    assert ">>>" in doc, f"{name} has no runnable example"
    if name not in ("set_torch_compile", "get_torch_compile"):
        assert "=" in doc.split(">>>")[0], f"{name} does not state its formula"


@pytest.mark.parametrize("module", MODULES)
def test_doctests_pass(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_numpy_input_imports_no_framework() -> None:
    code = (
        "import sys, numpy as np\n"
        "from logitlab import stable\n"
        "stable.binary_cross_entropy_with_logits_grad(np.zeros(3), np.zeros(3))\n"
        "stable.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]))\n"
        "stable.log1mexp([1.0])\n"
        "print(sorted(m for m in ('torch', 'jax', 'tensorflow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
