"""The ``logitlab`` command line: one Typer app with compare, sigmoid, audit, explore, lint.

Nothing heavy is imported at module level: each command imports what it needs when it
runs, so ``logitlab lint`` starts without loading torch or NumPy.
"""

from __future__ import annotations

import functools
import sys
from typing import Any


def main() -> None:
    """Console-script entry point. ``logitlab lint`` with plainly valid arguments runs
    without building the Typer app (a third of the cold start); anything else (help,
    errors, other commands) goes through the app."""
    args = sys.argv[1:]
    if args[:1] == ["lint"]:
        from logitlab.lint._run import fast_main

        code = fast_main(args[1:])
        if code is not None:
            sys.exit(code)
    _build()()


def __getattr__(name: str) -> Any:
    if name == "app":
        return _build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _build() -> Any:
    """The Typer app, built on first use."""
    import importlib

    import typer
    from typer.core import TyperCommand

    from logitlab.ui.cli_common import Group, StrictCommand

    app = typer.Typer(
        name="logitlab",
        cls=Group,
        help="See, measure and fix what floating point does to probabilities, logits and losses.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        # Plain help: no "<bool>" metavars, and "[tool.logitlab.lint]" is text, not markup.
        rich_markup_mode=None,
    )

    def _version(value: bool) -> None:
        if value:
            from logitlab._version import __version__

            typer.echo(f"logitlab {__version__}")
            raise typer.Exit()

    @app.callback()
    def _main(
        version: bool = typer.Option(
            False,
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ) -> None:
        """See, measure and fix what floating point does to probabilities, logits and losses."""

    # Subcommand modules each define ``register(app)``; they keep their heavy imports inside
    # the command functions.
    _COMMAND_MODULES = (
        "logitlab.ui.cli_compare",
        "logitlab.ui.cli_audit",
        "logitlab.ui.explore.cli",
        "logitlab.lint.cli",
        "logitlab.watch.cli",
    )

    def _register_commands() -> None:
        for name in _COMMAND_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as err:
                if err.name is not None and name.startswith(err.name):
                    continue  # that capability is not in this build yet
                raise
            module.register(app)

    _register_commands()

    def _finish_commands() -> None:
        # Click cuts a summary at 45 characters with "..."; give each command its whole first line.
        # Every command refuses an option given twice.
        for info in app.registered_commands:
            if info.cls in (None, TyperCommand):
                info.cls = StrictCommand
            doc = (info.callback.__doc__ or "") if info.callback else ""
            first = doc.strip().split("\n\n")[0].replace("\n", " ")
            if info.short_help is None and first:
                info.short_help = " ".join(first.split())

    _finish_commands()

    return app
