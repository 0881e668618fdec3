"""The exact focal references against independent formulas: hand-worked values, plain BCE
and cross-entropy at gamma = 0, and high-precision finite differences of a direct
definition (``1 - p_t`` formed as a difference, at 800 bits)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from logitlab import exact

LN2 = math.log(2)


def _direct(z: float, y: float, alpha: float | None, gamma: float, prec: int = 4000) -> object:
    """The focal loss as torchvision writes it, in mpmath at ``prec`` bits: no care taken
    but the bits (4000 keep ``1 - p`` at |z| = 700 to some 3000 bits)."""
    with mpmath.workprec(prec):
        x = mpmath.mpf(z)
        p = 1 / (1 + mpmath.exp(-x))
        y_ = mpmath.mpf(y)
        ce = -(y_ * mpmath.log(p) + (1 - y_) * mpmath.log(1 - p))
        p_t = p * y_ + (1 - p) * (1 - y_)
        loss = ce * (1 - p_t) ** gamma
        if alpha is not None:
            loss *= alpha * y_ + (1 - alpha) * (1 - y_)
        return +loss


def _fd(z: float, y: float, alpha: float | None, gamma: float) -> object:
    """d/dz of :func:`_direct` by mpmath's numerical differentiation at 800 bits."""
    # mpmath.diff works at raised precision with a tiny step: evaluate well above it
    with mpmath.workprec(800):
        return mpmath.diff(lambda x: _direct(x, y, alpha, gamma, 4000), mpmath.mpf(z))


def _close(a: object, b: object, rel: float = 1e-35) -> bool:
    with mpmath.workprec(400):
        a, b = mpmath.mpf(a), mpmath.mpf(b)
        if b == 0:
            return bool(a == 0)
        return bool(abs(a - b) <= rel * abs(b))


def test_hand_worked_values_at_zero() -> None:
    # z = 0: p = 1/2, so loss = alpha_t (1/2)**gamma log 2 and, for y = 1,
    # d/dz = alpha (d/dz sigma(-z)**2 log(1 + e^-z)) = alpha (-(1/4) log 2 - 1/8)
    r = exact.binary_focal_loss([0.0, 0.0], [1.0, 0.0], alpha=0.25, gamma=2.0)
    assert float(r.values[0]) == pytest.approx(0.25 * 0.25 * LN2, rel=1e-15)
    assert float(r.values[1]) == pytest.approx(0.75 * 0.25 * LN2, rel=1e-15)
    assert float(r.grads[0]) == pytest.approx(0.25 * (-0.25 * LN2 - 0.125), rel=1e-15)
    assert float(r.grads[1]) == pytest.approx(0.75 * (0.25 * LN2 + 0.125), rel=1e-15)
    # soft target 0.5 at z = 0: the derivative is exactly zero (symmetric)
    assert exact.binary_focal_loss([0.0], [0.5]).grads[0] == 0


def test_hand_worked_large_logits() -> None:
    # y = 1, z = -1e30: q = sigma(1e30) = 1 to any precision, ce = 1e30 + log1p(e^-1e30)
    r = exact.binary_focal_loss([-1e30, 1e30], [1.0, 0.0], alpha=0.25, gamma=2.0)
    big = mpmath.mpf(1e30)  # the float64 value 1e30 = 1000000000000000019884624838656
    assert _close(r.values[0], mpmath.fmul(0.25, big, exact=True), 1e-40)
    assert _close(r.values[1], mpmath.fmul(0.75, big, exact=True), 1e-40)
    assert float(r.grads[0]) == -0.25  # alpha * (-(1) * (gamma * 0 + 1))
    assert float(r.grads[1]) == 0.75
    # With the target: loss = alpha sigma(-z)**2 softplus(-z) ~ alpha e^{-3z}, far below
    # float64 but exact in mpmath.
    r = exact.binary_focal_loss([300.0], [1.0], alpha=0.25, gamma=2.0)
    with mpmath.workprec(400):
        expected = 0.25 * mpmath.exp(-900)
        assert _close(r.values[0], expected, 1e-45)
        # d/dz ~ -alpha e^{-2z} (gamma e^{-z} + e^{-z}) = -3 alpha e^{-900}; both to
        # relative e^{-300} (the terms dropped), far below the 160-bit working precision
        assert _close(r.grads[0], -3 * expected, 1e-45)


def test_infinite_logits_are_limits() -> None:
    inf = math.inf
    r = exact.binary_focal_loss([inf, -inf, inf, -inf, inf], [1.0, 1.0, 0.0, 0.0, 0.3])
    assert [float(v) for v in r.values] == [0.0, inf, inf, 0.0, inf]
    # against the target the slope tends to -alpha (y = 1) or 1 - alpha (y = 0)
    assert [float(g) for g in r.grads[:4]] == [0.0, -0.25, 0.75, 0.0]
    # soft y at +inf: alpha_t (1 - y)**gamma (1 - y)
    y = 0.3
    expected = (0.25 * y + 0.75 * (1 - y)) * (1 - y) ** 3
    assert float(r.grads[4]) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("z", [-700.0, -30.0, -2.5, -1e-6, 1e-300, 0.3, 4.0, 50.0, 700.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.3])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (None, 0.5), (0.9, 3.7)])
def test_against_direct_definition_and_finite_differences(
    z: float, y: float, alpha: float | None, gamma: float
) -> None:
    r = exact.binary_focal_loss([z], [y], alpha=alpha, gamma=gamma)
    assert _close(r.values[0], _direct(z, y, alpha, gamma))
    assert _close(r.grads[0], _fd(z, y, alpha, gamma), 1e-30)


def test_gradient_near_its_zero_crossing() -> None:
    # A soft target has a minimum: locate it at 800 bits, then test float64 neighbours of
    # it, where the bracket P - N cancels to ~50 bits.
    y, alpha, gamma = 0.3, 0.25, 2.0
    with mpmath.workprec(800):
        root = mpmath.findroot(lambda x: _fd(x, y, alpha, gamma), mpmath.mpf(-0.85))
    z0 = float(root)
    for z in (z0, float(np.nextafter(z0, 1)), float(np.nextafter(z0, -1))):
        g = exact.binary_focal_loss([z], [y], alpha, gamma).grads[0]
        assert g != 0
        assert _close(g, _fd(z, y, alpha, gamma), 1e-30)


def test_gamma_zero_without_alpha_is_bce() -> None:
    z = [-800.0, -20.0, -0.7, 0.0, 1e-10, 3.0, 40.0]
    y = [1.0, 0.0, 0.3, 0.95, 1.0, 0.0, 0.999]
    for reduction in ("none", "mean", "sum"):
        focal = exact.binary_focal_loss(z, y, alpha=None, gamma=0.0, reduction=reduction)
        bce = exact.bce_loss(z, y, reduction=reduction)
        assert focal.shape == bce.shape and focal.grad_shape == bce.grad_shape
        for a, b in zip(focal.values, bce.values):
            assert _close(a, b, 1e-40)
        for a, b in zip(focal.grads, bce.grads):
            assert _close(a, b, 1e-40)


def test_reductions() -> None:
    z, y = [-1.0, 2.0, 5.0], [1.0, 0.0, 0.5]
    each = exact.binary_focal_loss(z, y)
    mean = exact.binary_focal_loss(z, y, reduction="mean")
    total = exact.binary_focal_loss(z, y, reduction="sum")
    assert mean.shape == () and total.grad_shape == (3,)
    assert _close(total.values[0], sum(each.values))
    assert _close(mean.values[0], sum(each.values) / 3)
    for a, b in zip(mean.grads, each.grads):
        assert _close(a, b / 3)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="alpha"):
        exact.binary_focal_loss([0.0], [1.0], alpha=1.5)
    with pytest.raises(ValueError, match="gamma"):
        exact.binary_focal_loss([0.0], [1.0], gamma=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        exact.binary_focal_loss([0.0], [1.0], reduction="avg")


# --- categorical (kornia's focal_loss convention) ---------------------------------------


def _direct_softmax(row: list[float], t: int, alpha: float | None, gamma: float) -> object:
    with mpmath.workprec(4000):
        e = [mpmath.exp(mpmath.mpf(v)) for v in row]
        p = e[t] / mpmath.fsum(e)
        a = 1 if alpha is None else (1 - alpha if t == 0 else alpha)
        return +(-a * (1 - p) ** gamma * mpmath.log(p))


def test_softmax_focal_gamma_zero_is_cross_entropy() -> None:
    z = np.array([[3.0, -1.0, 0.5], [0.0, 40.0, -40.0], [1e-3, 0.0, 2.0]])
    t = np.array([0, 2, 1])
    focal = exact.softmax_focal_loss(z, t, alpha=None, gamma=0.0, reduction="none")
    ce = exact.softmax_cross_entropy(z, t, reduction="none")
    for a, b in zip(focal.values, ce.values):
        assert _close(a, b, 1e-40)
    for a, b in zip(focal.grads, ce.grads):
        assert _close(a, b, 1e-40)


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (None, 0.5), (0.6, 1.0)])
def test_softmax_focal_against_finite_differences(alpha: float | None, gamma: float) -> None:
    rows = [[3.0, -1.0, 0.5], [0.0, 30.0, -30.0], [-2.0, 0.0, 2.0]]
    labels = [1, 0, 2]
    r = exact.softmax_focal_loss(rows, labels, alpha=alpha, gamma=gamma)
    grads = np.array(r.grads, dtype=object).reshape(3, 3)
    for i, (row, t) in enumerate(zip(rows, labels)):
        assert _close(r.values[i], _direct_softmax(row, t, alpha, gamma))
        for j in range(3):

            def f(x: object, j: int = j, row: list[float] = row, t: int = t) -> object:
                moved = [x if k == j else mpmath.mpf(v) for k, v in enumerate(row)]
                return _direct_softmax(moved, t, alpha, gamma)

            with mpmath.workprec(800):
                fd = mpmath.diff(f, mpmath.mpf(row[j]))
            assert _close(grads[i, j], fd, 1e-30)


def test_two_class_softmax_focal_is_binary_focal_of_the_difference() -> None:
    # kornia's documented identity: C = 2, class 1 the positive class
    rows = [[0.5, -2.0], [10.0, 3.0], [-4.0, 4.0]]
    labels = [1, 0, 1]
    cat = exact.softmax_focal_loss(rows, labels, alpha=0.25, gamma=2.0)
    diff = [b - a for a, b in rows]
    binary = exact.binary_focal_loss(diff, [float(t) for t in labels], alpha=0.25, gamma=2.0)
    for a, b in zip(cat.values, binary.values):
        assert _close(a, b, 1e-40)
