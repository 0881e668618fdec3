"""Backend selection and the one-rounding precision policy shared by every family.

The namespace comes from the type of the input (array-api-compat), so a framework the
caller did not load is never imported: a Python number or list becomes a NumPy array,
a torch tensor stays a torch tensor, a JAX array a JAX array.

Precision policy
----------------
* float16, bfloat16, float32 inputs are widened to float64 (exact), computed there with a
  few float64 roundings, and rounded once to the input's dtype at the end.  A float64
  result within ``k`` float64 ULP of exact is within ``0.5 + k * 2**-29`` float32 ULP of
  exact after that one rounding: at most one rounding away.
* float64 inputs are computed in float64 with formulas whose rounding error is bounded
  (see each function's docstring).

Torch's float64 -> float16 and ml_dtypes' float64 -> bfloat16 conversions round twice
(through float32), which can land one ULP away from the correctly rounded value;
:func:`to_dtype` rounds to float32 *to odd* first, which makes the second rounding
correct (Boldo and Melquiond, 2008).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from logitlab.core.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "FLOAT_NAMES",
    "dtype_name",
    "is_torch",
    "namespace",
    "to_dtype",
    "widen",
]

#: The floating dtypes accepted, by name.
FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")


def extended() -> Any:
    """NumPy's ``longdouble`` where it has a 64-bit significand (x87 extended precision,
    as on x86-64 Linux), else None (where it is binary64, as on Windows or ARM macOS)."""
    return np.longdouble if np.finfo(np.longdouble).nmant >= 63 else None


def as_extended(*arrays: Any) -> list[Any] | None:
    """NumPy arrays or CPU torch tensors as x87 extended NumPy arrays (exact), or None
    where there is no such format here, or an array lives elsewhere (JAX, CUDA)."""
    ld = extended()
    if ld is None:
        return None
    out = []
    for a in arrays:
        if is_torch(a):
            if a.device.type != "cpu":
                return None
            a = a.detach().double().numpy()
        elif not isinstance(a, (np.ndarray, np.generic, float, int)):
            return None
        out.append(np.asarray(a, dtype=np.float64).astype(ld))
    return out


def from_extended(x: Any, like: Any) -> Any:
    """An extended array rounded once to float64, as ``like``'s kind (NumPy or torch)."""
    out = np.array(x, dtype=np.float64, order="C")  # a copy, 0-d stays 0-d
    if is_torch(like):
        import torch

        return torch.from_numpy(out).to(like.device)
    return out


def torch_outside_dynamo(fn: F) -> F:
    """``fn``, run outside ``torch.compile``'s tracing when its first argument is a torch
    tensor: inside a user's compiled function dynamo then breaks its graph at the call,
    once, instead of tracing the argument checks (array-API dispatch, whose caches it
    warns about) up to the already compiled or eager kernels.  Imports no torch: the
    wrapper only looks for it in ``sys.modules``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if args and is_torch(args[0]):
            from logitlab.stable._torch_autograd import outside_dynamo

            return outside_dynamo(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor, without importing torch."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def namespace(*arrays: Any) -> Any:
    """The array API namespace of the first array (the logits); NumPy for Python numbers
    and lists.  Other arguments are converted to it by :func:`as_array`."""
    import array_api_compat

    for a in arrays:
        if array_api_compat.is_array_api_obj(a) and not isinstance(a, (int, float)):
            return array_api_compat.array_namespace(a)
    return array_api_compat.array_namespace(np.zeros(()))


def as_array(x: Any, xp: Any, argument: str, like: Any = None) -> Any:
    """``x`` as an array of namespace ``xp`` (Python numbers, lists and NumPy arrays given
    beside another framework's logits are converted, on the logits' device)."""
    import array_api_compat

    if array_api_compat.is_array_api_obj(x) and not isinstance(x, (int, float)):
        if like is None or array_api_compat.array_namespace(x) is xp:
            return x
        if not isinstance(x, np.ndarray):
            raise InputError(
                argument, f"is a {type(x).__name__}; the logits are a {type(like).__name__}"
            )
        array = x
    else:
        try:
            array = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(argument, f"expected an array of numbers, got {x!r}") from None
    if like is not None and not isinstance(like, np.ndarray):
        if is_torch(like):
            import torch

            return torch.as_tensor(np.asarray(array), device=like.device)
        return xp.asarray(array)
    return array


def dtype_name(x: Any, argument: str) -> str:
    """The name of a floating array's dtype, or an :class:`InputError` naming ``argument``."""
    name = str(x.dtype).removeprefix("torch.").removeprefix("dtype(").strip("')")
    if name not in FLOAT_NAMES:
        shape = tuple(getattr(x, "shape", ()))
        raise InputError(
            argument,
            f"has dtype {x.dtype} and shape {shape}; expected one of {', '.join(FLOAT_NAMES)}",
        )
    return name


def jax_without_x64(xp: Any) -> bool:
    """Whether ``xp`` is JAX with float64 disabled (its default)."""
    import sys

    jax = sys.modules.get("jax")
    if jax is None or not getattr(xp, "__name__", "").startswith("jax"):
        return False
    return not bool(jax.config.jax_enable_x64)


def widen(x: Any, xp: Any) -> Any:
    """``x`` as float64 (exact for every accepted dtype).

    JAX without ``jax_enable_x64`` has no float64: there the kernels run in float32 (the
    same stable formulas, within a few float32 ULP instead of one rounding).
    """
    if is_torch(x):
        return x.double()
    if jax_without_x64(xp):
        return xp.astype(x, xp.float32)
    return xp.astype(x, xp.float64)


def _torch_round_to_odd_float32(x: Any) -> Any:
    import torch

    f = x.float()
    fd = f.double()
    toward_zero = torch.where(fd.abs() > x.abs(), torch.nextafter(f, torch.zeros_like(f)), f)
    odd = (toward_zero.view(torch.int32) | 1).view(torch.float32)
    return torch.where((fd != x) & ~torch.isnan(x), odd, f)


def _numpy_round_to_odd_float32(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        f = x.astype(np.float32)
        toward_zero = np.where(
            np.abs(f.astype(np.float64)) > np.abs(x), np.nextafter(f, np.float32(0)), f
        )
        odd = (toward_zero.view(np.uint32) | np.uint32(1)).view(np.float32)
        return np.where((f.astype(np.float64) != x) & ~np.isnan(x), odd, f)


def to_dtype(x64: Any, name: str, xp: Any) -> Any:
    """Round a float64 array once to the dtype called ``name`` (nearest, ties to even)."""
    if name == "float64":
        return x64
    if is_torch(x64):
        import torch

        target = getattr(torch, name)
        if name == "float32":
            return x64.to(target)
        return _torch_round_to_odd_float32(x64).to(target)
    if isinstance(x64, np.ndarray) or np.isscalar(x64):
        from logitlab.core.formats import get_format

        target = get_format(name).numpy_dtype
        x = np.asarray(x64)
        if name == "bfloat16":
            # ml_dtypes converts float64 to bfloat16 through float32: two roundings.
            x = _numpy_round_to_odd_float32(x)
        return x.astype(target)
    dtype = getattr(xp, name, None)
    if dtype is None:
        raise InputError("dtype", f"{name} is not available in {xp.__name__}")
    # JAX: XLA's float64 -> narrow conversion flushes subnormal results to 0, so concrete
    # arrays are rounded on the host (NumPy, correctly) and sent back.  Under jax.jit the
    # values are tracers and XLA converts: there subnormal results become 0 (documented).
    try:
        host = np.asarray(x64)
    except Exception:  # a tracer
        return xp.astype(x64, dtype)
    if host.dtype != np.float64:
        return xp.astype(x64, dtype)
    return xp.asarray(to_dtype(host, name, np))


def zeros_like_scalar(x: Any, value: float) -> Any:
    """A 0-d array of ``x``'s namespace, dtype and device holding ``value``."""
    if is_torch(x):
        import torch

        return torch.tensor(value, dtype=x.dtype, device=x.device)
    xp = namespace(x)
    return xp.asarray(value, dtype=x.dtype)


LN2 = math.log(2.0)
