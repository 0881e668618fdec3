"""``logitlab watch SCRIPT.py``: run as a subprocess, the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.nn.functional as F

    print("argv", sys.argv[1:], __name__)
    z = torch.tensor([20.0, -3.0, 1.0])
    y = torch.tensor([0.3, 1.0, 1.0])
    for step in range(3):
        loss = F.binary_cross_entropy(torch.sigmoid(z), y)
    if "--boom" in sys.argv:
        raise ValueError("boom from the script")
    if "--interrupt" in sys.argv:
        raise KeyboardInterrupt
    """
)
BCE_LINE = 10  # the line of binary_cross_entropy in SCRIPT (after dedent, 1-based)


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "80"}
    cmd = [sys.executable, "-c", "from logitlab.cli import main; main()", "watch"]
    return subprocess.run(
        [*cmd, *[str(script) if a == "SCRIPT" else a for a in args]],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_runs_script_as_main_with_its_args_and_prints_the_report(tmp_path):
    r = run(tmp_path, "SCRIPT", "--lr", "3")
    assert r.returncode == 0, r.stderr
    assert "argv ['--lr', '3'] __main__" in r.stdout
    assert f"train.py:{BCE_LINE}: LGL001 bce-on-probabilities" in r.stdout
    assert "calls 3 (checked 3), elements 9, affected 3 (saturated 3" in r.stdout


def test_json_and_fail_on(tmp_path):
    r = run(tmp_path, "--json", "--fail-on", "LGL0", "SCRIPT")
    assert r.returncode == 1
    data = json.loads(r.stdout[r.stdout.index("{") :])
    (finding,) = data["findings"]
    assert (finding["code"], finding["line"], finding["affected"]) == ("LGL001", BCE_LINE, 3)
    assert "LGL001" in r.stderr and "--fail-on" in r.stderr
    assert run(tmp_path, "--fail-on", "LGW", "SCRIPT").returncode == 0


def test_unknown_fail_on_code_is_one_line_exit_2(tmp_path):
    r = run(tmp_path, "--fail-on", "LGL001,LGX777", "SCRIPT")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: --fail-on: unknown code 'LGX777'"]


def test_failing_script_keeps_its_traceback_and_the_report(tmp_path):
    r = run(tmp_path, "SCRIPT", "--boom")
    assert r.returncode == 1
    assert "ValueError: boom from the script" in r.stderr
    assert "runpy" not in r.stderr and "logitlab" not in r.stderr.split("Traceback")[1]
    assert "LGL001 bce-on-probabilities" in r.stdout


def test_interrupt_prints_the_report(tmp_path):
    r = run(tmp_path, "SCRIPT", "--interrupt")
    assert r.returncode == 130
    assert "LGL001 bce-on-probabilities" in r.stdout


def test_dump_saves_the_first_offending_batch(tmp_path):
    r = run(tmp_path, "--dump", str(tmp_path / "dump"), "SCRIPT")
    assert r.returncode == 0, r.stderr
    (path,) = (tmp_path / "dump").glob("*.npz")
    with np.load(path) as data:
        assert sorted(data.files) == ["logits", "targets"]
        np.testing.assert_array_equal(data["logits"], [20.0, -3.0, 1.0])
        np.testing.assert_allclose(data["targets"], [0.3, 1.0, 1.0], rtol=1e-7)


@pytest.mark.parametrize("args", [["--every", "0", "SCRIPT"], ["nope.py"]])
def test_bad_arguments(tmp_path, args):
    r = run(tmp_path, *args)
    assert r.returncode == 2 and r.stderr.startswith("error: ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_help_does_not_import_torch():
    code = (
        "import sys; from logitlab.cli import app; import logitlab.watch;"
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert r.stdout.split() == ["False", "False"], r.stderr
