"""Golden files: every ``fixtures/**/*.py`` is linted and compared with the codes written
on its lines (``# expect: CODE``; ``# miss: CODE`` records a known miss, ``# fp: CODE``
a known false positive, reported but wrong), and every
``*.in.py`` is fixed and compared with its ``*.out.py`` (``unsafe`` in the name: with
unsafe fixes). Set ``LOGITLAB_UPDATE_GOLDEN=1`` to rewrite the ``.out.py`` files.
"""

from __future__ import annotations

import ast
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from logitlab.lint._codes import CODES
from logitlab.lint._engine import Options, lint_paths, lint_source

FIXTURES = Path(__file__).parent / "fixtures"
MARK = re.compile(r"#\s*(expect|miss|fp):\s*([A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)")
ALL = Options(select=frozenset(c.code for c in CODES))


def _cases() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*.py") if not p.name.endswith((".in.py", ".out.py")))


def _fix_cases() -> list[Path]:
    return sorted(FIXTURES.rglob("*.in.py"))


def _id(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


def expected_marks(source: str) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    expected: set[tuple[int, str]] = set()
    misses: set[tuple[int, str]] = set()
    for lineno, text in enumerate(source.splitlines(), 1):
        for match in MARK.finditer(text):
            target = misses if match.group(1) == "miss" else expected
            for code in re.split(r"\s*,\s*", match.group(2)):
                target.add((lineno, code))
    return expected, misses


#: fixture directories linted as one project (values follow imports between their files)
PROJECTS = ("realistic", "crossfile", "crossfile_fix")


def findings_of(path: Path) -> set[tuple[int, str]]:
    rel = path.relative_to(FIXTURES).parts
    if rel[0] in PROJECTS:
        found = lint_paths([str(FIXTURES / rel[0])], ALL, jobs=1)
        return {(f.line, f.code) for f in found if Path(f.path) == path}
    return {(f.line, f.code) for f in lint_source(path.read_text("utf-8"), str(path), ALL)}


@pytest.mark.parametrize("path", _cases(), ids=_id)
def test_findings_match_marks(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    expected, misses = expected_marks(source)
    found = findings_of(path)
    missing = sorted(expected - found)
    extra = sorted(found - expected)
    assert not missing and not extra, f"missing {missing}, unexpected {extra}"
    fixed_misses = sorted(found & misses)
    assert not fixed_misses, f"known misses now found, update the fixture: {fixed_misses}"


@pytest.mark.parametrize("path", _fix_cases(), ids=_id)
def test_fix_matches_golden_output(path: Path) -> None:
    from logitlab.lint._fixes import fix_source

    unsafe = "unsafe" in path.name
    out_path = path.with_name(path.name.replace(".in.py", ".out.py"))
    source = path.read_text(encoding="utf-8")
    result = fix_source(source, str(path), ALL, unsafe=unsafe)
    if os.environ.get("LOGITLAB_UPDATE_GOLDEN"):
        out_path.write_text(result.source, encoding="utf-8")
    assert result.source == out_path.read_text(encoding="utf-8")
    ast.parse(result.source)
    # fixing twice changes nothing
    assert fix_source(result.source, str(path), ALL, unsafe=unsafe).source == result.source
    # a fixed finding is not reported again: what remains is exactly what had no fix
    before = lint_source(source, str(path), ALL)
    allowed = {"safe", "unsafe"} if unsafe else {"safe"}
    unfixable = Counter(
        f.code for f in before if f.fix is None or f.fix.applicability not in allowed
    )
    assert Counter(f.code for f in result.remaining) == unfixable
    assert result.fixed, "the fixture should exercise at least one fix"


def test_realistic_repository_precision() -> None:
    """Precision and recall on the hand-written training repository in fixtures/realistic."""
    tp = fp = fn = 0
    for path in sorted((FIXTURES / "realistic").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        marks: dict[tuple[int, str], str] = {}
        for lineno, text in enumerate(source.splitlines(), 1):
            for match in MARK.finditer(text):
                for code in re.split(r"\s*,\s*", match.group(2)):
                    marks[(lineno, code)] = match.group(1)
        found = findings_of(path)
        tp += sum(1 for k in found if marks.get(k) == "expect")
        fp += sum(1 for k in found if marks.get(k) != "expect")
        fn += sum(1 for k, v in marks.items() if v in ("expect", "miss") and k not in found)
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    print(
        f"realistic: {tp} true, {fp} false positives, {fn} missed;"
        f" precision {precision:.2f}, recall {recall:.2f}"
    )
    assert precision >= 0.9 and recall >= 0.8
