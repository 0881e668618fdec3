"""Optional ``torch.compile`` of the float64 kernels, with an eager fallback.

Eager float64 torch ops are ~8x slower than torch's own float32 loss; fused by inductor
the same float64-internal kernel runs at about torch's native speed.  Compiling costs
seconds (once per kernel and process, cached on disk by inductor), so the default,
``"auto"``, compiles only for tensors of at least :data:`AUTO_MIN_ELEMENTS` elements;
small inputs (tests, notebooks) run eagerly.  Any failure to compile falls back to the
eager kernel, once, with a warning.  The environment variable
``LOGITLAB_STABLE_COMPILE`` (``0``, ``1`` or ``auto``) sets the initial mode.

The common BCE case (no weights, mean or sum, narrow logits and targets of one dtype) has
its own fused kernel, :mod:`._bce_compiled`, run through :func:`run_kernel` like the
others; for float32 on the CPU that kernel is C compiled by :mod:`._native` instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["AUTO_MIN_ELEMENTS", "get_torch_compile", "run_kernel", "set_torch_compile"]

#: In ``"auto"`` mode, tensors with at least this many elements use the compiled kernels.
AUTO_MIN_ELEMENTS = 1 << 20

_MODES: tuple[bool | str, ...] = (True, False, "auto")


def _initial_mode() -> bool | str:
    raw = os.environ.get("LOGITLAB_STABLE_COMPILE", "auto").strip().lower()
    return {"0": False, "false": False, "1": True, "true": True}.get(raw, "auto")


_mode: bool | str = _initial_mode()
_compiled: dict[Callable[..., Any], Callable[..., Any]] = {}
_failed = False


def set_torch_compile(mode: bool | str) -> None:
    """Use ``torch.compile`` for the torch kernels: ``True``, ``False`` or ``"auto"``.

    >>> from logitlab import stable
    >>> stable.set_torch_compile(False); stable.get_torch_compile()
    False
    >>> stable.set_torch_compile("auto")
    """
    from logitlab.core.errors import InputError

    if mode not in _MODES:
        raise InputError("mode", f"expected True, False or 'auto', not {mode!r}")
    global _mode
    _mode = mode


def get_torch_compile() -> bool | str:
    """The current mode set by :func:`set_torch_compile`.

    >>> from logitlab import stable
    >>> stable.get_torch_compile() in (True, False, "auto")
    True
    """
    return _mode


def _wants_compile(numel: int) -> bool:
    if _failed or _mode is False:
        return False
    return _mode is True or numel >= AUTO_MIN_ELEMENTS


def run_kernel(kernel: Callable[..., Any], numel: int, *args: Any) -> Any:
    """``kernel(torch, *args)``, compiled when the mode asks for it and compiling works."""
    import torch

    if not _wants_compile(numel):
        return kernel(torch, *args)
    compiled = _compiled.get(kernel)
    if compiled is None:

        def bound(*a: Any) -> Any:
            return kernel(torch, *a)

        # Dynamic shapes: one compile for every size.  Inductor sizes a kernel's threads
        # from the first size it sees and keeps the kernel on disk for every later one:
        # first compiled for a few hundred elements, it is a serial loop for 10**7 too.
        # ``dynamic_threads`` always emits the parallel loop and lets OpenMP decide (an
        # option inductor may lack, which would fail the compile: asked for only if known).
        import torch._inductor.config as inductor_config

        known = hasattr(getattr(inductor_config, "cpp", None), "dynamic_threads")
        options: dict[str, Any] | None = {"cpp.dynamic_threads": True} if known else None
        compiled = torch.compile(bound, dynamic=True, options=options)
        _compiled[kernel] = compiled
    try:
        return compiled(*args)
    except Exception as err:  # compilation needs a C compiler; eager always works
        global _failed
        _failed = True
        warnings.warn(
            f"logitlab.stable: torch.compile failed ({type(err).__name__}: {err}); "
            "using eager float64 kernels, which are slower but equally accurate",
            RuntimeWarning,
            stacklevel=3,
        )
        return kernel(torch, *args)
