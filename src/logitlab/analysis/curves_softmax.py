"""Curves beyond BCE: each formulation's loss as one logit sweeps, for softmax cross-entropy
(one chosen logit of a row of ``K``) and binary focal loss (the one logit).

Both run the real code paths through the comparisons' one row builder
(:func:`~logitlab.analysis.compare_softmax.compare_softmax` and
:func:`~logitlab.analysis.compare_focal.compare_focal` with ``reduction="none"``, one
sample or element per point), so every value, error and flag is the one ``compare`` gives
at that point; nothing is computed here but the grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from logitlab.analysis.compare import Comparison
from logitlab.analysis.curves import _intervals, sweep_grid
from logitlab.core.errors import InputError
from logitlab.core.formats import FloatFormat, get_format
from logitlab.core.numbers import json_number, json_numbers

__all__ = ["MAX_SWEEP_POINTS", "MAX_SWEEP_Z", "focal_curve", "softmax_curve"]

#: Most points one curve may have (each point costs one exact mpmath evaluation).
MAX_SWEEP_POINTS = 241
#: Largest |z| a sweep may reach.
MAX_SWEEP_Z = 1000.0


def _grid(lo: Any, hi: Any, points: Any, fmt: FloatFormat) -> np.ndarray:
    for name, v in (("z_min", lo), ("z_max", hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(name, f"expected a number, got {v!r}")
        if not math.isfinite(v):
            raise InputError(name, f"{v!r} is not finite; give a finite number")
        if abs(v) > MAX_SWEEP_Z:
            raise InputError(name, f"{v!r} is outside [-{MAX_SWEEP_Z:g}, {MAX_SWEEP_Z:g}]")
    if not lo < hi:
        raise InputError("z_max", f"must be greater than z_min ({lo!r}), got {hi!r}")
    return sweep_grid(lo, hi, points, fmt, MAX_SWEEP_POINTS)


def _curve_dict(
    c: Comparison, z: np.ndarray, column: int | None, extra: dict[str, Any]
) -> dict[str, Any]:
    """The per-point rows of ``c`` (one sample or element per point of ``z``) as JSON."""

    def nums(a: np.ndarray | None) -> Any:
        return None if a is None else json_numbers(a)

    def grad_of(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        a = np.asarray(a, dtype=np.float64)
        return a.reshape(z.size, -1)[:, column] if column is not None else a.ravel()

    rows = []
    for r in c.rows:
        out: dict[str, Any] = {
            "name": r.formulation.name,
            "framework": r.formulation.framework,
            "code": r.code,
            "via_probabilities": r.formulation.via_probabilities,
            "status": r.status,
            "reason": r.reason,
        }
        if r.status == "ok":
            per = r.element_flags
            names = sorted({f for fl in per for f in fl})
            out.update(
                value=nums(None if r.value is None else np.asarray(r.value).ravel()),
                ulp_error=nums(None if r.ulp_error is None else np.asarray(r.ulp_error).ravel()),
                grad=nums(grad_of(r.grad)),
                flags={
                    name: [list(iv) for iv in _intervals(z, np.array([name in f for f in per]))]
                    for name in names
                },
            )
        rows.append(out)
    return {
        "quantity": c.quantity,
        "dtype": c.dtype.name,
        "points": int(z.size),
        "z": nums(z),
        "exact": {
            "value": nums(np.asarray(c.exact_value()).ravel()),
            "grad": nums(grad_of(c.exact_grad())),
        },
        "rows": rows,
        **extra,
    }


def softmax_curve(
    logits: Sequence[float],
    target: Any,
    *,
    sweep: int,
    z_min: float = -30.0,
    z_max: float = 30.0,
    points: int = 121,
    dtype: str | FloatFormat = "float32",
    label_smoothing: float = 0.0,
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Each softmax cross-entropy formulation's loss (and gradient with respect to the swept
    logit) as logit ``sweep`` of the row ``logits`` runs over ``points`` values in
    ``[z_min, z_max]`` (rounded to the dtype), the other logits fixed; ``target`` a class
    index or a distribution over the row's classes.  JSON-ready; raises
    :class:`~logitlab.InputError` naming the argument for bad input.

    >>> c = softmax_curve([0.0, 0.0], 1, sweep=1, z_min=-200, z_max=0, points=2)
    >>> c["z"], [r["value"] for r in c["rows"] if r["name"] == "torch.log_of_softmax"]
    ([-200.0, 0.0], [['Infinity', 0.6931471824645996]])
    """
    from logitlab.analysis.compare_softmax import compare_softmax

    fmt = get_format(dtype)
    if isinstance(logits, (str, bytes)) or not isinstance(logits, Sequence) or not logits:
        raise InputError("logits", "give one row of logits")
    k = len(logits)
    if isinstance(sweep, bool) or not isinstance(sweep, int):
        raise InputError("sweep", f"expected an integer, got {sweep!r}")
    if not 0 <= sweep < k:
        raise InputError("sweep", f"{sweep} is not a class of the row (0 to {k - 1})")
    if isinstance(logits[sweep], (int, float)) and logits[sweep] == -math.inf:
        raise InputError("sweep", f"logit {sweep} is masked (-inf); sweep an unmasked one")
    z = _grid(z_min, z_max, points, fmt)
    rows = [list(logits) for _ in z]
    for row, v in zip(rows, z.tolist()):
        row[sweep] = v
    if isinstance(target, Sequence) and not isinstance(target, (str, bytes)):
        targets: Any = [list(target) for _ in z]
    else:
        targets = [target] * z.size
    c = compare_softmax(
        rows,
        targets,
        dtype=fmt,
        label_smoothing=label_smoothing,
        reduction="none",
        formulations=formulations,
        frameworks=frameworks,
    )
    return _curve_dict(
        c, z, sweep, {"sweep": sweep, "logits": [json_number(float(v)) for v in logits]}
    )


def focal_curve(
    target: float,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    z_min: float = -30.0,
    z_max: float = 30.0,
    points: int = 121,
    dtype: str | FloatFormat = "float32",
    formulations: Sequence[str] | None = None,
    frameworks: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Each binary focal loss formulation's loss and gradient of one element with target
    ``target`` at ``points`` logits in ``[z_min, z_max]`` (rounded to the dtype).  JSON-ready;
    raises :class:`~logitlab.InputError` naming the argument for bad input.

    >>> c = focal_curve(1.0, z_min=-1, z_max=1, points=3, formulations=["torch.naive_focal"])
    >>> c["z"], len(c["rows"][0]["value"])
    ([-1.0, 0.0, 1.0], 3)
    """
    from logitlab.analysis.compare_focal import compare_focal

    fmt = get_format(dtype)
    z = _grid(z_min, z_max, points, fmt)
    try:
        c = compare_focal(
            z.tolist(),
            [target],
            alpha=alpha,
            gamma=gamma,
            dtype=fmt,
            reduction="none",
            formulations=formulations,
            frameworks=frameworks,
        )
    except InputError as err:
        argument = "target" if err.argument == "targets" else err.argument
        raise InputError(argument, err.message) from None
    return _curve_dict(c, z, None, {"target": target, "alpha": alpha, "gamma": gamma})
