"""Audit results as text: a rich terminal table, JSON, CSV, Markdown and one HTML file.

One flat summary per row (:func:`summary`) feeds the table, CSV and Markdown, so they
always show the same numbers; JSON carries everything, including every breakpoint
(``breakpoints``: formulation, dtype, target, side, criterion, z).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from typing import Any

from logitlab.analysis.audit import AuditResult, Row
from logitlab.analysis.breakpoints import breakpoint_threshold
from logitlab.analysis.measure import ErrorStats
from logitlab.core.formats import get_format
from logitlab.core.numbers import json_number

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
    ("family", "family"),
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
    ("loss_against", "loss rel err > tol from |z|, against target"),
    ("loss_with", "loss rel err > tol from |z|, with target"),
    ("grad_against", "grad vanishes from |z|, against target"),
    ("grad_with", "grad vanishes from |z|, with target"),
    ("grad_rel", "grad rel err > tol from |z| (against; with)"),
    ("nonfinite", "non-finite from |z| (against; with)"),
    ("behaviour", "masked rows: loss, gradient (class)"),
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


def _z(z: float | None) -> str:
    return "-" if z is None else f"{abs(z):.6g}"


def _label(target: float | str | None) -> str:
    if target is None:
        return "z"
    if isinstance(target, str):
        return target
    return f"y={target:g}"


def _onsets(row: Row, criterion: str, sides: tuple[str, ...]) -> str:
    """``"y=0: 12.241, y=1: 88.7228"``: per target the onset's |z| on ``sides``."""
    parts = [
        f"{_label(o.target)}: {_z(o.z)}"
        for o in row.onsets
        if o.criterion == criterion and o.side in sides
    ]
    return ", ".join(parts)


_AGAINST = ("against", "negative")
_WITH = ("with", "positive")


def _pair(row: Row, criteria: tuple[str, ...]) -> str:
    """The smallest onset |z| over targets and ``criteria``, against; with."""
    out = []
    for sides in (_AGAINST, _WITH):
        found = [
            abs(o.z)
            for o in row.onsets
            if o.criterion in criteria and o.side in sides and o.z is not None
        ]
        out.append(_z(min(found)) if found else "-")
    return "; ".join(out)


def summary(row: Row) -> dict[str, str]:
    """The row as display strings, one per :data:`COLUMNS` key."""
    out = {k: "" for k, _ in COLUMNS}
    out.update(formulation=row.name, dtype=row.dtype, status=row.status)
    out["family"] = row.family or ""
    out["behaviour"] = behaviour_text(row)
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
            loss_against=_onsets(row, "loss relative error", _AGAINST),
            loss_with=_onsets(row, "loss relative error", _WITH),
            nonfinite=_pair(row, ("loss non-finite", "gradient non-finite")),
        )
        if m.grad is not None:
            out.update(
                grad_max_ulp=_num(m.grad.max_ulp),
                grad_p99_ulp=_num(m.grad.p99_ulp),
                grad_max_rel=_num(m.grad.max_relative),
                grad_above_1ulp=_share(m.grad.share_above_1ulp),
                vanished=str(m.counts.get("gradient vanished", 0)),
                grad_against=_onsets(row, "gradient vanishes", _AGAINST),
                grad_with=_onsets(row, "gradient vanishes", _WITH),
                grad_rel=_pair(row, ("gradient relative error",)),
            )
        else:
            out.update(grad_max_ulp="no autograd", vanished="")
    out["notes"] = "; ".join(notes)
    return out


def behaviour_text(row: Row) -> str:
    """``"target masked: loss inf, grad finite (exact limit); all masked: ..."``."""
    if not row.behaviour:
        return ""
    parts = []
    for case, b in row.behaviour.items():
        grad = "no autograd" if b.get("grad") is None else f"grad {b['grad']}"
        parts.append(f"{case}: loss {b['loss']}, {grad} ({b['class']})")
    return "; ".join(parts)


def _families(result: AuditResult) -> bool:
    return any(r.family for r in result.rows)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return json_number(x)  # "NaN", "Infinity", "-Infinity", as everywhere in logitlab
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def to_json(result: AuditResult) -> str:
    """Everything, JSON-ready (``logitlab/schemas/audit.json``): NaN and infinities as the
    strings "NaN", "Infinity", "-Infinity", as in every JSON logitlab writes."""
    return json.dumps(_clean(result.to_dict()), indent=2, allow_nan=False)


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
    "loss_against",
    "loss_with",
    "grad_against",
    "grad_with",
    "grad_rel",
    "nonfinite",
)


def to_markdown(result: AuditResult, columns: tuple[str, ...] | None = None) -> str:
    """A GitHub table of the main columns (skipped and failed rows give their reason;
    softmax audits add the family and the masked rows' behaviour)."""
    if columns is None:
        columns = _SHORT
        if _families(result):
            columns = (columns[0], "family", *columns[1:], "behaviour")
    headers = dict(COLUMNS)
    lines = [
        "| " + " | ".join(headers[c].replace("|", "\\|") for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for r in result.rows:
        s = summary(r)
        if r.status != "ok":
            s = {**{c: "" for c in columns}, "formulation": r.name, "dtype": r.dtype}
            s["family"] = r.family or ""
            s[next(c for c in columns if c not in ("formulation", "family", "dtype"))] = (
                f"{r.status}: {r.reason}"
            )
        lines.append("| " + " | ".join(s[c].replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


# The terminal is narrower: the same columns, each breakpoint as its smallest |z| over
# the targets (against; with).
_TERMINAL = (*_SHORT[:-6], "break_loss", "break_grad", "grad_rel", "nonfinite")


_TERMINAL_HEADERS = {
    **dict(COLUMNS),
    "break_loss": "loss rel err > tol from |z|",
    "break_grad": "grad vanishes from |z|",
    "grad_rel": "grad rel err > tol from |z|",
    "nonfinite": "non-finite from |z|",
}


def _title(result: AuditResult) -> str:
    s = result.settings
    if s.quantity == "softmax_ce":
        return (
            f"logitlab audit: softmax_ce, families {', '.join(s.families)}, seed {s.seed}, "
            f"{s.points} float32/float64 margins, 16-bit exhaustive; breakpoints: smallest "
            "|m| where a criterion first holds, against the label; with it"
        )
    return (
        f"logitlab audit: {s.quantity}, seed {s.seed}, "
        f"{s.points} float32/float64 logits, 16-bit exhaustive; "
        "breakpoints: smallest |z| over targets where a criterion first holds, "
        "against the target; with it"
    )


def _terminal_cells(r: Row) -> list[str]:
    """The terminal's cells of one row, in :data:`_TERMINAL` order."""
    if r.status != "ok":
        return [r.name, r.dtype, f"{r.status}: {r.reason}", *[""] * (len(_TERMINAL) - 3)]
    if r.behaviour is not None:
        return [r.name, r.dtype, behaviour_text(r), *[""] * (len(_TERMINAL) - 3)]
    sm = summary(r)
    sm["break_loss"] = _pair(r, ("loss relative error",))
    sm["break_grad"] = _pair(r, ("gradient vanishes",)) if r.has_autograd else ""
    return [sm[c] for c in _TERMINAL]


def to_rich(result: AuditResult) -> Any:
    """A ``rich`` table for the terminal (every cell is plain text, never markup)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=_title(result), show_lines=False)
    fam = _families(result)
    if fam:
        table.add_column("family", no_wrap=True)
    for c in _TERMINAL:
        table.add_column(_header(c, result), no_wrap=True)
    last = None
    for r in result.rows:
        if last is not None and (r.family, r.name) != last:
            table.add_section()
        last = (r.family, r.name)
        cells = [Text(c) for c in ([r.family or ""] if fam else []) + _terminal_cells(r)]
        status = cells[3 if fam else 2]
        if r.status != "ok":
            status.stylize("dim")
        elif _bad(status.plain):
            status.stylize("red")
        table.add_row(*cells)
    return table


def to_blocks(result: AuditResult, width: int) -> list[str]:
    """The same content as :func:`to_rich` as plain lines no longer than ``width``: one
    block per formulation and dtype (for pipes and narrow terminals)."""
    import textwrap

    from logitlab.ui.tables import wrap_field

    out = textwrap.wrap(_title(result), width)
    label_width = max(len(_TERMINAL_HEADERS[c]) for c in _TERMINAL[2:])
    family = None
    summaries = _family_summaries(result)
    for r in result.rows:
        cells = _terminal_cells(r)
        if r.family is not None and r.family != family:
            family = r.family
            out.append("")
            head = f"== family {family}: {summaries.get(family, '')} "
            out.extend(textwrap.wrap(head + "=" * max(0, width - len(head)), width))
        out.append("")
        out.append(f"{cells[0]} · {cells[1]}")
        if r.status != "ok":
            out.extend(wrap_field("status", cells[2], width, 2, 6))
            continue
        if r.behaviour is not None:
            for case, b in r.behaviour.items():
                grad = "no autograd" if b.get("grad") is None else f"grad {b['grad']}"
                text = f"loss {b['loss']}, {grad}: {b['class']}"
                out.extend(wrap_field(case, text, width, 2, label_width))
            continue
        for c, cell in zip(_TERMINAL[2:], cells[2:]):
            out.extend(wrap_field(_header(c, result), cell or "-", width, 2, label_width))
    return out


def _header(column: str, result: AuditResult) -> str:
    """The terminal header; softmax breakpoints are in the margin m."""
    text = _TERMINAL_HEADERS[column]
    return text.replace("|z|", "|m|") if result.settings.quantity == "softmax_ce" else text


def _family_summaries(result: AuditResult) -> dict[str, str]:
    from logitlab.analysis.audit_softmax import FAMILIES

    return {f.name: f.summary for f in FAMILIES}


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
    methods = dict.fromkeys(f"{o.dtype}: {o.method}" for o in result.breakpoints)
    if result.settings.quantity == "softmax_ce":
        sides = (
            "breakpoints: the smallest |m| (the swept class's margin) where a criterion "
            "first holds; against the label: m < 0 for t=swept, m > 0 for t=other; with "
            "it: the other sign"
        )
    else:
        sides = (
            "breakpoints: the smallest |z| where a criterion first holds; against the "
            "target: z > 0 for y < 0.5 (y = 0.5 too), z < 0 for y > 0.5; with it: the "
            "other sign"
        )
    return [
        *seen,
        f"reference: {ref}",
        f"breakpoint tolerance (relative error, and > 1 ULP): {tol}",
        sides,
        f"breakpoint search: {'; '.join(methods)}",
        f"audit took {result.seconds:.1f} s on {result.workers} worker process(es)",
        *_environment_text(result.environment),
    ]


def _environment_text(env: dict[str, Any]) -> list[str]:
    """The libraries and kernels that made the numbers, as one note (none if unknown)."""
    if not env:
        return []
    parts = []
    for name, version in env.get("libraries", {}).items():
        text = f"{name} {version or '(version unknown)'}"
        if name == "torch" and "torch_cpu_kernels" in env:
            text += f" ({env['torch_cpu_kernels']} CPU kernels, {env['torch_threads']} thread(s))"
        parts.append(text)
    return [f"ran with {', '.join(parts)}; {env['machine']}, Python {env['python']}"]


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
