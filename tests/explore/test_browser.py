"""The page in a real browser: Playwright driving Debian's Chromium, headless."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is absent (apt-get install chromium); the browser test needs it",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def wait_rendered(page: Any) -> None:
    """Until the numbers for the latest input are on screen."""
    page.wait_for_function(
        "window.__explore && window.__explore.rendered >= window.__explore.inputSeq",
        timeout=20_000,
    )


def set_slider(page: Any, selector: str, value: float) -> None:
    """Move a range input as a drag does: set its value, fire `input`, wait for the numbers."""
    page.locator(selector).evaluate(
        "(el, v) => { el.value = String(v);"
        " el.dispatchEvent(new Event('input', {bubbles: true})); }",
        value,
    )
    wait_rendered(page)


def loss(page: Any, name: str) -> float:
    return float(page.locator(f"tr[data-name='{name}'] td.loss").inner_text())


def open_page(browser: Any, url: str, width: int = 1200) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 1000})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    wait_rendered(page)
    page.wait_for_function("window.__explore.curveShown()", timeout=30_000)
    return page, errors, requests


def test_slider_to_20_breaks_the_probabilities_path(browser: Any, live_server: str) -> None:
    page, errors, requests = open_page(browser, live_server + "/?y=0.3,0.7")
    # The post's first example, before anything moves.
    # Each row reads back, in float32, as its own float32 value (the two differ by 2 ULP;
    # abs=1e-6 let either row show either value).
    assert float(np.float32(loss(page, "torch.probabilities"))) == 0.7269279956817627
    assert float(np.float32(loss(page, "torch.logits"))) == 0.7269281148910522

    # A real drag on the first slider moves z1 and the numbers follow.
    box = page.locator(".element[data-i='0'] .z-range").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    wait_rendered(page)
    z1 = float(page.locator(".element[data-i='0'] .z-num").input_value())
    assert z1 > 100
    assert page.locator("tr[data-name='torch.probabilities'] .flag").count() > 0

    # The logit sliders to 20 with targets (0.3, 0.7): 50 through probabilities, 10 through logits.
    set_slider(page, ".element[data-i='0'] .z-range", 20)
    set_slider(page, ".element[data-i='1'] .z-range", 20)
    assert page.locator(".element[data-i='0'] .z-num").input_value() == "20"
    assert loss(page, "torch.probabilities") == 50
    assert loss(page, "torch.logits") == 10
    flags = page.locator("tr[data-name='torch.probabilities'] td.flags").inner_text()
    assert "sigmoid saturated" in flags and "log clamped" in flags and "gradient vanished" in flags
    why = page.locator("#explanation").inner_text()
    assert "From z = 16.635532 up, float32 sigmoid" in why and "clamps each log at −100" in why
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explore.png"), full_page=True)

    # The state is in the URL: a shared link reproduces the view, in a fresh page.
    page.locator("#dtype").select_option("float16")
    wait_rendered(page)
    page.wait_for_function("location.search.includes('dtype=float16')")
    shared = page.url
    assert "z=20,20" in shared and "y=0.3,0.7" in shared
    assert loss(page, "torch.logits") == 10
    page2, errors2, requests2 = open_page(browser, shared)
    assert page2.locator("#dtype").input_value() == "float16"
    assert page2.locator(".element[data-i='1'] .z-num").input_value() == "20"
    assert page2.locator(".element[data-i='1'] .z-range").input_value() == "20"
    assert loss(page2, "torch.logits") == 10
    assert page2.locator("#table tbody").inner_text() == page.locator("#table tbody").inner_text()

    # Nothing leaves the machine (no CDN), and nothing went wrong in the page.
    for url in requests + requests2:
        assert url.startswith(live_server) or url.startswith("data:"), url
    assert errors == [] and errors2 == []
    page.close()
    page2.close()


def test_add_remove_elements_and_bad_input(browser: Any, live_server: str) -> None:
    page, errors, _ = open_page(browser, live_server + "/?z=1,2&y=0.5,0.5")
    page.locator("#add").click()
    wait_rendered(page)
    assert page.locator(".element").count() == 3
    page.locator(".element[data-i='2'] .remove").click()
    page.locator(".element[data-i='0'] .remove").click()
    wait_rendered(page)
    assert page.locator(".element").count() == 1
    assert "z=2&" in page.evaluate("'z=' + window.__explore.state.z.join(',') + '&'")
    # A target outside [0, 1] typed into its box: the server's 422 is shown, naming the field.
    page.locator(".element[data-i='0'] .y-num").fill("1.5")
    wait_rendered(page)
    assert page.locator("#error").is_visible()
    assert "targets" in page.locator("#error").inner_text()
    page.locator(".element[data-i='0'] .y-num").fill("0.25")
    wait_rendered(page)
    assert page.locator("#error").is_hidden()
    # Chromium logs the 422 responses themselves; nothing else may go wrong.
    assert [e for e in errors if "status of 422" not in e] == []
    page.close()


def test_zoom_and_phone_width(browser: Any, live_server: str) -> None:
    page, errors, _ = open_page(browser, live_server + "/?z=20,20&view=zoom&zlo=-30&zhi=30", 390)
    layout = page.evaluate("document.getElementById('plot-loss').layout.xaxis.range")
    assert layout[0] == pytest.approx(-30) and layout[1] == pytest.approx(30)
    # The current-z marker sits at z = 20 on the plot's axis.
    left, expected = page.evaluate(
        """() => {
          const gd = document.getElementById('plot-loss');
          const xa = gd._fullLayout.xaxis;
          return [gd.querySelector('.zmark').offsetLeft, xa._offset + xa._length * 50 / 60];
        }"""
    )
    assert left == pytest.approx(expected, abs=2)
    # Readable on a phone: the page itself does not scroll sideways (the table may, inside).
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explore-phone.png"), full_page=True)
    assert errors == []
    page.close()
