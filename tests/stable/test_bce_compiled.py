"""The compiled BCE fast path (``_bce_compiled``) against mpmath, at 0.5 ULP.

Its kernel is a plain function of torch ops: with ``set_torch_compile(False)`` it runs
eagerly, which tests its formulas, bounds and exact fix-ups without compiling; one small
test compiles it (the path a user gets), the slow ones compile every dtype.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import mpmath
import numpy as np
import pytest
import torch

from logitlab import stable
from logitlab.core.ulp import round_to_format
from logitlab.stable import _bce_compiled, _compile

U = 2.0**-53


@pytest.fixture
def compile_mode() -> Iterator[None]:
    before = stable.get_torch_compile()
    yield
    stable.set_torch_compile(before)


def _exact_grad(ctx: Any, z: float, y: float, scale: Any) -> Any:
    """``scale * ((1 - y) sigma(z) - y sigma(-z))`` in ``ctx`` (320 bits), written out
    here (the tails exp(-|z|) that decide the near-ties below are above 2**-180)."""
    zz, yy = ctx.mpf(z), ctx.mpf(y)
    sig = 1 / (1 + ctx.exp(-zz))
    sig_minus = 1 / (1 + ctx.exp(zz))
    return scale * ((1 - yy) * sig - yy * sig_minus)


def _expected(z: torch.Tensor, y: torch.Tensor, g: float, divisor: int) -> np.ndarray:
    from logitlab.core.mp import mp_context

    name = str(z.dtype).removeprefix("torch.")
    zs, ys = z.double().reshape(-1).tolist(), y.double().reshape(-1).tolist()
    # round_to_format works in this thread's context: raised to 320 bits for it too
    ctx = mp_context()
    saved, ctx.prec = ctx.prec, 320
    try:
        scale = ctx.mpf(g) / divisor
        return np.array(
            [round_to_format(_exact_grad(ctx, a, b, scale), name) for a, b in zip(zs, ys)]
        )
    finally:
        ctx.prec = saved


def _hard_inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits over [-120, 120] and large, targets at 0, 1, soft, and near-ties: ``1 - y``
    needing one bit more than the format has (a midpoint) with ``sigma(-z)`` below the
    float64 bound, decided by the tail alone; 4,096 elements (the mean divides exactly)."""
    gen = torch.Generator().manual_seed(7)
    z = torch.linspace(-120, 120, 2400)
    y = torch.rand(2400, generator=gen)
    y[::5], y[1::7] = 0.0, 1.0
    zf = z.to(dtype)
    # Targets in [1/4, 1/2) with the last bit set: 1 - y is a midpoint of the format.
    eps = torch.finfo(dtype).eps
    half = torch.full((600,), 0.25) + eps / 4 * (2 * torch.arange(600) % 64 + 1)
    ties_z = torch.linspace(30.0, 60.0, 600).to(dtype)  # e**-30 above the bound, e**-40 below
    big = torch.tensor([700.0, -700.0, 1e4, -1e4, 3e4, -3e4, 88.0, -88.0, -103.0, 0.0, -0.0])
    big_y = torch.tensor([0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.75])
    # Sigma(z) itself tiny, float32-subnormal for reduction sum: z in [-103, -87], y = 0.
    sub_z = torch.linspace(-103.0, -87.0, 1085)
    zz = torch.cat([zf.float(), ties_z.float(), big, sub_z]).to(dtype)
    yy = torch.cat([y, half, big_y, torch.zeros(1085)]).to(dtype)
    assert zz.numel() == 4096
    return zz, yy


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_fast_path_gradient_correctly_rounded(
    compile_mode: None, dtype: torch.dtype, reduction: str
) -> None:
    """Forward's gradient (g = 1) and the backward's (g = 2.5), eager kernel: every element
    is mpmath's value correctly rounded (0.5 ULP), near-ties recomputed exactly."""
    stable.set_torch_compile(False)  # the same kernel, uncompiled
    z, y = _hard_inputs(dtype)
    divisor = z.numel() if reduction == "mean" else 1
    before = _bce_compiled.STATS["exact_grads"]
    result = _bce_compiled.forward(z, y, reduction, True)
    assert result is not None
    grad = result[1].double().numpy()
    np.testing.assert_array_equal(grad, _expected(z, y, 1.0, divisor))
    assert _bce_compiled.STATS["exact_grads"] > before  # the near-ties were found
    g = torch.tensor(2.5, dtype=dtype)
    again = _bce_compiled.backward(z, y, g, divisor).double().numpy()
    np.testing.assert_array_equal(again, _expected(z, y, 2.5, divisor))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_path_loss_sum(compile_mode: None, dtype: torch.dtype) -> None:
    """The float64 sum is within (n + 8) u of the exact sum (mpmath)."""
    stable.set_torch_compile(False)
    z, y = _hard_inputs(dtype)
    result = _bce_compiled.forward(z, y, "sum", False)
    assert result is not None and result[1] is None
    with mpmath.workprec(200):
        exact = mpmath.fsum(
            mpmath.log1p(mpmath.exp(-abs(mpmath.mpf(a))))
            + max(mpmath.mpf(a), 0)
            - mpmath.mpf(a) * mpmath.mpf(b)
            for a, b in zip(z.double().tolist(), y.double().tolist())
        )
        error = abs(mpmath.mpf(float(result[0])) - exact) / exact
    assert error <= (z.numel() + 8) * U


def test_log1p_unit_within_5_ulp() -> None:
    """``log1p_unit`` against mpmath's log1p over [0, 1]: at most 5 u relative (plus
    ``2**-1072`` absolute, which only subnormal ``e`` need)."""
    rng = np.random.default_rng(3)
    e = np.concatenate(
        [
            rng.random(20000),
            np.nextafter(0.5, [0.0, 1.0]),
            [0.0, 1.0, 5e-324, 1e-310, 2.0**-1022, 1e-20, 0.2, 0.25, 0.75],
            np.exp(-rng.uniform(0, 745, 5000)),
            1.0 - rng.random(2000) * 2.0**-20,
            0.5 + (rng.random(2000) - 0.5) * 2.0**-20,
        ]
    )
    got = _bce_compiled.log1p_unit(torch, torch.from_numpy(e)).numpy()
    with mpmath.workprec(120):
        exact = [mpmath.log1p(mpmath.mpf(float(v))) for v in e]
        # the error in units of the claim: 5 u relative plus 2**-1072 absolute
        worst = max(
            float(abs(mpmath.mpf(float(g)) - x) / (_bce_compiled.LOG1P_ULPS * U * x + 2.0**-1072))
            for g, x in zip(got, exact)
        )
        relative = max(
            float(abs(mpmath.mpf(float(g)) - x) / x) for g, x in zip(got, exact) if x > 2.0**-1000
        )
    assert worst <= 1.0, worst
    assert relative <= _bce_compiled.LOG1P_ULPS * U, relative / U


def test_declined_inputs_take_the_general_path(compile_mode: None) -> None:
    stable.set_torch_compile(False)
    z = torch.tensor([0.5, math.inf, -2.0])
    y = torch.tensor([0.5, 1.0, 0.0])
    assert _bce_compiled.forward(z, y, "mean", True) is None
    assert (
        _bce_compiled.forward(z.nan_to_num(0.0), torch.tensor([0.5, 1.5, 0.0]), "sum", True) is None
    )
    nan_target = torch.tensor([0.5, math.nan, 0.0])
    assert _bce_compiled.forward(z.nan_to_num(0.0), nan_target, "mean", False) is None
    assert not _bce_compiled.eligible(z, y, torch.ones(3), None, "mean")
    assert not _bce_compiled.eligible(z, y, None, None, "none")
    assert not _bce_compiled.eligible(z, y.double(), None, None, "mean")


def _forward_backward(
    fn: Any, z: torch.Tensor, y: torch.Tensor, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    zg = z.clone().requires_grad_(True)
    loss = fn(zg, y)
    (loss * scale).backward()
    assert zg.grad is not None
    return loss.detach(), zg.grad


@pytest.mark.parametrize("native", [True, False], ids=["C kernel", "inductor"])
def test_compiled_path_is_taken_and_agrees(
    compile_mode: None, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """One small compile: set_torch_compile(True) runs the compiled fused kernel (float32
    on the CPU: the C kernel, or inductor's with LOGITLAB_STABLE_NATIVE=0); loss and
    gradients equal the eager path's, for g = 1 (the forward's gradient reused) and for
    g = 3 (the backward's kernel)."""
    if not native:
        monkeypatch.setenv("LOGITLAB_STABLE_NATIVE", "0")
    z = torch.linspace(-40, 40, 333)
    y = torch.rand(333, generator=torch.Generator().manual_seed(1))
    y[::4] = 1.0
    loss_fn = stable.binary_cross_entropy_with_logits
    stable.set_torch_compile(False)
    eager = _forward_backward(loss_fn, z, y)
    eager_scaled = _forward_backward(loss_fn, z, y, 3.0)
    stable.set_torch_compile(True)
    before = dict(_bce_compiled.STATS)
    compiled = _forward_backward(loss_fn, z, y)
    assert _bce_compiled.STATS["forward"] == before["forward"] + 1
    assert _bce_compiled.STATS["reused"] == before["reused"] + 1
    if native:
        assert _bce_compiled.STATS["native"] == before["native"] + 1
    else:
        assert _bce_compiled.STATS["native"] == before["native"]
        assert _compile._compiled.get(_bce_compiled.fused_kernel) is not None
    scaled = _forward_backward(loss_fn, z, y, 3.0)
    assert _bce_compiled.STATS["backward"] == before["backward"] + 1
    for a, b in [*zip(eager, compiled), *zip(eager_scaled, scaled)]:
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.slow
def test_inside_a_users_compile(compile_mode: None) -> None:
    """A user's torch.compile around the loss breaks the graph at it and reaches the
    compiled fast path, with the eager path's gradient."""
    z = torch.linspace(-40, 40, 333)
    y = torch.rand(333, generator=torch.Generator().manual_seed(1))
    loss_fn = stable.binary_cross_entropy_with_logits
    stable.set_torch_compile(False)
    eager_scaled = _forward_backward(loss_fn, z, y, 3.0)
    stable.set_torch_compile(True)
    before = dict(_bce_compiled.STATS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dynamo's notes on the input checks it traces
        inside = torch.compile(lambda a, b: loss_fn(a, b) * 3.0)
        user = _forward_backward(inside, z, y)
    assert _bce_compiled.STATS["forward"] == before["forward"] + 1
    assert _bce_compiled.STATS["backward"] == before["backward"] + 1
    torch.testing.assert_close(user[1], eager_scaled[1], rtol=0, atol=0)


def test_compile_failure_falls_back_to_eager(
    compile_mode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fn: object, **kwargs: object) -> object:
        def run(*args: object) -> object:
            raise RuntimeError("no C compiler")

        return run

    monkeypatch.setenv("LOGITLAB_STABLE_NATIVE", "0")  # float32: inductor's kernels
    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(_compile, "_compiled", {})
    monkeypatch.setattr(_compile, "_failed", False)
    z, y = _hard_inputs(torch.float32)
    stable.set_torch_compile(True)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        _, grad = _forward_backward(stable.binary_cross_entropy_with_logits, z, y)
    assert _compile._failed
    np.testing.assert_array_equal(grad.double().numpy(), _expected(z, y, 1.0, z.numel()))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dtype", "native"),
    [
        (torch.float32, True),
        (torch.float32, False),
        (torch.bfloat16, False),
        (torch.float16, False),
    ],
    ids=["float32-C", "float32-inductor", "bfloat16", "float16"],
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_compiled_gradient_correctly_rounded(
    compile_mode: None,
    monkeypatch: pytest.MonkeyPatch,
    dtype: torch.dtype,
    native: bool,
    reduction: str,
) -> None:
    """The compiled kernel on the hard inputs: every gradient element correctly rounded,
    for g = 1 (reused from the forward) and g = 2.5 (the backward's kernel)."""
    if not native:
        monkeypatch.setenv("LOGITLAB_STABLE_NATIVE", "0")
    stable.set_torch_compile(True)
    z, y = _hard_inputs(dtype)
    divisor = z.numel() if reduction == "mean" else 1

    def loss_fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return stable.binary_cross_entropy_with_logits(a, b, reduction=reduction)

    before = _bce_compiled.STATS["forward"]
    _, grad = _forward_backward(loss_fn, z, y)
    assert _bce_compiled.STATS["forward"] == before + 1
    np.testing.assert_array_equal(grad.double().numpy(), _expected(z, y, 1.0, divisor))
    _, grad = _forward_backward(loss_fn, z, y, 2.5)
    np.testing.assert_array_equal(grad.double().numpy(), _expected(z, y, 2.5, divisor))


_FIRST_SMALL = """
import torch
from logitlab import stable
stable.set_torch_compile(True)
z = torch.linspace(-40, 40, 333).requires_grad_(True)
y = torch.rand(333)
stable.binary_cross_entropy_with_logits(z, y).backward()
"""


@pytest.mark.slow
def test_kernels_first_compiled_small_still_run_in_parallel(tmp_path: Any) -> None:
    """The kernels are compiled for any size (dynamic shapes) and inductor keeps them on
    disk: compiled first for 333 elements (a test, a notebook), they used to come out as
    one serial loop (inductor sizes its threads from the first size seen), and every
    later 10**7-element call ran on one core, half as fast on two.  Compiled first for a
    small size in a fresh cache, every kernel of the fast path must hold a parallel loop."""
    import os
    import subprocess
    import sys

    # float32 on the CPU runs the C kernel unless told otherwise: inductor's are tested
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path), LOGITLAB_STABLE_NATIVE="0")
    subprocess.run([sys.executable, "-c", _FIRST_SMALL], env=env, check=True, timeout=600)
    # one generated module per compiled graph (loss, gradient), its C++ source inside
    fused = [p.read_text() for p in tmp_path.rglob("*.py") if "cpp_fused" in p.read_text()]
    assert len(fused) >= 2, [p.name for p in tmp_path.rglob("*.py")]
    for source in fused:
        assert "#pragma omp parallel" in source
