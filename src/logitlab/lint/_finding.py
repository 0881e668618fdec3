"""Findings, and the edits a fix is made of."""

from __future__ import annotations

from dataclasses import dataclass, field

from logitlab.lint._codes import CODES_BY_ID, Severity

#: (start line, start column, end line, end column) of an ``ast`` node, columns in bytes
Key = tuple[int, int, int, int]


@dataclass(frozen=True)
class Edit:
    """One change to one node; ``target`` says how the fixer finds it.

    ``call`` edits are keyed by the range of the call's ``func``; ``binop`` edits by the
    range of the binary operation. ``action`` names a function in ``_fixes``.
    """

    target: str
    key: Key
    action: str
    params: tuple[tuple[str, object], ...] = ()

    def param(self, name: str, default: object = None) -> object:
        for k, v in self.params:
            if k == name:
                return v
        return default


@dataclass(frozen=True)
class Fix:
    """A fix: its edits, whether it keeps values (``safe``), and what it does."""

    applicability: str
    description: str
    edits: tuple[Edit, ...]
    #: the line of the model's final activation this fix removes (None: it removes none);
    #: the project pass refuses the fix when other files use that model's output
    removes: int | None = None


@dataclass(frozen=True)
class Finding:
    """One finding. ``line`` is 1-based, ``col`` 0-based in characters."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    code: str
    message: str
    fix: Fix | None = field(default=None, compare=False)

    @property
    def severity(self) -> Severity:
        return CODES_BY_ID[self.code].severity
