"""The softmax code paths run by their frameworks: values worked out by hand, refusals named,
autocast's real dtypes, and missing frameworks skipped with the extra that installs them."""

from __future__ import annotations

import importlib.util
import math

import mpmath
import numpy as np
import pytest

from logitlab.core.inputs import BCECase, SoftmaxCase
from logitlab.formulations import all_formulations, get
from logitlab.formulations.run import run

INF = math.inf


def _run(name: str, case: SoftmaxCase):
    return run(get(name), case)


def test_every_softmax_row_is_in_the_catalogue() -> None:
    names = {f.name for f in all_formulations("softmax_ce")}
    expected = {
        "torch.cross_entropy",
        "torch.log_softmax_nll",
        "torch.log_of_softmax",
        "torch.handwritten",
        "torch.double_softmax",
        "autocast.cross_entropy",
        "autocast.log_of_softmax",
        "optax.softmax_ce",
        "optax.softmax_ce_dense",
        "optax.safe_softmax_ce",
        "jax.log_of_softmax",
        "keras.sparse_ce_logits",
        "keras.sparse_ce_probabilities",
        "keras.categorical_ce_logits",
        "keras.categorical_ce_probabilities",
        "numpy.log_softmax",
        "numpy.naive_softmax",
        "scipy.log_softmax",
        "stable.softmax_ce",
    }
    assert expected <= names


def test_underflow_at_110_below_the_max() -> None:
    # float32: exp(-110) = 1.7e-48 is below half the smallest subnormal 2^-149, so softmax
    # rounds p1 to 0; the fused path's -log_softmax = 110 + log1p(e^-110) rounds to 110.
    assert mpmath.exp(-110) < mpmath.mpf(2) ** -150
    case = SoftmaxCase.from_user([0, -110], 1)
    for name in ("torch.cross_entropy", "torch.log_softmax_nll", "stable.softmax_ce"):
        assert _run(name, case).value.item() == 110.0, name
    for name in ("torch.log_of_softmax", "torch.handwritten", "numpy.naive_softmax"):
        r = _run(name, case)
        assert r.value.item() == INF, name
        assert r.probabilities is not None and r.probabilities[0, 1] == 0.0


def test_mask_nan_in_handwritten_and_dense_paths() -> None:
    # z = (3, -inf, 1), target 0: log1p(e^-2) = 0.12692801104297...; the hand-written line
    # computes 0 * log(0) = NaN at the masked class
    case = SoftmaxCase.from_user([[3, -INF, 1]], [0], reduction="none")
    expected = float(mpmath.log1p(mpmath.exp(-2)))
    r = _run("torch.cross_entropy", case)
    assert abs(r.value.item() - expected) <= 3 * np.spacing(np.float32(expected))
    assert math.isnan(_run("torch.handwritten", case).value.item())
    assert math.isnan(_run("optax.softmax_ce_dense", case).value.item())
    safe = _run("optax.safe_softmax_ce", case).value.item()
    assert abs(safe - expected) <= 3 * np.spacing(np.float32(expected))
    # log(softmax): the loss is fine, the backward of log divides 0 by p = 0
    r = _run("torch.log_of_softmax", case)
    assert math.isfinite(r.value.item()) and np.isnan(r.grad).all()


def test_weight_smoothing_and_probabilities_pass_through_cross_entropy() -> None:
    # z = (0, 0): p = (1/2, 1/2), -log p = log 2 for both; q = w * ((1 - eps) onehot + eps/2)
    # with w = (1, 3), eps = 0.5, t = 0: q = (0.75, 0.75), loss_n = 1.5 log 2, mean divides
    # by w_t = 1 (ATen's rule, also with smoothing)
    case = SoftmaxCase.from_user([0, 0], 0, weight=[1, 3], label_smoothing=0.5, dtype="float64")
    assert _run("torch.cross_entropy", case).value.item() == pytest.approx(
        1.5 * math.log(2), rel=1e-15
    )
    probs = SoftmaxCase.from_user([0, 0], [[0.25, 0.75]], dtype="float64")
    assert _run("torch.cross_entropy", probs).value.item() == pytest.approx(math.log(2), rel=1e-15)


@pytest.mark.parametrize(
    ("name", "kwargs", "words"),
    [
        ("torch.log_softmax_nll", {"label_smoothing": 0.1}, "label_smoothing"),
        ("torch.log_of_softmax", {"target": [[0.5, 0.5]]}, "class indices"),
        ("torch.handwritten", {"weight": [1, 2]}, "class weight"),
        ("torch.handwritten", {"target": [-100]}, "ignore_index"),
        ("optax.softmax_ce", {"label_smoothing": 0.1}, "label_smoothing"),
        ("keras.sparse_ce_logits", {"weight": [1, 2]}, "class weight"),
        ("keras.categorical_ce_logits", {"target": [-100]}, "ignore_index"),
        ("numpy.log_softmax", {"weight": [1, 2]}, "class weight"),
    ],
)
def test_what_a_path_cannot_express_is_not_applicable(name: str, kwargs: dict, words: str) -> None:
    args = {"target": [0], **kwargs}
    case = SoftmaxCase.from_user([[0, 1]], args.pop("target"), **args)
    r = _run(name, case)
    assert r.status == "not applicable" and words in (r.reason or "")


def test_a_missing_framework_is_skipped_with_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("keras", "optax") else real(name, *a),
    )
    case = SoftmaxCase.from_user([0, 1], 0)
    keras_row = _run("keras.categorical_ce_logits", case)
    assert keras_row.status == "skipped" and "logitlab[keras]" in (keras_row.reason or "")
    optax_row = _run("optax.safe_softmax_ce", case)
    assert optax_row.status == "skipped" and "logitlab[jax]" in (optax_row.reason or "")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_cpu_autocast_runs_cross_entropy_in_float32(dtype: str) -> None:
    # 0.1 is not a bfloat16/float16 value's exact loss: -log_softmax(0, 0.3)_0 is
    # log(1 + e^0.3) = 0.854355..., whose float32 rounding is not a 16-bit value
    case = SoftmaxCase.from_user([0, 0.3], 0, dtype=dtype)
    eager = _run("torch.cross_entropy", case)
    auto = _run("autocast.cross_entropy", case)
    assert eager.returned is None and auto.returned == "float32"
    z1 = float(case.logits[0, 1])
    exact = float(mpmath.log1p(mpmath.exp(z1)))
    # float32 accuracy (a float32 log-softmax: a couple of float32 ULPs), far inside one
    # 16-bit ULP (2^-8 or 2^-11 of the value)
    assert abs(auto.value.item() - exact) <= 2 * np.spacing(np.float32(exact))
    # softmax and log keep the input dtype; NLL (cast to float32) only picks -log p_t, a
    # 16-bit value: the same as eager
    auto_log = _run("autocast.log_of_softmax", case)
    assert auto_log.returned is None
    assert auto_log.value == _run("torch.log_of_softmax", case).value


def test_cpu_autocast_changes_nothing_for_float32() -> None:
    case = SoftmaxCase.from_user([0, 0.3], 0)
    assert _run("autocast.cross_entropy", case).value == _run("torch.cross_entropy", case).value


def test_bce_under_autocast() -> None:
    # CPU autocast keeps binary_cross_entropy (no refusal on CPU) and computes in float32
    case = BCECase.from_user([20, -3], [0, 1], dtype="bfloat16")
    for name in ("autocast.probabilities", "autocast.logits"):
        r = run(get(name), case)
        assert r.status == "ok" and r.returned == "float32", name
    cuda = run(get("autocast.cuda_probabilities"), case)
    import torch

    if torch.cuda.is_available():  # CUDA autocast refuses it: torch's own words
        assert cuda.status == "error" and "autocast" in (cuda.reason or "")
    else:
        assert cuda.status == "not applicable" and "CUDA" in (cuda.reason or "")


def test_keras_clips_on_probabilities() -> None:
    # Keras clips p to [1e-7, 1 - 1e-7]: the loss is -log(1e-7) in float32 at most
    case = SoftmaxCase.from_user([0, -110], 1)
    r = _run("keras.sparse_ce_probabilities", case)
    assert r.value.item() == pytest.approx(-math.log(np.float32(1e-7)), rel=1e-6)
    assert r.clipped is not None and r.clipped[0, 1]


def test_double_softmax_value_by_hand() -> None:
    # float32 softmax(0, -110) = (1, 0); F.cross_entropy of those as logits, target 1:
    # -log(e^0 / (e^1 + e^0)) = log(1 + e) = 1.3132616875...
    r = _run("torch.double_softmax", SoftmaxCase.from_user([0, -110], 1))
    expected = float(mpmath.log(1 + mpmath.e))
    assert abs(r.value.item() - expected) <= np.spacing(np.float32(expected))
    assert get("torch.double_softmax").double_softmax
