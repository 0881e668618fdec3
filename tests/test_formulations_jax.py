"""The JAX rows keep each traced program (``formulations._jax._program``): it must give what
eager JAX gives, tracing every call, bit for bit, for every JAX formulation, dtype,
reduction and option, and it must be traced again whenever the trace would differ."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")

from logitlab.core.focal_inputs import focal_case
from logitlab.core.inputs import BCECase, SoftmaxCase
from logitlab.formulations import _jax as jax_module
from logitlab.formulations import all_formulations, get
from logitlab.formulations._base import values_only
from logitlab.formulations.run import run

INF = math.inf
# The hard inputs: saturation on both sides, overflow of exp, the subnormals, signed zeros,
# infinities, and exp's overflow in float32 at 88.8.
LOGITS = [-INF, -1e4, -90.0, -17.5, -1e-40, -0.0, 0.0, 2.5, 16.7, 40.0, 1e4, INF, 88.8]
TARGETS = [0.0, 1.0, 0.0, 0.3, 0.5, 1.0, 0.0, 0.7, 1.0, 0.0, 0.25, 1.0, 0.5]
WEIGHT = [1.0, 2.0, 0.5, 1.0, 3.0, 0.25, 1.0, 1.5, 1.0, 2.0, 0.5, 1.0, 1.0]
DTYPES = ("float16", "bfloat16", "float32", "float64")
REDUCTIONS = ("none", "mean", "sum")


def jax_formulations(quantity: str) -> list[Any]:
    return [f for f in all_formulations(quantity) if f.framework == "jax"]


def cases(dtype: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for reduction in REDUCTIONS:
        for weight, pos_weight in ((None, None), (WEIGHT, None), (WEIGHT, [0.5])):
            case = BCECase.from_user(
                LOGITS,
                TARGETS,
                weight=weight,
                pos_weight=pos_weight,
                reduction=reduction,
                dtype=dtype,
            )
            out.append(("bce", case))
        # each of alpha and gamma changes alone between two of these
        for alpha, gamma in ((0.25, 2.0), (0.25, 0.5), (0.75, 2.0), (None, 0.0)):
            case = focal_case(
                LOGITS, TARGETS, alpha=alpha, gamma=gamma, reduction=reduction, dtype=dtype
            )
            out.append(("focal", case))
        rows = [[3.0, -2.0, 0.5], [0.0, 40.0, -1.0], [-INF, 1e4, 2.0], [-90.0, -90.0, -90.0]]
        out.append(
            (
                "softmax_ce",
                SoftmaxCase.from_user(rows, [0, 2, 1, 1], reduction=reduction, dtype=dtype),
            )
        )
        dense = [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]
        for smoothing in (0.0, 0.1):
            case = SoftmaxCase.from_user(
                rows, dense, label_smoothing=smoothing, reduction=reduction, dtype=dtype
            )
            out.append(("softmax_ce", case))
    for quantity in ("sigmoid", "log_sigmoid", "softplus"):
        out.append((quantity, BCECase.from_user(LOGITS, [0.5], dtype=dtype, reduction="none")))
    return out


def outcomes(f: Any, case: Any) -> list[Any]:
    """What ``run`` gives, with its gradient, and values only (compare's second run)."""
    full = run(f, case)
    with values_only():
        light = run(f, case)
    return [full, light]


def assert_same(a: Any, b: Any, what: str) -> None:
    assert a.status == b.status, (what, a.reason, b.reason)
    if a.status != "ok":
        assert a.reason == b.reason, what
        return
    for field in ("value", "grad", "probabilities"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), (what, field)
        if x is not None:
            # bit for bit: the same float64 bits (NaN included, signed zeros told apart)
            assert np.array_equal(np.asarray(x).view(np.int64), np.asarray(y).view(np.int64)), (
                what,
                field,
                x,
                y,
            )


# float16 and float64 take as long again as the other two: --run-slow adds them.
@pytest.mark.parametrize(
    "dtype",
    [
        d if d in ("float32", "bfloat16") else pytest.param(d, marks=pytest.mark.slow)
        for d in DTYPES
    ],
)
def test_kept_programs_give_what_eager_jax_gives(
    dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same process traces every case of the dtype in turn (same shapes, other options),
    # so a key that left out something the trace bakes in (a reduction, alpha, gamma) would
    # answer a case with another case's program, and differ from the eager run here.
    checked = 0
    all_cases = cases(dtype)
    kept: dict[int, list[Any]] = {}
    for quantity, case in all_cases:
        for f in jax_formulations(quantity):
            kept[len(kept)] = outcomes(f, case)
    monkeypatch.setattr(jax_module, "KEEP_PROGRAMS", False)
    n = 0
    for quantity, case in all_cases:
        for f in jax_formulations(quantity):
            eager = outcomes(f, case)
            for mine, theirs, how in zip(kept[n], eager, ("full", "values only")):
                assert_same(mine, theirs, f"{f.name} {case.dtype.name} {how} {case!r:.120}")
                checked += mine.status == "ok"
            n += 1
    assert checked > 100


def test_a_program_is_traced_once_per_shape_and_options() -> None:
    jax_module._PROGRAMS.clear()
    f = get("optax.logits")
    case = BCECase.from_user([0.0, 3.0], [0.0, 1.0], dtype="float32")
    first = run(f, case)
    assert len(jax_module._PROGRAMS) == 1
    # other values, the same shapes: the kept program
    again = run(f, BCECase.from_user([0.0, -3.0], [0.0, 0.0], dtype="float32"))
    assert len(jax_module._PROGRAMS) == 1
    # another shape, dtype or reduction: a program each
    run(f, BCECase.from_user([0.0, 3.0, 1.0], [0.0, 1.0, 1.0], dtype="float32"))
    run(f, BCECase.from_user([0.0, 3.0], [0.0, 1.0], dtype="float64"))
    run(f, BCECase.from_user([0.0, 3.0], [0.0, 1.0], dtype="float32", reduction="sum"))
    assert len(jax_module._PROGRAMS) == 4
    # by hand: z = 0, y = 0 gives ln 2; z = 3, y = 1 gives ln(1 + e^-3); the mean of the two,
    # and d mean / dz = (sigmoid(z) - y) / 2: 1/4 and (sigmoid(3) - 1) / 2
    loss = (math.log(2) + math.log1p(math.exp(-3))) / 2
    assert float(first.value) == pytest.approx(loss, rel=2**-22)
    sig3 = 1 / (1 + math.exp(-3))
    assert first.grad == pytest.approx([0.25, (sig3 - 1) / 2], rel=2**-22)
    # y = 0 at z = -3: softplus(-3) = ln(1 + e^-3), the same mean
    assert float(again.value) == pytest.approx(loss, rel=2**-22)
    assert again.grad == pytest.approx([0.25, (1 - sig3) / 2], rel=2**-22)


def test_kept_programs_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jax_module, "PROGRAMS_KEPT", 3)
    jax_module._PROGRAMS.clear()
    f = get("jax.naive")
    for n in range(1, 7):
        out = run(f, BCECase.from_user([0.0] * n, [0.5] * n, dtype="float32", reduction="sum"))
        # by hand: each element's loss is ln 2 (sigmoid(0) = 1/2, y = 1/2)
        assert float(out.value) == pytest.approx(n * math.log(2), rel=2**-21)
        assert len(jax_module._PROGRAMS) == min(n, 3)
