"""``logitlab audit``: the command.  Only stdlib and typer at import time."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]

_QUANTITIES = ("bce", "sigmoid", "log_sigmoid", "softplus", "softmax_ce", "focal")
#: The softmax audit's families (``logitlab.analysis.audit_softmax.FAMILIES``; a test
#: keeps the two equal without importing NumPy here).
_FAMILIES = ("m,0,0", "K=10", "masked", "smoothing", "target masked", "K=1000")
_FORMATS = ("table", "json", "csv", "markdown", "html")
_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _check_out(out: Path) -> None:
    """``--out`` must be a directory we can write, or one we can create: checked before the
    run, so that no work is lost to a bad path."""
    import os

    if out.exists():
        if not out.is_dir():
            _fail(f"--out: {str(out)!r} exists and is not a directory")
        if not os.access(out, os.W_OK | os.X_OK):
            _fail(f"--out: cannot write in {str(out)!r}")
        return
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        _fail(f"--out: cannot create {str(out)!r} (no write access to {str(parent)!r})")


def _write(path: Path, text: str) -> None:
    # Atomically: a reader never sees half a report, and a failure leaves no partial file.
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command to ``app``."""

    @app.command("audit")
    def audit_command(
        quantity: str = typer.Option(
            "bce", "--quantity", "-q", help=f"what to audit: {', '.join(_QUANTITIES)}"
        ),
        formulation: list[str] = typer.Option(
            [], "--formulation", "-f", help="formulation names (repeat); default: all of them"
        ),
        dtype: list[str] = typer.Option(
            [], "--dtype", "-d", help=f"dtypes (repeat): {', '.join(_DTYPES)}; default: all"
        ),
        points: int = typer.Option(
            20_000, "--points", "-n", help="logits per float32/float64 sweep (16-bit: all)"
        ),
        seed: int = typer.Option(0, "--seed", "-s", help="seed of the float32/float64 samples"),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="directory for reports and plots (PNG and SVG)"
        ),
        fmt: list[str] = typer.Option(
            [], "--format", help=f"output formats (repeat): {', '.join(_FORMATS)}; default table"
        ),
        weight: float | None = typer.Option(None, "--weight", help="a weight on every element"),
        pos_weight: float | None = typer.Option(
            None, "--pos-weight", help="pos_weight on every element"
        ),
        smoothing: bool = typer.Option(
            False, "--label-smoothing", help="add label-smoothed targets 0.005 and 0.995"
        ),
        workers: int = typer.Option(2, "--workers", "-j", help="processes (dtypes split)"),
        width: int | None = typer.Option(
            None, "--width", help="output width in columns (default: COLUMNS or the terminal's)"
        ),
        breakpoints: str = typer.Option(
            "hard",
            "--breakpoints",
            help="float32/float64 targets whose onsets are searched: hard (0 and 1) or all "
            "(slower); 16-bit formats always report every target",
        ),
        family: list[str] = typer.Option(
            [],
            "--family",
            help=f"softmax_ce families of rows (repeat): {', '.join(_FAMILIES)}; default: "
            "all but K=1000",
        ),
        alpha: str = typer.Option(
            "0.25", "--alpha", help="focal: alpha in [0, 1], or none (no alpha weighting)"
        ),
        gamma: float = typer.Option(2.0, "--gamma", help="focal: gamma >= 0"),
    ) -> None:
        """How accurate is each framework's code, per dtype, and where does it break."""
        q = quantity.strip().lower()
        if q not in _QUANTITIES:
            _fail(
                f"--quantity: unknown quantity {quantity!r}; choose from {', '.join(_QUANTITIES)}"
            )
        formats = [f.strip().lower() for f in fmt] or ["table"]
        for f in formats:
            if f not in _FORMATS:
                _fail(f"--format: unknown format {f!r}; choose from {', '.join(_FORMATS)}")
        if "html" in formats and out is None:
            _fail("--format: html is written to a file; give --out DIR")
        streamed = [f for f in formats if f in ("json", "csv", "markdown")]
        if out is None and len(streamed) > 1:
            _fail(f"--format: {' and '.join(streamed)} would share stdout; give one, or --out DIR")
        import os

        cores = os.cpu_count() or 1
        if not 1 <= workers <= max(cores, 1):
            _fail(f"--workers: {workers} is outside [1, {cores}] (this machine's cores)")
        if seed < 0:
            _fail(f"--seed: {seed} is negative; give an integer >= 0")
        if width is not None and not 40 <= width <= 1000:
            _fail(f"--width: {width} is outside [40, 1000]")
        families = [f.strip() for f in family]
        for f in families:
            if f not in _FAMILIES:
                _fail(f"--family: unknown family {f!r}; choose from {', '.join(_FAMILIES)}")
        if families and q != "softmax_ce":
            _fail(f"--family: families are softmax_ce's rows, not {q}'s")
        focal_alpha: float | None = None
        if alpha.strip().lower() != "none":
            try:
                focal_alpha = float(alpha)
            except ValueError:
                _fail(f"--alpha: {alpha!r} is not a number or none")
        from logitlab.core.extras import NUMERIC, MissingExtra, require

        try:
            require("audit", NUMERIC)
            if out is not None:
                require("--out", ("matplotlib",))  # the plots
        except MissingExtra as err:
            _fail(str(err))
        if out is not None:
            _check_out(out)

        from logitlab.analysis.points import DEFAULT_TARGETS, FULL_TARGETS
        from logitlab.core.errors import InputError

        targets = FULL_TARGETS if smoothing else DEFAULT_TARGETS
        try:
            _run(
                q,
                formulation,
                dtype,
                points,
                seed,
                out,
                formats,
                weight,
                pos_weight,
                targets,
                workers,
                width,
                breakpoints.strip().lower(),
                families,
                focal_alpha,
                gamma,
            )
        except InputError as err:
            from logitlab.ui.cli_common import flag_for

            extra = {"families": "--family", "alpha": "--alpha", "gamma": "--gamma"}
            _fail(f"{extra.get(err.argument) or flag_for(err.argument)}: {err.message}")


def _run(
    quantity: str,
    formulations: list[str],
    dtypes: list[str],
    points: int,
    seed: int,
    out: Path | None,
    formats: list[str],
    weight: float | None,
    pos_weight: float | None,
    targets: tuple[float, ...],
    workers: int,
    width: int | None = None,
    breakpoints: str = "hard",
    families: list[str] | None = None,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from logitlab.analysis.audit import audit, check_settings
    from logitlab.ui import reports as _report

    settings = check_settings(
        quantity,
        formulations=formulations or None,
        dtypes=dtypes or None,
        points=points,
        seed=seed,
        targets=targets,
        weight=weight,
        pos_weight=pos_weight,
        workers=workers,
        breakpoints=breakpoints,
        families=families or None,
        alpha=alpha,
        gamma=gamma,
    )
    chosen, ds = settings.formulations, settings.dtypes
    from logitlab.ui.tables import fits, output_for

    err_console = Console(stderr=True)
    output = output_for(width)
    console = output.console()
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]audit[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        rows = len(chosen) * len(ds) * max(1, len(settings.families))
        task = bar.add_task("starting workers", total=rows)

        def progress(row: Any) -> None:
            bar.update(task, advance=1, description=f"{row.name} {row.dtype}")

        result = audit(
            quantity,
            formulations=chosen,
            dtypes=ds,
            points=points,
            seed=seed,
            targets=targets,
            weight=weight,
            pos_weight=pos_weight,
            workers=workers,
            progress=progress,
            breakpoints=breakpoints,
            families=settings.families or None,
            alpha=alpha,
            gamma=gamma,
        )
    texts = {
        "json": _report.to_json,
        "csv": _report.to_csv,
        "markdown": _report.to_markdown,
    }
    to_stdout = out is None and any(f in texts for f in formats)
    if "table" in formats or not to_stdout:
        table = _report.to_rich(result)
        if output.terminal and fits(console, table):
            console.print(table)
        else:
            for line in _report.to_blocks(result, output.width):
                output.stream.write(line + "\n")
        import textwrap

        for note in _report.notes_text(result):
            for line in textwrap.wrap(f"- {note}", output.width, subsequent_indent="  "):
                output.stream.write(line + "\n")
    written = []
    if out is not None:
        from logitlab.ui.plots import save_plots, svg_strings

        out.mkdir(parents=True, exist_ok=True)
        written += save_plots(result, out)
        for f in formats:
            if f in texts:
                ext = {"json": "json", "csv": "csv", "markdown": "md"}[f]
                path = out / f"audit-{quantity}.{ext}"
                _write(path, texts[f](result))
                written.append(path)
            elif f == "html":
                path = out / f"audit-{quantity}.html"
                _write(path, _report.to_html(result, svg_strings(result)))
                written.append(path)
    else:
        for f in formats:
            if f in texts:
                sys.stdout.write(texts[f](result))
    for p in written:
        err_console.print(f"wrote {p}", highlight=False)
    err_console.print(f"audit finished in {time.perf_counter() - start:.1f} s", highlight=False)
