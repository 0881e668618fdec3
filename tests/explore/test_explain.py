"""The explanation follows the state, and says only what compare() measured."""

from __future__ import annotations

from logitlab.analysis.compare import compare
from logitlab.analysis.explain import explain
from logitlab.analysis.saturation import saturation


def sentences(*args: object, dtype: str = "float32", **kwargs: object) -> str:
    c = compare(*args, dtype=dtype, **kwargs)  # type: ignore[arg-type]
    return "\n".join(explain(c, saturation(dtype)))


def test_past_the_threshold_says_why() -> None:
    text = sentences([20, 20], [0.3, 0.7])
    assert (
        "Above z = 16.64 float32 sigmoid is exactly 1, so log(1 − p) = log 0, which PyTorch "
        "clamps to −100" in text
    )
    assert "(1 − y) × 100 = 70 for z₁" in text and "= 30 for z₂" in text
    assert "stops learning" in text and "0.35 for z₁" in text


def test_threshold_follows_the_dtype() -> None:
    assert "Above z = 8.32 float16 sigmoid" in sentences([10], [0.3], dtype="float16")
    assert "Above z = 6.25 bfloat16 sigmoid" in sentences([10], [0.3], dtype="bfloat16")
    assert "Above z" not in sentences([10], [0.3], dtype="float32")


def test_below_the_lower_threshold() -> None:
    text = sentences([-100], [0.3])
    assert "Below z = −88.72 float32 sigmoid is exactly 0, so log(p) = log 0" in text


def test_inside_the_range_points_at_the_threshold() -> None:
    text = sentences([-2, 2], [0.3, 0.7])
    assert "inside float32's unsaturated range (−88.72 < z < 16.64)" in text
    assert "Drag a logit above 16.64" in text


def test_target_one_makes_the_clamp_harmless() -> None:
    text = sentences([40], [1.0])
    assert "with y = 1 the (1 − y) term is zero".capitalize() in text


def test_logits_path_cancellation_is_named() -> None:
    text = sentences([-30], [1e-10])
    assert "The logits path is" in text and "ULPs off here" in text


def test_rounding_notes_are_passed_on() -> None:
    assert "Logits are rounded to float16: 0.1 becomes" in sentences([0.1], [0.5], dtype="float16")


def test_gradient_shrinking_before_saturation_is_explained() -> None:
    text = sentences([-30], [0.3])
    assert "Above z" not in text and "Below z" not in text
    # float32: p = sigma(-30) = 9.4e-14, so the backward divides by 1e-12 instead of p(1 - p)
    # and the gradient comes out 0.0936 times the exact -0.3.
    assert (
        "The probabilities path's gradient for z₁ = -30.0 is -0.028072873 where the exact one "
        "is -0.3" in text
    )
    assert "max(p(1 − p), 1e-12)" in text
