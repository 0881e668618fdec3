"""Curves: the fast exact reference against logitlab.exact, and the curve against compare()."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from logitlab import exact
from logitlab.analysis.compare import compare
from logitlab.analysis.curves import MAX_CURVE_POINTS, _intervals, bce_curve, exact_bce_curve
from logitlab.analysis.saturation import saturation
from logitlab.core.errors import InputError
from logitlab.core.formats import get_format
from logitlab.core.ulp import round_to_format, ulp_error

DTYPES = ["float16", "bfloat16", "float32", "float64"]
CASES = [
    # (y, weight, pos_weight)
    (0.3, 1.0, 1.0),
    (0.7, 1.0, 1.0),
    (0.0, 1.0, 1.0),
    (1.0, 1.0, 1.0),
    (1e-10, 1.0, 1.0),
    (float(np.float32(0.3)), 2.5, 3.0),
    (0.5, 0.0, 1.0),
]


def _sample_logits() -> np.ndarray:
    rng = np.random.default_rng(6)
    # Subnormal and smallest-normal logits too: at y = 0.5, z = 5e-324 the gradient is
    # (1/2) sigma(z) - (1/2) sigma(-z) = tanh(z/2)/2 ~ z/4, a full cancellation.
    special = [
        0.0,
        5e-324,
        -5e-324,
        1e-310,
        -1e-310,
        2.2250738585072014e-308,
        -2.2250738585072014e-308,
        1e-30,
        -1e-30,
        16.64,
        -16.64,
        36.74,
        -88.72,
        88.72,
        300,
        -300,
        709.7,
        -709.7,
        745.2,
        -745.2,
        1000,
        -1000,
    ]
    # Points right next to the gradient's root log(pw*y/(1-y)) for the cases above.
    roots = []
    for y, _, pw in CASES:
        if 0 < y < 1:
            r = math.log(pw * y / (1 - y))
            roots += [r, math.nextafter(r, math.inf), math.nextafter(r, -math.inf), r + 1e-9]
    return np.array(special + roots + list(rng.uniform(-300, 300, 60)) + list(rng.normal(0, 5, 40)))


@pytest.mark.parametrize(("y", "w", "pw"), CASES)
def test_fast_exact_curve_agrees_with_mpmath(y: float, w: float, pw: float) -> None:
    z = _sample_logits()
    v_hi, v_lo, g_hi, g_lo = exact_bce_curve(z, y, w, pw, precision=53)
    for i, zi in enumerate(z):
        for name, hi, lo, ref in (
            ("value", v_hi[i], v_lo[i], exact.bce(float(zi), y, w, pw)),
            ("grad", g_hi[i], g_lo[i], exact.bce_grad(float(zi), y, w, pw)),
        ):
            # hi is the exact value correctly rounded to float64 (ties aside) ...
            assert ulp_error(hi, ref, "float64") <= 0.5 + 2**-6, (zi, name)
            # ... and hi + lo carries it to at least 53 + 6 bits, as the docstring promises.
            with mpmath.workprec(300):
                got = mpmath.mpf(float(hi)) + mpmath.mpf(float(lo))
                if ref == 0:
                    assert got == 0, (zi, name)
                elif abs(ref) > 1e-290:  # lo underflows below that; hi alone is then enough
                    assert abs(got - ref) <= abs(ref) * mpmath.mpf(2) ** -59, (zi, name)


def test_fast_exact_gradient_at_subnormal_logits_by_hand() -> None:
    # y = 1/2: the gradient is (sigma(z) - sigma(-z)) / 2 = tanh(z / 2) / 2 = z/4 - z**3/48...
    # so at a subnormal z it is z / 4 rounded (the cube is far below any float64); the loss
    # is 2 softplus(0) / 2 + O(z) = ln 2.
    z = np.array([1e-310, -1e-310, 4 * 5e-324, 5e-324])
    v_hi, _, g_hi, _ = exact_bce_curve(z, 0.5, 1.0, 1.0, precision=53)
    assert g_hi.tolist() == [1e-310 / 4, -1e-310 / 4, 5e-324, 0.0]
    assert v_hi.tolist() == [math.log(2)] * 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_curve_rows_equal_compare_at_the_same_logits(dtype: str) -> None:
    """One vectorised call per formulation gives what compare() gives element by element."""
    curve = bce_curve(0.3, dtype=dtype, z_min=-120, z_max=60, points=181)
    picks = [0, 30, 90, 100, 130, 150, 180]
    z = curve.z[picks]
    c = compare(z, 0.3, dtype=dtype, reduction="none")
    for r in curve.rows:
        cr = c.row(r.name)
        assert r.status == cr.status, r.name
        if r.status != "ok":
            continue
        assert r.value is not None and cr.value is not None
        np.testing.assert_array_equal(r.value[picks], cr.value, err_msg=r.name)
        if r.grad is not None:
            assert cr.grad is not None
            np.testing.assert_array_equal(r.grad[picks], cr.grad, err_msg=r.name)
        assert r.ulp_error is not None and cr.ulp_error is not None
        # Fast ULP errors against compare's exact mpmath ones.
        np.testing.assert_allclose(r.ulp_error[picks], cr.ulp_error, rtol=1e-9, atol=1e-3)
    # round_to_format, not FloatFormat.round: ml_dtypes rounds float64 -> bfloat16 through
    # float32 (two roundings), which misrounds 0.3 * 20 + 1.4e-9 = 6.015625... in bfloat16.
    rounded = [round_to_format(v, dtype) for v in curve.exact_value[picks]]
    np.testing.assert_array_equal(rounded, c.exact_value())


def test_curve_flags_and_saturation_agree() -> None:
    curve = bce_curve(0.3, dtype="float32")
    sat = saturation("float32")
    probs = next(r for r in curve.rows if r.name == "torch.probabilities")
    saturated = probs.flags["sigmoid saturated"]
    assert saturated[0][0] == -300.0 and saturated[0][1] <= sat.zero_up_to  # type: ignore[operator]
    assert saturated[-1][1] == 300.0 and saturated[-1][0] >= sat.one_from  # type: ignore[operator]
    logits = next(r for r in curve.rows if r.name == "torch.logits")
    assert logits.flags == {}
    assert logits.ulp_error is not None and float(logits.ulp_error.max()) < 8


def test_curve_points_are_dtype_values_and_capped() -> None:
    curve = bce_curve(0.5, dtype="bfloat16", points=MAX_CURVE_POINTS)
    fmt = get_format("bfloat16")
    np.testing.assert_array_equal(fmt.round(curve.z), curve.z)
    assert np.all(np.diff(curve.z) > 0)  # rounding's duplicates are gone
    assert curve.z.size <= MAX_CURVE_POINTS
    d = curve.to_dict()
    assert d["points"] == curve.z.size == len(d["z"])


def test_a_range_of_two_float16_neighbours_is_two_points() -> None:
    curve = bce_curve(0.5, z_min=1.0, z_max=1 + 2**-10, dtype="float16", points=50)
    assert curve.z.tolist() == [1.0, 1 + 2**-10]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"target": 2.0}, "target"),
        ({"target": math.nan}, "target"),
        ({"target": 0.5, "points": 1}, "points"),
        ({"target": 0.5, "points": MAX_CURVE_POINTS + 1}, "points"),
        ({"target": 0.5, "points": 10.0}, "points"),
        ({"target": 0.5, "z_min": 3.0, "z_max": 3.0}, "z_max"),
        # every logit of the range rounds to float32's 0 (found by hypothesis in test_api)
        ({"target": 0.5, "z_min": 0.0, "z_max": 5.1796787777200276e-188}, "z_max"),
        # 1 and 1 + 2**-12 are neighbours' midpoint apart in float16: both round to 1
        ({"target": 0.5, "z_min": 1.0, "z_max": 1 + 2**-12, "dtype": "float16"}, "z_max"),
        ({"target": 0.5, "z_min": -1e6}, "z_min"),
        ({"target": 0.5, "weight": math.inf}, "weight"),
        ({"target": 0.5, "dtype": "float8"}, "dtype"),
    ],
)
def test_curve_bad_input_names_the_argument(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(InputError) as info:
        bce_curve(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument


def test_intervals() -> None:
    z = np.arange(8.0)
    mask = np.array([1, 1, 0, 0, 1, 0, 1, 1], dtype=bool)
    assert _intervals(z, mask) == [(0.0, 1.0), (4.0, 4.0), (6.0, 7.0)]
    assert _intervals(z, np.zeros(8, dtype=bool)) == []


@pytest.mark.parametrize(
    ("dtype", "one", "zero"),
    [
        ("float16", 8.32, -17.34),
        ("bfloat16", 6.25, -89.0),
        ("float32", 16.64, -88.72),
        ("float64", 36.74, -709.78),
    ],
)
def test_saturation_thresholds(dtype: str, one: float, zero: float) -> None:
    import torch

    s = saturation(dtype)
    assert s.one_from is not None and s.zero_up_to is not None
    assert round(s.one_from, 2) == one and round(s.zero_up_to, 2) == zero
    fmt = get_format(dtype)
    t = torch.tensor([s.one_from, s.zero_up_to], dtype=torch.float64).to(fmt.torch_dtype())
    assert torch.sigmoid(t).double().tolist() == [1.0, 0.0]
    below = np.nextafter(
        np.array(s.one_from, dtype=fmt.numpy_dtype), np.array(0, dtype=fmt.numpy_dtype)
    )
    above = np.nextafter(
        np.array(s.zero_up_to, dtype=fmt.numpy_dtype), np.array(0, dtype=fmt.numpy_dtype)
    )
    t = torch.tensor([float(below), float(above)], dtype=torch.float64).to(fmt.torch_dtype())
    p = torch.sigmoid(t).double().tolist()
    assert p[0] < 1 and p[1] > 0
