"""Focal rows on the real frameworks: right where they should be, flagged where not.

Expected behaviour is stated from the exact reference (mpmath) and from what the formulas
must do in the format, never from the code under test: e.g. float32's sigmoid rounds to
exactly 1 from z = 16.64, so anything forming ``1 - p`` from it returns 0 there.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from logitlab import exact
from logitlab.analysis.compare import Comparison
from logitlab.analysis.compare_focal import compare_focal
from logitlab.core.errors import InputError
from logitlab.core.focal_inputs import focal_case
from logitlab.core.formats import get_format
from logitlab.core.ulp import ulp_error

F32 = get_format("float32")
# Both signs, from near 0 to well past where float32's sigmoid saturates (z = 16.64) and
# where exp(z) overflows (88.7).
Z = np.concatenate([-np.geomspace(1e-3, 300, 40), np.geomspace(1e-3, 300, 40)])
HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def _rows(z: np.ndarray, y: float, names: list[str], **kw: object) -> Comparison:
    return compare_focal(
        z,
        np.full(z.shape, y),
        reduction="none",
        formulations=names,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("y", [0.0, 1.0])
def test_naive_probability_space_goes_non_finite_and_is_flagged(y: float) -> None:
    c = _rows(Z, y, ["torch.naive_focal"])
    row = c.row("torch.naive_focal")
    assert row.status == "ok" and row.value is not None
    # against the target beyond the saturation of sigmoid: log(0)
    against = Z > 20 if y == 0 else Z < -120  # sigmoid(-120) = 7.7e-53 underflows float32
    assert not np.isfinite(row.value[against]).any()
    flags = np.array(row.element_flags, dtype=object)
    assert all("non-finite" in f for f in flags[against])
    assert "non-finite" in row.flags and "sigmoid saturated" in row.flags


@pytest.mark.parametrize("name", ["kornia.binary_focal", "optax.sigmoid_focal"])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_log_space_paths_within_a_few_ulp(name: str, y: float) -> None:
    c = _rows(Z, y, [name], frameworks=None)
    row = c.row(name)
    assert row.status == "ok"
    assert row.ulp_error is not None and row.grad_ulp_error is not None
    flushed = np.array(["subnormal flushed" in f for f in row.element_flags])
    # Both form (1 - p_t)**gamma as exp(gamma * logsigmoid(-+z)): logsigmoid's rounding
    # (half an ULP of a number near |z|) becomes a relative error of about gamma |z| / 2
    # ULP after exp, so the bound grows with |z|: 4 + gamma |z| ULP.  (optax flushes
    # subnormal results, which classify flags.)
    bound = 4 + 2.0 * np.abs(c.case.logits)
    assert (row.ulp_error[~flushed] <= bound[~flushed]).all()
    assert (row.grad_ulp_error[~flushed] <= bound[~flushed]).all()
    assert not ({"non-finite", "NaN", "sigmoid saturated"} & set(row.flags))


def test_torchvision_formula_loses_small_losses_and_says_so() -> None:
    # With the target (y = 1, z > 16.64): p rounds to 1, so 1 - p_t = 0 and the loss is 0
    # where the exact loss is sigma(-z)**2 * log1p(exp(-z)) * alpha (a normal float32 up
    # to z ~ 28).
    z = np.array([17.0, 20.0, 25.0])
    c = _rows(z, 1.0, ["torch.torchvision_formula"])
    row = c.row("torch.torchvision_formula")
    assert row.value is not None and (row.value == 0).all()
    ex = exact.binary_focal_loss(c.case.logits, c.case.targets, 0.25, 2.0)
    assert (ex.value_rounded(F32) > F32.smallest_normal).all()
    assert all("sigmoid saturated" in f for f in row.element_flags)
    assert "gradient vanished" in row.grad_flags
    # Against the target it stays right: the BCE is from logits and 1 - p_t is near 1.
    c = _rows(np.array([-5.0, -50.0]), 1.0, ["torch.torchvision_formula"])
    assert c.row("torch.torchvision_formula").max_ulp_error <= 2
    assert c.row("torch.torchvision_formula").flags == ()
    # At z = -300 sigmoid underflows to 0 (flagged, by definition) but 1 - p_t = 1 is
    # still right, and so is the loss.
    c = _rows(np.array([-300.0]), 1.0, ["torch.torchvision_formula"])
    assert c.row("torch.torchvision_formula").max_ulp_error <= 0.5
    assert c.row("torch.torchvision_formula").flags == ("sigmoid saturated",)


def test_keras_from_logits_still_clips_the_probability() -> None:
    # Keras' BinaryFocalCrossentropy(from_logits=True) applies a sigmoid and then the BCE on
    # the probability clipped to [1e-7, 1 - 1e-7]: against the target the loss stops at
    # 0.25 * (1 - 1e-7)**2 * -log(1e-7) (float32 clip), far from 0.25 * 50 exact.
    c = _rows(np.array([-50.0]), 1.0, ["keras.focal_logits"])
    row = c.row("keras.focal_logits")
    assert row.value is not None
    expected = 0.25 * (1 - 1e-7) ** 2 * -math.log(float(F32.round(np.array(1e-7))))
    assert row.value[0] == pytest.approx(expected, rel=1e-5)
    assert "probability clipped" in row.flags
    # The clip stops the BCE's gradient; what is left comes from (1 - p)**2 (p = 2e-22),
    # not -alpha = -0.25.
    assert row.grad is not None and abs(row.grad[0]) < 1e-15


def test_soft_targets_not_applicable_where_the_loss_differs() -> None:
    c = compare_focal([0.5, -1.0], [0.3, 0.9], formulations=["kornia.binary_focal"])
    row = c.row("kornia.binary_focal")
    assert row.status == "not applicable"
    assert row.reason is not None and "soft targets" in row.reason
    # ... while optax and torchvision's formula compute torchvision's soft-target loss
    c = compare_focal(
        [0.5, -1.0],
        [0.3, 0.9],
        reduction="none",
        formulations=["optax.sigmoid_focal", "torch.torchvision_formula"],
    )
    for r in c.rows:
        assert r.status == "ok" and r.max_ulp_error <= 4


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision is installed: the row runs")
def test_torchvision_row_is_skipped_and_says_why() -> None:
    c = compare_focal([1.0], [1.0], formulations=["torchvision.sigmoid_focal_loss"])
    row = c.row("torchvision.sigmoid_focal_loss")
    assert row.status == "skipped"
    assert row.reason is not None and "torchvision is not installed" in row.reason


@pytest.mark.skipif(not HAS_TORCHVISION, reason="torchvision not installed here")
def test_torchvision_function_matches_its_formula() -> None:  # pragma: no cover
    c = compare_focal(
        Z,
        np.ones_like(Z),
        reduction="none",
        formulations=["torchvision.sigmoid_focal_loss", "torch.torchvision_formula"],
    )
    a, b = c.rows
    assert np.array_equal(a.value, b.value, equal_nan=True)


def test_default_rows_and_reduction() -> None:
    c = compare_focal()
    names = [r.formulation.name for r in c.rows]
    assert "torch.torchvision_formula" in names and "kornia.binary_focal" in names
    assert not any(n.startswith(("optax", "keras")) for n in names)
    # mean: the value is the exact mean, within a few ULP, for the log-space path
    row = c.row("kornia.binary_focal")
    ex = exact.binary_focal_loss(c.case.logits, c.case.targets, 0.25, 2.0, "mean")
    assert row.value is not None
    assert ulp_error(float(row.value), ex.values[0], F32) <= 4
    if "quantity" in Comparison.__dataclass_fields__:
        assert getattr(c, "quantity") == "focal"  # noqa: B009 (the field comes with a merge)


def test_alpha_none_and_gamma_zero_are_bce() -> None:
    c = compare_focal(
        [-30.0, 2.0, 40.0],
        [1.0, 0.0, 1.0],
        alpha=None,
        gamma=0.0,
        reduction="none",
        formulations=["kornia.binary_focal", "optax.sigmoid_focal"],
    )
    bce = exact.bce_loss(c.case.logits, c.case.targets, reduction="none").value_rounded(F32)
    for r in c.rows:
        assert r.value is not None
        assert np.max(np.abs(r.value - bce) / bce) < 4 * F32.eps


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": "x"}, "alpha"),
        ({"alpha": True}, "alpha"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": math.inf}, "gamma"),
        ({"targets": [2.0]}, "targets"),
        ({"targets": [1.0, 0.0, 1.0]}, "targets"),
        ({"logits": []}, "logits"),
        ({"logits": [math.nan]}, "logits"),
        ({"reduction": "avg"}, "reduction"),
        ({"dtype": "float8"}, "dtype"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, object], argument: str) -> None:
    args: dict[str, object] = {"logits": [1.0, 2.0], "targets": [1.0, 0.0], **kwargs}
    with pytest.raises(InputError) as err:
        focal_case(**args)  # type: ignore[arg-type]
    assert err.value.argument == argument
    assert "\n" not in str(err.value)
    with pytest.raises(InputError):
        compare_focal(**args)  # type: ignore[arg-type]


def test_case_rounds_to_the_dtype_and_keeps_alpha_gamma() -> None:
    case = focal_case([0.1], [1], alpha=0.1, gamma=1.5, dtype="float16", reduction="SUM")
    assert case.logits[0] == float(np.float16(0.1))
    assert (case.alpha, case.gamma, case.reduction, case.dtype.name) == (
        0.1,
        1.5,
        "sum",
        "float16",
    )
