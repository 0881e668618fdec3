"""Errors raised for bad input, each naming the argument it is about."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad user input.

    ``argument`` names the offending argument (``"logits"``, ``"dtype"``, ...) so that
    the CLI and the web API can point at it; ``str(err)`` is a one-line message that
    starts with the argument's name.
    """

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        self.message = message
        super().__init__(f"{argument}: {message}")
