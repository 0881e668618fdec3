"""The C kernels of the float32 fast paths (``stable/_native.c``) against mpmath.

BCE: its own ``exp`` at the 4 u the source proves, its ``log1p`` at 5 u, each loss at
10 u, every gradient element at 0.5 ULP (near-ties decided in x87 extended precision or
by mpmath); softmax cross-entropy: the row pass against torch.max and mpmath, and the
cases that decline (every value is checked at 0.5 ULP against mpmath in both modes by
``test_softmax_fast.py``); the loader: its cache, a compiler that fails, the switch
that turns it off, and a forked child.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import mpmath
import numpy as np
import pytest
import torch

from logitlab import stable
from logitlab.stable import _bce_compiled, _native

from .test_bce_compiled import _expected, _hard_inputs

U = 2.0**-53

pytestmark = pytest.mark.skipif(not _native.available(), reason="no C compiler here")


@pytest.fixture
def compiled() -> Iterator[None]:
    before = stable.get_torch_compile()
    stable.set_torch_compile(True)
    yield
    stable.set_torch_compile(before)


def _relative_errors(got: np.ndarray, exact: list[mpmath.mpf]) -> np.ndarray:
    return np.array([float(abs(mpmath.mpf(float(g)) - x) / x) for g, x in zip(got, exact)])


def test_exp_within_4_ulp() -> None:
    """exp(-a) for a in [0, 708]: random points, both sides of every reduction step
    (a = (k + 1/2) log 2), float32 logits, 0 and the ends; 0 beyond 708."""
    rng = np.random.default_rng(3)
    k = np.arange(0, 1022)
    steps = (k + 0.5) * math.log(2)
    a = np.concatenate(
        [
            rng.uniform(0, 708, 4000),
            rng.uniform(0, 1, 1000),
            np.nextafter(steps, 0),
            np.nextafter(steps, 800),
            np.float32(rng.normal(0, 30, 2000)).astype(np.float64) ** 2 % 708,
            [0.0, 2.0**-60, 1e-30, 1e-8, 0.3466, 707.9999, 708.0],
        ]
    )
    a = a[(a >= 0) & (a <= 708)]
    got = _native.elementwise("exp_neg", a)
    with mpmath.workprec(120):
        exact = [mpmath.exp(-mpmath.mpf(float(x))) for x in a]
        worst = _relative_errors(got, exact).max()
    assert worst <= 4 * U, worst / U
    beyond = _native.elementwise("exp_neg", np.array([708.0001, 745.0, 1e4, 3.4e38, np.inf]))
    assert (beyond == 0).all()


def test_log1p_within_5_ulp() -> None:
    """log1p(e) for e in [0, 1] (both branches around 1/2), tiny and subnormal e."""
    rng = np.random.default_rng(4)
    e = np.concatenate(
        [
            rng.uniform(0, 1, 4000),
            rng.uniform(0.49, 0.51, 500),
            2.0 ** -rng.uniform(0, 1060, 1000),
            [0.5, np.nextafter(0.5, 0), 1.0, 2.0**-1074, 2.0**-1022],
        ]
    )
    got = _native.elementwise("log1p_unit", e)
    with mpmath.workprec(120):
        exact = [mpmath.log1p(mpmath.mpf(float(x))) for x in e]
        worst = max(
            float(abs(mpmath.mpf(float(g)) - x) / (5 * U * x + 2.0**-1072))
            for g, x in zip(got, exact)
        )
    assert worst <= 1.0, worst
    assert _native.elementwise("log1p_unit", np.array([0.0]))[0] == 0.0


def test_each_loss_within_10_ulp() -> None:
    """One element at a time the kernel's sum is that element's loss: within 10 u of
    softplus(z) - z y (mpmath), on the hard inputs and random logits."""
    z, y = _hard_inputs(torch.float32)
    gen = torch.Generator().manual_seed(5)
    z = torch.cat([z, torch.randn(1000, generator=gen) * 8])
    y = torch.cat([y, torch.rand(1000, generator=gen)])
    got = np.array(
        [_native.bce_f32(z[i : i + 1], y[i : i + 1], 1.0, False)[0] for i in range(z.numel())]
    )
    with mpmath.workprec(200):
        exact = [
            (max(mpmath.mpf(a), 0) - a * b) + mpmath.log1p(mpmath.exp(-abs(mpmath.mpf(a))))
            for a, b in zip(z.double().tolist(), y.double().tolist())
        ]
        # z y is exact in float64 for float32 inputs: so is the subtraction above
        worst = max(
            float(abs(mpmath.mpf(float(g)) - x) / (10 * U * x + 2.0**-1000))
            for g, x in zip(got, exact)
        )
    assert worst <= 1.0, worst


def test_loss_sum_within_bound() -> None:
    """The float64 sum of 4,096 elements is within (n + 10) u of the exact sum."""
    z, y = _hard_inputs(torch.float32)
    total, declined, _, grad = _native.bce_f32(z, y, 1.0, False)
    assert declined == 0 and grad is None
    with mpmath.workprec(200):
        exact = mpmath.fsum(
            (max(mpmath.mpf(a), 0) - a * b) + mpmath.log1p(mpmath.exp(-abs(mpmath.mpf(a))))
            for a, b in zip(z.double().tolist(), y.double().tolist())
        )
        error = abs(mpmath.mpf(total) - exact) / exact
    assert error <= (z.numel() + 10) * U


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_correctly_rounded(compiled: None, reduction: str) -> None:
    """Through the public loss: every gradient element of the hard inputs (near-ties
    decided by the tail exp(-|z|) below the float64 bound) is mpmath's value correctly
    rounded, for g = 1 (the forward's) and g = 2.5 (the backward's pass)."""
    z, y = _hard_inputs(torch.float32)
    divisor = z.numel() if reduction == "mean" else 1
    before = dict(_bce_compiled.STATS)
    for g in (1.0, 2.5):
        zg = z.clone().requires_grad_(True)
        loss = stable.binary_cross_entropy_with_logits(zg, y, reduction=reduction)
        (loss * g).backward()
        assert zg.grad is not None
        np.testing.assert_array_equal(zg.grad.double().numpy(), _expected(z, y, g, divisor))
    # g = 1: one pass (its gradient reused); g = 2.5: the forward's and the backward's
    assert _bce_compiled.STATS["native"] == before["native"] + 3
    decided = sum(_bce_compiled.STATS[k] - before[k] for k in ("extended_grads", "exact_grads"))
    assert decided > 0  # the near-ties were found


def test_many_near_ties_are_searched_for(compiled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A part with more near-ties than its index holds: the caller finds the NaNs itself,
    with the same (correctly rounded) result."""
    monkeypatch.setattr(_native, "CAPACITY", 2)
    z, y = _hard_inputs(torch.float32)
    _, _, index, grad = _native.bce_f32(z, y, 1.0 / z.numel(), True)
    assert index is None and grad is not None and int(torch.isnan(grad).sum()) > 2
    zg = z.clone().requires_grad_(True)
    stable.binary_cross_entropy_with_logits(zg, y).backward()
    assert zg.grad is not None
    np.testing.assert_array_equal(zg.grad.double().numpy(), _expected(z, y, 1.0, z.numel()))


def test_reported_indices_are_the_near_ties() -> None:
    z, y = _hard_inputs(torch.float32)
    _, _, index, grad = _native.bce_f32(z, y, 1.0 / z.numel(), True)
    assert index is not None and grad is not None
    assert torch.equal(torch.sort(index).values, torch.isnan(grad).nonzero().reshape(-1))
    assert len(index) > 0


def test_extended_tier_against_mpmath(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the x87 extended tier decides is mpmath's correctly rounded value; the rest
    is left to mpmath; without an extended format everything is."""
    z, y = _hard_inputs(torch.float32)
    zs, ys = z.double().numpy(), y.double().numpy()
    n = len(zs)
    tier = _bce_compiled._extended_decided(2.5, zs, ys, n, "float32")
    if tier is None:
        pytest.skip("NumPy's longdouble is binary64 here")
    values, decided = tier
    expected = _expected(z, y, 2.5, n)
    np.testing.assert_array_equal(values[decided], expected[decided])
    # the 600 constructed ties whose tail exp(-z) is below 2**-60 are left to mpmath
    assert 0.9 < decided.mean() < 1
    assert _bce_compiled._extended_decided(2.5, zs, ys, n, "bfloat16") is None


def test_declined_inputs_take_the_general_path(compiled: None) -> None:
    """A non-finite logit, a target outside [0, 1] or a NaN target: the general kernels,
    whose loss and gradient are the eager path's."""
    cases = [
        (torch.tensor([0.5, math.inf, -2.0]), torch.tensor([0.5, 1.0, 0.0])),
        (torch.tensor([0.5, 1.0, -2.0]), torch.tensor([0.5, 1.5, 0.0])),
        (torch.tensor([0.5, 1.0, -2.0]), torch.tensor([0.5, math.nan, 0.0])),
    ]
    for z, y in cases:
        assert _native.bce_f32(z, y, 1.0, True)[1] == 1
        assert _bce_compiled.forward(z, y, "mean", True) is None


def test_threads_agree_with_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split into parts on two threads, the gradient is the same bits and the sum
    within the bound of the single part's."""
    z = torch.randn(10**5, generator=torch.Generator().manual_seed(6)) * 6
    y = torch.rand(10**5, generator=torch.Generator().manual_seed(7))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    one = _native.bce_f32(z, y, 1e-5, True)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    two = _native.bce_f32(z, y, 1e-5, True)
    assert torch.equal(one[3].nan_to_num(7.0), two[3].nan_to_num(7.0))
    assert abs(one[0] - two[0]) <= 2 * (z.numel() + 10) * U * one[0]
    assert one[2] is not None and two[2] is not None
    assert torch.equal(torch.sort(one[2]).values, torch.sort(two[2]).values)


def _child(queue: multiprocessing.Queue) -> None:
    z = torch.linspace(-9, 9, 5000)
    y = torch.full((5000,), 0.25)
    total, declined, _, grad = _native.bce_f32(z, y, 1.0, True)
    queue.put((total, declined, float(grad.sum())))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_runs_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DataLoader worker is a fork: the parent's pool threads are not there, so the
    child makes its own instead of waiting on them forever."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    z = torch.linspace(-9, 9, 5000)
    y = torch.full((5000,), 0.25)
    total, _, _, grad = _native.bce_f32(z, y, 1.0, True)  # the parent's pool exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        child = ctx.Process(target=_child, args=(queue,))
        child.start()
    assert queue.get(timeout=60) == (total, 0, float(grad.sum()))
    child.join(timeout=60)
    assert child.exitcode == 0


def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_native, "_library", None)
    monkeypatch.setattr(_native, "_tried", False)


def test_compiled_once_into_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The library is built into LOGITLAB_CACHE_DIR under one hashed name, with no partial
    file left, and a second load uses it as it is."""
    monkeypatch.setenv("LOGITLAB_CACHE_DIR", str(tmp_path))
    _fresh(monkeypatch)
    assert _native.library() is not None
    built = list(tmp_path.iterdir())
    assert len(built) == 1 and built[0].suffix == ".so", built
    stamp = built[0].stat().st_mtime_ns
    _fresh(monkeypatch)
    assert _native.library() is not None
    assert list(tmp_path.iterdir()) == built and built[0].stat().st_mtime_ns == stamp


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_cache_others_can_write_to_is_not_trusted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A library in a folder others can write to, or one others can write, could be
    theirs: the folder is left alone (the library goes to a fresh private folder), the
    file is compiled again."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("LOGITLAB_CACHE_DIR", str(shared))
    _fresh(monkeypatch)
    lib = _native.library()
    assert lib is not None and list(shared.iterdir()) == []
    assert Path(lib._name).parent != shared and _native._private(Path(lib._name).parent)

    own = tmp_path / "own"
    monkeypatch.setenv("LOGITLAB_CACHE_DIR", str(own))
    _fresh(monkeypatch)
    assert _native.library() is not None
    (built,) = own.iterdir()
    assert oct(own.stat().st_mode & 0o777) == oct(0o700)
    built.chmod(0o666)
    before = built.stat().st_ino
    _fresh(monkeypatch)
    assert _native.library() is not None
    assert built.stat().st_ino != before and not built.stat().st_mode & 0o022


def test_a_failing_compiler_falls_back_with_one_warning(
    compiled: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No working compiler: one warning naming it, then inductor's kernels (not run
    here: set_torch_compile(False) keeps this test from compiling) give the same
    gradient."""
    broken = tmp_path / "broken-cc"
    broken.write_text("#!/bin/sh\necho 'broken-cc: cannot compile' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("LOGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_native, "_compilers", lambda: [str(broken)])
    _fresh(monkeypatch)
    with pytest.warns(RuntimeWarning, match="broken-cc: cannot compile"):
        assert _native.library() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _native.library() is None  # warned once
    assert not list((tmp_path / "cache").glob("*.part"))
    stable.set_torch_compile(False)
    z, y = _hard_inputs(torch.float32)
    assert not _native.serves(z)
    zg = z.clone().requires_grad_(True)
    stable.binary_cross_entropy_with_logits(zg, y).backward()
    assert zg.grad is not None
    np.testing.assert_array_equal(zg.grad.double().numpy(), _expected(z, y, 1.0, z.numel()))


def test_a_compiler_refusing_march_native_builds_it_portably(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil

    real = shutil.which("cc") or shutil.which("gcc")
    if real is None:
        pytest.skip("no cc here")
    picky = tmp_path / "picky-cc"
    picky.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do\n'
        '  [ "$a" = "-march=native" ] && { echo "unsupported" >&2; exit 1; }\n'
        "done\n"
        f'exec {real} "$@"\n'
    )
    picky.chmod(0o755)
    monkeypatch.setenv("LOGITLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_native, "_compilers", lambda: [str(picky)])
    _fresh(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _native.library() is not None
    z, y = _hard_inputs(torch.float32)
    _, _, _, grad = _native.bce_f32(z, y, 1.0, True)
    assert grad is not None and int(torch.isnan(grad).sum()) > 0  # the near-ties marked


def test_switched_off(compiled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGITLAB_STABLE_NATIVE", "0")
    assert not _native.available()
    z, _ = _hard_inputs(torch.float32)
    assert not _native.serves(z)


# --- softmax cross-entropy: the C passes of _softmax_fast ------------------------------


def test_softmax_rows_against_torch_and_mpmath() -> None:
    """Row maxima and their first columns as torch.max gives them (tied maxima, -inf
    entries, a row of -inf only), NaN rows marked, and r = sum_{c != k} exp(z_c - m)
    within its bound (2.1 + ceil(log2 C) + 3 max(spread, 0.95)) u of mpmath."""
    inf = math.inf
    z = torch.tensor(
        [
            [3.0, 7.0, 7.0, -1.0, 7.0],
            [-inf, 2.0, -inf, 0.5, -3.0],
            [-inf, -inf, -inf, -inf, -inf],
            [0.0, math.nan, 1.0, 2.0, 3.0],
            [1e-30, -100.0, -745.0, 20.0, 5e-9],
        ]
    )
    m, k, nan, r, spread = _native.softmax_rows(z, 746.0)
    assert m[:3].tolist() == [7.0, 2.0, -inf] and m[4] == 20.0
    assert k.tolist()[:3] == [1, 1, 0] and k[4] == 3
    assert nan.tolist() == [False, False, False, True, False]
    assert r[2] == 0.0 and spread[1] == 746.0
    with mpmath.workprec(200):
        for i in (0, 1, 4):
            row = [mpmath.mpf(float(x)) for x in z[i].tolist()]
            exact = mpmath.fsum(
                mpmath.exp(x - row[int(k[i])]) for j, x in enumerate(row) if j != k[i]
            )
            bound = (2.1 + 3 + 3 * max(float(spread[i]), 0.95)) * U * exact
            assert abs(mpmath.mpf(float(r[i])) - exact) <= bound, i


def _softmax_both(z: torch.Tensor, t: torch.Tensor) -> list[np.ndarray]:
    """Loss and gradient with torch's ops and with the C passes."""
    out = []
    for mode in (False, True):
        stable.set_torch_compile(mode)
        zg = z.clone().requires_grad_(True)
        loss = stable.softmax_cross_entropy(zg, t)
        loss.backward()
        assert zg.grad is not None
        out += [loss.detach().double().numpy(), zg.grad.double().numpy()]
    return out


def test_softmax_nan_and_inf_rows_take_the_general_path(compiled: None) -> None:
    from logitlab.stable import _softmax_shared

    inf = math.inf
    t = torch.tensor([0, 1])
    for bad in ([0.0, math.nan, 1.0], [inf, 0.0, 1.0], [inf, -inf, 0.0]):
        z = torch.tensor([[0.5, 1.0, -2.0], bad])
        before = _softmax_shared.STATS["native_forward"]
        eager_loss, eager_grad, loss, grad = _softmax_both(z, t)
        assert _softmax_shared.STATS["native_forward"] == before  # declined
        np.testing.assert_array_equal(loss, eager_loss)
        np.testing.assert_array_equal(grad, eager_grad)


def test_softmax_many_near_ties_run_the_torch_pass(
    compiled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More flagged gradient elements than a part's list holds: the backward's torch
    pass runs instead, with the same correctly rounded gradient."""
    from logitlab.stable import _softmax_shared

    monkeypatch.setattr(_softmax_shared, "SLACK", 2.0**45)  # every element flagged
    z = torch.randn(6, 9, generator=torch.Generator().manual_seed(8)) * 3
    t = torch.tensor([0, 3, 8, 1, 1, 5])
    eager_loss, eager_grad, *_ = _softmax_both(z, t)
    monkeypatch.setattr(_native, "SOFTMAX_CAPACITY", 4)
    before = dict(_softmax_shared.STATS)
    _, _, loss, grad = _softmax_both(z, t)
    assert _softmax_shared.STATS["native_forward"] == before["native_forward"] + 1
    assert _softmax_shared.STATS["native_backward"] == before["native_backward"]
    np.testing.assert_array_equal(loss, eager_loss)
    np.testing.assert_array_equal(grad, eager_grad)
