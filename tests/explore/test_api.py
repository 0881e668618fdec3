"""The explorer's JSON API through FastAPI's TestClient: results, and every kind of bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logitlab import exact
from logitlab.analysis.compare import compare
from logitlab.ui.explore.app import (
    MAX_API_ELEMENTS,
    MAX_BODY_BYTES,
    CompareRequest,
    create_app,
)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def post_raw(client: TestClient, path: str, raw: str | bytes) -> Any:
    return client.post(path, content=raw, headers={"content-type": "application/json"})


def row(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in data["rows"] if r["name"] == name)


def test_compare_the_posts_example(client: TestClient) -> None:
    r = client.post("/api/compare", json={"logits": [20, 20], "targets": [0.3, 0.7]})
    assert r.status_code == 200
    data = r.json()
    assert row(data, "torch.probabilities")["value"] == [50.0]
    assert row(data, "torch.logits")["value"] == [10.0]
    assert row(data, "torch.probabilities")["flags"] == [
        "sigmoid saturated",
        "log clamped",
        "gradient vanished",
    ]
    assert data["exact"]["value_repr"] == ["10.0"]
    # the first float32 at or above 24 ln 2 = 16.6355323 (derived in tests/audit/test_run.py)
    assert data["saturation"]["one_from"] == 16.63553237915039
    assert np.float32(16.63553237915039) >= 24 * math.log(2) > np.float32(16.635530471801758)
    assert any("From z = 16.635532 up" in s for s in data["explanation"])
    assert any("torch.probabilities clamps each log at −100" in s for s in data["explanation"])


def test_compare_matches_compare_to_dict(client: TestClient) -> None:
    """The page and the CLI never disagree: the API returns compare()'s dictionary."""
    body = {
        "logits": [-2, 2.5, 30],
        "targets": [0.3, 0.7, 1e-3],
        "dtype": "bfloat16",
        "weight": [1, 2, 0.5],
        "pos_weight": 3,
        "reduction": "none",
    }
    data = client.post("/api/compare", json=body).json()
    expected = json.loads(
        json.dumps(
            compare(
                body["logits"],
                body["targets"],
                dtype="bfloat16",
                weight=body["weight"],
                pos_weight=3,
                reduction="none",
            ).to_dict()
        )
    )
    for key in ("dtype", "reduction", "inputs", "exact", "rows", "flags", "notes"):
        assert data[key] == expected[key], key


def test_compare_defaults_are_the_posts_first_example(client: TestClient) -> None:
    data = client.post("/api/compare", json={}).json()
    assert data["inputs"]["logits"] == [-2.0, 2.0]
    assert data["dtype"] == "float32"
    assert row(data, "torch.probabilities")["flags"] == []


def test_infinite_logits_are_allowed_and_come_back_as_strings(client: TestClient) -> None:
    r = post_raw(client, "/api/compare", '{"logits": [Infinity, -1e400], "targets": [0.5]}')
    assert r.status_code == 200
    assert r.json()["inputs"]["logits"] == ["Infinity", "-Infinity"]


def test_out_of_range_number_literals_round_to_the_nearest_float(client: TestClient) -> None:
    # 1e999999 is beyond float64: JSON parsing rounds it to +inf, an allowed logit (not a 422),
    # and 1e-999999 to 0.0; the response says so.
    raw = '{"logits": [1e999999, 1e-999999], "targets": [0.5, 0.5], "reduction": "none"}'
    r = post_raw(client, "/api/compare", raw)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["inputs"]["logits"] == ["Infinity", 0.0]
    # exact losses: softplus(inf) / 2 + softplus(-inf) / 2 = inf, and ln 2 at z = 0
    assert data["exact"]["value"][0] == "Infinity"  # the one encoding of non-finite numbers
    assert float(data["exact"]["value"][1]) == pytest.approx(math.log(2), rel=1e-15)


BAD_COMPARE = [
    # (raw JSON body, field the error must name)
    ('{"logits": []}', "logits"),
    ('{"logits": ["a"]}', "logits"),
    ('{"logits": [[1]]}', "logits"),
    ('{"logits": "1, 2"}', "logits"),
    ('{"logits": null}', "logits"),
    ('{"logits": [NaN]}', "logits"),
    ('{"logits": [1, NaN]}', "logits"),  # a NaN after a valid element
    ('{"logits": [' + ",".join(["1"] * (MAX_API_ELEMENTS + 1)) + "]}", "logits"),
    ('{"logits": [1, 2], "targets": [0.3, 0.4, 0.5]}', "targets"),
    ('{"targets": [1.5, 0.5]}', "targets"),
    ('{"targets": [-0.1, 0.5]}', "targets"),
    ('{"targets": [NaN, 0.5]}', "targets"),
    ('{"targets": [Infinity, 0.5]}', "targets"),
    ('{"targets": []}', "targets"),
    ('{"dtype": "float8"}', "dtype"),
    ('{"dtype": 32}', "dtype"),
    ('{"dtype": "' + "x" * 100 + '"}', "dtype"),
    ('{"reduction": "max"}', "reduction"),
    ('{"reduction": 1}', "reduction"),
    ('{"weight": [1, 2, 3]}', "weight"),
    ('{"weight": "heavy"}', "weight"),
    ('{"weight": [NaN, 1]}', "weight"),
    ('{"weight": [1e300, 1], "dtype": "float16"}', "weight"),
    ('{"pos_weight": [Infinity, 1]}', "pos_weight"),
    ('{"pos_weight": [1, 2, 3]}', "pos_weight"),
    ('{"colour": "red"}', "colour"),
    ('{"frameworks": ["fortran"]}', "frameworks"),
    ('{"formulations": ["torch.nope"]}', "formulations"),
    ('{"frameworks": "torch"}', "frameworks"),
]


@pytest.mark.parametrize(("raw", "field"), BAD_COMPARE)
def test_compare_bad_input_is_422_naming_the_field(
    client: TestClient, raw: str, field: str
) -> None:
    r = post_raw(client, "/api/compare", raw)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail and all(isinstance(d["msg"], str) and d["msg"] for d in detail)
    assert detail[0]["loc"][:2] == ["body", field], detail


@pytest.mark.parametrize(
    "raw", ["", "{", "[1, 2]", '"logits"', "null", '{"logits": [1,}', "\x00\xff"]
)
def test_malformed_json_is_422(client: TestClient, raw: str) -> None:
    r = post_raw(client, "/api/compare", raw)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][0] == "body"


def test_oversized_body_is_413_before_parsing(client: TestClient) -> None:
    raw = '{"logits": [' + ",".join(["1.000000001"] * (MAX_BODY_BYTES // 10)) + "]}"
    r = post_raw(client, "/api/compare", raw)
    assert r.status_code == 413
    assert r.json()["detail"][0]["msg"] == "request body is too large"


def test_oversized_chunked_body_is_413(client: TestClient) -> None:
    def chunks() -> Any:
        yield b'{"logits": ['
        for _ in range(MAX_BODY_BYTES // 1000 + 2):
            yield b"1," * 500
        yield b"1]}"

    r = client.post("/api/compare", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_wrong_content_type_is_422(client: TestClient) -> None:
    r = client.post("/api/compare", content=b"logits=1", headers={"content-type": "text/plain"})
    assert r.status_code == 422


def test_curve(client: TestClient) -> None:
    r = client.post("/api/curve", json={"target": 0.3, "points": 601})
    assert r.status_code == 200
    data = r.json()
    assert data["points"] == len(data["z"]) == 601
    assert data["z"][0] == -300.0 and data["z"][-1] == 300.0
    probs = row(data, "torch.probabilities")
    logits = row(data, "torch.logits")
    i = data["z"].index(20.0)
    # float32 y = 0.30000001192..., 1 - y = 0.69999998807... exactly.  Probabilities path:
    # log(1 - sigmoid(20)) = log(0) clamps to -100, (1 - y) * 100 = 69.9999988 rounds to 70
    # (float32 spacing there is 2**-17).  Logits path: (1 - y) * 20 + log1p(e**-20)
    # = 13.99999976 + 2e-9 rounds to 14 (spacing 2**-20).
    assert probs["value"][i] == 70.0
    assert logits["value"][i] == 14.0
    y = float(np.float32(0.3))
    assert data["exact"]["value"][i] == pytest.approx(float(exact.bce(20.0, y)), rel=1e-15)
    (lo, hi), *_ = [iv for iv in probs["flags"]["sigmoid saturated"] if iv[1] == 300.0]
    # 601 points on [-300, 300] are the integers; saturation starts at the first float32
    # >= 24 ln 2 = 16.64, so the first saturated grid point is 17.
    assert data["z"][i - 3 : i] == [17.0, 18.0, 19.0]
    assert lo == 17.0 and hi == 300.0
    assert "gradient vanished" in probs["flags"]
    assert logits["flags"] == {}
    assert data["saturation"]["dtype"] == "float32"


def test_curve_zoom_and_dtype(client: TestClient) -> None:
    data = client.post(
        "/api/curve", json={"target": 0.7, "dtype": "half", "z_min": -20, "z_max": 20}
    ).json()
    assert data["dtype"] == "float16"
    assert data["z"][0] == -20 and data["z"][-1] == 20
    assert data["saturation"]["one_from"] == 8.3203125


BAD_CURVE = [
    ('{"target": 1.5}', "target"),
    ('{"target": -1}', "target"),
    ('{"target": NaN}', "target"),
    ('{"target": "a"}', "target"),
    ('{"target": null}', "target"),
    ('{"weight": Infinity}', "weight"),
    ('{"pos_weight": NaN}', "pos_weight"),
    ('{"dtype": "int8"}', "dtype"),
    ('{"points": 1}', "points"),
    ('{"points": 100000}', "points"),
    ('{"points": 2.5}', "points"),
    ('{"points": "many"}', "points"),
    ('{"z_min": -1e9}', "z_min"),
    ('{"z_max": 1e9}', "z_max"),
    ('{"z_min": NaN}', "z_min"),
    ('{"z_min": 5, "z_max": 1}', "z_max"),
    ('{"z_min": 5, "z_max": 5}', "z_max"),
    ('{"zmin": 5}', "zmin"),
]


@pytest.mark.parametrize(("raw", "field"), BAD_CURVE)
def test_curve_bad_input_is_422_naming_the_field(client: TestClient, raw: str, field: str) -> None:
    r = post_raw(client, "/api/curve", raw)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["body", field]


def test_info_and_saturation(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert info["dtypes"] == ["float16", "bfloat16", "float32", "float64"]
    assert {"torch.probabilities", "torch.logits"} <= {f["name"] for f in info["formulations"]}
    assert info["limits"]["max_curve_points"] == 2001
    sat = client.get("/api/saturation/bf16").json()
    assert (sat["one_from"], sat["zero_up_to"]) == (6.25, -89.0)
    r = client.get("/api/saturation/float128")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][1] == "dtype"


def test_page_and_its_renderer_are_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "cdn" not in page.text.lower()
    # the plots are drawn by the package's own canvas renderer, loaded before the page's
    # script; plotly.js (a 3.5 MB parse) is neither loaded nor served
    assert page.text.index("/static/lineplot.js") < page.text.index("/static/explore.js")
    assert "plotly" not in page.text.lower()
    js = client.get("/static/lineplot.js")
    assert js.status_code == 200 and "LinePlot" in js.text
    assert client.get("/static/plotly.min.js").status_code == 404
    assert client.get("/static/explore.js").status_code == 200
    assert client.get("/static/explore.css").status_code == 200
    assert client.get("/static/nothing.js").status_code == 404


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/api/compare", "/api/curve", "/api/info", "/api/saturation/{dtype}"} <= set(
        schema["paths"]
    )
    props = schema["components"]["schemas"]["CompareRequest"]["properties"]
    assert props["logits"]["maxItems"] == MAX_API_ELEMENTS


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
compare_bodies = st.fixed_dictionaries(
    {},
    optional={
        "logits": st.one_of(json_values, st.lists(st.floats(), min_size=1, max_size=5)),
        "targets": st.one_of(
            json_values, st.lists(st.floats(min_value=-0.5, max_value=1.5), min_size=1, max_size=5)
        ),
        "dtype": st.one_of(
            json_values, st.sampled_from(["float16", "bfloat16", "float32", "float64"])
        ),
        "weight": st.one_of(json_values, st.floats(), st.lists(st.floats(), max_size=5)),
        "pos_weight": st.one_of(json_values, st.floats(), st.lists(st.floats(), max_size=5)),
        "reduction": st.one_of(json_values, st.sampled_from(["mean", "sum", "none"])),
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=compare_bodies)
def test_compare_never_answers_5xx(client: TestClient, body: dict[str, Any]) -> None:
    r = post_raw(client, "/api/compare", json.dumps(body, allow_nan=True))
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.json()["detail"][0]["loc"][0] == "body"
    else:
        json.loads(r.text)  # strict JSON: NaN and infinities are strings


curve_bodies = st.fixed_dictionaries(
    {},
    optional={
        "target": st.one_of(json_values, st.floats(min_value=-0.5, max_value=1.5)),
        "dtype": st.one_of(
            json_values, st.sampled_from(["float16", "bfloat16", "float32", "float64"])
        ),
        "weight": st.one_of(json_values, st.floats()),
        "pos_weight": st.one_of(json_values, st.floats()),
        "z_min": st.one_of(json_values, st.floats(min_value=-1200, max_value=1200)),
        "z_max": st.one_of(json_values, st.floats(min_value=-1200, max_value=1200)),
        "points": st.one_of(json_values, st.integers(min_value=-5, max_value=2100)),
    },
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=curve_bodies)
def test_curve_never_answers_5xx(client: TestClient, body: dict[str, Any]) -> None:
    r = post_raw(client, "/api/curve", json.dumps(body, allow_nan=True))
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        data = json.loads(r.text)
        assert 2 <= data["points"] <= 2001
        assert all(isinstance(v, float) or v in ("NaN", "Infinity", "-Infinity") for v in data["z"])
        assert not any(isinstance(v, float) and math.isnan(v) for v in data["exact"]["value"])


def test_frameworks_choose_the_rows_for_compare_and_curve(client: TestClient) -> None:
    from logitlab.analysis.curves import select

    default = [f.name for f in select()]
    data = client.post("/api/compare", json={"logits": [20, 20]}).json()
    assert [r["name"] for r in data["rows"]] == default
    assert "torch.probabilities" in default and "torch.logits" in default
    numpy_rows = [f.name for f in select(frameworks=["numpy"])]
    assert numpy_rows  # NumPy is a core dependency: its rows are always there
    data = client.post("/api/compare", json={"logits": [20, 20], "frameworks": ["numpy"]}).json()
    assert [r["name"] for r in data["rows"]] == numpy_rows
    curve = client.post(
        "/api/curve", json={"target": 0.3, "points": 11, "frameworks": ["numpy"]}
    ).json()
    assert [r["name"] for r in curve["rows"]] == numpy_rows
    data = client.post(
        "/api/compare", json={"logits": [20, 20], "formulations": ["torch.logits"]}
    ).json()
    assert [r["name"] for r in data["rows"]] == ["torch.logits"]


def test_subnormal_logits_are_answered(client: TestClient) -> None:
    # The exact gradient at z = 1e-320, y = 0.5 cancels some 1070 bits; it is still computed.
    r = client.post(
        "/api/curve",
        json={"target": 0.5, "z_min": -1e-320, "z_max": 1e-320, "points": 3, "dtype": "float64"},
    )
    assert r.status_code == 200
    assert r.json()["exact"]["grad"] == [-2.5e-321, 0.0, 2.5e-321]


def test_a_curve_range_of_one_float32_value_is_422_naming_z_max(client: TestClient) -> None:
    raw = json.dumps({"target": 0.5, "z_min": 0.0, "z_max": 5.1796787777200276e-188})
    r = post_raw(client, "/api/curve", raw)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"][:2] == ["body", "z_max"], detail
    assert "single float32 value (0.0)" in detail[0]["msg"]


# The losses' endpoints: a valid body of each kind with one to three fields replaced by
# any JSON value or by a value of the right type at the edges, so most examples get past
# the field checks and reach the core.
_LOSS_BASES = [
    {"loss": "softmax-ce", "logits": [3, "-inf", 1], "target": 0},
    {"loss": "softmax-ce", "logits": [[0, -110], [1, 2]], "target": [1, 0]},
    {"loss": "softmax-ce", "logits": [[3, 1]], "target": [[0.5, 0.5]]},
    {"loss": "focal", "logits": [-3, 3], "targets": [1, 0]},
    {"loss": "bce", "logits": [1, 2], "targets": [0, 1]},
]
_EDGES = st.sampled_from(
    [0, -1, 1, 2, 5, -100, 0.5, 1.5, -0.5, 1e308, -1e308, "inf", "-inf", "NaN", None, []]
)
_LOSS_FIELDS = [
    "loss", "logits", "target", "targets", "dtype", "weight", "pos_weight", "ignore_index",
    "label_smoothing", "alpha", "gamma", "reduction", "frameworks",
]  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn, bases: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
    body = dict(draw(st.sampled_from(bases)))
    for name in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True)):
        body[name] = draw(st.one_of(_EDGES, json_values, st.lists(_EDGES, max_size=4)))
    return body


def _answered_or_refused(r: Any) -> None:
    """A 200 in strict JSON (NaN and infinities as strings) or a 422 with a message."""
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.json()["detail"]  # a message, not an empty error
    else:
        json.loads(r.text)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_mutated(_LOSS_BASES, _LOSS_FIELDS))
def test_compare_loss_never_answers_5xx(client: TestClient, body: dict[str, Any]) -> None:
    _answered_or_refused(post_raw(client, "/api/compare_loss", json.dumps(body, allow_nan=True)))


_CURVE_LOSS_BASES = [
    {"loss": "softmax-ce", "logits": [3, "-inf", 1], "target": 0, "sweep": 0, "points": 21},
    {"loss": "focal", "target": 1, "points": 21},
]
_CURVE_LOSS_FIELDS = [
    "loss", "logits", "target", "sweep", "label_smoothing", "alpha", "gamma", "dtype",
    "z_min", "z_max", "points",
]  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_mutated(_CURVE_LOSS_BASES, _CURVE_LOSS_FIELDS))
def test_curve_loss_never_answers_5xx(client: TestClient, body: dict[str, Any]) -> None:
    _answered_or_refused(post_raw(client, "/api/curve_loss", json.dumps(body, allow_nan=True)))


_PREFETCH_BASES = [
    {"compare": {"logits": [-2, 2], "targets": [0.3, 0.7]}, "element": 0, "targets": [0.5, 0.29]},
    {"compare": {"logits": [1e4], "targets": [1], "dtype": "float16"}, "element": 0, "targets": [0]},  # noqa: E501
]  # fmt: skip
_COMPARE_FIELDS = ["logits", "targets", "dtype", "weight", "pos_weight", "reduction", "element"]


@st.composite
def _prefetch_bodies(draw: st.DrawFn) -> dict[str, Any]:
    # The prefetch's own fields mutated, or those of the comparison inside it.
    if draw(st.booleans()):
        return draw(_mutated(_PREFETCH_BASES, ["compare", "element", "targets"]))
    body = dict(draw(st.sampled_from(_PREFETCH_BASES)))
    body["compare"] = draw(_mutated([body["compare"]], _COMPARE_FIELDS))
    return body


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_prefetch_bodies())
def test_compare_prefetch_never_answers_5xx(client: TestClient, body: dict[str, Any]) -> None:
    # 202 (queued, in strict JSON) or a 422 with a message: never a 5xx.  What a 202
    # queued is what the page asks for on moving y there, which then answers too.
    r = post_raw(client, "/api/compare/prefetch", json.dumps(body, allow_nan=True))
    assert r.status_code in (202, 422), r.text
    if r.status_code == 422:
        assert r.json()["detail"]
        return
    assert set(r.json()) == {"queued"}
    moved = CompareRequest(**body["compare"]).model_dump()  # its defaults filled in
    moved["targets"] = list(moved["targets"])
    moved["targets"][body["element"]] = body["targets"][0]
    _answered_or_refused(post_raw(client, "/api/compare", json.dumps(moved, allow_nan=True)))
