"""SciPy's ``expit`` and ``log_expit``.

SciPy's ufuncs have float32, float64 and long double loops: float16 and bfloat16 input
is silently computed and returned in float64 (the audit reports the upcast).  No autograd.
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
from logitlab.formulations._numpy import as_dtype, reduce

__all__ = ["FORMULATIONS"]


def _bce(case: BCEInputs) -> Outcome:
    from scipy.special import log_expit

    z = as_dtype(case.logits, case)
    y = as_dtype(case.targets, case)
    with np.errstate(all="ignore"):
        # log(1 - sigmoid(z)) = log_sigmoid(-z)
        positive = y * log_expit(z)
        if case.pos_weight is not None:
            positive = as_dtype(case.pos_weight, case) * positive
        loss = -(positive + (1 - y) * log_expit(-z))
        if case.weight is not None:
            loss = as_dtype(case.weight, case) * loss
        value = reduce(loss, case.reduction)
    return Outcome(value=as_float64(value))


def _elementwise(name: str) -> Any:
    def compute(case: ElementwiseInputs) -> Outcome:
        from scipy.special import expit, log_expit

        z = as_dtype(case.logits, case)
        with np.errstate(all="ignore"):
            if name == "sigmoid":
                out = expit(z)
                return Outcome(value=as_float64(out), probabilities=as_float64(out))
            return Outcome(value=as_float64(log_expit(z)))

    return compute


FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="scipy.log_expit",
        framework="scipy",
        quantity="bce",
        via_probabilities=False,
        code="-(y*log_expit(z) + (1-y)*log_expit(-z))",
        summary="BCE from scipy.special.log_expit (no autograd)",
        compute=_bce,
        requires=("scipy",),
        extra="scipy",
    ),
    Formulation(
        name="scipy.expit",
        framework="scipy",
        quantity="sigmoid",
        via_probabilities=True,
        code="scipy.special.expit(z)",
        summary="SciPy's sigmoid",
        compute=_elementwise("sigmoid"),
        requires=("scipy",),
        extra="scipy",
    ),
    Formulation(
        name="scipy.log_sigmoid",
        framework="scipy",
        quantity="log_sigmoid",
        via_probabilities=False,
        code="scipy.special.log_expit(z)",
        summary="SciPy's log-sigmoid",
        compute=_elementwise("log_sigmoid"),
        requires=("scipy",),
        extra="scipy",
    ),
)
