"""Run an audit: every chosen formulation at every chosen dtype over many points.

Work splits by dtype: each dtype's points and reference are built once, in one process,
and every formulation runs on them in one framework call (all logits x all targets),
through :func:`logitlab.formulations.run.run` and nothing else; flags are counted by
:func:`logitlab.analysis.flags.classify`.  Breakpoints (:mod:`logitlab.analysis.breakpoints`)
come from the same run for 16-bit formats (every value) and from a search over the
format's values for float32 and float64.  With ``workers > 1`` the dtypes are shared out
to that many spawned processes (largest first onto the least loaded), each with
``torch.set_num_threads(1)``; results come back per formulation through a queue, which
drives the progress bar.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logitlab.analysis import audit_softmax
from logitlab.analysis.audit_rows import Row, plot_bins, plot_limit, row_from
from logitlab.analysis.breakpoints import (
    CLEAN,
    CRITERIA,
    SIDES,
    WINDOW,
    Evaluate,
    Onset,
    breakpoint_threshold,
    criteria,
    magnitudes,
    onsets_from_masks,
    search,
    side_sign,
)
from logitlab.analysis.measure import measure
from logitlab.analysis.points import DEFAULT_TARGETS, edges, logit_points, targets_for
from logitlab.core import environment as _environment
from logitlab.core.errors import InputError
from logitlab.core.formats import DTYPE_NAMES, FloatFormat, get_format
from logitlab.core.inputs import BCECase
from logitlab.exact import fast
from logitlab.formulations import Formulation, all_formulations, get
from logitlab.formulations.run import run

__all__ = [
    "DEFAULT_POINTS",
    "QUANTITIES",
    "AuditResult",
    "Row",
    "Settings",
    "audit",
    "check_settings",
]

#: The version of :meth:`AuditResult.to_dict`'s layout (``logitlab/schemas/audit.json``).
SCHEMA_VERSION = 1

#: Quantities the audit knows.
QUANTITIES = ("bce", "sigmoid", "log_sigmoid", "softplus", "softmax_ce", "focal")
#: Logits per float32/float64 sweep in the default audit (16-bit formats: every value).
DEFAULT_POINTS = 20_000


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
    #: Which float32/float64 targets get a breakpoint search: ``"hard"`` (0 and 1, the
    #: default) or ``"all"`` (16-bit formats always report every target).
    breakpoints: str = "hard"
    #: The softmax audit's families of rows (:data:`audit_softmax.FAMILIES`); ``()``
    #: for the other quantities.
    families: tuple[str, ...] = ()
    #: The focal loss's ``alpha`` (``None``: no alpha weighting) and ``gamma``.
    alpha: float | None = 0.25
    gamma: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class AuditResult:
    """All rows, in catalogue order then dtype order, with what the reference cost."""

    settings: Settings
    rows: list[Row]
    edges: dict[str, dict[str, float]]
    reference: dict[str, dict[str, Any]]
    seconds: float = 0.0
    workers: int = 1
    # the libraries' versions, the machine and torch's CPU kernels in the processes that ran
    # the rows (:func:`logitlab.core.environment.environment`)
    environment: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str, dtype: str, family: str | None = None) -> Row:
        """The row of ``name`` at ``dtype`` (softmax: in ``family``, by default the first)."""
        for r in self.rows:
            if r.name == name and r.dtype == dtype and family in (None, r.family):
                return r
        raise KeyError((name, dtype, family))

    @property
    def breakpoints(self) -> list[Onset]:
        """Every row's onsets, in row order."""
        return [o for r in self.rows for o in r.onsets]

    def onset(
        self,
        name: str,
        dtype: str,
        target: float | str | None,
        side: str,
        criterion: str,
        family: str | None = None,
    ) -> Onset:
        for o in self.row(name, dtype, family).onsets:
            if (o.target, o.side, o.criterion) == (target, side, criterion):
                return o
        raise KeyError((name, dtype, target, side, criterion))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "audit",
            "settings": self.settings.to_dict(),
            "seconds": self.seconds,
            "workers": self.workers,
            "environment": self.environment,
            "edges": self.edges,
            "reference": self.reference,
            "breakpoint_relative_error": {
                d: breakpoint_threshold(get_format(d)) for d in self.settings.dtypes
            },
            "breakpoint_criteria": dict(CRITERIA),
            "breakpoints": [o.to_dict() for o in self.breakpoints],
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


def _case(settings: Settings, fmt: FloatFormat, z: np.ndarray, y: np.ndarray | None) -> BCECase:
    return BCECase(
        logits=z,
        targets=np.zeros_like(z) if y is None else y,
        weight=_full(settings.weight, z, fmt),
        pos_weight=_full(settings.pos_weight, z, fmt),
        reduction="none",
        dtype=fmt,
    )


# A lane: one target (None for elementwise quantities) and one side.
Lane = tuple[float | None, str]


def _lanes(settings: Settings, targets: np.ndarray | None) -> list[Lane]:
    if settings.quantity != "bce" or targets is None:
        return [(None, "negative"), (None, "positive")]
    return [(float(t), side) for t in targets for side in SIDES]


def _lane_of(z: np.ndarray, y: np.ndarray | None, lanes: list[Lane]) -> np.ndarray:
    """Each element's lane (-1 for z = 0 and non-finite z)."""
    index = {lane: i for i, lane in enumerate(lanes)}
    out = np.full(z.shape, -1, dtype=np.int64)
    ok = np.isfinite(z) & (z != 0)
    for _i, (t, side) in enumerate(lanes):
        sign = side_sign(0.0 if t is None else t, side)
        mine = ok & (np.sign(z) == sign)
        if t is not None and y is not None:
            mine &= y == t
        out[mine] = index[(t, side)]
    return out


def _evaluator(f: Formulation, settings: Settings, fmt: FloatFormat, lanes: list[Lane]) -> Evaluate:
    signs = np.array([side_sign(0.0 if t is None else t, s) for t, s in lanes], dtype=np.float64)
    ys = np.array([0.0 if t is None else t for t, _ in lanes])

    def evaluate(lane_ids: np.ndarray, ordinals: np.ndarray) -> dict[str, np.ndarray] | None:
        z = signs[lane_ids] * magnitudes(ordinals, fmt)
        y = None if settings.quantity != "bce" else ys[lane_ids]
        case = _case(settings, fmt, z, y)
        result = run(f, case)
        if not result.ok:
            return None
        ref = _reference(settings, fmt, z, y)
        return criteria(fmt, result, ref, logits=z, weight=case.weight)

    return evaluate


def _onsets(
    f: Formulation,
    settings: Settings,
    fmt: FloatFormat,
    lanes: list[Lane],
    found: dict[tuple[int, str], float | None],
    method: str,
) -> list[Onset]:
    out = []
    for i, (t, side) in enumerate(lanes):
        for name in CRITERIA:
            if (i, name) in found:
                out.append(Onset(f.name, fmt.name, t, side, name, found[(i, name)], method))
    return out


def _searched(
    f: Formulation, settings: Settings, fmt: FloatFormat, lanes: list[Lane]
) -> list[Onset]:
    """Onsets by :func:`~logitlab.analysis.breakpoints.search`, hard targets (and
    elementwise quantities) with the long clean stretch, soft targets with one window."""
    out: list[Onset] = []
    hard = [lane for lane in lanes if lane[0] in (None, 0.0, 1.0)]
    soft = [lane for lane in lanes if lane not in hard]
    for group, clean in ((hard, CLEAN if fmt.bits == 32 else WINDOW), (soft, WINDOW)):
        if not group or (group is soft and settings.breakpoints != "all"):
            continue
        found = search(
            _evaluator(f, settings, fmt, group), fmt, len(group), list(CRITERIA), clean=clean
        )
        signs = [side_sign(0.0 if t is None else t, s) for t, s in group]
        values = {
            key: None if k is None else signs[key[0]] * float(magnitudes(np.array([k]), fmt)[0])
            for key, k in found.items()
        }
        method = f"grid, 64-way bisection, windows down to {clean} clean values"
        out += _onsets(f, settings, fmt, group, values, method)
    order: dict[Any, int] = {lane: i for i, lane in enumerate(lanes)}
    out.sort(key=lambda o: (order[(o.target, o.side)], list(CRITERIA).index(o.criterion)))
    return out


def _run_one(
    name: str,
    settings: Settings,
    fmt: FloatFormat,
    z: np.ndarray,
    y: np.ndarray | None,
    ref: fast.Reference,
    notes: list[str],
) -> Row:
    f = get(name)
    result = run(f, _case(settings, fmt, z, y))
    extra: list[str] = []
    if result.status == "not applicable" and y is not None:
        hard = np.isin(y, (0.0, 1.0))
        if hard.any() and not hard.all():
            # e.g. scikit-learn's log_loss takes labels: run it on the hard targets alone
            z, y = z[hard], y[hard]
            scale = None if ref.grad_scale is None else ref.grad_scale[hard]
            ref = fast.Reference(ref.value[hard], ref.grad[hard], 0, scale)
            retry = run(f, _case(settings, fmt, z, y))
            if retry.ok:
                extra.append(f"soft targets not applicable ({result.reason}): hard targets only")
                result = retry
    row = row_from(result, extra)
    if f.quantity != "bce":
        row.code = f.code
    if not result.ok:
        return row
    weight = _full(settings.weight, z, fmt)
    m, ulps, gulps = measure(fmt, result, ref, logits=z, weight=weight)
    row.measures = m
    limit = plot_limit(fmt)
    row.plot = {"value": plot_bins(z, ulps, limit), "grad": plot_bins(z, gulps, limit)}
    targets = None if y is None else np.unique(y)
    lanes = _lanes(settings, targets)
    if fmt.bits == 16:
        masks = criteria(fmt, result, ref, logits=z, weight=weight)
        found = onsets_from_masks(z, _lane_of(z, y, lanes), masks, len(lanes))
        row.onsets = _onsets(f, settings, fmt, lanes, found, "every finite value")
    else:
        row.onsets = _searched(f, settings, fmt, lanes)
    return row


def _run_dtype(settings: Settings, dtype: str, emit: Callable[[str, Any], None]) -> None:
    if settings.quantity == "softmax_ce":
        audit_softmax.run_dtype(settings, dtype, emit)
        return
    if settings.quantity == "focal":
        from logitlab.analysis import audit_focal

        audit_focal.run_dtype(settings, dtype, emit)
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
        queue.put(("environment", _environment.environment()))
    except BaseException as err:  # report, never hang the parent
        queue.put(("crash", f"{type(err).__name__}: {err}"))
        raise
    queue.put(("done", None))


def _cost(settings: Settings, dtype: str) -> float:
    fmt = get_format(dtype)
    n = 2**16 if fmt.bits == 16 else settings.points
    per_quantity = {
        "bce": len(settings.targets),
        "softmax_ce": 2 * 3 * max(1, len(settings.families)),
        "focal": len(settings.targets),
    }
    per = per_quantity.get(settings.quantity, 1)
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


def check_settings(
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
    breakpoints: str = "hard",
    families: Sequence[str] | None = None,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
) -> Settings:
    """Every argument of :func:`audit` checked, before any work; raises
    :class:`~logitlab.InputError` naming the argument."""
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
        for d in ds if v is not None else ():
            if not np.isfinite(get_format(d).round(np.asarray(v))):
                raise InputError(arg, f"{v!r} overflows {d}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError("seed", f"{seed!r} is not an integer >= 0")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError("workers", f"{workers!r} is not an integer >= 1")
    if breakpoints not in ("hard", "all"):
        raise InputError("breakpoints", f"{breakpoints!r} is not one of hard, all")
    fams: tuple[str, ...] = ()
    if quantity == "softmax_ce":
        known = [f.name for f in audit_softmax.FAMILIES]
        for name in families or ():
            if name not in known:
                raise InputError(
                    "families", f"unknown family {name!r}; choose from {', '.join(known)}"
                )
        fams = tuple(dict.fromkeys(families or audit_softmax.DEFAULT_FAMILIES))
    elif families:
        raise InputError("families", f"families are softmax_ce's rows, not {quantity!r}'s")
    if alpha is not None and not (math.isfinite(alpha) and 0 <= alpha <= 1):
        raise InputError("alpha", f"{alpha!r} is not a number in [0, 1]")
    if not (math.isfinite(gamma) and gamma >= 0):
        raise InputError("gamma", f"{gamma!r} must be a finite number >= 0")
    return Settings(
        quantity,
        chosen,
        ds,
        points,
        seed,
        tgt,
        weight,
        pos_weight,
        breakpoints,
        fams,
        alpha,
        gamma,
    )


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
    breakpoints: str = "hard",
    families: Sequence[str] | None = None,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
) -> AuditResult:
    """Audit ``quantity`` for each formulation and dtype; see :class:`AuditResult`.

    ``points`` sets the float32/float64 sweep (16-bit formats take every finite value);
    ``families`` the softmax audit's families of rows (default
    :data:`~logitlab.analysis.audit_softmax.DEFAULT_FAMILIES`); ``alpha`` and ``gamma``
    the focal loss's.
    ``progress`` is called with each finished row.  Raises
    :class:`~logitlab.InputError` naming the argument for unknown names or bad numbers.
    """
    settings = check_settings(
        quantity,
        formulations=formulations,
        dtypes=dtypes,
        points=points,
        seed=seed,
        targets=targets,
        weight=weight,
        pos_weight=pos_weight,
        workers=workers,
        breakpoints=breakpoints,
        families=families,
        alpha=alpha,
        gamma=gamma,
    )
    quantity, chosen, ds = settings.quantity, settings.formulations, settings.dtypes
    start = time.perf_counter()
    rows: list[Row] = []
    reference: dict[str, dict[str, Any]] = {}
    env: dict[str, Any] = {}

    def emit(kind: str, payload: Any) -> None:
        if kind == "environment":
            _environment.merge(env, payload)
        elif kind == "reference":
            reference[payload["dtype"]] = payload
        elif kind == "row":
            rows.append(payload)
            if progress is not None:
                progress(payload)

    groups = _split(settings, max(1, workers))
    if len(groups) <= 1:
        for d in ds:
            _run_dtype(settings, d, emit)
        emit("environment", _environment.environment())
    else:
        _parallel(settings, groups, emit)
    fams: tuple[str | None, ...] = settings.families or (None,)
    order = {
        key: i for i, key in enumerate((fam, n, d) for fam in fams for n in chosen for d in ds)
    }
    rows.sort(key=lambda r: order[(r.family, r.name, r.dtype)])
    edge_values = {d: reference[d].pop("edges") for d in ds if d in reference}
    return AuditResult(
        settings, rows, edge_values, reference, time.perf_counter() - start, len(groups), env
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
