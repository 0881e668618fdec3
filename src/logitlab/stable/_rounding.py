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

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from logitlab.stable._backend import is_torch, to_dtype

__all__ = ["TAIL_LIMIT", "UNIT", "fix_flagged", "relative_bound", "round_once"]

#: The largest |z| whose tail exp(-|z|) a near-tie is decided by (some 3,200 bits of
#: mpmath).  A 16-bit result that sits exactly on a midpoint up to a tail below
#: exp(-2048) (logits beyond 2048, where float16/bfloat16 values are integers or coarser)
#: is rounded to even instead: within 0.5 ULP, but not always the correctly rounded one.
TAIL_LIMIT = 2048.0

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


def _exact_rounded(
    name: str, exact: Callable[..., Any], picked: list[np.ndarray], count: int
) -> np.ndarray:
    from logitlab.core.mp import WORKING_PRECISION
    from logitlab.core.ulp import round_decided

    out = np.empty(count)
    for i in range(count):
        floats = [float(p[i]) for p in picked]
        if any(math.isnan(f) for f in floats):
            out[i] = math.nan
            continue
        # A near-tie can hinge on a tail exp(-|z|) below the value's last bit (the focal
        # loss 0.75 z (1 - 2 exp(-z)) at z = 111 sits 2**-160 below a float16 midpoint):
        # the precision is raised until the rounding is decided, up to |z| / log 2 bits
        # (and a margin) more than the working precision, for |z| up to TAIL_LIMIT.
        largest = max((abs(f) for f in floats if math.isfinite(f)), default=0.0)
        cap = WORKING_PRECISION + 64 + int(min(largest, TAIL_LIMIT) / math.log(2)) + 1
        # A tiny argument's Taylor tail lies about x**2 below the value (sigma(z) - 1/2 =
        # z/4 - z**3/48: the bfloat16 gradient at z = -4.68e-38, y = 1/2 is a midpoint
        # decided 2**-251 relative away), so twice its binary exponent more bits.
        tiny = min((abs(f) for f in floats if f != 0 and math.isfinite(f)), default=1.0)
        cap += 2 * max(0, -math.frexp(tiny)[1])
        out[i] = round_decided(
            functools.partial(exact, *floats), name, start_bits=WORKING_PRECISION, max_bits=cap
        )
    return out


def fix_flagged(
    r: Any, flagged: Any, name: str, exact: Callable[..., Any], args: Sequence[Any]
) -> Any:
    """The narrow result ``r`` with its ``flagged`` elements replaced by the exact value
    correctly rounded (``exact`` and ``args`` as for :func:`round_once`)."""
    shape = tuple(int(n) for n in r.shape)
    index = np.flatnonzero(_as_numpy(flagged).reshape(-1))
    picked = [_pick(a, shape, index) for a in args]
    values = _exact_rounded(name, exact, picked, len(index))
    if is_torch(r):
        import torch

        out = r.reshape(-1).clone()
        where = torch.as_tensor(index, device=r.device)
        out[where] = torch.as_tensor(values, device=r.device).to(r.dtype)
        return out.reshape(shape)
    out_np = np.array(r).reshape(-1)
    out_np[index] = values.astype(out_np.dtype)
    return out_np.reshape(shape)


def _pick(a: Any, shape: tuple[int, ...], index: np.ndarray) -> np.ndarray:
    """``a`` broadcast to ``shape``, flattened, at ``index``: as float64, gathering first
    (only the flagged elements are converted)."""
    size = int(np.prod(shape))
    count = int(np.prod(tuple(int(n) for n in getattr(a, "shape", ()))))
    if count == 1:
        return np.full(len(index), float(_as_numpy(a).reshape(-1)[0]))
    if is_torch(a):
        import torch

        flat = a.reshape(-1) if count == size else a.broadcast_to(shape).reshape(-1)
        return _as_numpy(flat[torch.as_tensor(index, device=a.device)]).astype(np.float64)
    flat_np = np.asarray(a).reshape(-1) if count == size else np.broadcast_to(a, shape).reshape(-1)
    return np.asarray(flat_np[index], dtype=np.float64)


def _as_numpy(a: Any) -> np.ndarray:
    if is_torch(a):
        t = a.detach().cpu()
        return np.asarray((t.double() if t.dtype.is_floating_point else t).numpy())
    return np.asarray(a)


def _patched(
    v: Any, flagged: Any, name: str, exact: Callable[..., Any], args: Sequence[Any]
) -> Any:
    shape = tuple(int(n) for n in v.shape)
    index = np.flatnonzero(_as_numpy(flagged).reshape(-1))
    picked = [_pick(a, shape, index) for a in args]
    values = _exact_rounded(name, exact, picked, len(index))
    if is_torch(v):
        import torch

        out = v.reshape(-1).clone()
        out[torch.as_tensor(index, device=v.device)] = torch.as_tensor(values, device=v.device)
        return out.reshape(shape)
    out_np = np.array(_as_numpy(v), dtype=np.float64).reshape(-1)
    out_np[index] = values
    return out_np.reshape(shape)
