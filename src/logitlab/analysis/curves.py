"""Loss and gradient of one element against the logit z, for every formulation.

Each formulation is run *once* over all curve points (one framework call on a vector of
logits at the dtype, ``reduction="none"``, so the gradient is ``d loss_i / d z_i``).  The
reference curve is exact to far below one ULP of every dtype, computed fast:

* in ``np.longdouble`` (x86's 64-bit significand; relative error about ``2**-61``) with the
  stable formulas ``softplus(z) = max(z, 0) + log1p(exp(-|z|))`` and
  ``sigma(z) = 1 / (1 + exp(-z))`` on the side where ``exp`` cannot overflow;
* the gradient ``(1 - y) sigma(z) - pos_weight y sigma(-z)`` cancels near its root; every
  point where the cancellation would leave fewer than ``precision + 6`` good bits for the
  dtype (and every point, where ``longdouble`` is no wider than float64) is recomputed
  exactly in mpmath by :func:`logitlab.exact.bce_grad`.

``tests/explore/test_curves.py`` checks the fast reference against :mod:`logitlab.exact`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab import exact
from logitlab.analysis.flags import FLAGS, classify_run
from logitlab.core.errors import InputError
from logitlab.core.formats import FloatFormat, get_format
from logitlab.core.inputs import BCECase
from logitlab.core.numbers import json_numbers, shortest_repr
from logitlab.core.ulp import ulp_error_array
from logitlab.formulations import Formulation
from logitlab.formulations.run import run

__all__ = [
    "CURVE_FLAGS",
    "MAX_CURVE_POINTS",
    "MAX_CURVE_Z",
    "Curve",
    "CurveRow",
    "bce_curve",
    "bce_curve_case",
    "exact_bce_curve",
    "select",
]

#: Most points one curve may have, and the largest |z| it may reach.
MAX_CURVE_POINTS = 2001
MAX_CURVE_Z = 1000.0
#: The flags a curve row can carry (every flag of the classifier).
CURVE_FLAGS = tuple(FLAGS)

_LD = np.longdouble
_LD_BITS = np.finfo(_LD).nmant + 1
# The bits the longdouble evaluation of a single term keeps (a few ulps of libm error).
_LD_GOOD_BITS = _LD_BITS - 3


@dataclass(frozen=True)
class CurveRow:
    """One formulation over the curve's points; arrays are float64 holding dtype values."""

    name: str
    framework: str
    code: str
    via_probabilities: bool
    status: str
    reason: str | None = None
    value: np.ndarray | None = None
    grad: np.ndarray | None = None
    ulp_error: np.ndarray | None = None
    grad_ulp_error: np.ndarray | None = None
    flags: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Curve:
    """Loss and gradient of one element against z for each formulation, with the reference."""

    dtype: FloatFormat
    target: float
    weight: float | None
    pos_weight: float | None
    z: np.ndarray
    exact_value: np.ndarray
    exact_grad: np.ndarray
    rows: tuple[CurveRow, ...]
    reference: str

    def to_dict(self) -> dict[str, Any]:
        def nums(a: np.ndarray | None) -> Any:
            return None if a is None else json_numbers(a)

        return {
            "dtype": self.dtype.name,
            "target": self.target,
            "weight": self.weight,
            "pos_weight": self.pos_weight,
            "points": int(self.z.size),
            "z": nums(self.z),
            "reference": self.reference,
            "exact": {"value": nums(self.exact_value), "grad": nums(self.exact_grad)},
            "rows": [
                {
                    "name": r.name,
                    "framework": r.framework,
                    "code": r.code,
                    "via_probabilities": r.via_probabilities,
                    "status": r.status,
                    "reason": r.reason,
                    "value": nums(r.value),
                    "grad": nums(r.grad),
                    "ulp_error": nums(r.ulp_error),
                    "grad_ulp_error": nums(r.grad_ulp_error),
                    "flags": {k: [list(iv) for iv in v] for k, v in r.flags.items()},
                }
                for r in self.rows
            ],
        }


def select(
    formulations: Sequence[str] | None = None, frameworks: Sequence[str] | None = None
) -> list[Formulation]:
    """The BCE formulations the explorer shows: those named, else those of ``frameworks``
    (``["all"]`` for every one), else compare's default set.

    The same choice as :func:`logitlab.analysis.compare.select_formulations`, so the
    explorer's default rows are the CLI's.  Raises :class:`~logitlab.InputError` naming
    ``formulations`` or ``frameworks`` for unknown names.
    """
    from logitlab.analysis.compare import select_formulations

    return list(select_formulations("bce", formulations, frameworks))


def _softplus(z: np.ndarray) -> np.ndarray:
    # softplus(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # sigma(z) = 1 / (1 + exp(-z)) = exp(z) / (1 + exp(z)); take the side where exp <= 1.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def exact_bce_curve(
    z: np.ndarray, y: float, weight: float = 1.0, pos_weight: float = 1.0, precision: int = 53
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The exact BCE and its derivative at each logit, as float64 ``hi`` plus ``lo``.

    Returns ``(value_hi, value_lo, grad_hi, grad_lo)``; ``hi + lo`` carries the exact value
    to at least ``precision + 6`` bits (``precision`` is the dtype's).  ``z``, ``y``, the
    weights are the binary values the framework received.  See the module docstring.
    """
    zl = np.asarray(z, dtype=np.float64).astype(_LD)
    yl, wl, pl = _LD(y), _LD(weight), _LD(pos_weight)
    value = np.zeros_like(zl)
    if pl * yl != 0:
        value = value + pl * yl * _softplus(-zl)
    if 1 - yl != 0:
        value = value + (1 - yl) * _softplus(zl)
    value = wl * value
    a = (1 - yl) * _sigmoid(zl)
    b = pl * yl * _sigmoid(-zl)
    diff = a - b
    grad = wl * diff
    scale = np.maximum(np.abs(a), np.abs(b))
    with np.errstate(divide="ignore"):
        lost = np.where(diff != 0, np.log2(scale / np.abs(diff)), np.inf)
    need = (scale != 0) & (_LD_GOOD_BITS - lost < precision + 6)
    if _LD_BITS <= 53:
        need = np.ones_like(need)
    v_hi = value.astype(np.float64)
    v_lo = (value - v_hi.astype(_LD)).astype(np.float64)
    g_hi = grad.astype(np.float64)
    g_lo = (grad - g_hi.astype(_LD)).astype(np.float64)
    zf = np.asarray(z, dtype=np.float64)
    for i in np.flatnonzero(need):
        g = exact.bce_grad(float(zf[i]), float(y), float(weight), float(pos_weight))
        hi = float(g)
        g_hi[i] = hi
        g_lo[i] = float(g - hi)
    if _LD_BITS <= 53:
        for j in range(zf.size):
            v = exact.bce(float(zf[j]), float(y), float(weight), float(pos_weight))
            v_hi[j] = float(v)
            v_lo[j] = float(v - v_hi[j])
    return v_hi, v_lo, g_hi, g_lo


def _intervals(z: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """Runs of consecutive points where ``mask`` holds, as ``(z_first, z_last)``."""
    out: list[tuple[float, float]] = []
    if not mask.any():
        return out
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(m) == 1)
    ends = np.flatnonzero(np.diff(m) == -1) - 1
    for s, e in zip(starts, ends):
        out.append((float(z[s]), float(z[e])))
    return out


def _row(
    f: Formulation,
    case: BCECase,
    fmt: FloatFormat,
    exact_parts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> CurveRow:
    base: dict[str, Any] = {
        "name": f.name,
        "framework": f.framework,
        "code": f.code_line(case),
        "via_probabilities": f.via_probabilities,
    }
    result = run(f, case)
    if not result.ok:
        return CurveRow(**base, status=result.status, reason=result.reason)
    v_hi, v_lo, g_hi, g_lo = exact_parts
    assert result.value is not None
    value = result.value.ravel()
    grad = None if result.grad is None else result.grad.ravel()
    z = case.logits.ravel()
    element = classify_run(
        result,
        value=value,
        exact_value=fmt.round(v_hi),
        grad=grad,
        exact_grad=None if grad is None else fmt.round(g_hi),
        logits=z,
        weight=None if case.weight is None else case.weight.ravel(),
    )
    flags = {name: _intervals(z, element.any(name)) for name in element.flags}
    return CurveRow(
        **base,
        status="ok",
        value=value,
        grad=grad,
        ulp_error=ulp_error_array(value, v_hi, fmt, v_lo),
        grad_ulp_error=None if grad is None else ulp_error_array(grad, g_hi, fmt, g_lo),
        flags={k: v for k, v in flags.items() if v},
    )


def _scalar(value: Any, argument: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(argument, f"expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(argument, f"{v!r} is not finite; give a finite number")
    return v


def sweep_grid(lo: float, hi: float, points: Any, fmt: FloatFormat, max_points: int) -> np.ndarray:
    """``points`` evenly spaced logits in ``[lo, hi]`` (``lo < hi``, checked by the caller)
    rounded to ``fmt``, without the duplicates that rounding makes; at least two values.

    Raises :class:`InputError` for ``points`` outside ``[2, max_points]`` and for a range
    that holds a single ``fmt`` value (``[0, 1e-188]`` is all 0 in float32).
    """
    if isinstance(points, bool) or not isinstance(points, int):
        raise InputError("points", f"expected an integer, got {points!r}")
    if not 2 <= points <= max_points:
        raise InputError("points", f"{points} is outside [2, {max_points}]")
    grid = np.unique(fmt.round(np.linspace(float(lo), float(hi), points)))
    if grid.size < 2:
        raise InputError(
            "z_max",
            f"[{lo!r}, {hi!r}] holds a single {fmt.name} value ({shortest_repr(grid[0], fmt)});"
            " give a wider range",
        )
    return grid


def bce_curve_case(
    target: float,
    *,
    dtype: str | FloatFormat = "float32",
    weight: float | None = None,
    pos_weight: float | None = None,
    z_min: float = -300.0,
    z_max: float = 300.0,
    points: int = 1201,
) -> tuple[FloatFormat, BCECase]:
    """The format and the one-element-per-logit case :func:`bce_curve` computes, its
    arguments checked (the same :class:`~logitlab.InputError` for each) and nothing run:
    what a caller validates with before queueing curves to compute later."""
    fmt = get_format(dtype)
    y = _scalar(target, "target")
    if y is None:
        raise InputError("target", "is required")
    w = _scalar(weight, "weight")
    pw = _scalar(pos_weight, "pos_weight")
    lo = _scalar(z_min, "z_min")
    hi = _scalar(z_max, "z_max")
    assert lo is not None and hi is not None
    for name, v in (("z_min", lo), ("z_max", hi)):
        if abs(v) > MAX_CURVE_Z:
            raise InputError(name, f"{v!r} is outside [-{MAX_CURVE_Z:g}, {MAX_CURVE_Z:g}]")
    if not lo < hi:
        raise InputError("z_max", f"must be greater than z_min ({lo!r}), got {hi!r}")
    grid = sweep_grid(lo, hi, points, fmt, MAX_CURVE_POINTS)
    try:
        case = BCECase.from_user(grid, y, weight=w, pos_weight=pw, reduction="none", dtype=fmt)
    except InputError as err:
        # BCECase speaks of arrays ("targets"); this function takes one target.
        argument = "target" if err.argument == "targets" else err.argument
        raise InputError(argument, err.message) from None
    return fmt, case


def bce_curve(
    target: float,
    *,
    dtype: str | FloatFormat = "float32",
    weight: float | None = None,
    pos_weight: float | None = None,
    z_min: float = -300.0,
    z_max: float = 300.0,
    points: int = 1201,
    formulations: Sequence[Formulation] | None = None,
) -> Curve:
    """Every BCE formulation's loss and gradient of one element over ``points`` logits.

    The logits are ``points`` evenly spaced values in ``[z_min, z_max]`` rounded to the dtype
    (duplicates that rounding creates are dropped); ``formulations`` defaults to
    :func:`select`'s default set.  Raises :class:`~logitlab.InputError`
    naming the argument for a target outside [0, 1], a range outside
    ``[-MAX_CURVE_Z, MAX_CURVE_Z]`` or empty, too many or too few points, an unknown dtype.

    >>> c = bce_curve(0.3, points=3)
    >>> c.z.tolist(), [r.value.tolist() for r in c.rows if r.name == "torch.logits"]
    ([-300.0, 0.0, 300.0], [[90.0, 0.6931471824645996, 210.0]])
    """
    fmt, case = bce_curve_case(
        target,
        dtype=dtype,
        weight=weight,
        pos_weight=pos_weight,
        z_min=z_min,
        z_max=z_max,
        points=points,
    )
    yr = float(case.targets.ravel()[0])
    wr = 1.0 if case.weight is None else float(case.weight.ravel()[0])
    pwr = 1.0 if case.pos_weight is None else float(case.pos_weight.ravel()[0])
    parts = exact_bce_curve(case.logits, yr, wr, pwr, fmt.precision)
    chosen = select() if formulations is None else formulations
    rows = tuple(_row(f, case, fmt, parts) for f in chosen)
    reference = (
        f"exact: long double ({_LD_BITS}-bit significand) stable formulas, gradient points "
        "near cancellation in mpmath; checked against logitlab.exact"
    )
    return Curve(
        dtype=fmt,
        target=yr,
        weight=None if case.weight is None else wr,
        pos_weight=None if case.pos_weight is None else pwr,
        z=case.logits.ravel().copy(),
        exact_value=parts[0],
        exact_grad=parts[2],
        rows=rows,
        reference=reference,
    )
