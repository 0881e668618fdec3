"""The ``logitlab lint`` command: exit codes, formats, fixes, config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from logitlab.lint.cli import register

BAD = """\
import torch
import torch.nn.functional as F


def loss(x, y):
    return F.binary_cross_entropy(torch.sigmoid(x), y)
"""

UNSAFE = """\
import torch.nn.functional as F


def loss(logits, y):
    return F.cross_entropy(F.softmax(logits, dim=1), y)
"""

CLEAN = """\
import torch.nn.functional as F


def loss(x, y):
    return F.binary_cross_entropy_with_logits(x, y)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "clean.py").write_text(CLEAN)
    return tmp_path


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("version")  # a second command keeps "lint" a subcommand, as in logitlab
    def _version() -> None:
        pass

    return app


def run(app: typer.Typer, *args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["lint", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_findings_exit_1_and_text_format(app: typer.Typer, project: Path) -> None:
    code, out, _ = run(app, project / "bad.py")
    assert code == 1
    assert out.startswith(f"{project / 'bad.py'}:6:12: LGL001 ")


def test_clean_exit_0(app: typer.Typer, project: Path) -> None:
    assert run(app, project / "clean.py")[0] == 0


def test_exit_zero(app: typer.Typer, project: Path) -> None:
    assert run(app, project, "--exit-zero")[0] == 0


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--format", "xml"), "--format"),
        (("--select", "NOPE1"), "--select"),
        (("--ignore", "XYZ"), "--ignore"),
    ],
)
def test_usage_errors_exit_2_naming_the_option(
    app: typer.Typer, project: Path, args: tuple[str, ...], option: str
) -> None:
    code, _, err = run(app, project, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and option in lines[0]


def test_unknown_option_exit_2(app: typer.Typer, project: Path) -> None:
    assert run(app, project, "--no-such-option")[0] == 2


def test_select_and_ignore(app: typer.Typer, project: Path) -> None:
    assert run(app, project, "--select", "LGL01")[0] == 0
    assert run(app, project, "--ignore", "LGL001")[0] == 0
    assert run(app, project, "--select", "LGL0,LGL9", "--ignore", "LGL010")[0] == 1


def test_json_format(app: typer.Typer, project: Path) -> None:
    code, out, _ = run(app, project, "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert [d["code"] for d in data] == ["LGL001"]
    assert data[0]["severity"] == "warning"
    assert data[0]["fix"]["applicability"] == "safe"
    assert (data[0]["line"], data[0]["column"]) == (6, 12)


def test_sarif_format(app: typer.Typer, project: Path) -> None:
    _, out, _ = run(app, project, "--format", "sarif")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    run0 = sarif["runs"][0]
    rules = run0["tool"]["driver"]["rules"]
    (result,) = run0["results"]
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "LGL001"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 6 and region["startColumn"] == 12
    assert region["endColumn"] > region["startColumn"]
    assert result["level"] in ("error", "warning", "note")
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert "\\" not in uri and uri.endswith("bad.py")


def test_github_format(app: typer.Typer, project: Path) -> None:
    _, out, _ = run(app, project / "bad.py", "--format", "github")
    assert out.startswith("::warning file=")
    assert ",line=6,col=12," in out and "title=LGL001::LGL001 " in out


def test_fix_writes_and_is_idempotent(app: typer.Typer, project: Path) -> None:
    code, _, err = run(app, project, "--fix")
    assert code == 0, err
    text = (project / "bad.py").read_text()
    assert "F.binary_cross_entropy_with_logits(x, y)" in text
    assert (project / "clean.py").read_text() == CLEAN
    assert run(app, project, "--fix")[0] == 0
    assert (project / "bad.py").read_text() == text


def test_diff_does_not_write(app: typer.Typer, project: Path) -> None:
    code, out, _ = run(app, project, "--diff")
    assert code == 1
    assert "+    return F.binary_cross_entropy_with_logits(x, y)" in out
    assert (project / "bad.py").read_text() == BAD


def test_unsafe_fixes_only_when_asked(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "unsafe.py"
    path.write_text(UNSAFE)
    code, _, err = run(app, path, "--fix")
    assert code == 1 and path.read_text() == UNSAFE
    assert "--unsafe-fixes" in err
    code, _, _ = run(app, path, "--fix", "--unsafe-fixes")
    assert code == 0
    assert "F.cross_entropy(logits, y)" in path.read_text()


def test_config_in_pyproject(app: typer.Typer, project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.logitlab.lint]\nignore = ["LGL001"]\n')
    assert run(app, project)[0] == 0
    (project / "pyproject.toml").write_text('[tool.logitlab.lint]\nselect = ["BOGUS"]\n')
    code, _, err = run(app, project)
    assert code == 2 and "tool.logitlab.lint" in err


def test_config_exclude(app: typer.Typer, project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.logitlab.lint]\nexclude = ["bad.py"]\n')
    assert run(app, project)[0] == 0


def test_console_script_end_to_end(project: Path) -> None:
    """The real entry point: ``logitlab lint`` through ``logitlab.cli``."""
    proc = subprocess.run(
        [sys.executable, "-c", "from logitlab.cli import main; main()", "lint", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "LGL001" in proc.stdout


def test_linting_imports_no_framework(project: Path) -> None:
    code = (
        "import sys\n"
        "from logitlab.lint import lint_paths\n"
        f"assert lint_paths([{str(project)!r}])\n"
        "heavy = {'torch', 'numpy', 'jax', 'tensorflow', 'libcst', 'scipy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_per_file_ignores(app: typer.Typer, project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.logitlab.lint.per-file-ignores]\n"bad.py" = ["LGL0"]\n'
    )
    assert run(app, project)[0] == 0
    assert run(app, project, "--fix")[0] == 0
    assert (project / "bad.py").read_text() == BAD


def test_diff_applies_with_patch_without_trailing_newline(app: typer.Typer, tmp_path: Path) -> None:
    import shutil

    if shutil.which("patch") is None:
        pytest.skip("patch not installed")
    path = tmp_path / "bad.py"
    path.write_text(BAD.rstrip("\n"))  # no newline at the end of the file
    code, out, _ = run(app, path, "--diff")
    assert code == 1 and "No newline at end of file" in out
    proc = subprocess.run(
        ["patch", "-p1", "--dry-run"],
        input=out,
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cache_dir_written_and_no_cache(
    app: typer.Typer, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    code, out, _ = run(app, "--no-cache", ".")
    assert code == 1 and "LGL001" in out and not (project / ".logitlab_cache").exists()
    assert run(app, ".")[:2] == (code, out)
    assert (project / ".logitlab_cache" / ".gitignore").exists()
    assert run(app, ".")[:2] == (code, out)  # from the cache: the same report
