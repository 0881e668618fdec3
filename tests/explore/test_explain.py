"""The explanation follows the state, and says only what compare() measured.

One test per sentence template: a case that triggers it, with the expected text worked out
by hand from the numbers, and a near miss that does not.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest

from logitlab.analysis.compare import compare
from logitlab.analysis.explain import Sentence, explain, sentences
from logitlab.analysis.saturation import saturation


def run(*args: Any, dtype: str = "float32", **kwargs: Any) -> list[Sentence]:
    c = compare(*args, dtype=dtype, **kwargs)
    return sentences(c, saturation(c.dtype.name))


def of(template: str, *args: Any, **kwargs: Any) -> list[str]:
    """The texts one template produced for the case."""
    return [s.text for s in run(*args, **kwargs) if s.template == template]


def text(*args: Any, **kwargs: Any) -> str:
    return "\n".join(s.text for s in run(*args, **kwargs))


def test_explain_returns_the_texts() -> None:
    c = compare([20, 20], [0.3, 0.7])
    assert explain(c, saturation("float32")) == [
        s.text for s in sentences(c, saturation("float32"))
    ]


# --- one test per template ---------------------------------------------------------------


def test_rounded_targets() -> None:
    # bfloat16 has 8 significant bits: 0.3 is held as 0.30078125; float16 holds 0.1 as
    # 0.0999755859375.
    (s,) = of("rounded targets", [20], [0.3], dtype="bfloat16")
    assert s.startswith("In bfloat16 y = 0.3 is 0.30078125 (y₁)")
    (s,) = of("rounded targets", [2], [0.1], dtype="float16")
    assert "y = 0.1 is 0.0999755859375" in s
    # float32's 0.30000001192092896 and float16's 0.300048828125 show as 0.3 to four
    # digits: nothing to say.
    assert of("rounded targets", [20], [0.3]) == []
    assert of("rounded targets", [2], [0.3], dtype="float16") == []


def test_sigmoid_saturated_at_one() -> None:
    (s,) = of("sigmoid saturated", [20, 20], [0.3, 0.7])
    assert s == (
        "From z = 16.635532 up, float32 sigmoid (torch.sigmoid) is exactly 1, so "
        "log(1 − p) = log 0 in torch.probabilities and torch.naive (z₁ = 20.0, z₂ = 20.0)."
    )
    # The threshold follows the dtype; it is the one saturation() found.
    assert (
        "From z = 8.32 up, float16 sigmoid"
        in of("sigmoid saturated", [10], [0.3], dtype="float16")[0]
    )
    assert "From z = 6.25 up, bfloat16" in of("sigmoid saturated", [10], [0.3], dtype="bfloat16")[0]
    # Near misses: just below the float32 threshold, and a weight of 0 (a term that does
    # not count is not flagged, so not named).
    assert of("sigmoid saturated", [16.63], [0.3]) == []
    assert of("sigmoid saturated", [10], [0.3]) == []
    (s,) = of("sigmoid saturated", [20, 20], [0.3, 0.7], weight=[1.0, 0.0])
    assert "(z₁ = 20.0)" in s and "z₂" not in s


def test_sigmoid_saturated_at_zero() -> None:
    (s,) = of("sigmoid saturated", [-100], [0.3])
    assert s.startswith(
        "From z = -88.72284 down, float32 sigmoid (torch.sigmoid) is exactly 0, so log(p) = log 0"
    )
    assert of("sigmoid saturated", [-88], [0.3]) == []


def test_log_clamped_charges_the_coefficient_times_100() -> None:
    # float32, z = 20: p = 1, log(1 - p) = log 0 -> -100; y = 0.3 charges 0.7 * 100 = 70
    # where the exact loss is 0.7 * 20 + log(1 + e^-20) = 14.
    (s,) = of("log clamped", [20], [0.3], reduction="none")
    assert "torch.probabilities clamps each log at −100" in s
    assert "(1 − y) × 100 = 70.0 for z₁ = 20.0 (y = 0.3), where the exact loss is 14.0" in s
    # Mean reduction: the element's own term, no per-element exact value.
    (s,) = of("log clamped", [20, 20], [0.3, 0.7])
    assert "= 70.0 for z₁ = 20.0 (y = 0.3)" in s and "for z₂ = 20.0 (y = 0.7)" in s
    # bfloat16 holds 0.3 as 0.30078125: (1 - y) * 100 = 69.92, 70.0 in bfloat16.
    (s,) = of("log clamped", [20], [0.3], dtype="bfloat16")
    assert "(1 − y) × 100 = 70.0 for z₁ = 20.0 (y = 0.3)" in s
    # A weight scales the charge: 2 * 0.7 * 100 = 140.
    (s,) = of("log clamped", [20], [0.3], weight=[2.0])
    assert "w × (1 − y) × 100 = 140.0 for z₁ = 20.0 (w = 2.0, y = 0.3)" in s
    # float64, z = -200: p = e^-200 is not 0 but log(p) = -200 < -100: y * 100 = 30, exact 60.
    (s,) = of("log clamped", [-200], [0.3], dtype="float64", reduction="none")
    assert "y × 100 = 30.0 for z₁ = -200.0 (y = 0.3), where the exact loss is 60.0" in s


def test_log_clamped_near_misses() -> None:
    # y = 1: the clamped log has coefficient 0, so it is not flagged and not charged.
    assert of("log clamped", [20], [1.0]) == []
    # pos_weight: the probabilities row does not run, so nothing is said about its clamp.
    assert of("log clamped", [-90, 20], [0.3, 0.7], reduction="none", pos_weight=3) == []
    assert of("log clamped", [2], [0.3]) == []


def test_zero_coefficient() -> None:
    (s,) = of("zero coefficient", [40], [1.0])
    assert s.startswith(
        "With y = 1 the (1 − y) term is zero, so log(1 − p) = log 0 costs torch.probabilities "
        "nothing at z₁ = 40.0"
    )
    (s,) = of("zero coefficient", [-100], [0.0])
    assert s.startswith(
        "With y = 0 the y term is zero, so log(p) = log 0 costs torch.probabilities"
    )
    # torch.naive has no clamp: 0 * log 0 is NaN there, so it is not "free" (non-finite).
    assert all("torch.naive" not in s for s in of("zero coefficient", [40], [1.0]))
    assert of("zero coefficient", [40], [0.9]) == []


def keras_or_skip() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")


def test_probability_clipped() -> None:
    keras_or_skip()
    # Keras clips p = 1 to 1 - 1e-7, which float32 holds as 1 - 2**-23: the loss is
    # 0.7 * -log(2**-23) + 0.3 * -log(1 - 2**-23) = 0.7 * 15.942 = 11.1597.
    (s,) = of("probability clipped", [20], [0.3], reduction="none", frameworks=["keras"])
    assert s.startswith(
        "keras.probabilities clips p to [1e-07, 1 − 1e-07] (keras.config.epsilon()) before "
        "taking logs, so it never takes log 0, but the clip changes the loss at z₁ = 20.0 "
        "(y = 0.3)"
    )
    assert "z₁ gets 11.1596" in s and "where the exact loss is 14.0" in s
    assert of("probability clipped", [2], [0.3], frameworks=["keras"]) == []


def test_gradient_vanished_through_p() -> None:
    # Mean over two: the exact gradients are (sigma(20) - y) / 2 = 0.35 and 0.15.
    (s,) = of("gradient vanished through p", [20, 20], [0.3, 0.7])
    assert s == (
        "The gradient through the probabilities is p(1 − p) × (…) = 0 once p is exactly 0 "
        "or 1, so torch.probabilities stops learning: it returns 0 where the exact gradient "
        "is 0.35 for z₁, 0.15 for z₂."
    )
    assert of("gradient vanished through p", [16], [0.3]) == []


def test_gradient_vanished_at_the_clip() -> None:
    keras_or_skip()
    # p = sigma(-20) = 2e-9 < 1e-7 is clipped: derivative 0 where the exact is 2e-9 - 0.3.
    (s,) = of("gradient vanished at the clip", [-20], [0.3], reduction="none", frameworks=["keras"])
    assert s.startswith("The clip of p in keras.probabilities has derivative 0")
    assert "-0.3 for z₁" in s
    assert of("gradient vanished at the clip", [-2], [0.3], frameworks=["keras"]) == []


def test_logits_keep_the_gradient() -> None:
    (s,) = of("logits keep the gradient", [20, 20], [0.3, 0.7])
    assert "torch.logits and stable.bce keep the gradient at z₁ = 20.0, z₂ = 20.0" in s
    # The reported bug: with a hard target y = 1 at z = 20 torch.logits' own gradient
    # vanishes too, so it is not said to keep it; stable.bce does.
    (s,) = of("logits keep the gradient", [-20, 20], [0, 1])
    assert "stable.bce keeps the gradient at z₂ = 20.0" in s and "torch.logits" not in s
    assert of("logits keep the gradient", [2], [0.3]) == []


def test_gradient_vanished_on_the_logits_path() -> None:
    # sigma(20) rounds to 1 in float32 = y: sigma - y = 0, exact -sigma(-20) / 2.
    (s,) = of("gradient vanished on the logits path", [-20, 20], [0, 1])
    assert s.startswith(
        "The gradient of torch.logits is proportional to σ(z) − y, and at z₂ = 20.0 (y = 1.0) "
        "σ(z) rounds to exactly the hard target, so it returns 0 where the exact gradient is "
        "-1.0305768e-09 for z₂"
    )
    assert "stops learning too" in s
    # A soft target keeps sigma(z) - y away from 0.
    assert of("gradient vanished on the logits path", [20], [0.7]) == []


def test_gradient_vanished_otherwise() -> None:
    # float16: sigma(1e-5) rounds to 0.5 = y, a soft target: the fact, without a cause.
    found = of("gradient vanished", [1e-5], [0.5], dtype="float16", reduction="none")
    assert (
        "torch.logits returns a zero gradient where the exact one, rounded to float16, is not: "
        "2.5e-06 for z₁." in found
    )
    assert of("gradient vanished", [1e-5], [0.5], reduction="none") == []


def test_gradient_clamped() -> None:
    # sigma(-30) = 9.4e-14, so the backward divides by 1e-12, not p(1 - p): 0.0936 x -0.3.
    (s,) = of("gradient clamped", [-30], [0.3])
    assert s.startswith(
        "The gradient of torch.probabilities is too small although sigmoid has not rounded to "
        "0 or 1 (z₁ = -30.0: -0.028072873 where the exact one is -0.3)"
    )
    assert "max(p(1 − p), 1e-12)" in s and "about 27.63" in s
    # sigma(-27) (1 - sigma(-27)) = 1.9e-12 > 1e-12: no clamp.
    assert of("gradient clamped", [-27], [0.3]) == []


def test_quiet_gradient_error() -> None:
    # bfloat16, z = 6, y = 1: p = sigma(6) rounds to 0.99609375, so p - 1 = -0.0039
    # where the exact gradient is -sigma(-6) = -0.00247: 58% off with no flag.
    found = of("quiet gradient error", [6], [1.0], dtype="bfloat16")
    assert (
        "The gradient of torch.probabilities for z₁ = 6.0 is 58% off although sigmoid has not "
        "rounded to 0 or 1: it is computed from p = σ(z) rounded to bfloat16: -0.0039 where "
        "the exact one is -0.00247." in found
    )
    assert of("quiet gradient error", [6], [1.0]) == []


def test_non_finite() -> None:
    (s,) = of("non-finite", [20], [0.3])
    assert s.startswith(
        "torch.naive returns NaN or an infinity where the exact value is finite: in the loss "
        "at z₁ = 20.0 and in the gradient at z₁ = 20.0; at z₁ p is exactly 0 or 1 and it "
        "takes log 0 = −inf unclamped"
    )
    assert of("non-finite", [2], [0.3]) == []


def test_nan_where_the_exact_value_is_infinite() -> None:
    # z = -inf, y = 0.5: the exact loss is 0.5 * inf; (1 - y) z + log(1 + exp(-z)) is
    # -inf + inf = NaN.
    found = of("NaN", [-math.inf], [0.5], reduction="none")
    assert (
        "torch.logits returns NaN for the loss at z₁ = -inf (y = 0.5), where the exact value "
        "is infinite" in found[0]
    )
    # y = 0 at z = -inf: the exact loss is 0, finite; a NaN there is "non-finite" instead.
    assert of("NaN", [-math.inf], [0.0], reduction="none") == []
    assert any("torch.logits" in s for s in of("non-finite", [-math.inf], [0.0]))


def test_subnormal_flushed() -> None:
    pytest.importorskip("optax")
    # softplus(-100) = sigma(-100) = 3.8e-44, a float32 subnormal: XLA returns 0.
    (s,) = of("subnormal flushed", [-100], [0.0], reduction="none", formulations=["optax.logits"])
    assert s == (
        "optax.logits flushes subnormal results to zero (XLA does): it returns 0 for the loss "
        "at z₁ = -100.0 (exact 3.8e-44) and the gradient at z₁ = -100.0 (exact 3.8e-44), "
        "non-zero values below float32's smallest normal 1.1754944e-38."
    )
    # sigma(-50) = 1.9e-22 is normal: nothing to flush.
    assert of("subnormal flushed", [-50], [0.0], formulations=["optax.logits"]) == []


def test_cancellation_for_small_soft_targets() -> None:
    (s,) = of("cancellation", [-30], [1e-10], reduction="none")
    assert s.startswith("torch.logits is 8.3e8 ULPs off the exact loss here, with no flag")
    assert "at z < 0 the terms have opposite signs" in s and "z₁ = -30.0 (y = 1e-10)" in s
    assert of("cancellation", [-30], [0.3], reduction="none") == []


def test_cancellation_at_hard_targets() -> None:
    # y = 0, z = -20: the exact loss log(1 + e^-20) = 2.06e-9 is the difference of -20
    # and 20.000000002, which float32 rounds to 0.
    (s,) = of("cancellation", [-20], [0.0], reduction="none")
    assert s.startswith("torch.logits is ")
    assert "y = 0 included (z₁ = -20.0 (y = 0.0))" in s
    # The same hard target at z = 20 is computed accurately: no sentence.
    assert of("cancellation", [20], [1.0]) == []


def test_inside_the_range() -> None:
    (s,) = of("inside the range", [-2, 2], [0.3, 0.7])
    assert "inside float32's unsaturated range (-88.72284 < z < 16.635532)" in s
    assert "Drag a logit to 16.635532 or above" in s
    assert of("inside the range", [-2, 20], [0.3, 0.7]) == []
    assert of("inside the range", [-2, math.inf], [0.3, 0.7]) == []


def test_accurate() -> None:
    (s,) = of("accurate", [-90, 20], [0.3, 0.7], reduction="none", pos_weight=3)
    assert s == (
        "Within 8 ULPs of the exact loss, with no flag: torch.logits (0.52 ULPs), "
        "stable.bce (0.49 ULPs)."
    )
    # A row with a loss flag is never said to be accurate.
    (s,) = of("accurate", [20], [0.3])
    assert "torch.probabilities" not in s and "torch.naive" not in s


def test_row_note() -> None:
    pytest.importorskip("scipy")
    found = of("row note", [2], [0.3], dtype="float16", formulations=["scipy.log_expit"])
    assert found == ["scipy.log_expit returned float64 values for float16 input (upcast)."]
    assert of("row note", [2], [0.3], formulations=["scipy.log_expit"]) == []


def test_not_run_is_one_line_per_row_and_the_only_mention() -> None:
    # The reported bug: pos_weight makes the probabilities row not applicable, and the old
    # text explained what that row "charges".
    found = run([-90, 20], [0.3, 0.7], reduction="none", pos_weight=3)
    mentions = [s for s in found if "torch.probabilities" in s.text]
    assert [s.template for s in mentions] == ["not run"]
    assert mentions[0].text.startswith(
        "torch.probabilities did not run (not applicable): F.binary_cross_entropy takes no "
        "pos_weight"
    )
    assert of("not run", [-90, 20], [0.3, 0.7]) == []


def test_input_note() -> None:
    assert any(
        s.startswith("Logits are rounded to float16: 0.1 becomes")
        for s in of("input note", [0.1], [0.5], dtype="float16")
    )
    assert of("input note", [0.5], [0.5], dtype="float16") == []


def test_infinite_logit() -> None:
    (s,) = of("infinite logit", [math.inf, 2], [1.0, 0.3])
    assert s.startswith("An infinite logit is allowed (z₁ = inf)")
    assert of("infinite logit", [1e30, 2], [1.0, 0.3]) == []


# --- the reported cases, end to end -----------------------------------------------------


def test_hard_targets_do_not_say_the_logits_path_keeps_the_gradient() -> None:
    t = text([-20, 20], [0, 1])
    for sentence in t.splitlines():
        if "keep" in sentence:
            assert "torch.logits" not in sentence


def test_bfloat16_uses_the_rounded_target() -> None:
    t = text([20], [0.3], dtype="bfloat16")
    assert "0.30078125" in t and "69.9" not in t
