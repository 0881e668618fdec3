"""The second pass reads a file again only when the other files change what it finds.

The first pass lints each file with a recorder standing in for the project; a file whose
recorded questions get the same answers from the real project keeps those findings and
is not read again. Results must be those of reading every such file again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from logitlab.lint import _engine
from logitlab.lint._codes import CODES
from logitlab.lint._engine import Options, lint_paths

ALL = Options(select=frozenset(c.code for c in CODES))
FIXTURES = Path(__file__).parent / "fixtures"

#: imports the project but uses nothing that another file makes a probability
UNAFFECTED = """\
import torch
import torch.nn.functional as F

from .models import Discriminator


def bce(z, y):
    return F.binary_cross_entropy(torch.sigmoid(z), y)  # LGL001 on its own


def unrelated(x, y):
    return F.cross_entropy(x, y)
"""


def _keys(found: list[object]) -> list[tuple[str, int, int, str, str]]:
    return sorted(
        (Path(f.path).name, f.line, f.col, f.code, f.message)  # type: ignore[attr-defined]
        for f in found
    )


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "crossfile", root)
    (root / "pkg" / "unaffected.py").write_text(UNAFFECTED)
    return root


def _relinted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = _engine._relint

    def counting(args: tuple[str, Options]) -> object:
        seen.append(Path(args[0]).name)
        return real(args)

    monkeypatch.setattr(_engine, "_relint", counting)
    return seen


def test_second_pass_only_where_answers_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path)
    seen = _relinted(monkeypatch)
    found = lint_paths([str(root)], ALL, jobs=1)
    # train.py uses models' Discriminator and helpers: read again; unaffected.py imports
    # Discriminator but never calls it, so its first-pass findings stand
    assert "train.py" in seen
    assert "unaffected.py" not in seen
    assert ("unaffected.py", 8, "LGL001") in {(n, line, c) for n, line, _, c, _ in _keys(found)}


def test_results_equal_reading_every_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = [_project(tmp_path), FIXTURES / "realistic"]
    for root in roots:
        fast = _keys(lint_paths([str(root)], ALL, jobs=1))
        with monkeypatch.context() as m:
            m.setattr(_engine, "_guess", lambda *args: None)  # no guesses: old two passes
            seen = _relinted(m)
            slow = _keys(lint_paths([str(root)], ALL, jobs=1))
        assert seen, "the slow path should read files again"
        assert fast == slow
