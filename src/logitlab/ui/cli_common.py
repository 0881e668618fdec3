"""What every ``logitlab`` command shares: one-line usage errors and options given once.

Standard library and typer only, so that ``logitlab lint`` starts fast.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["FLAG_OF", "Group", "StrictCommand", "flag_for"]

#: The command-line spelling of the arguments the core names in its errors.
FLAG_OF = {
    "logits": "--logits",
    "targets": "--targets",
    "weight": "--weight",
    "pos_weight": "--pos-weight",
    "target": "--target",
    "ignore_index": "--ignore-index",
    "label_smoothing": "--label-smoothing",
    "alpha": "--alpha",
    "gamma": "--gamma",
    "dtype": "--dtype",
    "dtypes": "--dtype",
    "reduction": "--reduction",
    "frameworks": "--framework",
    "formulations": "--formulation",
    "formulation": "--formulation",
    "quantity": "--quantity",
    "points": "--points",
    "seed": "--seed",
    "workers": "--workers",
    "breakpoints": "--breakpoints",
    "z": "Z",
}


def flag_for(argument: str) -> str:
    """How the user typed the argument the core calls ``argument``."""
    return FLAG_OF.get(argument, argument)


def _valued_options(command: Any) -> dict[str, str]:
    """Every spelling of each option that takes one value (not a flag, not repeatable)."""
    out: dict[str, str] = {}
    for p in command.params:
        if getattr(p, "param_type_name", "") != "option" or getattr(p, "is_flag", False):
            continue
        if getattr(p, "multiple", False) or getattr(p, "count", False):
            continue
        names = [*p.opts, *getattr(p, "secondary_opts", [])]
        for name in names:
            out[name] = max(names, key=len)
    return out


class StrictCommand(TyperCommand):
    """A command that refuses an option given twice (``--logits 1 --logits 2``), which click
    would silently resolve to the last one."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        valued = _valued_options(self)
        seen: dict[str, str] = {}
        for token in args:
            if token == "--":
                break
            name = token.split("=", 1)[0] if token.startswith("--") else token
            canonical = valued.get(name)
            if canonical is None:
                continue
            if canonical in seen:
                raise typer.BadParameter("given more than once; give it once", param_hint=canonical)
            seen[canonical] = name
        result: list[str] = super().parse_args(ctx, args)
        return result


class Group(TyperGroup):
    """The ``logitlab`` group: a usage error is one line, ``error: ...``, and exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.pop("standalone_mode", True)
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except typer._click.exceptions.ClickException as err:  # usage errors
            if not standalone:
                raise
            typer.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except typer.Abort:
            if not standalone:
                raise
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        if standalone:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv
