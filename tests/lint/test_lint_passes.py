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


#: a package that re-exports a plain class and a model, and a framework through a backend
REEXPORT = {
    "pkg/__init__.py": "from .util import Timer\nfrom .nets import Net\nfrom .backend import np\n",
    "pkg/util.py": "class Timer:\n    def start(self):\n        return 0\n",
    "pkg/nets.py": (
        "import torch\n\n\nclass Net(torch.nn.Module):\n"
        "    def forward(self, x):\n        return torch.sigmoid(x)\n"
    ),
    "pkg/backend.py": "import numpy as np\n",
    # uses only the plain class: the re-export cannot change a finding
    "plain.py": (
        "import torch\nimport torch.nn.functional as F\nfrom pkg import Timer\n\n\n"
        "def loss(z, y):\n    Timer().start()\n"
        "    return F.binary_cross_entropy(torch.sigmoid(z), y)\n"
    ),
    # the model through the re-export: the second pass finds the sigmoid in forward
    "model.py": (
        "import torch.nn.functional as F\nfrom pkg import Net\n\n\n"
        "def loss(x, y):\n    return F.binary_cross_entropy(Net()(x), y)\n"
    ),
    # NumPy through the package's backend: a hand-written sigmoid's log
    "backend_user.py": (
        "from pkg import np\n\n\ndef loss(z, y):\n"
        "    p = 1 / (1 + np.exp(-z))\n"
        "    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()\n"
    ),
}


def test_a_re_export_of_a_plain_name_needs_no_second_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "reexport"
    for name, text in REEXPORT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    seen = _relinted(monkeypatch)
    found = _keys(lint_paths([str(root)], ALL, jobs=1))
    assert "plain.py" not in seen  # Timer is re-exported from pkg.util, a plain class
    assert {"model.py", "backend_user.py"} <= set(seen)
    by_file = {n for n, *_ in found}
    assert {"plain.py", "model.py", "backend_user.py"} <= by_file
    with monkeypatch.context() as m:
        m.setattr(_engine, "_guess", lambda *args: None)
        assert _keys(lint_paths([str(root)], ALL, jobs=1)) == found
