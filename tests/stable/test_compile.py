"""The torch.compile path gives the same bits as the eager one (slow: it compiles)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from logitlab import stable


@pytest.fixture
def compile_mode() -> Iterator[None]:
    before = stable.get_torch_compile()
    yield
    stable.set_torch_compile(before)


def _run(z: torch.Tensor, y: torch.Tensor, reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
    zg = z.clone().requires_grad_(True)
    loss = stable.binary_cross_entropy_with_logits(zg, y, reduction=reduction)
    loss.backward(torch.ones_like(loss))
    return loss.detach(), zg.grad


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_compiled_equals_eager(compile_mode: None, dtype: torch.dtype) -> None:
    z = torch.cat([torch.linspace(-60, 60, 4001), torch.tensor([math.inf, -math.inf, 800.0])])
    y = torch.rand(z.shape, generator=torch.Generator().manual_seed(0))
    z, y = z.to(dtype), y.to(dtype)
    for reduction in ("none", "mean"):
        stable.set_torch_compile(False)
        eager = _run(z, y, reduction)
        stable.set_torch_compile(True)
        compiled = _run(z, y, reduction)
        for a, b in zip(eager, compiled):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mode_is_checked() -> None:
    from logitlab import InputError

    with pytest.raises(InputError):
        stable.set_torch_compile("sometimes")  # type: ignore[arg-type]


@pytest.mark.slow
def test_inside_a_users_torch_compile_without_tracing_the_checks() -> None:
    # Every public function runs outside dynamo's tracing: a compiled training step that
    # calls stable breaks its graph there, with the eager values and no dynamo warnings
    # about the argument checks' caches (array-API dispatch).
    import warnings

    torch._dynamo.reset()
    z = torch.randn(64, 5) * 30
    y = torch.rand(64, 5)
    t = torch.randint(0, 5, (64,))
    cases = {
        "bce": (lambda a: stable.binary_cross_entropy_with_logits(a, y) * 2, z),
        "softmax_ce": (lambda a: stable.softmax_cross_entropy(a, t) + 1, z),
        "focal": (lambda a: stable.binary_focal_loss_with_logits(a, y).exp(), z),
        "log_sigmoid": (lambda a: stable.log_sigmoid(a) * 3, z),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, (fn, x) in cases.items():
            eager_x = x.clone().requires_grad_(True)
            eager = fn(eager_x)
            eager.backward(torch.ones_like(eager))
            compiled_x = x.clone().requires_grad_(True)
            compiled = torch.compile(fn)(compiled_x)
            compiled.backward(torch.ones_like(compiled))
            assert torch.equal(compiled, eager), name
            assert torch.equal(compiled_x.grad, eager_x.grad), name
    dynamo = [str(w.message) for w in caught if "Dynamo" in str(w.message)]
    assert not dynamo, dynamo
