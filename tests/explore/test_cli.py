"""``logitlab explore``: the command, its loopback default, and a helpful exit without the extra."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from logitlab.cli import app
from logitlab.ui.explore.cli import _is_loopback

runner = CliRunner()


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["explore", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--open"):
        assert option in result.output
    assert "127.0.0.1" in result.output


def test_missing_web_extra_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises
    result = runner.invoke(app, ["explore"])
    assert result.exit_code == 2
    assert "pip install 'logitlab[web]'" in result.output


def test_cli_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, logitlab.ui.explore.cli; "
        "heavy = [m for m in ('fastapi', 'uvicorn', 'torch', 'ipywidgets', 'plotly') "
        "if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback


def test_serves_on_loopback_and_prints_the_url() -> None:
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from logitlab.cli import main; main()", "explore", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "http://" in line or not line:
                break
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        url = match.group(0)
        # the first answer imports torch: on a busy machine that outlasts httpx's 5 s default
        r = httpx.post(
            url + "api/compare", json={"logits": [20, 20], "targets": [0.3, 0.7]}, timeout=120
        )
        assert r.status_code == 200
        rows = {row["name"]: row["value"] for row in r.json()["rows"]}
        assert rows["torch.probabilities"] == [50.0] and rows["torch.logits"] == [10.0]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
