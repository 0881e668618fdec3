"""A live explorer server on a free loopback port, for the browser test and the benchmark."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest


def start_server() -> tuple[str, object, threading.Thread]:
    """Start uvicorn with the explorer app in a daemon thread; return (base URL, server, thread)."""
    import uvicorn

    from logitlab.ui.explore.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the explorer server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    url, server, thread = start_server()
    yield url
    # uvicorn ends once its requests are answered; a breakpoint search still running in
    # its thread pool when the process exits would abort it (logitlab.core.background).
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=300)
    if thread.is_alive():
        raise RuntimeError("the explorer server did not stop within 300 s")
