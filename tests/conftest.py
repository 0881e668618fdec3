"""Shared test settings.

In CI (``CI`` set) hypothesis runs derandomized: the same examples every run, so a red
build means a change broke something, not that a new random example was drawn.  Local
runs keep exploring with fresh examples (and remember failures in ``.hypothesis/``).

Tests marked ``slow`` (exhaustive sweeps, torch.compile) are deselected by default so the
default suite stays within a few minutes on 2 cores; ``pytest --run-slow`` runs them too
(CI does), and ``pytest --run-slow -m slow`` runs only them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
