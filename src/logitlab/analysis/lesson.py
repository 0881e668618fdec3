"""The explorer's guided lesson and its "where it breaks" data.

* :func:`steps` -- the post's three examples plus a fourth, each a state of the explorer
  (logits, targets, dtype, rows, range) with one or two sentences: what to move and what
  to watch.  Every number in a sentence comes from the format
  (:class:`~logitlab.core.formats.FloatFormat`) or from the core's saturation search
  (:func:`~logitlab.analysis.saturation.saturation`), never typed in; the *reason* for a
  break is not written here at all: the page shows the core's explanation
  (:func:`~logitlab.analysis.explain.explain`) of the step's state beside it.
* :func:`presets` -- every step at float32, bfloat16 and float16.
* :func:`relative_errors` -- per-point relative error of a curve row against the exact curve.
* :func:`breakpoints` -- the exact onsets (:mod:`logitlab.analysis.breakpoints`, through the
  audit's search) for one target and dtype, cached.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab.core.errors import InputError
from logitlab.core.formats import FloatFormat, get_format
from logitlab.core.numbers import shortest_repr

__all__ = [
    "LESSON_DTYPES",
    "STEP_KEYS",
    "Step",
    "breakpoints",
    "presets",
    "relative_errors",
    "step",
    "steps",
]

#: The dtypes the lesson's steps are written for (float64's thresholds lie beyond the
#: sliders' range for the hand-written sigmoid).
LESSON_DTYPES = ("float32", "bfloat16", "float16")
#: The steps, in order.
STEP_KEYS = ("agree", "break", "naive", "vanish")

# The rows of the hand-written-sigmoid step: the post's p = 1/(1+exp(-z)) (numpy.naive),
# the same formula on torch.sigmoid, and the two library paths.
_NAIVE_ROWS = ("numpy.naive", "torch.naive", "torch.probabilities", "torch.logits")


@dataclass(frozen=True)
class Step:
    """One step of the lesson: the explorer's state and what to do there."""

    key: str
    number: int
    title: str
    dtype: str
    z: tuple[float, ...]
    y: tuple[float, ...]
    move: str
    watch: str
    #: The row whose break the step is about (the page shows the explanation's sentences
    #: that name it beside the step).
    focus: str
    formulations: tuple[str, ...] | None = None
    view: tuple[float, float] = (-30.0, 30.0)
    extra: dict[str, Any] = field(default_factory=dict)

    def query(self) -> str:
        """The page's URL query for this step (a shareable link)."""
        parts = [
            f"step={self.key}",
            "z=" + ",".join(_num(v) for v in self.z),
            "y=" + ",".join(_num(v) for v in self.y),
            f"dtype={self.dtype}",
            f"zlo={_num(self.view[0])}",
            f"zhi={_num(self.view[1])}",
        ]
        if self.formulations:
            parts.append("f=" + ",".join(self.formulations))
        return "&".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "number": self.number,
            "title": self.title,
            "dtype": self.dtype,
            "z": list(self.z),
            "y": list(self.y),
            "formulations": None if self.formulations is None else list(self.formulations),
            "view": list(self.view),
            "move": self.move,
            "watch": self.watch,
            "focus": self.focus,
            "query": self.query(),
        }


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _fmt(dtype: str | FloatFormat) -> FloatFormat:
    fmt = get_format(dtype)
    if fmt.name not in LESSON_DTYPES:
        raise InputError("dtype", f"the lesson is written for {', '.join(LESSON_DTYPES)}")
    return fmt


def step(key: str, dtype: str | FloatFormat = "float32") -> Step:
    """Step ``key`` (one of :data:`STEP_KEYS`) at ``dtype``."""
    from logitlab.analysis.saturation import saturation

    fmt = _fmt(dtype)
    d = fmt.name
    sat = saturation(d)
    one = sat.one_from
    zero = sat.zero_up_to
    assert one is not None and zero is not None
    one_s = shortest_repr(one, fmt)
    # The logits the steps use: 20 (the post's) or, where sigma(z) rounds to 1 only further
    # out, the first integer 3 past the threshold; -90 for the hand-written sigmoid, whose
    # exp(-z) overflows for z < -log(max).
    z_out = max(20.0, math.ceil(one) + 3.0)
    overflow = math.log(fmt.max)
    z_naive = -90.0 if overflow < 90.0 else math.floor(-overflow) - 2.0
    z_out_s, z_naive_s = _num(z_out), _num(z_naive)
    if key == "agree":
        return Step(
            key,
            1,
            "Both paths agree",
            d,
            (-2.0, 2.0),
            (0.3, 0.7),
            move=(
                f"Drag z₁ or z₂ anywhere between {shortest_repr(zero, fmt)} and {one_s} "
                f"(the unshaded part of the plots): the {d} probabilities and logits paths "
                "stay within a few ULPs of the exact loss."
            ),
            watch="Watch the error columns stay green and the curves lie on top of each other.",
            focus="torch.probabilities",
        )
    if key == "break":
        return Step(
            key,
            2,
            "Push the sliders out: the probabilities path breaks",
            d,
            (z_out, z_out),
            (0.3, 0.7),
            move=(
                f"Both logits are at {z_out_s}, past z = {one_s}, where {d} torch.sigmoid "
                f"rounds to exactly 1. Drag z₁ back below {one_s} and out again."
            ),
            watch=(
                "Watch torch.probabilities leave the exact loss for the −100 clamp and its "
                "gradient drop to 0, while torch.logits stays on the exact curve."
            ),
            focus="torch.probabilities",
        )
    if key == "naive":
        return Step(
            key,
            3,
            "The hand-written sigmoid at " + z_naive_s,
            d,
            (z_naive,),
            (1.0,),
            formulations=_NAIVE_ROWS,
            view=(min(-120.0, z_naive - 30.0), 30.0),
            move=(
                f"z₁ = {z_naive_s}: p = 1/(1+exp(−z)) needs exp({_num(-z_naive)}), above "
                f"{d}'s largest value {fmt.max:.8g}, so exp overflows, p = 0 "
                "and log p = −inf. Drag z₁ towards 0 and find where the loss becomes finite."
            ),
            watch="Watch numpy.naive's loss (inf, drawn as a band) against torch.logits'.",
            focus="numpy.naive",
        )
    if key == "vanish":
        return Step(
            key,
            4,
            "Even the logits path stops learning",
            d,
            (z_out,),
            (1.0,),
            move=(
                f"A hard target y = 1 at z = {z_out_s}: from {one_s} up {d} σ(z) rounds to "
                "exactly 1 = y, so torch.logits' gradient σ(z) − y is 0. "
                f"Drag z₁ below {one_s} and the gradient comes back."
            ),
            watch=(
                "Watch the d loss / dz column and the gradient error plot: torch.logits is "
                "flagged “gradient vanished”; stable.bce keeps the gradient."
            ),
            focus="torch.logits",
        )
    raise InputError("step", f"{key!r} is not one of {', '.join(STEP_KEYS)}")


def steps(dtype: str | FloatFormat = "float32") -> list[Step]:
    """The lesson's four steps at ``dtype``."""
    return [step(k, dtype) for k in STEP_KEYS]


def presets() -> list[dict[str, Any]]:
    """Every step at every lesson dtype, as ``{"label", "query", "step", "dtype"}``."""
    out = []
    for d in LESSON_DTYPES:
        for s in steps(d):
            out.append(
                {
                    "label": f"{s.number}. {s.title} ({d})",
                    "query": s.query(),
                    "step": s.key,
                    "dtype": d,
                }
            )
    return out


def relative_errors(computed: np.ndarray | None, exact: np.ndarray) -> np.ndarray | None:
    """``|computed - exact| / |exact|`` per point: 0 where both are 0, inf where only the
    exact value is 0, NaN where the computed value is NaN or infinite (the exact BCE and its
    gradient are finite at finite z)."""
    if computed is None:
        return None
    c = np.asarray(computed, dtype=np.float64)
    e = np.asarray(exact, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.abs(c - e)
        rel = np.where(e != 0, diff / np.abs(e), np.where(diff == 0, 0.0, np.inf))
    rel = np.where(np.isfinite(c), rel, np.nan)
    return rel


def breakpoints(
    target: float,
    dtype: str | FloatFormat,
    formulations: Sequence[str],
    weight: float | None = None,
    pos_weight: float | None = None,
) -> dict[str, Any]:
    """The exact onsets of every breakpoint criterion for one target at one dtype.

    ``{"dtype", "target", "criteria", "threshold", "onsets": [Onset.to_dict(), ...]}``,
    from :func:`logitlab.analysis.audit.audit` with this single target (its search runs
    for soft targets too).  Cached: the same question answers at once.
    """
    fmt = get_format(dtype)
    return _breakpoints(float(target), fmt.name, tuple(formulations), weight, pos_weight)


@functools.lru_cache(maxsize=128)
def _breakpoints(
    target: float,
    dtype: str,
    formulations: tuple[str, ...],
    weight: float | None,
    pos_weight: float | None,
) -> dict[str, Any]:
    from logitlab.analysis.audit import audit
    from logitlab.analysis.breakpoints import CRITERIA, breakpoint_threshold

    result = audit(
        formulations=list(formulations),
        dtypes=[dtype],
        targets=[target],
        weight=weight,
        pos_weight=pos_weight,
        points=64,
        breakpoints="all",
    )
    onsets = [o.to_dict() for o in result.breakpoints]
    return {
        "dtype": dtype,
        "target": onsets[0]["target"] if onsets else target,
        "criteria": dict(CRITERIA),
        "threshold": breakpoint_threshold(get_format(dtype)),
        "onsets": onsets,
    }
