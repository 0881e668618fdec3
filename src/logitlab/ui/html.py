"""HTML for a comparison: the notebook's table, and ``Comparison._repr_html_``.

Standard library only (``html.escape`` on every piece of text), so a notebook shows a
comparison without the ``notebook`` extra.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logitlab.analysis.compare import Comparison

__all__ = ["comparison_html"]


def _fmt_ulp(u: float | None) -> str:
    if u is None:
        return ""
    if math.isnan(u):
        return "NaN"
    if math.isinf(u):
        return "∞"
    return f"{u:.3g}" if u < 1e4 else f"{u:.2e}"


def _fmt_rel(r: float | None) -> str:
    if r is None:
        return ""
    if math.isnan(r):
        return "NaN"
    if math.isinf(r):
        return "∞"
    return "0" if r == 0 else f"{r:.1e}"


def comparison_html(c: Comparison, sentences: Sequence[str] = ()) -> str:
    """The explorer's table (and explanation) as HTML, from ``compare``'s dictionary."""
    d = c.to_dict()
    esc = html.escape
    cell = "padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top"
    mono = "font-family:monospace"
    head = "".join(
        f"<th style='{cell}'>{h}</th>"
        for h in ("code path", "loss", "error (ULP)", "rel. error", "d loss / dz", "flags")
    )
    ex = d["exact"]
    rows = [
        f"<tr style='background:#f3f7fd'><td style='{cell}'><b>exact</b></td>"
        f"<td style='{cell};{mono}'><b>{esc(', '.join(ex['value_repr']))}</b></td>"
        f"<td style='{cell}'>≤ 0.5</td><td style='{cell}'></td>"
        f"<td style='{cell};{mono}'>{esc(', '.join(ex['grad_repr']))}</td>"
        f"<td style='{cell}'></td></tr>"
    ]
    for r in d["rows"]:
        name = (
            f"<b>{esc(r['name'])}</b><br><code style='font-size:85%;color:#555'>"
            f"{esc(r['code'])}</code>"
        )
        if r["status"] != "ok":
            rows.append(
                f"<tr><td style='{cell}'>{name}</td><td style='{cell}'>—</td>"
                f"<td style='{cell};color:#666' colspan='4'>{esc(r['status'])}: "
                f"{esc(str(r['reason']))}</td></tr>"
            )
            continue
        row = c.row(r["name"])
        flags = " ".join(
            f"<span style='background:#fdecea;color:#c62828;border-radius:8px;padding:0 5px;"
            f"font-size:85%'>{esc(f)}</span>"
            for f in r["flags"]
        )
        grad = ", ".join(r["grad_repr"]) if r["grad_repr"] else "—"
        rows.append(
            f"<tr data-name='{esc(r['name'])}'><td style='{cell}'>{name}</td>"
            f"<td style='{cell};{mono}'><b>{esc(', '.join(r['value_repr']))}</b></td>"
            f"<td style='{cell}'>{_fmt_ulp(row.max_ulp_error)}</td>"
            f"<td style='{cell}'>{_fmt_rel(row.max_relative_error)}</td>"
            f"<td style='{cell};{mono}'>{esc(grad)}</td><td style='{cell}'>{flags}</td></tr>"
        )
    table = (
        f"<table style='border-collapse:collapse'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    why = "".join(f"<li>{esc(s)}</li>" for s in sentences)
    return table + (f"<ul style='margin-top:6px'>{why}</ul>" if why else "")
