"""The ``logitlab lint`` command. Only stdlib and Typer at import time: cold start is fast.

Exit codes follow ruff: 0 clean, 1 findings (or, with ``--diff``, changes to make),
2 usage or configuration errors.
"""

from __future__ import annotations

import sys
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


def _usage_error(message: str) -> typer.Exit:
    sys.stderr.write(f"logitlab lint: error: {message}\n")
    return typer.Exit(2)


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


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
    import importlib.util
    import os

    from logitlab.lint._codes import FILE_CODES, default_selection, expand_selection
    from logitlab.lint._config import ConfigError, load_config
    from logitlab.lint._engine import MAX_FILE_BYTES, Options, discover, lint_paths
    from logitlab.lint._output import FORMATS, render

    if output_format not in FORMATS:
        raise _usage_error(
            f"invalid value for --format: {output_format!r} (choose from {', '.join(FORMATS)})"
        )
    if jobs < 0:
        raise _usage_error("invalid value for --jobs: must be >= 0")
    targets = paths or ["."]
    try:
        cfg = load_config(targets[0], config)
    except (ConfigError, OSError) as err:
        raise _usage_error(str(err)) from None
    for warning in cfg.warnings:
        sys.stderr.write(f"logitlab lint: warning: {warning}\n")
    try:
        cli_select = _split(select)
        selected = expand_selection(cli_select) if cli_select else None
    except ValueError as err:
        raise _usage_error(f"invalid value for --select: {err}") from None
    try:
        cli_ignore = expand_selection(_split(ignore))
    except ValueError as err:
        raise _usage_error(f"invalid value for --ignore: {err}") from None
    try:
        if selected is None:
            selected = expand_selection(cfg.select) if cfg.select else default_selection()
        cfg_ignore = expand_selection(cfg.ignore)
        per_file = tuple(
            (pattern, frozenset(expand_selection(codes)))
            for pattern, codes in cfg.per_file_ignores.items()
        )
    except ValueError as err:
        raise _usage_error(f"invalid value in [tool.logitlab.lint] ({cfg.path}): {err}") from None
    if not (cli_select and FILE_CODES & set(selected)):
        selected |= FILE_CODES  # file problems are reported unless ignored explicitly
    selected -= cli_ignore | cfg_ignore
    options = Options(
        select=frozenset(selected),
        exclude=tuple(cfg.exclude),
        max_file_bytes=cfg.max_file_bytes or MAX_FILE_BYTES,
        per_file_ignores=per_file,
    )
    if (fix or diff) and importlib.util.find_spec("libcst") is None:
        flag = "--fix" if fix else "--diff"
        raise _usage_error(
            f"{flag} needs libcst, which is not installed: pip install 'logitlab[lint]'"
        )
    for target in targets:
        if not os.path.exists(target) and not os.path.islink(target):
            sys.stderr.write(f"logitlab lint: warning: {target}: no such file or directory\n")

    out = sys.stdout
    if unsafe_fixes and not (fix or diff):
        sys.stderr.write(
            "logitlab lint: warning: --unsafe-fixes only applies with --fix or --diff\n"
        )
    if fix or diff:
        from logitlab.lint._engine import map_files
        from logitlab.lint._fixes import fix_file

        files: list[str] = []
        findings = []
        for path, problem in discover(targets, options):
            if problem is None:
                files.append(path)
            elif problem.code in options.select:
                findings.append(problem)
        fixed = changed = unsafe_left = 0
        for result in map_files(fix_file, files, (options, unsafe_fixes, fix and not diff), jobs):
            findings.extend(result.remaining)
            fixed += result.fixed
            unsafe_left += result.fixable_unsafe
            if result.diff:
                changed += 1
                if diff:
                    out.write(result.diff)
        findings.sort(key=lambda f: (f.path, f.line, f.col, f.code))
        if not diff:
            out.write(render(findings, output_format))
        verb = "would fix" if diff else "fixed"
        note = (
            f"; {unsafe_left} more with --unsafe-fixes" if unsafe_left and not unsafe_fixes else ""
        )
        sys.stderr.write(
            f"{verb} {fixed} finding(s) in {changed} file(s); {len(findings)} remaining{note}\n"
        )
        if exit_zero:
            raise typer.Exit(0)
        raise typer.Exit(1 if (diff and changed) or (not diff and findings) else 0)

    findings = lint_paths(targets, options, jobs, cache=not no_cache)
    out.write(render(findings, output_format))
    if findings and output_format == "text":
        safe = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "safe")
        unsafe = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "unsafe")
        sys.stderr.write(
            f"Found {len(findings)} finding(s); {safe} fixable with --fix,"
            f" {unsafe} more with --fix --unsafe-fixes.\n"
        )
    raise typer.Exit(0 if exit_zero or not findings else 1)


def register(app: typer.Typer) -> None:
    """Add the ``lint`` command to the ``logitlab`` app."""
    app.command("lint")(lint_command)
