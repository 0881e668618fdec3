"""The notebook widget in a real JupyterLab, driven by Playwright in headless Chromium.

A ``jupyter lab`` server starts on loopback in a temporary root (no token, no browser, its
config, data and runtime dirs in the temp dir, a kernelspec that runs this interpreter with
this checkout's ``src`` on ``PYTHONPATH``).  The test opens a notebook whose cell builds the
widget, runs the cell, sets the z sliders to 20 through their readouts, and reads the table
and the plotly plot in the page; then it switches to the focal loss and to softmax
cross-entropy (and masks a class) and reads their tables.  It reads the "where it breaks"
plot (the error traces, then the breakpoint onsets once the kernel's background search has
them), picks the bfloat16 "break" preset from the menu and reads the state back (dtype,
sliders, lesson text, table, both plots), then presses Reset.  The expected numbers come
from torch directly.  It runs the cell only once the kernel is connected (see
``_kernel_idle``).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.explore.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[2] / "src"
CELL = "from logitlab.ui.explore import notebook_explorer\nui = notebook_explorer()\nui"
STEP = "2. Push the sliders out: the probabilities path breaks"
PRESET = STEP + " (bfloat16)"


def _requirements() -> None:
    for module in ("jupyterlab", "ipykernel", "anywidget", "ipywidgets", "playwright"):
        try:
            __import__(module)
        except ImportError:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev,notebook]')")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[str]:
    """A running JupyterLab's URL, with ``explore.ipynb`` in its root."""
    _requirements()
    root = tmp_path / "root"
    root.mkdir()
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": CELL,
            }
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "explore.ipynb").write_text(json.dumps(notebook))
    # The kernel: this interpreter, found first on JUPYTER_PATH.
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }
    (kernels / "kernel.json").write_text(json.dumps(spec))
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(SRC) + os.pathsep + env.get("PYTHONPATH", ""),
        JUPYTER_PATH=str(tmp_path / "jupyter"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
    )
    port = _free_port()
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.terminals_enabled=False",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={root}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError("jupyter lab exited:\n" + (tmp_path / "lab.log").read_text())
            try:
                with urllib.request.urlopen(url + "/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "jupyter lab did not start:\n" + (tmp_path / "lab.log").read_text()
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _kernel_idle(page: Any) -> None:
    from playwright.sync_api import expect

    status = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    expect(status).to_have_count(1, timeout=180_000)


def _set_readout(slider: Any, value: str) -> None:
    readout = slider.locator(".widget-readout")
    readout.click()
    readout.press("Control+a")
    readout.type(value)
    readout.press("Enter")


def _cell_text(page: Any, name: str, column: int) -> str:
    text: str = page.locator(f"tr[data-name='{name}'] td").nth(column).inner_text()
    return text.strip()


def test_the_widget_in_jupyterlab(lab: str) -> None:
    import numpy
    import torch
    import torch.nn.functional as F
    from playwright.sync_api import expect, sync_playwright

    # Expected, from torch directly: z = (20, 20), y = (0.3, 0.7) at float32.
    z = torch.tensor([20.0, 20.0])
    y = torch.tensor([0.3, 0.7])
    per = F.binary_cross_entropy(torch.sigmoid(z), y, reduction="none")
    probabilities = float(per.mean())
    logits = float(F.binary_cross_entropy_with_logits(z, y))
    first = float(per[0])
    assert (probabilities, logits, first) == (50.0, pytest.approx(10.0), 70.0)
    # torchvision's focal loss written out, z = 3, y = 1, alpha = 0.25, gamma = 2
    zf, yf = torch.tensor([3.0]), torch.tensor([1.0])
    p = torch.sigmoid(zf)
    p_t = p * yf + (1 - p) * (1 - yf)
    alpha_t = 0.25 * yf + 0.75 * (1 - yf)
    ce = F.binary_cross_entropy_with_logits(zf, yf, reduction="none")
    focal = float((alpha_t * ce * (1 - p_t) ** 2).mean())
    # softmax cross-entropy of the row (2, 0, -1), target 0; then with z2 masked (-inf)
    t0 = torch.tensor([0])
    softmax = [
        float(F.cross_entropy(torch.tensor([[2.0, 0.0, -1.0]]), t0)),
        float(F.cross_entropy(torch.tensor([[2.0, 0.0, -math.inf]]), t0)),
    ]
    # The bfloat16 "break" preset: z = (20, 20), y = (0.3, 0.7) at bfloat16.
    zb = torch.tensor([20.0, 20.0], dtype=torch.bfloat16)
    yb = torch.tensor([0.3, 0.7], dtype=torch.bfloat16)
    bf16_probabilities = float(F.binary_cross_entropy(torch.sigmoid(zb), yb))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            console: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            # LOGITLAB_CPU_THROTTLE=6 slows the page's CPU six times (Chrome's own
            # throttling), to check that nothing here depends on a fast machine.
            rate = float(os.environ.get("LOGITLAB_CPU_THROTTLE", "1"))
            if rate > 1:
                cdp = page.context.new_cdp_session(page)
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
            page.goto(lab + "/lab/tree/explore.ipynb")
            editor = page.locator(".jp-Notebook .jp-Cell .cm-content").first
            editor.wait_for(timeout=120_000)
            # Run the cell only once the kernel is connected and idle: the status bar's
            # "Python 3 | Idle" (the session's kernelDisplayStatus).  The toolbar's
            # execution indicator reads idle before the kernel's websocket is open, and a
            # cell run then is dropped ("Session has no kernel") without a word.
            _kernel_idle(page)
            editor.click()
            page.keyboard.press("Shift+Enter")
            prompt = page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt")
            expect(prompt).to_have_text(re.compile(r"\[(\*|1)\]"), timeout=30_000)
            # The widget: the controls, the table and the plotly plot drawn by widget.js.
            plot = page.locator(".logitlab-plot")
            try:
                plot.locator(".main-svg").first.wait_for(timeout=180_000)
            except Exception:
                raise AssertionError(f"no plot; page errors {errors}, console {console}") from None
            expect(plot).to_have_attribute("data-marker", "-2")
            table_row = page.locator("tr[data-name='torch.probabilities']")
            expect(table_row).to_have_count(1, timeout=30_000)
            before = _cell_text(page, "torch.probabilities", 1)
            # Each element's sliders carry their own class (logitlab-z1, -y1, ...).
            _set_readout(page.locator(".logitlab-z1"), "20")
            expect(plot).to_have_attribute("data-marker", "20", timeout=30_000)
            _set_readout(page.locator(".logitlab-z2"), "20")
            # The table follows: the mean of the two elements, as torch computes it.
            cell = page.locator("tr[data-name='torch.probabilities'] td").nth(1)
            expect(cell).to_have_text(repr(probabilities), timeout=30_000)
            assert before != _cell_text(page, "torch.probabilities", 1)
            assert float(_cell_text(page, "torch.logits", 1)) == pytest.approx(logits, rel=1e-6)
            # The plot's dots: element 1 alone at z = 20, per element.
            dots = plot.evaluate(
                "el => { const t = el.data.filter(d => d.mode === 'markers')[0];"
                " return Object.fromEntries(t.text.map((n, i) => [n, t.y[i]])); }"
            )
            assert dots["torch.probabilities"] == first
            names = plot.evaluate("el => el.data.map(d => d.name).filter(n => n)")
            assert {"torch.probabilities", "torch.logits", "exact"} <= set(names)
            # The "where it breaks" plot: every row's loss error in ULPs, then the onsets of
            # the core's breakpoint search (run by the kernel in the background).
            err = page.locator(".logitlab-err-plot")
            err.locator(".main-svg").first.wait_for(timeout=60_000)
            expect(err).to_have_attribute("data-quantity", "value")
            expect(err).to_have_attribute("data-kind", "ulp")
            expect(err).to_have_attribute("data-dtype", "float32")
            names = err.evaluate("el => el.data.map(d => d.name)")
            assert {"torch.probabilities", "torch.logits", "stable.bce"} <= set(names), names
            expect(err).to_have_attribute("data-breakpoints", re.compile(r"^\d+$"), timeout=240_000)
            onsets = err.evaluate("el => el.data.filter(d => d.name === 'breakpoints')[0].text")
            assert len(onsets) == int(err.get_attribute("data-breakpoints") or "0") > 0
            assert any(t.startswith("torch.probabilities: loss relative error") for t in onsets)
            note = page.locator(".logitlab-err-note")
            expect(note).to_contain_text("breakpoints (dotted, ▼)")
            # The gradient's relative error: the plot follows the two menus.
            page.locator(".logitlab-err-quantity select").select_option("gradient")
            page.locator(".logitlab-err-kind select").select_option("relative")
            expect(err).to_have_attribute("data-quantity", "grad", timeout=30_000)
            expect(err).to_have_attribute("data-kind", "rel", timeout=30_000)
            # The focal loss: its button, the table row of torchvision's formula against
            # torch at z = 3, y = 1, alpha = 0.25, gamma = 2, and its curve drawn.
            page.locator(".widget-toggle-button", has_text=re.compile("^focal$")).click()
            expect(plot).to_have_attribute("data-quantity", "focal", timeout=60_000)
            expect(plot).to_have_attribute("data-marker", "3", timeout=30_000)
            shown = _cell_text(page, "torch.torchvision_formula", 1)
            assert numpy.float32(shown) == numpy.float32(focal), (shown, focal)
            names = plot.evaluate("el => el.data.map(d => d.name).filter(n => n)")
            assert {"torch.torchvision_formula", "stable.focal", "exact"} <= set(names)
            # Softmax cross-entropy: the row (2, 0, -1) with target class 0, then z2 masked.
            page.locator(".widget-toggle-button", has_text="softmax CE").click()
            expect(plot).to_have_attribute("data-quantity", "softmax_ce", timeout=60_000)
            expect(plot).to_have_attribute("data-marker", "2", timeout=30_000)
            shown = _cell_text(page, "torch.cross_entropy", 1)
            assert numpy.float32(shown) == numpy.float32(softmax[0]), (shown, softmax)
            page.locator(".logitlab-mask2 input[type='checkbox']").check()
            cell = page.locator("tr[data-name='torch.cross_entropy'] td").nth(1)
            expect(cell).not_to_have_text(shown, timeout=30_000)
            shown = _cell_text(page, "torch.cross_entropy", 1)
            assert numpy.float32(shown) == numpy.float32(softmax[1]), (shown, softmax)
            # A preset from the menu (the lesson's list): step 2 at bfloat16.  It switches
            # back to binary CE and sets the step's state; the menu reads "presets…" again.
            preset = page.locator(".logitlab-preset select")
            # An ipywidgets option's value is its label (its text has no-break spaces).
            preset.select_option(value=PRESET)
            expect(plot).to_have_attribute("data-quantity", "bce", timeout=60_000)
            expect(plot).to_have_attribute("data-dtype", "bfloat16", timeout=60_000)
            expect(plot).to_have_attribute("data-marker", "20", timeout=30_000)
            expect(err).to_have_attribute("data-dtype", "bfloat16", timeout=30_000)
            expect(err).to_have_attribute("data-quantity", "value")
            expect(err).to_have_attribute("data-kind", "ulp")
            expect(page.locator(".logitlab-dtype select")).to_have_value("bfloat16")
            expect(page.locator(".logitlab-step select")).to_have_value(STEP)
            expect(preset).to_have_value("presets…")
            for css in (".logitlab-z1", ".logitlab-z2"):
                expect(page.locator(css).locator(".widget-readout")).to_have_text("20.00")
            expect(page.locator(".widget-html", has_text="Step 2")).to_have_count(1)
            cell = page.locator("tr[data-name='torch.probabilities'] td").nth(1)
            expect(cell).to_have_text(repr(bf16_probabilities), timeout=30_000)
            # Reset: back to the state the cell built.
            page.locator(".logitlab-reset").click()
            expect(plot).to_have_attribute("data-dtype", "float32", timeout=60_000)
            expect(plot).to_have_attribute("data-marker", "-2", timeout=30_000)
            expect(page.locator(".logitlab-dtype select")).to_have_value("float32")
            # (the readout's format writes a minus sign, U+2212)
            z1 = page.locator(".logitlab-z1").locator(".widget-readout")
            expect(z1).to_have_text("\u22122.00")
            expect(page.locator(".logitlab-step select")).to_have_value("free")
            assert not errors, errors
        finally:
            browser.close()
