"""Elementwise logit-space primitives: sigmoid, log_sigmoid, softplus, logit, log1mexp.

Each works on NumPy arrays (and Python numbers), torch tensors (with an accurate
backward) and JAX arrays, and returns the input's dtype.  float16, bfloat16 and float32
are computed in float64 (within 8 float64 ULP, :data:`ELEMENTWISE_ULPS`) and rounded
once, the near-ties recomputed exactly: correctly rounded, values and torch backward
(under ``jax.jit``, within 1 ULP); float64 is computed with the bounded formulas of
:mod:`._kernels` (within 3 ULP).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from logitlab.stable import _exact, _kernels
from logitlab.stable._backend import (
    as_array,
    dtype_name,
    is_torch,
    namespace,
    torch_outside_dynamo,
    widen,
)
from logitlab.stable._rounding import relative_bound, round_once

#: Float64 ULPs within which every elementwise kernel and derivative is (each docstring in
#: :mod:`._kernels` proves 3 or fewer; a product with an incoming gradient adds 1).
ELEMENTWISE_ULPS = 8.0

__all__ = ["log1mexp", "log_sigmoid", "logit", "sigmoid", "softplus"]


def apply_elementwise(name: str, kernel: Callable[..., Any], z: Any, argument: str) -> Any:
    """Run a float64 kernel on ``z`` and round once to ``z``'s dtype, in ``z``'s namespace."""
    if is_torch(z):
        dtype_name(z, argument)
        from logitlab.stable import _torch_autograd

        return _torch_autograd.elementwise(name, z)
    xp = namespace(z)
    array = as_array(z, xp, argument)
    dtype = dtype_name(array, argument)
    if str(getattr(xp, "__name__", "")).startswith("jax"):
        from logitlab.stable import _jax_autograd

        return _jax_autograd.elementwise(name, array)
    with np.errstate(all="ignore"):
        wide = widen(array, xp)
        out = kernel(xp, wide)
        bound = relative_bound(xp, out, ELEMENTWISE_ULPS)
    return round_once(out, dtype, xp, bound, _exact.ELEMENTWISE[name][0], [wide])


@torch_outside_dynamo
def sigmoid(z: Any) -> Any:
    """The logistic function ``sigma(z) = 1 / (1 + exp(-z))``, accurate over all z.

    Formula: with ``e = exp(-|z|)`` (which never overflows), ``sigma(z) = 1 / (1 + e)``
    for ``z >= 0`` and ``e / (1 + e)`` for ``z < 0``.  Both forms keep full relative
    accuracy in the tails: no ``1 - sigma`` is ever formed, so tiny probabilities such as
    ``sigma(-100) = 3.7e-44`` are exact to the last digit rather than flushed to 0 by a
    cancellation.

    Args:
        z: logits, any shape; float16, bfloat16, float32 or float64 (NumPy, torch, JAX),
            or Python numbers (NumPy float64).

    Returns:
        ``sigma(z)``, same shape and dtype.  Correctly rounded for the narrow dtypes
        (float64 inside, one rounding, near-ties decided exactly), within 3 ULP for
        float64.  ``sigma(+-inf)`` is 1, 0.

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.sigmoid(np.array([-100.0, 0.0, 40.0]))
    array([3.72007598e-44, 5.00000000e-01, 1.00000000e+00])
    """
    return apply_elementwise("sigmoid", _kernels.sigmoid, z, "z")


@torch_outside_dynamo
def log_sigmoid(z: Any) -> Any:
    """``log sigma(z) = -softplus(-z) = min(z, 0) - log1p(exp(-|z|))``.

    The two terms have the same sign, so nothing cancels, and ``exp(-|z|) <= 1`` never
    overflows; ``log(sigmoid(z))`` instead is ``-inf`` once sigmoid underflows.
    Derivative (torch backward): ``sigma(-z)``.

    Args:
        z: logits, any shape and floating dtype.

    Returns:
        Same shape and dtype; correctly rounded (narrow dtypes) or within 3 ULP (float64).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.log_sigmoid(np.array([-800.0, 0.0, 40.0]))
    array([-8.00000000e+02, -6.93147181e-01, -4.24835426e-18])
    """
    return apply_elementwise("log_sigmoid", _kernels.log_sigmoid, z, "z")


@torch_outside_dynamo
def softplus(z: Any) -> Any:
    """``softplus(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))``.

    Both terms are non-negative, so the sum keeps full relative accuracy; no threshold
    switch to ``z`` (PyTorch's softplus returns ``z`` itself above 20, off by
    ``exp(-20)`` relative, i.e. one float64 ULP there, more below).  Derivative:
    ``sigma(z)``.

    Args:
        z: logits, any shape and floating dtype.

    Returns:
        Same shape and dtype; correctly rounded (narrow dtypes) or within 3 ULP (float64).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.softplus(np.array([-40.0, 0.0, 30.0]))
    array([4.24835426e-18, 6.93147181e-01, 3.00000000e+01])
    """
    return apply_elementwise("softplus", _kernels.softplus, z, "z")


@torch_outside_dynamo
def logit(p: Any) -> Any:
    """The inverse of sigmoid, ``logit(p) = log(p / (1 - p))``, for p in [0, 1].

    Formula, in three ranges so that no step loses digits: ``log(p / (1 - p))`` for
    ``p < 1/4``; ``log1p((2p - 1) / (1 - p))`` for ``1/4 <= p <= 3/4`` (``2p - 1`` is
    exact there and ``log1p`` keeps the small result's digits, where ``log`` of a ratio
    near 1 would not); ``-log((1 - p) / p)`` for ``p > 3/4`` (``1 - p`` is exact there).
    ``logit(0) = -inf``, ``logit(1) = inf``, NaN outside [0, 1].  Derivative:
    ``1 / (p (1 - p))``.

    Args:
        p: probabilities, any shape and floating dtype.

    Returns:
        Same shape and dtype; correctly rounded (narrow dtypes) or within 3 ULP (float64).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.logit(np.array([1e-300, 0.5, 0.75]))
    array([-690.7755279 ,    0.        ,    1.09861229])
    """
    return apply_elementwise("logit", _kernels.logit, p, "p")


@torch_outside_dynamo
def log1mexp(a: Any) -> Any:
    """``log1mexp(a) = log(1 - exp(-a))`` for ``a >= 0``.

    Formula (Maechler 2012, "Accurately computing log(1 - exp(-|a|))"):
    ``log(-expm1(-a))`` for ``a <= log 2`` and ``log1p(-exp(-a))`` for ``a > log 2``.
    The naive ``log(1 - exp(-a))`` cancels for small a (``1 - exp(-a)`` loses all digits
    below ``a = 1e-16``) and the plain ``log(-expm1(-a))`` loses them for large a.
    ``log1mexp(0) = -inf``, ``log1mexp(inf) = 0``, NaN for ``a < 0``.  This is
    ``log(1 - sigma(z))``-style arithmetic in log space: ``log(1 - p) = log1mexp(-log p)``.
    Derivative: ``1 / expm1(a)``.

    Args:
        a: non-negative values, any shape and floating dtype.

    Returns:
        Same shape and dtype; correctly rounded (narrow dtypes) or within 3 ULP (float64).

    >>> import numpy as np
    >>> from logitlab import stable
    >>> stable.log1mexp(np.array([1e-20, 0.5, 50.0]))
    array([-4.60517019e+01, -9.32752130e-01, -1.92874985e-22])
    """
    return apply_elementwise("log1mexp", _kernels.log1mexp, a, "a")
