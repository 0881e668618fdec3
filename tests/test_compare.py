"""compare(): the post's examples, the flags, and bad input."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logitlab
from logitlab import InputError, exact
from logitlab.analysis.compare import compare
from logitlab.core.ulp import ulp_error


def test_defaults_are_the_posts_first_example() -> None:
    c = compare()
    assert c.case.logits.tolist() == [-2.0, 2.0]
    assert c.case.targets.tolist() == [float(np.float32(0.3)), float(np.float32(0.7))]
    # Today's PyTorch, float32 (the post printed these two numbers).
    assert c.row("torch.probabilities").value.item() == pytest.approx(0.7269279956817627, abs=0)
    assert c.row("torch.logits").value.item() == pytest.approx(0.7269281148910522, abs=0)
    with mpmath.workprec(200):
        expected = mpmath.mpf("0.7269280348848304066")
    assert mpmath.almosteq(c.exact.values[0], expected, rel_eps=1e-18)
    # The logits path is more than one rounding away here: (0.7269281148910522 - exact) in
    # float32 ULPs of [0.5, 1), 2**-24, is 1.342.
    by_hand = (mpmath.mpf(0.7269281148910522) - expected) / mpmath.mpf(2) ** -24
    assert c.row("torch.logits").max_ulp_error == pytest.approx(float(by_hand), rel=1e-9)
    assert 1.34 < float(by_hand) < 1.35


def test_large_logits_break_the_probabilities_path() -> None:
    c = logitlab.compare(logits=[20, 20])
    probs, logits = c.row("torch.probabilities"), c.row("torch.logits")
    assert probs.value.item() == 50.0
    assert logits.value.item() == 10.0
    assert probs.flags == ("sigmoid saturated", "log clamped", "gradient vanished")
    assert logits.flags == ()
    assert np.all(probs.grad == 0)
    assert c.exact_grad().tolist() == [float(np.float32(0.35)), float(np.float32(0.15))]
    assert probs.max_relative_error == pytest.approx(4.0, rel=1e-6)


def test_json_is_complete_and_standard() -> None:
    import json

    c = compare(logits=[20, 20])
    text = json.dumps(c.to_dict(), allow_nan=False)
    data = json.loads(text)
    names = [r["name"] for r in data["rows"]]
    assert names[:3] == ["torch.probabilities", "torch.logits", "torch.naive"]
    naive = data["rows"][2]
    assert naive["value"] == ["Infinity"] and naive["grad"] == ["NaN", "NaN"]
    assert data["exact"]["value"][0].startswith("10.00000000206115362")


def test_pos_weight_row_is_not_applicable_on_the_probabilities_path() -> None:
    c = compare(logits=[1, 2], targets=[1, 0], pos_weight=[3.0])
    row = c.row("torch.probabilities")
    assert row.status == "not applicable" and "pos_weight" in (row.reason or "")
    assert c.row("torch.logits").status == "ok"


def test_infinite_logits_are_allowed_and_explained() -> None:
    c = compare(logits=[math.inf, -math.inf], targets=[1.0, 0.0], reduction="none")
    assert c.exact_value().tolist() == [0.0, 0.0]
    logits_row = c.row("torch.logits")
    assert logits_row.status == "ok"
    # Whatever torch returns there is reported, with a flag where it is not finite.
    for value, flags in zip(logits_row.value, logits_row.element_flags):
        assert math.isfinite(value) or "non-finite" in flags


def test_rounding_note() -> None:
    c = compare(logits=[1e6], targets=[0.5], dtype="float16")
    assert any("overflows float16" in n for n in c.notes)
    assert math.isinf(c.case.logits[0])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"targets": [0.3, 1.5]}, "targets"),
        ({"targets": [-0.1, 0.5]}, "targets"),
        ({"logits": [math.nan, 1.0]}, "logits"),
        ({"targets": [math.nan, 0.5]}, "targets"),
        ({"logits": [1, 2, 3], "targets": [0.1, 0.2]}, "targets"),
        ({"dtype": "float8"}, "dtype"),
        ({"reduction": "average"}, "reduction"),
        ({"logits": []}, "logits"),
        ({"logits": "abc"}, "logits"),
        ({"logits": ["x", 1]}, "logits"),
        ({"weight": [1, 2, 3]}, "weight"),
        ({"pos_weight": [math.inf]}, "pos_weight"),
        ({"weight": [1e6, 1], "dtype": "float16"}, "weight"),
        ({"logits": list(range(20_000)), "targets": [0.5]}, "logits"),
        ({"formulations": ["torch.nope"]}, "formulations"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, argument: str) -> None:
    with pytest.raises(InputError) as info:
        compare(**kwargs)
    assert info.value.argument == argument
    assert str(info.value).startswith(argument + ":")
    assert "\n" not in str(info.value)


finite32 = st.floats(-200, 200, allow_nan=False, width=32)
unit32 = st.floats(0, 1, width=32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    z=st.lists(finite32, min_size=1, max_size=4),
    y=st.lists(unit32, min_size=1, max_size=4),
)
def test_flags_hold_exactly_when_their_condition_does(z: list[float], y: list[float]) -> None:
    n = min(len(z), len(y))
    z, y = z[:n], y[:n]
    c = compare(logits=z, targets=y, reduction="none")
    zt = torch.tensor(z, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    p = torch.sigmoid(zt)
    saturated = ((p == 0) | (p == 1)).tolist()
    clamped = (
        ((torch.log(p) < -100) & (yt != 0)) | ((torch.log1p(-p) < -100) & (yt != 1))
    ).tolist()
    variance = (1 - p) * p
    grad_clamped = ((variance > 0) & (variance < torch.tensor(1e-12))).tolist()
    exact_grad = c.exact_grad()
    for row in c.rows:
        if row.formulation.framework != "torch":
            continue
        assert row.status == "ok"
        for i, flags in enumerate(row.element_flags):
            via_p = row.formulation.via_probabilities
            assert ("sigmoid saturated" in flags) == (via_p and saturated[i])
            is_prob = row.formulation.name == "torch.probabilities"
            assert ("log clamped" in flags) == (is_prob and clamped[i])
            assert ("gradient clamped" in flags) == (is_prob and grad_clamped[i])
            vanished = row.grad[i] == 0 and exact_grad[i] != 0
            assert ("gradient vanished" in flags) == vanished
            bad = not (math.isfinite(row.value[i]) and math.isfinite(row.grad[i]))
            assert ("non-finite" in flags) == bad


def _ulp32(x: float) -> float:
    return float(np.spacing(np.float32(abs(x))))


@settings(max_examples=100, deadline=None)
@given(z=st.floats(-1e4, 1e4, allow_nan=False, width=32), y=st.sampled_from([0.0, 1.0]))
def test_exact_finite_and_logits_path_close_for_hard_targets(z: float, y: float) -> None:
    c = compare(logits=[z], targets=[y], reduction="none", formulations=["torch.logits"])
    ex, exg = c.exact.values[0], c.exact.grads[0]
    assert mpmath.isfinite(ex) and mpmath.isfinite(exg)
    row = c.rows[0]
    value, grad = float(row.value[0]), float(row.grad[0])
    err = abs(mpmath.mpf(value) - ex)
    # torch computes (1 - y) z - log_sigmoid(z).  Without cancellation (y = 1, or y = 0 and
    # z >= 0) that is within 2 ULP of the exact loss (measured: 1.16).
    if y == 1.0 or z >= 0:
        assert ulp_error(value, ex, "float32") <= 2, (z, y, value)
    else:
        # y = 0, z < 0: z - log_sigmoid(z) subtracts two numbers near z exactly (Sterbenz),
        # so the error is log_sigmoid(z)'s rounding, half an ULP of |z| + loss, plus the
        # loss's own 2 ULP.  The relative error grows to 1 as the loss shrinks (below).
        bound = 0.5 * _ulp32(abs(z) + float(ex)) + 2 * _ulp32(float(ex))
        assert err <= bound, (z, y, value)
    # The gradient sigmoid(z) - y: within 2 ULP, except that sigmoid(z) - 1 (y = 1) cancels
    # (sigmoid(z) carries an absolute error of at most 2**-25 + its ULP error) and that
    # sigmoid(z) for y = 0 underflows below float32's smallest normal, 2**-126.
    gerr = abs(mpmath.mpf(grad) - exg)
    floor = 2.0**-24 if y == 1.0 else 2.0**-126
    assert gerr <= 2 * _ulp32(float(exg)) + floor, (z, y, grad)


def test_logits_path_loses_the_tiny_loss_for_y_0() -> None:
    # y = 0, z = -20: the exact loss is log1p(e**-20) = 2.06e-9; torch's z - log_sigmoid(z)
    # rounds log_sigmoid(-20) to -20 (2.06e-9 is below half an ULP of 20, 2**-20), so
    # returns 0: relative error 1.  At z = -10 the loss 4.54e-5 keeps only a few digits.
    c = compare(logits=[-20.0, -10.0], targets=[0.0, 0.0], reduction="none")
    row = c.row("torch.logits")
    assert float(row.value[0]) == 0.0
    assert float(c.exact.values[0]) == pytest.approx(math.log1p(math.exp(-20)), rel=1e-15)
    loss = math.log1p(math.exp(-10))
    err = abs(float(row.value[1]) - loss)
    # lost to a 1e-4 relative error or worse, yet within the model's bound: half an ULP
    # of 10 in float32 (2**-20) plus 2 ULP of the loss
    assert 1e-4 * loss < err <= 0.5 * 2.0**-20 + 2 * _ulp32(loss)


def test_reduction_sum_and_weights_match_exact_loop() -> None:
    z, y, w = [0.5, -1.5, 4.0], [0.2, 0.9, 1.0], [1.0, 2.0, 0.5]
    c = compare(logits=z, targets=y, weight=w, reduction="sum", dtype="float64")
    zs = c.case.logits.tolist()
    expected = sum(exact.bce(a, b, d) for a, b, d in zip(zs, c.case.targets.tolist(), w))
    assert mpmath.almosteq(c.exact.values[0], expected, rel_eps=1e-40)
    assert c.row("torch.logits").max_ulp_error <= 4


def test_default_rows_are_torch_and_stable_and_all_adds_more() -> None:
    from logitlab.analysis.compare import DEFAULT_FRAMEWORKS

    c = compare()
    assert {r.formulation.framework for r in c.rows} <= set(DEFAULT_FRAMEWORKS)
    every = compare(frameworks=["all"])
    assert len(every.rows) >= len(c.rows)
    with pytest.raises(InputError, match="frameworks: unknown framework 'matlab'"):
        compare(frameworks=["matlab"])


def test_backward_clamp_shrinks_the_gradient_and_is_flagged() -> None:
    # float32 z = -30, y = 0: p = 9.4e-14, p(1-p) < 1e-12, so PyTorch's backward divides
    # by 1e-12 instead: the gradient comes out p(1-p)/1e-12 = 0.0936 times too small.
    c = compare(logits=[-30.0], targets=[0.0], reduction="none")
    row = c.row("torch.probabilities")
    assert row.flags == ("gradient clamped",)
    ratio = row.grad[0] / float(c.exact.grads[0])
    assert ratio == pytest.approx(float(exact.sigmoid(-30.0)) / 1e-12, rel=1e-6)
    assert c.row("torch.logits").flags == ()
