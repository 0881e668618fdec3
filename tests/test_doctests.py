"""The examples in the docstrings run and print what they say.

Every module under ``src/logitlab`` whose source holds a ``>>>`` example is collected here
(found by reading the files, not from a hand list that goes stale).  A module, or an
example, that needs an optional framework which is not installed is skipped, saying which.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

import logitlab

SRC = Path(logitlab.__file__).resolve().parent

#: Optional frameworks (pyproject's extras): examples that import one are skipped without it.
OPTIONAL = {
    "fastapi",
    "ipywidgets",
    "jax",
    "keras",
    "libcst",
    "matplotlib",
    "optax",
    "plotly",
    "scipy",
    "sklearn",
    "uvicorn",
}


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        if ">>>" not in path.read_text(encoding="utf-8"):
            continue
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


MODULES = _modules_with_examples()
IMPORT = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", re.MULTILINE)


def _missing(source: str) -> list[str]:
    return sorted(
        m for m in set(IMPORT.findall(source)) & OPTIONAL if importlib.util.find_spec(m) is None
    )


def _run(name: str) -> doctest.TestResults:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs {e.name}, an optional framework that is not installed")
        raise
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(module) if t.examples]
    needs = _missing("\n".join(ex.source for t in tests for ex in t.examples))
    if needs:
        pytest.skip(f"{name}'s examples import {', '.join(needs)}, not installed")
    examples = [ex for t in tests for ex in t.examples]
    if all(ex.options.get(doctest.SKIP) for ex in examples):
        pytest.skip(f"every example in {name} is marked '# doctest: +SKIP' in the source")
    for t in tests:
        runner.run(t)
    return runner.summarize(verbose=False)


def test_discovery_finds_the_documented_modules() -> None:
    assert {"logitlab.core.ulp", "logitlab.analysis.compare", "logitlab.exact._loss"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = _run(name)
    assert result.attempted > 0, f"{name} has '>>>' in its source but no examples ran"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
