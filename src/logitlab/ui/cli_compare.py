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
_MULTI_NUMBER_OPTIONS = ("--logits", "--targets", "--target", "--weight", "--pos-weight")

#: ``--loss`` choices and the quantity each compares.
LOSSES = {"bce": "bce", "softmax-ce": "softmax_ce", "focal": "focal"}
#: The options each loss takes beyond the shared ones (dtype, reduction, framework,
#: formulation, json, width).
_OPTIONS_OF = {
    "bce": {"--logits", "--targets", "--weight", "--pos-weight", "--from", "--summary"},
    "softmax-ce": {
        "--logits",
        "--target",
        "--targets",
        "--weight",
        "--ignore-index",
        "--label-smoothing",
    },
    "focal": {"--logits", "--targets", "--alpha", "--gamma"},
}


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


def _nested(text: str, argument: str) -> Any:
    """``"[[3, -inf, 1]]"`` (a nested list, N rows) or ``"1000 0 -1000"`` (one row)."""
    import re

    from logitlab.core.errors import InputError

    stripped = text.strip()
    if not stripped.startswith("["):
        return _numbers(text, argument)
    spelled = re.sub(r"(?i)(?<![A-Za-z])([+-]?)inf(inity)?(?![A-Za-z])", r"\1Infinity", stripped)
    spelled = re.sub(r"(?i)(?<![A-Za-z])nan(?![A-Za-z])", "NaN", spelled)
    spelled = spelled.replace("+Infinity", "Infinity")
    try:
        return json.loads(spelled)
    except json.JSONDecodeError:
        raise InputError(argument, f"{text!r} is not a list of numbers or of rows") from None


def _check_options(loss: str, given: dict[str, bool]) -> None:
    from logitlab.core.errors import InputError

    allowed = _OPTIONS_OF[loss]
    for option, present in given.items():
        if present and option not in allowed:
            raise InputError(
                option, f"does not apply to --loss {loss}; it takes {', '.join(sorted(allowed))}"
            )


def _softmax(
    logits: str | None,
    target: str | None,
    targets: str | None,
    weight: str | None,
    ignore_index: int | None,
    label_smoothing: float | None,
    **kwargs: Any,
) -> Any:
    from logitlab.analysis.compare_softmax import compare_softmax
    from logitlab.core.errors import InputError

    if target is not None and targets is not None:
        raise InputError("--targets", "give class indices (--target) or probabilities, not both")
    if target is None and targets is None and logits is not None:
        raise InputError("--target", "give the class index of each row (or --targets)")
    if logits is None:
        logits, target = "0 -110", target if target is not None or targets else "1"
    y: Any = _nested(targets, "targets") if targets is not None else None
    if target is not None:
        y = _numbers(target, "target")
    return compare_softmax(
        _nested(logits, "logits"),
        y,
        weight=_numbers(weight, "weight"),
        ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=0.0 if label_smoothing is None else label_smoothing,
        **kwargs,
    )


def _focal(
    logits: str | None, targets: str | None, alpha: float | None, gamma: float | None, **kwargs: Any
) -> Any:
    import importlib

    from logitlab.core.errors import InputError

    try:
        module = importlib.import_module("logitlab.analysis.compare_focal")
    except ModuleNotFoundError as err:
        if err.name != "logitlab.analysis.compare_focal":
            raise
        raise InputError("--loss", "focal is not available in this build of logitlab") from None
    return module.compare_focal(
        _numbers("-2 2" if logits is None else logits, "logits"),
        _numbers("0 1" if targets is None else targets, "targets"),
        alpha=0.25 if alpha is None else alpha,
        gamma=2.0 if gamma is None else gamma,
        **kwargs,
    )


def compare_command(
    logits: str | None = typer.Option(
        None,
        "--logits",
        help="Logits, e.g. --logits 20 20 or --logits=-2,2. Default: -2 2. For softmax-ce a "
        'flat list is one row and "[[3, -inf, 1], [0, 1, 2]]" N rows (-inf masks a class); '
        "default 0 -110.",
    ),
    targets: str | None = typer.Option(
        None,
        "--targets",
        help="Targets in [0, 1]. Default: 0.3 0.7. For softmax-ce: probabilities, the "
        "logits' shape (soft targets).",
    ),
    loss: str = typer.Option(
        "bce", "--loss", help="The loss to compare: bce, softmax-ce or focal. Default: bce."
    ),
    target: str | None = typer.Option(
        None,
        "--target",
        help="softmax-ce: the class index of each row, e.g. --target 2. Default: 1.",
    ),
    ignore_index: int | None = typer.Option(
        None, "--ignore-index", help="softmax-ce: the class index that is ignored. Default: -100."
    ),
    label_smoothing: float | None = typer.Option(
        None, "--label-smoothing", help="softmax-ce: label smoothing in [0, 1]. Default: 0."
    ),
    alpha: float | None = typer.Option(None, "--alpha", help="focal: alpha. Default: 0.25."),
    gamma: float | None = typer.Option(None, "--gamma", help="focal: gamma. Default: 2."),
    dtype: str | None = typer.Option(
        None,
        "--dtype",
        help="float16, bfloat16, float32 or float64. Default: the --from file's float "
        "dtype, else float32.",
    ),
    weight: str | None = typer.Option(
        None, "--weight", help="Per-element weights (broadcast); softmax-ce: one per class."
    ),
    pos_weight: str | None = typer.Option(
        None, "--pos-weight", help="Weight of the positive term (broadcast)."
    ),
    reduction: str = typer.Option("mean", "--reduction", help="none, mean or sum."),
    framework: list[str] | None = typer.Option(
        None,
        "--framework",
        help="Frameworks to show (repeatable): torch, stable, numpy, scipy, sklearn, keras, "
        "jax (with optax), autocast (torch under torch.autocast), or all. Default: torch "
        "and stable.",
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
    """Run every code path of a loss (BCE by default) on the same input, against the exact
    value."""

    def run() -> None:
        require("compare")
        from logitlab.analysis.compare import compare
        from logitlab.core.errors import InputError
        from logitlab.ui.batch_report import run_batch
        from logitlab.ui.tables import print_comparison

        name = loss.strip().lower()
        if name not in LOSSES:
            raise InputError("--loss", f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
        _check_options(
            name,
            {
                "--logits": logits is not None,
                "--targets": targets is not None,
                "--target": target is not None,
                "--weight": weight is not None,
                "--pos-weight": pos_weight is not None,
                "--ignore-index": ignore_index is not None,
                "--label-smoothing": label_smoothing is not None,
                "--alpha": alpha is not None,
                "--gamma": gamma is not None,
                "--from": source is not None,
                "--summary": summary,
            },
        )
        output = _output(width)
        if name != "bce":
            common: dict[str, Any] = {
                "dtype": "float32" if dtype is None else dtype,
                "reduction": reduction,
                "formulations": formulation or None,
                "frameworks": framework or None,
            }
            if name == "softmax-ce":
                comparison = _softmax(
                    logits, target, targets, weight, ignore_index, label_smoothing, **common
                )
            else:
                comparison = _focal(logits, targets, alpha, gamma, **common)
            from logitlab.analysis.explain import explain

            sentences = explain(comparison)
            if as_json:
                payload = comparison.to_dict()
                if sentences:
                    payload["explanation"] = sentences
                json.dump(payload, sys.stdout, indent=2, allow_nan=False)
                sys.stdout.write("\n")
            else:
                print_comparison(comparison, output, explanation=sentences)
            return
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
