"""Screenshots of the explorer for the README, from a real run.

    PYTHONPATH=src python tests/explore/screenshots.py

Starts the explorer on loopback, opens the lesson's step 2 (the probabilities path broken at
z = (20, 20)) in headless Chromium at 1280x800 and at 390 px (a phone, touch), waits until
the numbers, the curves and the breakpoints are drawn, and writes ``docs/img/explore-lesson.png``
and ``docs/img/explore-phone.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the tests
from tests.explore.chromium import CHROMIUM, CHROMIUM_ARGS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "docs" / "img"
#: The README's screenshots, relative to the repository root.
SHOTS = {
    "docs/img/explore-lesson.png": {"viewport": {"width": 1280, "height": 800}},
    "docs/img/explore-phone.png": {
        "viewport": {"width": 390, "height": 844},
        "has_touch": True,
        "is_mobile": True,
    },
}
QUERY = "/?step=break&z=20,20&y=0.3,0.7&dtype=float32"


def main() -> None:
    sys.path.insert(0, str(HERE))
    from playwright.sync_api import sync_playwright

    from conftest import start_server, stop_server  # type: ignore[import-not-found]

    url, server, thread = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for path, context in SHOTS.items():
                page = browser.new_context(**context).new_page()  # type: ignore[arg-type]
                page.goto(url + QUERY)
                page.wait_for_function(
                    "window.__explore && window.__explore.rendered >= window.__explore.inputSeq"
                    " && window.__explore.curveShown() && window.__explore.breakpointsShown()",
                    timeout=120_000,
                )
                page.wait_for_timeout(300)
                full = context["viewport"]["width"] < 600  # type: ignore[index]
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ROOT / path), full_page=full)
                print("wrote", path)
            browser.close()
    finally:
        stop_server(server, thread)


if __name__ == "__main__":
    main()
