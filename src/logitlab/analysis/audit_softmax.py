"""The softmax cross-entropy audit: rows ``(m, 0, 0)`` with ``m`` swept like a BCE logit.

Three classes; the label is either the swept class (``t=swept``: the loss is
``log(1 + 2 exp(-m))``, tiny for large ``m``) or another one (``t=other``: the loss grows
like ``m``).  ``m`` runs over the same logits as the BCE audit (every finite value of a
16-bit format); breakpoints are in ``|m|``.  Each row's differences ``z_c - max z`` are
exact, which the fast reference (:func:`logitlab.exact.fast.softmax_ce`) needs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from logitlab.analysis.measure import Breakpoint, Measures, breakpoint, error_stats, measure
from logitlab.analysis.points import edges, logit_points
from logitlab.core.formats import FloatFormat, get_format
from logitlab.exact import fast

__all__ = ["CLASSES", "run_dtype"]

#: Classes per row.
CLASSES = 3


def _rows(settings: Any, fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = logit_points(fmt, settings.points, settings.seed)
    m = m[np.isfinite(m)]  # an infinite logit makes the row's differences NaN in torch too
    z = np.zeros((2 * m.size, CLASSES))
    z[:, 0] = np.tile(m, 2)
    labels = np.repeat(np.array([0, 1]), m.size)
    return z, labels, z[:, 0].copy()


def _run_one(
    name: str,
    settings: Any,
    fmt: FloatFormat,
    z: np.ndarray,
    labels: np.ndarray,
    m: np.ndarray,
    ref: fast.Reference,
) -> Any:
    from logitlab.analysis.audit import Row, _plot_bins, plot_limit, precision_notes
    from logitlab.formulations import NotApplicable, get
    from logitlab.formulations._torch_softmax import SoftmaxCase

    f = get(name)
    row = Row(name, f.framework, f.code, fmt.name, "ok")
    missing = f.missing()
    if missing is not None:
        row.status, row.reason = "skipped", missing
        return row
    start = time.perf_counter()
    try:
        out = f.compute(SoftmaxCase(z, labels, fmt))
    except NotApplicable as err:
        row.status, row.reason = "not applicable", str(err)
        return row
    except Exception as err:
        text = str(err).strip().splitlines()
        row.status, row.reason = "error", f"{type(err).__name__}: {text[0] if text else ''}"
        return row
    finally:
        row.seconds = time.perf_counter() - start
    np.seterr(all="ignore")
    value = np.asarray(out.value, dtype=np.float64).reshape(m.shape)
    grad = None if out.grad is None else np.asarray(out.grad, dtype=np.float64).reshape(z.shape)
    row.has_autograd = grad is not None
    row.notes.extend(precision_notes(value, m, fmt))
    classes = np.where(labels == 0, "t=swept", "t=other")
    probs = None
    if out.probabilities is not None:
        p = np.asarray(out.probabilities).reshape(z.shape)
        probs = np.where((p == 0).any(axis=1) | (p == 1).any(axis=1), 0.0, 0.5)
    vref = fast.Reference(ref.value, ref.value)
    m_value, ulps, _ = measure(fmt, m, None, value, None, vref, probs, classes=classes)
    gstats = None
    gulps_row = None
    counts = dict(m_value.counts)
    breakpoints = dict(m_value.breakpoints)
    if grad is not None:
        from logitlab.analysis.measure import relative_errors, vanished

        gulps = fast.ulp_errors(grad.ravel(), ref.grad.ravel(), fmt)
        grels = relative_errors(grad.ravel(), ref.grad.ravel())
        gstats = error_stats(gulps, grels, grad.ravel(), ref.grad.ravel())
        gone = vanished(grad, ref.grad, fmt)
        counts["gradient vanished"] = int(np.count_nonzero(gone))
        # a row's gradient entries sum to 0: the largest entry is the scale
        scale = np.abs(ref.grad).max(axis=1, keepdims=True)
        real = (gone & (np.abs(ref.grad) > 2 * fmt.eps * scale)).any(axis=1)
        gulps_row = np.where(np.isnan(gulps), np.inf, gulps).reshape(z.shape).max(axis=1)
        for cls, b in list(breakpoints.items()):
            bp = breakpoint(np.where(classes == cls, m, np.nan), real)
            breakpoints[cls] = Breakpoint(
                b.relative,
                b.relative_at,
                None if bp is None else bp[0],
                None if bp is None else (float(m[bp[1]]), float(labels[bp[1]])),
            )
    row.measures = Measures(int(m.size), m_value.value, gstats, counts, breakpoints)
    limit = plot_limit(fmt)
    row.plot = {"value": _plot_bins(m, ulps, limit), "grad": _plot_bins(m, gulps_row, limit)}
    return row


def run_dtype(settings: Any, dtype: str, emit: Any) -> None:
    """The softmax counterpart of :func:`logitlab.analysis.audit._run_dtype`."""
    fmt = get_format(dtype)
    z, labels, m = _rows(settings, fmt)
    start = time.perf_counter()
    ref = fast.softmax_ce(z, labels, fmt)
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
        emit("row", _run_one(name, settings, fmt, z, labels, m, ref))
