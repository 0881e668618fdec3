"""The ``logitlab lint`` command: its options for Typer; the work is :func:`logitlab.lint._run.run`.

Exit codes follow ruff: 0 clean, 1 findings (or, with ``--diff``, changes to make),
2 usage or configuration errors.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

PathsArg = Annotated[
    Optional[list[str]],  # noqa: UP045 - Typer needs the Optional spelling on 3.10
    typer.Argument(help="Files or directories to lint (default: the current directory)."),
]
CodesOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(help="Comma-separated codes or prefixes (LGL001, LGL0, ALL)."),
]


def lint_command(
    paths: PathsArg = None,
    select: CodesOpt = None,
    ignore: CodesOpt = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: text, json, sarif or github.")
    ] = "text",
    fix: Annotated[bool, typer.Option("--fix", help="Apply safe fixes in place.")] = False,
    unsafe_fixes: Annotated[
        bool,
        typer.Option(
            "--unsafe-fixes",
            help="With --fix or --diff, also apply fixes that change a model's outputs.",
        ),
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Show the fixes as a unified diff; write nothing.")
    ] = False,
    exit_zero: Annotated[
        bool, typer.Option("--exit-zero", help="Exit 0 even when there are findings.")
    ] = False,
    config: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--config", help="pyproject.toml to read [tool.logitlab.lint] from."),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="Worker processes (0: one per core).")
    ] = 0,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Neither read nor write .logitlab_cache/."),
    ] = False,
) -> None:
    """Find probability-space loss code (sigmoid+BCE, log(softmax), ...) and fix it."""
    from logitlab.lint._run import run

    code = run(
        paths,
        select,
        ignore,
        output_format,
        fix,
        unsafe_fixes,
        diff,
        exit_zero,
        config,
        jobs,
        no_cache,
    )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the ``lint`` command to the ``logitlab`` app."""
    app.command("lint")(lint_command)
