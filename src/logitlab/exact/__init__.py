"""The exact reference: values and derivatives with respect to the logit, in mpmath.

Inputs are the binary values a framework actually received (a float32 logit ``0.1`` is
``0.100000001490116...``, not one tenth).  Each function is evaluated in mpmath at
160 bits of working precision (:data:`logitlab.core.mp.WORKING_PRECISION`).

Why 160 bits is enough: every value here is a short chain of operations (``exp``,
``log1p``, products and a sum of non-negative terms), each with a relative error of at
most a few units in the 160th bit, so the result's relative error is below ``2**-150``:
some 97 bits past float64's 53.  A final rounding to a format can only go wrong when the
exact value lies within that distance of a rounding boundary, and these transcendental
values do not: the one place where an exact value is rational (the gradient at
``z = 0``) is computed in rational arithmetic.  The one difference that can cancel, the
BCE gradient ``(1 - y) * sigma(z) - pos_weight * y * sigma(-z)``, is recomputed with more
bits until 140 bits survive the cancellation.

Softmax references (``logsumexp``, ``log_softmax``, ``softmax``, ``softmax_cross_entropy``
with PyTorch's ``cross_entropy`` semantics and its gradient) follow the same rules; see
:mod:`logitlab.exact._softmax`.

Each result can be rounded, correctly, to every format (:meth:`ExactResult.value_rounded`).
"""

from logitlab.exact._focal import binary_focal_loss, softmax_focal_loss
from logitlab.exact._loss import REDUCTIONS, ExactResult, bce_loss, elementwise, reduce
from logitlab.exact._scalar import (
    bce,
    bce_grad,
    log_sigmoid,
    log_sigmoid_grad,
    sigmoid,
    sigmoid_grad,
    softplus,
    softplus_grad,
)
from logitlab.exact._softmax import (
    log_softmax,
    logsumexp,
    softmax,
    softmax_cross_entropy,
)

__all__ = [
    "REDUCTIONS",
    "ExactResult",
    "bce",
    "bce_grad",
    "bce_loss",
    "binary_focal_loss",
    "elementwise",
    "log_sigmoid",
    "log_sigmoid_grad",
    "log_softmax",
    "logsumexp",
    "reduce",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_cross_entropy",
    "softmax_focal_loss",
    "softplus",
    "softplus_grad",
]
