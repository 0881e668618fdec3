"""Plots: ULP error (log scale) against the logit (symmetric log scale), one panel per dtype.

Each line is a formulation: the largest error over all targets in each of a few hundred
bins of z.  Vertical lines mark each formulation's breakpoints at their signed z (the
loss's relative-error onsets on the loss plot, the gradient's vanishing onsets on the
gradient plot, every target): dotted against the target, dash-dotted with it.  Results
that are NaN or infinite where the exact value is finite sit on the top line.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from logitlab.analysis.audit import AuditResult, Row
from logitlab.analysis.audit_rows import plot_limit
from logitlab.core.formats import get_format

__all__ = ["figure", "save_plots", "svg_strings"]

_FLOOR = 1e-3
_CEIL_BY_DTYPE = {"float16": 1e7, "bfloat16": 1e7, "float32": 1e12, "float64": 1e21}


def _breaks(row: Row, which: str) -> list[tuple[float, str]]:
    """``(z, side)`` of the row's onsets shown on the ``value`` or ``grad`` plot."""
    criterion = "loss relative error" if which == "value" else "gradient vanishes"
    seen = {(o.z, o.side) for o in row.onsets if o.criterion == criterion and o.z is not None}
    return sorted(seen)


def figure(result: AuditResult, which: str = "value") -> Any:
    """A matplotlib figure of the loss (``value``) or gradient (``grad``) errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = list(result.settings.dtypes)
    ncols = 2 if len(dtypes) > 1 else 1
    nrows = math.ceil(len(dtypes) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 3.6 * nrows), squeeze=False)
    names = list(dict.fromkeys(r.name for r in result.rows))
    cmap = plt.get_cmap("tab20")
    colours = {n: cmap(i % 20) for i, n in enumerate(names)}
    for ax, dtype in zip(axes.ravel(), dtypes):
        ceil = _CEIL_BY_DTYPE.get(dtype, 1e21)
        for row in result.rows:
            data = row.plot.get(which) if row.dtype == dtype else None
            if not data:
                continue
            ys = [min(max(u, _FLOOR), ceil) for u in data["ulp"]]
            style = {"ls": "none", "marker": ".", "ms": 3} if row.plot.get("sampled") else {}
            ax.plot(data["z"], ys, lw=0.9, color=colours[row.name], label=row.name, **style)
            for z, side in _breaks(row, which):
                ls = ":" if side in ("against", "negative") else "-."
                ax.axvline(z, color=colours[row.name], ls=ls, lw=0.8)
        ax.set_xscale("symlog", linthresh=1.0)
        limit = plot_limit(get_format(dtype))
        ax.set_xlim(-limit, limit)
        ax.set_yscale("log")
        ax.set_ylim(_FLOOR / 2, ceil * 3)
        ax.axhline(1.0, color="#999", lw=0.6)
        ax.axhline(ceil, color="#c33", lw=0.6, ls="--")
        ax.set_title(f"{dtype}: {'loss' if which == 'value' else 'gradient'} error")
        ax.set_xlabel(f"logit z (|z| <= {limit:.4g} shown)")
        ax.set_ylabel("ULP error (max over targets)")
    for ax in axes.ravel()[len(dtypes) :]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    for ax in axes.ravel()[1 : len(dtypes)]:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
    fig.suptitle(
        f"logitlab audit ({result.settings.quantity}): breakpoints dotted (against the "
        "target) and dash-dotted (with it); "
        "dashed red: NaN / inf / off the scale",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.04 + 0.02 * math.ceil(len(labels) / 6), 1, 0.96))
    return fig


def save_plots(result: AuditResult, out: Path) -> list[Path]:
    """Write ``audit-<quantity>[-grad].png`` and ``.svg`` into ``out``; return the paths."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for which, suffix in (("value", ""), ("grad", "-grad")):
        if which == "grad" and not any(r.plot.get("grad") for r in result.rows):
            continue
        fig = figure(result, which)
        for ext in ("png", "svg"):
            path = out / f"audit-{result.settings.quantity}{suffix}.{ext}"
            with np.errstate(all="ignore"):  # symlog's inverse overflows off-axis
                fig.savefig(path, dpi=90 if ext == "png" else None)
            paths.append(path)
        plt.close(fig)
    return paths


def svg_strings(result: AuditResult) -> dict[str, str]:
    """The plots as inline SVG, keyed by caption."""
    import matplotlib.pyplot as plt

    out = {}
    for which, caption in (("value", "loss error"), ("grad", "gradient error")):
        if which == "grad" and not any(r.plot.get("grad") for r in result.rows):
            continue
        fig = figure(result, which)
        buf = io.StringIO()
        with np.errstate(all="ignore"):
            fig.savefig(buf, format="svg")
        plt.close(fig)
        text = buf.getvalue()
        out[caption] = text[text.index("<svg") :]
    return out
