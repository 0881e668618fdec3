"""The batch summary in the terminal (rich where it fits; plain columns or blocks when
piped or narrow) and as JSON.

It only presents :class:`logitlab.analysis.batch.BatchSummary`; every number is printed
whole at any width, and user text (paths, notes, framework messages) is never markup.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import IO, Any

import numpy as np
from rich.table import Table
from rich.text import Text

from logitlab.analysis.batch import HISTOGRAM_BINS, BatchSummary, Element, SideStats
from logitlab.analysis.flags import FLAGS
from logitlab.core.numbers import shortest_repr
from logitlab.ui.tables import Output, output_for, print_table, print_text

__all__ = ["batch_to_json", "print_batch", "run_batch", "write_batch_json"]

_DTYPE_SOURCE = {
    "--dtype": "from --dtype",
    "file": "the file's dtype",
    "default": "default; the file's values carry no float format",
}
_ARGUMENT_SOURCE = {"--dtype": "from --dtype", "file": "from --dtype", "default": "default"}


def ulps(u: float) -> str:
    """A ULP error, whole: ``0``, ``nan``, ``inf`` or the float's shortest repr."""
    if math.isnan(u):
        return "nan"
    if math.isinf(u):
        return "inf"
    return "0" if u == 0 else repr(float(u))


def _side_cells(s: SideStats | None) -> list[str]:
    if s is None:
        return ["—", "—", "—"]
    return [ulps(s.max_ulp), ulps(s.p50_ulp), ulps(s.p99_ulp)]


def _dtype_line(summary: BatchSummary) -> str:
    where = summary.dtype_source
    if summary.source.startswith("--"):
        said = _ARGUMENT_SOURCE.get(where, where)
    else:
        said = _DTYPE_SOURCE.get(where, where)
    return f"{summary.dtype.name} ({said})"


def print_batch(summary: BatchSummary, output: Output | None = None) -> None:
    """Print the summary: errors per path, histograms, flag counts and worst elements.

    Tables are drawn on a terminal wide enough for them, and are plain columns or blocks
    otherwise (piped, ``--width``, ``COLUMNS``): every number whole."""
    output = output or output_for()
    fmt = summary.dtype
    case = summary.case
    extras = []
    if case.weight is not None:
        extras.append("weight")
    if case.pos_weight is not None:
        extras.append("pos_weight")
    with_extras = f" · with {' and '.join(extras)}" if extras else ""
    print_text(
        output,
        f"BCE · {_dtype_line(summary)} · {summary.size} elements · "
        f"shape {tuple(case.shape)} · reduction={case.reduction}{with_extras}",
    )
    print_text(output, f"source: {summary.source}")
    print_text(
        output,
        "reference: logitlab.exact.fast (vectorised, proven against mpmath); "
        f"{summary.fallback} gradients recomputed in mpmath",
    )
    print_text(
        output,
        "gradients are per element, d loss_i / d z_i; ULP errors in "
        f"{fmt.name}; p50/p99 ignore NaN errors",
    )
    for note in summary.notes:
        print_text(output, f"note: {note}")

    errors = Table(title="errors per path (ULP)", title_justify="left")
    errors.add_column("formulation", no_wrap=True)
    errors.add_column("code", overflow="fold", min_width=20)
    for name in ("loss max", "p50", "p99", "grad max", "p50", "p99"):
        errors.add_column(name, justify="right", no_wrap=True)
    if case.reduction != "none":
        errors.add_column(f"{case.reduction} loss", justify="right", no_wrap=True)
        errors.add_column(f"{case.reduction} ULP error", justify="right", no_wrap=True)
    for p in summary.paths:
        if p.status != "ok":
            cells: list[Any] = [
                p.formulation.name,
                Text(p.code),
                Text(f"{p.status}: {p.reason}"),
                *([""] * 5),
            ]
            if case.reduction != "none":
                cells += ["", ""]
            errors.add_row(*cells, style="dim")
            continue
        cells = [p.formulation.name, Text(p.code), *_side_cells(p.loss), *_side_cells(p.grad)]
        if case.reduction != "none":
            r = p.reduced
            cells += ["—", "—"] if r is None else [shortest_repr(r.value, fmt), ulps(r.ulp_error)]
        bad = any(v for k, v in p.flag_counts.items() if k != "sigmoid saturated")
        style = "bold red" if bad else ("green" if p.loss and p.loss.max_ulp <= 1 else "yellow")
        errors.add_row(*cells, style=style)
    print_table(output, errors)
    if summary.exact_reduced is not None:
        print_text(
            output,
            f"exact {case.reduction} loss {summary.exact_reduced!r} "
            f"({fmt.name}: {shortest_repr(fmt.round(summary.exact_reduced).item(), fmt)})",
        )

    ran = [p for p in summary.paths if p.status == "ok"]
    for side in ("loss", "gradient"):
        hist = Table(title=f"ULP error histogram, {side} (elements)", title_justify="left")
        hist.add_column("formulation", no_wrap=True)
        for b in HISTOGRAM_BINS:
            hist.add_column(b, justify="right", no_wrap=True)
        shown = 0
        for p in ran:
            s = p.loss if side == "loss" else p.grad
            if s is None:
                continue
            hist.add_row(p.formulation.name, *(str(s.histogram[b]) for b in HISTOGRAM_BINS))
            shown += 1
        if shown:
            print_table(output, hist)

    flags = Table(title="flags: elements flagged (loss / gradient / either)", title_justify="left")
    flags.add_column("formulation", no_wrap=True)
    for name in FLAGS:
        flags.add_column(name, justify="right", no_wrap=True)
    for p in ran:
        cells = [p.formulation.name]
        for name in FLAGS:
            lo = p.loss.flags.get(name) if p.loss else None
            gr = p.grad.flags.get(name) if p.grad else None
            parts = ["-" if lo is None else str(lo), "-" if gr is None else str(gr)]
            cells.append(f"{parts[0]} / {parts[1]} / {p.flag_counts.get(name, 0)}")
        flags.add_row(*cells)
    if ran:
        print_table(output, flags)

    worst = Table(title="worst elements per path", title_justify="left")
    for name, justify in (
        ("formulation", "left"),
        ("side", "left"),
        ("i", "right"),
        ("z", "right"),
        ("y", "right"),
        ("value", "right"),
        ("exact", "right"),
        ("ULP error", "right"),
        ("flags", "left"),
    ):
        worst.add_column(
            name, justify="right" if justify == "right" else "left", no_wrap=name != "flags"
        )
    any_row = False
    for p in ran:
        first = True
        for side, elements in (("loss", p.worst_loss), ("gradient", p.worst_grad)):
            for e in elements:
                worst.add_row(*_element_cells(p.formulation.name if first else "", side, e, fmt))
                first = False
                any_row = True
    if any_row:
        print_table(output, worst)
    else:
        print_text(output, "every path is exact on every element")


def _element_cells(name: str, side: str, e: Element, fmt: Any) -> list[str]:
    return [
        name,
        side,
        str(e.index),
        shortest_repr(e.z, fmt),
        shortest_repr(e.y, fmt),
        shortest_repr(e.value, fmt),
        shortest_repr(e.exact, fmt),
        ulps(e.ulp_error),
        ", ".join(e.flags),
    ]


def batch_to_json(summary: BatchSummary) -> str:
    """The summary as JSON text (NaN and infinities as strings)."""
    return json.dumps(summary.to_dict(), indent=2, allow_nan=False)


def write_batch_json(summary: BatchSummary, out: IO[str]) -> None:
    out.write(batch_to_json(summary))
    out.write("\n")


def _size(*arrays: Any) -> int:
    try:
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays if a is not None))
    except ValueError:
        return 0  # let the checks name the argument
    return math.prod(shape)


def run_batch(
    source: str | None,
    given: dict[str, str | None],
    *,
    dtype: str | None,
    reduction: str,
    formulations: Sequence[str] | None,
    frameworks: Sequence[str] | None,
    as_json: bool,
    summary: bool,
    output: Output | None = None,
) -> bool:
    """``logitlab compare``'s batch route; ``False`` when the command's own per-element
    tables should handle the input (numbers on the command line, 20 elements or fewer,
    no ``--summary``).

    With ``--from``: the file's inputs (none may also be given as options), the dtype
    from ``--dtype``, else the file's float format, else float32; more than
    :data:`~logitlab.analysis.batch.SUMMARY_THRESHOLD` elements or ``--summary`` give the
    summary, fewer the per-element tables with a line saying where the dtype came from.
    """
    from logitlab.analysis.batch import (
        SUMMARY_THRESHOLD,
        case_from_file,
        compare_batch,
        resolve_dtype,
    )
    from logitlab.core.batch_file import batch_case
    from logitlab.core.errors import InputError
    from logitlab.core.inputs import parse_numbers

    if source is None:
        defaults = {"logits": "-2 2", "targets": "0.3 0.7"}
        texts = {k: defaults.get(k) if v is None else v for k, v in given.items()}
        numbers = {k: None if v is None else parse_numbers(v, k) for k, v in texts.items()}
        if not summary and _size(numbers["logits"], numbers["targets"]) <= SUMMARY_THRESHOLD:
            return False
        fmt, where = resolve_dtype(dtype, None)
        case = batch_case(**numbers, reduction=reduction, dtype=fmt)  # type: ignore[arg-type]
        result = compare_batch(
            case,
            formulations=formulations,
            frameworks=frameworks,
            source="--logits/--targets",
            dtype_source="--dtype" if dtype is not None else "default",
        )
        _emit(result, as_json, output)
        return True
    if dtype is not None:
        resolve_dtype(dtype, None)  # a bad --dtype is named before the file is read
    clash = [k for k, v in given.items() if v is not None]
    if clash:
        option = "--" + clash[0].replace("_", "-")
        raise InputError("--from", f"the file gives the inputs; drop {option} (or drop --from)")
    data, fmt, where, case = case_from_file(source, dtype, reduction)
    said = {"--dtype": "from --dtype", "file": "the file's dtype"}.get(
        where, f"default; the file holds {data.stored_dtype} values"
    )
    if summary or case.logits.size > SUMMARY_THRESHOLD:
        result = compare_batch(
            case,
            formulations=formulations,
            frameworks=frameworks,
            source=data.path,
            dtype_source=where,
            notes=data.notes,
        )
        _emit(result, as_json, output)
        return True
    from logitlab.analysis.compare import compare
    from logitlab.ui.tables import print_comparison

    comparison = compare(
        case.logits,
        case.targets,
        dtype=fmt,
        weight=case.weight,
        pos_weight=case.pos_weight,
        reduction=reduction,
        formulations=formulations,
        frameworks=frameworks,
    )
    notes = (*data.notes, f"dtype {fmt.name} ({said})")
    if as_json:
        data_out = comparison.to_dict()
        data_out.update(mode="elements", source=data.path, dtype_source=where)
        data_out["notes"] = [*notes, *data_out["notes"]]
        json.dump(data_out, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        from logitlab.ui.tables import output_for

        output = output or output_for()
        for note in notes:
            output.stream.write(f"note: {note}\n")
        print_comparison(comparison, output)
    return True


def _emit(result: BatchSummary, as_json: bool, output: Output | None = None) -> None:
    if as_json:
        write_batch_json(result, sys.stdout)
    else:
        print_batch(result, output)
