"""The lesson's steps, the error curves and the breakpoints endpoint.

Expected values are worked out here independently: thresholds by running torch.sigmoid on
neighbouring values, overflow from NumPy's own exp, onsets by a brute-force scan of every
float16 value, relative errors by hand.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pytest

from logitlab.analysis import lesson
from logitlab.core.errors import InputError

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from logitlab.ui.explore.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def test_four_steps_in_order_each_with_a_link_that_holds_its_state() -> None:
    steps = lesson.steps("float32")
    assert [s.key for s in steps] == ["agree", "break", "naive", "vanish"]
    assert [s.number for s in steps] == [1, 2, 3, 4]
    for s in steps:
        q = parse_qs(s.query())
        assert q["step"] == [s.key]
        assert [float(v) for v in q["z"][0].split(",")] == list(s.z)
        assert [float(v) for v in q["y"][0].split(",")] == list(s.y)
        assert q["dtype"] == [s.dtype]
        assert s.move and s.watch
    assert steps[0].z == (-2.0, 2.0) and steps[0].y == (0.3, 0.7)
    assert steps[1].z == (20.0, 20.0)
    assert steps[2].z == (-90.0,) and "numpy.naive" in (steps[2].formulations or ())


def test_the_thresholds_quoted_are_where_torch_sigmoid_rounds() -> None:
    torch = pytest.importorskip("torch")
    for dtype in lesson.LESSON_DTYPES:
        tdt = getattr(torch, dtype)
        move = lesson.step("break", dtype).move
        # the number after "past z = " is the first value where sigmoid is exactly 1
        quoted = float(move.split("past z = ")[1].split(",")[0])
        z = torch.tensor(quoted, dtype=tdt)
        below = torch.nextafter(z, torch.tensor(0.0, dtype=tdt))
        assert torch.sigmoid(z).item() == 1.0
        assert torch.sigmoid(below).item() < 1.0
        # the step's logits are past it
        assert lesson.step("break", dtype).z[0] > quoted
        assert torch.sigmoid(torch.tensor(lesson.step("vanish", dtype).z[0], dtype=tdt)) == 1


def test_the_hand_written_sigmoid_overflows_at_the_steps_logit() -> None:
    for dtype, np_dtype in (("float32", np.float32), ("float16", np.float16)):
        s = lesson.step("naive", dtype)
        with np.errstate(over="ignore"):
            assert np.isinf(np.exp(np_dtype(-s.z[0])))
        assert "overflows" in s.move
        # its view shows the break
        assert s.view[0] < s.z[0] < s.view[1]


def test_presets_cover_every_step_at_each_lesson_dtype() -> None:
    presets = lesson.presets()
    assert len(presets) == 4 * len(lesson.LESSON_DTYPES)
    assert {(p["step"], p["dtype"]) for p in presets} == {
        (k, d) for k in lesson.STEP_KEYS for d in ("float32", "bfloat16", "float16")
    }
    with pytest.raises(InputError) as err:
        lesson.step("nope")
    assert err.value.argument == "step"
    with pytest.raises(InputError) as err:
        lesson.steps("float64")
    assert err.value.argument == "dtype"


def test_relative_errors_by_hand() -> None:
    computed = np.array([1.0, 0.0, np.inf, np.nan, 2.0, 3.0])
    exact = np.array([2.0, 0.0, 1.0, 1.0, 0.0, -3.0])
    got = lesson.relative_errors(computed, exact)
    assert got is not None
    np.testing.assert_array_equal(got, [0.5, 0.0, np.nan, np.nan, np.inf, 2.0])
    assert lesson.relative_errors(None, exact) is None


def test_lesson_endpoint(client: TestClient) -> None:
    r = client.get("/api/lesson", params={"dtype": "bfloat16"})
    assert r.status_code == 200
    data = r.json()
    assert [s["key"] for s in data["steps"]] == list(lesson.STEP_KEYS)
    assert all(s["dtype"] == "bfloat16" for s in data["steps"])
    assert len(data["presets"]) == 12
    r = client.get("/api/lesson", params={"dtype": "float64"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "dtype"]


def test_curve_carries_relative_errors(client: TestClient) -> None:
    r = client.post("/api/curve", json={"target": 0.3, "z_min": -30, "z_max": 30, "points": 61})
    assert r.status_code == 200
    d = r.json()
    exact = np.array([float(v) for v in d["exact"]["value"]])
    for row in d["rows"]:
        if row["status"] != "ok":
            continue
        v = np.array([float(x) for x in row["value"]])
        rel = np.array([float(x) for x in row["relative_error"]])
        ok = np.isfinite(v)
        np.testing.assert_allclose(rel[ok], np.abs(v[ok] - exact[ok]) / np.abs(exact[ok]))
        assert np.isnan(rel[~ok]).all()
    # torch.probabilities at z = 30 (y = 0.3): the clamp's 0.7 * 100 against softplus(30) - 9
    row = next(r for r in d["rows"] if r["name"] == "torch.probabilities")
    expected = abs(0.7 * 100 - (softplus(30) - 0.3 * 30)) / (softplus(30) - 0.3 * 30)
    assert float(row["relative_error"][-1]) == pytest.approx(expected, rel=1e-5)
    # the same request again is the same answer (from the cache)
    again = client.post("/api/curve", json={"target": 0.3, "z_min": -30, "z_max": 30, "points": 61})
    assert again.json() == d


def test_compare_element_is_that_element_alone(client: TestClient) -> None:
    r = client.post(
        "/api/compare",
        json={"logits": [20, 20], "targets": [0.3, 0.7], "element": 1},
    )
    assert r.status_code == 200
    e = r.json()["element"]
    assert e["index"] == 1 and e["z"] == 20
    # the clamp: (1 - y) * 100 with y = 0.7 as float32
    one_minus_y = float(np.float32(1) - np.float32(0.7))
    assert float(e["rows"]["torch.probabilities"]["value"]) == pytest.approx(
        one_minus_y * 100, rel=1e-6
    )
    assert float(e["exact"]["value"]) == pytest.approx(softplus(20) - 0.7 * 20, rel=1e-6)
    assert float(e["rows"]["torch.probabilities"]["grad"]) == 0.0
    # reduction none: the element comes from the comparison itself; the same numbers
    r = client.post(
        "/api/compare",
        json={"logits": [20, 20], "targets": [0.3, 0.7], "element": 1, "reduction": "none"},
    )
    assert r.json()["element"] == e
    r = client.post("/api/compare", json={"logits": [1, 2], "targets": [0.5], "element": 2})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "element"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target": 1.5}, "target"),
        ({"target": "NaN"}, "target"),
        ({"dtype": "float8"}, "dtype"),
        ({"weight": True}, "weight"),
        ({"formulations": ["nope"]}, "formulations"),
    ],
)
def test_breakpoints_bad_input_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    r = client.post("/api/breakpoints", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"][0]["loc"]


def test_breakpoints_match_a_brute_force_scan_in_float16(client: TestClient) -> None:
    torch = pytest.importorskip("torch")
    r = client.post(
        "/api/breakpoints",
        json={"target": 0.3, "dtype": "float16", "formulations": ["torch.probabilities"]},
    )
    assert r.status_code == 200
    onsets = {(o["side"], o["criterion"]): o["z"] for o in r.json()["onsets"]}
    # every positive finite float16 value, one torch call: where does BCELoss(sigmoid(z))'s
    # gradient first turn NaN or infinite (y = 0.3: z > 0 is against the target)?
    bits = np.arange(1, 0x7C00, dtype=np.uint16)
    zs = bits.view(np.float16).astype(np.float32)
    z = torch.tensor(zs, dtype=torch.float16, requires_grad=True)
    y = torch.full_like(z, 0.3)
    torch.nn.functional.binary_cross_entropy(torch.sigmoid(z), y, reduction="sum").backward()
    assert z.grad is not None
    bad = ~torch.isfinite(z.grad)
    first = float(zs[int(torch.nonzero(bad)[0])])
    assert onsets[("against", "gradient non-finite")] == first


def test_the_readme_shows_the_explorers_screenshots() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "README.md").read_text(encoding="utf-8")
    section = text.split("## Explore:", 1)[1].split("\n## ", 1)[0]
    for path in ("docs/img/explore-lesson.png", "docs/img/explore-phone.png"):
        assert f"]({path})" in section, path
        data = (root / path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path


def test_breakpoints_where_the_exact_loss_overflows_float64_warn_of_nothing() -> None:
    # weight 2 at z near float64's largest value: the exact loss, about 2 * 0.7 * 1.8e308,
    # is beyond float64 and rounds to inf; converting the x87 reference must not leak
    # NumPy's "overflow encountered in cast" warning (nor change NumPy's error state).
    import warnings

    from logitlab.analysis.curves import select

    names = [f.name for f in select()]
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = lesson.breakpoints(0.3, "float64", names, 2.0, None)
    assert np.geterr() == before
    assert got["onsets"], "the search found the probability path's onsets"
