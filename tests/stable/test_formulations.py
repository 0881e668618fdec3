"""The stable rows in the formulation catalogue and in compare()."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from logitlab import exact
from logitlab.analysis.compare import compare
from logitlab.core.formats import get_format
from logitlab.core.ulp import ulp_error
from logitlab.formulations import get


def test_compare_shows_the_stable_row_within_half_ulp() -> None:
    c = compare(logits=[-30], targets=[1e-10])
    rows = {r.formulation.name: r for r in c.rows}
    assert rows["stable.bce"].status == "ok"
    assert rows["stable.bce"].max_ulp_error <= 0.5
    assert rows["torch.logits"].max_ulp_error > 1e8  # the table: torch gives 0.0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_bce_row_with_weight_pos_weight_and_reductions(dtype: str) -> None:
    for reduction in ("none", "mean", "sum"):
        c = compare(
            logits=[-30.0, 0.5, 12.0],
            targets=[1e-3, 0.5, 1.0],
            weight=[1.0, 2.0, 0.5],
            pos_weight=[3.0],
            reduction=reduction,
            dtype=dtype,
            formulations=["stable.bce"],
        )
        (row,) = c.rows
        assert row.status == "ok", row.reason
        assert row.max_ulp_error <= (4.0 if dtype == "float64" else 0.5 + 1e-6)
        assert np.nanmax(row.grad_ulp_error) <= (4.0 if dtype == "float64" else 0.5 + 1e-6)


@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid", "softplus"])
def test_elementwise_rows(name: str) -> None:
    formulation = get(f"stable.{name}")
    assert formulation.quantity == name and formulation.framework == "stable"
    fmt = get_format("float32")
    z = fmt.round([-100.0, -1.0, 0.0, 20.0])
    outcome = formulation.compute(SimpleNamespace(logits=z, dtype=fmt))
    exact_fn = getattr(exact, name)
    exact_grad = getattr(exact, f"{name}_grad")
    assert outcome.grad is not None
    for v, g, zi in zip(outcome.value, outcome.grad, z):
        assert ulp_error(v, exact_fn(float(zi)), fmt) <= 0.5 + 1e-6
        assert ulp_error(g, exact_grad(float(zi)), fmt) <= 0.5 + 1e-6
