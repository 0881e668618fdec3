"""``logitlab.watch()``: a context manager and decorator that watches a training run."""

from __future__ import annotations

import functools
import os
import re
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from logitlab.watch._kinds import KINDS
from logitlab.watch._report import Finding, Report
from logitlab.watch._site import Site

__all__ = ["WatchWarning", "Watcher", "active", "on_step", "watch"]

F = TypeVar("F", bound=Callable[..., Any])

_local = threading.local()


class WatchWarning(UserWarning):
    """A numerical problem ``logitlab.watch`` saw in a running job (once per source line)."""


class Watcher:
    """Watches torch calls while active; :meth:`report` says what it found, by source line.

    ``full=False`` (default) checks the first calls at each source line and then one
    call in N, N chosen so that checks cost about 1% of the time between calls (at most
    one in 64); ``every=N`` fixes N.  ``full=True`` checks every call.  Counts stay on the
    data's device until :meth:`report` (or a warning, on CPU) reads them.
    """

    def __init__(
        self,
        *,
        full: bool = False,
        every: int | None = None,
        warn: bool = True,
        dump: str | os.PathLike[str] | None = None,
        resolution: float = 1e-3,
        sync_every: int = 100,
    ) -> None:
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"every: must be a positive integer, not {every!r}")
        if not resolution > 0:
            raise ValueError(f"resolution: must be positive, not {resolution!r}")
        self.full = full
        self.every = every
        self.warn = warn
        self.dump_dir = None if dump is None else os.fspath(dump)
        self.resolution = resolution
        self.sync_every = sync_every
        self._user_step = 0
        self._user_steps = False
        self._backward_steps = 0
        self.sites: dict[tuple[str, str, int], Site] = {}
        self.errors: list[str] = []
        self._mode: Any = None
        self._ops_before = 0
        self._outer: Watcher | None = None

    # --- activation -------------------------------------------------------------------

    def __enter__(self) -> Watcher:
        if self._mode is not None:
            raise RuntimeError("this watcher is already active")
        from logitlab.watch._mode import WatchMode

        self._mode = WatchMode(self)
        self._mode.__enter__()
        self._outer = getattr(_local, "active", None)
        _local.active = self
        return self

    def __exit__(self, *exc: object) -> None:
        mode, self._mode = self._mode, None
        if mode is None:
            return
        try:
            mode.__exit__(None, None, None)
        finally:
            self._ops_before += mode.ops
            _local.active = self._outer
            self.flush()

    def __call__(self, fn: F) -> F:
        """Use as a decorator: each call of ``fn`` runs watched (the counts accumulate)."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        wrapper.watcher = self  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    @property
    def active(self) -> bool:
        return self._mode is not None

    # --- steps ------------------------------------------------------------------------

    def on_step(self, step: int | None = None) -> None:
        """Tell the watcher a training step ended (``step``: the next step's number)."""
        self._user_steps = True
        self._user_step = self._user_step + 1 if step is None else int(step)
        if self.sync_every and self._user_step % self.sync_every == 0:
            self.flush()

    def backward_done(self) -> None:
        self._backward_steps += 1

    @property
    def step(self) -> int:
        """The current step: the last ``on_step`` value, or else the backward calls so far."""
        return self._user_step if self._user_steps else self._backward_steps

    # --- sites ------------------------------------------------------------------------

    def site(self, kind: str, file: str, line: int) -> Site:
        key = (kind, file, line)
        site = self.sites.get(key)
        if site is None:
            site = self.sites[key] = Site(kind, file, line)
        return site

    def after_check(self, site: Site) -> None:
        """On CPU a count is free to read: warn at once.  On a GPU wait for a flush."""
        if site.warned or not self.warn:
            return
        if site.affected is not None and site.affected.device.type != "cpu":
            return
        self._maybe_warn(site)

    def _maybe_warn(self, site: Site) -> None:
        if site.warned or not self.warn:
            return
        affected = site.total_affected()
        if affected == 0:
            return
        site.warned = True
        kind = KINDS[site.kind]
        message = f"{kind.code} {kind.summary} ({affected} element(s) so far); fix: {kind.fix}"
        if site.note:
            message += f" [{site.note}]"
        warnings.warn_explicit(message, WatchWarning, site.file, site.line, module="logitlab.watch")

    def flush(self) -> None:
        """Read the device counts (one sync) and issue pending warnings."""
        for site in list(self.sites.values()):
            self._maybe_warn(site)

    def internal_error(self, site: Site, err: Exception) -> None:
        text = f"{site.kind} check at {site.file}:{site.line} failed: {type(err).__name__}: {err}"
        if text not in self.errors:
            self.errors.append(text)
            warnings.warn(f"logitlab.watch: {text}", RuntimeWarning, stacklevel=2)

    def maybe_dump(
        self, site: Site, affected: Any, logits: Any, targets: Any, weight: Any, pos_weight: Any
    ) -> None:
        """Save the first offending batch of a site as ``.npz`` (reads the device: a sync)."""
        import numpy as np
        import torch

        if site.dumped or self.dump_dir is None:
            return
        if affected is not None and int(affected.sum().item()) == 0:
            return
        site.dumped = True
        os.makedirs(self.dump_dir, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(site.file)).removesuffix(".py")
        path = os.path.join(self.dump_dir, f"{stem}_{site.line}_{site.kind}.npz")

        def host(t: Any) -> Any:
            if not isinstance(t, torch.Tensor):
                return np.asarray(t)
            t = t.detach().cpu()
            return (t.double() if t.is_floating_point() else t).numpy()

        arrays = {"logits": host(logits), "targets": host(targets)}
        if isinstance(weight, torch.Tensor):
            arrays["weight"] = host(weight)
        if isinstance(pos_weight, torch.Tensor):
            arrays["pos_weight"] = host(pos_weight)
        np.savez(path, **arrays)

    # --- results ----------------------------------------------------------------------

    @property
    def ops_seen(self) -> int:
        return self._ops_before + (self._mode.ops if self._mode is not None else 0)

    def report(self) -> Report:
        """The findings so far, worst first (reads the device counts once)."""
        findings: list[Finding] = []
        for site in self.sites.values():
            snap = site.snapshot()
            if snap["affected"] == 0:
                continue
            kind = KINDS[site.kind]
            findings.append(
                Finding(
                    code=kind.code,
                    kind=site.kind,
                    file=site.file,
                    line=site.line,
                    summary=kind.summary,
                    fix=kind.fix,
                    calls=site.calls,
                    checked=site.checked,
                    elements=site.elements,
                    affected=snap["affected"],
                    counts=snap["counts"],
                    first_step=snap["first_step"],
                    worst=snap["worst"],
                    worst_label=site.worst_label,
                    note=site.note,
                )
            )
        findings.sort(key=lambda f: (-f.affected, f.file, f.line))
        mode = "full" if self.full else (f"every {self.every}" if self.every else "sampled")
        return Report(
            findings=findings,
            mode=mode,
            steps=self.step,
            step_source="on_step" if self._user_steps else "backward calls",
            ops_seen=self.ops_seen,
        )


def watch(
    fn: Callable[..., Any] | None = None,
    *,
    full: bool = False,
    every: int | None = None,
    warn: bool = True,
    dump: str | os.PathLike[str] | None = None,
    resolution: float = 1e-3,
) -> Any:
    """Watch a PyTorch run for probability-space numerics; see :class:`Watcher`.

    ``with watch() as w: train()`` then ``print(w.report())``; or as a decorator,
    ``@watch`` / ``@watch(full=True)`` (the watcher is the wrapper's ``.watcher``).
    """
    watcher = Watcher(full=full, every=every, warn=warn, dump=dump, resolution=resolution)
    if fn is not None:
        return watcher(fn)
    return watcher


def active() -> Watcher | None:
    """The innermost active watcher of this thread, if any."""
    w: Watcher | None = getattr(_local, "active", None)
    return w


def on_step(step: int | None = None) -> None:
    """Mark the end of a training step on the active watcher (nothing if none)."""
    w = active()
    if w is not None:
        w.on_step(step)
