"""Terminal output for compare and sigmoid; it only presents what the core returns.

Two layouts, never a cut number:

* a wide table (rich), used on a terminal at least as wide as the table's natural width;
* blocks, one per formulation, with ``label  value`` lines, used when piped (plain text,
  stable to grep) or when the terminal (or ``--width``/``COLUMNS``) is narrower.  Long
  values wrap at their separators, the code line wraps on its own; numbers and flag names
  are never split, and no line is longer than the width (a single number wider than the
  width is the one exception).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from logitlab.analysis.compare import Comparison, Row
from logitlab.analysis.saturation import EXACT, SigmoidRow
from logitlab.core.numbers import exact_repr, shortest_repr

__all__ = [
    "MIN_WIDTH",
    "Output",
    "fits",
    "format_ulps",
    "output_for",
    "print_comparison",
    "print_sigmoid_report",
    "print_table",
    "print_text",
    "table_lines",
    "wrap_field",
]

#: The narrowest layout logitlab promises to keep whole.
MIN_WIDTH = 40
MAX_WIDTH = 1000


@dataclass(frozen=True)
class Output:
    """Where text goes and how wide it may be: ``terminal`` is False when piped."""

    width: int
    terminal: bool
    stream: TextIO

    def console(self) -> Console:
        return Console(
            file=self.stream,
            width=self.width,
            force_terminal=self.terminal,
            highlight=False,
            soft_wrap=False,
        )


def output_for(width: int | None = None, stream: TextIO | None = None) -> Output:
    """The output's width: ``width`` (``--width``) if given, else ``COLUMNS``, else the
    terminal's, else 80 (piped)."""
    stream = stream or sys.stdout
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    if width is None:
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            width = int(columns)
        elif terminal:
            width = shutil.get_terminal_size((80, 24)).columns
        else:
            width = 80
    return Output(max(MIN_WIDTH, min(MAX_WIDTH, width)), terminal, stream)


# Show at most this many elements in a table; --json has them all.
MAX_SHOWN = 20


def _justify(text: str) -> Literal["left", "right"]:
    return "right" if text == "right" else "left"


def format_ulps(u: float) -> str:
    if math.isnan(u):
        return "nan"
    if math.isinf(u):
        return "inf"
    if u == 0:
        return "0"
    if u < 0.01:
        return f"{u:.1e}"
    if u < 100:
        return f"{u:.2f}"
    return f"{u:.3g}"


def format_relative(r: float) -> str:
    if math.isnan(r):
        return "nan"
    if math.isinf(r):
        return "inf"
    return "0" if r == 0 else f"{r:.2e}"


def _values(a: np.ndarray, fmt_name: str) -> str:
    flat = np.asarray(a).ravel()
    texts = [shortest_repr(v, fmt_name) for v in flat[:MAX_SHOWN]]
    more = f", ... ({flat.size} in all)" if flat.size > MAX_SHOWN else ""
    return texts[0] if flat.size == 1 and np.ndim(a) == 0 else "[" + ", ".join(texts) + more + "]"


def _style(row: Row) -> str:
    if row.status != "ok":
        return "dim"
    if row.loss_flags:
        return "bold red"
    u = row.max_ulp_error
    return "green" if u <= 1 else "yellow"


# --- blocks: label  value lines that wrap without cutting ------------------------------


def wrap_field(label: str, value: str, width: int, indent: int, label_width: int) -> list[str]:
    """``label  value`` lines within ``width`` (see :func:`_wrap`)."""
    return list(_wrap(label, value, width, indent, label_width))


def _wrap(label: str, value: str, width: int, indent: int, label_width: int) -> Iterator[str]:
    """``label  value`` lines within ``width``: values wrap at ", " or spaces and never
    inside a number or a flag name (code wraps between tokens: :func:`code_chunks`)."""
    head = " " * indent + label.ljust(label_width) + "  "
    room = max(12, width - len(head))
    if len(value) <= room:
        yield (head + value).rstrip()
        return
    # Break at ", " first (lists of numbers or flags), and inside a too-long piece of prose at
    # its spaces; a number or a flag name is never split.
    tokens: list[str] = []
    pieces = value.split(", ")
    for i, piece in enumerate(pieces):
        comma = "," if i < len(pieces) - 1 else ""
        words = [piece] if len(piece) + 1 <= room else piece.split(" ")
        tokens.extend(words[:-1])
        tokens.append(words[-1] + comma)
    lines: list[str] = []
    current = ""
    for token in tokens:
        candidate = token if not current else current + " " + token
        if len(candidate) <= room or not current:
            current = candidate
        else:
            lines.append(current)
            current = token
    lines.append(current)
    pad = " " * len(head)
    for i, line in enumerate(lines):
        yield ((head if i == 0 else pad) + line).rstrip()


def _plain_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    indent: int,
    left: Sequence[int] = (-1,),
) -> list[str] | None:
    """Columns of plain text, or ``None`` when they do not fit in ``width`` whole.  Numbers
    are right-aligned; the columns in ``left`` (text: names, flags) left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    if indent + sum(widths) + 2 * (len(widths) - 1) > width:
        return None
    lefts = {i % len(headers) for i in left}
    right = [i not in lefts for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
        return (" " * indent + "  ".join(parts)).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def table_lines(table: Table, width: int) -> list[str]:
    """A rich table as plain lines within ``width``: aligned columns when they fit whole,
    else one block per row (its first cell, then ``header  value`` lines)."""
    out = textwrap.wrap(str(table.title), width) if table.title else []
    columns = table.columns
    headers = [str(c.header) for c in columns]
    n = max((len(c._cells) for c in columns), default=0)

    def plain(cell: object) -> str:
        return cell.plain if isinstance(cell, Text) else str(cell)

    rows = [[plain(c._cells[i]) if i < len(c._cells) else "" for c in columns] for i in range(n)]
    if not rows:
        return out
    fitted = _plain_table(headers, rows, width, 0, left=(0,))
    if fitted is not None:
        return out + fitted
    label_width = min(24, max(len(h) for h in headers[1:])) if len(headers) > 1 else 0
    for row in rows:
        out.append(row[0])
        for header, value in zip(headers[1:], row[1:]):
            if header == "code":  # code may wrap anywhere; numbers and flags never
                out.extend(_code_lines(value, width, 2, label_width))
            elif value:
                out.extend(_wrap(header, value, width, 2, label_width))
    return out


def print_table(output: Output, table: Table) -> None:
    """``table`` on a terminal wide enough for it, else :func:`table_lines`."""
    console = output.console()
    if output.terminal and fits(console, table):
        console.print(table)
        return
    for line in table_lines(table, output.width):
        output.stream.write(line + "\n")


def print_text(output: Output, text: str) -> None:
    """A line of prose, wrapped to the width, never read as markup."""
    for line in textwrap.wrap(text, output.width, subsequent_indent="  ") or [""]:
        output.stream.write(line + "\n")


#: Where a line of code may break: after a space, or after punctuation that ends a token.
_CODE_BREAK = re.compile(r"(?<=[ ,;(\[{])|(?<=[-+*/=])(?=[^-+*/=])")


def code_chunks(code: str, room: int) -> list[str]:
    """``code`` cut into pieces of at most ``room`` characters that join back to it,
    each cut after a space or a token-ending punctuation mark, so that no identifier or
    number is split; only a token longer than ``room`` is cut inside."""
    breaks = [m.start() for m in _CODE_BREAK.finditer(code)] + [len(code)]
    chunks: list[str] = []
    start = 0
    while len(code) - start > room:
        fits = [b for b in breaks if start < b <= start + room]
        end = fits[-1] if fits else start + room
        chunks.append(code[start:end])
        start = end
    chunks.append(code[start:])
    return chunks


def _code_lines(code: str, width: int, indent: int, label_width: int) -> Iterator[str]:
    head = " " * indent + "code".ljust(label_width) + "  "
    room = max(12, width - len(head))
    for i, chunk in enumerate(code_chunks(code, room)):
        yield ((head if i == 0 else " " * len(head)) + chunk).rstrip()


def comparison_blocks(c: Comparison, width: int) -> list[str]:
    """The comparison as plain lines no longer than ``width`` (see the module docstring)."""
    if c.quantity == "softmax_ce":
        return softmax_blocks(c, width)
    case = c.case
    fmt = c.dtype.name
    lw = 14
    out = [f"{_TITLE.get(c.quantity, c.quantity)} · {fmt} · reduction={case.reduction}"]
    inputs: list[tuple[str, np.ndarray | None]] = [
        ("logits", case.logits),
        ("targets", case.targets),
        ("weight", getattr(case, "weight", None)),
        ("pos_weight", getattr(case, "pos_weight", None)),
    ]
    for name, values in inputs:
        if values is not None:
            out.extend(_wrap(name, _values(values, fmt).strip("[]"), width, 0, lw))
    for name, text in _scalars(c):
        out.extend(_wrap(name, text, width, 0, lw))
    for note in c.notes:
        out.extend(_wrap("note", note, width, 0, lw))
    out.append("")
    out.append("exact (mpmath, 160 bits)")
    out.extend(
        _wrap(
            "loss", ", ".join(exact_repr(v, 17) for v in c.exact.values[:MAX_SHOWN]), width, 2, lw
        )
    )
    out.extend(_wrap(f"in {fmt}", _values(c.exact_value(), fmt).strip("[]"), width, 2, lw))
    z = case.logits.ravel()
    y = case.targets.ravel()
    n = len(c.exact.grads)
    shown = min(n, MAX_SHOWN)
    for row in c.rows:
        out.append("")
        out.append(row.formulation.name)
        out.extend(_code_lines(row.code, width, 2, lw))
        if row.status != "ok":
            out.extend(_wrap("status", f"{row.status}: {row.reason}", width, 2, lw))
            continue
        assert row.value is not None
        out.extend(_wrap("loss", _values(row.value, fmt).strip("[]"), width, 2, lw))
        out.extend(_wrap("ULP error", format_ulps(row.max_ulp_error), width, 2, lw))
        out.extend(_wrap("rel. error", format_relative(row.max_relative_error), width, 2, lw))
        out.extend(_wrap("loss flags", ", ".join(row.loss_flags) or "none", width, 2, lw))
        for note in row.notes:
            out.extend(_wrap("note", note, width, 2, lw))
        if row.grad is None or row.grad_ulp_error is None:
            out.extend(_wrap("gradient", "none (no autograd)", width, 2, lw))
            continue
        g = row.grad.ravel()
        gu = row.grad_ulp_error.ravel()
        cells = [
            (
                str(i),
                shortest_repr(z[i], fmt),
                shortest_repr(y[i], fmt),
                shortest_repr(g[i], fmt),
                exact_repr(c.exact.grads[i], 12),
                format_ulps(gu[i]),
                ", ".join(row.element_grad_flags[i]) or "none",
            )
            for i in range(shown)
        ]
        table = _plain_table(
            ("i", "z", "y", "gradient", "exact", "ULP error", "gradient flags"), cells, width, 2
        )
        out.append("  gradient d loss / d z, per element")
        if table is not None:
            out.extend(table)
            continue
        for i, (_, zi, yi, gi, ei, ui, fi) in enumerate(cells):
            out.append(f"  element {i}")
            for label, text in (
                ("z", zi),
                ("y", yi),
                ("gradient", gi),
                ("exact", ei),
                ("ULP error", ui),
                ("flags", fi),
            ):
                out.extend(_wrap(label, text, width, 4, lw - 2))
    if n > shown:
        out.append("")
        out.append(f"(showing {shown} of {n} elements; --json has them all)")
    return out


# --- softmax cross-entropy: values per sample, gradients per logit --------------------------

_TITLE = {"bce": "BCE", "softmax_ce": "softmax cross-entropy", "focal": "focal loss"}


def _scalars(c: Comparison) -> list[tuple[str, str]]:
    """The scalar arguments of the case that differ from nothing (focal's alpha, gamma)."""
    out = []
    for name in ("alpha", "gamma"):
        if hasattr(c.case, name):
            v = getattr(c.case, name)
            out.append((name, "none" if v is None else repr(float(v))))
    return out


def _targets_of(c: Comparison) -> np.ndarray:
    """Per logit, the target probability of its class (one-hot for class indices)."""
    case = c.case
    n, k = case.logits.shape
    if not case.class_indices:
        return np.asarray(case.target, dtype=np.float64)
    t = np.zeros((n, k))
    idx = np.asarray(case.target, dtype=np.int64)
    kept = (idx >= 0) & (idx < k)
    t[np.flatnonzero(kept), idx[kept]] = 1.0
    return t


def _softmax_inputs(c: Comparison) -> list[tuple[str, str]]:
    case = c.case
    fmt = c.dtype.name
    out = []
    for i, row in enumerate(case.logits[:MAX_SHOWN]):
        out.append((f"logits[{i}]", ", ".join(shortest_repr(v, fmt) for v in row)))
    if case.class_indices:
        out.append(("target", ", ".join(str(int(t)) for t in case.target[:MAX_SHOWN])))
    else:
        for i, row in enumerate(case.target[:MAX_SHOWN]):
            out.append((f"targets[{i}]", ", ".join(shortest_repr(v, fmt) for v in row)))
    if case.weight is not None:
        out.append(("weight", ", ".join(shortest_repr(v, fmt) for v in case.weight)))
    if case.class_indices and (np.asarray(case.target) == case.ignore_index).any():
        out.append(("ignore_index", str(case.ignore_index)))
    if case.label_smoothing:
        out.append(("label_smoothing", repr(case.label_smoothing)))
    n = case.logits.shape[0]
    if n > MAX_SHOWN:
        out.append(("", f"(showing {MAX_SHOWN} of {n} rows; --json has them all)"))
    return out


def _loss_label(c: Comparison) -> str:
    return "loss per sample" if c.case.reduction == "none" else f"loss ({c.case.reduction})"


def _grad_cells(c: Comparison, row: Row) -> list[tuple[str, ...]]:
    """One line per logit ``(n, c)``: z, t, gradient, exact, ULP error, and the sample's
    gradient flags on its first class."""
    fmt = c.dtype.name
    z = c.case.logits
    t = _targets_of(c)
    assert row.grad is not None and row.grad_ulp_error is not None
    g = row.grad.reshape(z.shape)
    gu = row.grad_ulp_error.reshape(z.shape)
    cells: list[tuple[str, ...]] = []
    k = z.shape[1]
    for flat in range(min(z.size, MAX_SHOWN)):
        i, j = divmod(flat, k)
        flags = row.element_grad_flags[i] if i < len(row.element_grad_flags) else ()
        cells.append(
            (
                str(i),
                str(j),
                shortest_repr(z[i, j], fmt),
                shortest_repr(t[i, j], fmt),
                shortest_repr(g[i, j], fmt),
                exact_repr(c.exact.grads[flat], 12),
                format_ulps(gu[i, j]),
                (", ".join(flags) or "none") if j == 0 else "",
            )
        )
    return cells


_GRAD_HEADERS = ("n", "c", "z", "t", "gradient", "exact", "ULP error", "sample flags")


def softmax_blocks(c: Comparison, width: int) -> list[str]:
    """A softmax comparison as plain lines no longer than ``width``: values per sample,
    gradients per logit ``(n, c)``."""
    case = c.case
    fmt = c.dtype.name
    lw = 15
    n, k = case.logits.shape
    out = [f"softmax cross-entropy · {fmt} · reduction={case.reduction} · {n} x {k} logits"]
    for name, text in _softmax_inputs(c):
        out.extend(_wrap(name, text, width, 0, lw))
    for note in c.notes:
        out.extend(_wrap("note", note, width, 0, lw))
    out.append("")
    out.append("exact (mpmath, 160 bits)")
    label = _loss_label(c)
    out.extend(
        _wrap(label, ", ".join(exact_repr(v, 17) for v in c.exact.values[:MAX_SHOWN]), width, 2, lw)
    )
    out.extend(_wrap(f"in {fmt}", _values(c.exact_value(), fmt).strip("[]"), width, 2, lw))
    for row in c.rows:
        out.append("")
        out.append(row.formulation.name)
        out.extend(_code_lines(row.code, width, 2, lw))
        if row.status != "ok":
            out.extend(_wrap("status", f"{row.status}: {row.reason}", width, 2, lw))
            continue
        assert row.value is not None
        out.extend(_wrap(label, _values(row.value, fmt).strip("[]"), width, 2, lw))
        out.extend(_wrap("ULP error", format_ulps(row.max_ulp_error), width, 2, lw))
        out.extend(_wrap("rel. error", format_relative(row.max_relative_error), width, 2, lw))
        out.extend(_wrap("loss flags", ", ".join(row.loss_flags) or "none", width, 2, lw))
        for i, flags in enumerate(row.element_loss_flags[:MAX_SHOWN]):
            if flags and n > 1:
                out.extend(_wrap(f"sample {i}", ", ".join(flags), width, 4, lw - 2))
        for note in row.notes:
            out.extend(_wrap("note", note, width, 2, lw))
        if row.grad is None or row.grad_ulp_error is None:
            out.extend(_wrap("gradient", "none (no autograd)", width, 2, lw))
            continue
        cells = _grad_cells(c, row)
        out.append("  gradient d loss / d z[n, c], per logit")
        table = _plain_table(_GRAD_HEADERS, cells, width, 2)
        if table is not None:
            out.extend(table)
            continue
        for cell in cells:
            out.append(f"  logit [{cell[0]}, {cell[1]}]")
            for header, text in zip(_GRAD_HEADERS[2:], cell[2:]):
                if text:
                    out.extend(_wrap(header, text, width, 4, lw - 2))
    total = case.logits.size
    if total > MAX_SHOWN:
        out.append("")
        out.append(f"(showing {MAX_SHOWN} of {total} gradient entries; --json has them all)")
    return out


def _loss_table(c: Comparison, title: str, label: str, flags: str) -> Table:
    """The loss table: the exact value, then each row's value, errors and loss flags
    (a row that did not run shows its status and reason)."""
    fmt = c.dtype.name
    table = Table(title=Text(title), title_justify="left", show_lines=False)
    for name, justify in (
        ("formulation", "left"),
        ("code", "left"),
        (label, "right"),
        ("ULP error", "right"),
        ("rel. error", "right"),
        (flags, "left"),
    ):
        table.add_column(name, justify=_justify(justify), no_wrap=True)
    table.add_row(
        "exact",
        "mpmath, 160 bits",
        ", ".join(exact_repr(v, 17) for v in c.exact.values[:MAX_SHOWN]),
        "",
        "",
        Text(f"{fmt}: {_values(c.exact_value(), fmt)}"),
    )
    for row in c.rows:
        if row.status != "ok":
            table.add_row(
                row.formulation.name,
                Text(row.code),
                "—",
                "",
                "",
                Text(f"{row.status}: {row.reason}"),
                style="dim",
            )
            continue
        assert row.value is not None
        table.add_row(
            row.formulation.name,
            Text(row.code),
            Text(_values(row.value, fmt)),
            format_ulps(row.max_ulp_error),
            format_relative(row.max_relative_error),
            ", ".join(row.loss_flags),
            style=_style(row),
        )
    return table


def _softmax_tables(c: Comparison) -> tuple[list[Text], Table, Table]:
    case = c.case
    fmt = c.dtype.name
    n, k = case.logits.shape
    head = [
        Text.assemble(
            ("softmax cross-entropy", "bold"),
            f" · {fmt} · reduction={case.reduction} · {n} x {k} logits",
        )
    ]
    head.extend(Text(f"{name}  {text}") for name, text in _softmax_inputs(c))
    for note in c.notes:
        head.append(Text.assemble(("note: ", "yellow"), note))
    label = _loss_label(c)
    table = _loss_table(c, label, label, "loss flags, any sample")
    grads = Table(
        title=Text("gradient d loss / d z[n, c], per logit"),
        title_justify="left",
        show_lines=False,
    )
    grads.add_column("formulation", no_wrap=True)
    for name in _GRAD_HEADERS:
        justify = "left" if name == "sample flags" else "right"
        grads.add_column(name, justify=_justify(justify), no_wrap=True)
    for row in c.rows:
        if row.status != "ok" or row.grad is None or row.grad_ulp_error is None:
            continue
        cells = _grad_cells(c, row)
        for i, cell in enumerate(cells):
            flagged = bool(row.element_grad_flags[int(cell[0])])
            grads.add_row(
                row.formulation.name if i == 0 else "",
                *cell,
                style="bold red" if flagged else None,
                end_section=i == len(cells) - 1,
            )
    return head, table, grads


# --- the wide table ------------------------------------------------------------------------


def _comparison_tables(c: Comparison) -> tuple[list[Text], Table, Table]:
    case = c.case
    fmt = c.dtype.name
    title = _TITLE.get(c.quantity, c.quantity)
    head = [Text.assemble((title, "bold"), f" · {fmt} · reduction={case.reduction}")]
    head.append(Text(f"logits  {_values(case.logits, fmt)}"))
    head.append(Text(f"targets {_values(case.targets, fmt)}"))
    if getattr(case, "weight", None) is not None:
        head.append(Text(f"weight  {_values(case.weight, fmt)}"))
    if getattr(case, "pos_weight", None) is not None:
        head.append(Text(f"pos_weight {_values(case.pos_weight, fmt)}"))
    for name, text in _scalars(c):
        head.append(Text(f"{name} {text}"))
    for note in c.notes:
        head.append(Text.assemble(("note: ", "yellow"), note))

    # Row flags: the union of the elements' loss flags.
    table = _loss_table(c, "loss", "loss", "loss flags, any element")

    grads = Table(
        title="gradient d loss / d z, per element", title_justify="left", show_lines=False
    )
    for name, justify in (
        ("formulation", "left"),
        ("i", "right"),
        ("z", "right"),
        ("y", "right"),
        ("gradient", "right"),
        ("exact", "right"),
        ("ULP error", "right"),
        ("gradient flags", "left"),
    ):
        grads.add_column(name, justify=_justify(justify), no_wrap=True)
    n = len(c.exact.grads)
    shown = min(n, MAX_SHOWN)
    z = case.logits.ravel()
    y = case.targets.ravel()
    for row in c.rows:
        if row.status != "ok" or row.grad is None or row.grad_ulp_error is None:
            continue
        g = row.grad.ravel()
        gu = row.grad_ulp_error.ravel()
        for i in range(shown):
            element_flags = row.element_grad_flags[i]
            style = "bold red" if element_flags else ("green" if gu[i] <= 1 else "yellow")
            grads.add_row(
                row.formulation.name if i == 0 else "",
                str(i),
                shortest_repr(z[i], fmt),
                shortest_repr(y[i], fmt),
                shortest_repr(g[i], fmt),
                f"{exact_repr(c.exact.grads[i], 12)}",
                format_ulps(gu[i]),
                ", ".join(element_flags),
                style=style,
                end_section=i == shown - 1,
            )
    return head, table, grads


def fits(console: Console, *renderables: Table) -> bool:
    """Whether each table's natural width (measured unconstrained) fits the console."""
    unconstrained = console.options.update_width(MAX_WIDTH * 10)
    return all(
        console.measure(r, options=unconstrained).maximum <= console.width for r in renderables
    )


def print_comparison(
    c: Comparison, output: Output | None = None, explanation: Sequence[str] = ()
) -> None:
    """Print ``c``: the wide table on a terminal that fits it, else blocks; then the
    ``explanation`` sentences, if any, wrapped to the width."""
    output = output or output_for()
    _print_comparison(c, output)
    if explanation:
        output.stream.write("\nwhy\n")
        for sentence in explanation:
            for line in textwrap.wrap(
                sentence,
                output.width,
                initial_indent="- ",
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            ) or [""]:
                output.stream.write(line + "\n")


def _print_comparison(c: Comparison, output: Output) -> None:
    console = output.console()
    if output.terminal:
        tables = _softmax_tables if c.quantity == "softmax_ce" else _comparison_tables
        head, table, grads = tables(c)
        if fits(console, table, grads):
            for text in head:
                console.print(text)
            console.print(table)
            console.print(grads)
            n = len(c.exact.grads)
            if n > MAX_SHOWN:
                what = "gradient entries" if c.quantity == "softmax_ce" else "elements"
                console.print(f"(showing {MAX_SHOWN} of {n} {what}; --json has them all)")
            return
    for line in comparison_blocks(c, output.width):
        output.stream.write(line + "\n")


def _sigmoid_label(r: SigmoidRow) -> str:
    return "exact, rounded once" if r.implementation == EXACT else r.code


def sigmoid_blocks(z: float, rows: Sequence[SigmoidRow], width: int) -> list[str]:
    lw = 16
    out = textwrap.wrap(
        f"sigmoid({z!r}) in each dtype, and where each implementation saturates", width
    )
    exact_value = next((r.exact for r in rows), None)
    if exact_value is not None:
        out.extend(_wrap("exact", exact_repr(exact_value, 17), width, 0, lw))
    for dtype in dict.fromkeys(r.dtype for r in rows):
        out.append("")
        out.append(dtype)
        group = [r for r in rows if r.dtype == dtype]
        cells = [_sigmoid_cells(r) for r in group]
        headers: tuple[str, ...] = ("implementation", "sigmoid(z)", "ULP error", "rel. error")
        headers += ("== 1 from z >=", "== 0 for z <=")
        if all(r.status == "ok" for r in group):
            table = _plain_table(headers, cells, width, 2, left=(0,))
            if table is not None:
                out.extend(table)
                continue
        for r, row_cells in zip(group, cells):
            label = row_cells[0]
            out.extend("  " + line for line in textwrap.wrap(label, width - 2))
            if r.status != "ok" or r.value is None:
                out.extend(_wrap("status", f"{r.status}: {r.reason}", width, 4, lw))
                continue
            for name, text in zip(headers[1:], row_cells[1:]):
                out.extend(_wrap(name, text, width, 4, lw))
    out.append("")
    out.extend(_sigmoid_notes(z, rows, width))
    return out


def _sigmoid_cells(r: SigmoidRow) -> tuple[str, ...]:
    if r.status != "ok" or r.value is None:
        return (_sigmoid_label(r), "", "", "", "", "")
    t = r.thresholds
    return (
        _sigmoid_label(r),
        shortest_repr(r.value, r.dtype),
        format_ulps(r.ulp_error if r.ulp_error is not None else math.nan),
        format_relative(r.relative_error if r.relative_error is not None else math.nan),
        "never" if t.one_from is None else shortest_repr(t.one_from, r.dtype),
        "never" if t.zero_up_to is None else shortest_repr(t.zero_up_to, r.dtype),
    )


def _sigmoid_notes(z: float, rows: Sequence[SigmoidRow], width: int) -> list[str]:
    out = []
    for r in rows:
        if r.implementation == EXACT and r.z != z:
            out.append(f"note: z = {z!r} is {r.z!r} in {r.dtype}")
    out.extend(
        textwrap.wrap(
            "Thresholds are found by searching each dtype's values with the real "
            "implementation (exhaustively for 16-bit formats).",
            width,
        )
    )
    return out


def print_sigmoid_report(
    z: float, rows: Sequence[SigmoidRow], output: Output | None = None
) -> None:
    output = output or output_for()
    console = output.console()
    if output.terminal:
        table = _sigmoid_table(rows)
        if fits(console, table):
            console.print(
                Text.assemble(
                    (f"sigmoid({z!r})", "bold"),
                    " in each dtype, and where each implementation saturates",
                )
            )
            exact_value = next((r.exact for r in rows), None)
            if exact_value is not None:
                console.print(Text(f"exact: {exact_repr(exact_value, 17)}"))
            console.print(table)
            for line in _sigmoid_notes(z, rows, output.width):
                console.print(Text(line))
            return
    for line in sigmoid_blocks(z, rows, output.width):
        output.stream.write(line + "\n")


def _sigmoid_table(rows: Sequence[SigmoidRow]) -> Table:
    table = Table(show_lines=False)
    for name, justify in (
        ("dtype", "left"),
        ("implementation", "left"),
        ("sigmoid(z)", "right"),
        ("ULP error", "right"),
        ("rel. error", "right"),
        ("== 1 from z >=", "right"),
        ("== 0 for z <=", "right"),
    ):
        table.add_column(name, justify=_justify(justify), no_wrap=True)
    last = None
    for i, r in enumerate(rows):
        t = r.thresholds
        label = _sigmoid_label(r)
        end = i == len(rows) - 1 or rows[i + 1].dtype != r.dtype
        if r.status != "ok":
            table.add_row(
                r.dtype,
                Text(label),
                "—",
                "",
                "",
                Text(r.reason or ""),
                "",
                style="dim",
                end_section=end,
            )
            continue
        assert r.value is not None
        lost = r.value == 0 and r.exact != 0
        table.add_row(
            r.dtype if r.dtype != last else "",
            Text(label),
            shortest_repr(r.value, r.dtype),
            format_ulps(r.ulp_error if r.ulp_error is not None else math.nan),
            format_relative(r.relative_error if r.relative_error is not None else math.nan),
            "never" if t.one_from is None else shortest_repr(t.one_from, r.dtype),
            "never" if t.zero_up_to is None else shortest_repr(t.zero_up_to, r.dtype),
            style="bold red" if lost else None,
            end_section=end,
        )
        last = r.dtype
    return table
