"""Exact losses over arrays: elementwise values, reductions and gradients."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from logitlab.core.formats import FloatFormat, get_format
from logitlab.core.mp import mp_context
from logitlab.core.ulp import round_to_format
from logitlab.exact import _scalar

__all__ = ["REDUCTIONS", "ExactResult", "bce_loss", "elementwise", "reduce"]

REDUCTIONS = ("none", "mean", "sum")

Mpf = Any


@dataclass(frozen=True)
class ExactResult:
    """Exact values and gradients of a (possibly reduced) function of an array of logits.

    ``values`` holds one exact value per output element (one for ``mean``/``sum``, one per
    logit for ``none``), ``grads`` one exact derivative per logit: ``d out / d z_i`` of the
    reduced output, or the elementwise derivative ``d out_i / d z_i`` for ``none`` (what
    ``backward(ones)`` computes).  Both are flat tuples of ``mpf``; ``shape`` is the shape
    of the output.
    """

    values: tuple[Mpf, ...]
    grads: tuple[Mpf, ...]
    shape: tuple[int, ...]
    grad_shape: tuple[int, ...]

    def value_rounded(self, dtype: str | FloatFormat) -> np.ndarray:
        """The exact values correctly rounded to ``dtype`` (as float64), in ``shape``."""
        fmt = get_format(dtype)
        return np.array([round_to_format(v, fmt) for v in self.values]).reshape(self.shape)

    def grad_rounded(self, dtype: str | FloatFormat) -> np.ndarray:
        fmt = get_format(dtype)
        return np.array([round_to_format(g, fmt) for g in self.grads]).reshape(self.grad_shape)

    def value_float64(self) -> np.ndarray:
        return self.value_rounded("float64")

    def grad_float64(self) -> np.ndarray:
        return self.grad_rounded("float64")


def _reduce(
    elements: Sequence[Mpf], grads: Sequence[Mpf], shape: tuple[int, ...], reduction: str
) -> ExactResult:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    ctx = mp_context()
    if reduction == "none":
        return ExactResult(tuple(elements), tuple(grads), shape, shape)
    total = ctx.fsum(elements)
    if reduction == "sum":
        return ExactResult((total,), tuple(grads), (), shape)
    n = len(elements)
    return ExactResult((total / n,), tuple(g / n for g in grads), (), shape)


def reduce(result: ExactResult, reduction: str) -> ExactResult:
    """An unreduced result (``reduction="none"``) reduced as PyTorch reduces: ``sum`` adds
    the elements (exactly, ``fsum``), ``mean`` divides that sum and each gradient by the
    number of elements.

    >>> r = reduce(bce_loss([0.0, 0.0], [0.5, 0.5], reduction="none"), "sum")
    >>> r.shape, round(float(r.values[0]), 15)
    ((), 1.386294361119891)
    """
    if result.shape != result.grad_shape:
        raise ValueError("reduce takes an unreduced result (reduction='none')")
    return _reduce(result.values, result.grads, result.shape, reduction)


def elementwise(
    function: Callable[[float], Mpf],
    derivative: Callable[[float], Mpf],
    z: Any,
    reduction: str = "none",
) -> ExactResult:
    """Exact ``function`` and ``derivative`` applied to every element of ``z``, then reduced."""
    zs = np.asarray(z, dtype=np.float64)
    flat = [float(v) for v in zs.ravel()]
    return _reduce([function(v) for v in flat], [derivative(v) for v in flat], zs.shape, reduction)


def bce_loss(
    logits: Any,
    targets: Any,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> ExactResult:
    """Exact binary cross-entropy with logits, PyTorch's semantics, and its gradient.

    ``loss_i = w_i * (p_i * y_i * softplus(-z_i) + (1 - y_i) * softplus(z_i))`` with
    ``w = weight`` and ``p = pos_weight`` broadcast to the logits' shape (1 where absent);
    ``mean`` divides the sum by the number of elements, as PyTorch does (not by the sum of
    the weights).  Inputs are float arrays holding the values the framework received.

    >>> import numpy as np
    >>> r = bce_loss([-2.0, 2.0], np.float32([0.3, 0.7]))  # the targets torch receives
    >>> float(r.values[0])
    0.7269280348848304
    >>> r.grad_rounded("float32")
    array([-0.09039854,  0.09039854])
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    w = np.ones(()) if weight is None else np.asarray(weight, dtype=np.float64)
    p = np.ones(()) if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    shape = np.broadcast_shapes(z.shape, y.shape, w.shape, p.shape)
    z, y, w, p = (np.broadcast_to(a, shape).ravel() for a in (z, y, w, p))
    args = [(float(a), float(b), float(c), float(d)) for a, b, c, d in zip(z, y, w, p)]
    elements = [_scalar.bce(*a) for a in args]
    grads = [_scalar.bce_grad(*a) for a in args]
    return _reduce(elements, grads, shape, reduction)
