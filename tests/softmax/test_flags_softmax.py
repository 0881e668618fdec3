"""The four softmax flags on hand-worked cases, through the one classifier."""

from __future__ import annotations

import math

import mpmath
import numpy as np

from logitlab.analysis.flags import FLAGS, GRAD_FLAGS, LOSS_FLAGS, classify
from logitlab.core.formats import get_format

F32 = get_format("float32")
INF = math.inf
NAN = math.nan


def _classify(**kwargs: object):
    return classify(F32, **kwargs)


def test_the_new_flags_are_in_the_catalogue() -> None:
    for name in ("softmax underflow", "log of 0", "masked NaN", "double softmax"):
        assert name in FLAGS and name in LOSS_FLAGS
    assert "log of 0" not in GRAD_FLAGS  # an infinite loss from log(0) is a loss flag


def test_underflow_and_log_of_zero() -> None:
    # z = (0, -110), target 1: the exact loss is 110 + log1p(e^-110), 110 in float32;
    # float32 softmax gives p1 = 0 (e^-110 < 2^-150), and -log(0) = inf.
    exact = float(110 + mpmath.log1p(mpmath.exp(-110)))
    assert np.float32(exact) == 110.0
    f = _classify(
        value=[INF],
        exact_value=[110.0],
        probabilities=[[1.0, 0.0]],
        logits=[[0.0, -110.0]],
        coefficients=[[0.0, 1.0]],
        grad=[[NAN, NAN]],
        exact_grad=[[1.0, -1.0]],
    )
    assert f.loss_flags == ("softmax underflow", "log of 0", "non-finite")
    assert f.grad_flags == ("softmax underflow", "non-finite")


def test_underflow_only_where_the_loss_needs_it() -> None:
    # target 0: p1 = 0 is not needed (q1 = 0); the loss 1.7e-48 is what it is
    f = _classify(
        value=[0.0],
        exact_value=[0.0],
        probabilities=[[1.0, 0.0]],
        logits=[[0.0, -110.0]],
        coefficients=[[1.0, 0.0]],
    )
    assert "softmax underflow" not in f.loss_flags
    # label smoothing needs every class: now it counts
    f = _classify(
        value=[INF],
        exact_value=[5.5],
        probabilities=[[1.0, 0.0]],
        logits=[[0.0, -110.0]],
        coefficients=[[0.95, 0.05]],
    )
    assert f.loss_flags[:2] == ("softmax underflow", "log of 0")


def test_a_masked_zero_is_not_an_underflow() -> None:
    # p = 0 at a -inf logit is exact; the target on it makes the exact loss +inf
    f = _classify(
        value=[INF],
        exact_value=[INF],
        probabilities=[[1.0, 0.0]],
        logits=[[0.0, -INF]],
        coefficients=[[0.0, 1.0]],
    )
    assert f.loss_flags == ()


def test_masked_nan() -> None:
    # z = (3, -inf, 1), target 0: exact log1p(e^-2) = 0.126928..., a NaN here is the mask's
    exact = float(mpmath.log1p(mpmath.exp(-2)))
    f = _classify(
        value=[NAN],
        exact_value=[exact],
        probabilities=[[0.88, 0.0, 0.12]],
        logits=[[3.0, -INF, 1.0]],
        coefficients=[[1.0, 0.0, 0.0]],
        grad=[[NAN, NAN, NAN]],
        exact_grad=[[-0.1192, 0.0, 0.1192]],
    )
    assert f.loss_flags == ("masked NaN", "non-finite")
    assert f.grad_flags == ("masked NaN", "non-finite")


def test_nan_without_a_mask_is_not_masked_nan() -> None:
    f = _classify(value=[NAN], exact_value=[0.5], logits=[[3.0, 1.0]], coefficients=[[1.0, 0.0]])
    assert f.loss_flags == ("non-finite",)


def test_a_fully_masked_row_is_undefined_and_unflagged() -> None:
    f = _classify(
        value=[NAN, INF],
        exact_value=[NAN, NAN],
        logits=[[-INF, -INF], [-INF, -INF]],
        coefficients=[[1.0, 0.0], [1.0, 0.0]],
        grad=[[NAN, NAN], [0.0, 0.0]],
        exact_grad=[[NAN, NAN], [NAN, NAN]],
    )
    assert f.loss_flags == () and f.grad_flags == ()


def test_double_softmax_holds_on_counted_rows() -> None:
    f = _classify(
        value=[1.3132616, 0.0],
        exact_value=[110.0, 0.0],
        probabilities=[[1.0, 0.0], [0.5, 0.5]],
        logits=[[0.0, -110.0], [0.0, 0.0]],
        coefficients=[[0.0, 1.0], [0.0, 0.0]],  # the second row is ignored
        double_softmax=True,
    )
    assert f.per_element("loss") == (("double softmax",), ())
    # its probabilities feed a softmax, not a log: no underflow
    assert "softmax underflow" not in f.loss_flags


def test_clip_counts_at_needed_classes_only() -> None:
    clipped = [[False, True]]
    f = _classify(
        value=[0.0],
        exact_value=[0.0],
        logits=[[0.0, -110.0]],
        coefficients=[[1.0, 0.0]],
        clipped=clipped,
    )
    assert "probability clipped" not in f.loss_flags
    f = _classify(
        value=[16.118095],
        exact_value=[110.0],
        logits=[[0.0, -110.0]],
        coefficients=[[0.0, 1.0]],
        clipped=clipped,
    )
    assert f.loss_flags == ("probability clipped",)
