"""Each core module imports on its own, in a fresh interpreter, as a user's first import."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "logitlab",
    "logitlab.core.errors",
    "logitlab.core.formats",
    "logitlab.core.numbers",
    "logitlab.core.inputs",
    "logitlab.core.mp",
    "logitlab.core.ulp",
    "logitlab.exact",
    "logitlab.analysis",
    "logitlab.formulations",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_first(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1:]
