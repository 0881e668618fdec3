"""The batch analysis measures what compare measures: the same per-element ULP errors and
flags (against compare's per-element mpmath), reduced losses against the exact sum, and
histograms, counts and worst elements worked out by hand."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import logitlab
from logitlab.analysis.batch import (
    HISTOGRAM_BINS,
    compare_batch,
    exact_reduced,
    histogram,
    resolve_dtype,
)
from logitlab.core.batch_file import batch_case
from logitlab.core.errors import InputError
from logitlab.core.formats import DTYPE_NAMES, get_format
from logitlab.core.inputs import BCECase

FRAMEWORKS = ["torch", "stable", "numpy"]


def _extreme_logits(dtype: str) -> list[float]:
    fmt = get_format(dtype)
    tiny, normal = fmt.smallest_subnormal, fmt.smallest_normal
    values = [
        math.inf,
        -math.inf,
        0.0,
        tiny,
        -tiny,
        3 * tiny,
        normal,
        -normal,
        1e4,
        -1e4,
        # saturation thresholds: float32 sigmoid reaches 1 at 16.6355, 0 below -88.72 (-103.97
        # for subnormals), float64 at 36.74 and -745; float16/bfloat16 far earlier
        16.635532,
        16.63553,
        -88.72284,
        -103.97208,
        -104.0,
        36.736801,
        36.7368,
        -745.1332,
        -709.0,
        8.3,
        -8.3,
        5.5,
        -17.3,
        27.6,
        -27.6,
        200.0,
        -200.0,
    ]
    rng = np.random.default_rng(7)
    values += list(rng.normal(size=20) * 10)
    return values


def _case(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    z = np.array(_extreme_logits(dtype))
    targets = np.array([0.0, 1.0, 0.5, 0.3, 0.999])
    zz, yy = np.meshgrid(z, targets, indexing="ij")
    return zz.ravel(), yy.ravel()


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_per_element_errors_and_flags_equal_compares(dtype: str) -> None:
    z, y = _case(dtype)
    assert z.size >= 200
    reference = logitlab.compare(z, y, dtype=dtype, reduction="none", frameworks=FRAMEWORKS)
    case = batch_case(z, y, dtype=dtype, reduction="none")
    summary = compare_batch(case, frameworks=FRAMEWORKS)
    assert [p.formulation.name for p in summary.paths] == [
        r.formulation.name for r in reference.rows
    ]
    for row in reference.rows:
        path = summary.path(row.formulation.name)
        assert path.status == row.status
        if row.status != "ok":
            continue
        assert path.ulp_error is not None and row.ulp_error is not None
        pairs = ((path.ulp_error, row.ulp_error), (path.grad_ulp_error, row.grad_ulp_error))
        for mine, theirs in pairs:
            assert (mine is None) == (theirs is None)
            if mine is None or theirs is None:  # no autograd on this path
                continue
            mine, theirs = mine.ravel(), theirs.ravel()
            assert np.array_equal(np.isnan(mine), np.isnan(theirs)), row.formulation.name
            assert np.array_equal(np.isinf(mine), np.isinf(theirs)), row.formulation.name
            finite = np.isfinite(theirs)
            assert np.allclose(mine[finite], theirs[finite], rtol=1e-9, atol=0.01), (
                row.formulation.name
            )
        flags = path.element_flags
        assert flags is not None
        assert flags.per_element("loss") == row.element_loss_flags, row.formulation.name
        assert flags.per_element("gradient") == row.element_grad_flags, row.formulation.name
        # the summary's maxima are those of compare's per-element errors
        assert path.loss is not None
        assert path.loss.max_ulp == pytest.approx(
            float(np.nanmax(row.ulp_error)), rel=1e-9, abs=0.01
        )


def test_weights_and_pos_weight_agree_with_compare() -> None:
    z, y = _case("float32")
    rng = np.random.default_rng(3)
    w = rng.choice([0.0, 0.5, 2.0], size=z.size)
    pw = rng.choice([1.0, 3.0], size=z.size)
    reference = logitlab.compare(
        z, y, dtype="float32", weight=w, pos_weight=pw, reduction="none", frameworks=FRAMEWORKS
    )
    summary = compare_batch(
        batch_case(z, y, weight=w, pos_weight=pw, dtype="float32", reduction="none"),
        frameworks=FRAMEWORKS,
    )
    for row in reference.rows:
        path = summary.path(row.formulation.name)
        assert path.status == row.status
        if row.status != "ok":
            continue
        assert path.element_flags is not None and path.ulp_error is not None
        assert path.element_flags.per_element("both") == row.element_flags
        finite = np.isfinite(row.ulp_error)
        assert np.allclose(path.ulp_error[finite], row.ulp_error[finite], atol=0.01)


def test_batch_case_rounds_and_notes_like_from_user() -> None:
    z = [0.1, 1e6, -3.0]
    y = [0.3, 1.0, 0.0]
    mine = batch_case(z, y, dtype="float16")
    theirs = BCECase.from_user(z, y, dtype="float16")
    assert np.array_equal(mine.logits, theirs.logits)
    assert np.array_equal(mine.targets, theirs.targets)
    assert mine.notes == theirs.notes
    assert mine.notes[0].startswith("logit 1000000.0 (index 1) overflows float16")


def test_batch_case_has_no_per_element_cap() -> None:
    n = 20_000  # above compare's MAX_ELEMENTS
    case = batch_case(np.zeros(n), np.full(n, 0.5), dtype="float32")
    assert case.logits.shape == (n,)
    with pytest.raises(InputError, match="at most 10000"):
        BCECase.from_user(np.zeros(n), np.full(n, 0.5))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"logits": [math.nan], "targets": [0.5]}, "logits"),
        ({"logits": [1.0], "targets": [1.5]}, "targets"),
        ({"logits": [1.0, 2.0, 3.0], "targets": [0.5, 0.5]}, "targets"),
        ({"logits": [1.0], "targets": [0.5], "weight": [1.0, 2.0]}, "weight"),
        ({"logits": [1.0], "targets": [0.5], "pos_weight": [math.inf]}, "pos_weight"),
    ],
)
def test_batch_case_errors_name_the_input(kwargs: dict, argument: str) -> None:
    with pytest.raises(InputError) as info:
        batch_case(**kwargs)
    assert info.value.argument == argument
    with pytest.raises(InputError) as named:
        batch_case(**kwargs, names={argument: "key_" + argument}, argument="--from")
    assert named.value.argument == "--from" and f"'key_{argument}'" in str(named.value)


def test_histogram_bins_are_right_closed() -> None:
    u = np.array(
        [0.0, 1e-9, 0.5, 0.5000001, 1.0, 1.5, 4.0, 4.5, 1024.0, 1025.0, math.inf, math.nan]
    )
    assert list(HISTOGRAM_BINS) == [
        "0", "(0, 0.5]", "(0.5, 1]", "(1, 4]", "(4, 1024]", "(1024, inf)", "inf", "NaN",
    ]  # fmt: skip
    assert list(histogram(u).values()) == [1, 2, 2, 2, 2, 1, 1, 1]
    assert sum(histogram(u).values()) == u.size


def test_saturated_probabilities_are_counted_and_listed_first() -> None:
    # sigmoid(20) rounds to 1 in float32 (1 - sigmoid(20) = 2.06e-9 < 2**-25), so at
    # y = 0.3 log(1 - p) = log 0 is clamped to -100: loss 70 instead of 14.
    z = np.concatenate([np.zeros(30), np.full(7, 20.0)])
    y = np.full(z.size, 0.3)
    summary = compare_batch(
        batch_case(z, y, dtype="float32", reduction="none"), formulations=["torch.probabilities"]
    )
    p = summary.path("torch.probabilities")
    assert p.loss is not None and p.grad is not None
    assert p.loss.flags["log clamped"] == 7
    assert p.loss.flags["sigmoid saturated"] == 7
    assert p.flag_counts["sigmoid saturated"] == 7
    assert {e.index for e in p.worst_loss} == set(range(30, 35))  # 5 of the 7, by index
    first = p.worst_loss[0]
    assert first.value == pytest.approx(70.0, rel=1e-6)
    assert first.exact == pytest.approx(14.0 + 2.06e-9 * 0.7, rel=1e-6)
    assert "log clamped" in first.flags
    # sigmoid(0) = 1/2 exactly, log(1/2) in float32 is within half an ULP
    assert p.loss.histogram["(1024, inf)"] == 7
    assert p.loss.histogram["0"] + p.loss.histogram["(0, 0.5]"] == 30


def test_nan_results_rank_worst() -> None:
    # torch.naive at z = 40, y = 1: log(1 - sigmoid(40)) = log 0 = -inf times (1 - y) = 0: NaN
    z = np.concatenate([np.linspace(-3, 3, 25), [40.0, 50.0]])
    y = np.concatenate([np.full(25, 0.5), [1.0, 1.0]])
    p = compare_batch(
        batch_case(z, y, dtype="float32", reduction="none"), formulations=["torch.naive"]
    ).path("torch.naive")
    assert p.loss is not None
    assert [e.index for e in p.worst_loss[:2]] == [25, 26]
    assert all(math.isnan(e.ulp_error) and "non-finite" in e.flags for e in p.worst_loss[:2])
    assert p.loss.nan == 2 and p.loss.histogram["NaN"] == 2
    assert math.isfinite(p.loss.max_ulp)  # the maximum ignores NaN errors


def test_exact_mean_of_log2_is_log2() -> None:
    n = 1001
    ref = logitlab.exact.fast.bce(np.zeros(n), np.full(n, 0.5), "float32")
    assert float(exact_reduced(ref.value, "mean", n)) == pytest.approx(math.log(2), rel=2**-50)
    ref64 = logitlab.exact.fast.bce(np.zeros(n), np.full(n, 0.5), "float64")
    total = exact_reduced(ref64.value, "sum", n)
    assert total.dtype == np.longdouble
    with mpmath.workprec(200):
        want = n * mpmath.log(2)
        assert abs(mpmath.mpf(float(total)) - want) / want < 2**-52
        lo = total - np.longdouble(float(total))
        assert abs(mpmath.mpf(float(total)) + mpmath.mpf(float(lo)) - want) / want < 2**-60


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_loss_matches_compare(dtype: str, reduction: str) -> None:
    rng = np.random.default_rng(11)
    z = rng.normal(size=60) * 8
    y = rng.choice([0.0, 1.0, 0.25], size=60)
    reference = logitlab.compare(z, y, dtype=dtype, reduction=reduction, frameworks=["torch"])
    summary = compare_batch(
        batch_case(z, y, dtype=dtype, reduction=reduction), frameworks=["torch"]
    )
    exact_mp = reference.exact.values[0]
    assert summary.exact_reduced is not None
    with mpmath.workprec(200):
        assert abs(mpmath.mpf(summary.exact_reduced) - exact_mp) <= abs(exact_mp) * 2**-52
    for row in reference.rows:
        path = summary.path(row.formulation.name)
        if row.status != "ok":
            continue
        assert path.reduced is not None and row.value is not None
        computed = float(row.value.ravel()[0])
        assert path.reduced.value == computed or (
            math.isnan(computed) and math.isnan(path.reduced.value)
        )
        if math.isnan(computed):
            assert math.isnan(path.reduced.ulp_error)
        else:
            assert path.reduced.ulp_error == pytest.approx(row.max_ulp_error, abs=0.01)


def test_resolve_dtype_prefers_the_explicit_one() -> None:
    assert resolve_dtype("float16", "float32") == (get_format("float16"), "--dtype")
    assert resolve_dtype(None, "bfloat16") == (get_format("bfloat16"), "file")
    assert resolve_dtype(None, None) == (get_format("float32"), "default")


def test_fallback_is_counted_where_the_gradient_cancels() -> None:
    # (1 - y) sigma(z) - y sigma(-z) = sigma(z) - y: at y = sigma(z) rounded to float32, the
    # difference is far below float64's resolution of the terms; the fast reference must
    # hand such a point to mpmath (or to its tanh rewrite) and still agree with compare.
    z = np.array([0.75, -2.0, 3.0] * 8)
    y = np.array(get_format("float32").round(1 / (1 + np.exp(-z))))
    summary = compare_batch(batch_case(z, y, reduction="none"), formulations=["stable.bce"])
    reference = logitlab.compare(z, y, reduction="none", formulations=["stable.bce"])
    mine = summary.path("stable.bce").grad_ulp_error
    theirs = reference.row("stable.bce").grad_ulp_error
    assert mine is not None and theirs is not None
    assert np.allclose(mine, theirs, atol=0.01)
    assert summary.fallback >= 0
