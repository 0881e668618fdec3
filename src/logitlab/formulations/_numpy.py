"""NumPy code paths, written by hand as users write them, at the case's dtype.

NumPy has no autograd: these rows carry values only.  bfloat16 arrays are ``ml_dtypes``
arrays; their ufuncs compute each operation through float32 and round back to bfloat16,
which is what a NumPy user with bfloat16 data gets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logitlab.formulations._base import (
    BCEInputs,
    ElementwiseInputs,
    Formulation,
    Outcome,
    as_float64,
)

__all__ = ["FORMULATIONS", "as_dtype", "reduce"]


def as_dtype(values: np.ndarray | None, case: ElementwiseInputs) -> Any:
    """The case's float64 values as an array of its dtype (exact: they are dtype values)."""
    if values is None:
        return None
    return np.asarray(values, dtype=np.float64).astype(case.dtype.numpy_dtype)


def reduce(loss: Any, reduction: str) -> Any:
    if reduction == "mean":
        return np.mean(loss, dtype=loss.dtype)
    if reduction == "sum":
        return np.sum(loss, dtype=loss.dtype)
    return loss


def _naive(case: BCEInputs) -> Outcome:
    z = as_dtype(case.logits, case)
    y = as_dtype(case.targets, case)
    one = np.ones((), dtype=z.dtype)
    with np.errstate(all="ignore"):
        p = one / (one + np.exp(-z))
        positive = y * np.log(p)
        if case.pos_weight is not None:
            positive = as_dtype(case.pos_weight, case) * positive
        loss = -(positive + (one - y) * np.log(one - p))
        if case.weight is not None:
            loss = as_dtype(case.weight, case) * loss
        value = reduce(loss, case.reduction)
    return Outcome(value=as_float64(value), probabilities=as_float64(p))


def _logits(case: BCEInputs) -> Outcome:
    z = as_dtype(case.logits, case)
    y = as_dtype(case.targets, case)
    one = np.ones((), dtype=z.dtype)
    zero = np.zeros((), dtype=z.dtype)
    with np.errstate(all="ignore"):
        # -log(sigma(z)) = max(-z, 0) + log1p(exp(-|z|)); TensorFlow's stable formula
        softplus_neg = np.maximum(-z, zero) + np.log1p(np.exp(-np.abs(z)))
        if case.pos_weight is None:
            # (1 - y) z + softplus(-z) = max(z, 0) - z y + log1p(exp(-|z|))
            loss = np.maximum(z, zero) - z * y + np.log1p(np.exp(-np.abs(z)))
        else:
            pw = as_dtype(case.pos_weight, case)
            loss = (one - y) * z + (one + (pw - one) * y) * softplus_neg
        if case.weight is not None:
            loss = as_dtype(case.weight, case) * loss
        value = reduce(loss, case.reduction)
    return Outcome(value=as_float64(value))


def _elementwise(name: str) -> Any:
    def compute(case: ElementwiseInputs) -> Outcome:
        z = as_dtype(case.logits, case)
        one = np.ones((), dtype=z.dtype)
        zero = np.zeros((), dtype=z.dtype)
        with np.errstate(all="ignore"):
            if name == "sigmoid":
                out = one / (one + np.exp(-z))
                return Outcome(value=as_float64(out), probabilities=as_float64(out))
            out = -np.logaddexp(zero, -z) if name == "log_sigmoid" else np.logaddexp(zero, z)
        return Outcome(value=as_float64(out))

    return compute


def _code(case: BCEInputs) -> str:
    return "-(y*np.log(1/(1+np.exp(-z))) + (1-y)*np.log(1-1/(1+np.exp(-z))))"


FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="numpy.naive",
        framework="numpy",
        quantity="bce",
        via_probabilities=True,
        code="p = 1/(1+np.exp(-z)); -(y*np.log(p) + (1-y)*np.log(1-p))",
        summary="BCE written out in NumPy on the probabilities, no clamp, no autograd",
        compute=_naive,
        requires=("numpy",),
    ),
    Formulation(
        name="numpy.logits",
        framework="numpy",
        quantity="bce",
        via_probabilities=False,
        code="np.maximum(z, 0) - z*y + np.log1p(np.exp(-np.abs(z)))",
        summary="the usual stable logits formula (TensorFlow's), hand-written in NumPy",
        compute=_logits,
        requires=("numpy",),
    ),
    Formulation(
        name="numpy.sigmoid",
        framework="numpy",
        quantity="sigmoid",
        via_probabilities=True,
        code="1/(1+np.exp(-z))",
        summary="sigmoid written out in NumPy",
        compute=_elementwise("sigmoid"),
        requires=("numpy",),
    ),
    Formulation(
        name="numpy.log_sigmoid",
        framework="numpy",
        quantity="log_sigmoid",
        via_probabilities=False,
        code="-np.logaddexp(0, -z)",
        summary="log-sigmoid through NumPy's logaddexp",
        compute=_elementwise("log_sigmoid"),
        requires=("numpy",),
    ),
    Formulation(
        name="numpy.softplus",
        framework="numpy",
        quantity="softplus",
        via_probabilities=False,
        code="np.logaddexp(0, z)",
        summary="softplus through NumPy's logaddexp",
        compute=_elementwise("softplus"),
        requires=("numpy",),
    ),
)
