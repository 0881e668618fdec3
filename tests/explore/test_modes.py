"""The explorer's multi-class (softmax cross-entropy) and focal modes: /api/compare_loss and
/api/curve_loss against values worked out here with mpmath and with torch called directly,
bad inputs answered 4xx naming the argument, and the page in a browser (slow)."""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from logitlab.ui.explore.app import create_app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def row(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in data["rows"] if r["name"] == name)


def f32(x: Any) -> float:
    return float(np.float32(float(x)))


def num(v: Any) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v)


def softmax_ce_mp(z: list[float], t: list[float]) -> Any:
    """-sum t_i log softmax(z)_i in 60-digit arithmetic (masked classes carry t_i = 0)."""
    with mpmath.workdps(60):
        zs = [mpmath.mpf(v) for v in z if v != -math.inf]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in zs))
        return -mpmath.fsum(
            mpmath.mpf(ti) * (mpmath.mpf(zi) - lse) for zi, ti in zip(z, t) if ti != 0
        )


def focal_mp(z: float, y: float, alpha: float, gamma: float) -> Any:
    with mpmath.workdps(60):
        p = 1 / (1 + mpmath.exp(-mpmath.mpf(z)))
        ce = -(y * mpmath.log(p) + (1 - y) * mpmath.log(1 - p))
        p_t = p * y + (1 - p) * (1 - y)
        a_t = alpha * y + (1 - alpha) * (1 - y)
        return a_t * (1 - p_t) ** gamma * ce


def torch_ce(z: list[float], target: Any, label_smoothing: float = 0.0) -> float:
    torch = pytest.importorskip("torch")
    t = torch.tensor(target) if isinstance(target, list) else torch.tensor([target])
    if isinstance(target, list):
        t = t.to(torch.float32).unsqueeze(0)
    out = torch.nn.functional.cross_entropy(
        torch.tensor([z], dtype=torch.float32), t, label_smoothing=label_smoothing
    )
    return float(out)


# ---- softmax cross-entropy ------------------------------------------------------------------


def test_softmax_far_logit_log_of_softmax_breaks(client: TestClient) -> None:
    r = client.post(
        "/api/compare_loss", json={"loss": "softmax-ce", "logits": [0, -110], "target": 1}
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["quantity"] == "softmax_ce"
    expected = softmax_ce_mp([0.0, -110.0], [0.0, 1.0])  # 110 + log1p(e^-110)
    assert data["exact"]["value_rounded"] == [f32(expected)]
    assert row(data, "torch.cross_entropy")["value"] == [torch_ce([0.0, -110.0], 1)]
    assert row(data, "torch.cross_entropy")["value"] == [f32(expected)]
    bad = row(data, "torch.log_of_softmax")
    assert bad["value"] == ["Infinity"]
    assert "log of 0" in bad["flags"] and "softmax underflow" in bad["flags"]
    assert row(data, "torch.cross_entropy")["flags"] == []
    assert any("torch.log_of_softmax" in s for s in data["explanation"])


def test_softmax_masked_logit_nan_paths_flagged_safe_ones_not(client: TestClient) -> None:
    z = [3.0, -math.inf, 1.0]
    r = client.post(
        "/api/compare_loss", json={"loss": "softmax-ce", "logits": [3, "-inf", 1], "target": 0}
    )
    assert r.status_code == 200, r.text
    data = r.json()
    expected = softmax_ce_mp(z, [1.0, 0.0, 0.0])  # log(1 + e^-2)
    assert abs(data["exact"]["value_rounded"][0] - f32(expected)) == 0
    safe = row(data, "torch.cross_entropy")
    assert safe["value"] == [torch_ce(z, 0)]
    assert "masked NaN" not in safe["flags"]
    assert "masked NaN" in row(data, "torch.log_of_softmax")["flags"]
    assert "masked NaN" in row(data, "torch.handwritten")["flags"]
    assert row(data, "torch.handwritten")["value"] == ["NaN"]
    text = " ".join(data["explanation"])
    assert "masked" in text and "torch.cross_entropy" in text


def test_softmax_distribution_and_label_smoothing(client: TestClient) -> None:
    z, t, eps = [1.0, 2.0, 3.0], [0.25, 0.25, 0.5], 0.1
    body = {"loss": "softmax-ce", "logits": z, "target": t, "label_smoothing": eps}
    r = client.post("/api/compare_loss", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    smoothed = [(1 - eps) * ti + eps / 3 for ti in t]
    expected = softmax_ce_mp(z, smoothed)
    got = data["exact"]["value_rounded"][0]
    assert got == f32(expected)
    assert row(data, "torch.cross_entropy")["value"] == [torch_ce(z, t, eps)]


# ---- focal -------------------------------------------------------------------------------


def test_focal_saturated_logit(client: TestClient) -> None:
    body = {"loss": "focal", "logits": [20, -3], "targets": [1, 1], "alpha": 0.25, "gamma": 2}
    r = client.post("/api/compare_loss", json={**body, "reduction": "none"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["quantity"] == "focal"
    assert data["exact"]["value_rounded"] == [
        f32(focal_mp(20, 1, 0.25, 2)),
        f32(focal_mp(-3, 1, 0.25, 2)),
    ]
    naive = row(data, "torch.naive_focal")
    assert num(naive["value"][0]) != num(naive["value"][0])  # NaN at z = 20
    assert "non-finite" in naive["flags"]
    assert any("torch.naive_focal" in s for s in data["explanation"])


def test_focal_alpha_none_and_mean(client: TestClient) -> None:
    body = {"loss": "focal", "logits": [0.5, -1.5], "targets": [1, 0], "alpha": None, "gamma": 1.5}
    r = client.post("/api/compare_loss", json=body)
    assert r.status_code == 200, r.text
    with mpmath.workdps(60):

        def unweighted(z: float, y: float) -> Any:
            p = 1 / (1 + mpmath.exp(-mpmath.mpf(z)))
            p_t = p if y == 1 else 1 - p
            return (1 - p_t) ** mpmath.mpf(1.5) * -mpmath.log(p_t)

        expected = (unweighted(0.5, 1) + unweighted(-1.5, 0)) / 2
    assert r.json()["exact"]["value_rounded"] == [f32(expected)]


def test_bce_through_the_same_endpoint(client: TestClient) -> None:
    r = client.post("/api/compare_loss", json={"loss": "bce", "logits": [20], "targets": [0.3]})
    assert r.status_code == 200, r.text
    with mpmath.workdps(60):
        expected = mpmath.log1p(mpmath.exp(20)) - mpmath.mpf(0.3) * 20
    data = r.json()
    assert data["exact"]["value_rounded"] == [f32(expected)]
    assert "log clamped" in row(data, "torch.probabilities")["flags"]


# ---- curves ------------------------------------------------------------------------------


def test_softmax_curve_against_mpmath_and_torch(client: TestClient) -> None:
    body = {
        "loss": "softmax-ce",
        "logits": [0, 0, 0],
        "target": 0,
        "sweep": 0,
        "z_min": -30,
        "z_max": 30,
        "points": 5,
    }
    r = client.post("/api/curve_loss", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["z"] == [-30.0, -15.0, 0.0, 15.0, 30.0]
    assert data["exact"]["value"] == [f32(softmax_ce_mp([z, 0, 0], [1, 0, 0])) for z in data["z"]]
    ce = row(data, "torch.cross_entropy")["value"]
    assert ce == [torch_ce([z, 0.0, 0.0], 0) for z in data["z"]]
    # d loss / d z_0 = softmax_0 - 1
    with mpmath.workdps(60):
        grads = [f32(mpmath.exp(z) / (mpmath.exp(z) + 2) - 1) for z in data["z"]]
    assert data["exact"]["grad"] == grads


def test_softmax_curve_masked_flags_the_whole_sweep(client: TestClient) -> None:
    body = {"loss": "softmax-ce", "logits": [0, "-inf", 1], "target": 0, "points": 7}
    r = client.post("/api/curve_loss", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["sweep"] == 0  # the target class by default
    assert row(data, "torch.log_of_softmax")["flags"]["masked NaN"] == [[-30.0, 30.0]]
    assert "masked NaN" not in row(data, "torch.cross_entropy")["flags"]


def test_focal_curve_against_mpmath(client: TestClient) -> None:
    body = {"loss": "focal", "target": 1, "alpha": 0.25, "gamma": 2, "z_min": -2, "z_max": 2}
    r = client.post("/api/curve_loss", json={**body, "points": 5})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["z"] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert data["exact"]["value"] == [f32(focal_mp(z, 1, 0.25, 2)) for z in data["z"]]


# ---- bad input: 4xx, a message naming the argument, never 5xx -----------------------------

BAD_COMPARE = [
    ({"loss": "softmax-ce", "logits": [1, 2], "target": 5}, "target", "outside"),
    ({"loss": "softmax-ce", "logits": [1, 2]}, "target", "target"),
    (
        {"loss": "softmax-ce", "logits": [1, 2], "target": 0, "label_smoothing": 2},
        "label_smoothing",
        "outside",
    ),
    ({"loss": "softmax-ce", "logits": [1, 2], "target": [0.5, 0.2, 0.3]}, "target", ""),
    (
        {"loss": "softmax-ce", "logits": [1, 2], "target": 0, "alpha": 0.5},
        "alpha",
        "does not apply",
    ),
    (
        {"loss": "focal", "logits": [1], "targets": [1], "label_smoothing": 0.1},
        "label_smoothing",
        "does not apply",
    ),
    ({"loss": "focal", "logits": [1], "targets": [1], "gamma": -1}, "gamma", ""),
    ({"loss": "focal", "logits": [1], "targets": [1], "alpha": 2}, "alpha", ""),
    ({"loss": "focal", "logits": [1], "targets": [2]}, "targets", ""),
    ({"loss": "focal", "logits": [1]}, "targets", ""),
    ({"loss": "focal", "logits": [[1]], "targets": [1]}, "logits", "flat"),
    ({"loss": "hinge", "logits": [1]}, "loss", "unknown loss"),
    ({"loss": "softmax-ce", "logits": [1, "abc"], "target": 0}, "logits", ""),
    ({"loss": "softmax-ce", "logits": [1, 2], "target": 0, "dtype": "float8"}, "dtype", ""),
]


@pytest.mark.parametrize(("body", "argument", "words"), BAD_COMPARE)
def test_bad_compare_inputs(
    client: TestClient, body: dict[str, Any], argument: str, words: str
) -> None:
    r = client.post("/api/compare_loss", json=body)
    assert 400 <= r.status_code < 500, r.text
    detail = r.json()["detail"][0]
    assert argument in detail["loc"], detail
    assert words in detail["msg"]
    assert "\n" not in detail["msg"]


BAD_CURVE = [
    ({"loss": "softmax-ce", "logits": [0, "-inf"], "target": 0, "sweep": 1}, "sweep", "masked"),
    ({"loss": "softmax-ce", "logits": [0, 1], "target": 0, "sweep": 4}, "sweep", "not a class"),
    ({"loss": "softmax-ce", "logits": [0, 1], "target": 0, "points": 100000}, "points", "outside"),
    ({"loss": "softmax-ce", "logits": [0, 1], "target": 0, "z_min": 5, "z_max": 1}, "z_max", ""),
    ({"loss": "softmax-ce", "logits": [0, 1], "target": 0, "z_max": 1e9}, "z_max", "outside"),
    ({"loss": "focal", "target": 1, "sweep": 0}, "sweep", "does not apply"),
    ({"loss": "focal", "target": [1, 0]}, "target", ""),
    ({"loss": "focal", "target": 3}, "target", ""),
    ({"loss": "bce", "target": 0.3}, "loss", ""),
]


@pytest.mark.parametrize(("body", "argument", "words"), BAD_CURVE)
def test_bad_curve_inputs(
    client: TestClient, body: dict[str, Any], argument: str, words: str
) -> None:
    r = client.post("/api/curve_loss", json=body)
    assert 400 <= r.status_code < 500, r.text
    detail = r.json()["detail"][0]
    assert argument in detail["loc"], detail
    assert words in detail["msg"]


def test_odd_inputs_never_5xx(client: TestClient) -> None:
    bodies: list[Any] = [
        {"loss": "softmax-ce", "logits": ["-inf", "-inf"], "target": 0},
        {"loss": "softmax-ce", "logits": [1, 2], "target": True},
        {"loss": "softmax-ce", "logits": [], "target": 0},
        {"loss": "softmax-ce", "logits": [1e308, -1e308], "target": 1, "dtype": "float16"},
        {"loss": "softmax-ce", "logits": [1, 2], "target": [0.5, 0.5], "ignore_index": 0},
        {"loss": "focal", "logits": ["inf"], "targets": [0.5]},
        {"loss": "focal", "logits": [1e-40], "targets": [0.5], "gamma": 0.5},
        {"loss": None},
        [1, 2, 3],
    ]
    for body in bodies:
        for path in ("/api/compare_loss", "/api/curve_loss"):
            r = client.post(path, json=body)
            assert r.status_code < 500, (path, body, r.text)


# ---- the page ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
def test_browser_multiclass_mask(live_server: str) -> None:
    from tests.explore.chromium import chromium

    with chromium() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(live_server + "/")
        page.wait_for_function("window.__explore && window.__explore.rendered >= 1")
        page.click("#mode-softmax-ce")
        wait = "window.__modes.seq > {} && window.__modes.shown()"
        page.wait_for_function(wait.format(0), timeout=60_000)
        assert page.locator("#lesson").is_hidden()
        flags = page.locator("#mode-table tr[data-name='torch.log_of_softmax'] td.flags")
        assert "masked NaN" not in flags.inner_text()
        seq = page.evaluate("window.__modes.seq")
        page.check("#mc-mask1")
        page.wait_for_function(wait.format(seq), timeout=60_000)
        assert page.locator("#mc-z1").input_value() == "-inf"
        assert "masked NaN" in flags.inner_text()
        safe = page.locator("#mode-table tr[data-name='torch.cross_entropy'] td.flags")
        assert "masked NaN" not in safe.inner_text()
        assert page.locator("#mode-explanation li").count() > 0
        url = page.url
        assert "mode=softmax-ce" in url and "lz=2,-inf,-1" in url
        # The link is shareable: a fresh page opens in the same state.
        page2 = b.new_page()
        page2.goto(url)
        page2.wait_for_function(wait.format(0), timeout=60_000)
        assert page2.locator("#mc-mask1").is_checked()
        flags2 = page2.locator("#mode-table tr[data-name='torch.log_of_softmax'] td.flags")
        assert "masked NaN" in flags2.inner_text()
        # Back to BCE: the lesson and its page are as before.
        page2.click("#mode-bce")
        assert page2.locator("#lesson").is_visible()
        assert "mode=" not in page2.url
        assert errors == []


# The multi-class and focal modes on a phone: the results table becomes one card per code
# path (name, loss, error, gradient and flags inline), and nothing scrolls sideways.
PHONE_CASES = [
    (
        "/?mode=softmax-ce&lz=2,-inf,-1&t=0&ls=0&dtype=float32",
        {"loss": "softmax-ce", "logits": [2, "-inf", -1], "target": 0, "label_smoothing": 0},
        softmax_ce_mp([2.0, -math.inf, -1.0], [1.0, 0.0, 0.0]),
        "stable.softmax_ce",
        3,
    ),
    (
        "/?mode=focal&fz=3&fy=1&a=0.25&g=2&dtype=float32",
        {
            "loss": "focal",
            "logits": [3],
            "targets": [1],
            "alpha": 0.25,
            "gamma": 2,
            "reduction": "none",
        },
        focal_mp(3.0, 1.0, 0.25, 2.0),
        "stable.focal",
        1,
    ),
]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize(("query", "body", "exact", "accurate", "k"), PHONE_CASES)
def test_browser_modes_at_390px_are_cards(
    live_server: str, query: str, body: dict[str, Any], exact: Any, accurate: str, k: int
) -> None:
    from tests.explore.chromium import chromium

    with chromium() as b:
        ctx = b.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(live_server + query)
        page.wait_for_function("window.__modes && window.__modes.shown()", timeout=60_000)
        # No horizontal scroll anywhere on the page.
        width = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        assert width[0] <= width[1] == 390, width
        assert page.locator("#mode-table thead").is_hidden()
        # Every formulation the API answers (asked here on its own) has a card with its
        # numbers, each value labelled and inside the screen.
        answer = page.request.post(live_server + "/api/compare_loss", data=body).json()
        ok = [r for r in answer["rows"] if r["status"] == "ok"]
        assert len(ok) >= 3
        for r in answer["rows"]:
            card = page.locator(f"#mode-table tr[data-name='{r['name']}']")
            assert card.evaluate("(e) => getComputedStyle(e).display") == "block"
            box = card.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            assert r["name"] in card.locator("td.name").inner_text()
            if r["status"] != "ok":
                assert r["status"] in card.inner_text()
                continue
            columns = ["loss", "ulp", "grad"] + (["flags"] if r["flags"] else [])
            for column in columns:
                td = card.locator(f"td.{column}")
                cbox = td.bounding_box()
                assert cbox is not None and cbox["width"] > 0, (r["name"], column)
                assert cbox["x"] >= 0 and cbox["x"] + cbox["width"] <= 390, (r["name"], column)
                before = td.evaluate("(e) => getComputedStyle(e, '::before').content")
                assert before not in ("none", "normal", ""), (r["name"], column)
            assert card.locator("td.loss").inner_text() == ", ".join(r["value_repr"])
            for flag in r["flags"]:
                assert flag in card.locator("td.flags").inner_text()
            grad = card.locator("td.grad").inner_text().split("]")[0].strip("[ ")
            assert len(grad.split(",")) == k, grad
        # the curve is drawn (a canvas), its download button hidden on touch, as in the
        # binary CE mode
        assert page.locator("#mode-plot canvas[role='img']").count() == 1
        assert page.locator("#mode-plot .lp-png").count() == 1
        assert page.locator("#mode-plot .lp-png").is_hidden()
        # and the stable path's loss on its card is the exact loss (mpmath, here) rounded
        # once to float32 (its claim: correctly rounded)
        shown = page.locator(f"#mode-table tr[data-name='{accurate}'] td.loss").inner_text()
        assert np.float32(shown) == np.float32(float(exact))
        assert errors == []
