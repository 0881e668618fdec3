"""Benchmark: every control of the explorer, from its input event to the painted result.

Starts the explorer on a free loopback port, drives Debian's Chromium headless with
Playwright and, for each control, makes ``--moves`` changes one at a time.  For each it
measures inside the page the time from dispatching the control's event to the moment the
table, the explanation, the plots' markers and dots *and* (where the change needs new
curves) all three plots show that input (``window.__explore.waitIdle``), then to the next
animation frame (what a person sees).  Target: p95 under 50 ms for every control.

Controls: the z slider, the y slider (new curves: target values on the slider's 0.01
grid, which the server answers from its curve cache once seen), dtype, weight and
pos_weight (values typed from a short list), reduction, elements (add / remove), and the z
slider with every framework on (after the first load, which imports the frameworks and is
reported separately).

Each line also gives the p95 of the numbers alone (table, explanation and plot markers
showing the input, ``window.__explore.waitFor``), and the page's main-thread CPU time per
move (Chromium's ThreadTime metric, which the machine's load changes less than the
wall-clock times).

The machine may be shared, so every line also gives the load average, and the first
"control", ``roundtrip``, is a baseline measured the same way in the same run: one trivial
request (a cached GET) and one DOM write, then the next frame; each control's p95 is also
given as a multiple of it.  Each line counts the server's response-cache hits and misses
(compare and curve) over its moves: dtype, weight, pos_weight, reduction and elements go
back and forth over a few values, so after the first round they are answered from the
cache; ``--cold`` empties the caches before every move, so every answer is computed (the
page's own curve and lesson caches stay, as they would for a person).

``--baseline OLD_EXPLORE_JS`` runs a second browser with another explore.js and makes
every move in both, in turn (which one goes first alternates, since the second is often
answered from the server cache the first one filled): on a shared machine their ratio is
what can be compared.

    python benchmarks/bench_explore.py [--moves 200] [--controls z,y,...] [--cold]
        [--baseline OLD_EXPLORE_JS]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' browser set-up
from tests.explore.chromium import CHROMIUM, CHROMIUM_ARGS

# One change of a control, then wait until everything shows it.  `kind` picks the control,
# `v` is its new value.
MOVE = """async ([kind, v]) => {
  const q = (s) => document.querySelector(s);
  const fire = (el, type) => el.dispatchEvent(new Event(type, {bubbles: true}));
  const t0 = performance.now();
  if (kind === "z" || kind === "z-every-framework") {
    const el = q(".element[data-i='0'] .z-range"); el.value = String(v); fire(el, "input");
  } else if (kind === "y") {
    const el = q(".element[data-i='0'] .y-range"); el.value = String(v); fire(el, "input");
  } else if (kind === "dtype" || kind === "reduction") {
    const el = q("#" + kind); el.value = v; fire(el, "change");
  } else if (kind === "weight" || kind === "pos_weight") {
    const el = q("#" + kind); el.value = v; fire(el, "input");
  } else if (kind === "roundtrip") {
    // The baseline: one trivial request (a cached GET) and one DOM write, then painted.
    const r = await fetch("/api/saturation/" + v);
    const data = await r.json();
    let box = q("#bench-roundtrip");
    if (!box) {
      box = document.createElement("div"); box.id = "bench-roundtrip"; document.body.append(box);
    }
    box.textContent = String(data.one_from);
    await new Promise((r) => requestAnimationFrame(() => r()));
    return [performance.now() - t0, performance.now() - t0, performance.now() - t0];
  } else if (kind === "elements") {
    if (v === "add") q("#add").click();
    else {
      const last = document.querySelectorAll(".element").length - 1;
      q(`.element[data-i='${last}'] .remove`).click();
    }
  }
  // the numbers (table, explanation, markers) alone, and everything (plots too)
  const numbers = window.__explore.waitFor(window.__explore.inputSeq);
  const done = await window.__explore.waitIdle();
  const shown = await numbers;
  await new Promise((r) => requestAnimationFrame(() => r()));
  return [done - t0, performance.now() - t0, shown - t0];
}"""

TARGET_MS = 50.0


def start_server() -> tuple[str, Any, threading.Thread]:
    import uvicorn

    from logitlab.ui.explore.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(torch_threads=1, warm_up=True, worker_process=True),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def caches(server: Any) -> list[Any]:
    """The explorer's response caches (compare, curve), to count hits or to empty them."""
    state = server.config.app.state
    return [state.compare_cache, state.curve_cache]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def report(
    name: str, values: list[float], base: float | None, extra: str, numbers: list[float], cpu: float
) -> bool:
    p95 = percentile(values, 95)
    ok = p95 < TARGET_MS
    ratio = "" if base is None else f"  p95/roundtrip={p95 / base:5.1f}"
    print(
        f"{name:<18} n={len(values):<4d} p50={percentile(values, 50):6.1f}  "
        f"p95={p95:6.1f}  max={max(values):7.1f} ms{ratio}  "
        f"{'ok' if ok else 'OVER'}  (numbers alone p95={percentile(numbers, 95):.1f} ms; "
        f"page main thread {cpu:.1f} ms CPU per move; {load()}{extra})",
        flush=True,
    )
    return ok


def thread_time(cdp: Any) -> float:
    """The page's main-thread CPU time so far, in ms (Chromium's ThreadTime metric): less
    dependent on the machine's load than the wall-clock times."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return 1000.0 * next(m["value"] for m in metrics if m["name"] == "ThreadTime")


def values_for(kind: str, n: int, rng: random.Random) -> list[Any]:
    if kind in ("z", "z-every-framework"):
        return [round(rng.uniform(-30, 30), 2) for _ in range(n)]
    if kind == "y":
        return [round(rng.randint(0, 100) / 100, 2) for _ in range(n)]
    if kind == "dtype":
        return [["float16", "bfloat16", "float32", "float64"][i % 4] for i in range(n)]
    if kind == "reduction":
        return [["sum", "none", "mean"][i % 3] for i in range(n)]
    if kind in ("weight", "pos_weight"):
        return [["0.5", "2", "", "1.5", "3"][i % 5] for i in range(n)]
    if kind == "elements":
        return ["add" if i % 2 == 0 else "remove" for i in range(n)]
    if kind == "roundtrip":
        return [["float16", "bfloat16", "float32", "float64"][i % 4] for i in range(n)]
    raise ValueError(kind)


CONTROLS = (
    "roundtrip",
    "z",
    "y",
    "dtype",
    "weight",
    "pos_weight",
    "reduction",
    "elements",
    "z-every-framework",
)


def plotly_js() -> str:
    """plotly.js from the installed ``plotly`` package, for a baseline page drawing with it."""
    import importlib.resources

    root = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    return root.read_text(encoding="utf-8")


def with_plotly(route: Any) -> None:
    """The page as served, loading plotly.js instead of lineplot.js (for an explore.js from
    before the page drew its plots itself; the server no longer serves plotly.js)."""
    html = route.fetch().text()
    html = html.replace(
        '<script src="/static/lineplot.js" defer></script>',
        '<script src="/static/plotly.min.js" defer></script>',
    )
    route.fulfill(body=html, content_type="text/html")


class Page:
    """One browser with the explorer open; ``script`` replaces the page's explore.js (the
    baseline of ``--baseline``); a script that uses Plotly gets plotly.js, from the installed
    ``plotly`` package, in place of the page's own renderer."""

    def __init__(self, p: Any, url: str, label: str, script: str | None = None) -> None:
        self.label = label
        self.browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 800})
        if script is not None:
            self.page.route(
                "**/static/explore.js",
                lambda route: route.fulfill(body=script, content_type="text/javascript"),
            )
            if "Plotly." in script:
                plotly = plotly_js()
                self.page.route(re.compile(r"^https?://[^/]+/(\?.*)?$"), with_plotly)
                self.page.route(
                    "**/static/plotly.min.js",
                    lambda route: route.fulfill(body=plotly, content_type="text/javascript"),
                )
        self.cdp = self.page.context.new_cdp_session(self.page)
        self.cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        self.page.goto(url + "/?z=-2,2&y=0.3,0.7&dtype=float32")
        self.page.wait_for_function(
            "window.__explore && window.__explore.rendered >= 1 && window.__explore.curveShown()",
            timeout=120_000,
        )
        self.painted: list[float] = []
        self.numbers: list[float] = []
        self.cpu = 0.0

    def move(self, kind: str, v: Any) -> None:
        t = thread_time(self.cdp)
        _, f, n = self.page.evaluate(MOVE, [kind, v])
        self.cpu += thread_time(self.cdp) - t
        self.painted.append(f)
        self.numbers.append(n)

    def reset(self) -> None:
        self.painted, self.numbers, self.cpu = [], [], 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--controls", default=",".join(CONTROLS))
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--warm", type=int, default=10, help="untimed moves per control first")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="empty the server's response caches before every move (every answer computed)",
    )
    parser.add_argument(
        "--baseline",
        metavar="EXPLORE_JS",
        help="a second browser runs this explore.js (e.g. `git show REV:src/logitlab/ui/explore/"
        "static/explore.js`), each move made in both in turn (alternating which goes first), "
        "and each control is reported for both: on a shared machine the ratio is what counts",
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    url, server, thread = start_server()
    rng = random.Random(args.seed)
    results: dict[str, bool] = {}
    base: dict[str, float] = {}
    try:
        with sync_playwright() as p:
            pages = [Page(p, url, "")]
            if args.baseline:
                pages.append(Page(p, url, "baseline", Path(args.baseline).read_text()))
            print(f"explorer at {url}; {args.moves} changes per control, one at a time; {load()}")
            print(
                "time from the input event to numbers + all plots shown, then painted"
                + ("; response caches emptied before every move" if args.cold else "")
                + (f"; baseline: {args.baseline}" if args.baseline else "")
            )
            for kind in args.controls.split(","):
                if kind == "z-every-framework":
                    for pg in pages:
                        t0 = time.perf_counter()
                        pg.page.locator("#all-frameworks").check()
                        pg.page.evaluate("window.__explore.waitIdle()")
                        name = f"every framework: first load {pg.label}".strip()
                        print(f"{name:<18} {time.perf_counter() - t0:.1f} s")
                for v in values_for(kind, args.warm, rng):
                    for pg in pages:
                        pg.page.evaluate(MOVE, [kind, v])
                before = [(c.hits, c.misses) for c in caches(server)]
                for pg in pages:
                    pg.reset()
                for k, v in enumerate(values_for(kind, args.moves, rng)):
                    for pg in pages if k % 2 == 0 else pages[::-1]:
                        if args.cold:
                            for c in caches(server):
                                c.clear()
                        pg.move(kind, v)
                hits = sum(c.hits - h for c, (h, _) in zip(caches(server), before))
                misses = sum(c.misses - m for c, (_, m) in zip(caches(server), before))
                extra = "" if kind == "roundtrip" else f"; cache {hits} hits, {misses} misses"
                for pg in pages:
                    name = f"{kind} {pg.label}".strip()
                    ok = report(
                        name,
                        pg.painted,
                        base.get(pg.label),
                        extra,
                        pg.numbers,
                        pg.cpu / len(pg.painted),
                    )
                    if not pg.label:
                        results[kind] = ok
                    if kind == "roundtrip":
                        base[pg.label] = percentile(pg.painted, 95)
                if len(pages) == 2:
                    a, b = (percentile(pg.painted, 95) for pg in pages)
                    print(f"{'':<18} p95 this/baseline = {a / b:.2f}", flush=True)
            for pg in pages:
                pg.browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    over = [k for k, ok in results.items() if not ok and k != "roundtrip"]
    print("all controls under 50 ms p95" if not over else "over 50 ms p95: " + ", ".join(over))


if __name__ == "__main__":
    main()
