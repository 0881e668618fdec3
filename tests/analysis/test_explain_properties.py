"""No sentence of the explanation contradicts a flag, over random small cases.

The sentences say which rows and elements they name and what they claim about the flags
(:class:`~logitlab.analysis.explain.Claim`); the claims are checked against the rows, and
the texts themselves are read for row names, element names and the claims that matter
most ("keeps the gradient", "within N ULPs", "clamps each log").
"""

from __future__ import annotations

import math
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logitlab.analysis.compare import Comparison, Row, compare
from logitlab.analysis.explain import Sentence, sentences
from logitlab.analysis.saturation import saturation

_SUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_ELEMENT = re.compile(r"z([₀₁₂₃₄₅₆₇₈₉]+)")

# Moderate and extreme logits: the saturation thresholds of every dtype, the gradient
# clamp (|z| > 27.6), float32's subnormal range, and the limits.
extreme = st.sampled_from(
    [
        -math.inf,
        -1000.0,
        -800.0,
        -200.0,
        -104.0,
        -100.0,
        -90.0,
        -88.0,
        -30.0,
        -27.0,
        -20.0,
        -17.5,
        0.0,
        1e-5,
        6.0,
        8.33,
        16.64,
        20.0,
        40.0,
        100.0,
        800.0,
        math.inf,
    ]
)
logit = st.one_of(extreme, st.floats(-50, 50, allow_nan=False))
target = st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.3, 1e-10]), st.floats(0, 1))


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 3))
    case: dict[str, object] = {
        "logits": draw(st.lists(logit, min_size=n, max_size=n)),
        "targets": draw(st.lists(target, min_size=n, max_size=n)),
        "dtype": draw(st.sampled_from(["float16", "bfloat16", "float32", "float64"])),
        "reduction": draw(st.sampled_from(["none", "mean", "sum"])),
    }
    if draw(st.booleans()):
        weights = st.sampled_from([0.0, 1e-3, 0.5, 1.0, 2.0])
        case["weight"] = draw(st.lists(weights, min_size=n, max_size=n))
    if draw(st.integers(0, 3)) == 0:
        case["pos_weight"] = draw(st.sampled_from([0.5, 1.0, 3.0]))
    return case


def side_flags(row: Row, side: str, i: int) -> set[str]:
    loss = set(row.element_loss_flags[i]) if i < len(row.element_loss_flags) else set()
    grad = set(row.element_grad_flags[i]) if i < len(row.element_grad_flags) else set()
    return {"loss": loss, "gradient": grad, "any": loss | grad}[side]


def named_rows(c: Comparison, s: Sentence) -> set[str]:
    names = [r.formulation.name for r in c.rows]
    return {n for n in names if re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", s.text)}


def named_elements(s: Sentence) -> set[int]:
    return {int(m.group(1).translate(_SUB)) - 1 for m in _ELEMENT.finditer(s.text)}


def check(c: Comparison, found: list[Sentence]) -> None:
    rows = {r.formulation.name: r for r in c.rows}
    n = c.case.logits.size
    not_run = [s for s in found if s.template == "not run"]
    # One not-run line per row that did not run, and none for a row that ran.
    assert sorted(s.rows[0] for s in not_run) == sorted(
        name for name, r in rows.items() if r.status != "ok"
    )
    for s in found:
        named = named_rows(c, s)
        assert named <= set(s.rows), (s.text, s.rows)
        if s.template == "not run":
            assert len(named) == 1 and rows[s.rows[0]].status != "ok", s.text
        else:
            assert all(rows[name].status == "ok" for name in s.rows), s.text
        elements = named_elements(s)
        assert all(0 <= i < n for i in elements), s.text
        for claim in s.claims:
            row = rows[claim.row]
            assert row.status == "ok", s.text
            for i in claim.elements:
                flags = side_flags(row, claim.side, i)
                if claim.holds:
                    assert claim.flag in flags, (s.text, claim, i, flags)
                elif claim.flag is None:
                    assert not flags, (s.text, claim, i, flags)
                else:
                    assert claim.flag not in flags, (s.text, claim, i, flags)
        # The texts' own claims, read back.
        if "keep" in s.text:
            for name in named:
                for i in elements:
                    assert not side_flags(rows[name], "gradient", i), (s.text, name, i)
        for name, bound in re.findall(r"([\w.]+) \(([\d.e]+) ULPs\)", s.text):
            row = rows[name]
            assert not row.loss_flags and row.max_ulp_error <= float(bound), (s.text, name)
        if "clamps each log" in s.text:
            (name,) = named
            assert elements
            for i in elements:
                assert "log clamped" in side_flags(rows[name], "loss", i), (s.text, i)
    # Every flag that holds is explained: some sentence claims it for that row and element.
    for name, row in rows.items():
        if row.status != "ok":
            continue
        for i in range(n):
            for flag in side_flags(row, "any", i):
                assert any(
                    cl.holds and cl.row == name and cl.flag == flag and i in cl.elements
                    for s in found
                    for cl in s.claims
                ), (name, i, flag, [s.text for s in found])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_no_sentence_contradicts_a_flag(case: dict[str, object]) -> None:
    c = compare(**case)  # type: ignore[arg-type]
    check(c, sentences(c, saturation(c.dtype.name)))


def test_the_reported_cases() -> None:
    for case in (
        {"logits": [-20, 20], "targets": [0, 1]},
        {"logits": [-90, 20], "targets": [0.3, 0.7], "reduction": "none", "pos_weight": 3},
        {"logits": [20], "targets": [0.3], "dtype": "bfloat16"},
        {"logits": [-math.inf, math.inf, -100, 20], "targets": [0.5, 0.5, 0.0, 1.0]},
    ):
        c = compare(**case)  # type: ignore[arg-type]
        check(c, sentences(c, saturation(c.dtype.name)))


def test_every_framework() -> None:
    """Keras' clip, XLA's flush, SciPy's upcast and scikit-learn's refusal, checked alike
    (rows whose framework is not installed are "skipped" and get their not-run line)."""
    c = compare(
        [-math.inf, -100, 1e-5, 20, -20],
        [0.5, 0.0, 0.5, 0.3, 0.3],
        dtype="float16",
        reduction="none",
        frameworks=["all"],
    )
    check(c, sentences(c, saturation(c.dtype.name)))
