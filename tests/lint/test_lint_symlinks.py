"""Directory symlinks: a sibling link is linted once and quietly; a link to an ancestor is a
loop, reported once."""

from __future__ import annotations

import os
from pathlib import Path

from logitlab.lint._engine import Options, discover

BAD = "import torch\n\ndef f(z):\n    return torch.log(torch.sigmoid(z))\n"


def _walk(*roots: Path) -> list[tuple[str, str | None]]:
    return [
        (os.path.relpath(p, roots[0].parent), None if f is None else f.code)
        for p, f in discover([str(r) for r in roots], Options())
    ]


def test_a_sibling_symlink_is_not_a_loop(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "m.py").write_text(BAD)
    os.symlink("../b", tmp_path / "a" / "link")
    found = _walk(tmp_path)
    assert all(code is None for _, code in found), found
    assert sum(path.endswith("m.py") for path, _ in found) == 1  # linted once


def test_a_link_to_an_ancestor_is_a_loop(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "m.py").write_text(BAD)
    os.symlink("..", tmp_path / "x" / "up")
    found = _walk(tmp_path)
    assert [code for _, code in found if code] == ["LGL902"]
