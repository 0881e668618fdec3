"""kornia's categorical ``focal_loss`` as installed, run directly against
:func:`logitlab.exact.softmax_focal_loss` (kornia's alpha convention): values, gradients,
and what it does where the target probability rounds to 1 with ``gamma < 1`` (where
``(1 - p)**gamma`` has an infinite slope: the NaN gradient of the kornia regression)."""

from __future__ import annotations

import numpy as np
import pytest

from logitlab import exact
from logitlab.core.formats import get_format
from logitlab.core.ulp import ulp_error

kornia = pytest.importorskip("kornia")
torch = pytest.importorskip("torch")

F32 = get_format("float32")


def _kornia(rows: np.ndarray, labels: np.ndarray, alpha: float | None, gamma: float) -> tuple:
    x = torch.tensor(rows, dtype=torch.float32)[:, :, None].requires_grad_(True)  # (N, C, 1)
    t = torch.tensor(labels, dtype=torch.int64)[:, None]
    out = kornia.losses.focal_loss(x, t, alpha=alpha, gamma=gamma, reduction="none")
    out.sum().backward()
    per_sample = out.detach().sum(dim=1)[:, 0].double().numpy()  # the (N, C) map's target slice
    return per_sample, x.grad[:, :, 0].double().numpy()


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (None, 0.5), (0.6, 1.0)])
def test_kornia_focal_loss_against_exact(alpha: float | None, gamma: float) -> None:
    rows = F32.round(np.array([[3.0, -1.0, 0.5], [0.0, 2.0, -2.0], [-1.5, 0.25, 1.0]]))
    labels = np.array([0, 1, 2])
    value, grad = _kornia(rows, labels, alpha, gamma)
    ex = exact.softmax_focal_loss(rows, labels, alpha=alpha, gamma=gamma)
    egrad = np.array(ex.grads, dtype=object).reshape(rows.shape)
    # kornia forms 1 - p_t = 1 - exp(log_softmax): p_t's errors (its rounding, exp's, and
    # log_softmax's, about 2**-23 together) are a relative error of up to 2 / (1 - p_t) ULP
    # in 1 - p_t (an ULP is 2**-23 to 2**-24 relative), times gamma in the factor.
    p = np.exp(rows - rows.max(axis=1, keepdims=True))
    p_t = (p / p.sum(axis=1, keepdims=True))[np.arange(3), labels]
    # The gradient, alpha_t (p_j - [j = t]) Q**(gamma - 1) (Q - gamma P L), carries
    # Q = 1 - p_t to the powers |gamma - 1| and 1 (and its own 1 - p_t term).
    bound = 4 + 4 * gamma / (1 - p_t)
    grad_bound = 4 + 4 * (abs(gamma - 1) + 1 + gamma) / (1 - p_t)
    for i in range(3):
        assert ulp_error(value[i], ex.values[i], F32) <= bound[i]
        for j in range(3):
            assert ulp_error(grad[i, j], egrad[i, j], F32) <= grad_bound[i]


def test_saturated_target_with_gamma_below_one_gives_no_nan() -> None:
    # p_t = softmax([120, 0, 0])_0 rounds to exactly 1 in float32: (1 - p_t)**0.5 has an
    # infinite derivative at 0.  kornia (0.9.0 here) takes the factor from a detached copy
    # there: loss 0 and gradient 0, not NaN.  The exact loss is tiny but not 0.
    rows = np.array([[120.0, 0.0, 0.0]])
    value, grad = _kornia(rows, np.array([0]), 0.25, 0.5)
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    assert value[0] == 0 and (grad == 0).all()
    ex = exact.softmax_focal_loss(rows, np.array([0]), alpha=0.25, gamma=0.5)
    assert 0 < ex.values[0] < 1e-70
