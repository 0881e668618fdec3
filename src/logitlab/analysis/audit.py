"""Run an audit: every chosen formulation at every chosen dtype over many points.

Work splits by dtype: each dtype's points and reference are built once, in one process,
and every formulation runs on them in one framework call (all logits x all targets).
With ``workers > 1`` the dtypes are shared out to that many spawned processes (largest
first onto the least loaded), each with ``torch.set_num_threads(1)``; results come back
per formulation through a queue, which drives the progress bar.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab.analysis.measure import Measures, breakpoint_threshold, measure
from logitlab.analysis.points import DEFAULT_TARGETS, edges, logit_points, targets_for
from logitlab.core.errors import InputError
from logitlab.core.formats import DTYPE_NAMES, FloatFormat, get_format
from logitlab.core.inputs import BCECase
from logitlab.exact import fast
from logitlab.formulations import NotApplicable, all_formulations, get

__all__ = [
    "DEFAULT_POINTS",
    "QUANTITIES",
    "AuditResult",
    "Row",
    "Settings",
    "audit",
]

#: Quantities the audit knows.
QUANTITIES = ("bce", "sigmoid", "log_sigmoid", "softplus", "softmax_ce")
#: Logits per float32/float64 sweep in the default audit (16-bit formats: every value).
DEFAULT_POINTS = 20_000
#: Points sampled for APIs that return one reduced number per call (sklearn's log_loss).
PER_CALL_POINTS = 128
_PLOT_BINS = 300


@dataclass(frozen=True)
class Settings:
    """What to audit; the seed makes the float32/float64 samples reproducible."""

    quantity: str = "bce"
    formulations: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = DTYPE_NAMES
    points: int = DEFAULT_POINTS
    seed: int = 0
    targets: tuple[float, ...] = DEFAULT_TARGETS
    weight: float | None = None
    pos_weight: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Row:
    """One (formulation, dtype): its status and, when it ran, what was measured.

    ``status`` is ``ok``, ``skipped`` (framework not installed), ``not applicable`` or
    ``error`` (the framework refused; ``reason`` has its message).  ``plot`` holds per-bin
    maxima of the ULP errors against z for the plots.
    """

    name: str
    framework: str
    code: str
    dtype: str
    status: str
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    measures: Measures | None = None
    seconds: float = 0.0
    has_autograd: bool = True
    plot: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "formulation": self.name,
            "framework": self.framework,
            "code": self.code,
            "dtype": self.dtype,
            "status": self.status,
            "reason": self.reason,
            "notes": list(self.notes),
            "seconds": self.seconds,
            "autograd": self.has_autograd,
            "measures": None if self.measures is None else self.measures.to_dict(),
        }


@dataclass
class AuditResult:
    """All rows, in catalogue order then dtype order, with what the reference cost."""

    settings: Settings
    rows: list[Row]
    edges: dict[str, dict[str, float]]
    reference: dict[str, dict[str, Any]]
    seconds: float = 0.0
    workers: int = 1

    def row(self, name: str, dtype: str) -> Row:
        for r in self.rows:
            if r.name == name and r.dtype == dtype:
                return r
        raise KeyError((name, dtype))

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "seconds": self.seconds,
            "workers": self.workers,
            "edges": self.edges,
            "reference": self.reference,
            "breakpoint_relative_error": {
                d: breakpoint_threshold(get_format(d)) for d in self.settings.dtypes
            },
            "rows": [r.to_dict() for r in self.rows],
        }


# --- one dtype, in whichever process runs it -------------------------------------------


def _inputs(
    settings: Settings, fmt: FloatFormat
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    z = logit_points(fmt, settings.points, settings.seed)
    if settings.quantity != "bce":
        return z, None, []
    ys, notes = targets_for(fmt, settings.targets)
    return np.tile(z, ys.size), np.repeat(ys, z.size), notes


def _reference(
    settings: Settings, fmt: FloatFormat, z: np.ndarray, y: np.ndarray | None
) -> fast.Reference:
    if settings.quantity == "bce":
        return fast.bce(z, y, fmt, _scalar(settings.weight, fmt), _scalar(settings.pos_weight, fmt))
    return fast.elementwise(settings.quantity, z, fmt)


def _scalar(v: float | None, fmt: FloatFormat) -> np.ndarray | None:
    return None if v is None else fmt.round(np.asarray(v))


def _full(v: float | None, like: np.ndarray, fmt: FloatFormat) -> np.ndarray | None:
    return None if v is None else np.full_like(like, float(fmt.round(np.asarray(v))))


def _returned_format(value: np.ndarray, fmt: FloatFormat) -> str | None:
    """The wider format a framework's finite results live in, when not ``fmt``."""
    v = value[np.isfinite(value)]
    if v.size == 0 or np.array_equal(fmt.round(v), v):
        return None
    f32 = get_format("float32")
    return "float32" if fmt.precision < 24 and np.array_equal(f32.round(v), v) else "float64"


def plot_limit(fmt: FloatFormat) -> float:
    """Plots show |z| up to twice where sigmoid rounds to 0 (the table covers the rest)."""
    return 2 * abs(edges(fmt).sigmoid_zero)


def precision_notes(value: np.ndarray, inputs: np.ndarray, fmt: FloatFormat) -> list[str]:
    """Say when a framework returned another precision than it was given."""
    notes = []
    wider = _returned_format(value, fmt)
    if wider:
        notes.append(f"returned {wider} values for {fmt.name} input (upcast)")
    f32 = get_format("float32")
    v = value[np.isfinite(value)]
    x = inputs[np.isfinite(inputs)]
    if (
        fmt.name == "float64"
        and v.size
        and np.array_equal(f32.round(v), v)
        and not np.array_equal(f32.round(x), x)
    ):
        notes.append("returned only float32 values for float64 input (computed in float32)")
    return notes


def _plot_bins(z: np.ndarray, ulps: np.ndarray | None, limit: float) -> dict[str, list[float]]:
    if ulps is None:
        return {}
    ok = np.isfinite(z) & (np.abs(z) <= limit)
    u = np.sign(z[ok]) * np.log10(1 + np.abs(z[ok]))  # a symmetric log axis
    e = np.where(np.isnan(ulps[ok]), np.inf, ulps[ok])
    edges_ = np.linspace(u.min(), u.max(), _PLOT_BINS + 1)
    which = np.clip(np.searchsorted(edges_, u, side="right") - 1, 0, _PLOT_BINS - 1)
    top = np.full(_PLOT_BINS, -1.0)
    np.maximum.at(top, which, e)
    centres = (edges_[:-1] + edges_[1:]) / 2
    zc = np.sign(centres) * (10 ** np.abs(centres) - 1)
    keep = top >= 0
    return {"z": zc[keep].tolist(), "ulp": top[keep].tolist()}


def _run_one(
    name: str,
    settings: Settings,
    fmt: FloatFormat,
    z: np.ndarray,
    y: np.ndarray | None,
    ref: fast.Reference,
    notes: list[str],
) -> Row:
    from logitlab.formulations._sklearn import PER_CALL

    f = get(name)
    case_notes: list[str] = []
    row = Row(name, f.framework, f.code, fmt.name, "ok", notes=case_notes)
    missing = f.missing()
    if missing is not None:
        row.status, row.reason = "skipped", missing
        return row
    idx = None
    if name in PER_CALL:
        # one call per point: a sample, of hard targets only (log_loss takes labels)
        rng = np.random.default_rng(settings.seed)
        pool = np.flatnonzero(np.isin(y, (0.0, 1.0))) if y is not None else np.arange(z.size)
        idx = np.sort(rng.choice(pool, min(PER_CALL_POINTS, pool.size), replace=False))
        case_notes.append(
            f"{f.code.split('(')[0]} returns one mean per call: run once per point on "
            f"{idx.size} sampled points with hard targets"
        )
    zs = z if idx is None else z[idx]
    ys = None if y is None else (y if idx is None else y[idx])
    sub = ref
    if idx is not None:
        scale = None if ref.grad_scale is None else ref.grad_scale[idx]
        sub = fast.Reference(ref.value[idx], ref.grad[idx], 0, scale)
    case = BCECase(
        logits=zs,
        targets=np.zeros_like(zs) if ys is None else ys,
        weight=_full(settings.weight, zs, fmt),
        pos_weight=_full(settings.pos_weight, zs, fmt),
        reduction="none",
        dtype=fmt,
    )
    row.code = f.code_line(case) if f.quantity == "bce" else f.code
    start = time.perf_counter()
    try:
        out = f.compute(case)
    except NotApplicable as err:
        row.status, row.reason = "not applicable", str(err)
        return row
    except Exception as err:  # the framework refused: say so, with its message
        text = str(err).strip().splitlines()
        row.status = "error"
        row.reason = f"{type(err).__name__}: {text[0] if text else ''}"
        return row
    finally:
        row.seconds = time.perf_counter() - start
    value = np.asarray(out.value, dtype=np.float64).reshape(zs.shape)
    np.seterr(all="ignore")  # overflow in rounding infinities to a format is expected
    grad = None if out.grad is None else np.asarray(out.grad, dtype=np.float64).reshape(zs.shape)
    row.has_autograd = grad is not None
    case_notes.extend(precision_notes(value, zs, fmt))
    probabilities = (
        None if out.probabilities is None else np.asarray(out.probabilities).reshape(zs.shape)
    )
    clamped = None if out.clamped is None else np.asarray(out.clamped).reshape(zs.shape)
    gc = getattr(out, "grad_clamped", None)
    grad_clamped = None if gc is None else np.asarray(gc).reshape(zs.shape)
    m, ulps, gulps = measure(fmt, zs, ys, value, grad, sub, probabilities, clamped, grad_clamped)
    row.measures = m
    limit = plot_limit(fmt)
    row.plot = {
        "value": _plot_bins(zs, ulps, limit),
        "grad": _plot_bins(zs, gulps, limit),
        "sampled": idx is not None,
    }
    return row


def _run_dtype(settings: Settings, dtype: str, emit: Callable[[str, Any], None]) -> None:
    if settings.quantity == "softmax_ce":
        from logitlab.analysis.audit_softmax import run_dtype

        run_dtype(settings, dtype, emit)
        return
    fmt = get_format(dtype)
    z, y, notes = _inputs(settings, fmt)
    start = time.perf_counter()
    ref = _reference(settings, fmt, z, y)
    ref_seconds = time.perf_counter() - start
    e = edges(fmt)
    emit(
        "reference",
        {
            "dtype": dtype,
            "points": int(z.size),
            "seconds": ref_seconds,
            "mpmath_fallback": ref.fallback,
            "notes": notes,
            "edges": e.named(fmt),
        },
    )
    for name in settings.formulations:
        emit("row", _run_one(name, settings, fmt, z, y, ref, notes))


def _worker(settings: Settings, dtypes: list[str], queue: Any) -> None:
    import torch

    torch.set_num_threads(1)
    try:
        for dtype in dtypes:
            _run_dtype(settings, dtype, lambda kind, payload: queue.put((kind, payload)))
    except BaseException as err:  # report, never hang the parent
        queue.put(("crash", f"{type(err).__name__}: {err}"))
        raise
    queue.put(("done", None))


def _cost(settings: Settings, dtype: str) -> float:
    fmt = get_format(dtype)
    n = 2**16 if fmt.bits == 16 else settings.points
    per = {"bce": len(settings.targets), "softmax_ce": 2 * 3}.get(settings.quantity, 1)
    return n * per


def _split(settings: Settings, workers: int) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for d in sorted(settings.dtypes, key=lambda d: -_cost(settings, d)):
        i = load.index(min(load))
        groups[i].append(d)
        load[i] += _cost(settings, d)
    return [g for g in groups if g]


def _check(
    quantity: str, formulations: Sequence[str] | None, dtypes: Sequence[str] | None
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    if quantity not in QUANTITIES:
        raise InputError(
            "quantity", f"unknown quantity {quantity!r}; choose from {', '.join(QUANTITIES)}"
        )
    names = [f.name for f in all_formulations(quantity)]
    chosen = tuple(get(n, quantity).name for n in formulations) if formulations else tuple(names)
    if not chosen:
        raise InputError("formulation", f"no formulation computes {quantity!r} yet")
    ds = tuple(get_format(d).name for d in (dtypes or DTYPE_NAMES))
    return quantity, chosen, tuple(dict.fromkeys(ds))


def audit(
    quantity: str = "bce",
    *,
    formulations: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    points: int = DEFAULT_POINTS,
    seed: int = 0,
    targets: Sequence[float] | None = None,
    weight: float | None = None,
    pos_weight: float | None = None,
    workers: int = 1,
    progress: Callable[[Row], None] | None = None,
) -> AuditResult:
    """Audit ``quantity`` for each formulation and dtype; see :class:`AuditResult`.

    ``points`` sets the float32/float64 sweep (16-bit formats take every finite value).
    ``progress`` is called with each finished row.  Raises
    :class:`~logitlab.InputError` naming the argument for unknown names or bad numbers.
    """
    quantity, chosen, ds = _check(quantity, formulations, dtypes)
    if not isinstance(points, int) or points < 16 or points > 10_000_000:
        raise InputError("points", f"{points!r} is not an integer in [16, 10000000]")
    tgt = tuple(DEFAULT_TARGETS if targets is None else targets)
    for t in tgt:
        if not (0 <= t <= 1):
            raise InputError("targets", f"target {t!r} is outside [0, 1]")
    for arg, v in (("weight", weight), ("pos_weight", pos_weight)):
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise InputError(arg, f"{v!r} must be a finite number >= 0")
    settings = Settings(quantity, chosen, ds, points, seed, tgt, weight, pos_weight)
    start = time.perf_counter()
    rows: list[Row] = []
    reference: dict[str, dict[str, Any]] = {}

    def emit(kind: str, payload: Any) -> None:
        if kind == "reference":
            reference[payload["dtype"]] = payload
        elif kind == "row":
            rows.append(payload)
            if progress is not None:
                progress(payload)

    groups = _split(settings, max(1, workers))
    if len(groups) <= 1:
        for d in ds:
            _run_dtype(settings, d, emit)
    else:
        _parallel(settings, groups, emit)
    order = {(n, d): i for i, (n, d) in enumerate((n, d) for n in chosen for d in ds)}
    rows.sort(key=lambda r: order[(r.name, r.dtype)])
    edge_values = {d: reference[d].pop("edges") for d in ds if d in reference}
    return AuditResult(
        settings, rows, edge_values, reference, time.perf_counter() - start, len(groups)
    )


def _parallel(
    settings: Settings, groups: list[list[str]], emit: Callable[[str, Any], None]
) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(settings, g, queue), daemon=True) for g in groups]
    for p in procs:
        p.start()
    done = 0
    try:
        while done < len(procs):
            kind, payload = queue.get(timeout=600)
            if kind == "done":
                done += 1
            elif kind == "crash":
                raise RuntimeError(f"audit worker failed: {payload}")
            else:
                emit(kind, payload)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
