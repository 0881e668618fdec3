"""The exact reference on masked (-inf) logits, against values worked out by hand in mpmath."""

from __future__ import annotations

import math
from collections.abc import Iterator

import mpmath
import numpy as np
import pytest

from logitlab.exact import softmax_cross_entropy

INF = math.inf


@pytest.fixture(autouse=True)
def _digits() -> Iterator[None]:
    # expected values far more accurate than the float64 they are compared as
    with mpmath.workdps(50):
        yield


def test_one_masked_class_is_the_loss_of_the_others() -> None:
    # z = (3, -inf, 1), target 0: p0 = 1 / (1 + e^-2), loss = log(1 + e^-2)
    r = softmax_cross_entropy([[3.0, -INF, 1.0]], np.array([0]), reduction="none")
    e = mpmath.exp(-2)
    assert float(r.values[0]) == float(mpmath.log1p(e))
    p2 = e / (1 + e)
    assert [float(g) for g in r.grads] == [float(-p2), 0.0, float(p2)]


def test_target_on_a_masked_class_is_infinite() -> None:
    r = softmax_cross_entropy([[3.0, -INF, 1.0]], np.array([1]), reduction="none")
    assert r.values[0] == mpmath.inf
    # d/dz_j = p_j - [j == 1]: p = (1/(1+e^-2), 0, e^-2/(1+e^-2))
    e = mpmath.exp(-2)
    assert [float(g) for g in r.grads] == [float(1 / (1 + e)), -1.0, float(e / (1 + e))]


def test_label_smoothing_puts_mass_on_the_mask() -> None:
    r = softmax_cross_entropy(
        [[3.0, -INF, 1.0]], np.array([0]), reduction="none", label_smoothing=0.1
    )
    assert r.values[0] == mpmath.inf


def test_fully_masked_row_is_undefined_unless_ignored() -> None:
    r = softmax_cross_entropy([[-INF, -INF]], np.array([0]), reduction="none")
    assert mpmath.isnan(r.values[0]) and all(mpmath.isnan(g) for g in r.grads)
    mean = softmax_cross_entropy([[-INF, -INF], [0.0, 0.0]], np.array([0, 1]))
    assert mpmath.isnan(mean.values[0])
    ignored = softmax_cross_entropy(
        [[-INF, -INF], [0.0, 0.0]], np.array([-100, 1]), reduction="sum"
    )
    assert float(ignored.values[0]) == float(mpmath.log(2))
    assert [float(g) for g in ignored.grads[:2]] == [0.0, 0.0]


def test_probability_target_zero_at_the_mask() -> None:
    # t = (0.5, 0, 0.5) on z = (0, -inf, 0): loss = log 2, no 0 * inf
    r = softmax_cross_entropy([[0.0, -INF, 0.0]], np.array([[0.5, 0.0, 0.5]]), reduction="none")
    assert float(r.values[0]) == float(mpmath.log(2))
