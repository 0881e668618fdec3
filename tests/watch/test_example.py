"""The README's demonstration, run for real: examples/breast_cancer_watch.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer_watch.py"


def load():
    spec = importlib.util.spec_from_file_location("breast_cancer_watch", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bce_on_probabilities_is_named_and_the_logits_run_is_clean():
    example = load()
    source = EXAMPLE.read_text().splitlines()
    loss_line = next(i for i, s in enumerate(source, 1) if "loss = criterion(" in s)

    losses, report = example.train(True, steps=40, lr=0.2)
    (finding,) = report.findings
    assert (finding.code, finding.file, finding.line) == ("LGL001", str(EXAMPLE), loss_line)
    assert finding.calls == 40
    assert finding.counts["saturated"] > 0 and finding.counts["grad_vanished"] > 0
    # a saturated element has p exactly 0 or 1 against the other label: its term is the
    # -100 clamp, so the loss is at least 100 * saturated / batch on some checked step
    assert finding.counts["log_clamped"] >= finding.counts["saturated"]
    assert max(losses) >= 100 / 256

    logits_losses, clean = example.train(False, steps=40, lr=0.2)
    assert clean.findings == []
    assert logits_losses[-1] < losses[-1]
