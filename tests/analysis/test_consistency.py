"""compare, the explorer's curves and ``logitlab sigmoid`` agree on the same case: the same
values, gradients and flags, because they share one run and one classifier."""

from __future__ import annotations

import math
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logitlab
from logitlab.analysis.curves import bce_curve
from logitlab.analysis.saturation import sigmoid_report
from logitlab.core.formats import DTYPE_NAMES, get_format

_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


@_SETTINGS
@given(
    dtype=st.sampled_from(DTYPE_NAMES),
    target=st.sampled_from([0.0, 1.0, 0.3, 1e-3, 0.999, 0.5]),
    lo=st.floats(-400, 0),
    # at least two values of every dtype: below 512 the widest spacing (bfloat16's, from
    # 256 on) is 2, so 4 always spans two ([-328, -327] is one bfloat16 value, a 422)
    width=st.floats(4, 500),
    points=st.integers(3, 9),
    pos_weight=st.sampled_from([None, 3.0]),
)
def test_compare_and_curves_agree(
    dtype: str, target: float, lo: float, width: float, points: int, pos_weight: float | None
) -> None:
    curve = bce_curve(
        target,
        dtype=dtype,
        z_min=lo,
        z_max=min(lo + width, 1000.0),
        points=points,
        pos_weight=pos_weight,
    )
    c = logitlab.compare(
        logits=curve.z,
        targets=[curve.target],
        dtype=dtype,
        reduction="none",
        pos_weight=None if pos_weight is None else [pos_weight],
    )
    for row in curve.rows:
        cmp_row = c.row(row.name)
        assert cmp_row.status == row.status
        if row.status != "ok":
            continue
        assert _same(cmp_row.value.ravel(), row.value)
        assert _same(cmp_row.grad.ravel(), row.grad)
        for i, z in enumerate(curve.z):
            on_curve = {
                name for name, spans in row.flags.items() if any(a <= z <= b for a, b in spans)
            }
            assert on_curve == set(cmp_row.element_flags[i]), (row.name, z)


@_SETTINGS
@given(dtype=st.sampled_from(DTYPE_NAMES), z=st.floats(-800, 800, allow_nan=False))
def test_sigmoid_and_compare_see_the_same_probability(dtype: str, z: float) -> None:
    fmt = get_format(dtype)
    zr = float(fmt.round(np.asarray(z)))
    rows = sigmoid_report(z, [dtype], formulations=["torch.sigmoid"])
    (sig,) = [r for r in rows if r.implementation == "torch.sigmoid"]
    c = logitlab.compare(logits=[zr], targets=[0.3], dtype=dtype, reduction="none")
    probs = c.row("torch.probabilities")
    # BCE on probabilities went through torch.sigmoid: saturated exactly where it is 0 or 1
    saturated = sig.value in (0.0, 1.0) and math.isfinite(zr)
    assert ("sigmoid saturated" in probs.element_loss_flags[0]) == saturated
    thresholds = sig.thresholds
    if thresholds.one_from is not None and zr >= thresholds.one_from:
        assert sig.value == 1.0
    if thresholds.zero_up_to is not None and zr <= thresholds.zero_up_to:
        assert sig.value == 0.0


def test_audit_counts_equal_the_batch_comparison_on_the_same_points() -> None:
    # The audit runs every float16 logit at each target; compare (through its batch path,
    # proven equal to compare element by element in test_batch) must count the same flags.
    from collections import Counter

    from logitlab.analysis.batch import compare_batch
    from logitlab.analysis.points import logit_points
    from logitlab.core.inputs import BCECase

    names = ["torch.probabilities", "torch.logits", "torch.naive"]
    targets = [0.0, 0.3]
    result = logitlab.audit(formulations=names, dtypes=["float16"], targets=targets)
    z = logit_points(get_format("float16"), 16, 0)
    totals: dict[str, Counter[str]] = {name: Counter() for name in names}
    for y in targets:
        case = BCECase.from_user(z, [y], reduction="none", dtype="float16", max_elements=z.size)
        for path in compare_batch(case, formulations=names).paths:
            assert path.element_flags is not None
            totals[path.formulation.name].update(path.element_flags.counts())
    for name in names:
        measures = result.row(name, "float16").measures
        assert measures is not None
        assert measures.counts == dict(totals[name]), name
        assert sum(measures.counts.values()) > 0 or name == "torch.logits"
