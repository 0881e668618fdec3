"""The focal audit's run_dtype on its own: rows, measures and breakpoints, with onsets
checked by hand (float16, from where sigmoid rounds to 0 or 1) and by brute force on real
torch (float32)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import pytest

from logitlab import exact
from logitlab.analysis import audit_focal
from logitlab.core.formats import get_format
from logitlab.core.inputs import FocalCase
from logitlab.formulations import get
from logitlab.formulations.run import run


@dataclass(frozen=True)
class _Settings:
    """What run_dtype reads (the audit's Settings has these fields)."""

    formulations: tuple[str, ...]
    points: int = 200
    seed: int = 0
    targets: tuple[float, ...] = (0.0, 1.0)
    breakpoints: str = "hard"
    quantity: str = "focal"


def _run(settings: Any, dtype: str) -> tuple[dict[str, Any], dict[str, Any]]:
    out: list[tuple[str, Any]] = []
    audit_focal.run_dtype(settings, dtype, lambda kind, payload: out.append((kind, payload)))
    refs = {p["dtype"]: p for k, p in out if k == "reference"}
    rows = {p.name: p for k, p in out if k == "row"}
    return refs, rows


def _onset(row: Any, target: float, side: str, criterion: str) -> float | None:
    for o in row.onsets:
        if (o.target, o.side, o.criterion) == (target, side, criterion):
            return o.z  # type: ignore[no-any-return]
    raise KeyError((target, side, criterion))


def _first_float16_from(bound: Any, *, below: bool) -> float:
    """The float16 value nearest 0 past ``bound`` (an mpmath number), in its direction."""
    values = get_format("float16").values()
    values = values[np.isfinite(values)]
    with mpmath.workprec(200):
        if below:
            return float(max(v for v in values if mpmath.mpf(float(v)) < bound))
        return float(min(v for v in values if mpmath.mpf(float(v)) > bound))


@pytest.fixture(scope="module")
def float16_run() -> tuple[dict[str, Any], dict[str, Any]]:
    s = _Settings(("torch.naive_focal", "torch.torchvision_formula", "kornia.binary_focal"))
    return _run(s, "float16")


def test_reference_and_rows(float16_run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    refs, rows = float16_run
    fmt = get_format("float16")
    n_finite = int(np.isfinite(fmt.values()).sum())
    ref = refs["float16"]
    # every finite float16 but 0, then +0, -0, +inf and -inf, for two targets
    assert ref["points"] == 2 * (n_finite - 1 + 4)
    assert "alpha=0.25, gamma=2.0" in " ".join(ref["notes"])
    assert set(rows) == {"torch.naive_focal", "torch.torchvision_formula", "kornia.binary_focal"}
    for row in rows.values():
        assert row.status == "ok" and row.measures is not None
        assert row.measures.points == ref["points"]
        # one onset per target x side x criterion
        assert len(row.onsets) == 2 * 2 * 5
    naive = rows["torch.naive_focal"].measures
    assert naive.counts["non-finite"] > 0 and naive.value.inf + naive.value.nan > 0
    # kornia works in log space: no saturated sigmoid, no non-finite loss at finite z
    kornia = rows["kornia.binary_focal"]
    assert kornia.measures.counts["sigmoid saturated"] == 0
    assert _onset(kornia, 1.0, "against", "loss non-finite") is None


def test_float16_onsets_by_hand(float16_run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, rows = float16_run
    naive = rows["torch.naive_focal"]
    # y = 1, z < 0: log(p) = -inf once sigmoid(z) rounds to 0 in float16, i.e. once
    # sigmoid(z) <= 2**-25 (half the smallest subnormal; the tie goes to even, 0):
    # z <= log(2**-25 / (1 - 2**-25)).
    with mpmath.workprec(200):
        zero_from = mpmath.log(mpmath.mpf(2) ** -25 / (1 - mpmath.mpf(2) ** -25))
        # y = 0, z > 0: log(1 - p) = -inf once sigmoid(z) rounds to 1, i.e. once
        # 1 - sigmoid(z) <= 2**-12 (half the spacing below 1): z >= log(2**12 - 1).
        one_from = mpmath.log(mpmath.mpf(2) ** 12 - 1)
    expected_neg = _first_float16_from(zero_from, below=True)
    expected_pos = _first_float16_from(one_from, below=False)
    assert (expected_neg, expected_pos) == (-17.34375, 8.3203125)  # the hand-worked values
    assert _onset(naive, 1.0, "against", "loss non-finite") == expected_neg
    assert _onset(naive, 0.0, "against", "loss non-finite") == expected_pos
    # With the target the other term's 0 * log(0) is NaN at the same logits.
    assert _onset(naive, 0.0, "with", "loss non-finite") == expected_neg
    assert _onset(naive, 1.0, "with", "loss non-finite") == expected_pos
    # torchvision's formula never takes log(p): no non-finite loss at finite z.  With the
    # target its float16 gradient underflows to 0 (a product of small factors) where the
    # exact one, rounded to float16, is not 0: check the onset against that definition.
    tv = rows["torch.torchvision_formula"]
    assert _onset(tv, 1.0, "against", "loss non-finite") is None
    z0 = _onset(tv, 1.0, "with", "gradient vanishes")
    assert z0 is not None and z0 > 0
    fmt = get_format("float16")
    exact_grad = exact.binary_focal_loss([z0], [1.0], 0.25, 2.0).grad_rounded(fmt)[0]
    assert exact_grad != 0
    case = FocalCase(np.array([z0]), np.array([1.0]), fmt, 0.25, 2.0, "none")
    assert run(get("torch.torchvision_formula"), case).grad[0] == 0  # type: ignore[index]


@pytest.mark.slow  # a minute on 2 loaded cores: two paths over 3 x 65,536 bfloat16 points
def test_soft_targets_hard_only_note() -> None:
    s = _Settings(("kornia.binary_focal", "optax.sigmoid_focal"), targets=(0.0, 1.0, 0.3))
    _, rows = _run(s, "bfloat16")
    kornia = rows["kornia.binary_focal"]
    assert kornia.status == "ok"
    assert any("hard targets only" in n for n in kornia.notes)
    assert {o.target for o in kornia.onsets} == {0.0, 1.0}
    optax = rows["optax.sigmoid_focal"]
    assert optax.status == "ok" and not any("hard targets only" in n for n in optax.notes)
    assert any(o.target not in (0.0, 1.0) for o in optax.onsets)


@pytest.mark.slow
def test_float32_search_matches_brute_force_on_torch() -> None:
    import torch

    s = _Settings(("torch.naive_focal",), targets=(1.0,))
    _, rows = _run(s, "float32")
    found = _onset(rows["torch.naive_focal"], 1.0, "against", "loss non-finite")
    # Brute force, on torch itself: every float32 in [-120, -0.5], the one nearest 0 whose
    # sigmoid is exactly 0 (log(0) = -inf in the y = 1 term).
    lo = np.float32(0.5).view(np.uint32)
    hi = np.float32(120.0).view(np.uint32)
    z = -np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32)
    p = torch.sigmoid(torch.from_numpy(z)).numpy()
    hits = z[p == 0]
    assert found == float(hits.max())
    assert math.isfinite(found)


def test_kornia_gradient_overflow_onset_by_hand(
    float16_run: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    # kornia's y = 0 term is -(1 - alpha) exp(gamma logsigmoid(z)) logsigmoid(-z).  Its
    # backward multiplies the upstream (1 - alpha) |logsigmoid(-z)| ~ (1 - alpha) z by
    # gamma: gamma (1 - alpha) z = 1.5 z overflows float16 once it passes the largest
    # finite value, and inf times sigmoid'(z) = 0 is NaN.  For y = 1 the factor is
    # gamma alpha = 0.5: never an overflow.
    _, rows = float16_run
    fmt = get_format("float16")
    values = fmt.values()
    values = values[np.isfinite(values) & (values > 0)]
    expected = float(min(v for v in values if 1.5 * float(v) > fmt.max))
    assert expected == 43680.0
    kornia = rows["kornia.binary_focal"]
    assert _onset(kornia, 0.0, "against", "gradient non-finite") == expected
    assert _onset(kornia, 1.0, "against", "gradient non-finite") is None
