"""Logit-space functions more accurate than the frameworks' own.

Framework-neutral through the array API: the backend is picked from the input's type
(NumPy arrays and Python numbers, torch tensors with autograd, JAX arrays) and a
framework the caller did not load is never imported.  float16, bfloat16 and float32 are
computed in float64 and rounded once; for the elementwise functions, BCE and the focal loss
the elements whose float64 value lies within its error bound of a midpoint of the narrow
format are recomputed exactly, so those results are correctly rounded (:mod:`._rounding`).
float64 uses formulas with bounded error.  Each function's docstring gives its formula,
why it is stable, and its error bound.
"""

from logitlab.stable._binary import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
)
from logitlab.stable._compile import get_torch_compile, set_torch_compile
from logitlab.stable._focal import (
    binary_focal_loss_with_logits,
    binary_focal_loss_with_logits_grad,
)
from logitlab.stable._primitives import log1mexp, log_sigmoid, logit, sigmoid, softplus
from logitlab.stable._softmax import (
    log_softmax,
    logsumexp,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
)

__all__ = [
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "binary_focal_loss_with_logits",
    "binary_focal_loss_with_logits_grad",
    "get_torch_compile",
    "log1mexp",
    "log_sigmoid",
    "log_softmax",
    "logit",
    "logsumexp",
    "set_torch_compile",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softplus",
]
