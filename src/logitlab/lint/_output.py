"""Report formats: text (``path:line:col: CODE message``), JSON, SARIF 2.1.0, GitHub."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from logitlab._version import __version__
from logitlab.lint._codes import CODES
from logitlab.lint._finding import Finding

FORMATS = ("text", "json", "sarif", "github")
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _display_path(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def format_text(findings: Sequence[Finding]) -> str:
    return "".join(
        f"{_display_path(f.path)}:{f.line}:{f.col + 1}: {f.code} {f.message}\n" for f in findings
    )


def _fix_json(f: Finding) -> dict[str, str] | None:
    if f.fix is None:
        return None
    return {"applicability": f.fix.applicability, "description": f.fix.description}


def format_json(findings: Sequence[Finding]) -> str:
    items = [
        {
            "path": _display_path(f.path),
            "line": f.line,
            "column": f.col + 1,
            "end_line": f.end_line,
            "end_column": f.end_col + 1,
            "code": f.code,
            "severity": f.severity,
            "message": f.message,
            "fix": _fix_json(f),
        }
        for f in findings
    ]
    return json.dumps(items, indent=2) + "\n"


def _uri(path: str) -> str:
    rel = os.path.relpath(path) if os.path.isabs(path) else os.path.normpath(path)
    if rel.startswith(".."):
        rel = os.path.abspath(path)
        return "file://" + rel.replace(os.sep, "/")
    return rel.replace(os.sep, "/")


def format_sarif(findings: Sequence[Finding]) -> str:
    """SARIF 2.1.0 with one run, rules from the registry, relative URIs under %SRCROOT%."""
    index = {c.code: i for i, c in enumerate(CODES)}
    rules = [
        {
            "id": c.code,
            "name": c.name,
            "shortDescription": {"text": c.summary},
            "fullDescription": {"text": c.summary},
            "help": {"text": f"{c.summary}. See the README of logitlab, section {c.code}."},
            "defaultConfiguration": {"level": _SARIF_LEVEL[c.severity]},
            "properties": {"fix": c.fix},
        }
        for c in CODES
    ]
    results = []
    for f in findings:
        end_col = f.end_col + 1 if (f.end_line, f.end_col) > (f.line, f.col) else f.col + 2
        results.append(
            {
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": _SARIF_LEVEL[f.severity],
                "message": {"text": f.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(f.path), "uriBaseId": "%SRCROOT%"},
                            "region": {
                                "startLine": f.line,
                                "startColumn": f.col + 1,
                                "endLine": max(f.end_line, f.line),
                                "endColumn": end_col,
                            },
                        }
                    }
                ],
            }
        )
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "logitlab",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2) + "\n"


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        level = _GITHUB_LEVEL[f.severity]
        props = (
            f"file={_gh_escape(_display_path(f.path), True)},line={f.line},col={f.col + 1},"
            f"endLine={f.end_line},endColumn={f.end_col + 1},title={f.code}"
        )
        lines.append(f"::{level} {props}::{_gh_escape(f.code + ' ' + f.message)}\n")
    return "".join(lines)


def render(findings: Sequence[Finding], fmt: str) -> str:
    return {
        "text": format_text,
        "json": format_json,
        "sarif": format_sarif,
        "github": format_github,
    }[fmt](findings)
