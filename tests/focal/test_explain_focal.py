"""One test per focal explanation template: it speaks exactly where its flags (or
measurements) hold, names only the elements that have them, and never contradicts a flag."""

from __future__ import annotations

import re

import numpy as np
import pytest

from logitlab.analysis import explain_focal as ef
from logitlab.analysis.compare import Comparison, Row
from logitlab.analysis.compare_focal import compare_focal
from logitlab.core.numbers import shortest_repr

Z = [-200.0, -20.0, -3.0, 0.5, 3.0, 20.0, 200.0]


@pytest.fixture(scope="module")
def float32_y1() -> Comparison:
    names = [
        "torch.naive_focal",
        "torch.torchvision_formula",
        "torchvision.sigmoid_focal_loss",
        "kornia.binary_focal",
        "keras.focal_logits",
    ]
    return compare_focal(Z, [1.0] * len(Z), formulations=names, reduction="none")


@pytest.fixture(scope="module")
def float64_mixed() -> Comparison:
    names = [
        "torch.naive_focal",
        "kornia.binary_focal",
        "optax.sigmoid_focal",
        "keras.focal_logits",
    ]
    return compare_focal(
        [-3.0, 3.0, 0.5], [1.0, 0.0, 1.0], formulations=names, reduction="mean", dtype="float64"
    )


def _named(c: Comparison, sentence: str) -> set[int]:
    """The elements a sentence names (by their logits as shown)."""
    shown = set(re.findall(r"z = (-?[0-9.e+-]+|-?inf)", sentence))
    z = np.asarray(c.case.logits).ravel()
    return {i for i, v in enumerate(z) if shortest_repr(v, c.dtype) in shown}


def _about(sentences: list[str], row: Row) -> list[str]:
    return [s for s in sentences if s.startswith(row.formulation.name + " ")]


def _flagged(row: Row, flag: str, side: str = "any") -> set[int]:
    per = {"any": row.element_flags, "loss": row.element_loss_flags}.get(
        side, row.element_grad_flags
    )
    return {i for i, f in enumerate(per) if flag in f}


def test_log_of_saturated(float32_y1: Comparison) -> None:
    c = float32_y1
    said = ef.log_of_saturated(c)
    for row in c.rows:
        expected = _flagged(row, "non-finite", "loss") & _flagged(row, "sigmoid saturated")
        mine = _about(said, row)
        if not expected or not row.formulation.via_probabilities:
            assert not mine
            continue
        assert len(mine) == 1 and _named(c, mine[0]) == expected
    naive = c.row("torch.naive_focal")
    assert _about(said, naive), "the hand-written formula goes non-finite in float32"


def test_non_finite_otherwise() -> None:
    # kornia at z = 3e38, y = 0: its gradient is NaN (the loss, 2.25e38, is right)
    c = compare_focal(
        [3e38, 1.0], [0.0, 0.0], formulations=["kornia.binary_focal"], reduction="none"
    )
    row = c.row("kornia.binary_focal")
    assert _flagged(row, "non-finite", "gradient") == {0}
    said = ef.non_finite_otherwise(c)
    assert len(said) == 1 and "gradient is NaN or infinite" in said[0]
    assert _named(c, said[0]) == {0}
    # the saturated ones belong to log_of_saturated, not here
    c = compare_focal([-200.0], [1.0], formulations=["torch.naive_focal"], reduction="none")
    assert ef.non_finite_otherwise(c) == [] or all(
        "gradient" in s for s in ef.non_finite_otherwise(c)
    )


def test_one_minus_p_t(float32_y1: Comparison) -> None:
    c = float32_y1
    said = ef.one_minus_p_t(c)
    row = c.row("torch.torchvision_formula")
    mine = _about(said, row)
    assert len(mine) == 1
    named = _named(c, mine[0])
    # z = 20 (p rounds to 1 = the target); not z = -200 (p = 0, 1 - p_t = 1)
    z = np.asarray(c.case.logits)
    assert named == {int(np.flatnonzero(z == 20.0)[0])}
    for i in named:
        assert "gradient vanished" in row.element_grad_flags[i]
        assert "sigmoid saturated" in row.element_flags[i]
    for s in said:
        assert "z = -200.0" not in s


def test_clipped(float32_y1: Comparison) -> None:
    c = float32_y1
    said = ef.clipped(c)
    for row in c.rows:
        expected = _flagged(row, "probability clipped", "loss")
        mine = _about(said, row)
        assert bool(mine) == bool(expected)
        if mine:
            assert _named(c, mine[0]) == set(sorted(expected)[:4]) or len(expected) > 4
    assert _about(said, c.row("keras.focal_logits"))


def test_vanished_otherwise() -> None:
    # float16, y = 1, z = 5.5390625: sigmoid is 0.996 (not saturated) but the gradient's
    # product of small factors underflows to 0 in torchvision's formula
    c = compare_focal(
        [5.5390625, 1.0],
        [1.0, 1.0],
        formulations=["torch.torchvision_formula"],
        reduction="none",
        dtype="float16",
    )
    row = c.row("torch.torchvision_formula")
    assert _flagged(row, "gradient vanished", "gradient") == {0}
    assert not _flagged(row, "sigmoid saturated")
    said = ef.vanished_otherwise(c)
    assert len(said) == 1 and _named(c, said[0]) == {0}
    assert ef.one_minus_p_t(c) == []


def test_flushed() -> None:
    # optax at y = 0, z = -31: the exact loss, 3.06e-41, is a float32 subnormal; XLA gives 0
    c = compare_focal(
        [-31.0, 1.0], [0.0, 0.0], formulations=["optax.sigmoid_focal"], reduction="none"
    )
    row = c.row("optax.sigmoid_focal")
    assert _flagged(row, "subnormal flushed") == {0}
    said = ef.flushed(c)
    assert len(said) == 1 and _named(c, said[0]) == {0} and "jax" in said[0]


def test_quiet_error(float64_mixed: Comparison) -> None:
    c = float64_mixed
    said = ef.quiet_error(c)
    for row in c.rows:
        mine = _about(said, row)
        if row.status != "ok" or row.flags:
            assert not mine
            continue
        g = 0.0 if row.grad_ulp_error is None else float(np.nanmax(row.grad_ulp_error))
        assert bool(mine) == (row.max_ulp_error > ef.NOTABLE_ULPS or g > ef.NOTABLE_ULPS)
    # Keras computes in float32 (its floatx): said from the values it returned
    keras = _about(said, c.row("keras.focal_logits"))
    assert keras and "computed in float32" in keras[0]


def test_accurate(float64_mixed: Comparison) -> None:
    c = float64_mixed
    said = ef.accurate(c)
    assert len(said) <= 1
    for row in c.rows:
        named = bool(said) and row.formulation.name in said[0]
        if named:
            assert row.flags == ()
            assert row.max_ulp_error <= 1
            assert row.grad_ulp_error is not None and np.nanmax(row.grad_ulp_error) <= 1
    assert said and "optax.sigmoid_focal" in said[0]


def test_not_run() -> None:
    c = compare_focal([0.5], [0.3], formulations=["kornia.binary_focal", "optax.sigmoid_focal"])
    said = ef.not_run(c)
    assert said == [
        "kornia.binary_focal did not run (not applicable): "
        + str(c.row("kornia.binary_focal").reason)
        + "."
    ]


def test_focal_sentences_in_template_order(float32_y1: Comparison) -> None:
    expected: list[str] = []
    for template in ef.TEMPLATES:
        expected += template(float32_y1)
    assert ef.focal_sentences(float32_y1) == expected
    # no row that did not run is named outside its one sentence
    for row in float32_y1.rows:
        if row.status != "ok":
            assert len(_about(ef.focal_sentences(float32_y1), row)) == 1
