"""The watch report: findings by source line, as plain text, a rich table, or JSON."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Finding", "Report"]

# Names of the per-finding counts, in the order reports show them.
COUNT_LABELS: dict[str, str] = {
    "saturated": "saturated",
    "log_clamped": "hit the -100 log clamp",
    "grad_clamped": "gradient clamped",
    "grad_vanished": "gradient vanished",
    "neg_inf": "-inf",
    "lost_digits": "lost all digits",
    "overflow": "inf",
    "coarse": "coarse",
    "upcast": "up-cast",
    "refused": "refused",
}


@dataclass
class Finding:
    """One problem at one source line, aggregated over the calls watched there."""

    code: str
    kind: str
    file: str
    line: int
    summary: str
    fix: str
    calls: int
    checked: int
    elements: int
    affected: int
    counts: dict[str, int] = field(default_factory=dict)
    first_step: int | None = None
    worst: float | None = None
    worst_label: str = ""
    note: str = ""

    @property
    def where(self) -> str:
        """``file:line``, the file relative to the working directory when it is inside it
        (as a compiler or lint prints it)."""
        path = self.file
        try:
            relative = os.path.relpath(path)
        except ValueError:  # another drive
            relative = path
        if not relative.startswith(os.pardir):
            path = relative
        return f"{path}:{self.line}"

    def counts_text(self) -> str:
        parts = [f"{COUNT_LABELS.get(k, k)} {v}" for k, v in self.counts.items() if v]
        return ", ".join(parts)

    def worst_text(self) -> str:
        if self.worst is None or not math.isfinite(self.worst):
            return ""
        return f"{self.worst_label} {self.worst:.6g}".strip()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["worst"] is not None and not math.isfinite(d["worst"]):
            d["worst"] = None
        return d


@dataclass
class Report:
    """What one watch saw: findings (worst first) and how much was watched."""

    findings: list[Finding]
    mode: str
    steps: int
    step_source: str  # "on_step" or "backward calls"
    ops_seen: int

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def __bool__(self) -> bool:
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "steps": self.steps,
            "step_source": self.step_source,
            "ops_seen": self.ops_seen,
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def _header(self) -> str:
        n = len(self.findings)
        return (
            f"logitlab watch ({self.mode} mode): {self.steps} step(s) ({self.step_source}), "
            f"{self.ops_seen} torch call(s) seen, {n} finding(s)"
        )

    def lines(self) -> list[str]:
        """Plain-text lines; numbers are never cut, whatever the width."""
        out = [self._header()]
        for f in self.findings:
            out.append(f"{f.where}: {f.code} {f.kind}: {f.summary}")
            stats = (
                f"  calls {f.calls} (checked {f.checked}), elements {f.elements}, "
                f"affected {f.affected}"
            )
            detail = f.counts_text()
            if detail:
                stats += f" ({detail})"
            if f.first_step is not None:
                stats += f", first seen at step {f.first_step}"
            worst = f.worst_text()
            if worst:
                stats += f", worst {worst}"
            out.append(stats)
            if f.note:
                out.append(f"  note: {f.note}")
            out.append(f"  fix ({f.code}): {f.fix}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def print(self, file: Any = None) -> None:
        """Print to ``file`` (default stdout): a rich table on a terminal, else plain lines."""
        import sys

        stream = file if file is not None else sys.stdout
        if not getattr(stream, "isatty", lambda: False)():
            stream.write(str(self) + "\n")
            stream.flush()
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        console = Console(file=stream)
        console.print(escape(self._header()))
        if not self.findings:
            return
        table = Table(show_lines=True)
        for name in ("where", "code", "finding", "calls", "elements", "affected", "first step"):
            whole = name in ("code", "calls", "elements", "affected", "first step")
            table.add_column(name, overflow="fold", no_wrap=whole)
        table.add_column("worst / fix", overflow="fold")
        for f in self.findings:
            finding = escape(f.kind) + "\n" + escape(f.counts_text())
            if f.note:
                finding += "\n" + escape(f.note)
            table.add_row(
                escape(f.where),
                f.code,
                finding,
                f"{f.calls}\n(checked {f.checked})",
                str(f.elements),
                str(f.affected),
                "" if f.first_step is None else str(f.first_step),
                escape(f.worst_text()) + "\n" + escape(f.fix),
            )
        console.print(table)
