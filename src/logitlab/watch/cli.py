"""``logitlab watch SCRIPT.py [ARGS]``: run a script watched, like ``python -m cProfile``."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

__all__ = ["register"]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _print_script_traceback(err: BaseException, script: str) -> None:
    """The script's own traceback: frames from runpy and logitlab are left out."""
    import traceback

    tb = err.__traceback__
    target = os.path.realpath(script)
    while tb is not None and os.path.realpath(tb.tb_frame.f_code.co_filename) != target:
        tb = tb.tb_next
    if tb is None:
        tb = err.__traceback__
    traceback.print_exception(type(err), err, tb, file=sys.stderr)


def watch_command(
    script: str = typer.Argument(..., help="The Python script to run (as __main__)."),
    args: list[str] | None = typer.Argument(None, help="Arguments passed to the script."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    every: int | None = typer.Option(
        None, "--every", help="Check one call in N per source line (default: adaptive)."
    ),
    full: bool = typer.Option(False, "--full", help="Check every call."),
    fail_on: str | None = typer.Option(
        None,
        "--fail-on",
        help="Comma-separated codes or prefixes (LGL001, LGL0, LGW, ALL): exit 1 if any is found.",
    ),
    dump: str | None = typer.Option(
        None, "--dump", help="Save the first offending batch per source line as DIR/*.npz."
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Write the report to this file instead of stdout."
    ),
) -> None:
    """Run SCRIPT under logitlab.watch and print what it did to probabilities, by source line."""
    from logitlab.watch._kinds import expand_codes

    if every is not None and every < 1:
        _fail(f"--every: must be a positive integer, not {every}")
    if full and every is not None:
        _fail("--every: cannot be combined with --full")
    fail_codes: set[str] = set()
    if fail_on is not None:
        try:
            fail_codes = expand_codes(fail_on.split(","))
        except ValueError as err:
            _fail(f"--fail-on: {err}")
    if not os.path.isfile(script):
        _fail(f"SCRIPT: no such file {script!r}")

    import runpy

    from logitlab.watch._watcher import Watcher

    watcher = Watcher(full=full, every=every, dump=dump)
    argv, path0 = sys.argv[:], sys.path[0] if sys.path else None
    sys.argv = [script, *(args or [])]
    script_dir = os.path.dirname(os.path.abspath(script))
    sys.path.insert(0, script_dir)
    code = 0
    try:
        with watcher:
            runpy.run_path(script, run_name="__main__")
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
        if err.code is not None and not isinstance(err.code, int):
            typer.echo(str(err.code), err=True)
    except KeyboardInterrupt:
        typer.echo("logitlab watch: interrupted", err=True)
        code = 130
    except BaseException as err:  # the script's own failure: its traceback, then the report
        _print_script_traceback(err, script)
        code = 1
    finally:
        sys.argv = argv
        if sys.path and sys.path[0] == script_dir:
            del sys.path[0]
        elif path0 is not None and script_dir in sys.path:
            sys.path.remove(script_dir)
    _emit(watcher, as_json, output)
    if code == 0 and fail_codes:
        hit = sorted(watcher.report().codes() & fail_codes)
        if hit:
            typer.echo(f"logitlab watch: found {', '.join(hit)} (--fail-on)", err=True)
            code = 1
    raise typer.Exit(code)


def _emit(watcher: Any, as_json: bool, output: str | None) -> None:
    report = watcher.report()
    text = report.to_json() if as_json else None
    if output is not None:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write((text if text is not None else str(report)) + "\n")
        return
    sys.stdout.flush()
    if text is not None:
        sys.stdout.write(text + "\n")
    else:
        report.print(sys.stdout)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command(
        "watch",
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    )(watch_command)
