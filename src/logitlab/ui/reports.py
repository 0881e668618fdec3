"""Audit results as text: a rich terminal table, JSON, CSV, Markdown and one HTML file.

One flat summary per row (:func:`summary`) feeds the table, CSV and Markdown, so they
always show the same numbers; JSON carries everything, including per-class breakpoints.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from typing import Any

from logitlab.analysis.audit import AuditResult, Row
from logitlab.analysis.measure import ErrorStats, breakpoint_threshold
from logitlab.core.formats import get_format

__all__ = [
    "COLUMNS",
    "FORMATS",
    "summary",
    "to_csv",
    "to_html",
    "to_json",
    "to_markdown",
    "to_rich",
]

FORMATS = ("table", "json", "csv", "markdown", "html")

#: Summary columns: key, header.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("formulation", "formulation"),
    ("dtype", "dtype"),
    ("status", "status"),
    ("loss_max_ulp", "loss max ULP"),
    ("loss_p99_ulp", "loss p99 ULP"),
    ("loss_max_rel", "loss max rel"),
    ("loss_above_1ulp", "loss >1 ULP"),
    ("grad_max_ulp", "grad max ULP"),
    ("grad_p99_ulp", "grad p99 ULP"),
    ("grad_max_rel", "grad max rel"),
    ("grad_above_1ulp", "grad >1 ULP"),
    ("nan", "NaN"),
    ("inf", "inf"),
    ("vanished", "grad vanished"),
    ("clamped", "clamped"),
    ("grad_clamped", "grad clamped"),
    ("saturated", "sigmoid saturated"),
    ("break_rel", "|z| where rel err first > tol"),
    ("break_vanish", "|z| where grad first vanishes"),
    ("notes", "notes"),
)


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 0.01 <= abs(x) < 1000:
        return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"
    return f"{x:.2e}"


def _share(x: float | None) -> str:
    if x is None or math.isnan(x):
        return ""
    if x == 0:
        return "0%"
    if x < 0.001:
        return "<0.1%"
    return f"{100 * x:.1f}%"


def _breaks(row: Row, which: str) -> str:
    if row.measures is None:
        return ""
    parts = []
    for cls, b in row.measures.breakpoints.items():
        v = b.relative if which == "relative" else b.vanished
        if which == "vanished" and not row.has_autograd:
            continue
        parts.append(f"{cls}: {'-' if v is None else _num(v)}")
    return ", ".join(parts)


def summary(row: Row) -> dict[str, str]:
    """The row as display strings, one per :data:`COLUMNS` key."""
    out = {k: "" for k, _ in COLUMNS}
    out.update(formulation=row.name, dtype=row.dtype, status=row.status)
    notes = list(row.notes)
    if row.reason:
        notes.insert(0, row.reason)
    m = row.measures
    if m is not None:
        v: ErrorStats = m.value
        out.update(
            loss_max_ulp=_num(v.max_ulp),
            loss_p99_ulp=_num(v.p99_ulp),
            loss_max_rel=_num(v.max_relative),
            loss_above_1ulp=_share(v.share_above_1ulp),
            nan=str(v.nan + (m.grad.nan if m.grad else 0)),
            inf=str(v.inf + (m.grad.inf if m.grad else 0)),
            clamped=str(m.counts.get("log clamped", 0)),
            grad_clamped=str(m.counts.get("gradient clamped", 0)),
            saturated=str(m.counts.get("sigmoid saturated", 0)),
            break_rel=_breaks(row, "relative"),
        )
        if m.grad is not None:
            out.update(
                grad_max_ulp=_num(m.grad.max_ulp),
                grad_p99_ulp=_num(m.grad.p99_ulp),
                grad_max_rel=_num(m.grad.max_relative),
                grad_above_1ulp=_share(m.grad.share_above_1ulp),
                vanished=str(m.counts.get("gradient vanished", 0)),
                break_vanish=_breaks(row, "vanished"),
            )
        else:
            out.update(grad_max_ulp="no autograd", vanished="", break_vanish="")
    out["notes"] = "; ".join(notes)
    return out


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def to_json(result: AuditResult) -> str:
    """Everything, JSON-ready: NaN and infinities as the strings "nan", "inf", "-inf"."""
    return json.dumps(_clean(result.to_dict()), indent=2)


def to_csv(result: AuditResult) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([k for k, _ in COLUMNS])
    for r in result.rows:
        s = summary(r)
        writer.writerow([s[k] for k, _ in COLUMNS])
    return buf.getvalue()


_SHORT = (
    "formulation",
    "dtype",
    "loss_max_ulp",
    "loss_p99_ulp",
    "loss_above_1ulp",
    "grad_max_ulp",
    "grad_p99_ulp",
    "nan",
    "inf",
    "vanished",
    "clamped",
    "break_rel",
    "break_vanish",
)


def to_markdown(result: AuditResult, columns: tuple[str, ...] = _SHORT) -> str:
    """A GitHub table of the main columns (skipped and failed rows give their reason)."""
    headers = dict(COLUMNS)
    lines = [
        "| " + " | ".join(headers[c].replace("|", "\\|") for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for r in result.rows:
        s = summary(r)
        if r.status != "ok":
            s = {**{c: "" for c in columns}, "formulation": r.name, "dtype": r.dtype}
            s[columns[2]] = f"{r.status}: {r.reason}"
        lines.append("| " + " | ".join(s[c].replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


# The terminal is narrower: the same columns, with each breakpoint as its smallest |z|.
_TERMINAL = (*_SHORT[:-2], "break_rel_min", "break_vanish_min")


def _min_break(row: Row, which: str) -> str:
    if row.measures is None or (which == "vanished" and not row.has_autograd):
        return ""
    best: tuple[float, str] | None = None
    for cls, b in row.measures.breakpoints.items():
        v = b.relative if which == "relative" else b.vanished
        if v is not None and (best is None or v < best[0]):
            best = (v, cls)
    return "-" if best is None else f"{_num(best[0])} ({best[1]})"


def to_rich(result: AuditResult) -> Any:
    """A ``rich`` table for the terminal."""
    from rich.table import Table

    s = result.settings
    table = Table(
        title=f"logitlab audit: {s.quantity}, seed {s.seed}, "
        f"{s.points} float32/float64 logits, 16-bit exhaustive; "
        "breakpoints: smallest |z| (target class) with relative error > tolerance",
        show_lines=False,
    )
    headers = {
        **dict(COLUMNS),
        "break_rel_min": "breaks at |z|",
        "break_vanish_min": "grad vanishes at |z|",
    }
    for c in _TERMINAL:
        table.add_column(headers[c], no_wrap=c in ("formulation", "dtype"))
    last = None
    for r in result.rows:
        if last is not None and r.name != last:
            table.add_section()
        last = r.name
        sm = summary(r)
        sm["break_rel_min"] = _min_break(r, "relative")
        sm["break_vanish_min"] = _min_break(r, "vanished")
        if r.status != "ok":
            cells = [r.name, r.dtype, f"[dim]{r.status}: {r.reason}[/dim]"]
            cells += [""] * (len(_TERMINAL) - 3)
        else:
            cells = [sm[c] for c in _TERMINAL]
            if _bad(sm["loss_max_ulp"]):
                cells[2] = f"[red]{cells[2]}[/red]"
        table.add_row(*cells)
    return table


def _bad(text: str) -> bool:
    try:
        return float(text) > 4
    except ValueError:
        return text == "inf"


def notes_text(result: AuditResult) -> list[str]:
    """One line per distinct note, and what the reference cost."""
    seen: dict[str, None] = {}
    for info in result.reference.values():
        for n in info.get("notes", []):
            seen.setdefault(n)
    for r in result.rows:
        for n in r.notes:
            seen.setdefault(f"{r.name} ({r.dtype}): {n}")
    ref = ", ".join(
        f"{d}: {v['points']} points in {v['seconds']:.2f} s ({v['mpmath_fallback']} via mpmath)"
        for d, v in result.reference.items()
    )
    tol = ", ".join(
        f"{d} {breakpoint_threshold(get_format(d)):.3g}" for d in result.settings.dtypes
    )
    return [
        *seen,
        f"reference: {ref}",
        f"breakpoint tolerance (relative error): {tol}",
        f"audit took {result.seconds:.1f} s on {result.workers} worker process(es)",
    ]


def to_html(result: AuditResult, plots: dict[str, str] | None = None) -> str:
    """One self-contained page: the table, notes, and the plots inlined as SVG."""
    s = result.settings
    headers = dict(COLUMNS)
    cols = [c for c, _ in COLUMNS if c != "status"]
    head = "".join(f"<th>{html.escape(headers[c])}</th>" for c in cols)
    body = []
    for r in result.rows:
        sm = summary(r)
        cls = "" if r.status == "ok" else ' class="off"'
        if r.status != "ok":
            sm["loss_max_ulp"] = f"{r.status}: {r.reason}"
            sm["notes"] = "; ".join(r.notes)
        body.append(
            f"<tr{cls}>" + "".join(f"<td>{html.escape(sm[c])}</td>" for c in cols) + "</tr>"
        )
    codes = "".join(
        f"<li><b>{html.escape(n)}</b>: <code>{html.escape(c)}</code></li>"
        for n, c in dict((r.name, r.code) for r in result.rows).items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in notes_text(result))
    figures = "".join(
        f"<figure><figcaption>{html.escape(title)}</figcaption>{svg}</figure>"
        for title, svg in (plots or {}).items()
    )
    title = f"logitlab audit: {html.escape(s.quantity)}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; vertical-align: top; }}
td:first-child, th:first-child {{ text-align: left; white-space: nowrap; }}
tr.off td {{ color: #888; }}
figure {{ margin: 1rem 0; }} figure svg {{ max-width: 100%; height: auto; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>{title}</h1>
<p>Seed {s.seed}; float16 and bfloat16: every finite logit; float32 and float64: {s.points}
logits (log-spaced over both signs, uniform, and the format's edges); targets {
        html.escape(", ".join(repr(t) for t in s.targets))
    }; weight {s.weight}, pos_weight {s.pos_weight}. Errors are against an exact reference
(checked against mpmath to 0.01 ULP), in ULPs of the dtype.</p>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
<h2>Notes</h2><ul>{notes}</ul>
<h2>Code</h2><ul>{codes}</ul>
<h2>Plots</h2>{figures}
</body></html>
"""
