"""The linter never crashes: odd files become findings, random valid Python lints and
fixes cleanly, and the linter is clean on its own source."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import hypothesis.strategies as st
import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings

import logitlab.lint
from logitlab.lint._codes import CODES
from logitlab.lint._engine import Options, lint_paths, lint_source
from logitlab.lint._fixes import fix_source

ALL = Options(select=frozenset(c.code for c in CODES))
LINT_SRC = Path(__file__).resolve().parents[2] / "src" / "logitlab" / "lint"


def codes(findings: list[logitlab.lint.Finding]) -> dict[str, str]:
    return {os.path.basename(f.path): f.code for f in findings}


def test_odd_files_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "syntax.py").write_text("def f(:\n")
    (tmp_path / "latin1.py").write_bytes(b"x = '\xe9'\n")
    (tmp_path / "cookie.py").write_bytes(b"# -*- coding: latin-1 -*-\nx = '\xe9'\n")
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "huge.py").write_text("x = 1\n" * 50)
    (tmp_path / "nul.py").write_bytes(b"x = 1\x00\n")
    (tmp_path / "bad.py").write_text("import torch\ny = torch.log(torch.softmax(x, 1))\n")
    (tmp_path / "broken.py").symlink_to(tmp_path / "missing.py")
    loop = tmp_path / "pkg"
    loop.mkdir()
    (loop / "again").symlink_to(loop, target_is_directory=True)
    findings = lint_paths([str(tmp_path)], Options(select=ALL.select, max_file_bytes=100))
    found = codes(findings)
    assert found["syntax.py"] == "LGL900"
    assert found["latin1.py"] == "LGL901"
    assert found["huge.py"] == "LGL902"
    assert found["nul.py"] == "LGL900"
    assert found["broken.py"] == "LGL901"
    assert found["again"] == "LGL902"
    assert found["bad.py"] == "LGL010"
    assert "cookie.py" not in found and "empty.py" not in found


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.py"
    path.write_text("x = 1\n")
    path.chmod(0)
    assert codes(lint_paths([str(path)], ALL)) == {"secret.py": "LGL901"}


def test_missing_path_is_a_finding(tmp_path: Path) -> None:
    assert codes(lint_paths([str(tmp_path / "nope.py")], ALL)) == {"nope.py": "LGL901"}


def test_deeply_nested_expression_does_not_crash() -> None:
    # 200 nested calls (CPython's limit on nested parentheses) with nothing to report ...
    source = "import torch\ny = " + "torch.exp(" * 200 + "x" + ")" * 200 + "\n"
    assert lint_source(source, "deep.py", ALL) == []
    # ... and a log-softmax at the bottom of 190 of them is still found, where it is:
    # column len("y = ") + 190 * len("torch.exp(") = 1904.
    inner = "torch.log(torch.softmax(x, 1))"
    source = "import torch\ny = " + "torch.exp(" * 190 + inner + ")" * 190 + "\n"
    assert [(f.code, f.line, f.col) for f in lint_source(source, "deep.py", ALL)] == [
        ("LGL010", 2, 4 + 190 * len("torch.exp("))
    ]
    # A 5000-term sum nests too deep for the parser: one finding saying so, no crash.
    wide = lint_source("y = " + " + ".join(["torch.log(x)"] * 5000) + "\n", "wide.py", ALL)
    assert [(f.code, f.line) for f in wide] == [("LGL900", 1)]
    assert "too deeply nested" in wide[0].message
    # 2000 terms parse: every one of the 2000 log-softmaxes is reported.
    many = lint_source("import torch\ny = " + " + ".join([inner] * 2000) + "\n", "w.py", ALL)
    assert len(many) == 2000 and {f.code for f in many} == {"LGL010"}


def test_many_files_in_parallel(tmp_path: Path) -> None:
    for i in range(80):
        (tmp_path / f"m{i}.py").write_text("import numpy as np\ny = np.log(1 + np.exp(x))\n")
    findings = lint_paths([str(tmp_path)], ALL, jobs=2)
    assert len(findings) == 80 and {f.code for f in findings} == {"LGL031"}


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(source=hypothesmith.from_grammar())
@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # hypothesmith compiles odd code
def test_never_crashes_on_valid_python(source: str) -> None:
    lint_source(source, "fuzz.py", ALL)


EXPR = st.recursive(
    st.sampled_from(["x", "y", "1", "2.5", "a.b", "f(x)", "x[0]", "(x, y)"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "@"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda e: f"-{e}"),
    ),
    max_leaves=4,
)
TEMPLATES = [
    "F.binary_cross_entropy(torch.sigmoid({e}), y, reduction='sum')",
    "torch.log(torch.softmax({e}, dim=1))",
    "({e}).softmax(-1).log()",
    "torch.log(1 - torch.sigmoid({e}))",
    "np.log(expit({e}))",
    "1 / (1 + torch.exp({e}))",
    "1 / (1 + np.exp(-{e}))",
    "torch.exp({e}) / (1 + torch.exp({e}))",
    "np.log(1 + np.exp({e}))",
    "torch.log1p(torch.exp({e}))",
    "torch.log(torch.sum(torch.exp({e}), dim=1))",
    "F.cross_entropy(F.softmax({e}, dim=1), y)",
    "F.nll_loss(F.softmax({e}, dim=1), y)",
]
HEADER = (
    "import numpy as np\nimport torch\nimport torch.nn.functional as F\n"
    "from scipy.special import expit\n\n"
)


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.tuples(st.sampled_from(TEMPLATES), EXPR, EXPR), min_size=1, max_size=3),
    unsafe=st.booleans(),
)
def test_fixes_parse_and_are_idempotent(parts: list[tuple[str, str, str]], unsafe: bool) -> None:
    body = "".join(
        f"v{i} = {t.format(e=e)}  # keep\nw{i} = g({t.format(e=e2)})\n"
        for i, (t, e, e2) in enumerate(parts)
    )
    source = HEADER + body
    result = fix_source(source, "gen.py", ALL, unsafe=unsafe)
    ast.parse(result.source)
    assert result.source.count("# keep") == len(parts)
    again = fix_source(result.source, "gen.py", ALL, unsafe=unsafe)
    assert again.source == result.source
    fixed_codes = {f.code for f in result.fixed}
    leftover = [
        f
        for f in result.remaining
        if f.code in fixed_codes and f.fix is not None and (unsafe or f.fix.applicability == "safe")
    ]
    assert not leftover


def test_linter_is_clean_on_its_own_source() -> None:
    assert lint_paths([str(LINT_SRC)]) == []


def test_public_names_sorted_and_exported() -> None:
    assert logitlab.lint.__all__ == sorted(logitlab.lint.__all__)
    for name in logitlab.lint.__all__:
        assert hasattr(logitlab.lint, name)


def test_codes_registry_is_consistent() -> None:
    from logitlab.lint._rules import RULES

    ids = [c.code for c in CODES]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    rule_codes = {code for rule in RULES for code in rule.codes}
    assert rule_codes == {c for c in ids if not c.startswith("LGL9")}
