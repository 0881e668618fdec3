"""Terminal tables (rich) for compare and sigmoid; they only present what those return."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from logitlab.analysis.compare import Comparison, Row
from logitlab.analysis.saturation import EXACT, SigmoidRow
from logitlab.core.numbers import exact_repr, shortest_repr

__all__ = ["format_ulps", "print_comparison", "print_sigmoid_report"]

# Show at most this many elements in a table; --json has them all.
MAX_SHOWN = 20


def _justify(text: str) -> Literal["left", "right"]:
    return "right" if text == "right" else "left"


def format_ulps(u: float) -> str:
    if math.isnan(u):
        return "nan"
    if math.isinf(u):
        return "inf"
    if u == 0:
        return "0"
    if u < 0.01:
        return f"{u:.1e}"
    if u < 100:
        return f"{u:.2f}"
    return f"{u:.3g}"


def format_relative(r: float) -> str:
    if math.isnan(r):
        return "nan"
    if math.isinf(r):
        return "inf"
    return "0" if r == 0 else f"{r:.2e}"


def _values(a: np.ndarray, fmt_name: str) -> str:
    flat = np.asarray(a).ravel()
    texts = [shortest_repr(v, fmt_name) for v in flat[:MAX_SHOWN]]
    more = f", ... ({flat.size} in all)" if flat.size > MAX_SHOWN else ""
    return texts[0] if flat.size == 1 and np.ndim(a) == 0 else "[" + ", ".join(texts) + more + "]"


def _style(row: Row) -> str:
    if row.status != "ok":
        return "dim"
    if row.loss_flags:
        return "bold red"
    u = row.max_ulp_error
    return "green" if u <= 1 else "yellow"


def print_comparison(c: Comparison, console: Console | None = None) -> None:
    console = console or Console()
    case = c.case
    fmt = c.dtype.name
    head = f"[bold]BCE[/] · {fmt} · reduction={case.reduction}"
    console.print(head)
    console.print(f"logits  {_values(case.logits, fmt)}")
    console.print(f"targets {_values(case.targets, fmt)}")
    if case.weight is not None:
        console.print(f"weight  {_values(case.weight, fmt)}")
    if case.pos_weight is not None:
        console.print(f"pos_weight {_values(case.pos_weight, fmt)}")
    for note in c.notes:
        console.print(f"[yellow]note:[/] {note}")

    table = Table(title="loss", title_justify="left", show_lines=False)
    table.add_column("formulation", no_wrap=True)
    table.add_column("code", overflow="fold", min_width=24)
    table.add_column("loss", justify="right")
    table.add_column("ULP error", justify="right")
    table.add_column("rel. error", justify="right")
    # Row flags: the union of the elements' loss flags.
    table.add_column("loss flags, any element")
    exact_text = ", ".join(exact_repr(v, 17) for v in c.exact.values[:MAX_SHOWN])
    table.add_row(
        "exact", "mpmath, 160 bits", exact_text, "", "", f"{fmt}: {_values(c.exact_value(), fmt)}"
    )
    for row in c.rows:
        if row.status != "ok":
            table.add_row(
                row.formulation.name,
                row.code,
                "—",
                "",
                "",
                Text(f"{row.status}: {row.reason}"),
                style="dim",
            )
            continue
        assert row.value is not None
        table.add_row(
            row.formulation.name,
            row.code,
            _values(row.value, fmt),
            format_ulps(row.max_ulp_error),
            format_relative(row.max_relative_error),
            ", ".join(row.loss_flags),
            style=_style(row),
        )
    console.print(table)

    grads = Table(
        title="gradient d loss / d z, per element", title_justify="left", show_lines=False
    )
    for name, justify in (
        ("formulation", "left"),
        ("i", "right"),
        ("z", "right"),
        ("y", "right"),
        ("gradient", "right"),
        ("exact", "right"),
        ("ULP error", "right"),
        ("gradient flags", "left"),
    ):
        grads.add_column(
            name, justify=_justify(justify), no_wrap=name in ("formulation", "gradient", "exact")
        )
    n = len(c.exact.grads)
    shown = min(n, MAX_SHOWN)
    z = case.logits.ravel()
    y = case.targets.ravel()
    for row in c.rows:
        if row.status != "ok" or row.grad is None or row.grad_ulp_error is None:
            continue
        g = row.grad.ravel()
        gu = row.grad_ulp_error.ravel()
        for i in range(shown):
            element_flags = row.element_grad_flags[i]
            style = "bold red" if element_flags else ("green" if gu[i] <= 1 else "yellow")
            grads.add_row(
                row.formulation.name if i == 0 else "",
                str(i),
                shortest_repr(z[i], fmt),
                shortest_repr(y[i], fmt),
                shortest_repr(g[i], fmt),
                f"{exact_repr(c.exact.grads[i], 12)}",
                format_ulps(gu[i]),
                ", ".join(element_flags),
                style=style,
                end_section=i == shown - 1,
            )
    console.print(grads)
    if n > shown:
        console.print(f"(showing {shown} of {n} elements; --json has them all)")


def print_sigmoid_report(
    z: float, rows: Sequence[SigmoidRow], console: Console | None = None
) -> None:
    console = console or Console()
    console.print(f"[bold]sigmoid({z!r})[/] in each dtype, and where each implementation saturates")
    exact_value = next((r.exact for r in rows), None)
    if exact_value is not None:
        console.print(f"exact: {exact_repr(exact_value, 17)}")
    table = Table(show_lines=False)
    for name, justify in (
        ("dtype", "left"),
        ("implementation", "left"),
        ("sigmoid(z)", "right"),
        ("ULP error", "right"),
        ("rel. error", "right"),
        ("== 1 from z >=", "right"),
        ("== 0 for z <=", "right"),
    ):
        # Numbers never wrap (a folded float64 is unreadable); the code may.
        wide = name == "implementation"
        table.add_column(
            name, justify=_justify(justify), no_wrap=not wide, min_width=26 if wide else None
        )
    last = None
    for i, r in enumerate(rows):
        t = r.thresholds
        label = "exact, rounded once" if r.implementation == EXACT else r.code
        end = i == len(rows) - 1 or rows[i + 1].dtype != r.dtype
        if r.status != "ok":
            table.add_row(
                r.dtype, label, "—", "", "", r.reason or "", "", style="dim", end_section=end
            )
            continue
        assert r.value is not None
        lost = r.value == 0 and r.exact != 0
        table.add_row(
            r.dtype if r.dtype != last else "",
            label,
            shortest_repr(r.value, r.dtype),
            format_ulps(r.ulp_error if r.ulp_error is not None else math.nan),
            format_relative(r.relative_error if r.relative_error is not None else math.nan),
            "never" if t.one_from is None else shortest_repr(t.one_from, r.dtype),
            "never" if t.zero_up_to is None else shortest_repr(t.zero_up_to, r.dtype),
            style="bold red" if lost else None,
            end_section=end,
        )
        last = r.dtype
    console.print(table)
    for r in rows:
        if r.implementation == EXACT and r.z != z:
            console.print(f"note: z = {z!r} is {r.z!r} in {r.dtype}")
    console.print(
        "Thresholds are found by searching each dtype's values with the real implementation "
        "(exhaustively for 16-bit formats)."
    )
