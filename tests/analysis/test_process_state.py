"""Running logitlab leaves the process as it found it: NumPy's error state, JAX's x64 flag."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import logitlab
from logitlab.analysis.curves import bce_curve
from logitlab.analysis.saturation import sigmoid_report

# A state nobody would choose by accident, so a reset to NumPy's defaults shows.
_USER_STATE = {"divide": "raise", "over": "warn", "under": "print", "invalid": "call"}


@pytest.fixture
def user_numpy_state():
    before = np.seterr(**_USER_STATE)
    np.seterrcall(lambda *args: None)
    try:
        yield np.geterr()
    finally:
        np.seterr(**before)
        np.seterrcall(None)


def test_compare_keeps_numpy_error_state(user_numpy_state: dict[str, str]) -> None:
    logitlab.compare(logits=[20, -200, float("inf")], targets=[0.3, 1, 0], reduction="none")
    assert np.geterr() == user_numpy_state


def test_curves_and_sigmoid_keep_numpy_error_state(user_numpy_state: dict[str, str]) -> None:
    bce_curve(0.3, dtype="float16", points=101)
    sigmoid_report(-90.0, ["float16"])
    assert np.geterr() == user_numpy_state


def test_audit_keeps_numpy_error_state(user_numpy_state: dict[str, str]) -> None:
    logitlab.audit(formulations=["torch.logits"], dtypes=["bfloat16"], targets=[0.0])
    assert np.geterr() == user_numpy_state


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
@pytest.mark.parametrize("user_x64", [False, True])
def test_jax_x64_is_scoped_to_each_run(user_x64: bool) -> None:
    import jax

    before = bool(jax.config.read("jax_enable_x64"))
    jax.config.update("jax_enable_x64", user_x64)
    try:
        c = logitlab.compare(dtype="float64", formulations=["optax.logits", "jax.naive"])
        assert all(r.status == "ok" for r in c.rows)
        # float64 input was computed in float64 inside the run ...
        assert not any(r.notes for r in c.rows)
        # ... and the caller's setting is back.
        assert bool(jax.config.read("jax_enable_x64")) is user_x64
    finally:
        jax.config.update("jax_enable_x64", before)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_x64_of_one_thread_is_not_switched_off_by_another() -> None:
    # Two runs overlapping in two threads (the explorer answers in a pool and computes
    # curves in the background): B enters x64 first, A enters, B leaves, then A computes.
    # Restoring a global flag on B's exit would switch float64 off under A's feet.
    import threading

    import jax
    import jax.numpy as jnp

    from logitlab.formulations._jax import x64

    b_in, a_in, b_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def b() -> None:
        with x64():
            b_in.set()
            a_in.wait(timeout=30)
        b_out.set()

    def a() -> None:
        with x64():
            a_in.set()
            b_out.wait(timeout=30)
            # 1 + 2**-40 needs float64: float32 would give exactly 1
            seen["dtype"] = jnp.asarray(1.0, dtype=jnp.float64).dtype
            seen["sum"] = float(jnp.asarray(1.0, dtype=jnp.float64) + 2.0**-40)

    before = bool(jax.config.read("jax_enable_x64"))
    tb = threading.Thread(target=b)
    tb.start()
    assert b_in.wait(timeout=30)
    ta = threading.Thread(target=a)
    ta.start()
    ta.join(timeout=60)
    tb.join(timeout=60)
    assert seen == {"dtype": np.dtype("float64"), "sum": 1.0 + 2.0**-40}
    # and nothing leaked into this thread
    assert bool(jax.config.read("jax_enable_x64")) is before
