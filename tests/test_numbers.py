"""``shortest_repr``: the shortest decimal that reads back as the same value of the format.

The scalar fast path uses NumPy's float16/float32 conversions; they must round exactly as
``FloatFormat.round`` (itself tested against mpmath in test_ulp.py), ties included.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from logitlab.core.formats import get_format
from logitlab.core.numbers import _scalar_rounding, json_numbers, shortest_repr


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32"])
def test_scalar_rounding_is_the_formats_rounding_ties_included(name: str) -> None:
    fmt = get_format(name)
    rng = np.random.default_rng(1)
    if fmt.bits == 16:
        v = fmt.values()
        v = v[np.isfinite(v)]
        mids = (v[:-1] + v[1:]) / 2  # exact in float64: every tie between neighbours
    else:
        v = (rng.standard_normal(4000) * 10.0 ** rng.integers(-44, 38, 4000)).astype(np.float32)
        v = v.astype(np.float64)
        up = np.nextafter(v.astype(np.float32), np.float32(np.inf)).astype(np.float64)
        mids = (v + up) / 2
    near = np.concatenate([mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])
    xs = np.concatenate([v, near, [fmt.max * 1.5, -fmt.max * 1.5, fmt.smallest_subnormal / 3]])
    rounded = _scalar_rounding(fmt)
    got = np.array([rounded(float(x)) for x in xs])
    np.testing.assert_array_equal(got, fmt.round(xs))


@pytest.mark.parametrize(
    ("value", "dtype", "text"),
    [
        (0.1, "float32", "0.1"),  # float32(0.1) = 0.100000001490116...; '0.1' reads back
        (float(np.float32(1 / 3)), "float32", "0.33333334"),
        (float(np.float16(1 / 3)), "float16", "0.3333"),
        (65504.0, "float16", "65500.0"),  # 65500 rounds to 65504 (spacing 32)
        (2.0**-24, "float16", "6e-08"),  # the smallest subnormal, 5.96e-08
    ],
)
def test_shortest_repr_by_hand(value: float, dtype: str, text: str) -> None:
    assert shortest_repr(value, dtype) == text


def test_json_numbers_spells_non_finite_values_and_keeps_the_rest_exact() -> None:
    # float32's 0.1 is 13421773 / 2**27 exactly: the list holds that value, not 0.1.
    a = np.array([[0.1, np.nan], [np.inf, -np.inf]], dtype=np.float32)
    out = json_numbers(a)
    assert out[1:] == ["NaN", "Infinity", "-Infinity"]
    assert type(out[0]) is float and out[0] == 13421773 / 2**27
    assert json_numbers(np.array([-0.0, 5e-324, 65504.0], dtype=np.float64)) == [
        -0.0,
        5e-324,
        65504.0,
    ]
    assert json_numbers([]) == []
    # every element a plain float or a string, as json.dumps writes them without NaN literals
    assert json.dumps(json_numbers(np.array([1.0, np.nan])), allow_nan=False) == '[1.0, "NaN"]'
