"""binary_cross_entropy_with_logits and its gradient against the exact reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from logitlab import InputError, exact, stable
from logitlab.core.formats import get_format
from logitlab.core.ulp import round_to_format
from logitlab.exact import fast
from logitlab.stable import _fixup

from ._helpers import assert_correctly_rounded, narrow_values, ulps_against

TORCH = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def _np(values: object, dtype: str) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(get_format(dtype).numpy_dtype)


def _torch(values: object, dtype: str, requires_grad: bool = False) -> torch.Tensor:
    t = torch.tensor(np.asarray(values, dtype=np.float64), dtype=getattr(torch, dtype))
    return t.requires_grad_(requires_grad)


def _exact_ulps(computed: object, exact_values: tuple, dtype: str) -> np.ndarray:
    return ulps_against(
        computed, lambda i: exact_values[int(i)], np.arange(len(exact_values)), dtype
    )


# --- the issue's table ---------------------------------------------------------------------

TABLE = [
    ("float32", [-30.0], [1e-10], "mean"),
    ("bfloat16", [-30.0], [1e-3], "mean"),
    ("float16", [-30.0], [1e-3], "mean"),
    ("float32", [-2.0, 2.0], [0.3, 0.7], "mean"),
    ("float32", [20.0, 20.0], [0.3, 0.7], "mean"),
]


@pytest.mark.parametrize(("dtype", "z", "y", "reduction"), TABLE)
def test_issue_table_numpy_and_torch_within_half_ulp(
    dtype: str, z: list, y: list, reduction: str
) -> None:
    fmt = get_format(dtype)
    z_r, y_r = fmt.round(z), fmt.round(y)
    reference = exact.bce_loss(z_r, y_r, reduction=reduction)
    value = stable.binary_cross_entropy_with_logits(_np(z_r, dtype), _np(y_r, dtype))
    grad = stable.binary_cross_entropy_with_logits_grad(_np(z_r, dtype), _np(y_r, dtype))
    assert _exact_ulps([value], reference.values, dtype).max() <= 0.5 + 1e-6
    assert _exact_ulps(grad, reference.grads, dtype).max() <= 0.5 + 1e-6
    zt = _torch(z_r, dtype, requires_grad=True)
    loss = stable.binary_cross_entropy_with_logits(zt, _torch(y_r, dtype))
    loss.backward()
    assert float(loss.detach()) == float(value)
    np.testing.assert_array_equal(zt.grad.double().numpy(), grad.astype(np.float64))


def test_issue_table_torch_loses_what_stable_keeps() -> None:
    z, y = torch.tensor([-30.0]), torch.tensor([1e-10])
    assert float(F.binary_cross_entropy_with_logits(z, y)) == 0.0
    # stable's result is the exact loss correctly rounded to float32 (0.49 ULP, README)
    exact_loss = exact.bce(-30.0, float(y[0]))
    got = float(stable.binary_cross_entropy_with_logits(z, y))
    assert got == round_to_format(exact_loss, "float32")
    assert _exact_ulps([got], (exact_loss,), "float32")[0] <= 0.5


# --- exhaustive over 16-bit logits at a grid of targets -------------------------------------

TARGETS = [0.0, 1e-3, 0.1, 0.3, 0.5, 0.7, 0.999, 1.0]


@pytest.mark.parametrize("pos_weight", [None, 1e-3, 1e3])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_16_bit_logit_at_a_target_grid(dtype: str, pos_weight: float | None) -> None:
    fmt = get_format(dtype)
    z = narrow_values(dtype)
    # |z| <= 1024: within stable's TAIL_LIMIT (beyond it, near-ties decided by a tail
    # below exp(-2048) are rounded to even, as documented).
    z = z[~(np.abs(z) > 1024)]
    zz, yy = np.meshgrid(z, fmt.round(TARGETS), indexing="ij")
    zz, yy = zz.ravel(), yy.ravel()
    pw = None if pos_weight is None else fmt.round([pos_weight])
    reference = fast.bce(zz, yy, dtype, pos_weight=pw)
    args = (_np(zz, dtype), _np(yy, dtype), None, None if pw is None else _np(pw, dtype))
    value = stable.binary_cross_entropy_with_logits(*args, reduction="none")
    grad = stable.binary_cross_entropy_with_logits_grad(*args, reduction="none")
    value_err = fast.ulp_errors(value.astype(np.float64), reference.value, dtype)
    grad_err = fast.ulp_errors(grad.astype(np.float64), reference.grad, dtype)
    assert not np.isnan(value_err).any() and not np.isnan(grad_err).any()
    # overflowing exact values (pos_weight 1e3 at z = -65504) round to inf: no error
    value_err[np.isinf(value.astype(np.float64)) & (reference.value > fmt.max)] = 0
    assert value_err.max() <= 0.5 + fast.TOLERANCE
    assert grad_err.max() <= 0.5 + fast.TOLERANCE
    # correctly rounded: the near-ties the fast reference cannot decide, by mpmath
    p_ = 1.0 if pw is None else float(pw[0])
    finite = reference.value <= fmt.max
    assert_correctly_rounded(
        value[finite],
        reference.value[finite],
        dtype,
        lambda i: exact.bce(float(zz[finite][i]), float(yy[finite][i]), 1.0, p_),
        fast.TOLERANCE,
    )
    assert_correctly_rounded(
        grad,
        reference.grad,
        dtype,
        lambda i: exact.bce_grad(float(zz[i]), float(yy[i]), 1.0, p_),
        fast.TOLERANCE,
    )
    # torch: forward and autograd backward give the same bits
    zt = torch.tensor(zz, dtype=TORCH[dtype], requires_grad=True)
    pw_t = None if pw is None else torch.tensor(pw, dtype=TORCH[dtype])
    loss = stable.binary_cross_entropy_with_logits(
        zt, torch.tensor(yy, dtype=TORCH[dtype]), pos_weight=pw_t, reduction="none"
    )
    loss.backward(torch.ones_like(loss))
    np.testing.assert_array_equal(loss.detach().double().numpy(), value.astype(np.float64))
    np.testing.assert_array_equal(zt.grad.double().numpy(), grad.astype(np.float64))


# --- hypothesis against mpmath ---------------------------------------------------------------


def _case(width: int) -> st.SearchStrategy[tuple[float, float, float, float]]:
    return st.tuples(
        st.floats(allow_nan=False, allow_infinity=False, width=width),
        st.floats(0.0, 1.0, width=width),
        st.floats(0.0, 10.0, width=width),
        st.floats(float(np.float32(1e-3)), 1e3, width=width),
    )


def _one(dtype: str, z: float, y: float, w: float, p: float) -> tuple[float, float]:
    args = [_np([v], dtype) for v in (z, y, w, p)]
    value = stable.binary_cross_entropy_with_logits(*args, reduction="none")
    grad = stable.binary_cross_entropy_with_logits_grad(*args, reduction="none")
    return float(value[0]), float(grad[0])


@settings(max_examples=300, deadline=None)
@given(case=_case(32))
def test_float32_loss_and_gradient_correctly_rounded(
    case: tuple[float, float, float, float],
) -> None:
    # The README: correctly rounded, within 0.5 ULP (+ 1e-6 for ties float64 cannot tell).
    value, grad = _one("float32", *case)
    assert _exact_ulps([value], (exact.bce(*case),), "float32")[0] <= 0.5 + 1e-6, case
    assert _exact_ulps([grad], (exact.bce_grad(*case),), "float32")[0] <= 0.5 + 1e-6, case


@settings(max_examples=300, deadline=None)
@given(case=_case(64))
def test_float64_loss_within_four_ulp(case: tuple[float, float, float, float]) -> None:
    value, _ = _one("float64", *case)
    assert _exact_ulps([value], (exact.bce(*case),), "float64")[0] <= 4.0, case


@pytest.mark.parametrize(
    "case",
    [
        # Found by hypothesis in CI: a subnormal weight times pos_weight times a softplus
        # near float64's max; the exact loss is 1.0 but an intermediate overflowed to inf.
        (-8.76068779172765e307, 1.0, 2.225073858507e-311, 513.0),
        (8.76068779172765e307, 0.0, 2.225073858507e-311, 1.0),
        (-1.7e308, 1.0, 1e-300, 1e3),
        (-1e308, 0.5, 5e-324, 1e3),
    ],
)
def test_float64_no_spurious_overflow(case: tuple[float, float, float, float]) -> None:
    value, grad = _one("float64", *case)
    assert math.isfinite(value) and math.isfinite(grad), (value, grad)
    assert _exact_ulps([value], (exact.bce(*case),), "float64")[0] <= 4.0, case


@settings(max_examples=300, deadline=None)
@given(case=_case(64), hard=st.sampled_from([0.0, 1.0]))
def test_float64_gradient_hard_targets_within_four_ulp(
    case: tuple[float, float, float, float], hard: float
) -> None:
    z, _, w, p = case
    _, grad = _one("float64", z, hard, w, p)
    assert _exact_ulps([grad], (exact.bce_grad(z, hard, w, p),), "float64")[0] <= 4.0


@settings(max_examples=300, deadline=None)
@given(case=_case(64))
def test_float64_gradient_soft_targets_absolute_bound(
    case: tuple[float, float, float, float],
) -> None:
    z, y, w, p = case
    _, grad = _one("float64", z, y, w, p)
    sig, sig_minus = float(exact.sigmoid(z)), float(exact.sigmoid(-z))
    scale = w * max((1 - y) * sig, p * y * sig_minus)
    assert abs(grad - float(exact.bce_grad(z, y, w, p))) <= 2.0**-50 * scale + 1e-320


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_gradient_at_its_zero_crossing_is_recomputed_exactly(dtype: str) -> None:
    # Logits placed right at logit(y): the two gradient terms agree to all float64 bits.
    fmt = get_format(dtype)
    y = fmt.round([0.3, 0.7, 1e-3, 0.999, 0.5])
    with np.errstate(divide="ignore"):
        z = fmt.round(np.log(y / (1 - y)))
    z = np.concatenate([z, fmt.round(np.nextafter(z, np.inf))])
    y = np.concatenate([y, y])
    reference = exact.bce_loss(z, y, reduction="none")
    grad = stable.binary_cross_entropy_with_logits_grad(
        _np(z, dtype), _np(y, dtype), reduction="none"
    )
    assert _exact_ulps(grad, reference.grads, dtype).max() <= 0.5 + 1e-6
    zt = _torch(z, dtype, requires_grad=True)
    stable.binary_cross_entropy_with_logits(zt, _torch(y, dtype), reduction="sum").backward()
    assert _exact_ulps(zt.grad.double().numpy(), reference.grads, dtype).max() <= 0.5 + 1e-6


def test_cancel_factor_flags_no_float64_elements() -> None:
    assert _fixup.cancel_factor("float64") == math.inf
    assert _fixup.cancel_factor("float32") == 2.0**24


# --- semantics: reductions, weight, pos_weight, broadcasting ---------------------------------


def _loop_loss(
    z: np.ndarray, y: np.ndarray, w: np.ndarray, p: np.ndarray, reduction: str
) -> object:
    """A plain Python loop over elements, with torch's definitions."""
    zz, yy, ww, pp = np.broadcast_arrays(z, y, w, p)
    per = [
        float(ww[i])
        * (
            float(pp[i]) * float(yy[i]) * math.log1p(math.exp(-float(zz[i])))
            + (1 - float(yy[i])) * math.log1p(math.exp(float(zz[i])))
        )
        for i in np.ndindex(zz.shape)
    ]
    if reduction == "none":
        return np.array(per).reshape(zz.shape)
    total = math.fsum(per)
    return total if reduction == "sum" else total / len(per)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    ("w_shape", "p_shape"), [((), ()), ((3,), (3,)), ((4, 1), (3,)), ((4, 3), (1, 3))]
)
def test_weight_and_pos_weight_against_a_plain_loop(
    rng: np.random.Generator, reduction: str, w_shape: tuple, p_shape: tuple
) -> None:
    z = rng.normal(0, 4, (4, 3))
    y = rng.random((4, 3))
    w = rng.random(w_shape) * 3
    p = np.exp(rng.normal(0, 2, p_shape))
    expected = _loop_loss(z, y, w, p, reduction)
    got = stable.binary_cross_entropy_with_logits(z, y, w, p, reduction)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.tensor(z, requires_grad=True)
    ours = stable.binary_cross_entropy_with_logits(
        zt, torch.tensor(y), torch.tensor(w), torch.tensor(p), reduction
    )
    theirs = F.binary_cross_entropy_with_logits(
        ref, torch.tensor(y), torch.tensor(w), reduction=reduction, pos_weight=torch.tensor(p)
    )
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)
    ours.backward(torch.ones_like(ours))
    theirs.backward(torch.ones_like(theirs))
    torch.testing.assert_close(zt.grad, ref.grad, rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(
        stable.binary_cross_entropy_with_logits_grad(z, y, w, p, reduction),
        ref.grad.numpy(),
        rtol=1e-10,
        atol=1e-16,
    )


def test_gradients_for_targets_weight_and_pos_weight_match_torch(rng: np.random.Generator) -> None:
    z = torch.tensor(rng.normal(0, 3, (5, 2)))
    arrays = [rng.random((5, 2)), rng.random((2,)) + 0.5, rng.random((2,)) + 0.5]
    ours = [torch.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=i == 0) for i, a in enumerate(arrays)]
    stable.binary_cross_entropy_with_logits(z, *ours, reduction="mean").backward()
    F.binary_cross_entropy_with_logits(
        z, theirs[0], weight=theirs[1], pos_weight=theirs[2], reduction="mean"
    ).backward()
    torch.testing.assert_close(ours[0].grad, theirs[0].grad, rtol=1e-12, atol=1e-15)
    # torch has no weight or pos_weight gradient: d mean / d w_c is the summed unweighted
    # loss of column c over the number of elements, d mean / d p_c that of w y softplus(-z).
    unweighted = F.binary_cross_entropy_with_logits(
        z, theirs[0].detach(), pos_weight=theirs[2].detach(), reduction="none"
    )
    torch.testing.assert_close(ours[1].grad, unweighted.sum(0) / z.numel(), rtol=1e-12, atol=0)
    d_pos = (theirs[1] * theirs[0].detach() * F.softplus(-z)).sum(0) / z.numel()
    torch.testing.assert_close(ours[2].grad, d_pos, rtol=1e-12, atol=0)


def test_torch_double_precision_gradcheck() -> None:
    z = torch.tensor([-3.0, 0.5, 4.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.2, 0.9, 0.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda t: stable.binary_cross_entropy_with_logits(t, y, reduction="sum"), (z,)
    )


def test_infinite_logits_give_limits_and_finite_gradients() -> None:
    z = torch.tensor([math.inf, -math.inf, math.inf, -math.inf], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.5, 0.25])
    loss = stable.binary_cross_entropy_with_logits(z, y, reduction="none")
    assert loss.tolist() == [0.0, 0.0, math.inf, math.inf]
    loss.sum().backward()
    assert z.grad.tolist() == [0.0, 0.0, 0.5, -0.25]


@given(
    z=st.floats(allow_nan=False, width=32),
    y=st.floats(0, 1, width=32),
    p=st.floats(float(np.float32(1e-3)), 1e3, width=32),
)
@settings(max_examples=200, deadline=None)
def test_never_nan_for_non_nan_input(z: float, y: float, p: float) -> None:
    args = [np.float32([v]) for v in (z, y)]
    value = stable.binary_cross_entropy_with_logits(*args, pos_weight=np.float32([p]))
    grad = stable.binary_cross_entropy_with_logits_grad(*args, pos_weight=np.float32([p]))
    assert not np.isnan(value) and np.isfinite(grad).all()
    if math.isfinite(z):
        assert np.isfinite(value) or float(exact.bce(z, y, 1.0, p)) > 3.4e38


def test_zero_weight_removes_an_infinite_term() -> None:
    got = stable.binary_cross_entropy_with_logits(
        np.array([math.inf]), np.array([0.5]), weight=np.array([0.0])
    )
    assert float(got) == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_tensor_matches_cpu() -> None:
    z = torch.linspace(-40, 40, 101, requires_grad=True)
    y = torch.rand(101)
    zc = z.detach().cuda().requires_grad_(True)
    loss = stable.binary_cross_entropy_with_logits(z, y)
    loss_c = stable.binary_cross_entropy_with_logits(zc, y.cuda())
    loss.backward()
    loss_c.backward()
    assert loss_c.device.type == "cuda"
    torch.testing.assert_close(loss_c.cpu(), loss, rtol=2e-7, atol=0)
    torch.testing.assert_close(zc.grad.cpu(), z.grad, rtol=2e-7, atol=0)


# --- errors name their argument ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"reduction": "avg"}, "reduction"),
        ({"y": np.zeros(4)}, "y"),
        ({"weight": np.ones(5)}, "weight"),
        ({"pos_weight": np.ones((2, 3))}, "pos_weight"),
        ({"z": np.array([1, 2, 3])}, "z"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, argument: str) -> None:
    args = {"z": np.zeros(3), "y": np.zeros(3)} | kwargs
    with pytest.raises(InputError) as info:
        stable.binary_cross_entropy_with_logits(**args)
    assert info.value.argument == argument


@pytest.mark.parametrize(("z", "y"), [(-111.125, 0.9355), (-119.8125, 0.6592)])
def test_eager_gradient_near_tie_decided_below_two_to_the_minus_160(z: float, y: float) -> None:
    # 2.5 (sigma(z) - y) / 4096 in float16 lies 2**-170 or so from a midpoint, on the
    # side sigma(z) (about e**-111) decides: exact.bce_grad used to restart at 160 bits
    # whatever precision round_decided had raised, and reset it, so the tie went wrong.
    import mpmath

    zt = torch.full((4096,), z, dtype=torch.float16, requires_grad=True)
    yt = torch.full((4096,), y, dtype=torch.float16)
    (stable.binary_cross_entropy_with_logits(zt, yt) * 2.5).backward()
    assert zt.grad is not None
    mp = mpmath.mp.clone()
    mp.prec = 400
    exact_grad = mp.mpf(2.5) * (1 / (1 + mp.exp(-mp.mpf(z))) - mp.mpf(float(yt[0]))) / 4096
    near = np.float16(float(exact_grad))
    neighbours = [np.nextafter(near, np.float16(-1)), near, np.nextafter(near, np.float16(1))]
    best = min(neighbours, key=lambda v: abs(mp.mpf(float(v)) - exact_grad))
    assert (zt.grad == float(best)).all(), (float(zt.grad[0]), float(best))
