"""One input, every code path: what each returns, the exact value, and how far off it is.

:func:`compare` is the single source of the numbers the CLI, the web explorer and the
notebook widget show.  Nothing here knows about terminals or HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from logitlab import exact
from logitlab.analysis.flags import FLAGS, classify_run
from logitlab.core.errors import InputError
from logitlab.core.formats import FloatFormat
from logitlab.core.inputs import BCECase
from logitlab.core.numbers import exact_json, json_number, json_numbers, shortest_repr
from logitlab.core.ulp import relative_error, ulp_error
from logitlab.formulations import Formulation, all_formulations, get
from logitlab.formulations._base import values_only
from logitlab.formulations.run import run

__all__ = [
    "DEFAULT_FRAMEWORKS",
    "FLAGS",
    "SCHEMA_VERSION",
    "Comparison",
    "Row",
    "compare",
    "select_formulations",
]

#: The version of :meth:`Comparison.to_dict`'s layout; it changes when a field changes meaning.
SCHEMA_VERSION = 1

#: The rows compare shows unless asked for more: fast to import, and the post's subject.
DEFAULT_FRAMEWORKS = ("torch", "stable")


@dataclass(frozen=True)
class Row:
    """One formulation's result on the case.

    ``status`` is ``"ok"``, ``"skipped"`` (framework not installed), ``"not applicable"``
    (the code path cannot express the input) or ``"error"`` (the framework raised);
    ``reason`` says why for the last three.  Arrays are float64 holding dtype values.
    Flags come from :func:`logitlab.analysis.flags.classify`, per element:
    ``element_loss_flags`` and ``element_grad_flags`` for the loss and the gradient of each
    logit element, ``element_flags`` both together; ``loss_flags``, ``grad_flags`` and
    ``flags`` are the unions over the elements ("row flags").
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
    element_loss_flags: tuple[tuple[str, ...], ...] = ()
    element_grad_flags: tuple[tuple[str, ...], ...] = ()
    loss_flags: tuple[str, ...] = ()
    grad_flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    quantity: str = "bce"
    #: Where the exact value is defined (not NaN: a fully masked softmax row); the row's
    #: maximum errors are taken over these values only.  ``None``: everywhere.
    defined: np.ndarray | None = None

    @property
    def max_ulp_error(self) -> float:
        return _nanmax(self.ulp_error, self.defined)

    @property
    def max_relative_error(self) -> float:
        return _nanmax(self.relative_error, self.defined)


def _nanmax(a: np.ndarray | None, defined: np.ndarray | None = None) -> float:
    if a is not None and defined is not None:
        a = np.asarray(a)[np.broadcast_to(defined, np.shape(a))]
    if a is None or a.size == 0:
        return math.nan
    if np.isnan(a).any():
        return math.nan
    return float(a.max())


@dataclass(frozen=True)
class Comparison:
    """Every formulation's row for one case, with the exact values.

    ``quantity`` is ``"bce"`` (``case`` a :class:`~logitlab.core.inputs.BCECase`),
    ``"softmax_ce"`` (a :class:`~logitlab.core.inputs.SoftmaxCase`: values are per sample,
    shape ``(N,)`` unreduced, gradients per logit, ``(N, C)``; flags are per sample) or
    ``"focal"`` (a :class:`~logitlab.core.inputs.FocalCase`, elementwise like BCE).
    """

    case: Any
    exact: exact.ExactResult
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = field(default=())
    quantity: str = "bce"

    @property
    def per_sample(self) -> bool:
        """Whether values and flags are per sample (a row of logits), not per element."""
        return self.quantity == "softmax_ce"

    @property
    def n_elements(self) -> int:
        """How many elements (samples for softmax) flags are given for."""
        shape = self.case.shape
        return int(shape[0]) if self.per_sample else int(np.prod(shape))

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

    def __repr__(self) -> str:
        shown = []
        for r in self.rows:
            if r.status != "ok" or r.value is None:
                shown.append(f"{r.formulation.name}: {r.status}")
                continue
            values = np.asarray(r.value).ravel()
            text = shortest_repr(values[0], self.dtype) + (", ..." if values.size > 1 else "")
            flags = f" [{', '.join(r.flags)}]" if r.flags else ""
            shown.append(f"{r.formulation.name}={text}{flags}")
        what = "sample(s)" if self.per_sample else "element(s)"
        return (
            f"Comparison({self.quantity}, {self.dtype.name}, reduction={self.case.reduction}, "
            f"{self.n_elements} {what}: {'; '.join(shown)})"
        )

    def _repr_html_(self) -> str:
        if self.quantity != "bce":
            # the notebook table is BCE's layout; other quantities show the text blocks
            import html

            from logitlab.ui.tables import comparison_blocks

            text = "\n".join(comparison_blocks(self, 100))
            return f"<pre>{html.escape(text)}</pre>"
        from logitlab.ui.html import comparison_html

        return comparison_html(self)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready: the ``compare`` JSON (``logitlab/schemas/compare.json``).

        Non-finite numbers are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
        (:func:`~logitlab.core.numbers.json_number`), everywhere logitlab writes JSON.
        """
        fmt = self.dtype
        case = self.case

        def nums(a: np.ndarray | None) -> Any:
            if a is None:
                return None
            return json_numbers(a)

        def reprs(a: np.ndarray | None) -> Any:
            if a is None:
                return None
            return [shortest_repr(v, fmt) for v in np.asarray(a).ravel()]

        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "compare",
            "quantity": self.quantity,
            "dtype": fmt.name,
            "reduction": case.reduction,
            "shape": list(case.shape),
            "value_shape": list(self.exact.shape),
            "grad_shape": list(self.exact.grad_shape),
            "flags_per": "sample" if self.per_sample else "element",
            "inputs": self._inputs(nums),
            "exact": {
                "value": [exact_json(v) for v in self.exact.values],
                "value_rounded": nums(self.exact_value()),
                "value_repr": reprs(self.exact_value()),
                "grad": [exact_json(g) for g in self.exact.grads],
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
                    "loss_flags": list(r.loss_flags),
                    "grad_flags": list(r.grad_flags),
                    "element_flags": [list(f) for f in r.element_flags],
                    "element_loss_flags": [list(f) for f in r.element_loss_flags],
                    "element_grad_flags": [list(f) for f in r.element_grad_flags],
                    "notes": list(r.notes),
                }
                for r in self.rows
            ],
            "flags": dict(FLAGS),
            "notes": list(self.notes),
        }

    def _inputs(self, nums: Any) -> dict[str, Any]:
        case = self.case
        if self.quantity == "softmax_ce":
            indices = bool(case.class_indices)
            return {
                "logits": nums(case.logits),
                "target": (
                    [int(t) for t in np.asarray(case.target).ravel()]
                    if indices
                    else nums(case.target)
                ),
                "target_kind": "class indices" if indices else "probabilities",
                "weight": nums(case.weight),
                "ignore_index": int(case.ignore_index),
                "label_smoothing": json_number(case.label_smoothing),
            }
        if self.quantity == "focal":
            alpha = getattr(case, "alpha", None)
            return {
                "logits": nums(case.logits),
                "targets": nums(case.targets),
                "alpha": None if alpha is None else json_number(alpha),
                "gamma": json_number(getattr(case, "gamma", math.nan)),
            }
        return {
            "logits": nums(case.logits),
            "targets": nums(case.targets),
            "weight": nums(case.weight),
            "pos_weight": nums(case.pos_weight),
        }


def _errors(
    values: np.ndarray, exacts: Sequence[Any], fmt: FloatFormat
) -> tuple[np.ndarray, np.ndarray]:
    flat = np.asarray(values, dtype=np.float64).ravel()
    ulps = np.array([ulp_error(c, e, fmt) for c, e in zip(flat, exacts)])
    rels = np.array([relative_error(c, e) for c, e in zip(flat, exacts)])
    return ulps.reshape(np.shape(values)), rels.reshape(np.shape(values))


def _row(
    f: Formulation,
    case: Any,
    ex: exact.ExactResult,
    exact_value: np.ndarray,
    exact_grad: np.ndarray,
    exact_elements: np.ndarray,
    *,
    quantity: str = "bce",
    element_shape: tuple[int, ...] | None = None,
    classify_kwargs: dict[str, Any] | None = None,
) -> Row:
    """Run ``f`` on ``case`` and measure it: the one way compare (any quantity) makes a row.

    ``element_shape`` is the shape of the unreduced value (the logits' shape for
    elementwise losses, ``(N,)`` for softmax); ``classify_kwargs`` what the quantity adds
    to :func:`~logitlab.analysis.flags.classify_run` (BCE: the weight; softmax: the
    coefficients)."""
    result = run(f, case)
    if not result.ok:
        return Row(f, result.code, result.status, result.reason, quantity=quantity)
    shape = tuple(case.shape) if element_shape is None else element_shape
    extra = {"weight": case.weight} if classify_kwargs is None else classify_kwargs
    fmt = case.dtype
    assert result.value is not None
    value = result.value.reshape(ex.shape)
    ulps, rels = _errors(value, ex.values, fmt)
    grad = gulps = grels = None
    if result.grad is not None:
        grad = result.grad.reshape(ex.grad_shape)
        gulps, grels = _errors(grad, ex.grads, fmt)
    # A reduced value cannot say which element went wrong: the same code path, unreduced,
    # gives each element's own loss.
    elements = value
    if case.reduction != "none":
        with values_only():  # its gradient would go unread
            unreduced = run(f, replace(case, reduction="none"))
        elements = (
            unreduced.value.reshape(shape)
            if unreduced.ok and unreduced.value is not None
            else np.full(shape, np.nan if not np.isfinite(value).all() else 0.0)
        )
    flags = classify_run(
        result,
        value=elements,
        exact_value=exact_elements,
        grad=grad,
        exact_grad=exact_grad,
        logits=case.logits,
        **extra,
    )
    return Row(
        f,
        result.code,
        "ok",
        None,
        value,
        grad,
        ulps,
        rels,
        gulps,
        grels,
        element_flags=flags.per_element("both"),
        flags=flags.flags,
        element_loss_flags=flags.per_element("loss"),
        element_grad_flags=flags.per_element("gradient"),
        loss_flags=flags.loss_flags,
        grad_flags=flags.grad_flags,
        notes=tuple(result.notes()),
        quantity=quantity,
        defined=None if not np.isnan(exact_value).any() else ~np.isnan(exact_value),
    )


def select_formulations(
    quantity: str,
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
) -> list[Formulation]:
    """The formulations named, or those of the frameworks named (``"all"`` for every one)."""
    if formulations is not None:
        if isinstance(formulations, str):
            formulations = [formulations]
        return [
            get(str(name).strip().lower(), quantity, argument="formulations")
            for name in formulations
        ]
    available = all_formulations(quantity)
    wanted = DEFAULT_FRAMEWORKS if frameworks is None else tuple(frameworks)
    if isinstance(frameworks, str):
        wanted = (frameworks,)
    # Names are case-insensitive everywhere (frameworks, formulations, dtypes, reductions).
    wanted = tuple(str(w).strip().lower() for w in wanted)
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
    per_element = exact.bce_loss(case.logits, case.targets, case.weight, case.pos_weight, "none")
    ex = exact.reduce(per_element, case.reduction)
    # Rounded once here, not once per row: each rounding is an mpmath step per element.
    exact_value, exact_grad = ex.value_rounded(case.dtype), ex.grad_rounded(case.dtype)
    exact_elements = (
        exact_value if case.reduction == "none" else per_element.value_rounded(case.dtype)
    )
    rows = tuple(_row(f, case, ex, exact_value, exact_grad, exact_elements) for f in chosen)
    return Comparison(case=case, exact=ex, rows=rows, notes=case.notes)
