"""The exact softmax cross-entropy gradient where p_t - 1 would cancel."""

from __future__ import annotations

import mpmath
import pytest

from logitlab.exact import softmax_cross_entropy


@pytest.mark.parametrize("margin", [30.0, 700.0, 1e4])
def test_dominant_class_gradient_keeps_its_digits(margin: float) -> None:
    # Row (m, 0, 0), target 0: d loss / d z_0 = p_0 - 1 = -2 e^-m / (1 + 2 e^-m).
    r = softmax_cross_entropy([[margin, 0.0, 0.0]], [0], reduction="none")
    with mpmath.workprec(400):
        e = mpmath.exp(-mpmath.mpf(margin))
        expected = [-2 * e / (1 + 2 * e), e / (1 + 2 * e), e / (1 + 2 * e)]
    for got, want in zip(r.grads, expected):
        assert mpmath.almosteq(got, want, rel_eps=1e-40)


def test_gradient_matches_numerical_derivative_with_smoothing_and_weights() -> None:
    z = [1.0, 2.0, 0.5]
    w = [0.5, 2.0, 1.0]
    r = softmax_cross_entropy([z], [1], weight=w, label_smoothing=0.1, reduction="sum")

    def loss(k: int, t: mpmath.mpf) -> mpmath.mpf:
        row = [mpmath.mpf(v) for v in z]
        row[k] = t
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row))
        eps = mpmath.mpf(0.1)  # the binary64 label_smoothing, as the reference reads it
        q = [w[c] * ((1 - eps) * (c == 1) + eps / 3) for c in range(3)]
        return -mpmath.fsum(q[c] * (row[c] - lse) for c in range(3))

    with mpmath.workprec(300):
        for k in range(3):
            numeric = mpmath.diff(lambda t, k=k: loss(k, t), mpmath.mpf(z[k]))
            assert mpmath.almosteq(r.grads[k], numeric, rel_eps=1e-30)
