"""The softmax cross-entropy audit: rows ``(m, 0, 0)`` with ``m`` swept like a BCE logit.

Three classes; the label is either the swept class (``t=swept``: the loss is
``log(1 + 2 exp(-m))``, tiny for large ``m``) or another one (``t=other``: the loss grows
like ``m``).  ``m`` runs over the same logits as the BCE audit (every finite value of a
16-bit format).  Each row's differences ``z_c - max z`` are exact, which the fast
reference (:func:`logitlab.exact.fast.softmax_ce`) needs.  Breakpoints are in ``m``, with
*against* the label ``m < 0`` for ``t=swept`` and ``m > 0`` for ``t=other``.  Every row
runs through :func:`logitlab.formulations.run.run`; flags come from
:func:`logitlab.analysis.flags.classify`.  Nothing here imports the BCE audit.
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
    Onset,
    criteria,
    magnitudes,
    onsets_from_masks,
    search,
)
from logitlab.analysis.measure import measure
from logitlab.analysis.points import edges, logit_points
from logitlab.core.formats import FloatFormat, get_format
from logitlab.exact import fast
from logitlab.formulations.run import run

__all__ = ["CLASSES", "LABELS", "run_dtype"]

#: Classes per row.
CLASSES = 3
#: The two labels: the swept class, and another one.
LABELS = ("t=swept", "t=other")


def _sign(label: str, side: str) -> int:
    against = -1 if label == "t=swept" else 1
    return against if side == "against" else -against


def _rows(m: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = np.zeros((m.size, CLASSES))
    z[:, 0] = m
    return z


def _case(fmt: FloatFormat, m: np.ndarray, labels: np.ndarray) -> Any:
    from logitlab.core.inputs import SoftmaxCase

    return SoftmaxCase(_rows(m, labels), labels, fmt)


def _run_one(
    name: str,
    fmt: FloatFormat,
    m: np.ndarray,
    labels: np.ndarray,
    ref: fast.Reference,
) -> Row:
    from logitlab.formulations import get

    f = get(name)
    result = run(f, _case(fmt, m, labels))
    row = row_from(result)
    row.code = f.code
    if not result.ok:
        return row
    z = _rows(m, labels)
    meas, ulps, gulps = measure(fmt, result, ref, logits=z)
    row.measures = meas
    limit = plot_limit(fmt)
    row.plot = {"value": plot_bins(m, ulps, limit), "grad": plot_bins(m, gulps, limit)}
    lanes = [(label, side) for label in LABELS for side in SIDES]
    if fmt.bits == 16:
        masks = criteria(fmt, result, ref, logits=z)
        lane_of = np.full(m.shape, -1, dtype=np.int64)
        for i, (label, side) in enumerate(lanes):
            mine = (labels == LABELS.index(label)) & (np.sign(m) == _sign(label, side))
            lane_of[mine & np.isfinite(m)] = i
        found = onsets_from_masks(m, lane_of, masks, len(lanes))
        method = "every finite value"
    else:
        signs = np.array([_sign(label, side) for label, side in lanes], dtype=np.float64)
        ids = np.array([LABELS.index(label) for label, _ in lanes])

        def evaluate(lane_ids: np.ndarray, ordinals: np.ndarray) -> dict[str, np.ndarray] | None:
            mm = signs[lane_ids] * magnitudes(ordinals, fmt)
            lab = ids[lane_ids]
            r = run(f, _case(fmt, mm, lab))
            if not r.ok:
                return None
            zz = _rows(mm, lab)
            return criteria(fmt, r, fast.softmax_ce(zz, lab, fmt), logits=zz)

        clean = CLEAN if fmt.bits == 32 else WINDOW
        ords = search(evaluate, fmt, len(lanes), list(CRITERIA), clean=clean)
        found = {
            key: None if k is None else signs[key[0]] * float(magnitudes(np.array([k]), fmt)[0])
            for key, k in ords.items()
        }
        method = f"grid, 64-way bisection, windows down to {clean} clean values"
    row.onsets = [
        Onset(f.name, fmt.name, label, side, c, found[(i, c)], method)
        for i, (label, side) in enumerate(lanes)
        for c in CRITERIA
        if (i, c) in found
    ]
    return row


def run_dtype(settings: Any, dtype: str, emit: Any) -> None:
    """The softmax counterpart of :func:`logitlab.analysis.audit._run_dtype`."""
    fmt = get_format(dtype)
    m = logit_points(fmt, settings.points, settings.seed)
    m = m[np.isfinite(m)]  # an infinite logit makes the row's differences NaN in torch too
    labels = np.repeat(np.array([0, 1]), m.size)
    m = np.tile(m, 2)
    start = time.perf_counter()
    ref = fast.softmax_ce(_rows(m, labels), labels, fmt)
    emit(
        "reference",
        {
            "dtype": dtype,
            "points": int(m.size),
            "seconds": time.perf_counter() - start,
            "mpmath_fallback": 0,
            "notes": [f"rows (m, 0, 0), labels 0 (t=swept) and 1 (t=other), {fmt.name}"],
            "edges": edges(fmt).named(fmt),
        },
    )
    for name in settings.formulations:
        emit("row", _run_one(name, fmt, m, labels, ref))
