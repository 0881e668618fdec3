"""Each torch formulation against an independent evaluation of the same PyTorch call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from logitlab.core.formats import DTYPE_NAMES, get_format
from logitlab.core.inputs import BCECase
from logitlab.formulations import NotApplicable, all_formulations, get

LOGITS = [-30.0, -2.0, 0.0, 0.5, 3.0, 20.0]
TARGETS = [1e-3, 0.3, 0.5, 1.0, 0.0, 0.7]
WEIGHT = [1.0, 2.0, 0.5, 1.0, 3.0, 0.25]
POS_WEIGHT = [2.0]


def tensors(case: BCECase) -> tuple[torch.Tensor, ...]:
    dt = getattr(torch, case.dtype.name)
    # Built from Python lists in float64, then cast: a different route from the module's.
    z = torch.tensor(case.logits.tolist(), dtype=torch.float64).to(dt).requires_grad_()
    y = torch.tensor(case.targets.tolist(), dtype=torch.float64).to(dt)
    return z, y


def same(a: np.ndarray, b: torch.Tensor) -> bool:
    return np.array_equal(
        np.asarray(a, dtype=np.float64), b.detach().double().numpy(), equal_nan=True
    )


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_probabilities_path_is_bce_loss_module(dtype: str, reduction: str, weighted: bool) -> None:
    case = BCECase.from_user(
        LOGITS, TARGETS, weight=WEIGHT if weighted else None, reduction=reduction, dtype=dtype
    )
    out = get("torch.probabilities").compute(case)
    z, y = tensors(case)
    w = torch.tensor(case.weight.tolist(), dtype=z.dtype) if weighted else None
    loss = nn.BCELoss(weight=w, reduction=reduction)(nn.Sigmoid()(z), y)
    (grad,) = torch.autograd.grad(loss, z, torch.ones_like(loss))
    assert same(out.value, loss)
    assert same(out.grad, grad)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_logits_path_is_bce_with_logits_module(dtype: str, reduction: str, weighted: bool) -> None:
    case = BCECase.from_user(
        LOGITS,
        TARGETS,
        weight=WEIGHT if weighted else None,
        pos_weight=POS_WEIGHT if weighted else None,
        reduction=reduction,
        dtype=dtype,
    )
    out = get("torch.logits").compute(case)
    z, y = tensors(case)
    w = torch.tensor(case.weight.tolist(), dtype=z.dtype) if weighted else None
    pw = torch.tensor(case.pos_weight.tolist(), dtype=z.dtype) if weighted else None
    loss = nn.BCEWithLogitsLoss(weight=w, pos_weight=pw, reduction=reduction)(z, y)
    (grad,) = torch.autograd.grad(loss, z, torch.ones_like(loss))
    assert same(out.value, loss)
    assert same(out.grad, grad)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_naive_path_is_the_hand_written_formula(dtype: str, reduction: str) -> None:
    case = BCECase.from_user(
        LOGITS, TARGETS, weight=WEIGHT, pos_weight=POS_WEIGHT, reduction=reduction, dtype=dtype
    )
    out = get("torch.naive").compute(case)
    z, y = tensors(case)
    w = torch.tensor(case.weight.tolist(), dtype=z.dtype)
    pw = torch.tensor(case.pos_weight.tolist(), dtype=z.dtype)
    p = torch.sigmoid(z)
    per = w * -(pw * (y * torch.log(p)) + (1 - y) * torch.log(1 - p))
    loss = {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]
    (grad,) = torch.autograd.grad(loss, z, torch.ones_like(loss))
    assert same(out.value, loss)
    assert same(out.grad, grad)


def test_probabilities_path_has_no_pos_weight() -> None:
    case = BCECase.from_user([1.0], [1.0], pos_weight=[2.0])
    with pytest.raises(NotApplicable, match="pos_weight"):
        get("torch.probabilities").compute(case)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_elementwise_formulations(dtype: str) -> None:
    z_values = [-800.0, -90.0, -17.5, -1.0, 0.0, 2.0, 16.7, 40.0, 800.0]
    case = BCECase.from_user(z_values, [0.5], dtype=dtype)
    z, _ = tensors(case)
    expected = {
        "torch.sigmoid": torch.sigmoid(z),
        "torch.naive_sigmoid": 1 / (1 + torch.exp(-z)),
        "torch.logsigmoid": F.logsigmoid(z),
        "torch.log_of_sigmoid": torch.log(torch.sigmoid(z)),
        "torch.softplus": F.softplus(z),
        "torch.naive_softplus": torch.log(1 + torch.exp(z)),
    }
    for name, value in expected.items():
        out = get(name).compute(case)
        (grad,) = torch.autograd.grad(value, z, torch.ones_like(value), retain_graph=True)
        assert same(out.value, value), name
        assert same(out.grad, grad), name


def test_catalogue_entries_are_well_formed() -> None:
    every = all_formulations()
    assert len({f.name for f in every}) == len(every)
    for f in every:
        assert "." in f.name and f.framework, f.name
        assert f.code and f.summary
    assert get_format("bfloat16").torch_dtype() is torch.bfloat16


def test_values_reach_torch_exactly() -> None:
    # 0.1 is not a float32: the case holds float32(0.1) and torch gets that value.
    case = BCECase.from_user([0.1], [0.0], dtype="float32", reduction="none")
    out = get("torch.sigmoid").compute(case)
    assert out.value[0] == torch.sigmoid(torch.tensor([0.1], dtype=torch.float32)).item()
    assert case.logits[0] == float(np.float32(0.1))


@pytest.mark.parametrize("name", ["bce", "softmax_ce", "focal"])
def test_values_only_runs_give_the_same_values_and_no_gradient(name: str) -> None:
    # compare's second, unreduced run reads only the values: inside values_only() each
    # framework skips its autodiff, and the values are those of the full run, bit for bit.
    from logitlab.core.focal_inputs import focal_case
    from logitlab.core.inputs import SoftmaxCase
    from logitlab.formulations._base import values_only
    from logitlab.formulations.run import run

    case: object
    if name == "bce":
        case = BCECase.from_user(LOGITS, TARGETS, reduction="none", dtype="bfloat16")
    elif name == "softmax_ce":
        case = SoftmaxCase.from_user([[3.0, -2.0, 0.5], [0.0, 40.0, -1.0]], [0, 2])
    else:
        case = focal_case(LOGITS, TARGETS, reduction="none", dtype="float16")
    checked = 0
    for f in all_formulations(name):
        full = run(f, case)
        with values_only():
            light = run(f, case)
        assert light.status == full.status, f.name
        if full.status != "ok":
            continue
        assert light.grad is None, f.name
        np.testing.assert_array_equal(light.value, full.value, err_msg=f.name)
        checked += full.grad is not None  # one whose autodiff was skipped
    assert checked >= 3
