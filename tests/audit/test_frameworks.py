"""The new catalogue rows on the issue's example: logits (20, 20), targets (0.3, 0.7)."""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
import pytest

from logitlab.analysis.compare import compare


def _mean(name: str, dtype: str = "float32") -> float:
    row = compare(logits=[20, 20], targets=[0.3, 0.7], dtype=dtype, formulations=[name]).row(name)
    assert row.status == "ok", row.reason
    assert row.value is not None
    return float(row.value)


# The exact mean loss at z = (20, 20), y = (0.3, 0.7): ((1 - y) z + log1p(e**-20)) averaged,
# (0.7 * 20 + 0.3 * 20) / 2 + log1p(e**-20) = 10 + 2.06e-9.  2.06e-9 is far below half an
# ULP of 10 in float32 (2**-21 / 2), so a correctly rounded float32 loss is exactly 10.0.
TEN = 10.0


def test_numpy_rows() -> None:
    assert _mean("numpy.logits") == TEN
    assert _mean("numpy.naive") == float("inf")  # log(1 - 1)


def test_scipy_row() -> None:
    pytest.importorskip("scipy")
    assert _mean("scipy.log_expit") == TEN


def test_sklearn_takes_labels_only() -> None:
    pytest.importorskip("sklearn")
    only = ["sklearn.log_loss"]
    c = compare(logits=[20, 20], targets=[0.3, 0.7], formulations=only).row("sklearn.log_loss")
    assert c.status == "not applicable"
    row = compare(logits=[20.0, -3.0], targets=[0.0, 1.0], formulations=only).row(only[0])
    assert row.status == "ok" and row.value is not None
    # z = 20, y = 0: float32 expit(20) = 1, clipped to 1 - eps with eps = float32's
    # 2**-23, so its loss is -log(2**-23) = 23 ln 2.  z = -3, y = 1: -log(sigmoid(-3))
    # = log1p(e**3) (expit(-3) is one rounding off, 2**-24 relative, 6e-8 in the log).
    # The mean, in float32: within 1 ULP of the exact mean rounded to float32.
    expected = np.float32((23 * math.log(2) + math.log1p(math.exp(3))) / 2)
    assert abs(float(row.value) - float(expected)) <= np.spacing(expected), row.value


def test_keras_rows() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    # Why 23 ln 2 / 2: float32 sigmoid(20) = 1 exactly (1 - sigmoid(20) = 2.1e-9 is below
    # half an ULP of 1, 2**-25).  Keras clips to [eps, 1 - eps] with eps = 1e-7; in float32
    # 1 - 1e-7 is 1.68 ULPs (2**-24 each) below 1 and rounds to 1 - 2**-23, so p = 1 - 2**-23
    # and 1 - p = 2**-23 exactly.  Each element's loss is -(y log p + (1 - y) log(1 - p))
    # = (1 - y) * 23 ln 2 + y * (2**-23 + O(2**-46)); the mean over y = 0.3 and 0.7 is
    # (0.7 + 0.3) * 23 ln 2 / 2 + (0.3 + 0.7) * 2**-23 / 2 = 23 ln 2 / 2 + 2**-24.
    # 2**-24 is 1/8 of an ULP of 7.97 (2**-21), so the float32 result should be 23 ln 2 / 2
    # rounded to float32, within 1 ULP (the log, the products and the mean each round once).
    expected = np.float32(23 * math.log(2) / 2)
    got = np.float32(_mean("keras.probabilities"))
    ulp = np.spacing(expected)
    assert ulp == 2.0**-21
    assert abs(float(got) - float(expected)) <= 1 * ulp, (got, expected)
    assert _mean("keras.logits") == TEN


def test_jax_rows() -> None:
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    assert _mean("optax.logits") == TEN
    assert _mean("jax.naive") == float("inf")
    row = compare(
        logits=[20, 20], targets=[0.3, 0.7], dtype="float64", formulations=["optax.logits"]
    ).row("optax.logits")
    # d mean / d z_0 = (sigmoid(20) - 0.3) / 2 = 0.35 - e**-20 / 2 + ..., worked out in
    # mpmath; float64 jax.grad through optax is within 4 ULP of it (measured: 4.0).
    with mpmath.workprec(200):
        exact0 = (1 / (1 + mpmath.exp(-20)) - mpmath.mpf(0.3)) / 2
    assert row.grad is not None
    assert abs(float(row.grad[0]) - float(exact0)) <= 4 * np.spacing(float(exact0)), row.grad
