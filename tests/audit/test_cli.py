"""``logitlab audit`` end to end through Typer."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from logitlab.cli import app

runner = CliRunner()
SMALL = ["audit", "-d", "float32", "-n", "200", "-f", "torch.logits", "-j", "1"]


def test_json_to_stdout() -> None:
    result = runner.invoke(app, [*SMALL, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rows"][0]["formulation"] == "torch.logits"


def test_table_by_default() -> None:
    result = runner.invoke(app, SMALL)
    assert result.exit_code == 0, result.output
    assert "torch.logits" in result.stdout and "reference:" in result.stdout


def test_files_in_out_dir(tmp_path: Path) -> None:
    args = [*SMALL, "--out", str(tmp_path)]
    for f in ("html", "json", "csv", "markdown"):
        args += ["--format", f]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in (
        "audit-bce.html",
        "audit-bce.json",
        "audit-bce.csv",
        "audit-bce.md",
        "audit-bce.png",
    ):
        assert (tmp_path / name).exists(), name


def test_unknown_names_exit_2_with_choices() -> None:
    for args, expect in (
        (["audit", "-f", "torch.nope"], "torch.probabilities"),
        (["audit", "-d", "float8"], "bfloat16"),
        (["audit", "-q", "cosh"], "softplus"),
        (["audit", "--format", "pdf"], "markdown"),
        (["audit", "--format", "html"], "--out"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert expect in result.output, (args, result.output)


def test_breakpoints_all_searches_soft_targets_too() -> None:
    import json as _json

    from typer.testing import CliRunner as _Runner

    from logitlab.cli import app as _app

    args = ["audit", "-d", "float32", "-f", "torch.logits", "--format", "json"]
    hard = _json.loads(_Runner().invoke(_app, args).stdout)
    every = _json.loads(_Runner().invoke(_app, [*args, "--breakpoints", "all"]).stdout)
    assert {b["target"] for b in hard["breakpoints"]} == {0.0, 1.0}
    soft = {b["target"] for b in every["breakpoints"]} - {0.0, 1.0}
    assert len(soft) >= 5  # the default soft grid, rounded to float32
