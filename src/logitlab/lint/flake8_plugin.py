"""flake8 plugin: the same engine, reporting ``LGLnnn`` codes through flake8.

Entry point (``pyproject.toml``)::

    [project.entry-points."flake8.extension"]
    LGL = "logitlab.lint.flake8_plugin:Plugin"

flake8 handles ``# noqa`` and code selection itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence

from logitlab._version import __version__
from logitlab.lint._codes import CODES
from logitlab.lint._engine import Options, findings_from_tree


class Plugin:
    """flake8 AST plugin running every logitlab lint rule."""

    name = "logitlab"
    version = __version__

    def __init__(
        self, tree: ast.Module, lines: Sequence[str] = (), filename: str = "stdin"
    ) -> None:
        self.tree = tree
        self.lines = lines
        self.filename = filename

    def run(self) -> Iterator[tuple[int, int, str, type[Plugin]]]:
        source = "".join(self.lines)
        options = Options(select=frozenset(c.code for c in CODES), exclude=())
        # suppression comments are flake8's job, so the engine does not filter here
        for f in findings_from_tree(self.tree, source, self.filename, options, noqa=False):
            yield f.line, f.col, f"{f.code} {f.message}", type(self)
