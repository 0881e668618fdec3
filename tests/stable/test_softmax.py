"""logsumexp, log_softmax, softmax and softmax cross-entropy against the exact reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from logitlab import InputError, stable
from logitlab.exact import _softmax as exact_softmax

from ._helpers import hi_lo, ulps_against


def _ulps(computed: object, exact_values: object, dtype: str) -> np.ndarray:
    values = list(exact_values)
    return ulps_against(computed, lambda i: values[int(i)], np.arange(len(values)), dtype)


def _rows(width: int, classes: int = 4) -> st.SearchStrategy[list[float]]:
    # Logits spread over a wide but realistic range, with ties and far outliers.
    big = float(np.float32(1e30))
    element = st.one_of(
        st.floats(-60, 60, width=width),
        st.sampled_from([0.0, -1e4, 1e4, -745.0, 88.0]),
        st.floats(-big, big, width=width),
    )
    return st.lists(element, min_size=classes, max_size=classes)


# --- the three row functions ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(row=_rows(32))
def test_float32_row_functions_within_one_ulp(row: list[float]) -> None:
    z = np.float32(row)
    assert _ulps(stable.log_softmax(z), exact_softmax.log_softmax(row), "float32").max() <= 1
    assert _ulps(stable.softmax(z), exact_softmax.softmax(row), "float32").max() <= 1
    lse = exact_softmax.logsumexp(row)
    assert _ulps([stable.logsumexp(z)], [lse], "float32").max() <= 1


@settings(max_examples=150, deadline=None)
@given(row=_rows(64))
def test_float64_row_functions_within_four_ulp(row: list[float]) -> None:
    z = np.array(row)
    assert _ulps(stable.log_softmax(z), exact_softmax.log_softmax(row), "float64").max() <= 4
    assert _ulps(stable.softmax(z), exact_softmax.softmax(row), "float64").max() <= 4
    lse = exact_softmax.logsumexp(row)
    got = float(stable.logsumexp(z))
    if _ulps([got], [lse], "float64")[0] > 4:
        # Only where m < 0 < log1p(r) cancel: the documented absolute bound holds.
        m = max(row)
        assert m < 0 and abs(got - float(lse)) <= 2.0**-52 * (abs(m) + math.log(len(row)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["logsumexp", "log_softmax", "softmax"])
def test_torch_row_functions_and_backward_match_torch_float64(
    rng: np.random.Generator, name: str, dtype: torch.dtype
) -> None:
    z = torch.tensor(rng.normal(0, 3, (3, 5, 2))).to(dtype)
    ours_in = z.clone().requires_grad_(True)
    ref_in = z.double().clone().requires_grad_(True)
    ours = getattr(stable, name)(ours_in, axis=1)
    refs = {"logsumexp": torch.logsumexp, "log_softmax": F.log_softmax, "softmax": F.softmax}
    ref = refs[name](ref_in, 1)
    assert ours.dtype == dtype and ours.shape == ref.shape
    torch.testing.assert_close(ours, ref.to(dtype))
    seed = torch.tensor(rng.normal(size=tuple(ref.shape))).to(dtype)
    ours.backward(seed)
    ref.backward(seed.double())
    torch.testing.assert_close(ours_in.grad, ref_in.grad.to(dtype))


def test_keepdims_and_axis() -> None:
    z = np.arange(6.0).reshape(2, 3)
    assert stable.logsumexp(z, axis=0, keepdims=True).shape == (1, 3)
    np.testing.assert_allclose(stable.softmax(z, axis=0).sum(axis=0), 1.0)
    with pytest.raises(InputError) as info:
        stable.softmax(z, axis=2)
    assert info.value.argument == "axis"


def test_confident_prediction_keeps_its_tiny_loss() -> None:
    # log_softmax of the winner is -exp(-40) to full accuracy; torch's float32 rounds to 0.
    z = np.float32([[40.0, 0.0]])
    exact = exact_softmax.softmax_cross_entropy(z.astype(np.float64), np.array([0]))
    got = stable.softmax_cross_entropy(z, np.array([0]))
    assert _ulps([got], exact.values, "float32")[0] <= 0.5 + 1e-6
    assert float(F.cross_entropy(torch.tensor(z), torch.tensor([0]))) == 0.0


def test_infinite_logits_give_limits_and_finite_gradients() -> None:
    z = torch.tensor([[math.inf, 0.0, -math.inf], [1.0, -math.inf, 0.0]], requires_grad=True)
    loss = stable.softmax_cross_entropy(z, torch.tensor([0, 0]), reduction="none")
    assert loss[0].item() == 0.0 and math.isfinite(loss[1].item())
    loss.sum().backward()
    assert torch.isfinite(z.grad).all()
    assert float(stable.logsumexp(np.array([math.inf, 0.0]))) == math.inf


# --- cross-entropy against the exact reference ------------------------------------------------


def _ce_case(
    width: int,
) -> st.SearchStrategy[tuple[list[list[float]], list[int], list[float] | None, float, str]]:
    return st.tuples(
        st.lists(_rows(width, 3), min_size=1, max_size=3),
        st.lists(st.sampled_from([0, 1, 2, -100]), min_size=3, max_size=3),
        st.one_of(st.none(), st.lists(st.floats(0.25, 4.0, width=width), min_size=3, max_size=3)),
        st.sampled_from([0.0, 0.1]),
        st.sampled_from(["none", "mean", "sum"]),
    )


def _check_ce(case: tuple, dtype: str, value_bound: float, np_dtype: type) -> None:
    rows, targets, weight, eps, reduction = case
    z = np.array(rows, dtype=np_dtype)
    t = np.array(targets[: len(rows)])
    if reduction == "mean" and (t == -100).all():
        t[0] = 1
    w = None if weight is None else np.array(weight, dtype=np_dtype)
    exact = exact_softmax.softmax_cross_entropy(
        z.astype(np.float64),
        t,
        None if w is None else w.astype(np.float64),
        reduction=reduction,
        label_smoothing=eps,
    )
    value = stable.softmax_cross_entropy(z, t, w, reduction=reduction, label_smoothing=eps)
    grad = stable.softmax_cross_entropy_grad(z, t, w, reduction=reduction, label_smoothing=eps)
    assert _ulps(np.ravel(value), exact.values, dtype).max() <= value_bound
    grad_err = _ulps(grad.ravel(), exact.grads, dtype)
    if dtype == "float64":
        # Soft coefficients (label smoothing) make Q p_j - q_j cancel: absolute bound.
        hi, _ = hi_lo(exact.grads)
        bad = grad_err > 4
        assert np.all(
            np.abs(grad.ravel()[bad] - hi[bad]) <= 2.0**-49 * 4 * max(1.0, *(weight or [1]))
        )
    else:
        assert grad_err.max() <= 1.0


@settings(max_examples=120, deadline=None)
@given(case=_ce_case(32))
def test_float32_cross_entropy_and_gradient_within_one_ulp(case: tuple) -> None:
    _check_ce(case, "float32", 1.0, np.float32)


@settings(max_examples=120, deadline=None)
@given(case=_ce_case(64))
def test_float64_cross_entropy_within_four_ulp(case: tuple) -> None:
    _check_ce(case, "float64", 4.0, np.float64)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(_rows(32, 3), min_size=2, max_size=2),
    probs=st.lists(
        st.lists(st.floats(0, 1, width=32), min_size=3, max_size=3), min_size=2, max_size=2
    ),
    eps=st.sampled_from([0.0, 0.2]),
)
def test_probability_targets_within_one_ulp(rows: list, probs: list, eps: float) -> None:
    z, y = np.float32(rows), np.float32(probs)
    exact = exact_softmax.softmax_cross_entropy(
        z.astype(np.float64), y.astype(np.float64), reduction="sum", label_smoothing=eps
    )
    value = stable.softmax_cross_entropy(z, y, reduction="sum", label_smoothing=eps)
    grad = stable.softmax_cross_entropy_grad(z, y, reduction="sum", label_smoothing=eps)
    assert _ulps([value], exact.values, "float32").max() <= 1
    assert _ulps(grad.ravel(), exact.grads, "float32").max() <= 1


# --- identities ---------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(z=st.floats(-80, 80, width=64), y=st.floats(0, 1, width=64))
def test_two_class_softmax_cross_entropy_equals_bce(z: float, y: float) -> None:
    # softmax([0, z])_1 = sigma(z): CE with targets (1 - y, y) is BCE(z, y)
    ce = stable.softmax_cross_entropy(np.array([[0.0, z]]), np.array([[1 - y, y]]), reduction="sum")
    bce = stable.binary_cross_entropy_with_logits(np.array([z]), np.array([y]), reduction="sum")
    assert float(ce) == pytest.approx(float(bce), rel=1e-14, abs=1e-300)
    ce_grad = stable.softmax_cross_entropy_grad(
        np.array([[0.0, z]]), np.array([[1 - y, y]]), reduction="sum"
    )
    bce_grad = stable.binary_cross_entropy_with_logits_grad(
        np.array([z]), np.array([y]), reduction="sum"
    )
    assert float(ce_grad[0, 1]) == pytest.approx(float(bce_grad[0]), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("eps", [0.0, 0.3])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_integer_labels_equal_one_hot(rng: np.random.Generator, reduction: str, eps: float) -> None:
    z = rng.normal(0, 5, (6, 4, 3))
    t = rng.integers(0, 4, (6, 3))
    one_hot = np.moveaxis(np.eye(4)[t], -1, 1)
    by_label = stable.softmax_cross_entropy(z, t, reduction=reduction, label_smoothing=eps)
    by_prob = stable.softmax_cross_entropy(z, one_hot, reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(by_label, by_prob, rtol=1e-14)
    g_label = stable.softmax_cross_entropy_grad(z, t, reduction=reduction, label_smoothing=eps)
    g_prob = stable.softmax_cross_entropy_grad(z, one_hot, reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(g_label, g_prob, rtol=1e-12, atol=1e-17)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(5, 4), (4,), (3, 4, 2)])
@pytest.mark.parametrize("probabilities", [False, True])
def test_torch_semantics_weight_ignore_index_smoothing(
    rng: np.random.Generator, dtype: torch.dtype, shape: tuple, probabilities: bool
) -> None:
    z = torch.tensor(rng.normal(0, 3, shape)).to(dtype)
    classes = shape[0] if len(shape) == 1 else shape[1]
    if probabilities:
        y = rng.random(shape)
        target = torch.tensor(y / y.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)).to(dtype)
    else:
        tshape = () if len(shape) == 1 else (shape[0], *shape[2:])
        t = rng.integers(0, classes, tshape)
        if t.ndim:
            t.flat[0] = -100
        target = torch.tensor(t)
    weight = torch.tensor(rng.random(classes) + 0.5).to(dtype)
    for reduction in ("none", "mean", "sum"):
        for eps in (0.0, 0.2):
            ours_in = z.clone().requires_grad_(True)
            ref_in = z.double().clone().requires_grad_(True)
            ref_target = target.double() if probabilities else target
            ours = stable.softmax_cross_entropy(ours_in, target, weight, -100, reduction, eps)
            ref = F.cross_entropy(
                ref_in, ref_target, weight.double(), reduction=reduction, label_smoothing=eps
            )
            assert ours.shape == ref.shape and ours.dtype == dtype
            torch.testing.assert_close(ours.double(), ref.to(dtype).double())
            ours.backward(torch.ones_like(ours))
            ref.backward(torch.ones_like(ref))
            torch.testing.assert_close(ours_in.grad.double(), ref_in.grad.to(dtype).double())


def test_probability_target_gradient_matches_torch(rng: np.random.Generator) -> None:
    z = torch.tensor(rng.normal(0, 2, (3, 4)))
    y = torch.tensor(rng.random((3, 4)))
    ours_y = y.clone().requires_grad_(True)
    ref_y = y.clone().requires_grad_(True)
    stable.softmax_cross_entropy(z, ours_y, label_smoothing=0.1).backward()
    F.cross_entropy(z, ref_y, label_smoothing=0.1).backward()
    torch.testing.assert_close(ours_y.grad, ref_y.grad)


# --- errors name their argument -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"reduction": "avg"}, "reduction"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"target": np.array([0, 5])}, "target"),
        ({"target": np.array([0, 1, 2])}, "target"),
        ({"target": np.zeros((2, 4))}, "target"),
        ({"weight": np.ones(4)}, "weight"),
        ({"z": np.zeros(())}, "z"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, argument: str) -> None:
    args = {"z": np.zeros((2, 3)), "target": np.array([0, 1])} | kwargs
    with pytest.raises(InputError) as info:
        stable.softmax_cross_entropy(**args)
    assert info.value.argument == argument


# --- masked (-inf) logits -------------------------------------------------------------------


def _mp_log_softmax(row: list[float]) -> list[object]:
    import mpmath

    ctx = mpmath.MPContext()
    ctx.prec = 300
    finite = [ctx.mpf(v) for v in row if v != -math.inf]
    total = ctx.fsum(ctx.exp(v) for v in finite)
    return [ctx.log(ctx.exp(ctx.mpf(v)) / total) if v != -math.inf else -ctx.inf for v in row]


def test_masked_rows_are_defined_and_never_nan() -> None:
    from logitlab.core.ulp import round_to_format

    inf = math.inf
    z = np.array([[0.0, -inf, 1.0], [-inf, -inf, -inf], [-inf, 2.0, 0.0]], dtype=np.float32)
    t = np.array([0, 0, 0])
    lp0 = _mp_log_softmax([0.0, -inf, 1.0])
    lp2 = _mp_log_softmax([-inf, 2.0, 0.0])
    # row 0: an ordinary loss; row 1 (fully masked): 0, left out of the mean; row 2 (target
    # masked): the exact loss -log 0 = +inf, with the finite gradient softmax(z) - onehot
    per_sample = stable.softmax_cross_entropy(z, t, reduction="none")
    assert per_sample.tolist() == [round_to_format(-lp0[0], "float32"), 0.0, inf]
    z01 = z[:2]
    mean = stable.softmax_cross_entropy(z01, t[:2])
    assert float(mean) == round_to_format(-lp0[0], "float32")  # divided by 1, not 2
    import mpmath

    expected = np.array(
        [
            [round_to_format(mpmath.exp(v) - (c == 0), "float32") for c, v in enumerate(lp0)],
            [0.0, 0.0, 0.0],
            [round_to_format(mpmath.exp(v) - (c == 0), "float32") for c, v in enumerate(lp2)],
        ]
    )
    grad = stable.softmax_cross_entropy_grad(z, t, reduction="sum")
    np.testing.assert_array_equal(grad.astype(np.float64), expected)
    zt = torch.tensor(z, requires_grad=True)
    loss = stable.softmax_cross_entropy(zt, torch.tensor(t), reduction="none")
    assert loss.tolist() == per_sample.tolist()
    loss.sum().backward()
    np.testing.assert_array_equal(zt.grad.double().numpy(), expected)
    # probability targets: the masked row is 0 as well (the denominator stays N, as ATen's)
    y = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    zt = torch.tensor(z01, requires_grad=True)
    prob = stable.softmax_cross_entropy(zt, torch.tensor(y))
    assert float(prob) == round_to_format(-lp0[0] / 2, "float32")
    prob.backward()
    assert torch.isfinite(zt.grad).all() and (zt.grad[1] == 0).all()


EMPTY_MEANS = [
    ([[-math.inf, -math.inf]], [0]),  # the only sample fully masked
    ([[1.0, 2.0], [0.5, -3.0]], [-100, -100]),  # every sample ignored
    ([[-math.inf, -math.inf, -math.inf], [4.0, 1.0, 0.0]], [1, -100]),  # both at once
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize(("rows", "targets"), EMPTY_MEANS)
def test_mean_over_no_sample_is_nan_with_zero_gradient(
    rows: list[list[float]], targets: list[int], dtype: str, eps: float
) -> None:
    # Nothing counts in the mean: 0 / 0, NaN, as F.cross_entropy gives, and the gradient
    # 0 (F.cross_entropy's too, where it is defined: not for a masked row).  The fast
    # paths (float32) and the general ones (float64) alike, NumPy and torch; this used to
    # raise ZeroDivisionError.
    z = np.array(rows, dtype=dtype)
    t = np.array(targets)
    assert math.isnan(float(stable.softmax_cross_entropy(z, t, label_smoothing=eps)))
    grad = stable.softmax_cross_entropy_grad(z, t, label_smoothing=eps)
    np.testing.assert_array_equal(grad, np.zeros(z.shape))
    zt = torch.tensor(z, requires_grad=True)
    loss = stable.softmax_cross_entropy(zt, torch.tensor(t), label_smoothing=eps)
    assert math.isnan(loss.item())
    loss.backward()
    assert zt.grad is not None
    np.testing.assert_array_equal(zt.grad.numpy(), np.zeros(z.shape))
    if not np.isinf(z).any():
        zf = torch.tensor(z, requires_grad=True)
        native = F.cross_entropy(zf, torch.tensor(t), label_smoothing=eps)
        native.backward()
        assert math.isnan(native.item()) and zf.grad is not None
        np.testing.assert_array_equal(zf.grad.numpy(), np.zeros(z.shape))
