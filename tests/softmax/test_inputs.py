"""SoftmaxCase.from_user: shapes, targets, rounding, and every bad input naming its argument."""

from __future__ import annotations

import math

import numpy as np
import pytest

from logitlab.core.errors import InputError
from logitlab.core.inputs import SoftmaxCase


def test_one_flat_row_and_a_class_index() -> None:
    case = SoftmaxCase.from_user([1000, 0, -1000], 2)
    assert case.logits.shape == (1, 3)
    assert case.class_indices and case.target.tolist() == [2]
    assert case.coefficients.tolist() == [[0.0, 0.0, 1.0]]


def test_nested_rows_with_a_mask() -> None:
    case = SoftmaxCase.from_user([[3, -math.inf, 1], [0, 1, 2]], [0, 2])
    assert case.shape == (2, 3)
    assert case.masked.tolist() == [[False, True, False], [False, False, False]]


def test_probability_targets_and_coefficients_by_hand() -> None:
    # q = w * ((1 - eps) * t + eps / C), with eps = 0.25, C = 2, w = (1, 3)
    case = SoftmaxCase.from_user(
        [[0, 1]], [[0.5, 0.5]], label_smoothing=0.25, weight=[1, 3], dtype="float64"
    )
    assert not case.class_indices
    assert case.coefficients.tolist() == [[0.5, 1.5]]


def test_ignored_row_counts_nothing() -> None:
    case = SoftmaxCase.from_user([[0, 1], [1, 0]], [-100, 1], label_smoothing=0.5)
    assert case.coefficients.tolist() == [[0.0, 0.0], [0.25, 0.75]]


def test_rounding_is_noted() -> None:
    case = SoftmaxCase.from_user([0.1, 0], 0, dtype="float16")
    assert case.logits[0, 0] == float(np.float16(0.1))
    assert any("float16" in n for n in case.notes)


@pytest.mark.parametrize(
    ("kwargs", "argument", "words"),
    [
        ({"logits": [[1, 2], [3]], "target": [0, 0]}, "logits", "row 1 has 1 entries"),
        ({"logits": [1], "target": 0}, "logits", "at least 2 classes"),
        ({"logits": [1, math.nan], "target": 0}, "logits", "NaN"),
        ({"logits": "1 2", "target": 0}, "logits", "string"),
        ({"logits": [1, 2], "target": 2}, "target", "outside [0, 1]"),
        ({"logits": [1, 2], "target": -1}, "target", "not ignore_index"),
        ({"logits": [1, 2], "target": 0.5}, "target", "not a class index"),
        ({"logits": [[1, 2], [3, 4]], "target": [0]}, "target", "1 class indices for 2"),
        ({"logits": [1, 2], "target": [[0.5, 1.5]]}, "target", "outside [0, 1]"),
        ({"logits": [[1, 2, 3]], "target": [[0.5, 0.5]]}, "target", "shape"),
        ({"logits": [1, 2], "target": 0, "weight": [1]}, "weight", "one per class"),
        ({"logits": [1, 2], "target": 0, "weight": [1, -1]}, "weight", "negative"),
        (
            {"logits": [1, 2], "target": 0, "weight": [1, 1e6], "dtype": "float16"},
            "weight",
            "overflows",
        ),
        ({"logits": [1, 2], "target": 0, "label_smoothing": 1.5}, "label_smoothing", "[0, 1]"),
        ({"logits": [1, 2], "target": 0, "ignore_index": 0.5}, "ignore_index", "integer"),
        ({"logits": [1, 2], "target": 0, "reduction": "avg"}, "reduction", "unknown"),
    ],
)
def test_bad_input_names_its_argument(kwargs: dict, argument: str, words: str) -> None:
    with pytest.raises(InputError) as err:
        SoftmaxCase.from_user(**kwargs)
    assert err.value.argument == argument
    assert words in err.value.message


def test_ignore_index_target_is_accepted() -> None:
    case = SoftmaxCase.from_user([[1, 2]], [7], ignore_index=7)
    assert case.target.tolist() == [7] and case.coefficients.tolist() == [[0.0, 0.0]]


def test_plus_infinity_is_allowed() -> None:
    case = SoftmaxCase.from_user([math.inf, 0], 0)
    assert case.logits[0, 0] == math.inf
