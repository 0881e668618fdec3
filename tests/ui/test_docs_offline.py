"""The explorer's /docs works offline: every asset is served by the app itself."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("swagger_ui_bundle")

from fastapi.testclient import TestClient

from logitlab.ui.explore.app import create_app


def test_docs_page_loads_nothing_from_outside() -> None:
    client = TestClient(create_app(torch_threads=None, warm_up=False))
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\\s*["']([^"']+)["']""", page.text)
    assert urls, page.text
    for url in urls:
        assert url.startswith("/"), url  # same origin, no CDN
        assert client.get(url).status_code == 200, url
    assert "cdn" not in page.text.lower()
