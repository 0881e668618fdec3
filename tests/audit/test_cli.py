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
    import torch

    kernels = torch.backends.cpu.get_cpu_capability()
    words = " ".join(result.stdout.split())  # the notes are wrapped to the width
    threads = torch.get_num_threads()  # -j 1 runs in this process
    assert f"torch {torch.__version__} ({kernels} CPU kernels, {threads} thread(s))" in words


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


def test_json_says_which_libraries_and_torch_kernels_made_the_numbers() -> None:
    # A separate process, so that the kernel set can be forced from outside (torch reads
    # ATEN_CPU_CAPABILITY when it starts) and nothing the test process imported is listed.
    import os
    import subprocess
    import sys

    import torch

    json_out = ("--format", "json")
    code = "\n".join(
        (
            "import sys",
            "from logitlab.cli import app",
            "sys.argv = ['logitlab', *sys.argv[1:]]",
            "app()",
        )
    )
    for workers in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", code, *SMALL[:-2], "-d", "float64", "-j", workers, *json_out],
            env={**os.environ, "ATEN_CPU_CAPABILITY": "default"},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        env = json.loads(done.stdout)["environment"]
        assert env["torch_cpu_kernels"] == "DEFAULT"
        assert env["libraries"]["torch"] == torch.__version__
        assert env["torch_threads"] >= 1
        # only torch formulations were asked for: no other framework is imported or listed
        assert not {"jax", "keras", "optax", "scikit-learn"} & set(env["libraries"])
