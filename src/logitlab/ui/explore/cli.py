"""``logitlab explore``: serve the explorer page on loopback.

Module-level imports are stdlib and typer only; FastAPI and uvicorn are imported when the
command runs, so ``logitlab --help`` stays fast and works without the ``web`` extra.
"""

from __future__ import annotations

import ipaddress
import threading
import webbrowser

import typer

__all__ = ["register"]

WEB_EXTRA_HINT = "logitlab explore needs the web extra: pip install 'logitlab[web]'"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def explore(
    host: str = typer.Option("127.0.0.1", help="Address to bind; loopback by default."),
    port: int = typer.Option(8765, min=0, max=65535, help="Port (0 picks a free one)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
    torch_threads: int = typer.Option(
        1, min=1, help="PyTorch intra-op threads (1 keeps tiny-tensor latency low)."
    ),
) -> None:
    """Sliders for logits and targets, every BCE code path's loss, gradient and error, live."""
    try:
        import uvicorn

        from logitlab.ui.explore.app import create_app
    except ModuleNotFoundError as err:
        typer.echo(f"{WEB_EXTRA_HINT} ({err.name} is missing)", err=True)
        raise typer.Exit(2) from None
    if not _is_loopback(host):
        typer.echo(
            f"warning: binding {host} makes the explorer reachable from other machines",
            err=True,
        )
    app = create_app(torch_threads, warm_up=True, worker_process=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)

    def announce() -> None:
        # Wait until the socket is bound so the printed port is the real one (port 0).
        while not server.started:
            if server.should_exit:
                return
            threading.Event().wait(0.05)
        bound = port
        for s in server.servers:
            for sock in s.sockets:
                bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/"
        typer.echo(f"logitlab explore: {url}  (API docs: {url}docs; Ctrl+C to stop)")
        if open_browser:
            webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    server.run()


def register(app: typer.Typer) -> None:
    """Add the ``explore`` command to the ``logitlab`` app."""
    app.command("explore")(explore)
