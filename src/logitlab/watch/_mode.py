"""The TorchFunctionMode that watches a run: provenance, checks, and attribution.

Every torch call goes through :meth:`WatchMode.__torch_function__`; calls that matter are
looked up in one dict, everything else is passed straight on.  The mode never changes a
value: each handler calls the real function with the caller's arguments and returns its
result untouched; the checks work on detached tensors under ``torch.no_grad()``.

Provenance: outputs of sigmoid / softmax / log_softmax / exp, and the views and casts made
of them, map (weakly, by identity) to a record holding the tensor they came from
(detached, so no autograd graph is kept).  A record lives exactly as long as the tensor it
describes, which autograd frees at the end of the step.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from logitlab.formulations._torch import TORCH_BACKWARD_EPSILON, TORCH_LOG_CLAMP

if TYPE_CHECKING:
    from logitlab.watch._site import Site
    from logitlab.watch._watcher import Watcher

__all__ = ["WatchMode"]

Tensor = torch.Tensor
_LOW_PRECISION = (torch.float16, torch.bfloat16)

_INTERNAL_DIRS = tuple(
    os.path.dirname(path) + os.sep
    for path in (torch.__file__, sys.modules["logitlab"].__file__)
    if path is not None
)


class Record:
    """Where a tensor came from: the kind of producer and its (detached) input."""

    __slots__ = ("chain", "dim", "hi", "kind", "lo", "negate", "opaque", "source")

    def __init__(self, kind: str, source: Tensor, dim: int | None = None) -> None:
        self.kind = kind  # sigmoid, softmax, log_softmax, exp, exp_plus, exp_sum
        self.source = source  # the logits (or exp's argument), detached
        self.dim = dim
        self.chain: tuple[tuple[Any, tuple[Any, ...], dict[str, Any]], ...] = ()
        self.negate = False  # 1 - sigmoid(z) = sigmoid(-z)
        self.lo: float | None = None  # clamp bounds applied on the way
        self.hi: float | None = None
        self.opaque = False  # a pass-through we cannot replay on the logits

    def derived(self) -> Record:
        r = Record(self.kind, self.source, self.dim)
        r.chain, r.negate, r.lo, r.hi, r.opaque = (
            self.chain,
            self.negate,
            self.lo,
            self.hi,
            self.opaque,
        )
        return r

    def logits_like(self, like: Tensor) -> Tensor | None:
        """The source logits, replayed through the recorded views, aligned with ``like``."""
        if self.opaque:
            return None
        z = self.source
        try:
            for func, rest, kwargs in self.chain:
                z = func(z, *rest, **kwargs)
        except Exception:
            return None
        if self.negate:
            z = -z
        if z.shape != like.shape:
            return None
        return z.to(like.device)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name)


def _softmax_dim(x: Tensor, dim: Any) -> int:
    if dim is None:  # torch's legacy implicit choice
        return 0 if x.dim() in (0, 1, 3) else 1
    return int(dim)


def _count(mask: Tensor) -> Tensor:
    return mask.sum()


def _masked_max(values: Tensor, mask: Tensor) -> Tensor:
    v = values.to(torch.float64)
    return torch.where(mask, v, torch.full_like(v, -math.inf)).amax()


class WatchMode(TorchFunctionMode):
    """Observe torch calls for one :class:`~logitlab.watch.Watcher`."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.w = watcher
        self.prov: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.ops = 0
        self._internal: dict[Any, bool] = {}
        self.table: dict[Any, Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]] = {}
        self._build_table()

    # --- dispatch ---------------------------------------------------------------------

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.ops += 1
        if kwargs is None:
            kwargs = {}
        handler = self.table.get(func)
        if handler is None:
            return func(*args, **kwargs)
        return handler(func, args, kwargs)

    def _build_table(self) -> None:
        T = torch.Tensor
        table = self.table
        for f in (torch.sigmoid, T.sigmoid, torch.special.expit):
            table[f] = self._producer("sigmoid")
        for f in (F.softmax, torch.softmax, T.softmax, torch.special.softmax):
            table[f] = self._producer("softmax")
        for f in (F.log_softmax, torch.log_softmax, T.log_softmax, torch.special.log_softmax):
            table[f] = self._producer("log_softmax")
        for f in (torch.exp, T.exp):
            table[f] = self._producer("exp")
        for f in (
            T.view,
            T.reshape,
            torch.reshape,
            T.flatten,
            torch.flatten,
            T.squeeze,
            torch.squeeze,
            T.unsqueeze,
            torch.unsqueeze,
            T.__getitem__,
            T.t,
            T.transpose,
            torch.transpose,
            T.permute,
            T.view_as,
            T.reshape_as,
            T.select,
            T.narrow,
            T.expand,
            T.expand_as,
        ):
            table[f] = self._shape_view
        for f in (
            T.to,
            T.float,
            T.double,
            T.half,
            T.bfloat16,
            T.type_as,
            T.contiguous,
            T.clone,
            torch.clone,
            T.detach,
            T.cpu,
            T.cuda,
        ):
            table[f] = self._same_values
        for f in (T.clamp, torch.clamp, T.clip, torch.clip, T.clamp_min, T.clamp_max):
            table[f] = self._clamp
        table[T.__rsub__] = self._rsub
        for f in (T.__add__, T.__radd__, torch.add, T.add):
            table[f] = self._add
        for f in (T.sum, torch.sum):
            table[f] = self._sum
        for f in (torch.log, T.log):
            table[f] = self._log
        for f in (torch.log1p, T.log1p):
            table[f] = self._log1p
        for f in (T.__rtruediv__, torch.reciprocal, T.reciprocal):
            table[f] = self._reciprocal
        for f in (T.__truediv__, torch.div, T.div, torch.true_divide):
            table[f] = self._div
        table[F.binary_cross_entropy] = self._bce
        table[F.nll_loss] = self._nll
        table[F.cross_entropy] = self._cross_entropy
        table[T.backward] = self._backward
        table[torch.autograd.backward] = self._backward

    # --- attribution ------------------------------------------------------------------

    def _where(self) -> tuple[str, int]:
        """The first frame outside torch and logitlab: the user's file and line."""
        frame = sys._getframe(1)
        internal = self._internal
        while frame is not None:
            code = frame.f_code
            inside = internal.get(code)
            if inside is None:
                inside = code.co_filename.startswith(_INTERNAL_DIRS)
                internal[code] = inside
            if not inside:
                return code.co_filename, frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return "<unknown>", 0

    def _run_check(self, site: Site, check: Callable[[], None]) -> None:
        start = time.perf_counter()
        try:
            with torch.no_grad():
                check()
        except Exception as err:  # a watcher must never break the run it watches
            self.w.internal_error(site, err)
        site.checked_in(time.perf_counter() - start, self.w.full, self.w.every)
        self.w.after_check(site)

    # --- provenance -------------------------------------------------------------------

    def _producer(self, kind: str) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]:
        def handler(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            out = func(*args, **kwargs)
            x = _arg(args, kwargs, 0, "input")
            if isinstance(out, Tensor) and isinstance(x, Tensor) and out.is_floating_point():
                dim = None
                if kind in ("softmax", "log_softmax"):
                    dim = _softmax_dim(x, _arg(args, kwargs, 1, "dim"))
                self.prov[out] = Record(kind, x.detach(), dim)
            return out

        return handler

    def _source(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Record | None:
        x = args[0] if args else kwargs.get("input")
        if not isinstance(x, Tensor):
            return None
        rec: Record | None = self.prov.get(x)
        return rec

    def _shape_view(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        rec = self._source(args, kwargs)
        if rec is not None and isinstance(out, Tensor) and out is not args[0]:
            r = rec.derived()
            if args:
                r.chain = (*rec.chain, (func, tuple(args[1:]), dict(kwargs)))
            else:
                r.opaque = True
            self.prov[out] = r
        return out

    def _same_values(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        rec = self._source(args, kwargs)
        if (
            rec is not None
            and isinstance(out, Tensor)
            and out is not args[0]
            and out.is_floating_point()
        ):
            self.prov[out] = rec.derived()
        return out

    def _clamp(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        rec = self._source(args, kwargs)
        if rec is not None and isinstance(out, Tensor) and out is not args[0]:
            r = rec.derived()
            name = getattr(func, "__name__", "")
            lo = hi = None
            if name == "clamp_min":
                lo = _arg(args, kwargs, 1, "min")
            elif name == "clamp_max":
                hi = _arg(args, kwargs, 1, "max")
            else:
                lo = _arg(args, kwargs, 1, "min")
                hi = _arg(args, kwargs, 2, "max")
            if isinstance(lo, Tensor) or isinstance(hi, Tensor):
                r.opaque = True
            else:
                if lo is not None:
                    r.lo = float(lo) if r.lo is None else max(r.lo, float(lo))
                if hi is not None:
                    r.hi = float(hi) if r.hi is None else min(r.hi, float(hi))
            self.prov[out] = r
        return out

    def _rsub(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)  # other - self
        rec = self._source(args, kwargs)
        if (
            rec is not None
            and rec.kind == "sigmoid"
            and len(args) > 1
            and isinstance(args[1], (int, float))
            and args[1] == 1
            and rec.lo is None
            and rec.hi is None
        ):
            r = rec.derived()
            r.negate = not r.negate
            self.prov[out] = r
        return out

    def _add(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        if len(args) >= 2 and isinstance(out, Tensor):
            for mine, other in ((args[0], args[1]), (args[1], args[0])):
                rec = self.prov.get(mine) if isinstance(mine, Tensor) else None
                if rec is not None and rec.kind == "exp":
                    if not isinstance(other, Tensor) or self.prov.get(other) is None:
                        self.prov[out] = Record("exp_plus", rec.source)
                    break
        return out

    def _sum(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        rec = self._source(args, kwargs)
        if rec is not None and rec.kind == "exp" and isinstance(out, Tensor):
            self.prov[out] = Record("exp_sum", rec.source)
        return out

    # --- checks: log of probabilities, hand-written exp patterns ----------------------

    def _log(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        rec = self._source(args, kwargs)
        if rec is None:
            return out
        x = args[0] if args else kwargs["input"]
        if rec.kind in ("sigmoid", "softmax"):
            self._log_of(rec, x, out)
        elif rec.kind == "exp_plus":
            self._overflow("hand-written-softplus-overflow", rec, x)
        elif rec.kind == "exp_sum":
            self._overflow("hand-written-logsumexp-overflow", rec, x)
        return out

    def _log1p(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        rec = self._source(args, kwargs)
        if rec is not None and rec.kind == "exp":
            self._overflow(
                "hand-written-softplus-overflow", rec, args[0] if args else kwargs["input"]
            )
        return out

    def _reciprocal(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        rec = self._source(args, kwargs)
        if rec is not None and rec.kind == "exp_plus":
            self._overflow("hand-written-sigmoid-overflow", rec, args[0])
        return out

    def _div(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        den = _arg(args, kwargs, 1, "other")
        rec = self.prov.get(den) if isinstance(den, Tensor) else None
        if rec is not None and rec.kind == "exp_plus":
            self._overflow("hand-written-sigmoid-overflow", rec, den)
        return out

    def _log_of(self, rec: Record, p: Tensor, out: Tensor) -> None:
        kind = "log-of-sigmoid" if rec.kind == "sigmoid" else "log-of-softmax"
        site = self.w.site(kind, *self._where())
        if not site.due(self.w.full, self.w.every):
            return

        def check() -> None:
            pd = p.detach()
            zero = pd == 0
            one = pd == 1
            bad = zero | one
            z = rec.logits_like(pd)
            worst = label = None
            if z is not None:
                if rec.kind == "sigmoid":
                    worst, label = _masked_max(z.abs(), bad), "|logit|"
                else:
                    dim = rec.dim if rec.dim is not None else -1
                    gap = z.amax(dim=dim, keepdim=True) - z
                    worst, label = _masked_max(gap, bad), "logit below the row's max"
            site.add(
                self.w.step,
                pd.numel(),
                _count(bad),
                {"neg_inf": _count(zero), "lost_digits": _count(one)},
                worst,
                label or "",
            )

        self._run_check(site, check)

    def _overflow(self, kind: str, rec: Record, x: Tensor) -> None:
        site = self.w.site(kind, *self._where())
        if not site.due(self.w.full, self.w.every):
            return

        def check() -> None:
            xd = x.detach()
            inf = torch.isinf(xd)
            n = _count(inf)
            arg = rec.source
            worst = torch.where(n > 0, arg.amax().to(torch.float64), -math.inf)
            site.add(self.w.step, xd.numel(), n, {"overflow": n}, worst, "exp argument")

        self._run_check(site, check)

    # --- checks: losses ---------------------------------------------------------------

    def _bce(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        p = _arg(args, kwargs, 0, "input")
        y = _arg(args, kwargs, 1, "target")
        weight = _arg(args, kwargs, 2, "weight")
        autocast = isinstance(p, Tensor) and torch.is_autocast_enabled(p.device.type)
        try:
            out = func(*args, **kwargs)
        except RuntimeError as err:
            if autocast and "autocast" in str(err):
                site = self.w.site("autocast-refused", *self._where())
                site.due(True, None)
                site.note = str(err).strip().splitlines()[0]
                site.add_host(self.w.step, p.numel(), p.numel(), {"refused": 1})
                site.checked_in(0.0, True, None)
                self.w.after_check(site)
            raise
        if not isinstance(p, Tensor) or not isinstance(y, Tensor):
            return out
        where = self._where()
        if autocast and p.dtype in _LOW_PRECISION and out.dtype == torch.float32:
            self._upcast(where, p)
        site = self.w.site("bce-on-probabilities", *where)
        if not site.due(self.w.full, self.w.every):
            return out
        rec = self.prov.get(p)
        if rec is not None and rec.kind != "sigmoid":
            rec = None

        def check() -> None:
            pd = p.detach()
            yd = y.detach().to(pd.dtype).expand_as(pd)
            pos = yd != 0  # the y * log(p) term is there
            neg = yd != 1  # the (1 - y) * log(1 - p) term is there
            live = None
            if isinstance(weight, Tensor):
                live = (weight.detach() != 0).expand_as(pd)
                pos = pos & live
                neg = neg & live
            saturated = ((pd == 0) & pos) | ((pd == 1) & neg)
            log_clamped = ((torch.log(pd) < TORCH_LOG_CLAMP) & pos) | (
                (torch.log1p(-pd) < TORCH_LOG_CLAMP) & neg
            )
            variance = (1 - pd) * pd
            numerator = pd - yd
            grad_clamped = (variance > 0) & (variance < TORCH_BACKWARD_EPSILON) & (numerator != 0)
            if live is not None:
                grad_clamped &= live
            z = rec.logits_like(pd) if rec is not None else None
            if z is not None:
                # The gradient torch's chain gives at the logits, elementwise, against
                # the logits path's: sigma(z) - y from the tracked logits, in their dtype
                # (what BCEWithLogitsLoss's backward computes).
                s = torch.sigmoid(z)
                passes = torch.ones_like(pd, dtype=torch.bool)
                sc = s.to(pd.dtype)
                if rec.lo is not None:
                    passes &= sc >= rec.lo
                if rec.hi is not None:
                    passes &= sc <= rec.hi
                chained = numerator / variance.clamp_min(TORCH_BACKWARD_EPSILON) * ((1 - s) * s)
                reference = s - yd.to(s.dtype)
                vanished = ((chained == 0) | ~passes) & (reference != 0)
                if live is not None:
                    vanished &= live
                magnitude = z.abs()
            else:
                # No logits known: at p = 0 or 1 sigmoid's backward is 0 whatever y is.
                vanished = saturated & (numerator != 0)
                magnitude = None
            affected = saturated | log_clamped | grad_clamped | vanished
            worst = None if magnitude is None else _masked_max(magnitude, affected)
            site.add(
                self.w.step,
                pd.numel(),
                _count(affected),
                {
                    "saturated": _count(saturated),
                    "log_clamped": _count(log_clamped),
                    "grad_clamped": _count(grad_clamped),
                    "grad_vanished": _count(vanished),
                },
                worst,
                "|logit|",
            )
            if self.w.dump_dir is not None and not site.dumped and z is not None:
                self.w.maybe_dump(site, affected, z, yd, weight, None)

        self._run_check(site, check)
        return out

    def _upcast(self, where: tuple[str, int], p: Tensor) -> None:
        from logitlab.core.formats import get_format

        site = self.w.site("autocast-upcast", *where)
        if not site.due(self.w.full, self.w.every):
            return
        fmt = get_format(str(p.dtype))
        threshold = (fmt.precision + 1) * math.log(2)
        site.note = (
            f"autocast ran binary_cross_entropy in float32, but the probabilities arrived "
            f"in {fmt.name} ({fmt.precision} significant bits, eps {fmt.eps:g}): "
            f"sigmoid(z) rounds to 1 there for z > {threshold:.3g}"
        )
        site.add_host(self.w.step, p.numel(), p.numel(), {"upcast": p.numel()})
        site.checked_in(0.0, self.w.full, self.w.every)
        self.w.after_check(site)

    def _probability_input(self, kind: str, func: Any, args: Any, kwargs: Any) -> Any:
        out = func(*args, **kwargs)
        x = _arg(args, kwargs, 0, "input")
        rec = self.prov.get(x) if isinstance(x, Tensor) else None
        if rec is None or rec.kind not in ("softmax", "sigmoid"):
            return out
        site = self.w.site(kind, *self._where())
        if not site.due(self.w.full, self.w.every):
            return out
        rows = x.numel() // x.shape[1] if x.dim() >= 2 else 1
        site.worst_label = rec.kind
        site.add_host(self.w.step, rows, rows, {})
        site.checked_in(0.0, self.w.full, self.w.every)
        self.w.after_check(site)
        if self.w.dump_dir is not None and not site.dumped:
            target = _arg(args, kwargs, 1, "target")
            with torch.no_grad():
                self.w.maybe_dump(site, None, rec.source, target, None, None)
        return out

    def _nll(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self._probability_input("nll-on-probabilities", func, args, kwargs)

    def _cross_entropy(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self._probability_input("cross-entropy-on-softmax", func, args, kwargs)

    def _backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        loss = _arg(args, kwargs, 0, "tensors")
        if isinstance(loss, Tensor) and loss.dtype in _LOW_PRECISION and loss.numel() == 1:
            self._resolution(loss)
        try:
            return func(*args, **kwargs)
        finally:
            self.w.backward_done()

    def _resolution(self, loss: Tensor) -> None:
        from logitlab.core.formats import get_format

        site = self.w.site("loss-resolution", *self._where())
        if not site.due(self.w.full, self.w.every):
            return
        fmt = get_format(str(loss.dtype))
        threshold = self.w.resolution

        def check() -> None:
            v = loss.detach().reshape(()).to(torch.float64).abs()
            # ULP of v in its format: 2**(max(exponent, emin) - (precision - 1)).
            exponent = torch.frexp(v).exponent - 1
            ulp = torch.ldexp(
                torch.ones_like(v), exponent.clamp_min(fmt.emin) - (fmt.precision - 1)
            )
            relative = torch.where(v > 0, ulp / v, torch.zeros_like(v))
            coarse = torch.isfinite(v) & (relative > threshold)
            site.note = (
                f"{fmt.name} loss: one ULP is 2**-{fmt.precision - 1} (eps {fmt.eps:g}) "
                "of the loss's power of two"
            )
            site.add(
                self.w.step,
                1,
                coarse.to(torch.int64),
                {"coarse": coarse.to(torch.int64)},
                torch.where(coarse, relative, -math.inf),
                "ULP / loss",
            )

        self._run_check(site, check)
