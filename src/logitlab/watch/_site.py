"""Per-source-line accumulators: counts kept as device tensors, read only at report time."""

from __future__ import annotations

import math
import time
from typing import Any

__all__ = ["Site"]

FIRST_CALLS_CHECKED = 8  # the first calls at a site are always checked
MAX_INTERVAL = 64  # adaptive sampling never checks less often than one call in 64
BUDGET = 0.01  # adaptive sampling aims to spend ~1% of the time between calls on checks


class Site:
    """One (kind, file, line): how often it ran, what was checked, what was found."""

    __slots__ = (
        "_dt",
        "_last",
        "affected",
        "calls",
        "checked",
        "counts",
        "dumped",
        "elements",
        "file",
        "first_step",
        "host_affected",
        "interval",
        "kind",
        "line",
        "next_check",
        "note",
        "warned",
        "worst",
        "worst_label",
    )

    def __init__(self, kind: str, file: str, line: int) -> None:
        self.kind = kind
        self.file = file
        self.line = line
        self.calls = 0
        self.checked = 0
        self.elements = 0
        self.interval = 1
        self.next_check = 1
        self._last = 0.0
        self._dt = 0.0
        self.counts: dict[str, Any] = {}  # name -> 0-d int64 tensor (or int)
        self.affected: Any = None  # 0-d int64 tensor on the data's device
        self.host_affected = 0  # structural findings counted without touching the device
        self.first_step: Any = None  # 0-d int64 tensor, -1 until something is affected
        self.worst: Any = None  # 0-d float64 tensor, -inf until something is affected
        self.worst_label = ""
        self.note = ""
        self.warned = False
        self.dumped = False

    # --- sampling -------------------------------------------------------------------

    def due(self, full: bool, every: int | None) -> bool:
        """Count a call; say whether to check it."""
        self.calls += 1
        now = time.perf_counter()
        if self._last:
            dt = now - self._last
            self._dt = dt if not self._dt else 0.8 * self._dt + 0.2 * dt
        self._last = now
        return full or self.calls <= FIRST_CALLS_CHECKED or self.calls >= self.next_check

    def checked_in(self, cost: float, full: bool, every: int | None) -> None:
        """After a check that took ``cost`` seconds: when to check next."""
        self.checked += 1
        if full:
            self.interval = 1
        elif every is not None:
            self.interval = every
        elif self._dt > 0:
            self.interval = max(1, min(MAX_INTERVAL, math.ceil(cost / (BUDGET * self._dt))))
        self.next_check = self.calls + self.interval

    # --- accumulation (device tensors, no host sync) ----------------------------------

    def add(
        self,
        step: int,
        elements: int,
        affected: Any,
        counts: dict[str, Any],
        worst: Any = None,
        worst_label: str = "",
    ) -> None:
        import torch

        self.elements += elements
        affected = affected.to(torch.int64)
        if self.affected is None:
            device = affected.device
            self.affected = torch.zeros((), dtype=torch.int64, device=device)
            self.first_step = torch.full((), -1, dtype=torch.int64, device=device)
            self.worst = torch.full((), -math.inf, dtype=torch.float64, device=device)
        affected = affected.to(self.affected.device)
        self.affected.add_(affected)
        self.first_step = torch.where(
            (self.first_step < 0) & (affected > 0),
            torch.full_like(self.first_step, step),
            self.first_step,
        )
        for name, value in counts.items():
            value = value.to(torch.int64).to(self.affected.device)
            if name in self.counts:
                self.counts[name].add_(value)
            else:
                self.counts[name] = value.clone()
        if worst is not None:
            self.worst = torch.maximum(self.worst, worst.to(self.worst))
            self.worst_label = worst_label

    def add_host(self, step: int, elements: int, affected: int, counts: dict[str, int]) -> None:
        """Structural findings, known on the host (no device values involved)."""
        import torch

        self.elements += elements
        if affected and self.first_step is None:
            self.first_step = torch.tensor(step, dtype=torch.int64)
        self.host_affected += affected
        for name, value in counts.items():
            self.counts[name] = int(self.counts.get(name, 0)) + value

    def total_affected(self) -> int:
        total = self.host_affected
        if self.affected is not None:
            total += int(self.affected.item())
        return total

    def snapshot(self) -> dict[str, Any]:
        """Read the device counts (one transfer per tensor)."""
        first = None
        if self.first_step is not None:
            value = int(self.first_step.item())
            first = value if value >= 0 else None
        worst = None
        if self.worst is not None:
            w = float(self.worst.item())
            worst = w if w != -math.inf else None
        return {
            "affected": self.total_affected(),
            "counts": {
                k: int(v.item()) if hasattr(v, "item") else int(v) for k, v in self.counts.items()
            },
            "first_step": first,
            "worst": worst,
        }
