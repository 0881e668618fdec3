"""``logitlab lint`` starts without building the Typer app, and says the same things.

The console script's fast path (``logitlab.lint._run.fast_main``) takes plainly valid
lines; everything else (help, errors Typer words) goes to the app. Each line here is run
both ways and the exit code, stdout and stderr must be the same.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logitlab.lint._run import fast_main, parse_fast

BAD = """\
import torch
import torch.nn.functional as F


def loss(x, y):
    return F.binary_cross_entropy(torch.sigmoid(x), y)
"""

#: modules the lint path must not import: Typer/click and what they pull in, rich,
#: the frameworks, libcst (only for --fix/--diff)
HEAVY = ("typer", "click", "pydantic", "rich", "torch", "numpy", "jax", "libcst", "scipy")


def test_lint_path_imports_no_typer_nor_framework(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(BAD)
    code = (
        "import atexit, sys\n"
        "def report():\n"
        f"    heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "    sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
        "atexit.register(report)\n"
        "from logitlab.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "lint", "--no-cache", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "LGL001" in proc.stdout, proc.stderr
    assert "HEAVY=\n" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--jobs", "x"],
        ["--jobs", "1", "--jobs", "2"],
        ["--format", "json", "--format", "text"],
        ["--no-such-option"],
        ["--select"],
        ["--fix=yes"],
        ["-j2"],
        ["--config", "--fix"],
    ],
)
def test_lines_left_to_typer(args: list[str]) -> None:
    assert parse_fast([*args, "x.py"] if args != ["--select"] else args) is None


def test_parse_fast_reads_what_typer_reads() -> None:
    got = parse_fast(
        ["a.py", "--select=LGL0", "--select", "LGL9", "-j", "2", "--", "--odd.py", "b"]
    )
    assert got == {"paths": ["a.py", "--odd.py", "b"], "select": ["LGL0", "LGL9"], "jobs": 2}
    assert parse_fast([]) == {"paths": None}


def _both_ways(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    from logitlab.cli import app

    code = fast_main(args)
    assert code is not None, "the fast path should take this line"
    out, err = capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        app(["lint", *args], prog_name="logitlab")
    typer_out, typer_err = capsys.readouterr()
    return (code, out, err), (int(exc.value.code or 0), typer_out, typer_err)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--select", "LGL001"],
        ["--select=LGL0,LGL9", "--ignore", "LGL011"],
        ["--format", "json"],
        ["--format=github", "--exit-zero"],
        ["--format", "xml"],
        ["--select", "NOPE1"],
        ["--ignore", "XYZ"],
        ["-j", "1", "--diff"],
        ["--unsafe-fixes"],
        ["--config", "missing.toml"],
    ],
)
def test_fast_path_says_what_typer_says(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    fast, slow = _both_ways([*args, "--no-cache", "bad.py"], capsys)
    assert fast == slow
