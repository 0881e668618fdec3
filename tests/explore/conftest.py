"""A live explorer server on a free loopback port, for the browser test and the benchmark."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest


def start_server(**app_options: Any) -> tuple[str, Any, threading.Thread]:
    """Start uvicorn with the explorer app (``create_app(**app_options)``) in a daemon
    thread; return (base URL, server, thread)."""
    import uvicorn

    from logitlab.ui.explore.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(**app_options), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the explorer server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def stop_server(server: Any, thread: threading.Thread, timeout: float = 300.0) -> None:
    """Stop what :func:`start_server` started.  uvicorn ends once its requests are
    answered; a breakpoint search still running in its thread pool when the process exits
    would abort it (logitlab.core.background), so this waits for that, and fails loudly
    if it does not come."""
    server.should_exit = True
    thread.join(timeout)
    if thread.is_alive():
        raise RuntimeError(f"the explorer server did not stop within {timeout:.0f} s")


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    url, server, thread = start_server()
    yield url
    stop_server(server, thread)
