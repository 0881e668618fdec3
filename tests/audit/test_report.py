"""Every output format, from one small audit."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from logitlab.analysis.audit import AuditResult
from logitlab.ui.plots import save_plots, svg_strings
from logitlab.ui.reports import COLUMNS, to_csv, to_html, to_json, to_markdown, to_rich


def test_json_has_everything(small_audit: AuditResult) -> None:
    data = json.loads(to_json(small_audit))
    assert data["settings"]["seed"] == 3
    row = data["rows"][0]
    assert row["formulation"] == "torch.probabilities"
    assert row["measures"]["value"]["max_ulp"] == "Infinity"  # infinities as strings, as everywhere
    bps = data["breakpoints"]
    assert {b["side"] for b in bps} == {"against", "with"}
    assert all({"formulation", "dtype", "target", "side", "criterion", "z"} <= set(b) for b in bps)
    assert all(b["z"] is None or isinstance(b["z"], float) for b in bps)
    assert data["edges"]["float32"]["sigmoid rounds to 1"] > 17


def test_csv_one_line_per_row(small_audit: AuditResult) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(small_audit))))
    assert len(rows) == len(small_audit.rows)
    assert list(rows[0]) == [k for k, _ in COLUMNS]
    naive = next(r for r in rows if r["formulation"] == "numpy.naive")
    assert naive["grad_max_ulp"] == "no autograd"


def test_markdown_table(small_audit: AuditResult) -> None:
    lines = to_markdown(small_audit).strip().splitlines()
    assert len(lines) == 2 + len(small_audit.rows)
    assert all(line.startswith("|") and line.endswith("|") for line in lines)


def test_rich_table_renders(small_audit: AuditResult) -> None:
    console = Console(width=1000, record=True)  # the table is used only where it fits whole
    console.print(to_rich(small_audit))
    text = console.export_text()
    assert "torch.probabilities" in text and "float16" in text
    assert "…" not in text


@pytest.mark.parametrize("width", [60, 80, 100])
def test_blocks_keep_every_cell_whole_at_any_width(small_audit: AuditResult, width: int) -> None:
    from logitlab.ui.reports import _terminal_cells, to_blocks

    lines = to_blocks(small_audit, width)
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    for row in small_audit.rows:
        for cell in _terminal_cells(row):
            for piece in cell.split("; "):
                assert piece in text, (row.name, row.dtype, piece)


def test_plots_and_self_contained_html(small_audit: AuditResult, tmp_path: Path) -> None:
    paths = save_plots(small_audit, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["audit-bce-grad.png", "audit-bce-grad.svg", "audit-bce.png", "audit-bce.svg"]
    assert all(p.stat().st_size > 1000 for p in paths)
    page = to_html(small_audit, svg_strings(small_audit))
    assert page.count("<svg") == 2 and "<table>" in page
    # nothing to fetch: no external sources (SVG's href="#id" links stay inside the page)
    assert "src=" not in page and 'href="http' not in page and "<link" not in page
