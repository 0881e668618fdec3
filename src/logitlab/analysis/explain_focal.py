"""Plain-language sentences for a focal loss comparison (quantity ``"focal"``).

Everything said is read off the :class:`~logitlab.analysis.compare.Comparison` that
:func:`~logitlab.analysis.compare_focal.compare_focal` builds: row statuses and reasons,
per-element flags (from :func:`~logitlab.analysis.flags.classify`), the ULP errors, the
inputs as the frameworks got them and the case's ``alpha``/``gamma``.  Each template is
one function below, guarded only by those; a sentence about a flag names only elements
that have it, and the "agrees" sentence only rows with no flag at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from logitlab.analysis.compare import Comparison, Row
from logitlab.core.numbers import shortest_repr

__all__ = ["NOTABLE_ULPS", "TEMPLATES", "focal_sentences"]

#: A loss or gradient this many ULPs off with no flag to explain it gets a sentence.
NOTABLE_ULPS = 8.0
# At most this many elements are named in one list; the rest are counted.
_LIST = 4


def _ok(c: Comparison) -> list[Row]:
    return [r for r in c.rows if r.status == "ok"]


def _names(rows: Sequence[Row]) -> str:
    names = [r.formulation.name for r in rows]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _where(row: Row, flag: str, side: str = "any") -> list[int]:
    per = {
        "loss": row.element_loss_flags,
        "gradient": row.element_grad_flags,
        "any": row.element_flags,
    }[side]
    return [i for i, f in enumerate(per) if flag in f]


def _elements(c: Comparison, idx: Sequence[int]) -> str:
    z = np.asarray(c.case.logits).ravel()
    shown = [f"z = {shortest_repr(z[i], c.dtype)}" for i in idx[:_LIST]]
    more = len(idx) - len(shown)
    text = ", ".join(shown)
    return text + (f" and {more} more" if more > 0 else "")


def _ulps(u: float) -> str:
    if math.isinf(u):
        return "infinitely many ULP"
    return f"{u:.3g} ULP" if u < 1e4 else f"{u:.2e} ULP"


def _gamma(c: Comparison) -> str:
    return f"{float(getattr(c.case, 'gamma', 2.0)):g}"


def not_run(c: Comparison) -> list[str]:
    """One sentence per row that did not run, with its reason."""
    out = []
    for r in c.rows:
        if r.status != "ok":
            out.append(f"{r.formulation.name} did not run ({r.status}): {r.reason}.")
    return out


def log_of_saturated(c: Comparison) -> list[str]:
    """Rows through probabilities whose loss is non-finite where sigmoid saturated."""
    out = []
    for r in _ok(c):
        idx = [
            i for i in _where(r, "non-finite", "loss") if "sigmoid saturated" in r.element_flags[i]
        ]
        if not idx or not r.formulation.via_probabilities:
            continue
        out.append(
            f"{r.formulation.name} returns inf or NaN at {_elements(c, idx)}: sigmoid(z) is "
            f"exactly 0 or 1 in {c.dtype.name} there, so log(p) or log(1 − p) is log 0 "
            "(and 0 · log 0 is NaN); the exact focal loss is finite."
        )
    return out


def non_finite_otherwise(c: Comparison) -> list[str]:
    """Non-finite values or gradients not explained by a saturated sigmoid."""
    out = []
    for r in _ok(c):
        loss = [
            i
            for i in _where(r, "non-finite", "loss")
            if "sigmoid saturated" not in r.element_flags[i] or not r.formulation.via_probabilities
        ]
        grad = [i for i in _where(r, "non-finite", "gradient") if i not in loss]
        grad = [i for i in grad if "sigmoid saturated" not in r.element_flags[i]]
        if loss:
            out.append(
                f"{r.formulation.name} returns a NaN or infinite loss at {_elements(c, loss)}, "
                "where the exact loss is finite."
            )
        if grad:
            out.append(
                f"{r.formulation.name}'s gradient is NaN or infinite at {_elements(c, grad)}, "
                "where the exact gradient is finite."
            )
    return out


def _with_target(c: Comparison) -> np.ndarray:
    """Elements whose logit pushes p towards a hard target (p_t -> 1 as |z| grows)."""
    z = np.asarray(c.case.logits, dtype=np.float64).ravel()
    y = np.asarray(c.case.targets, dtype=np.float64).ravel()
    return ((y == 1) & (z > 0)) | ((y == 0) & (z < 0))


def one_minus_p_t(c: Comparison) -> list[str]:
    """Rows through probabilities whose gradient vanished where sigmoid saturated towards
    the target: the factor ``(1 - p_t)**gamma`` formed from a p that rounded to p_t = 1."""
    out = []
    with_target = _with_target(c)
    for r in _ok(c):
        if not r.formulation.via_probabilities:
            continue
        idx = [
            i
            for i in _where(r, "gradient vanished", "gradient")
            if "sigmoid saturated" in r.element_flags[i] and with_target[i]
        ]
        if idx:
            out.append(
                f"{r.formulation.name} forms 1 − p_t from p = sigmoid(z), which rounds to "
                f"the target at {_elements(c, idx)}: 1 − p_t and the factor "
                f"(1 − p_t)^{_gamma(c)} are 0 there, so the gradient is 0 while the exact one "
                "is not."
            )
    return out


def clipped(c: Comparison) -> list[str]:
    """Rows that clipped the probability (Keras, even with from_logits=True)."""
    out = []
    for r in _ok(c):
        idx = _where(r, "probability clipped", "loss")
        if idx:
            out.append(
                f"{r.formulation.name} clips the probability to [ε, 1 − ε] before the "
                f"cross-entropy at {_elements(c, idx)}, so the loss there stops growing with "
                "|z| and its gradient loses the BCE's slope (Keras' BinaryFocalCrossentropy "
                "applies a sigmoid even with from_logits=True)."
            )
    return out


def vanished_otherwise(c: Comparison) -> list[str]:
    """A zero gradient not explained by a saturated sigmoid (an underflow on the way)."""
    out = []
    for r in _ok(c):
        idx = [
            i
            for i in _where(r, "gradient vanished", "gradient")
            if "sigmoid saturated" not in r.element_flags[i]
            and "probability clipped" not in r.element_flags[i]
        ]
        if idx:
            out.append(
                f"{r.formulation.name}'s gradient is exactly 0 at {_elements(c, idx)}, where "
                f"the exact gradient rounded to {c.dtype.name} is not (an intermediate "
                "product underflowed)."
            )
    return out


def flushed(c: Comparison) -> list[str]:
    """Subnormal results flushed to zero (XLA)."""
    out = []
    for r in _ok(c):
        idx = _where(r, "subnormal flushed")
        if idx:
            out.append(
                f"{r.formulation.name} returns 0 at {_elements(c, idx)} where the exact "
                f"result is a subnormal {c.dtype.name}: {r.formulation.framework} flushes "
                "subnormal results to zero."
            )
    return out


def _float32_only(c: Comparison, r: Row) -> bool:
    if c.dtype.precision <= 24 or r.value is None:
        return False
    values = [np.asarray(r.value, dtype=np.float64).ravel()]
    if r.grad is not None:
        values.append(np.asarray(r.grad, dtype=np.float64).ravel())
    v = np.concatenate(values)
    v = v[np.isfinite(v)]
    return bool(v.size) and bool(np.array_equal(v.astype(np.float32).astype(np.float64), v))


def quiet_error(c: Comparison) -> list[str]:
    """Rows without any flag whose loss or gradient is still many ULPs off."""
    out = []
    for r in _ok(c):
        if r.flags:
            continue
        worst = r.max_ulp_error
        gworst = math.nan if r.grad_ulp_error is None else float(np.nanmax(r.grad_ulp_error))
        parts = []
        if worst > NOTABLE_ULPS:
            parts.append(f"its loss is {_ulps(worst)} off")
        if gworst > NOTABLE_ULPS:
            parts.append(f"its gradient {_ulps(gworst)} off")
        if not parts:
            continue
        narrower = [n for n in r.notes if "computed in" in n]
        if narrower:
            why = f"it {narrower[0]}"
        elif _float32_only(c, r):
            why = (
                "every value it returned is a float32 value: it computed in float32, not "
                f"{c.dtype.name}"
            )
        else:
            why = (
                "no saturation, clip, overflow or flush is involved: the digits are lost to "
                "rounding inside the formula"
            )
        out.append(f"{r.formulation.name} raises no flag, but {' and '.join(parts)}: {why}.")
    return out


def accurate(c: Comparison) -> list[str]:
    """Rows with no flag, within 1 ULP for the loss and the gradient."""
    rows = []
    for r in _ok(c):
        if r.flags:
            continue
        g = 0.0 if r.grad_ulp_error is None else float(np.nanmax(r.grad_ulp_error))
        if r.max_ulp_error <= 1 and g <= 1:
            rows.append(r)
    if not rows:
        return []
    verb = "agrees" if len(rows) == 1 else "agree"
    return [
        f"{_names(rows)} {verb} with the exact focal loss within 1 ULP, loss and gradient, "
        f"in {c.dtype.name}."
    ]


#: The templates, in the order their sentences are given.
TEMPLATES: tuple[Callable[[Comparison], list[str]], ...] = (
    log_of_saturated,
    non_finite_otherwise,
    one_minus_p_t,
    clipped,
    vanished_otherwise,
    flushed,
    quiet_error,
    accurate,
    not_run,
)


def focal_sentences(comparison: Comparison) -> list[str]:
    """Every template's sentences for ``comparison``, in :data:`TEMPLATES` order."""
    out: list[str] = []
    for template in TEMPLATES:
        out += template(comparison)
    return out
