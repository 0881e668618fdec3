"""JAX and optax: ``optax.sigmoid_binary_cross_entropy`` and a hand-written sigmoid + log.

(The softmax cross-entropy rows are in :mod:`logitlab.formulations._softmax_frameworks`.)

JAX is imported inside ``compute``; float64 needs ``jax_enable_x64``, which each
formulation switches on for its own run only and its own thread (:func:`x64`), leaving
the caller's setting as it was.  Gradients come from ``jax.vjp`` with a cotangent of
ones, the elementwise derivative for an unreduced loss.  What eager JAX would trace on
every call is traced once per shape and options and kept (:func:`_program`): the same
primitives, run one at a time, so the same bits, without the milliseconds of tracing.
XLA flushes subnormal results to zero on CPU (``flushes_subnormals``).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from logitlab.formulations._base import (
    BCEInputs,
    ElementwiseInputs,
    Formulation,
    NotApplicable,
    Outcome,
    as_float64,
    wants_gradient,
)
from logitlab.formulations._numpy import as_dtype

__all__ = ["FORMULATIONS"]


@contextlib.contextmanager
def x64() -> Iterator[Any]:
    """JAX with ``jax_enable_x64`` on inside the block (without it JAX silently computes
    float64 input in float32), for this thread only.

    JAX's own scoped setting (``jax.enable_x64(True)``; ``jax.experimental.enable_x64()``
    in the older releases the ``jax`` extra allows) is thread-local: a comparison in one
    thread (the explorer answers in a pool, and computes curves in the background) cannot
    switch float64 off under another's feet, as restoring the global flag would.
    """
    import jax

    scoped = getattr(jax, "enable_x64", None)
    if callable(scoped):
        with scoped(True):
            yield jax
        return
    from jax.experimental import enable_x64  # type: ignore[attr-defined]

    with enable_x64():
        yield jax


def _scoped(compute: Callable[[Any], Outcome]) -> Callable[[Any], Outcome]:
    @functools.wraps(compute)
    def wrapper(case: Any) -> Outcome:
        with x64():
            return compute(case)

    return wrapper


def _jax() -> Any:
    import jax

    return jax


def _reduce(jnp: Any, loss: Any, reduction: str) -> Any:
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


#: Whether :func:`_run` keeps each traced program (:func:`_program`); False traces every
#: call again, as plain eager JAX does (the tests compare the two bit for bit).
KEEP_PROGRAMS = True
#: How many traced programs :func:`_program` keeps (least recently used out first).
PROGRAMS_KEPT = 256
_PROGRAMS: collections.OrderedDict[Any, Callable[..., Any]] = collections.OrderedDict()
_PROGRAMS_LOCK = threading.Lock()


def _eager(fn: Any, grad: bool) -> Callable[[Any, tuple[Any, ...]], tuple[Any, ...]]:
    """``(z, data) -> (fn(z, *data),)``, or with ``grad`` also its ``vjp`` with a cotangent
    of ones: what :func:`_run` computes, eagerly or traced once by :func:`_program`."""
    jax = _jax()
    import jax.numpy as jnp

    def run(z: Any, data: tuple[Any, ...]) -> tuple[Any, ...]:
        if not grad:
            return (fn(z, *data),)
        value, vjp = jax.vjp(lambda q: fn(q, *data), z)
        (g,) = vjp(jnp.ones_like(value))
        return value, g

    return run


def _program(key: Any, fn: Any, grad: bool, leaves: list[Any], tree: Any) -> Callable[..., Any]:
    """The program eager JAX runs for ``fn`` (its value and, with ``grad``, its ``vjp``
    with a cotangent of ones), traced once per ``key``, input shapes and dtypes, and kept.

    Tracing is what costs in eager JAX (a few milliseconds a call on small arrays); the
    program it records is the same sequence of primitives and jitted functions (e.g.
    ``jax.nn.log_sigmoid``), each compiled by XLA on its own as in eager mode, and
    evaluated one equation at a time (``jaxpr_as_fun``): no whole-program compilation, so
    XLA never fuses or rewrites across operations.  ``key`` must name everything the
    trace bakes in besides the array inputs (reduction, alpha, gamma, ...).
    """
    jax = _jax()
    sig = (key, grad, tree, tuple((x.shape, str(x.dtype), bool(x.weak_type)) for x in leaves))
    with _PROGRAMS_LOCK:
        found = _PROGRAMS.get(sig)
        if found is not None:
            _PROGRAMS.move_to_end(sig)
            return found
    z, data = jax.tree_util.tree_unflatten(tree, leaves)
    closed = jax.make_jaxpr(_eager(fn, grad))(z, data)
    try:
        from jax.extend.core import jaxpr_as_fun as as_fun
    except ImportError:  # older JAX
        import importlib

        as_fun = importlib.import_module("jax.core").jaxpr_as_fun
    program: Callable[..., Any] = as_fun(closed)
    with _PROGRAMS_LOCK:
        _PROGRAMS[sig] = program
        while len(_PROGRAMS) > PROGRAMS_KEPT:
            _PROGRAMS.popitem(last=False)
    return program


def _run(case: ElementwiseInputs, fn: Any, *data: Any, key: Any) -> Outcome:
    """``fn(z, *data)`` (the loss of the logits ``z``; ``data`` the other arrays, or None)
    and its gradient from ``jax.vjp``.  The traced program is kept under ``key`` (see
    :func:`_program`) and run again for the next call of the same shapes; with
    :data:`KEEP_PROGRAMS` off every call traces anew."""
    jax = _jax()
    import jax.numpy as jnp

    z = jnp.asarray(as_dtype(case.logits, case))
    grad = wants_gradient()
    if KEEP_PROGRAMS:
        leaves, tree = jax.tree_util.tree_flatten((z, data))
        out = _program(key, fn, grad, leaves, tree)(*leaves)
    else:
        out = _eager(fn, grad)(z, data)
    value, g = (out[0], out[1] if grad else None)
    return Outcome(
        value=as_float64(np.asarray(value).astype(np.float64)),
        grad=None if g is None else as_float64(np.asarray(g).astype(np.float64)),
    )


def _optax(case: BCEInputs) -> Outcome:
    _jax()
    import jax.numpy as jnp
    import optax

    if case.pos_weight is not None:
        raise NotApplicable("optax.sigmoid_binary_cross_entropy takes no pos_weight")
    y = jnp.asarray(as_dtype(case.targets, case))
    w = None if case.weight is None else jnp.asarray(as_dtype(case.weight, case))

    def loss(z: Any, y: Any, w: Any) -> Any:
        out = optax.losses.sigmoid_binary_cross_entropy(z, y)
        if w is not None:
            out = w * out
        return _reduce(jnp, out, case.reduction)

    return _run(case, loss, y, w, key=("optax.logits", case.reduction))


def _naive(case: BCEInputs) -> Outcome:
    jax = _jax()
    import jax.numpy as jnp

    y = jnp.asarray(as_dtype(case.targets, case))
    w = None if case.weight is None else jnp.asarray(as_dtype(case.weight, case))
    pw = None if case.pos_weight is None else jnp.asarray(as_dtype(case.pos_weight, case))

    def loss(z: Any, y: Any, w: Any, pw: Any) -> Any:
        p = jax.nn.sigmoid(z)
        positive = y * jnp.log(p)
        if pw is not None:
            positive = pw * positive
        out = -(positive + (1 - y) * jnp.log(1 - p))
        if w is not None:
            out = w * out
        return _reduce(jnp, out, case.reduction)

    out = _run(case, loss, y, w, pw, key=("jax.naive", case.reduction))
    p = np.asarray(jax.nn.sigmoid(jnp.asarray(as_dtype(case.logits, case)))).astype(np.float64)
    return Outcome(out.value, out.grad, probabilities=p)


def _elementwise(name: str) -> Any:
    def compute(case: ElementwiseInputs) -> Outcome:
        jax = _jax()
        out = _run(case, getattr(jax.nn, name), key=("jax.nn", name))
        return Outcome(out.value, out.grad, out.value if name == "sigmoid" else None)

    return compute


_REQ = ("jax",)

FORMULATIONS: tuple[Formulation, ...] = (
    Formulation(
        name="optax.logits",
        framework="jax",
        flushes_subnormals=True,
        quantity="bce",
        via_probabilities=False,
        code="optax.losses.sigmoid_binary_cross_entropy(z, y)",
        summary="optax's BCE from logits (log_sigmoid based)",
        compute=_scoped(_optax),
        requires=("jax", "optax"),
        extra="jax",
    ),
    Formulation(
        name="jax.naive",
        framework="jax",
        flushes_subnormals=True,
        quantity="bce",
        via_probabilities=True,
        code="p = jax.nn.sigmoid(z); -(y*jnp.log(p) + (1-y)*jnp.log(1-p))",
        summary="BCE written out in JAX on the probabilities",
        compute=_scoped(_naive),
        requires=_REQ,
        extra="jax",
    ),
    Formulation(
        name="jax.sigmoid",
        framework="jax",
        flushes_subnormals=True,
        quantity="sigmoid",
        via_probabilities=True,
        code="jax.nn.sigmoid(z)",
        summary="JAX's sigmoid",
        compute=_scoped(_elementwise("sigmoid")),
        requires=_REQ,
        extra="jax",
    ),
    Formulation(
        name="jax.log_sigmoid",
        framework="jax",
        flushes_subnormals=True,
        quantity="log_sigmoid",
        via_probabilities=False,
        code="jax.nn.log_sigmoid(z)",
        summary="JAX's log-sigmoid",
        compute=_scoped(_elementwise("log_sigmoid")),
        requires=_REQ,
        extra="jax",
    ),
    Formulation(
        name="jax.softplus",
        framework="jax",
        flushes_subnormals=True,
        quantity="softplus",
        via_probabilities=False,
        code="jax.nn.softplus(z)",
        summary="JAX's softplus",
        compute=_scoped(_elementwise("softplus")),
        requires=_REQ,
        extra="jax",
    ),
)
