"""Each measure on hand-made cases whose errors are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from logitlab.analysis.breakpoints import breakpoint_threshold
from logitlab.analysis.measure import error_stats, measure, relative_errors
from logitlab.core.formats import get_format
from logitlab.exact import fast
from logitlab.formulations.run import RunResult

F32 = get_format("float32")


def _next_up(x: float, n: int = 1) -> float:
    v = np.float32(x)
    for _ in range(n):
        v = np.nextafter(v, np.float32(np.inf))
    return float(v)


def test_ulp_errors_known_steps() -> None:
    exact = np.array([1.0, 1.0, 2.0, 0.0])
    computed = np.array([_next_up(1.0), _next_up(1.0, 3), 2.0, 2.0**-149])
    np.testing.assert_allclose(fast.ulp_errors(computed, exact, F32), [1, 3, 0, 1])


def test_relative_error_conventions() -> None:
    exact = np.array([2.0, 0.0, 0.0, np.inf, 1.0, 1.0, 3e-9])
    computed = np.array([2.5, 0.0, 1e-30, np.inf, np.inf, np.nan, 0.0])
    rel = relative_errors(computed, exact)
    assert rel[0] == 0.25
    assert rel[1] == 0.0 and rel[2] == math.inf and rel[3] == 0.0 and rel[4] == math.inf
    assert math.isnan(rel[5])
    assert rel[6] == 1.0  # every digit lost


def test_error_stats_counts_and_percentiles() -> None:
    ulps = np.array([0.0, 0.5, 2.0, np.inf, np.nan] + [0.25] * 95)
    rels = np.zeros_like(ulps)
    computed = np.array([1, 1, 1, np.inf, np.nan] + [1] * 95, dtype=float)
    exact = np.ones_like(computed)
    s = error_stats(ulps, rels, computed, exact)
    assert s.max_ulp == math.inf
    assert s.p99_ulp == math.inf  # the top 1% of 99 values holds the inf, no interpolation
    assert s.share_above_1ulp == pytest.approx(3 / 100)  # 2, inf and NaN
    assert (s.nan, s.inf) == (1, 1)


def test_p99_is_an_observed_value() -> None:
    ulps = np.array([2.0] + [0.25] * 198)
    s = error_stats(ulps, ulps, np.ones(199), np.ones(199))
    assert s.p99_ulp == 0.25 and s.max_ulp == 2.0


def test_breakpoint_threshold_respects_coarse_formats() -> None:
    assert breakpoint_threshold(F32) == 1e-3
    assert breakpoint_threshold(get_format("bfloat16")) == pytest.approx(2 * 2.0**-7)


def _result(value: np.ndarray, grad: np.ndarray, z: np.ndarray) -> RunResult:
    from logitlab.formulations import get

    return RunResult(get("torch.logits"), "x", "ok", F32, value=value, grad=grad)


def test_measure_on_a_known_broken_formula() -> None:
    # y = 1: loss softplus(-z), gradient -sigma(-z).  A "formula" that is exact up to
    # z = 10 and then returns 0 for both: its gradient vanishes there.
    z = F32.round(np.linspace(-20, 20, 401))
    y = np.ones_like(z)
    ref = fast.bce(z, y, F32)
    value = F32.round(ref.value.astype(np.float64))
    grad = F32.round(ref.grad.astype(np.float64))
    broken = z >= 10
    value[broken] = 0.0
    grad[broken] = 0.0
    value[0] = _next_up(value[0], 3)  # 3 ULP off at z = -20
    m, ulps, gulps = measure(F32, _result(value, grad, z), ref, logits=z)
    assert m.value.max_ulp > 1e6  # the zeros past z = 10 are far off
    assert ulps[0] == pytest.approx(3, abs=0.5)
    assert m.counts["gradient vanished"] == int(broken.sum())
    assert m.value.share_above_1ulp == pytest.approx((broken.sum() + 1) / z.size)
    assert gulps is not None and np.nanmax(gulps[~broken]) <= 0.5


def test_measure_correctly_rounded_has_no_flags() -> None:
    z = F32.round(np.linspace(-120, 120, 2001))
    y = np.zeros_like(z)
    ref = fast.bce(z, y, F32)
    value = F32.round(ref.value.astype(np.float64))
    grad = F32.round(ref.grad.astype(np.float64))
    m, _, _ = measure(F32, _result(value, grad, z), ref, logits=z)
    assert m.value.max_ulp <= 0.5 and m.grad is not None and m.grad.max_ulp <= 0.5
    assert not any(m.counts.values())
