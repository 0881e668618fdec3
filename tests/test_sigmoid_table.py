"""Saturation thresholds are found by search and agree with first principles."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

from logitlab.analysis.saturation import EXACT, saturation_thresholds
from logitlab.core.formats import get_format


def next_up(x: float, name: str) -> float:
    dt = get_format(name).numpy_dtype
    return float(np.nextafter(np.array(x, dtype=dt), np.array(np.inf, dtype=dt)))


def next_down(x: float, name: str) -> float:
    dt = get_format(name).numpy_dtype
    return float(np.nextafter(np.array(x, dtype=dt), np.array(-np.inf, dtype=dt)))


@pytest.mark.parametrize("name", ["float32", "float64"])
@pytest.mark.parametrize("impl", ["torch.sigmoid", "torch.naive_sigmoid"])
def test_bisected_thresholds_are_boundaries(name: str, impl: str) -> None:
    t = saturation_thresholds(name, impl)
    dt = getattr(torch, name)

    def f(v: float) -> float:
        z = torch.tensor([v], dtype=dt)
        out = torch.sigmoid(z) if impl == "torch.sigmoid" else 1 / (1 + torch.exp(-z))
        return out.item()

    assert t.one_from is not None and t.zero_up_to is not None
    assert f(t.one_from) == 1.0 and f(next_down(t.one_from, name)) != 1.0
    assert f(t.zero_up_to) == 0.0 and f(next_up(t.zero_up_to, name)) != 0.0


def test_float16_exhaustive_matches_a_direct_scan() -> None:
    t = saturation_thresholds("float16", "torch.sigmoid")
    values = get_format("float16").values()
    out = torch.sigmoid(torch.tensor(values, dtype=torch.float16)).double().numpy()
    ones = values[out == 1]
    zeros = values[out == 0]
    assert t.one_from == ones.min() and np.all(out[values >= ones.min()] == 1)
    assert t.zero_up_to == zeros.max() and np.all(out[values <= zeros.max()] == 0)
    assert "exhaustive" in t.method


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_exact_thresholds_from_first_principles(name: str) -> None:
    # Correctly rounded sigmoid is 1 once 1 - sigma(z) = sigma(-z) <= eps/4 (half the
    # spacing below 1; the tie goes to 1, the even one), i.e. z >= logit(1 - eps/4).
    fmt = get_format(name)
    t = saturation_thresholds(name, EXACT)
    with mpmath.workprec(200):
        h = mpmath.mpf(fmt.eps) / 4
        boundary = mpmath.log((1 - h) / h)
        assert t.one_from >= boundary and next_down(t.one_from, name) < boundary
        # and 0 once sigma(z) <= half the smallest subnormal (ties to even: 0).
        s = mpmath.mpf(fmt.smallest_subnormal) / 2
        low = mpmath.log(s / (1 - s))
        assert t.zero_up_to <= low and next_up(t.zero_up_to, name) > low
