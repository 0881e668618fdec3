"""``logitlab compare`` and ``logitlab sigmoid``: the post's examples in the terminal."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any

import typer

from logitlab.ui.cli_common import StrictCommand, flag_for

__all__ = ["register"]

# Options that take several numbers: ``--logits 20 20`` as well as ``--logits 20,20``.
_MULTI_NUMBER_OPTIONS = ("--logits", "--targets", "--weight", "--pos-weight")


def _is_number(token: str) -> bool:
    parts = [p for p in token.replace(",", " ").split() if p]
    if not parts:
        return False
    try:
        for p in parts:
            float(p)
    except ValueError:
        return False
    return True


class NumbersCommand(StrictCommand):
    """A command whose number options take several values and whose numbers may be negative.

    Click gives an option one value and reads ``-2`` as an option name; this gathers the
    numbers after ``--logits`` into one value (``--logits=-2 2``) and moves bare numbers
    (``logitlab sigmoid -90``) behind ``--`` so they reach the argument.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Typer vendors click in recent releases, so options are recognised by their
        # attributes rather than by a click class.
        valued = {
            opt
            for p in self.params
            if getattr(p, "param_type_name", "") == "option" and not getattr(p, "is_flag", False)
            for opt in p.opts
        }
        out: list[str] = []
        positionals: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":
                positionals.extend(args[i + 1 :])
                break
            if token in _MULTI_NUMBER_OPTIONS:
                j = i + 1
                while j < len(args) and _is_number(args[j]):
                    j += 1
                if j == i + 1:
                    out.append(token)  # no numbers: let click report the missing value
                else:
                    out.append(f"{token}={' '.join(args[i + 1 : j])}")
                i = j
                continue
            if token in valued and i + 1 < len(args):
                out.extend(args[i : i + 2])
                i += 2
                continue
            if _is_number(token):
                positionals.append(token)
            else:
                out.append(token)
            i += 1
        if positionals:
            out.append("--")
            out.extend(positionals)
        result: list[str] = super().parse_args(ctx, out)
        return result


def require(command: str) -> None:
    from logitlab.core.extras import require as check

    check(command)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _guard(run: Callable[[], None]) -> None:
    from logitlab.core.errors import InputError

    try:
        run()
    except InputError as err:
        _fail(f"{flag_for(err.argument)}: {err.message}")


def _output(width: int | None) -> Any:
    from logitlab.core.errors import InputError
    from logitlab.ui.tables import MAX_WIDTH, MIN_WIDTH, output_for

    if width is not None and not MIN_WIDTH <= width <= MAX_WIDTH:
        raise InputError("--width", f"{width} is outside [{MIN_WIDTH}, {MAX_WIDTH}]")
    return output_for(width)


def _numbers(text: str | None, argument: str) -> list[float] | None:
    from logitlab.core.inputs import parse_numbers

    return None if text is None else parse_numbers(text, argument)


def compare_command(
    logits: str | None = typer.Option(
        None, "--logits", help="Logits, e.g. --logits 20 20 or --logits=-2,2. Default: -2 2."
    ),
    targets: str | None = typer.Option(
        None, "--targets", help="Targets in [0, 1]. Default: 0.3 0.7."
    ),
    dtype: str | None = typer.Option(
        None,
        "--dtype",
        help="float16, bfloat16, float32 or float64. Default: the --from file's float "
        "dtype, else float32.",
    ),
    weight: str | None = typer.Option(None, "--weight", help="Per-element weights (broadcast)."),
    pos_weight: str | None = typer.Option(
        None, "--pos-weight", help="Weight of the positive term (broadcast)."
    ),
    reduction: str = typer.Option("mean", "--reduction", help="none, mean or sum."),
    framework: list[str] | None = typer.Option(
        None,
        "--framework",
        help="Frameworks to show (repeatable): torch, stable, numpy, scipy, sklearn, keras, "
        "jax (with optax), or all. Default: torch and stable.",
    ),
    formulation: list[str] | None = typer.Option(
        None, "--formulation", help="Rows to show by name (repeatable), e.g. keras.logits."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    width: int | None = typer.Option(
        None, "--width", help="Output width in columns (default: COLUMNS or the terminal's)."
    ),
    source: str | None = typer.Option(
        None,
        "--from",
        help="Read logits, targets (and weight, pos_weight) from a .npz, .npy, .pt or .csv "
        "file; see the README.",
    ),
    summary: bool = typer.Option(
        False,
        "--summary",
        help="Summarise (errors, histograms, flag counts, worst elements) "
        "even for a small batch; batches over 20 elements always are.",
    ),
) -> None:
    """Run every BCE code path on the same logits and targets, against the exact value."""

    def run() -> None:
        require("compare")
        from logitlab.analysis.compare import compare
        from logitlab.ui.batch_report import run_batch
        from logitlab.ui.tables import print_comparison

        output = _output(width)
        # A file, --summary or more than 20 elements: the batch summary (or, for a small
        # file, the tables below); else compare as always.
        if run_batch(
            source,
            {"logits": logits, "targets": targets, "weight": weight, "pos_weight": pos_weight},
            dtype=dtype,
            reduction=reduction,
            formulations=formulation or None,
            frameworks=framework or None,
            as_json=as_json,
            summary=summary,
            output=output,
        ):
            return
        comparison = compare(
            _numbers("-2 2" if logits is None else logits, "logits"),
            _numbers("0.3 0.7" if targets is None else targets, "targets"),
            dtype="float32" if dtype is None else dtype,
            weight=_numbers(weight, "weight"),
            pos_weight=_numbers(pos_weight, "pos_weight"),
            reduction=reduction,
            formulations=formulation or None,
            frameworks=framework or None,
        )
        if as_json:
            json.dump(comparison.to_dict(), sys.stdout, indent=2, allow_nan=False)
            sys.stdout.write("\n")
        else:
            print_comparison(comparison, output)

    _guard(run)


def sigmoid_command(
    z: float = typer.Argument(-90.0, help="The logit (the post's example: -90)."),
    dtype: list[str] | None = typer.Option(
        None, "--dtype", help="Formats to show (repeatable); all four by default."
    ),
    framework: list[str] | None = typer.Option(
        None,
        "--framework",
        help="Frameworks to show (repeatable), or all. Default: torch and stable.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    width: int | None = typer.Option(
        None, "--width", help="Output width in columns (default: COLUMNS or the terminal's)."
    ),
) -> None:
    """Sigmoid at one logit per dtype and implementation, and where each rounds to 0 and 1.

    Hand-written sigmoid against torch.sigmoid and the exact value, with the logits at
    which each returns exactly 0 and 1 (found by search)."""

    def run() -> None:
        require("sigmoid")
        from logitlab.analysis.saturation import row_to_dict, sigmoid_report
        from logitlab.core.formats import DTYPE_NAMES, get_format
        from logitlab.ui.tables import print_sigmoid_report

        output = _output(width)
        if math.isnan(z):
            from logitlab.core.errors import InputError

            raise InputError("z", "is NaN; give a number")
        names = [get_format(d).name for d in dtype] if dtype else list(DTYPE_NAMES)
        rows = sigmoid_report(z, names, frameworks=framework or None)
        if as_json:
            json.dump([row_to_dict(r) for r in rows], sys.stdout, indent=2, allow_nan=False)
            sys.stdout.write("\n")
        else:
            print_sigmoid_report(z, rows, output)

    _guard(run)


def register(app: Any) -> None:
    app.command("compare", cls=NumbersCommand)(compare_command)
    app.command("sigmoid", cls=NumbersCommand)(sigmoid_command)
