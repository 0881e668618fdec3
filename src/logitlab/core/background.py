"""Background threads that run framework code end before the interpreter does.

Until Python 3.14, CPython ends a daemon thread that is still running when the interpreter
finalizes by unwinding it with ``pthread_exit`` as soon as it asks for the interpreter
lock.  Inside a framework's C++ code (PyTorch's pybind11 lock release is ``noexcept``) that
unwinding calls ``std::terminate``: the process prints "terminate called without an
active exception" and aborts with status 134, after its work is done.  So whatever starts
such a thread registers the method that stops and joins it with :func:`end_at_exit`;
``atexit`` calls it after the non-daemon threads are joined and before that unwinding.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable

_ENDS: list[weakref.WeakMethod[Callable[[], object]]] = []
_LOCK = threading.Lock()


def end_at_exit(method: Callable[[], object]) -> None:
    """Call the bound ``method`` (it stops and joins a background thread) at interpreter
    exit, unless its object is gone by then.  Only a weak reference is kept."""
    ref = weakref.WeakMethod(method)
    with _LOCK:
        _ENDS[:] = [r for r in _ENDS if r() is not None]
        _ENDS.append(ref)


@atexit.register
def _end_all() -> None:
    with _LOCK:
        ends = [r() for r in _ENDS]
    for end in ends:
        if end is not None:
            end()
