"""A per-thread mpmath context, so exact computations are safe under a threaded server."""

from __future__ import annotations

import threading
from typing import Any

import mpmath

__all__ = ["WORKING_PRECISION", "mp_context"]

#: Bits of working precision for exact values; see :mod:`logitlab.exact` for why it is enough.
WORKING_PRECISION = 160

_local = threading.local()


def mp_context() -> Any:
    """This thread's mpmath context, created at :data:`WORKING_PRECISION` bits.

    Code that raises its precision (the adaptive gradients) restores it in a ``finally``;
    functions called meanwhile see the raised precision, which is the point.
    """
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = mpmath.MPContext()
        ctx.prec = WORKING_PRECISION
        _local.ctx = ctx
    return ctx
