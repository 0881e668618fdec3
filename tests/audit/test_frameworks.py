"""The new catalogue rows on the issue's example: logits (20, 20), targets (0.3, 0.7)."""

from __future__ import annotations

import os

import pytest

from logitlab.analysis.compare import compare


def _mean(name: str, dtype: str = "float32") -> float:
    row = compare(logits=[20, 20], targets=[0.3, 0.7], dtype=dtype, formulations=[name]).row(name)
    assert row.status == "ok", row.reason
    assert row.value is not None
    return float(row.value)


def test_numpy_rows() -> None:
    assert _mean("numpy.logits") == pytest.approx(10.0, rel=1e-6)
    assert _mean("numpy.naive") == float("inf")  # log(1 - 1)


def test_scipy_row() -> None:
    pytest.importorskip("scipy")
    assert _mean("scipy.log_expit") == pytest.approx(10.0, rel=1e-6)


def test_sklearn_takes_labels_only() -> None:
    pytest.importorskip("sklearn")
    only = ["sklearn.log_loss"]
    c = compare(logits=[20, 20], targets=[0.3, 0.7], formulations=only).row("sklearn.log_loss")
    assert c.status == "not applicable"
    row = compare(logits=[20.0, -3.0], targets=[0.0, 1.0], formulations=only).row(only[0])
    assert row.status == "ok" and row.value is not None
    # probabilities clipped at 1 - eps(float32): -log(eps) = 15.9, mean with 3.05
    assert float(row.value) == pytest.approx((15.942385 + 3.0485873) / 2, rel=1e-4)


def test_keras_rows() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    assert _mean("keras.probabilities") == pytest.approx(7.97, abs=0.01)  # epsilon clip
    assert _mean("keras.logits") == pytest.approx(10.0, rel=1e-6)


def test_jax_rows() -> None:
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    assert _mean("optax.logits") == pytest.approx(10.0, rel=1e-6)
    assert _mean("jax.naive") == float("inf")
    row = compare(
        logits=[20, 20], targets=[0.3, 0.7], dtype="float64", formulations=["optax.logits"]
    ).row("optax.logits")
    assert row.grad is not None and float(row.grad[0]) == pytest.approx(0.35, rel=1e-6)
