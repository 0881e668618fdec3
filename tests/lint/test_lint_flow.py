"""Fixes that remove an activation check the other uses of the model's output."""

from __future__ import annotations

from pathlib import Path

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
