"""The flake8 plugin reports the same findings through flake8 (local-plugin config)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from logitlab.lint.flake8_plugin import Plugin

SOURCE = """\
import torch


def f(x):
    a = torch.log(torch.softmax(x, dim=1))
    b = torch.log(torch.softmax(x, dim=1))  # noqa: LGL010
    return a, b
"""


def test_plugin_class_directly() -> None:
    plugin = Plugin(ast.parse(SOURCE), SOURCE.splitlines(keepends=True), "f.py")
    results = list(plugin.run())
    assert [(r[0], r[1], r[2][:6]) for r in results] == [(5, 8, "LGL010"), (6, 8, "LGL010")]
    assert all(r[3] is Plugin for r in results)


def test_through_flake8(tmp_path: Path) -> None:
    pytest.importorskip("flake8")
    (tmp_path / "f.py").write_text(SOURCE)
    from importlib.metadata import entry_points

    installed = any(e.name == "LGL" for e in entry_points(group="flake8.extension"))
    config = "[flake8]\nselect = LGL\n"
    if not installed:
        # An install that predates the entry point: register the plugin locally instead
        # (both at once would report every finding twice).
        config += (
            "\n[flake8:local-plugins]\nextension =\n    LGL = logitlab.lint.flake8_plugin:Plugin\n"
        )
    (tmp_path / ".flake8").write_text(config)
    proc = subprocess.run(
        [sys.executable, "-m", "flake8", "f.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("f.py:5:9: LGL010 ")
