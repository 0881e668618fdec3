"""One input, every code path: what each returns, the exact value, and how far off it is.

:func:`compare` is the single source of the numbers the CLI, the web explorer and the
notebook widget show.  Nothing here knows about terminals or HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab import exact
from logitlab.core.errors import InputError
from logitlab.core.formats import FloatFormat
from logitlab.core.inputs import BCECase
from logitlab.core.numbers import exact_repr, json_number, shortest_repr
from logitlab.core.ulp import relative_error, ulp_error
from logitlab.formulations import Formulation, NotApplicable, Outcome, all_formulations, get

__all__ = [
    "DEFAULT_FRAMEWORKS",
    "FLAGS",
    "Comparison",
    "Row",
    "compare",
    "flag_elements",
    "select_formulations",
]

#: The rows compare shows unless asked for more: fast to import, and the post's subject.
DEFAULT_FRAMEWORKS = ("torch", "stable")

#: Flags that explain why a row is off, in the order they are shown.
FLAGS = {
    "sigmoid saturated": "sigmoid rounded to exactly 0 or 1, so log(p) or log(1 - p) is log 0",
    "log clamped": "PyTorch's binary_cross_entropy clamped a log at -100",
    "gradient clamped": (
        "PyTorch's binary_cross_entropy backward divided by max(p(1 - p), 1e-12), not p(1 - p), "
        "shrinking the gradient"
    ),
    "gradient vanished": "a zero gradient where the exact one, rounded to the dtype, is not",
    "non-finite": "a NaN or infinity where the exact value is finite",
}


@dataclass(frozen=True)
class Row:
    """One formulation's result on the case.

    ``status`` is ``"ok"``, ``"skipped"`` (framework not installed), ``"not applicable"``
    (the code path cannot express the input) or ``"error"`` (the framework raised);
    ``reason`` says why for the last three.  Arrays are float64 holding dtype values.
    """

    formulation: Formulation
    code: str
    status: str
    reason: str | None = None
    value: np.ndarray | None = None
    grad: np.ndarray | None = None
    ulp_error: np.ndarray | None = None
    relative_error: np.ndarray | None = None
    grad_ulp_error: np.ndarray | None = None
    grad_relative_error: np.ndarray | None = None
    element_flags: tuple[tuple[str, ...], ...] = ()
    flags: tuple[str, ...] = ()

    @property
    def max_ulp_error(self) -> float:
        return _nanmax(self.ulp_error)

    @property
    def max_relative_error(self) -> float:
        return _nanmax(self.relative_error)


def _nanmax(a: np.ndarray | None) -> float:
    if a is None or a.size == 0:
        return math.nan
    if np.isnan(a).any():
        return math.nan
    return float(a.max())


@dataclass(frozen=True)
class Comparison:
    """Every formulation's row for one case, with the exact values."""

    case: BCECase
    exact: exact.ExactResult
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def dtype(self) -> FloatFormat:
        return self.case.dtype

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.formulation.name == name:
                return r
        raise KeyError(name)

    def exact_value(self) -> np.ndarray:
        """The exact loss correctly rounded to the dtype."""
        return self.exact.value_rounded(self.dtype)

    def exact_grad(self) -> np.ndarray:
        return self.exact.grad_rounded(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (NaN and infinities as strings, see :func:`json_number`)."""
        fmt = self.dtype
        case = self.case

        def nums(a: np.ndarray | None) -> Any:
            if a is None:
                return None
            return [json_number(v) for v in np.asarray(a, dtype=np.float64).ravel()]

        def reprs(a: np.ndarray | None) -> Any:
            if a is None:
                return None
            return [shortest_repr(v, fmt) for v in np.asarray(a).ravel()]

        return {
            "dtype": fmt.name,
            "reduction": case.reduction,
            "shape": list(case.shape),
            "value_shape": list(self.exact.shape),
            "inputs": {
                "logits": nums(case.logits),
                "targets": nums(case.targets),
                "weight": nums(case.weight),
                "pos_weight": nums(case.pos_weight),
            },
            "exact": {
                "value": [exact_repr(v, 30) for v in self.exact.values],
                "value_rounded": nums(self.exact_value()),
                "value_repr": reprs(self.exact_value()),
                "grad": [exact_repr(g, 30) for g in self.exact.grads],
                "grad_rounded": nums(self.exact_grad()),
                "grad_repr": reprs(self.exact_grad()),
            },
            "rows": [
                {
                    "name": r.formulation.name,
                    "framework": r.formulation.framework,
                    "via_probabilities": r.formulation.via_probabilities,
                    "code": r.code,
                    "summary": r.formulation.summary,
                    "status": r.status,
                    "reason": r.reason,
                    "value": nums(r.value),
                    "value_repr": reprs(r.value),
                    "ulp_error": nums(r.ulp_error),
                    "relative_error": nums(r.relative_error),
                    "max_ulp_error": json_number(r.max_ulp_error) if r.status == "ok" else None,
                    "max_relative_error": (
                        json_number(r.max_relative_error) if r.status == "ok" else None
                    ),
                    "grad": nums(r.grad),
                    "grad_repr": reprs(r.grad),
                    "grad_ulp_error": nums(r.grad_ulp_error),
                    "grad_relative_error": nums(r.grad_relative_error),
                    "flags": list(r.flags),
                    "element_flags": [list(f) for f in r.element_flags],
                }
                for r in self.rows
            ],
            "flags": dict(FLAGS),
            "notes": list(self.notes),
        }


def flag_elements(
    outcome: Outcome,
    value: np.ndarray,
    grad: np.ndarray | None,
    exact_value: np.ndarray,
    exact_grad: np.ndarray,
    shape: tuple[int, ...],
) -> tuple[tuple[str, ...], ...]:
    """The flags of each logit element (flat), each set exactly when its condition holds.

    ``outcome`` supplies the diagnostics (sigmoid outputs, clamps); ``value`` and ``grad``
    are its values as float64 arrays.  ``exact_value`` and ``exact_grad`` are the exact
    results *rounded to the dtype* (the value broadcast to the logits' shape when the loss
    is reduced).
    """

    def flat(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.asarray(a).ravel()

    n = int(np.prod(shape, dtype=np.int64))
    values = np.broadcast_to(np.asarray(value, dtype=np.float64), shape).ravel()
    ev = np.broadcast_to(exact_value, shape).ravel()
    grads, eg = flat(grad), np.asarray(exact_grad).ravel()
    probabilities = flat(outcome.probabilities)
    clamped, grad_clamped = flat(outcome.clamped), flat(outcome.grad_clamped)
    flags: list[tuple[str, ...]] = []
    for i in range(n):
        f: list[str] = []
        if probabilities is not None and float(probabilities[i]) in (0.0, 1.0):
            f.append("sigmoid saturated")
        if clamped is not None and bool(clamped[i]):
            f.append("log clamped")
        if grad_clamped is not None and bool(grad_clamped[i]):
            f.append("gradient clamped")
        if grads is not None and grads[i] == 0 and eg[i] != 0:
            f.append("gradient vanished")
        value_bad = not math.isfinite(values[i]) and math.isfinite(ev[i])
        grad_bad = grads is not None and not math.isfinite(grads[i]) and math.isfinite(eg[i])
        if value_bad or grad_bad:
            f.append("non-finite")
        flags.append(tuple(f))
    return tuple(flags)


def _errors(
    values: np.ndarray, exacts: Sequence[Any], fmt: FloatFormat
) -> tuple[np.ndarray, np.ndarray]:
    flat = np.asarray(values, dtype=np.float64).ravel()
    ulps = np.array([ulp_error(c, e, fmt) for c, e in zip(flat, exacts)])
    rels = np.array([relative_error(c, e) for c, e in zip(flat, exacts)])
    return ulps.reshape(np.shape(values)), rels.reshape(np.shape(values))


def _row(
    f: Formulation,
    case: BCECase,
    ex: exact.ExactResult,
    exact_value: np.ndarray,
    exact_grad: np.ndarray,
) -> Row:
    code = f.code_line(case)
    missing = f.missing()
    if missing is not None:
        return Row(f, code, "skipped", missing)
    try:
        out = f.compute(case)
    except NotApplicable as err:
        return Row(f, code, "not applicable", str(err))
    except (RuntimeError, TypeError, ValueError, NotImplementedError) as err:
        # The framework itself refused (e.g. an op not implemented for Half on CPU).
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return Row(f, code, "error", f"{type(err).__name__}: {first}")
    fmt = case.dtype
    value = np.asarray(out.value, dtype=np.float64).reshape(ex.shape)
    ulps, rels = _errors(value, ex.values, fmt)
    grad = gulps = grels = None
    if out.grad is not None:
        grad = np.asarray(out.grad, dtype=np.float64).reshape(ex.grad_shape)
        gulps, grels = _errors(grad, ex.grads, fmt)
    element_flags = flag_elements(out, value, grad, exact_value, exact_grad, case.shape)
    flags = tuple(name for name in FLAGS if any(name in e for e in element_flags))
    return Row(f, code, "ok", None, value, grad, ulps, rels, gulps, grels, element_flags, flags)


def select_formulations(
    quantity: str,
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
) -> list[Formulation]:
    """The formulations named, or those of the frameworks named (``"all"`` for every one)."""
    if formulations is not None:
        if isinstance(formulations, str):
            formulations = [formulations]
        return [get(name, quantity, argument="formulations") for name in formulations]
    available = all_formulations(quantity)
    wanted = DEFAULT_FRAMEWORKS if frameworks is None else tuple(frameworks)
    if isinstance(frameworks, str):
        wanted = (frameworks,)
    if "all" in wanted:
        return available
    known = sorted({f.framework for f in available})
    unknown = [w for w in wanted if w not in known]
    if unknown and frameworks is not None:
        raise InputError(
            "frameworks",
            f"unknown framework {unknown[0]!r}; choose from all, {', '.join(known)}",
        )
    return [f for f in available if f.framework in wanted]


def compare(
    logits: Any = (-2.0, 2.0),
    targets: Any = (0.3, 0.7),
    *,
    dtype: str | FloatFormat = "float32",
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
) -> Comparison:
    """Run every BCE code path on the same input and measure each against the exact value.

    The defaults are the post's first example: logits (-2, 2), targets (0.3, 0.7), float32,
    mean.  By default the rows are PyTorch's paths and ``logitlab.stable``
    (:data:`DEFAULT_FRAMEWORKS`); ``frameworks=["all"]`` adds every framework in the
    catalogue (Keras and JAX take seconds to import), ``formulations`` picks rows by name.
    Inputs are rounded once to ``dtype`` (what the framework receives) and the exact value
    is computed from those rounded inputs.  Raises :class:`~logitlab.InputError`,
    naming the argument, for bad input.

    >>> c = compare(logits=[20, 20])
    >>> c.row("torch.probabilities").value.item(), c.row("torch.logits").value.item()
    (50.0, 10.0)
    >>> c.row("torch.probabilities").flags
    ('sigmoid saturated', 'log clamped', 'gradient vanished')
    """
    case = BCECase.from_user(
        logits, targets, weight=weight, pos_weight=pos_weight, reduction=reduction, dtype=dtype
    )
    chosen = select_formulations("bce", formulations, frameworks)
    ex = exact.bce_loss(case.logits, case.targets, case.weight, case.pos_weight, case.reduction)
    # Rounded once here, not once per row: each rounding is an mpmath step per element.
    exact_value, exact_grad = ex.value_rounded(case.dtype), ex.grad_rounded(case.dtype)
    rows = tuple(_row(f, case, ex, exact_value, exact_grad) for f in chosen)
    return Comparison(case=case, exact=ex, rows=rows, notes=case.notes)
