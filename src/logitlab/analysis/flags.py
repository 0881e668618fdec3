"""The one classifier: which flags hold for each element, for the loss and for the gradient.

Every surface (compare, the audit's counts and breakpoints, the explorer's flag bands, the
explanations, ``watch``) reads flags from :func:`classify` and nowhere else.  A flag is
decided per element from that element's own result and exact value, and only for terms
that count: a clamp on an element whose weight is 0 changes nothing and is not flagged.
Flags of a row are the union over its elements, kept apart for the loss and the gradient.

Definitions (``p`` the probability the path went through, ``w`` the element's weight, 1
without weights; *exact* is the exact value correctly rounded to the dtype):

=====================  =========  =================================================================
flag                   side       holds where
=====================  =========  =================================================================
sigmoid saturated      both       ``p`` is exactly 0 or 1 (softmax: a class probability is) for a
                                  finite logit, and ``w != 0`` (at an infinite logit 0 and 1 are
                                  exact)
probability clipped    loss       the framework clipped ``p`` to ``[eps, 1 - eps]`` in a term
                                  with a non-zero coefficient, and ``w != 0``
log clamped            loss       PyTorch's ``log >= -100`` clamp replaced a log in a term with
                                  a non-zero coefficient, and ``w != 0``
gradient clamped       gradient   the backward's ``max(p(1 - p), 1e-12)`` changed the gradient,
                                  and ``w != 0``
gradient vanished      gradient   the gradient is exactly 0 where the exact one is not (and no
                                  flush explains it)
subnormal flushed      both       the result is 0 where the exact one is a non-zero subnormal of
                                  the dtype, and the framework flushes subnormal results to zero
                                  (XLA does: ``Formulation.flushes_subnormals``)
non-finite             both       NaN or an infinity where the exact value is finite
NaN                    both       NaN where the exact value is an infinity (an infinite logit)
=====================  =========  =================================================================

Softmax cross-entropy (``coefficients`` given): an element is a row ``n`` of the ``(N, C)``
logits; ``q_nc`` is how much class ``c``'s ``-log p_nc`` counts in that row's loss (target,
label smoothing and class weight: :attr:`logitlab.core.inputs.SoftmaxCase.coefficients`),
and a class "is needed" where ``q_nc != 0``.  A row's gradient flags hold where any of
its ``C`` gradient entries' does.  These replace ``sigmoid saturated`` for softmax rows:

=====================  =========  =================================================================
flag                   side       holds for row ``n`` where
=====================  =========  =================================================================
softmax underflow      both       the path's softmax gave ``p_nc == 0`` for a needed class whose
                                  logit is finite (and no logit of the row is ``+inf``): the
                                  exact probability is positive, the rounded one is not (not
                                  for a double softmax, whose probabilities feed a softmax)
log of 0               loss       the loss is ``+inf`` where the exact loss is finite, and the
                                  path's softmax gave ``p_nc == 0`` for a needed class: the
                                  infinity is ``-log(0)``
masked NaN             both       the row has a ``-inf`` (masked) logit, and the loss (a gradient
                                  entry) is NaN where the exact one is not NaN (a fully masked
                                  row is undefined, NaN, exactly, and is not flagged)
double softmax         both       the path applies softmax to a softmax's output
                                  (``Formulation.double_softmax``) and the row counts (some
                                  ``q_nc != 0``): its loss is that of ``softmax(p)``, not of ``z``
=====================  =========  =================================================================

``probability clipped`` and ``log clamped`` count only at needed classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from logitlab.core.formats import FloatFormat

if TYPE_CHECKING:
    from logitlab.formulations.run import RunResult

__all__ = [
    "FLAGS",
    "GRAD_FLAGS",
    "LOSS_FLAGS",
    "ElementFlags",
    "classify",
    "classify_run",
    "ordered",
]

#: Every flag and what it means, in the order flags are shown.
FLAGS: dict[str, str] = {
    "sigmoid saturated": (
        "sigmoid (or softmax) rounded to exactly 0 or 1, so log(p) or log(1 - p) is log 0 or the "
        "loss loses every digit"
    ),
    "softmax underflow": (
        "softmax rounded a class probability the loss needs to exactly 0 (its logit is finite)"
    ),
    "log of 0": (
        "the loss is +inf from log(0) of an underflowed probability; the exact loss is finite"
    ),
    "masked NaN": (
        "a NaN in a row with a -inf (masked) logit where the exact value is defined: "
        "0 * log 0 or -inf - (-inf) inside the code path"
    ),
    "double softmax": (
        "softmax applied to probabilities: the loss is computed from softmax(softmax(z)), "
        "not from the logits"
    ),
    "probability clipped": "the framework clipped the probability to [eps, 1 - eps]",
    "log clamped": "PyTorch's binary_cross_entropy clamped a log at -100",
    "gradient clamped": (
        "PyTorch's binary_cross_entropy backward divided by max(p(1 - p), 1e-12), not p(1 - p), "
        "shrinking the gradient"
    ),
    "gradient vanished": "a zero gradient where the exact one, rounded to the dtype, is not",
    "subnormal flushed": "a zero where the exact result is a subnormal of the dtype",
    "non-finite": "a NaN or infinity where the exact value is finite",
    "NaN": "a NaN where the exact value is infinite",
}
#: The flags that can hold for a loss value, and for a gradient.
LOSS_FLAGS = (
    "sigmoid saturated",
    "softmax underflow",
    "log of 0",
    "masked NaN",
    "double softmax",
    "probability clipped",
    "log clamped",
    "subnormal flushed",
    "non-finite",
    "NaN",
)
GRAD_FLAGS = (
    "sigmoid saturated",
    "softmax underflow",
    "masked NaN",
    "double softmax",
    "gradient clamped",
    "gradient vanished",
    "subnormal flushed",
    "non-finite",
    "NaN",
)


def ordered(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without duplicates, in :data:`FLAGS` order."""
    present = set(names)
    return tuple(n for n in FLAGS if n in present)


@dataclass(frozen=True)
class ElementFlags:
    """Boolean masks, one per flag, over the elements (the logits' shape for elementwise
    quantities and BCE; one element per row for softmax cross-entropy)."""

    loss: dict[str, np.ndarray]
    grad: dict[str, np.ndarray]
    shape: tuple[int, ...]

    def _union(self, masks: dict[str, np.ndarray]) -> tuple[str, ...]:
        return tuple(name for name, m in masks.items() if m.any())

    @property
    def loss_flags(self) -> tuple[str, ...]:
        """Flags that hold for the loss of at least one element."""
        return self._union(self.loss)

    @property
    def grad_flags(self) -> tuple[str, ...]:
        """Flags that hold for the gradient of at least one element."""
        return self._union(self.grad)

    @property
    def flags(self) -> tuple[str, ...]:
        """The union over elements and both sides, in :data:`FLAGS` order."""
        return ordered((*self.loss_flags, *self.grad_flags))

    def any(self, name: str) -> np.ndarray:
        """Where ``name`` holds for the loss or the gradient."""
        out = np.zeros(self.shape, dtype=bool)
        for side in (self.loss, self.grad):
            if name in side:
                out |= side[name]
        return out

    def per_element(self, side: str = "both") -> tuple[tuple[str, ...], ...]:
        """The flags of each element (flat), for ``"loss"``, ``"gradient"`` or ``"both"``."""
        masks: dict[str, np.ndarray]
        if side == "loss":
            masks = self.loss
        elif side == "gradient":
            masks = self.grad
        else:
            masks = {name: self.any(name) for name in ordered((*self.loss, *self.grad))}
        flat = {name: m.ravel() for name, m in masks.items()}
        n = int(np.prod(self.shape, dtype=np.int64))
        return tuple(tuple(name for name, m in flat.items() if m[i]) for i in range(n))

    def counts(self) -> dict[str, int]:
        """How many elements each flag holds for (loss or gradient), every flag listed."""
        return {name: int(np.count_nonzero(self.any(name))) for name in FLAGS}


def _flat(a: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, dtype=np.float64), shape)


def _finite_checks(
    computed: np.ndarray, exact: np.ndarray, fmt: FloatFormat, flushes: bool
) -> dict[str, np.ndarray]:
    exact_finite = np.isfinite(exact)
    subnormal = (exact != 0) & (np.abs(exact) < fmt.smallest_normal) & exact_finite
    flushed = (computed == 0) & subnormal & flushes
    return {
        "flushed": flushed,
        "non-finite": ~np.isfinite(computed) & exact_finite,
        "NaN": np.isnan(computed) & np.isinf(exact),
    }


def classify(
    fmt: FloatFormat,
    *,
    value: Any,
    exact_value: Any,
    grad: Any = None,
    exact_grad: Any = None,
    probabilities: Any = None,
    clamped: Any = None,
    grad_clamped: Any = None,
    clipped: Any = None,
    weight: Any = None,
    logits: Any = None,
    flushes: bool = False,
    coefficients: Any = None,
    double_softmax: bool = False,
) -> ElementFlags:
    """Flag every element; see the module docstring for each flag's definition.

    ``value`` and ``exact_value`` are per element (for a reduced loss, the framework's
    unreduced values: a reduced value cannot say which element went wrong); ``grad`` and
    ``exact_grad`` are the gradient as returned and exact, in the logits' shape.  Exact
    values are correctly rounded to ``fmt`` (float64 arrays).  For softmax rows
    (``probabilities`` and ``grad`` of shape ``(N, C)`` with ``value`` of shape ``(N,)``)
    the class axis is folded: a row is flagged when any of its classes is.  ``logits``
    (the inputs, shaped like ``probabilities``) tell a rounded 0 or 1 from an exact one at
    an infinite logit; ``flushes`` says the framework flushes subnormal results to zero.
    ``coefficients`` (``(N, C)``, softmax cross-entropy only, with ``logits`` ``(N, C)``)
    switches on the softmax flags (module docstring) and replaces ``weight``;
    ``double_softmax`` says the path applies softmax twice.
    """
    if coefficients is not None:
        return _classify_softmax(
            fmt,
            value=value,
            exact_value=exact_value,
            grad=grad,
            exact_grad=exact_grad,
            probabilities=probabilities,
            clamped=clamped,
            grad_clamped=grad_clamped,
            clipped=clipped,
            logits=logits,
            flushes=flushes,
            coefficients=coefficients,
            double_softmax=double_softmax,
        )
    v = np.asarray(value, dtype=np.float64)
    shape = v.shape
    ev = _flat(exact_value, shape)

    def fold(a: Any) -> np.ndarray | None:
        if a is None:
            return None
        m = np.asarray(a, dtype=bool)
        if m.shape != shape and m.ndim == len(shape) + 1:
            m = np.asarray(m.any(axis=-1), dtype=bool)
        return np.broadcast_to(m, shape)

    counts = np.ones(shape, dtype=bool) if weight is None else _flat(weight, shape) != 0
    saturated = np.zeros(shape, dtype=bool)
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=np.float64)
        rounded: np.ndarray = (p == 0) | (p == 1)
        if logits is not None and np.shape(logits) == p.shape:
            rounded = rounded & np.isfinite(np.asarray(logits, dtype=np.float64))
        hit = fold(rounded)
        assert hit is not None
        saturated = hit & counts
    loss: dict[str, np.ndarray] = {"sigmoid saturated": saturated}
    for name, mask in (("probability clipped", clipped), ("log clamped", clamped)):
        m = fold(mask)
        loss[name] = np.zeros(shape, dtype=bool) if m is None else m & counts
    with np.errstate(invalid="ignore"):
        checks = _finite_checks(v, ev, fmt, flushes)
    loss["subnormal flushed"] = checks["flushed"]
    loss["non-finite"] = checks["non-finite"]
    loss["NaN"] = checks["NaN"]
    grads: dict[str, np.ndarray] = {}
    if grad is not None and exact_grad is not None:
        g = np.asarray(grad, dtype=np.float64)
        eg = np.broadcast_to(np.asarray(exact_grad, dtype=np.float64), g.shape)
        with np.errstate(invalid="ignore"):
            gchecks = _finite_checks(g, eg, fmt, flushes)
        vanished = (g == 0) & (eg != 0) & ~np.isnan(eg) & ~gchecks["flushed"]
        gc = fold(grad_clamped)
        grads = {
            "sigmoid saturated": saturated,
            "gradient clamped": np.zeros(shape, dtype=bool) if gc is None else gc & counts,
            "gradient vanished": _fold_to(vanished, shape),
            "subnormal flushed": _fold_to(gchecks["flushed"], shape),
            "non-finite": _fold_to(gchecks["non-finite"], shape),
            "NaN": _fold_to(gchecks["NaN"], shape),
        }
    return ElementFlags(loss, grads, shape)


def classify_run(
    result: RunResult,
    *,
    value: Any,
    exact_value: Any,
    grad: Any = None,
    exact_grad: Any = None,
    logits: Any = None,
    weight: Any = None,
    coefficients: Any = None,
) -> ElementFlags:
    """:func:`classify` for one :func:`~logitlab.formulations.run.run`: the format and the
    diagnostics (probabilities, clamps, clips, whether the framework flushes subnormals)
    come from the run; the other arguments are as for :func:`classify` (the caller shapes
    them)."""
    return classify(
        result.dtype,
        value=value,
        exact_value=exact_value,
        grad=grad,
        exact_grad=exact_grad,
        probabilities=result.probabilities,
        clamped=result.clamped,
        grad_clamped=result.grad_clamped,
        clipped=result.clipped,
        weight=weight,
        logits=logits,
        flushes=result.formulation.flushes_subnormals,
        coefficients=coefficients,
        double_softmax=result.formulation.double_softmax,
    )


def _classify_softmax(
    fmt: FloatFormat,
    *,
    value: Any,
    exact_value: Any,
    grad: Any,
    exact_grad: Any,
    probabilities: Any,
    clamped: Any,
    grad_clamped: Any,
    clipped: Any,
    logits: Any,
    flushes: bool,
    coefficients: Any,
    double_softmax: bool,
) -> ElementFlags:
    """The softmax cross-entropy rows' flags (see the module docstring)."""
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    shape = v.shape
    ev = _flat(np.asarray(exact_value, dtype=np.float64).reshape(-1), shape)
    q = np.asarray(coefficients, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64).reshape(q.shape)
    needed = q != 0
    counts = needed.any(axis=1)
    masked_row = (z == -np.inf).any(axis=1)
    plus_inf_row = (z == np.inf).any(axis=1)
    none = np.zeros(shape, dtype=bool)

    def needed_any(mask: Any) -> np.ndarray:
        if mask is None:
            return none
        m = np.asarray(mask, dtype=bool).reshape(q.shape)
        return np.asarray((m & needed).any(axis=1), dtype=bool)

    zero_p = np.zeros(q.shape, dtype=bool)
    if probabilities is not None:
        zero_p = np.asarray(probabilities, dtype=np.float64).reshape(q.shape) == 0
    # A double softmax's probabilities feed its second softmax, not a log.
    underflow = needed_any(zero_p & np.isfinite(z)) & ~plus_inf_row & (not double_softmax)
    twice = counts & bool(double_softmax)
    with np.errstate(invalid="ignore"):
        checks = _finite_checks(v, ev, fmt, flushes)
    loss: dict[str, np.ndarray] = {
        "softmax underflow": underflow,
        "log of 0": (v == np.inf) & np.isfinite(ev) & needed_any(zero_p),
        "masked NaN": np.isnan(v) & ~np.isnan(ev) & masked_row,
        "double softmax": twice,
        "probability clipped": needed_any(clipped),
        "log clamped": needed_any(clamped),
        "subnormal flushed": checks["flushed"],
        "non-finite": checks["non-finite"],
        "NaN": checks["NaN"],
    }
    grads: dict[str, np.ndarray] = {}
    if grad is not None and exact_grad is not None:
        g = np.asarray(grad, dtype=np.float64).reshape(q.shape)
        eg = np.broadcast_to(np.asarray(exact_grad, dtype=np.float64).reshape(q.shape), g.shape)
        with np.errstate(invalid="ignore"):
            gchecks = _finite_checks(g, eg, fmt, flushes)
        vanished = (g == 0) & (eg != 0) & ~np.isnan(eg) & ~gchecks["flushed"]
        gc = none if grad_clamped is None else needed_any(grad_clamped)
        grads = {
            "softmax underflow": underflow,
            "masked NaN": (np.isnan(g) & ~np.isnan(eg)).any(axis=1) & masked_row,
            "double softmax": twice,
            "gradient clamped": gc,
            "gradient vanished": np.asarray(vanished.any(axis=1)),
            "subnormal flushed": np.asarray(gchecks["flushed"].any(axis=1)),
            "non-finite": np.asarray(gchecks["non-finite"].any(axis=1)),
            "NaN": np.asarray(gchecks["NaN"].any(axis=1)),
        }
    return ElementFlags(loss, grads, shape)


def _fold_to(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return mask.any(axis=-1).reshape(shape)
