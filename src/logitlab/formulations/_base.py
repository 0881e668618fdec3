"""What a formulation is: a named, real code path and the outcome of running it."""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from logitlab.core.extras import install_hint
from logitlab.core.formats import FloatFormat

__all__ = [
    "QUANTITIES",
    "BCEInputs",
    "ElementwiseInputs",
    "Formulation",
    "NotApplicable",
    "Outcome",
    "SoftmaxInputs",
    "values_only",
    "wants_gradient",
]

_VALUES_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "logitlab_values_only", default=False
)


@contextlib.contextmanager
def values_only() -> Iterator[None]:
    """Inside the block, the frameworks' runs skip their autodiff (torch's ``backward``,
    JAX's ``vjp``) and return no gradient: a second, unreduced run that only reads each
    element's loss (compare's per-element flags) need not pay for one.  The values are
    the same calls' values; per thread and per task (a context variable)."""
    token = _VALUES_ONLY.set(True)
    try:
        yield
    finally:
        _VALUES_ONLY.reset(token)


def wants_gradient() -> bool:
    """False inside :func:`values_only`."""
    return not _VALUES_ONLY.get()


#: What a formulation can compute.  Elementwise quantities take logits only.
QUANTITIES = ("bce", "sigmoid", "log_sigmoid", "softplus", "softmax_ce", "focal")


class ElementwiseInputs(Protocol):
    """What an elementwise formulation reads: logits (float64 holding ``dtype`` values)."""

    @property
    def logits(self) -> np.ndarray: ...

    @property
    def dtype(self) -> FloatFormat: ...


class BCEInputs(ElementwiseInputs, Protocol):
    """What a BCE formulation reads (:class:`logitlab.core.inputs.BCECase`)."""

    @property
    def targets(self) -> np.ndarray: ...

    @property
    def weight(self) -> np.ndarray | None: ...

    @property
    def pos_weight(self) -> np.ndarray | None: ...

    @property
    def reduction(self) -> str: ...


class SoftmaxInputs(ElementwiseInputs, Protocol):
    """What a softmax cross-entropy formulation reads: logits (N, C), class labels (N,)."""

    @property
    def labels(self) -> np.ndarray: ...

    @property
    def reduction(self) -> str: ...


class NotApplicable(Exception):
    """The code path cannot express this input (e.g. pos_weight on ``BCELoss``)."""


@dataclass(frozen=True)
class Outcome:
    """What the framework returned, exactly, as float64 arrays.

    ``value`` has the output's shape; ``grad`` (``d value / d z`` from the framework's own
    autograd, ``None`` where it has none) the logits' shape.  ``probabilities`` are the
    sigmoid outputs the path went through (for paths that go through probabilities) and
    ``clamped`` marks elements where a clamp inside the framework changed the result
    (PyTorch's ``log >= -100`` in ``binary_cross_entropy``), ``grad_clamped`` those where
    one changed a non-zero gradient (its backward's ``max(p(1-p), 1e-12)``), ``clipped``
    those where the framework clipped a probability to ``[eps, 1 - eps]`` (Keras,
    scikit-learn).
    """

    value: np.ndarray
    grad: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    clamped: np.ndarray | None = None
    grad_clamped: np.ndarray | None = None
    clipped: np.ndarray | None = None


@dataclass(frozen=True)
class Formulation:
    """One real code path a user might write.

    ``compute`` runs the framework at the case's dtype and returns an :class:`Outcome`;
    it raises :class:`NotApplicable` for inputs the path cannot express.  ``requires``
    names the modules it imports (inside ``compute``, never at import time) and ``extra``
    the pip extra that installs them.  ``flushes_subnormals`` says the framework returns 0
    for results below the smallest normal (XLA on CPU does; a test checks it).
    ``double_softmax`` says the path applies a softmax to the output of a softmax (a loss
    that expects logits given probabilities), which the ``double softmax`` flag reports.
    """

    name: str
    framework: str
    quantity: str
    via_probabilities: bool
    code: str
    summary: str
    compute: Callable[[Any], Outcome]
    requires: tuple[str, ...] = ()
    extra: str | None = None
    code_for: Callable[[Any], str] | None = None
    flushes_subnormals: bool = False
    double_softmax: bool = False

    def missing(self) -> str | None:
        """``None`` when the framework is installed, else why this row is skipped."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                hint = (
                    f"pip install 'logitlab[{self.extra}]'" if self.extra else install_hint(module)
                )
                return f"{module} is not installed; {hint}"
        return None

    def code_line(self, case: Any = None) -> str:
        """The line a user writes, specialised to the case's arguments where that matters."""
        if case is not None and self.code_for is not None:
            return self.code_for(case)
        return self.code


def as_float64(array: Any) -> np.ndarray:
    """A framework array as a float64 NumPy array (exact: every format fits in float64)."""
    return np.asarray(array, dtype=np.float64)
