"""The binary focal loss audit: every focal formulation over the audit's logits and targets.

Logits are the BCE audit's (:func:`~logitlab.analysis.points.logit_points`: every finite
value of a 16-bit format, a sweep for float32/float64), targets the settings' (hard 0/1 and
soft), ``alpha`` and ``gamma`` the settings' when it has them (0.25 and 2, the usual
defaults, otherwise).  The reference is :func:`logitlab.exact._fast_focal.focal`, proven
against mpmath in the tests.  Breakpoints are per target and side as for BCE
(:func:`~logitlab.analysis.breakpoints.side_sign`: *against* is ``z > 0`` for ``y <= 0.5``),
exhaustive for 16-bit formats and searched for float32/float64 (hard targets, or every
target with ``breakpoints="all"``).  Every row runs through
:func:`logitlab.formulations.run.run`; flags and criteria come from
:func:`logitlab.analysis.flags.classify`.  A path that takes hard targets only (kornia,
the hand-written one) is run again on those, and its row says so.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from logitlab.analysis.audit_rows import Row, plot_bins, plot_limit, row_from
from logitlab.analysis.breakpoints import (
    CLEAN,
    CRITERIA,
    SIDES,
    WINDOW,
    Evaluate,
    Onset,
    criteria,
    magnitudes,
    onsets_from_masks,
    search,
    side_sign,
)
from logitlab.analysis.measure import measure
from logitlab.analysis.points import edges, logit_points, targets_for
from logitlab.core.formats import FloatFormat, get_format
from logitlab.core.inputs import FocalCase
from logitlab.exact import _fast_focal
from logitlab.exact.fast import Reference
from logitlab.formulations import Formulation, get
from logitlab.formulations.run import run

__all__ = ["DEFAULT_ALPHA", "DEFAULT_GAMMA", "focal_parameters", "run_dtype"]

DEFAULT_ALPHA = 0.25
DEFAULT_GAMMA = 2.0

Lane = tuple[float, str]


def focal_parameters(settings: Any) -> tuple[float | None, float]:
    """``(alpha, gamma)`` from the settings (their ``alpha``/``gamma`` fields when present)."""
    alpha = getattr(settings, "alpha", DEFAULT_ALPHA)
    gamma = getattr(settings, "gamma", DEFAULT_GAMMA)
    return (None if alpha is None else float(alpha)), float(gamma)


def _case(fmt: FloatFormat, z: np.ndarray, y: np.ndarray, settings: Any) -> FocalCase:
    alpha, gamma = focal_parameters(settings)
    return FocalCase(z, y, fmt, alpha, gamma, "none")


def _reference(fmt: FloatFormat, z: np.ndarray, y: np.ndarray, settings: Any) -> Reference:
    alpha, gamma = focal_parameters(settings)
    return _fast_focal.focal(z, y, fmt, alpha, gamma)


def _lane_of(z: np.ndarray, y: np.ndarray, lanes: list[Lane]) -> np.ndarray:
    """Each element's lane (-1 for z = 0 and non-finite z)."""
    out = np.full(z.shape, -1, dtype=np.int64)
    ok = np.isfinite(z) & (z != 0)
    for i, (t, side) in enumerate(lanes):
        out[ok & (y == t) & (np.sign(z) == side_sign(t, side))] = i
    return out


def _evaluator(f: Formulation, settings: Any, fmt: FloatFormat, lanes: list[Lane]) -> Evaluate:
    signs = np.array([side_sign(t, s) for t, s in lanes], dtype=np.float64)
    ys = np.array([t for t, _ in lanes])

    def evaluate(lane_ids: np.ndarray, ordinals: np.ndarray) -> dict[str, np.ndarray] | None:
        z = signs[lane_ids] * magnitudes(ordinals, fmt)
        y = ys[lane_ids]
        result = run(f, _case(fmt, z, y, settings))
        if not result.ok:
            return None
        return criteria(fmt, result, _reference(fmt, z, y, settings), logits=z)

    return evaluate


def _onsets(
    f: Formulation,
    fmt: FloatFormat,
    lanes: list[Lane],
    found: dict[tuple[int, str], float | None],
    method: str,
) -> list[Onset]:
    return [
        Onset(f.name, fmt.name, t, side, name, found[(i, name)], method)
        for i, (t, side) in enumerate(lanes)
        for name in CRITERIA
        if (i, name) in found
    ]


def _searched(f: Formulation, settings: Any, fmt: FloatFormat, lanes: list[Lane]) -> list[Onset]:
    out: list[Onset] = []
    hard = [lane for lane in lanes if lane[0] in (0.0, 1.0)]
    soft = [lane for lane in lanes if lane not in hard]
    every = getattr(settings, "breakpoints", "hard") == "all"
    for group, clean in ((hard, CLEAN if fmt.bits == 32 else WINDOW), (soft, WINDOW)):
        if not group or (group is soft and not every):
            continue
        found = search(
            _evaluator(f, settings, fmt, group), fmt, len(group), list(CRITERIA), clean=clean
        )
        signs = [side_sign(t, s) for t, s in group]
        values = {
            key: None if k is None else signs[key[0]] * float(magnitudes(np.array([k]), fmt)[0])
            for key, k in found.items()
        }
        method = f"grid, 64-way bisection, windows down to {clean} clean values"
        out += _onsets(f, fmt, group, values, method)
    order = {lane: i for i, lane in enumerate(lanes)}
    out.sort(key=lambda o: (order[(float(o.target), o.side)], list(CRITERIA).index(o.criterion)))  # type: ignore[arg-type]
    return out


def _run_one(
    name: str, settings: Any, fmt: FloatFormat, z: np.ndarray, y: np.ndarray, ref: Reference
) -> Row:
    f = get(name, "focal")
    result = run(f, _case(fmt, z, y, settings))
    extra: list[str] = []
    if result.status == "not applicable":
        hard = np.isin(y, (0.0, 1.0))
        if hard.any() and not hard.all():
            z, y = z[hard], y[hard]
            scale = None if ref.grad_scale is None else ref.grad_scale[hard]
            ref = Reference(ref.value[hard], ref.grad[hard], 0, scale)
            retry = run(f, _case(fmt, z, y, settings))
            if retry.ok:
                extra.append(f"soft targets not applicable ({result.reason}): hard targets only")
                result = retry
    row = row_from(result, extra)
    row.code = f.code_line(_case(fmt, z[:1], y[:1], settings))
    if not result.ok:
        return row
    m, ulps, gulps = measure(fmt, result, ref, logits=z)
    row.measures = m
    limit = plot_limit(fmt)
    row.plot = {"value": plot_bins(z, ulps, limit), "grad": plot_bins(z, gulps, limit)}
    lanes: list[Lane] = [(float(t), side) for t in np.unique(y) for side in SIDES]
    if fmt.bits == 16:
        masks = criteria(fmt, result, ref, logits=z)
        found = onsets_from_masks(z, _lane_of(z, y, lanes), masks, len(lanes))
        row.onsets = _onsets(f, fmt, lanes, found, "every finite value")
    else:
        row.onsets = _searched(f, settings, fmt, lanes)
    return row


def run_dtype(settings: Any, dtype: str, emit: Any) -> None:
    """The focal counterpart of :func:`logitlab.analysis.audit._run_dtype`: emits
    ``("reference", payload)`` once, then ``("row", Row)`` per formulation of
    ``settings.formulations``."""
    fmt = get_format(dtype)
    z0 = logit_points(fmt, settings.points, settings.seed)
    ys, notes = targets_for(fmt, tuple(settings.targets))
    z = np.tile(z0, ys.size)
    y = np.repeat(ys, z0.size)
    alpha, gamma = focal_parameters(settings)
    notes = [*notes, f"focal loss with alpha={alpha!r}, gamma={gamma!r}"]
    if getattr(settings, "weight", None) is not None or getattr(settings, "pos_weight", None):
        notes.append("weight and pos_weight do not apply to the focal loss (ignored)")
    start = time.perf_counter()
    ref = _reference(fmt, z, y, settings)
    emit(
        "reference",
        {
            "dtype": dtype,
            "points": int(z.size),
            "seconds": time.perf_counter() - start,
            "mpmath_fallback": ref.fallback,
            "notes": notes,
            "edges": edges(fmt).named(fmt),
        },
    )
    for name in settings.formulations:
        emit("row", _run_one(name, settings, fmt, z, y, ref))
