"""Correct rounding of float64 results into float16, bfloat16 and float32.

A float64 result ``v`` is within a known bound ``E`` of the exact value ``x``.  Rounding
``v`` once to a narrow format gives the correctly rounded ``x`` unless a *midpoint* of the
narrow format (a value halfway between two neighbours) lies within ``E`` of ``v``: then
``v`` and ``x`` may sit on opposite sides of it, or ``v`` may land exactly on it and be
sent the wrong way by round-to-even.  :func:`round_once` detects those elements with one
test (``round(v - E) != round(v + E)``) and recomputes them exactly with mpmath, so the
direction of every such near-tie is decided from the exact value.  They are rare: an
element is flagged with probability about ``2 E / ulp``, ``2**-40`` or less for float32
(some 123 bfloat16 inputs of the elementwise functions, whose float64 values land exactly
on a midpoint, are the typical case).

Under ``jax.jit`` there are no concrete values to recompute; there the plain float64
rounding is used (within 1 ULP, correctly rounded except at such near-ties).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from logitlab.stable._backend import is_torch, to_dtype

__all__ = ["UNIT", "relative_bound", "round_once"]

#: The float64 unit roundoff, 2**-53.
UNIT = 2.0**-53

# An absolute floor on every bound: float64 results below 2**-1000 (subnormal exp tails)
# lose relative accuracy, but every narrow format rounds them to 0 or its smallest
# subnormal the same way whatever their last bits (float32's smallest is 2**-149).
_FLOOR = 2.0**-1000


def relative_bound(xp: Any, v: Any, ulps: float) -> Any:
    """``ulps`` float64 ULPs of ``|v|`` (plus a tiny absolute floor), as an error bound."""
    return xp.abs(v) * (ulps * UNIT) + _FLOOR


def _flagged(xp: Any, v: Any, bound: Any, name: str) -> Any:
    with np.errstate(all="ignore"):
        low = to_dtype(v - bound, name, xp)
        high = to_dtype(v + bound, name, xp)
        return (low != high) & xp.isfinite(v)


def round_once(
    v: Any,
    name: str,
    xp: Any,
    bound: Any,
    exact: Callable[..., Any],
    args: Sequence[Any],
) -> Any:
    """``v`` (float64, within ``bound`` of exact) rounded correctly to the dtype ``name``.

    ``args`` are float64 arrays broadcastable to ``v``'s shape; ``exact(*floats)`` gives
    the exact value (an mpmath number) of one element from its arguments as Python floats.
    float64 results, and float32 JAX results computed without x64, are returned as they are.
    """
    if name == "float64" or str(v.dtype).removeprefix("torch.") != "float64":
        return to_dtype(v, name, xp)
    flagged = _flagged(xp, v, bound, name)
    try:
        any_flagged = bool(xp.any(flagged))
    except Exception:  # a JAX tracer under jit: no concrete values to recompute
        return to_dtype(v, name, xp)
    if any_flagged:
        plain = is_torch(v) or isinstance(v, np.ndarray)
        v = _patched(v, flagged, name, exact, args)
        v = v if plain else xp.asarray(v)
    return to_dtype(v, name, xp)


def _as_numpy(a: Any) -> np.ndarray:
    if is_torch(a):
        t = a.detach().cpu()
        return np.asarray((t.double() if t.dtype.is_floating_point else t).numpy())
    return np.asarray(a)


def _patched(
    v: Any, flagged: Any, name: str, exact: Callable[..., Any], args: Sequence[Any]
) -> Any:
    from logitlab.core.ulp import round_to_format

    shape = tuple(int(n) for n in v.shape)
    index = np.flatnonzero(_as_numpy(flagged).reshape(-1))
    picked = [
        np.broadcast_to(_as_numpy(a).astype(np.float64), shape).reshape(-1)[index] for a in args
    ]
    values = np.array(
        [round_to_format(exact(*(float(p[i]) for p in picked)), name) for i in range(len(index))],
        dtype=np.float64,
    )
    if is_torch(v):
        import torch

        out = v.reshape(-1).clone()
        out[torch.as_tensor(index, device=v.device)] = torch.as_tensor(values, device=v.device)
        return out.reshape(shape)
    out_np = np.array(_as_numpy(v), dtype=np.float64).reshape(-1)
    out_np[index] = values
    return out_np.reshape(shape)
