"""Fixes that remove an activation check the other uses of the model's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from logitlab.lint._codes import CODES
from logitlab.lint._engine import Options, lint_source

ALL = Options(select=frozenset(c.code for c in CODES))
FIXTURES = Path(__file__).parent / "fixtures"


def test_lgl002_fix_refused_when_another_use_would_get_logits() -> None:
    source = (FIXTURES / "sigmoid_bce" / "blocked.py").read_text()
    (f,) = [f for f in lint_source(source, "blocked.py", ALL) if f.code == "LGL002"]
    assert f.fix is None
    assert "other uses of the model's output at line 27" in f.message


def test_lgl002_fix_offered_when_the_loss_is_the_only_use() -> None:
    source = (FIXTURES / "sigmoid_bce" / "blocked.py").read_text()
    source = source.replace("g_loss = boundary_seeking_loss(discriminator(fake))", "g_loss = 0")
    (f,) = [f for f in lint_source(source, "blocked.py", ALL) if f.code == "LGL002"]
    assert f.fix is not None and f.fix.applicability == "unsafe"


def test_float64_numpy_metric_gets_no_float32_advice() -> None:
    source = (FIXTURES / "handwritten_ce" / "metrics64.py").read_text()
    found = [f for f in lint_source(source, "metrics64.py", ALL) if f.code == "LGL040"]
    assert len(found) == 2
    for f in found:
        assert "float32" not in f.message and "float64" in f.message


def _crossfile_fix(tmp_path: Path, with_user: bool = True) -> Path:
    import shutil

    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "crossfile_fix", root)
    if not with_user:
        (root / "pkg" / "infer.py").unlink()
    return root


def test_lgl002_fix_refused_when_another_file_uses_the_model(tmp_path: Path) -> None:
    from logitlab.lint._engine import lint_paths

    root = _crossfile_fix(tmp_path)
    (f,) = [f for f in lint_paths([str(root)], ALL, jobs=1) if f.code == "LGL002"]
    assert f.fix is None
    assert f.message.endswith("uses of the model's output in other files: infer.py:9")
    # the model's only user is the loss: the unsafe fix is offered
    alone = _crossfile_fix(tmp_path / "alone", with_user=False)
    (f,) = [f for f in lint_paths([str(alone)], ALL, jobs=1) if f.code == "LGL002"]
    assert f.fix is not None and f.fix.applicability == "unsafe" and f.fix.removes == 9


def test_unsafe_fix_leaves_the_model_alone_when_another_file_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from logitlab.lint._run import run

    root = _crossfile_fix(tmp_path)
    gan = root / "pkg" / "gan.py"
    before = gan.read_text()
    monkeypatch.chdir(tmp_path)
    code = run([str(root)], fix=True, unsafe_fixes=True, no_cache=True, jobs=1)
    out = capsys.readouterr().out
    assert gan.read_text() == before  # nn.Sigmoid() kept: infer.py thresholds at 0.5
    assert code == 1 and "infer.py:9" in out
    alone = _crossfile_fix(tmp_path / "alone", with_user=False)
    run([str(alone)], fix=True, unsafe_fixes=True, no_cache=True, jobs=1)
    fixed = (alone / "pkg" / "gan.py").read_text()
    assert "nn.Sigmoid()" not in fixed and "BCEWithLogitsLoss" in fixed


def test_lgl004_safe_fix_only_where_the_layer_output_is_local() -> None:
    source = (FIXTURES / "tensorflow" / "keras_local.in.py").read_text()
    found = {f.line: f for f in lint_source(source, "keras_local.py", ALL) if f.code == "LGL004"}
    assert sorted(found) == [7, 12, 21, 26]
    assert found[7].fix is not None and found[7].fix.applicability == "safe"
    assert found[12].fix is not None
    assert found[21].fix is None  # p is also used for the predictions
    assert found[26].fix is None  # a module-level name: another file may import it
    branchy = (FIXTURES / "tensorflow" / "keras_local.py").read_text()
    (f,) = [f for f in lint_source(branchy, "k.py", ALL) if f.code == "LGL004" and f.line == 21]
    assert f.fix is None  # bound in a branch
