"""The ``logitlab`` command line: one Typer app with compare, sigmoid, audit, explore, lint.

Nothing heavy is imported at module level: each command imports what it needs when it
runs, so ``logitlab lint`` starts without loading torch or NumPy.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="logitlab",
    help="See, measure and fix what floating point does to probabilities, logits and losses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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


def main() -> None:
    """Console-script entry point."""
    app()
