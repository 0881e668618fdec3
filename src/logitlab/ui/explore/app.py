"""The explorer's web app: a JSON API over :func:`logitlab.analysis.compare.compare` and the curves,
and the static page that drives it.

Endpoints (documented in the OpenAPI schema at ``/docs`` and ``/openapi.json``):

* ``GET /`` the page; ``GET /static/...`` its files (plain HTML, CSS and JavaScript, the plots
  drawn by the page's own canvas renderer ``lineplot.js``; nothing from a CDN).
* ``POST /api/compare`` one input, every formulation: ``Comparison.to_dict()`` plus the
  explanation and the dtype's saturation thresholds.
* ``POST /api/compare_loss`` the same for ``loss`` = ``bce``, ``softmax-ce`` (a row of K
  logits, ``"-inf"`` masking a class) or ``focal``, with the explanation.
* ``POST /api/curve_loss`` softmax-ce: the loss as one logit of the row sweeps; focal: against z.
* ``POST /api/curve`` loss and gradient of one element against z, every formulation.
* ``POST /api/curve/prefetch`` the same curves for a list of targets, computed in the
  background into the curve cache (202 at once): the y slider's other positions.
* ``POST /api/compare/prefetch`` the same for the comparison: one element's target set to
  each of a list of values, into the compare cache (202 at once).
* ``GET /api/info`` dtypes, reductions, formulations, limits.
* ``GET /api/saturation/{dtype}`` where ``torch.sigmoid`` rounds to exactly 0 and 1.
* ``GET /api/lesson`` the guided lesson's steps and presets (:mod:`logitlab.analysis.lesson`).
* ``POST /api/breakpoints`` the exact breakpoint onsets for one target and dtype.

Bad input answers 422 with FastAPI's error shape, ``{"detail": [{"loc": ["body", field],
"msg": ..., "type": ...}]}``, whether pydantic or :class:`~logitlab.InputError` caught it.
Request bodies are capped (:data:`MAX_BODY_BYTES`), arrays (:data:`MAX_API_ELEMENTS`) and
curves (:data:`~logitlab.analysis.curves.MAX_CURVE_POINTS`) too, so no request can take long.

Speed: compare, curve, curve_loss and breakpoints answers are kept, encoded, in
least-recently-used caches (:class:`ResponseCache`), so a control set back to a value it
had answers with the bytes it got before, without a second computation.  The breakpoint
search runs in a lower-priority worker process and is dropped if its client leaves first.
The y slider's other positions are computed in the background (:class:`Prefetch`, in the
same worker process): their curves once the curves have rested, their comparisons when y
starts to move, so that the rest of a drag is answered from the caches.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from logitlab._version import __version__
from logitlab.analysis.breakpoints import breakpoint_threshold
from logitlab.analysis.curves import (
    MAX_CURVE_POINTS,
    MAX_CURVE_Z,
    bce_curve,
    bce_curve_case,
    select,
)
from logitlab.analysis.explain import explain
from logitlab.analysis.lesson import LESSON_DTYPES, breakpoints, presets, relative_errors, steps
from logitlab.analysis.saturation import saturation
from logitlab.core.background import end_at_exit
from logitlab.core.errors import InputError
from logitlab.core.formats import DTYPE_NAMES
from logitlab.core.inputs import REDUCTIONS, BCECase

__all__ = ["MAX_API_ELEMENTS", "MAX_BODY_BYTES", "create_app"]

#: Most elements one compare request may carry (each costs an exact mpmath evaluation).
MAX_API_ELEMENTS = 64
#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 64 * 1024
#: Targets one curve prefetch may ask for (the y slider has 101 positions).
MAX_PREFETCH_TARGETS = 256

_T = TypeVar("_T")

STATIC_DIR = Path(__file__).parent / "static"


def _not_bool(value: Any) -> Any:
    # JSON true/false are not numbers (pydantic would read them as 1 and 0).
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


#: A number in a request: an int or a float, never a boolean.
Number = Annotated[float, BeforeValidator(_not_bool)]
Integer = Annotated[int, BeforeValidator(_not_bool)]
Scalar = Number | None
ScalarOrList = Number | list[Number] | None

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class CompareRequest(BaseModel):
    """One binary cross-entropy input, as :func:`logitlab.analysis.compare.compare` takes it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"logits": [20, 20], "targets": [0.3, 0.7], "dtype": "float32"}]
        },
    )

    logits: list[Number] = Field(
        default=[-2.0, 2.0],
        min_length=1,
        max_length=MAX_API_ELEMENTS,
        description="Logits z (infinite values allowed, NaN not).",
    )
    targets: list[Number] = Field(
        default=[0.3, 0.7],
        min_length=1,
        max_length=MAX_API_ELEMENTS,
        description="Targets y in [0, 1]; one value broadcasts.",
    )
    dtype: str = Field(default="float32", max_length=32, description=", ".join(DTYPE_NAMES))
    weight: ScalarOrList = Field(
        default=None, description="Per-element weight (a number or a list); null for none."
    )
    pos_weight: ScalarOrList = Field(
        default=None, description="Weight of the positive term; null for none."
    )
    reduction: str = Field(default="mean", max_length=16, description=", ".join(REDUCTIONS))
    frameworks: list[str] | None = Field(
        default=None,
        max_length=32,
        description='Frameworks whose rows to show ("all" for every one); null: the default.',
    )
    formulations: list[str] | None = Field(
        default=None, max_length=64, description="Rows by name; overrides frameworks."
    )
    element: Integer | None = Field(
        default=None,
        ge=0,
        description=(
            "Also answer this element alone, with reduction none (``element``: each row's "
            "loss and gradient there): the page's dots on the per-element curves."
        ),
    )


class ComparePrefetchRequest(BaseModel):
    """The comparisons of :class:`CompareRequest` with one element's target set to each of
    several values, to be computed in the background: the y slider's other positions."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "compare": {"logits": [-2, 2], "targets": [0.3, 0.7], "dtype": "float32"},
                    "element": 0,
                    "targets": [0.29, 0.31],
                }
            ]
        },
    )

    compare: CompareRequest = Field(description="The comparison as the page asks for it.")
    element: Integer = Field(ge=0, description="The element whose target takes each value.")
    targets: list[Number] = Field(
        min_length=1,
        max_length=MAX_PREFETCH_TARGETS,
        description="Targets y in [0, 1] for that element, the most wanted first.",
    )

    def requests(self) -> list[CompareRequest]:
        """One :class:`CompareRequest` per target, in order, as the page would send it."""
        common = self.compare.model_dump()
        out = []
        for t in self.targets:
            ys = list(common["targets"])
            ys[self.element] = t
            out.append(CompareRequest(**{**common, "targets": ys}))
        return out


class _CurveFields(BaseModel):
    """What a curve is computed with, but its target (:class:`CurveRequest`,
    :class:`CurvePrefetchRequest`)."""

    dtype: str = Field(default="float32", max_length=32, description=", ".join(DTYPE_NAMES))
    weight: Scalar = Field(default=None, description="The element's weight; null for none.")
    pos_weight: Scalar = Field(default=None, description="Its pos_weight; null for none.")
    z_min: Number = Field(default=-300.0, ge=-MAX_CURVE_Z, le=MAX_CURVE_Z)
    z_max: Number = Field(default=300.0, ge=-MAX_CURVE_Z, le=MAX_CURVE_Z)
    points: Integer = Field(default=1201, ge=2, le=MAX_CURVE_POINTS)
    frameworks: list[str] | None = Field(default=None, max_length=32)
    formulations: list[str] | None = Field(default=None, max_length=64)


class CurveRequest(_CurveFields):
    """Loss and gradient of one element against z."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"target": 0.3, "dtype": "float32", "points": 1201}]},
    )

    target: Number = Field(default=0.3, description="The element's target y in [0, 1].")


class CurvePrefetchRequest(_CurveFields):
    """The curves of :class:`CurveRequest` for several targets at once, to be computed in the
    background: the y slider's other positions."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"targets": [0.29, 0.31], "dtype": "float32", "points": 301}]
        },
    )

    targets: list[Number] = Field(
        min_length=1,
        max_length=MAX_PREFETCH_TARGETS,
        description="Targets y in [0, 1], the most wanted first.",
    )

    def requests(self) -> list[CurveRequest]:
        """One :class:`CurveRequest` per target, in order, as the page would send it."""
        common = self.model_dump(exclude={"targets"})
        return [CurveRequest(target=t, **common) for t in self.targets]


class BreakpointsRequest(BaseModel):
    """The exact breakpoint onsets for one target at one dtype."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"target": 0.3, "dtype": "float32"}]}
    )

    target: Number = Field(default=0.3, description="The target y in [0, 1].")
    dtype: str = Field(default="float32", max_length=32, description=", ".join(DTYPE_NAMES))
    weight: Scalar = Field(default=None, description="The weight; null for none.")
    pos_weight: Scalar = Field(default=None, description="The pos_weight; null for none.")
    frameworks: list[str] | None = Field(default=None, max_length=32)
    formulations: list[str] | None = Field(default=None, max_length=64)


def _logit(value: Any) -> Any:
    # JSON has no infinities: "-inf" / "-Infinity" (and "inf") spell them.
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, str):
        spelled = value.strip().lower()
        if spelled in ("-inf", "-infinity"):
            return -math.inf
        if spelled in ("inf", "+inf", "infinity", "+infinity"):
            return math.inf
        raise ValueError(f'expected a number or "-inf", got {value!r}')
    return value


#: A logit in a request: a number, or "-inf" (a masked class) / "inf".
Logit = Annotated[float, BeforeValidator(_logit)]

#: The losses the explorer knows, as ``logitlab compare --loss`` spells them.
LOSSES = ("bce", "softmax-ce", "focal")

#: The request fields each loss takes (beyond dtype, reduction, frameworks, formulations).
_LOSS_FIELDS = {
    "bce": {"logits", "targets", "weight", "pos_weight"},
    "softmax-ce": {"logits", "target", "weight", "ignore_index", "label_smoothing"},
    "focal": {"logits", "targets", "alpha", "gamma"},
}
_COMMON_FIELDS = {"loss", "dtype", "reduction", "frameworks", "formulations"}


def _check_loss_fields(loss: str, given: set[str]) -> None:
    if loss not in _LOSS_FIELDS:
        raise InputError("loss", f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    allowed = _LOSS_FIELDS[loss] | _COMMON_FIELDS
    for name in sorted(given - allowed):
        raise InputError(
            name,
            f"does not apply to loss {loss}; it takes {', '.join(sorted(_LOSS_FIELDS[loss]))}",
        )


def _check_curve_fields(loss: str, given: set[str], allowed: set[str]) -> None:
    common = {"loss", "dtype", "frameworks", "formulations"}
    for name in sorted(given - allowed - common):
        raise InputError(
            name, f"does not apply to loss {loss}; it takes {', '.join(sorted(allowed))}"
        )


class LossCompareRequest(BaseModel):
    """One input of any loss: binary cross-entropy, softmax cross-entropy or focal loss."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"loss": "softmax-ce", "logits": [3, "-inf", 1], "target": 0},
                {"loss": "focal", "logits": [-3, 3, 20], "targets": [1, 1, 1], "gamma": 2},
            ]
        },
    )

    loss: str = Field(default="softmax-ce", max_length=16, description=", ".join(LOSSES))
    logits: list[Logit] | list[list[Logit]] = Field(
        default=[0.0, -110.0],
        min_length=1,
        max_length=MAX_API_ELEMENTS,
        description='Logits; softmax-ce: one row of K (or rows), "-inf" masks a class.',
    )
    target: Integer | list[Number] | list[list[Number]] | None = Field(
        default=None,
        description="softmax-ce: the target class (one per row) or a distribution over classes.",
    )
    targets: list[Number] | None = Field(
        default=None, max_length=MAX_API_ELEMENTS, description="bce, focal: targets in [0, 1]."
    )
    dtype: str = Field(default="float32", max_length=32, description=", ".join(DTYPE_NAMES))
    weight: ScalarOrList = Field(
        default=None, description="bce: per element; softmax-ce: per class."
    )
    pos_weight: ScalarOrList = Field(default=None, description="bce only.")
    ignore_index: Integer = Field(default=-100, description="softmax-ce: the class ignored.")
    label_smoothing: Number = Field(default=0.0, description="softmax-ce: in [0, 1].")
    alpha: Scalar = Field(default=0.25, description="focal: in [0, 1]; null for no weighting.")
    gamma: Number = Field(default=2.0, description="focal: >= 0.")
    reduction: str = Field(default="mean", max_length=16, description=", ".join(REDUCTIONS))
    frameworks: list[str] | None = Field(default=None, max_length=32)
    formulations: list[str] | None = Field(default=None, max_length=64)


class LossCurveRequest(BaseModel):
    """softmax-ce: the loss as one logit of a row sweeps; focal: as the element's logit does."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"loss": "softmax-ce", "logits": [3, "-inf", 1], "target": 0, "sweep": 0}]
        },
    )

    loss: str = Field(default="softmax-ce", max_length=16, description="softmax-ce or focal")
    logits: list[Logit] | None = Field(
        default=None, min_length=1, max_length=MAX_API_ELEMENTS, description="softmax-ce: the row."
    )
    target: Integer | Number | list[Number] | None = Field(
        default=None,
        description="softmax-ce: a class or a distribution; focal: the target in [0, 1].",
    )
    sweep: Integer | None = Field(default=None, description="softmax-ce: the logit that sweeps.")
    label_smoothing: Number = Field(default=0.0)
    alpha: Scalar = Field(default=0.25)
    gamma: Number = Field(default=2.0)
    dtype: str = Field(default="float32", max_length=32)
    z_min: Number = Field(default=-30.0)
    z_max: Number = Field(default=30.0)
    points: Integer = Field(default=121)
    frameworks: list[str] | None = Field(default=None, max_length=32)
    formulations: list[str] | None = Field(default=None, max_length=64)


#: Curve responses kept, already encoded (a slider going back over values it passed).
CURVE_CACHE_SIZE = 256
#: Compare responses kept, already encoded (a control switched back to a value it had).
COMPARE_CACHE_SIZE = 512
#: Breakpoint answers kept (each is a second or more of exact search).
BREAKPOINT_CACHE_SIZE = 256


class ResponseCache:
    """A thread-safe least-recently-used map from a request's canonical JSON to its encoded
    answer.

    Every entry is the bytes a fresh computation of the same request produced, so a hit
    answers exactly what a miss would (``tests/explore/test_speed.py`` checks it).  The
    endpoints run in a thread pool: one lock guards the map, never a computation.
    """

    def __init__(self, size: int) -> None:
        from collections import OrderedDict
        from threading import Lock

        self.size = size
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return hit

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is kept (not counted as a hit or a miss, not made recent)."""
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _InFlight:
    """How many page requests are being answered now (a context manager around each)."""

    def __init__(self) -> None:
        from threading import Lock

        self._n = 0
        self._lock = Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._n += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._n -= 1

    def __bool__(self) -> bool:
        return self._n > 0


class Prefetch:
    """Fills :class:`ResponseCache` entries in one background thread: the answers for the y
    slider's other positions (its curves, and the comparison with that target), so that
    moving it is answered from the caches.

    Each kind of answer is a *lane* (:meth:`lane`: how to compute it, its cache key, its
    cache).  :meth:`submit` replaces whatever that lane still had waiting (only the newest
    settings are worth computing); the thread takes one request at a time, from each lane in
    turn, skips those already kept, and gives way while ``busy()`` says a page request is
    being answered (at most ``yield_s`` per request, so a steady stream of requests cannot
    starve it).  An answer it computes is the bytes the endpoint itself would compute for
    that request.  A lane's ``compute`` may hand the work to another process and wait
    (``create_app(worker_process=True)``): the thread then only waits.
    """

    def __init__(self, busy: Callable[[], bool], yield_s: float = 0.05) -> None:
        import threading

        self._busy = busy
        self._yield_s = yield_s
        self._lanes: dict[str, tuple[Callable[[Any], bytes], Callable[[Any], str], ResponseCache]]
        self._lanes = {}
        self._pending: dict[str, list[Any]] = {}
        self._turn = 0
        self._running = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        end_at_exit(self.close)
        #: Answers computed so far, in all lanes and in each.
        self.computed = 0
        self.computed_by: dict[str, int] = {}

    def lane(
        self,
        name: str,
        compute: Callable[[Any], bytes],
        key: Callable[[Any], str],
        cache: ResponseCache,
    ) -> None:
        """Declare the lane ``name``: ``compute(request)`` is the answer's bytes, kept in
        ``cache`` under ``key(request)``."""
        with self._cond:
            self._lanes[name] = (compute, key, cache)
            self._pending[name] = []
            self.computed_by[name] = 0

    def submit(self, name: str, requests: list[Any]) -> int:
        """Queue ``requests`` (the most wanted first) in lane ``name``, in place of any it
        still had waiting; returns how many of them are not kept yet."""
        import threading

        _, key, cache = self._lanes[name]
        todo = [r for r in requests if key(r) not in cache]
        with self._cond:
            if self._closed:
                return 0
            self._pending[name] = todo
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="logitlab-explore-prefetch", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        return len(todo)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting or running; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._waiting() and not self._running, timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Drop what is waiting, let the request being computed finish, and end the thread
        (at interpreter exit too: a daemon thread stopped inside a framework's C++ code
        aborts the process)."""
        with self._cond:
            self._stop()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _stop(self) -> None:
        # With the condition held: drop what waits, take nothing more, wake the waiters.
        self._closed = True
        for name in self._pending:
            self._pending[name] = []
        self._cond.notify_all()

    def _waiting(self) -> bool:
        return any(self._pending.values())

    def _next(self) -> tuple[str, Any]:
        # Called with the condition held and something waiting: the lanes take turns.
        names = list(self._pending)
        for k in range(len(names)):
            name = names[(self._turn + k) % len(names)]
            if self._pending[name]:
                self._turn = (self._turn + k + 1) % len(names)
                return name, self._pending[name].pop(0)
        raise AssertionError("nothing waiting")

    def _run(self) -> None:
        import logging
        import time

        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._waiting())
                if self._closed:
                    return
                name, request = self._next()
                compute, key_of, cache = self._lanes[name]
                self._running = True
            try:
                key = key_of(request)
                if key not in cache:
                    deadline = time.monotonic() + self._yield_s
                    while self._busy() and time.monotonic() < deadline:
                        time.sleep(0.002)
                    cache.put(key, compute(request))
                    self.computed += 1
                    self.computed_by[name] += 1
            except InputError:
                pass  # the page is told when it asks for this answer itself
            except _WorkerGone:
                with self._cond:
                    self._stop()
            except Exception:  # a background thread: log, never die
                logging.getLogger(__name__).exception("%s prefetch failed", name)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()


def _check_weight_sizes(body: CompareRequest) -> None:
    """A list ``weight`` or ``pos_weight`` longer than :data:`MAX_API_ELEMENTS` is refused."""
    for name in ("weight", "pos_weight"):
        value = getattr(body, name)
        if isinstance(value, list) and len(value) > MAX_API_ELEMENTS:
            raise InputError(name, f"has {len(value)} elements; at most {MAX_API_ELEMENTS}")


def _key(body: BaseModel) -> str:
    """A response cache's key for a request: its fields as JSON, infinities spelled out
    (``model_dump_json`` writes both as ``null``, so ``-inf`` would be answered with what
    ``+inf`` got)."""
    import json

    return json.dumps(body.model_dump(), separators=(",", ":"), allow_nan=True)


def _encode(result: Any, fastapi: bool = True) -> bytes:
    """JSON bytes: as FastAPI's JSONResponse writes them (``fastapi``; no NaN literals, the
    core spells them as strings), else as the curve endpoints always wrote theirs."""
    import json

    if not fastapi:
        return json.dumps(result, separators=(",", ":")).encode()
    return json.dumps(
        result, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def _json(content: bytes) -> Response:
    return Response(content=content, media_type="application/json")


def _error(field: str, message: str, kind: str = "value_error") -> JSONResponse:
    # A dotted field is one inside an object of the body ("compare.weight").
    loc = ["body", *field.split(".")]
    return JSONResponse(
        status_code=422, content={"detail": [{"loc": loc, "msg": message, "type": kind}]}
    )


class _BodyLimit:
    """Answer 413 to a request body larger than ``limit`` bytes, before anything parses it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._reject(send)
                    return
        # Read the whole body here (it is small or refused), then hand it on in one piece:
        # an error raised from inside the app's receive() would be reported as a 400.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._reject(send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        body = b'{"detail":[{"loc":["body"],"msg":"request body is too large","type":"too_large"}]}'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _clean_validation_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """pydantic's errors made JSON-safe (its ``input`` may hold NaN or bytes)."""
    out = []
    for e in errors:
        item = {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        out.append(item)
    return out


def _exact_or_422(argument: str, function: Callable[..., _T]) -> Callable[..., _T]:
    """``function`` with the exact reference's ArithmeticError (it gives up on a few inputs,
    e.g. a subnormal logit with y = 0.5) turned into a 422 naming ``argument``."""

    def call(*args: Any, **kwargs: Any) -> _T:
        try:
            return function(*args, **kwargs)
        except ArithmeticError as err:
            raise InputError(
                argument, f"cannot be evaluated ({type(err).__name__}: {err})"
            ) from None

    return call


def _warm_up() -> None:
    """Find every dtype's saturation thresholds and run compare once, so that the first
    slider move and the first dtype switch do not pay for them."""
    from logitlab.analysis.compare import compare

    names = [f.name for f in select()]
    for dtype in DTYPE_NAMES:
        saturation(dtype)
        compare([20.0, 20.0], [0.3, 0.7], dtype=dtype, formulations=names)


def _mount_docs(app: Any) -> None:
    """Swagger UI at ``/docs`` from the installed ``swagger_ui_bundle`` package (offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title}: API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _compare(body: CompareRequest) -> dict[str, Any]:
    """What ``/api/compare`` answers for ``body`` (before encoding)."""
    from logitlab.analysis.compare import compare
    from logitlab.core.formats import get_format

    fmt = get_format(body.dtype)
    _check_weight_sizes(body)
    names = [f.name for f in select(body.formulations, body.frameworks)]
    c = _exact_or_422("logits", compare)(
        body.logits,
        body.targets,
        dtype=fmt,
        weight=body.weight,
        pos_weight=body.pos_weight,
        reduction=body.reduction,
        formulations=names,
    )
    sat = saturation(fmt.name)
    result = c.to_dict()
    result["explanation"] = explain(c, sat)
    result["saturation"] = sat.to_dict()
    result["relative_threshold"] = breakpoint_threshold(fmt)
    if body.element is not None:
        result["element"] = _element(body, c, names, result)
    return result


def _element(
    body: CompareRequest, c: Any, names: list[str], whole: dict[str, Any]
) -> dict[str, Any]:
    from logitlab.analysis.compare import compare

    i = body.element
    assert i is not None
    n = len(body.logits)
    if i >= n:
        raise InputError("element", f"{i} is not below the number of logits ({n})")
    keys: tuple[str, ...] = ("value", "grad", "ulp_error", "relative_error")
    keys += ("grad_ulp_error", "grad_relative_error")
    if body.reduction == "none" or (n == 1 and body.reduction == "mean"):
        # The comparison itself is per element (or of the one element): no second run.
        j = i if body.reduction == "none" else 0
        return {
            "index": i,
            "z": whole["inputs"]["logits"][i],
            "exact": {
                "value": whole["exact"]["value_rounded"][j],
                "grad": whole["exact"]["grad_rounded"][i],
            },
            "rows": {
                r["name"]: {
                    k: None if r.get(k) is None else r[k][i if k.startswith("grad") else j]
                    for k in keys
                }
                for r in whole["rows"]
                if r["status"] == "ok"
            },
        }

    def pick(v: ScalarOrList) -> ScalarOrList:
        return v[i] if isinstance(v, list) and len(v) == n else v

    y = body.targets[i] if len(body.targets) == n else body.targets[0]
    one = _exact_or_422("logits", compare)(
        [body.logits[i]],
        [y],
        dtype=c.dtype,
        weight=pick(body.weight),
        pos_weight=pick(body.pos_weight),
        reduction="none",
        formulations=names,
    ).to_dict()
    return {
        "index": i,
        "z": one["inputs"]["logits"][0],
        "exact": {
            "value": one["exact"]["value_rounded"][0],
            "grad": one["exact"]["grad_rounded"][0],
        },
        "rows": {
            r["name"]: {k: None if r.get(k) is None else r[k][0] for k in keys}
            for r in one["rows"]
            if r["status"] == "ok"
        },
    }


def _curve(body: CurveRequest) -> dict[str, Any]:
    """What ``/api/curve`` answers for ``body`` (before encoding)."""
    from logitlab.core.formats import get_format
    from logitlab.core.numbers import json_numbers

    fmt = get_format(body.dtype)
    for name in ("target", "weight", "pos_weight", "z_min", "z_max"):
        v = getattr(body, name)
        if v is not None and not math.isfinite(v):
            raise InputError(name, f"{v!r} is not finite; give a finite number")
    c = _exact_or_422("z_min", bce_curve)(
        body.target,
        dtype=fmt,
        weight=body.weight,
        pos_weight=body.pos_weight,
        z_min=body.z_min,
        z_max=body.z_max,
        points=body.points,
        formulations=select(body.formulations, body.frameworks),
    )
    result = c.to_dict()
    for row, out in zip(c.rows, result["rows"]):
        for key, computed, exact in (
            ("relative_error", row.value, c.exact_value),
            ("grad_relative_error", row.grad, c.exact_grad),
        ):
            rel = relative_errors(computed, exact)
            out[key] = None if rel is None else json_numbers(rel)
    result["saturation"] = saturation(fmt.name).to_dict()
    return result


def _compare_bytes(body: CompareRequest) -> bytes:
    """``/api/compare``'s answer to ``body``, encoded."""
    return _encode(_compare(body))


def _curve_bytes(body: CurveRequest) -> bytes:
    """``/api/curve``'s answer to ``body``, encoded."""
    return _encode(_curve(body), fastapi=False)


#: What the worker process computes for :class:`Prefetch`, by lane.
_BACKGROUND: dict[str, Callable[[Any], bytes]] = {
    "compare": _compare_bytes,
    "curve": _curve_bytes,
}


#: How much lower the worker process's CPU priority is (``nice``) where the idle scheduling
#: class is not available: its breakpoint searches and prefetches are background work, and
#: on a busy machine the sliders' requests (and the browser drawing their answers) should
#: get the CPU first.
WORKER_NICE = 19


def _worker_init() -> None:
    """The worker process: one torch thread, and only the CPU time nothing else wants.

    On Linux the process is in the idle scheduling class (``SCHED_IDLE``): it runs only
    on a core that nothing else wants, so even on two cores it never delays the server's
    answers or the browser's drawing.  Elsewhere (or where that is refused) it gets the
    lowest ``nice`` priority, :data:`WORKER_NICE`.
    """
    import contextlib

    import torch

    torch.set_num_threads(1)
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))
            return
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):  # a platform that refuses: normal priority
            os.nice(WORKER_NICE)


def _breakpoints_worker(args: tuple[Any, ...]) -> dict[str, Any]:
    """:func:`~logitlab.analysis.lesson.breakpoints` in the worker process."""
    return breakpoints(*args)


def _background_worker(lane: str, body: Any) -> bytes:
    """A :class:`Prefetch` lane's answer to ``body``, computed in the worker process: the
    bytes the endpoint itself computes (the same functions)."""
    return _BACKGROUND[lane](body)


class _WorkerGone(Exception):
    """The worker process a :class:`Prefetch` lane computes in is gone (shut down at
    interpreter exit, or dead): the prefetches stop."""


def _in_worker(pool: Any, lane: str) -> Callable[[Any], bytes]:
    """A :class:`Prefetch` lane's ``compute`` that runs in ``pool``'s worker process and
    waits for it (the prefetch thread only waits, holding no lock the requests need)."""

    def compute(body: Any) -> bytes:
        from concurrent.futures.process import BrokenProcessPool

        try:
            result: bytes = pool.submit(_background_worker, lane, body).result()
        except BrokenProcessPool as err:  # the worker died: nothing more can be computed
            raise _WorkerGone(str(err)) from None
        except RuntimeError as err:  # shut down (at interpreter exit, before atexit runs)
            if "shutdown" not in str(err):
                raise
            raise _WorkerGone(str(err)) from None
        return result

    return compute


#: What :func:`_unless_gone` answers when the client went away first.
_GONE = object()


async def _unless_gone(future: Any, request: Request, poll: float = 0.2) -> Any:
    """``future``'s result, or :data:`_GONE` once the client has disconnected; then a
    search not yet started is cancelled, so a fast drag never queues stale searches (one
    already running finishes into the worker's cache)."""
    import asyncio

    wrapped = asyncio.wrap_future(future)
    # A result (or error) nobody waits for any more is still retrieved, quietly.
    wrapped.add_done_callback(lambda f: f.cancelled() or f.exception())
    while True:
        done, _ = await asyncio.wait({wrapped}, timeout=poll)
        if done:
            return wrapped.result()
        if await request.is_disconnected():
            future.cancel()
            return _GONE


def create_app(
    torch_threads: int | None = None, warm_up: bool = False, worker_process: bool = False
) -> FastAPI:
    """The explorer's FastAPI app.

    ``torch_threads`` sets PyTorch's intra-op threads for the whole process (the
    ``explore`` command passes 1): the explorer's tensors hold two to 2001 elements, and
    on a busy machine a parallel region that waits for a descheduled worker thread costs
    milliseconds per call.  ``None`` leaves the setting alone.  ``warm_up`` starts
    :func:`_warm_up` in a background thread.  ``worker_process`` runs the background work,
    the breakpoint search (a second or more) and the prefetches (:class:`Prefetch`), in one
    spawned worker process at a lower CPU priority, so that it never holds the interpreter
    lock while the sliders' requests wait, and yields the CPU to them and to the browser.
    """
    pool: Any = None
    if worker_process:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
        )
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    if warm_up:
        import threading

        threading.Thread(target=_warm_up, name="logitlab-explore-warm-up", daemon=True).start()
    app = FastAPI(
        # /docs is served below from swagger-ui-bundle's files: nothing from a CDN.
        docs_url=None,
        redoc_url=None,
        title="logitlab explore",
        version=__version__,
        description=(
            "Every binary cross-entropy code path on one input, measured against the exact "
            "value: the API behind the `logitlab explore` page."
        ),
    )

    @app.exception_handler(InputError)
    async def input_error(request: Request, err: InputError) -> JSONResponse:
        return _error(err.argument, err.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422, content={"detail": _clean_validation_errors(list(err.errors()))}
        )

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    _mount_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/info", summary="Dtypes, reductions, formulations and limits")
    def info() -> dict[str, Any]:
        from logitlab.formulations import all_formulations

        return {
            "version": __version__,
            "dtypes": list(DTYPE_NAMES),
            "reductions": list(REDUCTIONS),
            "default_formulations": [f.name for f in select()],
            "frameworks": sorted({f.framework for f in all_formulations("bce")}),
            "formulations": [
                {
                    "name": f.name,
                    "framework": f.framework,
                    "via_probabilities": f.via_probabilities,
                    "code": f.code,
                    "summary": f.summary,
                    "missing": f.missing(),
                }
                for f in all_formulations("bce")
            ],
            "limits": {
                "max_elements": MAX_API_ELEMENTS,
                "max_curve_points": MAX_CURVE_POINTS,
                "max_curve_z": MAX_CURVE_Z,
                "max_body_bytes": MAX_BODY_BYTES,
            },
        }

    @app.get("/api/saturation/{dtype}", summary="Where torch.sigmoid rounds to exactly 0 and 1")
    def saturation_endpoint(dtype: str) -> dict[str, Any]:
        from logitlab.core.formats import get_format

        if len(dtype) > 32:
            raise InputError("dtype", "is too long")
        return saturation(get_format(dtype).name).to_dict()

    compare_cache = ResponseCache(COMPARE_CACHE_SIZE)
    app.state.compare_cache = compare_cache
    in_flight = _InFlight()

    @app.post("/api/compare", summary="Every BCE formulation on one input, against exact")
    async def compare_endpoint(body: CompareRequest) -> Response:
        """``logitlab.analysis.compare.compare(...).to_dict()`` with ``explanation`` (sentences) and
        ``saturation`` (the dtype's thresholds) added.  NaN and infinities in the result are
        the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.  Answers are kept (least
        recently used, :data:`COMPARE_CACHE_SIZE`): a control set back to a value it had
        answers at once, with the same bytes."""
        key = _key(body)
        hit = compare_cache.get(key)
        if hit is None:
            hit = await run_in_threadpool(_compare_in_flight, body)
            compare_cache.put(key, hit)
        return _json(hit)

    def _compare_in_flight(body: CompareRequest) -> bytes:
        with in_flight:
            return _compare_bytes(body)

    def background(lane: str) -> Callable[[Any], bytes]:
        # The prefetches run where the background work runs: the worker process if any.
        return _BACKGROUND[lane] if pool is None else _in_worker(pool, lane)

    # In this process a prefetch gives way to the page's requests (they share the
    # interpreter lock); the worker process's lower priority does that by itself.
    prefetch = Prefetch((lambda: bool(in_flight)) if pool is None else (lambda: False))
    prefetch.lane("compare", background("compare"), _key, compare_cache)
    app.state.prefetch = prefetch
    #: The worker process's pool (None: the background work runs in this process).
    app.state.worker = pool

    @app.post(
        "/api/compare/prefetch",
        status_code=202,
        summary="Compute the comparisons for other targets of one element in the background",
    )
    def compare_prefetch_endpoint(body: ComparePrefetchRequest) -> dict[str, int]:
        """What ``/api/compare`` answers for ``compare`` with element ``element``'s target
        set to each of ``targets``, computed one at a time in a background thread and kept
        in its cache, so that moving that element's y slider is answered at once.  Replaces
        a compare prefetch still under way; answers at once with ``queued``, how many were
        not kept yet."""
        # Every field is checked now, a 422 naming it (not a silent skip later): the
        # comparison's as compare checks them, the targets as one array (its index named).
        c = body.compare
        n = len(c.logits)
        if body.element >= n:
            raise InputError("element", f"{body.element} is not below the number of logits ({n})")
        if len(c.targets) != n:
            raise InputError(
                "element",
                f"compare has {len(c.targets)} target(s) for {n} logits; give one per logit "
                "so that one of them can vary",
            )
        BCECase.from_user(np.zeros(len(body.targets)), body.targets, reduction="none")
        requests = body.requests()
        try:
            _check_weight_sizes(c)
            select(c.formulations, c.frameworks)
            BCECase.from_user(
                c.logits,
                c.targets,
                weight=c.weight,
                pos_weight=c.pos_weight,
                reduction=c.reduction,
                dtype=c.dtype,
            )
        except InputError as err:  # a field of the comparison: ["body", "compare", field]
            raise InputError(f"compare.{err.argument}", err.message) from None
        return {"queued": prefetch.submit("compare", requests)}

    @app.post("/api/compare_loss", summary="Every formulation of one loss on one input")
    def compare_loss_endpoint(body: LossCompareRequest) -> dict[str, Any]:
        """``loss`` = ``bce``, ``softmax-ce`` or ``focal``, with that loss's arguments (an
        argument another loss takes is refused, naming it): the comparison's ``to_dict()``
        with ``explanation`` (sentences) added, as ``logitlab compare --loss ... --json``."""
        given = set(body.model_fields_set)
        _check_loss_fields(body.loss, given)
        names = body.formulations
        common: dict[str, Any] = {
            "dtype": body.dtype,
            "reduction": body.reduction,
            "formulations": names,
            "frameworks": body.frameworks,
        }
        logits: Any = body.logits
        if body.loss == "softmax-ce":
            from logitlab.analysis.compare_softmax import compare_softmax

            if body.target is None:
                raise InputError("target", "give the target class or a target distribution")
            c = _exact_or_422("logits", compare_softmax)(
                logits,
                body.target,
                weight=body.weight,
                ignore_index=body.ignore_index,
                label_smoothing=body.label_smoothing,
                **common,
            )
        else:
            if logits and isinstance(logits[0], list):
                raise InputError("logits", f"give a flat list of logits for loss {body.loss}")
            if body.targets is None:
                raise InputError("targets", "give the targets, in [0, 1]")
            if body.loss == "focal":
                from logitlab.analysis.compare_focal import compare_focal

                c = _exact_or_422("logits", compare_focal)(
                    logits, body.targets, alpha=body.alpha, gamma=body.gamma, **common
                )
            else:
                from logitlab.analysis.compare import compare

                common["formulations"] = [f.name for f in select(names, body.frameworks)]
                del common["frameworks"]
                c = _exact_or_422("logits", compare)(
                    logits, body.targets, weight=body.weight, pos_weight=body.pos_weight, **common
                )
        result = c.to_dict()
        result["explanation"] = explain(c)
        return result

    loss_curve_cache = ResponseCache(CURVE_CACHE_SIZE)

    @app.post("/api/curve_loss", summary="softmax-ce or focal loss against one swept logit")
    def curve_loss_endpoint(body: LossCurveRequest) -> Response:
        """softmax-ce: every formulation's loss, error, gradient with respect to logit
        ``sweep`` and flag intervals as that logit of the row runs over ``[z_min, z_max]``
        (:func:`logitlab.analysis.curves_softmax.softmax_curve`); focal: the same for one
        element of target ``target`` (:func:`~logitlab.analysis.curves_softmax.focal_curve`)."""
        key = _key(body)
        hit = loss_curve_cache.get(key)
        if hit is None:
            hit = _encode(_loss_curve(body), fastapi=False)
            loss_curve_cache.put(key, hit)
        return _json(hit)

    def _loss_curve(body: LossCurveRequest) -> dict[str, Any]:
        from logitlab.analysis.curves_softmax import focal_curve, softmax_curve

        sweep_fields = {"z_min", "z_max", "points"}
        given = set(body.model_fields_set)
        common: dict[str, Any] = {
            "dtype": body.dtype,
            "z_min": body.z_min,
            "z_max": body.z_max,
            "points": body.points,
            "formulations": body.formulations,
            "frameworks": body.frameworks,
        }
        if body.loss == "softmax-ce":
            allowed = {"logits", "target", "sweep", "label_smoothing"} | sweep_fields
            _check_curve_fields(body.loss, given, allowed)
            if body.logits is None:
                raise InputError("logits", "give one row of logits")
            if body.target is None:
                raise InputError("target", "give the target class or a target distribution")
            sweep = body.sweep
            if sweep is None:
                sweep = body.target if isinstance(body.target, int) else 0
            return _exact_or_422("logits", softmax_curve)(
                body.logits,
                body.target,
                sweep=sweep,
                label_smoothing=body.label_smoothing,
                **common,
            )
        if body.loss == "focal":
            _check_curve_fields(body.loss, given, {"target", "alpha", "gamma"} | sweep_fields)
            if body.target is None or isinstance(body.target, list):
                raise InputError("target", "give one target in [0, 1]")
            return _exact_or_422("target", focal_curve)(
                float(body.target), alpha=body.alpha, gamma=body.gamma, **common
            )
        raise InputError("loss", f"unknown loss {body.loss!r}; choose from softmax-ce, focal")

    @app.get("/api/lesson", summary="The guided lesson: steps and presets")
    def lesson_endpoint(dtype: str = "float32") -> dict[str, Any]:
        """The lesson's steps at ``dtype`` (each with its page query), every preset, and
        the dtypes the lesson is written for."""
        if len(dtype) > 32:
            raise InputError("dtype", "is too long")
        return {
            "dtypes": list(LESSON_DTYPES),
            "steps": [s.to_dict() for s in steps(dtype)],
            "presets": presets(),
        }

    breakpoint_cache = ResponseCache(BREAKPOINT_CACHE_SIZE)
    app.state.breakpoint_cache = breakpoint_cache

    @app.post("/api/breakpoints", summary="Exact breakpoint onsets for one target and dtype")
    async def breakpoints_endpoint(body: BreakpointsRequest, request: Request) -> Response:
        """Per formulation, criterion and side (against / with the target), the logit of
        smallest |z| where the criterion holds, from the audit's exact search
        (:mod:`logitlab.analysis.breakpoints`); ``z`` is null where it never holds.
        Answers are kept; a search whose client went away before it started is dropped."""

        key = _key(body)
        hit = breakpoint_cache.get(key)
        if hit is None:
            args = _breakpoint_args(body)
            if pool is None:
                result = await run_in_threadpool(breakpoints, *args)
            else:
                result = await _unless_gone(pool.submit(_breakpoints_worker, args), request)
                if result is _GONE:
                    return _error("body", "the client went away before the answer", "gone")
            hit = _encode(result)
            breakpoint_cache.put(key, hit)
        return _json(hit)

    def _breakpoint_args(body: BreakpointsRequest) -> tuple[Any, ...]:
        from logitlab.core.formats import get_format

        fmt = get_format(body.dtype)
        for name in ("target", "weight", "pos_weight"):
            v = getattr(body, name)
            if v is not None and not math.isfinite(v):
                raise InputError(name, f"{v!r} is not finite; give a finite number")
        if not 0.0 <= body.target <= 1.0:
            raise InputError("target", f"{body.target!r} is outside [0, 1]")
        names = [f.name for f in select(body.formulations, body.frameworks) if not f.missing()]
        return (body.target, fmt.name, names, body.weight, body.pos_weight)

    curve_cache = ResponseCache(CURVE_CACHE_SIZE)
    app.state.curve_cache = curve_cache

    @app.post("/api/curve", summary="Loss and gradient against z, every formulation")
    async def curve_endpoint(body: CurveRequest) -> Response:
        """One element's loss and gradient at ``points`` logits in ``[z_min, z_max]``, for
        each formulation (one framework call each, at the dtype) and for the exact
        reference, with per-point ULP and relative errors (``relative_error``,
        ``grad_relative_error``) and the z-intervals where each flag holds."""
        key = _key(body)
        hit = curve_cache.get(key)
        if hit is None:
            hit = await run_in_threadpool(_curve_in_flight, body)
            curve_cache.put(key, hit)
        return _json(hit)

    def _curve_in_flight(body: CurveRequest) -> bytes:
        with in_flight:
            return _curve_bytes(body)

    prefetch.lane("curve", background("curve"), _key, curve_cache)

    @app.post(
        "/api/curve/prefetch",
        status_code=202,
        summary="Compute the curves for other targets in the background",
    )
    def curve_prefetch_endpoint(body: CurvePrefetchRequest) -> dict[str, int]:
        """The curves ``/api/curve`` answers for each of ``targets`` (the other fields as
        there), computed one at a time in a background thread and kept in its cache, so
        that asking for them later is answered at once.  Replaces a prefetch still under
        way; answers at once with ``queued``, how many were not kept yet."""
        # A bad field is a 422 now, not a silent skip later: the common fields as the
        # curve checks them, the targets as one array (so the error gives its index).
        requests = body.requests()
        r = requests[0]
        fmt, _ = bce_curve_case(
            r.target,
            dtype=r.dtype,
            weight=r.weight,
            pos_weight=r.pos_weight,
            z_min=r.z_min,
            z_max=r.z_max,
            points=r.points,
        )
        BCECase.from_user(np.zeros(len(body.targets)), body.targets, reduction="none", dtype=fmt)
        return {"queued": prefetch.submit("curve", requests)}

    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    return app
