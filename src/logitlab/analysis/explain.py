"""A few plain-language sentences that say why the numbers on screen are what they are.

Everything said here is read off a :class:`~logitlab.analysis.compare.Comparison` (values, flags,
ULP errors) and the dtype's saturation thresholds; nothing is recomputed.
"""

from __future__ import annotations

import math

import numpy as np

from logitlab.analysis.compare import Comparison
from logitlab.analysis.saturation import Saturation
from logitlab.core.numbers import shortest_repr

__all__ = ["explain"]

# Subscript digits for element numbers: z₁, z₂, ...
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
# A logits-path error above this many ULPs gets a sentence of its own.
_NOTABLE_ULPS = 8.0


def _z(i: int) -> str:
    return "z" + str(i + 1).translate(_SUB)


def _fmt_threshold(v: float) -> str:
    return f"{v:.2f}".replace("-", "−")


def _ulps(u: float) -> str:
    if not math.isfinite(u):
        return "infinitely many" if u > 0 else "NaN"
    if u >= 1e4:
        mantissa, exponent = f"{u:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{u:.3g}"


def explain(comparison: Comparison, saturation: Saturation) -> list[str]:
    """Sentences for the explorer's explanation box, in reading order."""
    c = comparison
    fmt = c.dtype
    name = fmt.name
    z = c.case.logits.ravel()
    y = c.case.targets.ravel()
    rows = {r.formulation.name: r for r in c.rows}
    prob = rows.get("torch.probabilities")
    logits_row = rows.get("torch.logits")
    out: list[str] = []
    one, zero = saturation.one_from, saturation.zero_up_to
    high = [i for i in range(z.size) if one is not None and z[i] >= one]
    low = [i for i in range(z.size) if zero is not None and z[i] <= zero]
    if high and one is not None:
        who = ", ".join(f"{_z(i)} = {shortest_repr(z[i], fmt)}" for i in high)
        text = (
            f"Above z = {_fmt_threshold(one)} {name} sigmoid is exactly 1, so log(1 − p) = "
            f"log 0, which PyTorch clamps to −100 ({who})."
        )
        parts = []
        for i in high:
            if y[i] != 1:
                clamped = (1 - y[i]) * 100
                parts.append(
                    f"with y = {shortest_repr(y[i], fmt)} the probabilities path charges "
                    f"(1 − y) × 100 = {clamped:.4g} for {_z(i)}"
                )
            else:
                parts.append(
                    f"with y = 1 the (1 − y) term is zero, so the clamp costs {_z(i)} nothing"
                )
        detail = "; ".join(parts)
        text += " " + detail[0].upper() + detail[1:] + "."
        out.append(text)
    if low and zero is not None:
        who = ", ".join(f"{_z(i)} = {shortest_repr(z[i], fmt)}" for i in low)
        out.append(
            f"Below z = {_fmt_threshold(zero)} {name} sigmoid is exactly 0, so log(p) = log 0, "
            f"which PyTorch clamps to −100 ({who}); a target y > 0 is then charged y × 100."
        )
    if prob is not None and prob.status == "ok" and "gradient vanished" in prob.flags:
        vanished = [i for i, f in enumerate(prob.element_flags) if "gradient vanished" in f]
        exact_grad = c.exact_grad().ravel()
        examples = ", ".join(
            f"{shortest_repr(exact_grad[i], fmt)} for {_z(i)}" for i in vanished[:3]
        )
        out.append(
            "The gradient through the probabilities is p(1 − p) × (…) = 0 once p rounds to 0 "
            f"or 1, so that path stops learning: it returns 0 where the exact gradient is "
            f"{examples}. The logits path differentiates σ(z) − y directly and keeps it."
        )
    if prob is not None and prob.status == "ok" and prob.grad is not None:
        grad = prob.grad.ravel()
        exact_grad = c.exact_grad().ravel()
        clamped = [i for i, f in enumerate(prob.element_flags) if "gradient clamped" in f]
        rel = prob.grad_relative_error.ravel() if prob.grad_relative_error is not None else None
        ulps = prob.grad_ulp_error.ravel() if prob.grad_ulp_error is not None else None
        quiet = (
            []
            if rel is None or ulps is None
            else [
                i
                for i in range(rel.size)
                if rel[i] > 0.01 and ulps[i] > 1 and not prob.element_flags[i]
            ]
        )
        if clamped:
            i = clamped[0]
            out.append(
                f"The probabilities path's gradient for {_z(i)} = {shortest_repr(z[i], fmt)} is "
                f"{shortest_repr(grad[i], fmt)} where the exact one is "
                f"{shortest_repr(exact_grad[i], fmt)}, although sigmoid has not rounded to 0 or "
                "1: PyTorch's binary_cross_entropy backward divides (p − y) by "
                "max(p(1 − p), 1e-12), and p(1 − p) is below 1e-12 here (|z| > 27.6), so the "
                "gradient shrinks with p."
            )
        elif quiet and rel is not None:
            i = quiet[0]
            out.append(
                f"The probabilities path's gradient for {_z(i)} = {shortest_repr(z[i], fmt)} is "
                f"{min(float(rel[i]), 1.0):.0%} off although sigmoid has not rounded to 0 or 1: "
                f"it is computed from p = σ(z) rounded to {name}: {shortest_repr(grad[i], fmt)} "
                f"where the exact one is {shortest_repr(exact_grad[i], fmt)}."
            )
    if prob is not None and prob.status == "ok" and "non-finite" in prob.flags:
        out.append(
            "The probabilities path returns NaN or an infinity (in its loss or its gradient) "
            "where the exact value is finite."
        )
    naive = rows.get("torch.naive")
    if naive is not None and naive.status == "ok" and "non-finite" in naive.flags:
        out.append(
            "The hand-written loss has no clamp: log 0 = −inf, and 0 × (−inf) = NaN, so it "
            "returns inf or NaN."
        )
    if not high and not low and one is not None and zero is not None:
        text = (
            f"Every logit is inside {name}'s unsaturated range ({_fmt_threshold(zero)} < z < "
            f"{_fmt_threshold(one)}), so sigmoid never rounds to exactly 0 or 1 here"
        )
        if prob is not None and prob.status == "ok" and math.isfinite(prob.max_ulp_error):
            text += f" and the probabilities path is {_ulps(prob.max_ulp_error)} ULPs from exact"
        text += f". Drag a logit above {_fmt_threshold(one)} to see the probabilities path break."
        out.append(text)
    if logits_row is not None and logits_row.status == "ok":
        u = logits_row.max_ulp_error
        if (math.isfinite(u) and u > _NOTABLE_ULPS) or (not math.isfinite(u) and not math.isnan(u)):
            out.append(
                f"The logits path is {_ulps(u)} ULPs off here: PyTorch computes "
                "(1 − y)·z + log(1 + exp(−z)), two terms of opposite sign when z < 0 whose "
                "small difference loses digits (worst for small soft targets)."
            )
        elif math.isfinite(u):
            out.append(f"The logits path is within {_ulps(u)} ULPs of the exact loss.")
    for r in c.rows:
        if r.status != "ok":
            out.append(f"{r.formulation.name}: {r.status} ({r.reason}).")
    if c.notes:
        out.extend(n[0].upper() + n[1:] + "." for n in c.notes)
    if np.isinf(z).any():
        out.append("An infinite logit is allowed: it shows what each framework does at the limit.")
    return out
