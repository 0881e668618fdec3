"""The linter's own install: both pre-commit hooks work from a fresh ``pre-commit try-repo``,
and their environments hold no numerical framework (slow: it builds virtual environments)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = (
    "import torch\nimport torch.nn.functional as F\n\n\n"
    "def loss(z, y):\n    return F.binary_cross_entropy(torch.sigmoid(z), y)\n"
)
HOOKS = ("logitlab-lint", "logitlab-lint-fix")

pytestmark = pytest.mark.slow


def _pre_commit() -> str:
    exe = shutil.which("pre-commit") or str(Path(sys.executable).with_name("pre-commit"))
    if not Path(exe).exists():
        pytest.skip("pre-commit is not installed")
    return exe


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(BAD)
    _git(project, "init", "-q")
    _git(project, "add", "train.py")
    return project


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}


def _check(project: Path, hook: str, output: str, returncode: int) -> None:
    assert returncode == 1, output  # a finding fails the hook
    assert "Traceback" not in output, output
    fixed = (project / "train.py").read_text()
    if hook == "logitlab-lint-fix":
        assert "binary_cross_entropy_with_logits(z, y)" in fixed, output
    else:
        assert fixed == BAD
        assert "LGL001" in output, output


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_from_a_fresh_try_repo(tmp_path: Path, hook: str) -> None:
    project = _project(tmp_path)
    result = subprocess.run(
        [_pre_commit(), "try-repo", str(ROOT), hook, "--all-files"],
        cwd=project,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    _check(project, hook, result.stdout + result.stderr, result.returncode)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_environment_has_no_numerical_framework(tmp_path: Path, hook: str) -> None:
    # A snapshot of this checkout as a repository pre-commit can clone at a revision.
    source = tmp_path / "source"
    files = _git(ROOT, "ls-files", "-co", "--exclude-standard").splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _git(source, "init", "-q")
    _git(source, "add", "-A")
    _git(source, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot")
    rev = _git(source, "rev-parse", "HEAD")
    project = _project(tmp_path)
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {source.as_uri()}\n  rev: {rev}\n  hooks:\n  - id: {hook}\n"
    )
    result = subprocess.run(
        [_pre_commit(), "run", "--all-files"],
        cwd=project,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    _check(project, hook, result.stdout + result.stderr, result.returncode)
    site = list((tmp_path / "cache").rglob("site-packages"))
    assert site
    installed = {p.name.split("-")[0].lower() for s in site for p in s.iterdir()}
    assert "torch" not in installed and "numpy" not in installed, sorted(installed)
    assert ("libcst" in installed) == (hook == "logitlab-lint-fix"), sorted(installed)
    envs = {p for s in site for p in s.parents if p.name.startswith("py_env")}
    size = sum(f.stat().st_size for e in envs for f in e.rglob("*") if f.is_file())
    print(f"\n{hook}: hook environment {size / 2**20:.1f} MiB")
