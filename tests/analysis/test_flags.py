"""Each flag's one definition (logitlab.analysis.flags), on cases worked out by hand."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

import logitlab
from logitlab.analysis.flags import FLAGS, GRAD_FLAGS, LOSS_FLAGS, classify
from logitlab.core.formats import get_format

F32 = get_format("float32")
F16 = get_format("float16")


def test_every_flag_is_defined_once_and_has_a_side() -> None:
    assert set(LOSS_FLAGS) | set(GRAD_FLAGS) == set(FLAGS)
    assert len(set(FLAGS)) == len(FLAGS)


def test_saturation_counts_only_elements_whose_weight_is_not_zero() -> None:
    flags = classify(
        F32,
        value=[0.0, 0.0],
        exact_value=[1e-9, 1e-9],
        probabilities=[1.0, 1.0],
        weight=[0.0, 2.0],
    )
    assert flags.per_element("loss") == ((), ("sigmoid saturated",))


def test_an_exact_zero_or_one_at_an_infinite_logit_is_not_saturation() -> None:
    flags = classify(
        F32,
        value=[0.0, 0.0],
        exact_value=[0.0, 0.0],
        probabilities=[1.0, 1.0],
        logits=[math.inf, 20.0],
    )
    assert flags.per_element("loss") == ((), ("sigmoid saturated",))


def test_clamps_and_clips_count_only_with_weight() -> None:
    flags = classify(
        F32,
        value=[0.0, 100.0, 16.1],
        exact_value=[0.0, 100.0, 16.1],
        clamped=[True, True, False],
        clipped=[False, False, True],
        weight=[0.0, 1.0, 1.0],
    )
    assert flags.per_element("loss") == ((), ("log clamped",), ("probability clipped",))


def test_non_finite_and_nan_depend_on_the_exact_value() -> None:
    flags = classify(
        F32,
        value=[math.inf, math.nan, math.nan, math.inf],
        exact_value=[5.0, 5.0, math.inf, math.inf],
    )
    assert flags.per_element("loss") == (("non-finite",), ("non-finite",), ("NaN",), ())


def test_a_zero_gradient_vanished_unless_the_framework_flushes_subnormals() -> None:
    tiny = 2.0**-140  # a float32 subnormal (the smallest normal is 2**-126)
    kwargs = {"value": [1.0, 1.0], "exact_value": [1.0, 1.0], "grad": [0.0, 0.0]}
    plain = classify(F32, exact_grad=[tiny, 0.5], **kwargs)
    assert plain.per_element("gradient") == (("gradient vanished",), ("gradient vanished",))
    xla = classify(F32, exact_grad=[tiny, 0.5], flushes=True, **kwargs)
    assert xla.per_element("gradient") == (("subnormal flushed",), ("gradient vanished",))
    # a zero where the exact gradient is zero is right
    assert classify(F32, exact_grad=[0.0, -0.0], **kwargs).grad_flags == ()


def test_loss_flags_of_a_reduced_loss_come_from_each_element() -> None:
    # z = 20 saturates float32 sigmoid (1 - sigma(20) = 2.1e-9 < 2**-25); z = -5 does not.
    c = logitlab.compare(logits=[20, -5], targets=[0.5, 0.5])
    naive = c.row("torch.naive")
    assert naive.element_loss_flags == (("sigmoid saturated", "non-finite"), ())
    assert naive.element_grad_flags[1] == ()
    assert math.isfinite(naive.grad.ravel()[1])


def test_float16_zero_loss_is_saturation_and_the_nan_is_the_gradient() -> None:
    # float16: 1 - sigma(11) = 1.67e-5 is below half an ULP under 1 (2**-12), so p = 1 and
    # -log(p) = 0; the backward divides 0 by max(p(1 - p), 1e-12), and 1e-12 is 0 in float16.
    row = logitlab.compare(logits=[11], targets=[1], dtype="float16").row("torch.probabilities")
    assert row.value.item() == 0.0
    assert row.loss_flags == ("sigmoid saturated",)
    assert math.isnan(row.grad.item())
    assert "non-finite" in row.grad_flags


def test_a_clamp_on_a_weight_zero_element_is_not_flagged() -> None:
    c = logitlab.compare(logits=[100, 100], targets=[0, 0], weight=[0, 1], reduction="sum")
    row = c.row("torch.probabilities")
    assert row.element_loss_flags == ((), ("sigmoid saturated", "log clamped"))
    assert row.value.item() == 100.0  # only element 2's clamped -log(0) = 100 counts


def test_infinite_logits_say_which_exact_value() -> None:
    # exact BCE at z = +inf, y = 1 is 0 (finite); at z = -inf, y = 0.3 it is 0.3 * inf = inf.
    c = logitlab.compare(logits=[math.inf, -math.inf], targets=[1.0, 0.3], reduction="none")
    row = c.row("torch.logits")
    assert np.isnan(row.value).all()
    assert row.element_loss_flags == (("non-finite",), ("NaN",))


def test_gradient_clamp_of_torch_backward() -> None:
    # p(1 - p) = sigma(-30) ~ 9.4e-14 < 1e-12, while sigma(-30) is far from 0 in float32.
    row = logitlab.compare(logits=[-30.0], targets=[0.0], reduction="none").row(
        "torch.probabilities"
    )
    assert row.grad_flags == ("gradient clamped",)
    assert row.loss_flags == ()


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")
def test_keras_clip_is_flagged() -> None:
    c = logitlab.compare(logits=[20.0], targets=[0.3], formulations=["keras.probabilities"])
    assert "probability clipped" in c.row("keras.probabilities").loss_flags


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_xla_flushes_subnormal_results() -> None:
    # The premise of flushes_subnormals=True on the JAX rows: float32 exp(-100) is 3.7e-44,
    # a subnormal, and XLA on CPU returns 0 for it; NumPy does not.
    from logitlab.formulations import all_formulations
    from logitlab.formulations._jax import x64

    with x64() as jax:
        import jax.numpy as jnp

        assert float(jax.jit(jnp.exp)(jnp.float32(-100.0))) == 0.0
    assert float(np.exp(np.float32(-100.0))) > 0
    assert all(f.flushes_subnormals for f in all_formulations() if f.framework == "jax")
    assert not any(f.flushes_subnormals for f in all_formulations() if f.framework != "jax")
