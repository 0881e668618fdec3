"""The one way a formulation is run: :func:`run` turns a formulation and a case into a
:class:`RunResult`.

Every surface that runs a code path (compare, the audit, the explorer's curves,
``logitlab sigmoid``, saturation and breakpoint searches) calls :func:`run` and nothing
else, so that skipping, refusals, errors, the returned precision and NumPy's error state are
handled in one place.  Nothing here classifies or measures: that is
:mod:`logitlab.analysis.flags`' job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from logitlab.core.formats import FloatFormat, get_format
from logitlab.formulations._base import Formulation, NotApplicable

__all__ = ["STATUSES", "RunResult", "Status", "returned_format", "run"]

Status = Literal["ok", "skipped", "not applicable", "error"]
#: What a run can end as: it ran; the framework is not installed; the code path cannot
#: express the input; the framework raised.
STATUSES: tuple[Status, ...] = ("ok", "skipped", "not applicable", "error")


@dataclass(frozen=True)
class RunResult:
    """What one formulation returned for one case, exactly, or why it did not run.

    ``value`` has the output's shape (one element for a reduced loss) and ``grad``
    (``d value / d z`` from the framework's own autograd, ``None`` where it has none) the
    logits' shape; both are float64 arrays holding the framework's values.
    ``probabilities`` are the sigmoid/softmax outputs the path went through,
    ``clamped`` marks elements where a clamp inside the framework replaced a log
    (PyTorch's ``log >= -100``), ``grad_clamped`` those where its backward's clamp changed a
    gradient, ``clipped`` those where the framework clipped a probability (Keras' and
    scikit-learn's ``[eps, 1 - eps]``).  ``returned`` names the format the framework's
    results live in when it is wider than the case's (SciPy giving float64 for float16
    input), ``narrower`` one that is narrower (float64 input computed in float32).
    """

    formulation: Formulation
    code: str
    status: Status
    dtype: FloatFormat
    reason: str | None = None
    value: np.ndarray | None = None
    grad: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    clamped: np.ndarray | None = None
    grad_clamped: np.ndarray | None = None
    clipped: np.ndarray | None = None
    returned: str | None = None
    narrower: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def name(self) -> str:
        return self.formulation.name

    def notes(self) -> list[str]:
        """Plain words for :attr:`returned` and :attr:`narrower`."""
        out = []
        if self.returned:
            out.append(f"returned {self.returned} values for {self.dtype.name} input (upcast)")
        if self.narrower:
            out.append(
                f"returned only {self.narrower} values for {self.dtype.name} input "
                f"(computed in {self.narrower})"
            )
        return out


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _mask(a: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if a is None else np.asarray(a, dtype=bool).reshape(shape)


def returned_format(
    value: np.ndarray, inputs: np.ndarray, fmt: FloatFormat
) -> tuple[str | None, str | None]:
    """``(wider, narrower)``: the format the finite results live in when it is not ``fmt``.

    ``wider`` is set when some result is not a value of ``fmt`` (float32 if they all are
    float32 values, else float64); ``narrower`` is ``"float32"`` for float64 input whose
    results are all float32 values although the inputs are not.
    """
    v = value[np.isfinite(value)]
    wider = narrower = None
    f32 = get_format("float32")
    if v.size and not np.array_equal(fmt.round(v), v):
        wider = "float32" if fmt.precision < 24 and np.array_equal(f32.round(v), v) else "float64"
    x = inputs[np.isfinite(inputs)]
    if (
        fmt.name == "float64"
        and v.size
        and np.array_equal(f32.round(v), v)
        and not np.array_equal(f32.round(x), x)
    ):
        narrower = "float32"
    return wider, narrower


def run(formulation: Formulation, case: Any, *, code: str | None = None) -> RunResult:
    """Run ``formulation`` on ``case`` (a :class:`~logitlab.core.inputs.BCECase`, a softmax
    case or an elementwise case), in the case's dtype, and return what it gave.

    A missing framework gives ``status="skipped"`` with the pip command in ``reason``; a
    :class:`~logitlab.formulations.NotApplicable` gives ``"not applicable"``; any exception
    the framework raises gives ``"error"`` with its first line.  NumPy's error state is
    left as it was.
    """
    fmt: FloatFormat = case.dtype
    line = formulation.code_line(case) if code is None else code
    missing = formulation.missing()
    if missing is not None:
        return RunResult(formulation, line, "skipped", fmt, missing)
    start = time.perf_counter()
    try:
        with np.errstate(all="ignore"):
            out = formulation.compute(case)
    except NotApplicable as err:
        return RunResult(formulation, line, "not applicable", fmt, str(err))
    except Exception as err:  # the framework refused: say so, in its words
        return RunResult(
            formulation, line, "error", fmt, _first_line(err), seconds=time.perf_counter() - start
        )
    seconds = time.perf_counter() - start
    logits = np.asarray(case.logits, dtype=np.float64)
    value = np.asarray(out.value, dtype=np.float64)
    grad = None
    if out.grad is not None:
        grad = np.asarray(out.grad, dtype=np.float64).reshape(logits.shape)
    probabilities = None
    if out.probabilities is not None:
        probabilities = np.asarray(out.probabilities, dtype=np.float64)
    shape = probabilities.shape if probabilities is not None else logits.shape
    with np.errstate(all="ignore"):
        wider, narrower = returned_format(value, logits, fmt)
    return RunResult(
        formulation,
        line,
        "ok",
        fmt,
        value=value,
        grad=grad,
        probabilities=probabilities,
        clamped=_mask(out.clamped, shape),
        grad_clamped=_mask(out.grad_clamped, shape),
        clipped=_mask(getattr(out, "clipped", None), shape),
        returned=wider,
        narrower=narrower,
        seconds=seconds,
    )
