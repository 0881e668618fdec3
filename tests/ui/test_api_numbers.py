"""The explorer API takes numbers as numbers: a boolean is a 422 naming the field."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from logitlab.ui.explore.app import create_app

client = TestClient(create_app(torch_threads=None, warm_up=False))


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/curve", {"z_max": False}, "z_max"),
        ("/api/curve", {"target": True}, "target"),
        ("/api/curve", {"points": True}, "points"),
        ("/api/curve", {"weight": False}, "weight"),
        ("/api/compare", {"logits": [True, 2.0]}, "logits"),
        ("/api/compare", {"targets": [0.5, False]}, "targets"),
        ("/api/compare", {"weight": True}, "weight"),
        ("/api/compare", {"pos_weight": [True]}, "pos_weight"),
    ],
)
def test_booleans_are_not_numbers(url: str, body: dict, field: str) -> None:
    response = client.post(url, json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(d["loc"][:2] == ["body", field] for d in detail), detail


@pytest.mark.parametrize("body", [b"{bad json", b"", b"[1, 2]", b'"text"', b"null"])
def test_every_invalid_body_is_a_422(body: bytes) -> None:
    response = client.post(
        "/api/compare", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, (body, response.status_code, response.text)
