"""What makes the explorer fast must not change what it shows.

* The response caches (:class:`~logitlab.ui.explore.app.ResponseCache`) answer a repeated
  request with the bytes a fresh computation gives, and evict least recently used first.
* The page's dots request (the selected element alone, unreduced) gives the same numbers as
  the server's own per-element answer.
* A stale breakpoint search is dropped once its client has gone.
* After a fast drag the page shows the final state, computed independently here (mpmath),
  with far fewer requests than input events.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Future
from typing import Any

import mpmath
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient
from tests.explore.chromium import chromium

from logitlab.analysis.compare import compare
from logitlab.analysis.curves import bce_curve, select
from logitlab.ui.explore import app as app_module
from logitlab.ui.explore.app import ResponseCache, create_app


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app()


@pytest.fixture(scope="module")
def client(app: Any) -> TestClient:
    return TestClient(app)


def test_response_cache_is_least_recently_used() -> None:
    c = ResponseCache(2)
    c.put("a", b"1")
    c.put("b", b"2")
    assert c.get("a") == b"1"  # a is now the most recent
    c.put("c", b"3")  # evicts b, the least recently used
    assert c.get("b") is None
    assert c.get("a") == b"1"
    assert c.get("c") == b"3"
    assert (c.hits, c.misses, len(c)) == (3, 1, 2)
    c.put("a", b"4")  # a new value replaces the old one
    assert c.get("a") == b"4"
    c.clear()
    assert len(c) == 0


def test_compare_cache_hit_is_a_fresh_computation(app: Any, client: TestClient) -> None:
    body = {"logits": [-3.25, 17.5], "targets": [0.25, 0.875], "dtype": "bfloat16"}
    cache = app.state.compare_cache
    hits, misses = cache.hits, cache.misses
    first = client.post("/api/compare", json=body)
    second = client.post("/api/compare", json=body)
    assert first.status_code == second.status_code == 200
    assert (cache.hits - hits, cache.misses - misses) == (1, 1)
    assert second.content == first.content
    # The same as a server that has never seen the request, and as the core itself.
    fresh = TestClient(create_app()).post("/api/compare", json=body)
    assert fresh.content == second.content
    core = compare(body["logits"], body["targets"], dtype="bfloat16").to_dict()
    got = second.json()
    assert got["exact"] == core["exact"]
    for mine, theirs in zip(got["rows"], core["rows"], strict=True):
        for key in ("name", "value", "ulp_error", "grad", "grad_ulp_error", "flags"):
            assert mine[key] == theirs[key], key


def test_compare_cache_tells_requests_apart(client: TestClient) -> None:
    # Bodies differing in one field each get their own answer.
    base = {"logits": [2.0], "targets": [0.5], "dtype": "float32", "reduction": "sum"}
    answers: dict[str, Any] = {}
    changes: list[dict[str, Any]] = [{}, {"dtype": "float16"}, {"weight": 2.0}, {"pos_weight": 3.0}]
    for change in changes:
        answers[json.dumps(change)] = client.post("/api/compare", json={**base, **change}).json()
    # Worked out by hand: BCE(z=2, y=0.5) = 0.5 softplus(-2) + 0.5 softplus(2).
    sp = [float(mpmath.log1p(mpmath.exp(v))) for v in (-2.0, 2.0)]
    plain = 0.5 * sp[0] + 0.5 * sp[1]
    expected = {
        "{}": plain,
        '{"dtype": "float16"}': plain,
        '{"weight": 2.0}': 2 * plain,
        '{"pos_weight": 3.0}': 3 * 0.5 * sp[0] + 0.5 * sp[1],
    }
    for key, data in answers.items():
        (value,) = data["exact"]["value_rounded"]
        tol = 2.0**-10 if "float16" in key else 2.0**-23
        assert value == pytest.approx(expected[key], rel=tol), key


def test_infinite_logits_of_either_sign_get_their_own_answers() -> None:
    # Their cache keys differ (a JSON dump of the request writes both infinities as null):
    # -inf asked after +inf is answered for -inf, as a server that never saw +inf answers it.
    client = TestClient(create_app())
    headers = {"content-type": "application/json"}
    bodies = [f'{{"logits": [{z}, 0], "targets": [1, 0.5]}}' for z in ("Infinity", "-Infinity")]
    plus, minus = (client.post("/api/compare", content=b, headers=headers) for b in bodies)
    assert plus.json()["inputs"]["logits"][0] == "Infinity"
    assert minus.json()["inputs"]["logits"][0] == "-Infinity"
    # by hand: at y = 1 the loss is softplus(-z), 0 at +inf and +inf at -inf; ln 2 at z = 0
    assert plus.json()["exact"]["value_rounded"] == [pytest.approx(np.log(2) / 2, rel=2**-23)]
    assert minus.json()["exact"]["value_rounded"] == ["Infinity"]
    fresh = TestClient(create_app()).post("/api/compare", content=bodies[1], headers=headers)
    assert fresh.content == minus.content
    # and the same for a masked softmax row: -inf (masked) and +inf are different rows
    curve = '{{"loss": "softmax-ce", "logits": [3, {}, 1], "target": 0, "sweep": 2, "points": 5}}'
    answers = [
        client.post("/api/curve_loss", content=curve.format(z), headers=headers)
        for z in ("Infinity", "-Infinity")
    ]
    fresh_curve = TestClient(create_app()).post(
        "/api/curve_loss", content=curve.format("-Infinity"), headers=headers
    )
    assert answers[1].status_code == fresh_curve.status_code
    assert answers[1].content == fresh_curve.content


def test_curve_cache_hit_is_a_fresh_computation(app: Any, client: TestClient) -> None:
    body = {"target": 0.37, "dtype": "float16", "z_min": -20, "z_max": 20, "points": 41}
    cache = app.state.curve_cache
    hits = cache.hits
    first = client.post("/api/curve", json=body)
    second = client.post("/api/curve", json=body)
    assert cache.hits - hits == 1
    assert second.content == first.content
    fresh = bce_curve(
        0.37, dtype="float16", z_min=-20, z_max=20, points=41, formulations=select()
    ).to_dict()
    got = second.json()
    assert got["z"] == fresh["z"]
    assert got["exact"] == fresh["exact"]
    for mine, theirs in zip(got["rows"], fresh["rows"], strict=True):
        assert mine["value"] == theirs["value"]
        assert mine["grad_ulp_error"] == theirs["grad_ulp_error"]


def test_prefetched_curves_are_the_ones_the_page_then_asks_for() -> None:
    # A fresh app, so that nothing is kept yet.  The prefetch names the targets the way the
    # page's y slider does; each curve it computed is then a cache hit for the request the
    # page sends (same fields, the target a plain JSON number), with the bytes a fresh
    # computation of that request gives.
    app = create_app()
    client = TestClient(app)
    common = {"dtype": "bfloat16", "weight": 2, "z_min": -30, "z_max": 30, "points": 31}
    r = client.post("/api/curve/prefetch", json={**common, "targets": [0.5, 0.49, 0.51, 1]})
    assert r.status_code == 202 and r.json() == {"queued": 4}
    assert app.state.prefetch.wait(timeout=60)
    cache = app.state.curve_cache
    assert len(cache) == 4 and app.state.prefetch.computed == 4
    hits, misses = cache.hits, cache.misses
    kept = client.post("/api/curve", json={**common, "target": 0.49})
    assert (cache.hits - hits, cache.misses - misses) == (1, 0)
    cache.clear()
    fresh = client.post("/api/curve", json={**common, "target": 0.49})
    assert kept.content == fresh.content
    # the loss at z = 0 for y = 0.49 and weight 2 is 2 ln 2 (the sigmoid is 1/2 exactly)
    got = kept.json()
    row = next(r for r in got["rows"] if r["name"] == "torch.logits")
    assert got["z"][15] == 0.0 and row["value"][15] == pytest.approx(2 * np.log(2), rel=2**-7)
    # a second prefetch of kept curves queues nothing new
    assert client.post("/api/curve/prefetch", json={**common, "targets": [0.49]}).json() == {
        "queued": 0
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"targets": [0.5, 1.5]}, "targets"),
        ({"targets": []}, "targets"),
        ({"targets": [0.5], "dtype": "float8"}, "dtype"),
        ({"targets": [0.5], "points": 1}, "points"),
        ({"targets": [0.5], "bogus": 1}, "bogus"),
        ({"targets": [0.5], "z_min": 5, "z_max": 1}, "z_max"),
        ({"targets": [0.5], "weight": -1}, "weight"),
    ],
)
def test_a_bad_prefetch_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    r = client.post("/api/curve/prefetch", json=body)
    assert r.status_code == 422
    assert field in json.dumps(r.json()["detail"])


def test_a_bad_prefetch_target_is_named_by_its_index(client: TestClient) -> None:
    r = client.post("/api/curve/prefetch", json={"targets": [0.5, 0.25, 2]})
    assert r.status_code == 422
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "targets"] and "index 2" in detail["msg"]


def test_prefetched_comparisons_are_the_ones_the_page_then_asks_for() -> None:
    # The y slider's other positions, as the page asks for them: the comparison it shows,
    # element 0's target set to each slider value.  Each one computed is then a cache hit
    # for the request the page sends on moving y there, with a fresh computation's bytes.
    app = create_app()
    client = TestClient(app)
    shown = {"logits": [0, 4], "targets": [0.3, 0.7], "dtype": "bfloat16", "element": None}
    body = {"compare": shown, "element": 0, "targets": [0.29, 0.31, 1]}
    r = client.post("/api/compare/prefetch", json=body)
    assert r.status_code == 202 and r.json() == {"queued": 3}
    assert app.state.prefetch.wait(timeout=60)
    cache = app.state.compare_cache
    assert len(cache) == 3 and app.state.prefetch.computed_by["compare"] == 3
    hits, misses = cache.hits, cache.misses
    moved = {**shown, "targets": [0.29, 0.7]}
    kept = client.post("/api/compare", json=moved)
    assert (cache.hits - hits, cache.misses - misses) == (1, 0)
    cache.clear()
    assert client.post("/api/compare", json=moved).content == kept.content
    # by hand: y_0 = 0.29 rounds to bfloat16 as 148 / 2**9 = 0.2890625 (8 significant bits),
    # and d mean / dz_0 = (sigmoid(0) - y_0) / 2 = (0.5 - 0.2890625) / 2 = 27 / 256, exact
    assert kept.json()["exact"]["grad_rounded"][0] == 27 / 256
    # kept answers are not queued again
    again = {**body, "targets": [0.29, 0.31]}
    assert client.post("/api/compare/prefetch", json=again).json() == {"queued": 1}


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"element": 2}, ["body", "element"]),
        ({"element": -1}, ["body", "element"]),
        ({"targets": [0.5, 2]}, ["body", "targets"]),
        ({"targets": []}, ["body", "targets"]),
        ({"compare": {"logits": [0, 4], "targets": [0.5]}}, ["body", "element"]),
        ({"compare": {"logits": [0, 4], "dtype": "float8"}}, ["body", "compare", "dtype"]),
        ({"compare": {"logits": [0, 4], "weight": -1}}, ["body", "compare", "weight"]),
        ({"compare": {"logits": [0, 4], "frameworks": ["no"]}}, ["body", "compare", "frameworks"]),
        ({"compare": {"logits": [0, 4], "bogus": 1}}, ["body", "compare", "bogus"]),
        ({"bogus": 1}, ["body", "bogus"]),
    ],
)
def test_a_bad_compare_prefetch_is_a_422_naming_the_field(
    client: TestClient, change: dict[str, Any], loc: list[str]
) -> None:
    body = {"compare": {"logits": [0, 4], "targets": [0.3, 0.7]}, "element": 0, "targets": [0.5]}
    r = client.post("/api/compare/prefetch", json={**body, **change})
    assert r.status_code == 422
    (detail,) = r.json()["detail"]
    assert detail["loc"][: len(loc)] == loc and detail["msg"]


def test_the_dots_request_gives_the_elements_own_numbers(client: TestClient) -> None:
    # What the page asks for the dots (element 1 alone, unreduced) equals the server's
    # per-element answer inside the whole comparison (mean over three elements).
    whole = {"logits": [-2.0, 12.5, 30.0], "targets": [0.3, 0.9, 1.0], "weight": 1.5}
    a = client.post("/api/compare", json={**whole, "element": 1}).json()["element"]
    alone = {"logits": [12.5], "targets": [0.9], "weight": 1.5, "reduction": "none"}
    b = client.post("/api/compare", json={**alone, "element": 0}).json()["element"]
    assert a["z"] == b["z"] == 12.5
    assert a["exact"] == b["exact"]
    assert a["rows"] == b["rows"]
    # and the exact value is the hand formula at the float32 target, rounded once to float32
    expected = 1.5 * bce(12.5, float(np.float32(0.9)))
    assert b["exact"]["value"] == float(np.float32(float(expected)))


def bce(z: float, y: float) -> Any:
    """Binary cross-entropy of logit z and target y, in mpmath at 200 bits."""
    with mpmath.workprec(200):
        y_ = mpmath.mpf(y)
        return +(y_ * mpmath.log1p(mpmath.exp(-z)) + (1 - y_) * mpmath.log1p(mpmath.exp(z)))


class _GoneRequest:
    def __init__(self) -> None:
        self.asked = 0

    async def is_disconnected(self) -> bool:
        self.asked += 1
        return self.asked >= 2


def test_a_search_whose_client_went_away_is_dropped() -> None:
    future: Future[Any] = Future()  # a search queued behind another one: it never starts
    request: Any = _GoneRequest()
    got = asyncio.run(app_module._unless_gone(future, request, poll=0.01))
    assert got is app_module._GONE
    assert future.cancelled()


def test_a_search_that_finishes_is_answered() -> None:
    async def go() -> Any:
        future: Future[Any] = Future()
        asyncio.get_running_loop().call_later(0.02, future.set_result, {"onsets": []})
        request: Any = _GoneRequest()
        return await app_module._unless_gone(future, request, poll=1.0)

    assert asyncio.run(go()) == {"onsets": []}


def test_breakpoints_are_kept(app: Any, client: TestClient) -> None:
    body = {"target": 1.0, "dtype": "float16", "formulations": ["torch.logits"]}
    first = client.post("/api/breakpoints", json=body)
    hits = app.state.breakpoint_cache.hits
    second = client.post("/api/breakpoints", json=body)
    assert first.status_code == 200
    assert app.state.breakpoint_cache.hits == hits + 1
    assert second.content == first.content


# ---- in the browser ----------------------------------------------------------------------


# Drag a slider through `values`, one input event per animation frame (as a hand does),
# counting the requests the page makes; then wait until everything shows the last value.
DRAG = """async ([selector, values]) => {
  const seen = {}, open = {}, most = {};
  const orig = window.fetch;
  window.fetch = (u, o) => {
    const k = String(u).split("?")[0];
    seen[k] = (seen[k] || 0) + 1;
    open[k] = (open[k] || 0) + 1;
    most[k] = Math.max(most[k] || 0, open[k]);
    // every answer arrives 80 ms late, so that a drag of one event per frame outpaces the
    // server however fast it is: a page that sent a request per event would show it
    const late = (r) => new Promise((res) => setTimeout(() => { open[k] -= 1; res(r); }, 80));
    return orig(u, o).then(late, (e) => { open[k] -= 1; throw e; });
  };
  const el = document.querySelector(selector);
  for (const v of values) {
    el.value = String(v);
    el.dispatchEvent(new Event("input", {bubbles: true}));
    await new Promise((r) => requestAnimationFrame(() => r()));
  }
  const idle = await Promise.race([window.__explore.waitIdle().then(() => true),
    new Promise((r) => setTimeout(() => r(false), 30000))]);
  window.fetch = orig;
  return {seen, most, idle};
}"""


@pytest.fixture(scope="module")
def page(live_server: str) -> Any:
    with chromium() as b:
        pg = b.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(live_server + "/?z=-2,2&y=0.3,0.7&dtype=float32")
        pg.wait_for_function(
            "window.__explore && window.__explore.rendered >= 1 && window.__explore.curveShown()",
            timeout=60_000,
        )
        yield pg
        assert errors == []


@pytest.mark.browser
def test_after_a_fast_z_drag_the_page_shows_the_final_state(page: Any) -> None:
    values = [round(-2 + 0.37 * k, 2) for k in range(40)]  # -2 ... 12.43
    got = page.evaluate(DRAG, [".element[data-i='0'] .z-range", values])
    assert got["idle"], "the page never showed the final state"
    seen = got["seen"]
    final = values[-1]
    assert page.evaluate("window.__explore.state.z[0]") == final
    assert page.locator(".element[data-i='0'] .z-num").input_value() == str(final)
    # the exact mean loss of (z, y) = (final, 0.3), (2, 0.7) at float32, rounded to float32
    with mpmath.workprec(200):
        y0, y1 = float(np.float32(0.3)), float(np.float32(0.7))  # the targets received
        exact = (bce(float(np.float32(final)), y0) + bce(2.0, y1)) / 2
    shown = float(page.locator("#exact .exact-value").inner_text())
    assert np.float32(shown) == np.float32(float(exact))
    logits = float(page.locator("tr[data-name='torch.logits'] td.loss").inner_text())
    assert logits == pytest.approx(float(exact), rel=4 * 2.0**-24)
    # coalesced: a request waits for the one in flight (the table's and the dots' may
    # overlap), the newest state next; with 80 ms answers and an event per frame that is far
    # fewer requests than events
    assert seen.get("/api/compare", 0) < len(values) / 2, seen
    assert got["most"].get("/api/compare", 0) <= 2, got["most"]
    page.wait_for_function(f"location.search.includes('z={final},2')", timeout=5_000)


@pytest.mark.browser
def test_after_a_fast_y_drag_the_curves_show_the_final_target(page: Any) -> None:
    values = [round(0.3 + 0.01 * k, 2) for k in range(48)]  # 0.3 ... 0.77, the slider's grid
    got = page.evaluate(DRAG, [".element[data-i='0'] .y-range", values])
    assert got["idle"], "the page never showed the final state"
    seen = got["seen"]
    final = values[-1]
    assert page.evaluate("window.__explore.state.y[0]") == final
    title = page.evaluate("document.getElementById('plot-loss').layout.title.text")
    assert f"y = {final}" in title
    x, y = page.evaluate(
        "(() => { const t = document.getElementById('plot-loss').data"
        ".find((d) => d.name === 'exact'); return [t.x, t.y]; })()"
    )
    target = float(np.float32(final))  # the target the framework received
    for k in (0, len(x) // 3, len(x) // 2, len(x) - 1):
        # the curve's exact reference is drawn in float64
        assert y[k] == pytest.approx(float(bce(x[k], target)), rel=2.0**-50), x[k]
    assert seen.get("/api/curve", 0) < len(values) / 2, seen
    assert got["most"].get("/api/curve", 0) <= 2, got["most"]
    assert page.evaluate("window.__explore.curveShown()")


# What each plot shows after a change (every pixel of its canvas: traces, shapes,
# annotations, ticks, titles, legend, and the axes the overlays use), against a fresh
# renderer drawing the same figure (a copy of its traces and layout) into a scratch div of
# the same size: a redraw must leave nothing stale behind.
FRESH = """async () => {
  const axes = (gd) => JSON.stringify(["xaxis", "yaxis"].map((k) => {
    const a = gd._fullLayout[k];
    return [a.range, a.type, a._offset, a._length, a.ticktext];
  }));
  const out = {};
  for (const id of ["plot-loss", "plot-grad", "plot-err"]) {
    const gd = document.getElementById(id);
    const host = document.createElement("div");
    host.style.cssText = `position:absolute;left:0;top:0;width:${gd.clientWidth}px;`
      + `height:${gd.clientHeight}px;visibility:hidden`;
    document.body.append(host);
    await LinePlot.react(host, JSON.parse(JSON.stringify(gd.data)),
      JSON.parse(JSON.stringify(gd.layout)));
    const shown = gd.querySelector("canvas"), fresh = host.querySelector("canvas");
    out[id] = [[shown.width, shown.height, axes(gd), shown.toDataURL()],
               [fresh.width, fresh.height, axes(host), fresh.toDataURL()]];
    LinePlot.purge(host);
    host.remove();
  }
  return out;
}"""


@pytest.mark.browser
def test_redrawn_plots_equal_freshly_drawn_ones(page: Any) -> None:
    for selector, value, event in (
        ("#dtype", "float16", "change"),
        ("#weight", "2", "input"),
        (".element[data-i='0'] .y-range", "0.93", "input"),
        ("#dtype", "bfloat16", "change"),
        ("#pos_weight", "3", "input"),
        (".element[data-i='0'] .y-range", "0", "input"),
        ("#weight", "", "input"),
    ):
        page.evaluate(
            """async ([s, v, e]) => {
              const el = document.querySelector(s); el.value = v;
              el.dispatchEvent(new Event(e, {bubbles: true}));
              await window.__explore.waitIdle();
            }""",
            [selector, value, event],
        )
        for plot, (shown, fresh) in page.evaluate(FRESH).items():
            assert shown[:3] == fresh[:3], (selector, value, plot)  # size, axes, ticks
            assert shown[3] == fresh[3], (selector, value, plot)  # every pixel


def test_prefetch_closes_its_thread_after_the_request_under_way() -> None:
    # At interpreter exit (and on close()) what waits is dropped, the request being
    # computed finishes and the thread ends: a daemon thread cut off inside torch's C++
    # code aborts the process ("terminate called without an active exception").
    app = create_app()
    client = TestClient(app)
    body = {"compare": {"logits": [0, 4], "targets": [0.3, 0.7]}, "element": 0}
    targets = [k / 100 for k in range(101) if k != 30]
    r = client.post("/api/compare/prefetch", json={**body, "targets": targets})
    assert r.status_code == 202
    prefetch = app.state.prefetch
    prefetch.close()
    assert prefetch._thread is not None and not prefetch._thread.is_alive()
    assert prefetch.computed < len(targets)  # the rest was dropped, not computed
    # closed: nothing more is queued
    again = client.post("/api/compare/prefetch", json={**body, "targets": [0.5]})
    assert again.status_code == 202 and again.json() == {"queued": 0}


def test_prefetches_run_in_the_worker_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a worker process, the prefetches are computed there (this process's own
    # functions are made to fail, so an answer computed here would not be kept) and each
    # is then the page's cache hit, with the bytes this process computes for that request.
    def here(body: Any) -> bytes:
        raise AssertionError("computed in the server's process")

    for lane in ("compare", "curve"):
        monkeypatch.setitem(app_module._BACKGROUND, lane, here)
    app = create_app(worker_process=True)
    try:
        client = TestClient(app)
        shown = {"logits": [0, 4], "targets": [0.3, 0.7], "dtype": "bfloat16"}
        r = client.post(
            "/api/compare/prefetch", json={"compare": shown, "element": 0, "targets": [0.29, 1]}
        )
        assert r.status_code == 202 and r.json() == {"queued": 2}
        common = {"dtype": "float16", "z_min": -20, "z_max": 20, "points": 21}
        r = client.post("/api/curve/prefetch", json={**common, "targets": [0.25, 1]})
        assert r.status_code == 202 and r.json() == {"queued": 2}
        assert app.state.prefetch.wait(timeout=120)
        assert app.state.prefetch.computed_by == {"compare": 2, "curve": 2}
        kept = client.post("/api/compare", json={**shown, "targets": [0.29, 0.7]})
        curve = client.post("/api/curve", json={**common, "target": 0.25})
        assert app.state.compare_cache.misses == 0 and app.state.curve_cache.misses == 0
    finally:
        app.state.prefetch.close()
        app.state.worker.shutdown()
    monkeypatch.undo()
    fresh = TestClient(create_app())
    assert fresh.post("/api/compare", json={**shown, "targets": [0.29, 0.7]}).content == (
        kept.content
    )
    assert fresh.post("/api/curve", json={**common, "target": 0.25}).content == curve.content
    # by hand, as above: d mean / dz_0 = (1/2 - 148/2**9) / 2 = 27/256 in bfloat16
    assert kept.json()["exact"]["grad_rounded"][0] == 27 / 256
    # the curve at z = 0 for y = 1/4: the loss is ln 2 (float16: 0.6931 within 2**-11)
    row = next(r for r in curve.json()["rows"] if r["name"] == "torch.logits")
    assert curve.json()["z"][10] == 0.0 and row["value"][10] == pytest.approx(np.log(2), rel=2**-11)


def test_a_worker_prefetch_under_way_at_exit_ends_quietly(tmp_path: Any) -> None:
    # The interpreter exits while the worker computes a prefetch and more wait: the pool
    # shuts down first (before atexit), the prefetches stop without a logged failure, and
    # the process exits 0.
    import subprocess
    import sys

    script = tmp_path / "exit.py"
    script.write_text(
        "import time\n"
        "from fastapi.testclient import TestClient\n"
        "from logitlab.ui.explore.app import create_app\n"
        "if __name__ == '__main__':\n"
        "    app = create_app(worker_process=True)\n"
        "    client = TestClient(app)\n"
        "    body = {'z_min': -30, 'z_max': 30, 'points': 301,\n"
        "            'targets': [k / 100 for k in range(101)]}\n"
        "    assert client.post('/api/curve/prefetch', json=body).status_code == 202\n"
        "    while app.state.prefetch.computed < 1:\n"
        "        time.sleep(0.05)\n"
        "    print('computed', app.state.prefetch.computed)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("computed ")
    assert "Traceback" not in done.stderr and "failed" not in done.stderr, done.stderr
