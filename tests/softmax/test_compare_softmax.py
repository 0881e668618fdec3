"""compare_softmax: the done-when cases, shapes (values per sample, gradients per logit), the
JSON and its schema, and Comparison's backward-compatible constructors."""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest

from logitlab.analysis.compare import Comparison, Row, compare
from logitlab.analysis.compare_softmax import compare_softmax
from logitlab.core.errors import InputError

INF = math.inf


def test_zero_minus_110_target_1() -> None:
    c = compare_softmax([0, -110], 1)
    assert c.quantity == "softmax_ce"
    # exact: 110 + log1p(e^-110), 110.0 in float32
    assert float(c.exact.values[0]) == pytest.approx(110.0, rel=1e-15)
    ce = c.row("torch.cross_entropy")
    assert ce.value.item() == 110.0 and ce.flags == ()
    bad = c.row("torch.log_of_softmax")
    assert bad.value.item() == INF
    assert bad.loss_flags == ("softmax underflow", "log of 0", "non-finite")
    assert c.row("torch.double_softmax").loss_flags == ("double softmax",)


def test_masked_example_shows_nan_paths_and_safe_ones() -> None:
    c = compare_softmax([[3, -INF, 1]], 0, reduction="none", frameworks=["all"])
    expected = float(mpmath.log1p(mpmath.exp(-2)))
    safe = ["torch.cross_entropy", "torch.log_softmax_nll", "optax.safe_softmax_ce"]
    safe += ["optax.softmax_ce", "stable.softmax_ce", "keras.sparse_ce_logits"]
    for name in safe:
        r = c.row(name)
        assert r.flags == (), name
        # safe: no NaN, no flag, and near the exact value (optax's fused float32 path is
        # 5.4 ULPs off here; the explanation's "accurate" bound is 8)
        assert abs(r.value.item() - expected) <= 8 * np.spacing(np.float32(expected)), name
    for name in ("torch.handwritten", "optax.softmax_ce_dense", "keras.categorical_ce_logits"):
        assert c.row(name).loss_flags == ("masked NaN", "non-finite"), name
    assert "masked NaN" in c.row("torch.log_of_softmax").grad_flags


def test_fully_masked_row_and_target_on_a_masked_class() -> None:
    c = compare_softmax(
        [[3, -INF, 1], [-INF, -INF, -INF], [3, -INF, 1]], [0, 0, 1], reduction="none"
    )
    assert c.exact_value()[1] != c.exact_value()[1]  # NaN: undefined
    assert c.exact_value()[2] == INF
    ce = c.row("torch.cross_entropy")
    assert math.isnan(ce.value[1]) and ce.value[2] == INF
    assert ce.element_flags[1] == () and ce.element_flags[2] == ()
    # errors are measured where the exact value is defined
    assert math.isfinite(ce.max_ulp_error)


def test_values_per_sample_gradients_per_logit() -> None:
    c = compare_softmax([[0, 1, 2], [2, 1, 0]], [0, 2], reduction="none")
    r = c.row("torch.cross_entropy")
    assert r.value.shape == (2,) and r.grad.shape == (2, 3)
    assert len(r.element_flags) == 2 and c.n_elements == 2
    d = c.to_dict()
    assert d["value_shape"] == [2] and d["grad_shape"] == [2, 3] and d["flags_per"] == "sample"
    assert d["inputs"]["target"] == [0, 2] and d["inputs"]["target_kind"] == "class indices"


def test_json_matches_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from logitlab.schemas import load

    for c in (
        compare_softmax([[3, -INF, 1], [-INF, -INF, -INF]], [0, 0], reduction="none"),
        compare_softmax([[0, 1]], [[0.25, 0.75]], label_smoothing=0.1, weight=[1, 2]),
        compare_softmax([0, -110], 1, frameworks=["all"], dtype="bfloat16"),
    ):
        payload = json.loads(json.dumps(c.to_dict(), allow_nan=False))
        jsonschema.validate(payload, load("compare"))


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(InputError) as err:
        compare_softmax([[1, 2], [3]], [0, 0])
    assert err.value.argument == "logits"
    with pytest.raises(InputError) as err:
        compare_softmax([1, 2], 0, frameworks=["nope"])
    assert err.value.argument == "frameworks"


def test_comparison_stays_backward_compatible() -> None:
    c = compare(logits=[20, 20])
    assert c.quantity == "bce" and c.rows[0].quantity == "bce"
    again = Comparison(case=c.case, exact=c.exact, rows=c.rows, notes=c.notes)
    assert again.quantity == "bce" and again.to_dict()["quantity"] == "bce"
    row = Row(c.rows[0].formulation, "code", "ok")
    assert row.quantity == "bce" and row.defined is None
    focal_like = Comparison(case=c.case, exact=c.exact, rows=c.rows, quantity="focal")
    assert "focal" in repr(focal_like)
