"""The numbers lint quotes (derived from each format's precision and range, without NumPy)
agree with the analysis core's searched saturation table and with the formats themselves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from logitlab.analysis.saturation import EXACT, saturation_thresholds
from logitlab.core.formats import get_format
from logitlab.lint._formats import FORMATS


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_sigmoid_threshold_matches_the_searched_one(name: str) -> None:
    derived = FORMATS[name].sigmoid_is_one
    searched = saturation_thresholds(name, EXACT).one_from
    assert searched is not None
    fmt = get_format(name)
    below = float(np.nextafter(fmt.numpy_dtype.type(searched), fmt.numpy_dtype.type(0)))
    # the searched threshold is the first value of the format at or above the derived one
    assert below < derived <= searched, (below, derived, searched)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_range_numbers_match_the_format(name: str) -> None:
    fmt = get_format(name)
    lint = FORMATS[name]
    assert lint.p == fmt.precision
    assert math.isclose(lint.log_max, math.log(fmt.max), rel_tol=1e-15)
    assert math.isclose(
        lint.log_underflow, math.log(fmt.smallest_subnormal) - math.log(2), rel_tol=1e-15
    )
    assert lint.one_minus_eps_is_one == 2.0 ** -(fmt.precision + 1)
