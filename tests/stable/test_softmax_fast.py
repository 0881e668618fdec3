"""The eager torch fast path of softmax cross-entropy against the exact mpmath reference.

Every per-sample loss and every gradient element of narrow (float16, bfloat16, float32)
logits must be the exact value correctly rounded (0.5 ULP, near-ties decided exactly);
the expected values are the reference's (:mod:`logitlab.exact._softmax`), rounded by
:func:`logitlab.core.ulp.round_to_format`, never the code under test.

Every test runs twice: with torch's ops, and with compiled kernels asked for, where
float32 logits without label smoothing run the C passes of ``stable/_native.c``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from logitlab import stable
from logitlab.core.formats import get_format
from logitlab.core.mp import mp_context
from logitlab.core.ulp import round_to_format
from logitlab.exact import _softmax as exact_softmax
from logitlab.stable import _native, _softmax_fast, _softmax_shared

INF = math.inf


@pytest.fixture(autouse=True, params=["torch", "C"])
def kernels(request: pytest.FixtureRequest) -> Iterator[str]:
    """``"C"``: compiled kernels asked for (``set_torch_compile(True)``)."""
    if request.param == "C" and not _native.available():
        pytest.skip("no C compiler here")
    before = stable.get_torch_compile()
    stable.set_torch_compile(request.param == "C")
    yield request.param
    stable.set_torch_compile(before)


def _native_expected(kernels: str, z: torch.Tensor, eps: float) -> int:
    """How many C passes a forward (or a backward) of ``z`` runs under ``kernels``."""
    return int(kernels == "C" and z.dtype == torch.float32 and eps == 0)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class _Undecided(Exception):
    """The reference's precision does not decide a rounding."""


def _rounded(value: object, dtype: str, bits: int = 160) -> float:
    """The exact ``value`` (held to ``bits``) correctly rounded, raising _Undecided where
    that precision cannot decide it."""
    ctx = mp_context()  # mpmath.mpf would round to the global 53 bits
    x = ctx.mpf(value)
    if not ctx.isfinite(x) or x == 0:
        return round_to_format(x, dtype)
    slack = abs(x) * ctx.ldexp(1, 20 - bits)  # the reference holds `bits` (3x for grads)
    low, high = round_to_format(x - slack, dtype), round_to_format(x + slack, dtype)
    if low != high:
        raise _Undecided(f"the reference at {bits} bits sits on a near-tie of {dtype}: {x}")
    return low


def _reference(
    z64: np.ndarray, t: np.ndarray, w: np.ndarray | None, dtype: str, **kwargs: object
) -> tuple[list[float], list[float]]:
    """The exact losses and gradients, correctly rounded: at 160 bits, or, where that
    sits too near a rounding boundary (a tail exp(-4096) above a midpoint), at enough
    bits to see the widest row's smallest exponential."""
    finite = z64[np.isfinite(z64)]
    spread = float(finite.max() - finite.min()) if finite.size else 0.0
    ctx = mp_context()
    for bits in (160, 160 + 64 + int(spread / math.log(2))):
        saved = ctx.prec
        ctx.prec = bits
        try:
            exact = exact_softmax.softmax_cross_entropy(z64, t, w, **kwargs)  # type: ignore[arg-type]
            values = [_rounded(v, dtype, bits) for v in exact.values]
            grads = [_rounded(g, dtype, bits) for g in exact.grads]
            return values, grads
        except _Undecided:
            continue
        finally:
            ctx.prec = saved
    raise AssertionError(f"no precision decides the reference of {z64.tolist()}")


def _run(
    z: torch.Tensor, t: torch.Tensor, reduction: str, **kwargs: object
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    before = dict(_softmax_fast.STATS)
    zg = z.clone().requires_grad_(True)
    loss = stable.softmax_cross_entropy(zg, t, reduction=reduction, **kwargs)
    loss.backward(torch.ones_like(loss))
    after = {k: _softmax_fast.STATS[k] - before[k] for k in before}
    assert zg.grad is not None
    return loss.detach().double().numpy(), zg.grad.double().numpy(), after


def _check(
    rows: list[list[float]],
    targets: list[int],
    dtype: str,
    reduction: str = "none",
    weight: list[float] | None = None,
    eps: float = 0.0,
) -> dict[str, int]:
    kernels = "C" if stable.get_torch_compile() is True else "torch"
    z = torch.tensor(rows, dtype=torch.float64).to(DTYPES[dtype])
    t = torch.tensor(targets)
    w = None if weight is None else torch.tensor(weight, dtype=torch.float32)
    values, grads, stats = _run(z, t, reduction, weight=w, label_smoothing=eps)
    assert stats["fast_forward"] == 1 and stats["fast_backward"] == 1
    native = _native_expected(kernels, z, eps)
    assert stats["native_forward"] == native and stats["native_backward"] == native
    z64 = z.double().numpy()
    # A fully masked row is documented as loss 0, gradient 0, left out of the mean (the
    # reference leaves it undefined): the reference runs on the other rows.
    live = ~np.all(z64 == -INF, axis=1)
    rounded, rounded_grads = _reference(
        z64[live],
        t.numpy()[live],
        None if w is None else w.double().numpy(),
        dtype,
        reduction=reduction,
        label_smoothing=eps,
    )
    if reduction == "none":
        expected_values = np.zeros(len(rows))
        expected_values[live] = rounded
    else:
        expected_values = np.array(rounded)
    expected_grads = np.zeros(z64.shape)
    expected_grads[live] = np.array(rounded_grads).reshape(z64[live].shape)
    np.testing.assert_array_equal(np.ravel(values), expected_values)
    np.testing.assert_array_equal(grads, expected_grads)
    # the NumPy fast path: the same values, from the same logits (exact in the narrow dtype)
    before = dict(_softmax_fast.STATS)
    z_np = z64.astype(get_format(dtype).numpy_dtype)
    w_np = None if w is None else w.numpy()
    kwargs = {"reduction": reduction, "label_smoothing": eps}
    got = stable.softmax_cross_entropy(z_np, t.numpy(), w_np, **kwargs)
    got_grad = stable.softmax_cross_entropy_grad(z_np, t.numpy(), w_np, **kwargs)
    assert _softmax_fast.STATS["fast_forward"] - before["fast_forward"] == 1
    assert _softmax_fast.STATS["fast_backward"] - before["fast_backward"] == 1
    assert str(np.asarray(got).dtype) == dtype and str(got_grad.dtype) == dtype
    np.testing.assert_array_equal(np.ravel(np.asarray(got, dtype=np.float64)), expected_values)
    np.testing.assert_array_equal(got_grad.astype(np.float64), expected_grads)
    return stats


HARD_ROWS = [
    [40.0, 0.0, 0.0, -3.0],  # confident: loss 2 exp(-40) + ..., grad at the max -r/(1+r)
    [0.0, -100.0, -90.0, -745.0],  # float32 subnormal probabilities, one far tail
    [3.0, 3.0, 3.0, 1.0],  # tied maxima
    [2.0, 2.0, 2.0, 2.0],  # all equal
    [1e-30, 20.0, 5e-9, -7.0],  # |z_c| < 2**-28 m: z_c - m inexact in float64
    [1e-7, -500.0, -700.0, -30.0],  # a tiny maximum: z_c - m inexact
    [88.0, -88.0, 1e4, -1e4],  # large margins
    [0.0, -12.0, -17.0, -9.5],  # float16 subnormal probabilities
]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("target", [0, 1, 2, 3])
def test_hard_rows_correctly_rounded(dtype: str, target: int) -> None:
    rows = HARD_ROWS
    if dtype == "float16":
        rows = [[max(min(x, 6e4), -6e4) for x in row] for row in rows]
    _check(rows, [target] * len(rows), dtype)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_label_smoothing_and_weights_correctly_rounded(dtype: str, eps: float) -> None:
    rows = [row for row in HARD_ROWS if max(abs(x) for x in row) < 6e4]
    targets = [i % 4 for i in range(len(rows))]
    _check(rows, targets, dtype, eps=eps)
    _check(rows, targets, dtype, weight=[0.5, 2.0, 1.0, 3.25], eps=eps)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_random_rows_with_ignored_samples(
    rng: np.random.Generator, dtype: str, reduction: str
) -> None:
    rows = rng.normal(0.0, 4.0, (12, 40)).tolist()
    targets = rng.integers(0, 40, 12).tolist()
    targets[3] = -100
    _check(rows, targets, dtype, reduction=reduction, weight=(rng.random(40) + 0.5).tolist())


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_masked_logits(dtype: str) -> None:
    rows = [
        [0.0, -INF, 1.0, -2.0],  # masked non-target class
        [-INF, -INF, -INF, -INF],  # fully masked: loss 0, gradient 0
        [-INF, 2.0, 0.0, 0.5],  # masked target: loss +inf, finite gradient
    ]
    _check(rows, [0, 0, 0], dtype)
    _check(rows, [0, 0, 0], dtype, reduction="sum")
    # the fully masked row is left out of the mean's denominator
    _check(rows[:2], [0, 0], dtype, reduction="mean")
    # label smoothing puts eps / C on the masked classes: loss +inf, gradient finite
    _check(rows[:2], [2, 0], dtype, reduction="none", eps=0.2)


def test_exact_tie_is_decided_and_counted() -> None:
    # At a masked class the gradient is -g w_j eps / C exactly: with w_j = 1 + 2**-8,
    # eps / C = 1/4, it is -(1 + 2**-8) / 4, a bfloat16 midpoint (between -1/4 and
    # -(1 + 2**-7) / 4).  The float64 value sits on it, so the exact path decides:
    # ties to even, -1/4.
    z = torch.tensor([[0.0, -INF, 1.0, -2.0]], dtype=torch.bfloat16)
    w = torch.tensor([1.0, 1.0 + 2.0**-8, 1.0, 1.0])
    _, grads, stats = _run(z, torch.tensor([0]), "sum", weight=w, label_smoothing=1.0)
    assert grads[0, 1] == -0.25
    assert stats["exact_grads"] >= 1


def test_fast_path_is_taken_and_rarely_exact(rng: np.random.Generator) -> None:
    z = torch.tensor(rng.normal(0.0, 4.0, (300, 200)), dtype=torch.float32)
    t = torch.tensor(rng.integers(0, 200, 300))
    for reduction in ("mean", "none"):
        values, grads, stats = _run(z, t, reduction)
        assert stats["fast_forward"] == 1 and stats["fast_backward"] == 1
        # 60,000 gradient elements: the bound flags about one in 10**7
        assert stats["exact_grads"] <= 3 and stats["exact_losses"] <= 1
        ref = torch.nn.functional.cross_entropy(z.double(), t, reduction=reduction)
        np.testing.assert_allclose(values, np.ravel(ref.numpy()), rtol=1e-6)
        assert np.isfinite(grads).all()


def test_general_path_for_infinite_logits_and_float64() -> None:
    z = torch.tensor([[INF, 0.0, 1.0], [0.0, 1.0, 2.0]])
    _, grads, stats = _run(z, torch.tensor([0, 1]), "none")
    assert stats["fast_forward"] == 0 and np.isfinite(grads).all()
    _, _, stats = _run(z[1:].double(), torch.tensor([1]), "none")
    assert stats["fast_forward"] == 0


def test_three_dimensional_input_matches_the_two_dimensional_rows(
    rng: np.random.Generator,
) -> None:
    z = torch.tensor(rng.normal(0.0, 3.0, (4, 5, 3)), dtype=torch.float32)
    t = torch.tensor(rng.integers(0, 5, (4, 3)))
    values, grads, stats = _run(z, t, "none")
    assert stats["fast_forward"] == 1 and values.shape == (4, 3) and grads.shape == (4, 5, 3)
    rows = z.movedim(1, -1).reshape(-1, 5)
    flat_values, flat_grads, _ = _run(rows, t.reshape(-1), "none")
    np.testing.assert_array_equal(values.reshape(-1), flat_values)
    np.testing.assert_array_equal(np.moveaxis(grads, 1, -1).reshape(-1, 5), flat_grads)


def _row_strategy() -> st.SearchStrategy[list[float]]:
    element = st.one_of(
        st.floats(-30, 30, width=32),
        st.sampled_from([0.0, -INF, 1e-30, -5e-8, 88.0, -745.0, 1e4]),
        st.floats(-3e4, 3e4, width=32),
    )
    return st.lists(element, min_size=4, max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(_row_strategy(), min_size=1, max_size=3),
    targets=st.lists(st.sampled_from([0, 1, 2, 3, -100]), min_size=3, max_size=3),
    weight=st.one_of(st.none(), st.lists(st.floats(0.25, 4.0, width=32), min_size=4, max_size=4)),
    eps=st.sampled_from([0.0, 0.1]),
    reduction=st.sampled_from(["none", "sum"]),
    dtype=st.sampled_from(["float32", "bfloat16"]),
)
@example(  # a loss 2**-54.6 (relative) above a float32 midpoint, decided exactly
    rows=[[88.0, 0.0, 0.0, 9.879430770874023]],
    targets=[0, 0, 0],
    weight=None,
    eps=0.1,
    reduction="none",
    dtype="float32",
)
@example(  # a loss exp(-4096) above a bfloat16 midpoint (4112): found by hypothesis
    rows=[[0.0, 0.0, 4113.0, 16.0]],
    targets=[0, 0, 0],
    weight=None,
    eps=0.0,
    reduction="none",
    dtype="bfloat16",
)
def test_random_cases_correctly_rounded(
    rows: list[list[float]],
    targets: list[int],
    weight: list[float] | None,
    eps: float,
    reduction: str,
    dtype: str,
) -> None:
    _check(rows, targets[: len(rows)], dtype, reduction=reduction, weight=weight, eps=eps)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_every_element_through_the_exact_path(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, dtype: str, eps: float
) -> None:
    # With the chunked bounds raised 2**45-fold every element is flagged: the float64
    # second evaluation (math.exp, math.fsum) decides most, mpmath the rest, and all of
    # them must still be the exact values correctly rounded.
    monkeypatch.setattr(_softmax_shared, "SLACK", 2.0**45)
    rows = rng.normal(0.0, 3.0, (5, 6)).tolist()
    rows[1][2] = -INF
    targets = [0, 1, 2, 3, 4]
    stats = _check(rows, targets, dtype, weight=(rng.random(6) + 0.5).tolist(), eps=eps)
    # (with label smoothing the masked row's loss is +inf: nothing to decide)
    assert stats["exact_grads"] >= 25 and stats["exact_losses"] == (5 if eps == 0 else 4)
    assert stats["exact_mpmath"] < stats["exact_grads"]


needs_extended = pytest.mark.skipif(
    _softmax_shared._extended() is None, reason="NumPy's longdouble is binary64 here"
)


@needs_extended
@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_every_element_through_the_extended_tier(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, reduction: str, eps: float
) -> None:
    # Every element flagged, and the float64 second evaluation declining them all: the
    # x87 extended evaluation decides nearly all, mpmath the rest, each still the exact
    # value correctly rounded.
    monkeypatch.setattr(_softmax_shared, "SLACK", 2.0**45)
    monkeypatch.setattr(_softmax_shared._CloserRow, "grad", lambda *args: None)
    rows = rng.normal(0.0, 6.0, (5, 7)).tolist()
    rows[2][3] = -INF
    rows[3][1] = rows[3][5] = max(rows[3])  # tied maxima
    weight = (rng.random(7) + 0.5).tolist()
    stats = _check(rows, [0, 1, 2, 3, 6], "float32", reduction=reduction, weight=weight, eps=eps)
    assert stats["exact_grads"] >= 30
    assert stats["exact_long"] >= stats["exact_grads"] - 2


@needs_extended
def test_extended_exp_within_two_ulp() -> None:
    # _ExtendedRow's bound assumes exp in x87 extended precision within 2 ULP (of a
    # 64-bit significand) on exact arguments z_c - m <= 0; checked against mpmath.
    import mpmath

    ld = np.longdouble
    rng = np.random.default_rng(7)
    d = np.concatenate([-rng.exponential(20.0, 3000), -rng.random(1000), [0.0, -745.0]])
    got = np.exp(d.astype(ld))
    ctx = mpmath.mp.clone()
    ctx.prec = 200
    worst = 0.0
    for x, y in zip(d.tolist(), got):
        exact = ctx.exp(ctx.mpf(x))
        _, exponent = ctx.frexp(exact)  # exact = f 2**exponent, 0.5 <= f < 1
        ulp = ctx.ldexp(1, int(exponent) - 64)
        frac, power = np.frexp(y)  # y = frac 2**power, frac = hi + lo exactly (53 + 11 bits)
        hi = float(frac)
        lo = float(frac - ld(hi))
        error = abs(ctx.ldexp(ctx.mpf(hi) + ctx.mpf(lo), int(power)) - exact) / ulp
        worst = max(worst, float(error))
    assert worst <= 2.0, worst
    print(f"worst expl error {worst:.3f} ULP")


def test_large_vocabulary_rarely_reaches_mpmath() -> None:
    # A language-model-sized row: the flagged gradient elements are decided without
    # recomputing the 50,257-class row in mpmath (seconds each) wherever long double
    # allows; either way they are the exact values correctly rounded.
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(64, 50257, generator=gen) * 4
    t = torch.randint(0, 50257, (64,), generator=gen)
    before = dict(_softmax_fast.STATS)
    zg = z.clone().requires_grad_(True)
    stable.softmax_cross_entropy(zg, t).backward()
    stats = {k: _softmax_fast.STATS[k] - before[k] for k in before}
    assert stats["fast_backward"] == 1
    print(stats)
    if _softmax_shared._extended() is not None:
        assert stats["exact_mpmath"] == 0


def test_exact_sum_of_floats() -> None:
    from fractions import Fraction

    values = [1.0, 2.0**-1074, -3.5, 1e308, 0.1, -1e308, 5e-324, 0.0]
    assert _softmax_shared.exact_sum(values) == sum((Fraction(x) for x in values), Fraction(0))
    assert _softmax_shared.exact_sum([]) == 0
    assert _softmax_shared.exact_sum([1.0] * 50257) == 50257


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_rows_wider_than_a_chunk_are_cut_into_column_blocks(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, dtype: str, eps: float
) -> None:
    # A chunk of 64 logits makes these 150-class rows (a language model's vocabulary, in
    # small) one row per chunk, each op on blocks of at most 64 columns, the last one
    # narrower: the losses and gradients must still be the exact values correctly rounded.
    monkeypatch.setattr(_softmax_fast, "CHUNK", 64)
    assert [b.indices(150) for b in _softmax_fast._column_blocks(150)] == [
        (0, 64, 1),
        (64, 128, 1),
        (128, 150, 1),
    ]
    rows = rng.normal(0.0, 4.0, (3, 150)).tolist()
    rows[1][100] = 60.0  # the maximum in the last block but one
    if eps == 0:
        rows[2][149] = -INF  # a masked class in the last block (weighted smoothing: general)
    stats = _check(rows, [5, 100, 140], dtype, weight=(rng.random(150) + 0.5).tolist(), eps=eps)
    assert stats["fast_forward"] == 1 and stats["fast_backward"] == 1


@needs_extended
def test_wide_rows_skip_the_float64_second_pass(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows wider than WIDE_ROW (here 4 classes) go straight to the extended evaluation:
    # the float64 one must not run, and every element is still correctly rounded.
    monkeypatch.setattr(_softmax_shared, "SLACK", 2.0**45)
    monkeypatch.setattr(_softmax_shared, "WIDE_ROW", 4)

    def refuse(*args: object) -> None:
        raise AssertionError("the float64 second pass ran on a wide row")

    monkeypatch.setattr(_softmax_shared._CloserRow, "grad", refuse)
    rows = rng.normal(0.0, 6.0, (4, 7)).tolist()
    stats = _check(rows, [0, 1, 2, 6], "float32", reduction="mean")
    assert stats["exact_grads"] >= 24
    assert stats["exact_long"] >= stats["exact_grads"] - 2


def test_narrow_rows_try_the_float64_second_pass_for_every_flagged_element(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Below WIDE_ROW the float64 second pass is asked first, for each flagged element (it
    # decides most of them without building the extended row), also after an element it
    # could not decide (here the first two asked) sent one to the extended pass.
    monkeypatch.setattr(_softmax_shared, "SLACK", 2.0**45)
    asked: list[int] = []
    real = _softmax_shared._CloserRow.grad

    def counting(self: object, col: int, *args: object) -> object:
        asked.append(col)
        if len(asked) <= 2:
            return None
        return real(self, col, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_softmax_shared._CloserRow, "grad", counting)
    rows = rng.normal(0.0, 3.0, (4, 7)).tolist()
    stats = _check(rows, [0, 1, 2, 6], "float32", reduction="mean")
    assert stats["exact_grads"] >= 24
    # the torch and the NumPy fast paths both ask it, once per flagged element
    assert len(asked) >= 2 * stats["exact_grads"]
