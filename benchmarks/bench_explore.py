"""Benchmark: from a logit slider's input event to updated numbers and redrawn plots.

Starts the explorer on a free loopback port, drives Debian's Chromium headless with
Playwright, and moves the first logit slider 200 times (random values in [-300, 300]).
For each move it measures, inside the page, the time from dispatching the ``input`` event
to the moment the table, explanation and both plots' z markers show that input
(``window.__explore.waitFor``), and to the next animation frame after that (what a
person sees).  Target: p95 under 50 ms.

    python benchmarks/bench_explore.py [--moves 200] [--drag]

``--drag`` also runs a drag: inputs every 16 ms without waiting, the page keeping one
request in flight and dropping stale ones; it reports the time from each rendered input
to its render.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import threading
import time
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

MOVE = """async (v) => {
  const el = document.querySelector(".element[data-i='0'] .z-range");
  const t0 = performance.now();
  el.value = String(v);
  el.dispatchEvent(new Event("input", {bubbles: true}));
  const rendered = await window.__explore.waitFor(window.__explore.inputSeq);
  await new Promise((r) => requestAnimationFrame(() => r()));
  return [rendered - t0, performance.now() - t0];
}"""

DRAG = """async ([values, gap]) => {
  const el = document.querySelector(".element[data-i='0'] .z-range");
  const starts = [];
  const waits = [];
  for (const v of values) {
    const t0 = performance.now();
    el.value = String(v);
    el.dispatchEvent(new Event("input", {bubbles: true}));
    const seq = window.__explore.inputSeq;
    starts.push(t0);
    waits.push(window.__explore.waitFor(seq).then((t) => t - t0));
    await new Promise((r) => setTimeout(r, gap));
  }
  return await Promise.all(waits);
}"""


def start_server() -> tuple[str, Any, threading.Thread]:
    import uvicorn

    from logitlab.ui.explore.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(torch_threads=1), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def report(name: str, values: list[float]) -> None:
    print(
        f"{name:<44} n={len(values):<4d} p50={percentile(values, 50):6.1f} ms  "
        f"p95={percentile(values, 95):6.1f} ms  max={max(values):6.1f} ms  "
        f"mean={statistics.fmean(values):6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--drag", action="store_true", help="also measure a 60 Hz drag")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    url, server, thread = start_server()
    rng = random.Random(args.seed)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.goto(url + "/?z=-2,2&y=0.3,0.7&dtype=float32")
            page.wait_for_function(
                "window.__explore && window.__explore.rendered >= 1"
                " && window.__explore.curveShown()",
                timeout=60_000,
            )
            for _ in range(10):  # warm up: first requests import and cache
                page.evaluate(MOVE, round(rng.uniform(-300, 300), 2))
            rendered, painted = [], []
            for _ in range(args.moves):
                r, f = page.evaluate(MOVE, round(rng.uniform(-300, 300), 2))
                rendered.append(r)
                painted.append(f)
            print(f"explorer at {url}; {args.moves} slider moves, one at a time")
            report("input -> numbers + plot markers updated", rendered)
            report("input -> next frame painted", painted)
            if args.drag:
                values = [round(-300 + 600 * i / args.moves, 2) for i in range(args.moves)]
                lat = page.evaluate(DRAG, [values, 16])
                report("drag at 60 Hz: input -> covered by a render", lat)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()
