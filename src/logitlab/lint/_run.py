"""What ``logitlab lint`` does, without Typer: the command in :mod:`logitlab.lint.cli`
and the console script's fast path (:func:`fast_main`) both call :func:`run`.

Only the standard library is imported here, so that ``logitlab lint FILE`` starts in a
fraction of the time Typer takes to build the whole ``logitlab`` app.
"""

from __future__ import annotations

import sys


class _Usage(Exception):
    """A usage or configuration error: one line on stderr, exit code 2."""


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def run(
    paths: list[str] | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    output_format: str = "text",
    fix: bool = False,
    unsafe_fixes: bool = False,
    diff: bool = False,
    exit_zero: bool = False,
    config: str | None = None,
    jobs: int = 0,
    no_cache: bool = False,
) -> int:
    """Run ``logitlab lint`` with parsed options; return the exit code."""
    try:
        return _run(
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
    except _Usage as err:
        sys.stderr.write(f"logitlab lint: error: {err}\n")
        return 2


def _run(
    paths: list[str] | None,
    select: list[str] | None,
    ignore: list[str] | None,
    output_format: str,
    fix: bool,
    unsafe_fixes: bool,
    diff: bool,
    exit_zero: bool,
    config: str | None,
    jobs: int,
    no_cache: bool,
) -> int:
    import importlib.util
    import os

    from logitlab.lint._codes import FILE_CODES, default_selection, expand_selection
    from logitlab.lint._config import ConfigError, load_config
    from logitlab.lint._engine import MAX_FILE_BYTES, Options, discover, lint_paths
    from logitlab.lint._output import FORMATS, render

    if output_format not in FORMATS:
        raise _Usage(
            f"invalid value for --format: {output_format!r} (choose from {', '.join(FORMATS)})"
        )
    if jobs < 0:
        raise _Usage("invalid value for --jobs: must be >= 0")
    targets = paths or ["."]
    try:
        cfg = load_config(targets[0], config)
    except (ConfigError, OSError) as err:
        raise _Usage(str(err)) from None
    for warning in cfg.warnings:
        sys.stderr.write(f"logitlab lint: warning: {warning}\n")
    try:
        cli_select = _split(select)
        selected = expand_selection(cli_select) if cli_select else None
    except ValueError as err:
        raise _Usage(f"invalid value for --select: {err}") from None
    try:
        cli_ignore = expand_selection(_split(ignore))
    except ValueError as err:
        raise _Usage(f"invalid value for --ignore: {err}") from None
    try:
        if selected is None:
            selected = expand_selection(cfg.select) if cfg.select else default_selection()
        cfg_ignore = expand_selection(cfg.ignore)
        per_file = tuple(
            (pattern, frozenset(expand_selection(codes)))
            for pattern, codes in cfg.per_file_ignores.items()
        )
    except ValueError as err:
        raise _Usage(f"invalid value in [tool.logitlab.lint] ({cfg.path}): {err}") from None
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
        raise _Usage(f"{flag} needs libcst, which is not installed: pip install 'logitlab[lint]'")
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
        refused: dict[str, list[str]] = {}
        if unsafe_fixes:  # fixes that remove an activation must know the other files
            from logitlab.lint._engine import refused_removals

            refused = refused_removals(targets, options, jobs, cache=not no_cache)
        settings = (options, unsafe_fixes, fix and not diff, refused)
        for result in map_files(fix_file, files, settings, jobs):
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
            return 0
        return 1 if (diff and changed) or (not diff and findings) else 0

    findings = lint_paths(targets, options, jobs, cache=not no_cache)
    out.write(render(findings, output_format))
    if findings and output_format == "text":
        safe = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "safe")
        unsafe = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "unsafe")
        sys.stderr.write(
            f"Found {len(findings)} finding(s); {safe} fixable with --fix,"
            f" {unsafe} more with --fix --unsafe-fixes.\n"
        )
    return 0 if exit_zero or not findings else 1


# --- the console script's fast path -------------------------------------------------------

#: options that take one value (given twice: Typer's error), and the ``run`` argument
_VALUED = {"--format": "output_format", "--config": "config", "--jobs": "jobs", "-j": "jobs"}
#: options that take a value and may be repeated
_LISTS = {"--select": "select", "--ignore": "ignore"}
_FLAGS = {
    "--fix": "fix",
    "--unsafe-fixes": "unsafe_fixes",
    "--diff": "diff",
    "--exit-zero": "exit_zero",
    "--no-cache": "no_cache",
}


def parse_fast(args: list[str]) -> dict[str, object] | None:
    """The ``run`` arguments for ``logitlab lint ARGS``, or None when anything is not
    plainly valid (help, an unknown or repeated option, a value that looks like an
    option or is not a number): Typer then parses the line and words any error."""
    kwargs: dict[str, object] = {}
    paths: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            paths.extend(args[i:])
            break
        if not token.startswith("-") or token == "-":
            if not token or token == "-":
                return None
            paths.append(token)
            continue
        if token in _FLAGS:
            kwargs[_FLAGS[token]] = True
            continue
        name, eq, value = token.partition("=")
        if name not in _VALUED and name not in _LISTS:
            return None
        if name == "-j" and eq:
            return None
        if not eq:
            if i >= len(args):
                return None
            value = args[i]
            i += 1
        if not value or value.startswith("-"):
            return None
        if name in _LISTS:
            values = kwargs.setdefault(_LISTS[name], [])
            assert isinstance(values, list)
            values.append(value)
            continue
        key = _VALUED[name]
        if key in kwargs:
            return None
        if key == "jobs":
            if not value.isascii() or not value.isdigit():
                return None
            kwargs[key] = int(value)
        else:
            kwargs[key] = value
    kwargs["paths"] = paths or None
    return kwargs


def fast_main(args: list[str]) -> int | None:
    """``logitlab lint ARGS`` without building the Typer app: the exit code, or None
    to leave the line to Typer (help, completion, anything not plainly valid)."""
    import os

    if any(k.startswith("_LOGITLAB_COMPLETE") for k in os.environ):
        return None
    kwargs = parse_fast(args)
    if kwargs is None:
        return None
    try:
        return run(**kwargs)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")  # as click words it
        return 1
    except BrokenPipeError:
        return 1
