"""The softmax explanation: one test per template, and no sentence contradicting a flag."""

from __future__ import annotations

import math

import pytest

from logitlab.analysis.compare import Comparison
from logitlab.analysis.compare_softmax import compare_softmax
from logitlab.analysis.explain import Sentence, explain, softmax_sentences

INF = math.inf


def of(template: str, c: Comparison) -> list[Sentence]:
    return [s for s in softmax_sentences(c) if s.template == template]


def check_claims(c: Comparison) -> None:
    rows = {r.formulation.name: r for r in c.rows}
    for s in softmax_sentences(c):
        for claim in s.claims:
            r = rows[claim.row]
            for i in claim.elements:
                loss = r.element_loss_flags[i] if i < len(r.element_loss_flags) else ()
                grad = r.element_grad_flags[i] if i < len(r.element_grad_flags) else ()
                flags = {"loss": loss, "gradient": grad, "any": loss + grad}[claim.side]
                if claim.holds:
                    assert claim.flag in flags, (s.text, claim)
                elif claim.flag is None:
                    assert not flags, (s.text, claim)
                else:
                    assert claim.flag not in flags, (s.text, claim)


@pytest.fixture(scope="module")
def underflow() -> Comparison:
    return compare_softmax([0, -110], 1, frameworks=["torch", "stable", "keras"])


@pytest.fixture(scope="module")
def masked() -> Comparison:
    return compare_softmax(
        [[3, -INF, 1], [-INF, -INF, -INF], [3, -INF, 1]], [0, 0, 1], reduction="none"
    )


def test_underflow(underflow: Comparison) -> None:
    (s,) = of("softmax underflow", underflow)
    assert "110.0 below the row's largest" in s.text and "float32" in s.text
    assert "torch.log_of_softmax" in s.rows and "torch.cross_entropy" not in s.rows


def test_log_of_zero(underflow: Comparison) -> None:
    names = {s.rows[0] for s in of("log of 0", underflow)}
    assert names == {"torch.log_of_softmax", "torch.handwritten"}


def test_clip(underflow: Comparison) -> None:
    texts = [s.text for s in of("probability clipped", underflow)]
    assert texts and all("1e-07" in t and "16.1181" in t for t in texts)


def test_logits_keep(underflow: Comparison) -> None:
    (s,) = of("logits keep the loss", underflow)
    assert "torch.cross_entropy" in s.rows and "torch.log_of_softmax" not in s.rows


def test_double_softmax(underflow: Comparison) -> None:
    (s,) = of("double softmax", underflow)
    # with C = 2 and a hard target: log(e + 1) - 1 and log(e + 1)
    lo, hi = math.log(math.e + 1) - 1, math.log(math.e + 1)
    assert f"{lo:.4g}" in s.text and f"{hi:.4g}" in s.text


def test_other_flags(underflow: Comparison) -> None:
    texts = {s.rows[0]: s.text for s in of("softmax other flags", underflow)}
    assert "divides by the underflowed p = 0" in texts["torch.log_of_softmax"]


def test_accurate(underflow: Comparison) -> None:
    (s,) = of("accurate", underflow)
    assert "torch.cross_entropy (0 ULPs)" in s.text


def test_masked_nan(masked: Comparison) -> None:
    texts = {s.rows[0]: s.text for s in of("masked NaN", masked)}
    assert set(texts) == {"torch.log_of_softmax", "torch.handwritten"}
    assert "0 · (−inf) is NaN" in texts["torch.handwritten"]


def test_masked_safe(masked: Comparison) -> None:
    (s,) = of("masked safe", masked)
    assert {"torch.cross_entropy", "stable.softmax_ce"} <= set(s.rows)
    assert s.elements == (0,)


def test_masked_target(masked: Comparison) -> None:
    (s,) = of("masked target", masked)
    assert s.elements == (2,) and "+inf by right" in s.text


def test_fully_masked(masked: Comparison) -> None:
    (s,) = of("fully masked", masked)
    assert s.text.startswith("Sample 1") and "NaN from torch.cross_entropy" in s.text
    assert "stable.softmax_ce (0.0)" in s.text


def test_notes_and_not_run() -> None:
    c = compare_softmax([0.1, 0], 0, weight=[1, 2], dtype="float16")
    assert any("torch.handwritten did not run" in s.text for s in of("not run", c))
    assert of("input note", c)


def test_no_sentence_contradicts_a_flag(underflow: Comparison, masked: Comparison) -> None:
    for c in (
        underflow,
        masked,
        compare_softmax([1000, 0, -1000], 2, frameworks=["all"]),
        compare_softmax([[3, -INF, 1]], 0, label_smoothing=0.1, frameworks=["all"]),
        compare_softmax([[0, -30, 2]], [[0.5, 0.25, 0.25]], dtype="bfloat16"),
    ):
        check_claims(c)
        assert explain(c)
