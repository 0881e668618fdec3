"""Which logits and targets an audit runs: exhaustive for 16-bit formats, swept for wider.

Every point is a value of the audited format (as float64).  16-bit formats are small
enough to try every finite value; float32 and float64 get a log-spaced sweep over both
signs (from the smallest subnormal to the largest finite value), uniform samples where
the functions change (|z| up to where sigmoid rounds to 0), and the format's named edges
with their neighbours.  The same seed gives the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from logitlab.core.formats import FloatFormat

__all__ = [
    "DEFAULT_TARGETS",
    "FULL_TARGETS",
    "Edges",
    "edges",
    "logit_points",
    "neighbours",
    "targets_for",
]

#: Hard labels, a soft grid with its complements, and label smoothing with 0.01.
FULL_TARGETS: tuple[float, ...] = (
    0.0,
    1.0,
    1e-10,
    1e-3,
    0.05,
    0.3,
    0.5,
    0.7,
    0.95,
    0.999,
    1 - 1e-10,
    0.005,  # label smoothing 0.01 of a 0 label: 0.01 / 2
    0.995,  # ... and of a 1 label
)
#: The default audit's targets: hard labels and the soft grid, no label smoothing.
DEFAULT_TARGETS: tuple[float, ...] = FULL_TARGETS[:11]


@dataclass(frozen=True)
class Edges:
    """Named logits of a format, found by evaluating the exact sigmoid on its values.

    ``sigmoid_one``: the smallest z whose sigmoid rounds to 1; ``sigmoid_zero``: the largest
    z whose sigmoid rounds to 0; ``exp_overflow``: the smallest z with ``exp(z)`` rounding
    to infinity; ``one_plus_exp``: the smallest z with ``1 + exp(-z)`` rounding to 1, where
    ``1 / (1 + exp(-z))`` (PyTorch's sigmoid, the hand-written one) first returns 1.
    """

    sigmoid_one: float
    sigmoid_zero: float
    exp_overflow: float
    one_plus_exp: float = math.nan

    def named(self, fmt: FloatFormat) -> dict[str, float]:
        return {
            "sigmoid rounds to 1": self.sigmoid_one,
            "sigmoid rounds to 0": self.sigmoid_zero,
            "exp overflows": self.exp_overflow,
            "1 + exp(-z) rounds to 1": self.one_plus_exp,
            "smallest subnormal": fmt.smallest_subnormal,
            "max": fmt.max,
        }


def neighbours(x: float, fmt: FloatFormat, k: int) -> np.ndarray:
    """``x`` (a value of ``fmt``) and its ``k`` neighbours on each side, ascending."""
    dt = fmt.numpy_dtype
    out = [np.asarray([x], dtype=dt)]
    up = down = out[0]
    for _ in range(k):
        with np.errstate(over="ignore"):
            up = np.nextafter(up, np.asarray([np.inf], dtype=dt))
            down = np.nextafter(down, np.asarray([-np.inf], dtype=dt))
        out += [up, down]
    values = np.concatenate(out).astype(np.float64)
    return np.unique(values[np.isfinite(values)])


def _first(candidates: np.ndarray, good: np.ndarray, largest: bool = False) -> float:
    chosen = candidates[good]
    if chosen.size == 0:
        return math.nan
    return float(chosen.max() if largest else chosen.min())


def edges(fmt: FloatFormat) -> Edges:
    """Find the format's edges: closed forms give a start, exact evaluation decides."""
    p = fmt.precision
    # Where the exact sigmoid rounds to 1 and to 0: the one saturation table's search.
    from logitlab.analysis.saturation import EXACT, saturation_thresholds

    exact = saturation_thresholds(fmt, EXACT)
    # exp(z) overflows once it reaches max + ulp(max)/2
    top = math.log(fmt.max) + 2.0 ** -(p + 1)
    over = neighbours(float(fmt.round(top)), fmt, 4)
    with np.errstate(over="ignore"):
        big = np.exp(over.astype(np.longdouble))
    overflow = big >= np.longdouble(fmt.max) * (1 + np.longdouble(2.0) ** -(p + 1))
    # 1 + exp(-z) rounds to 1 once exp(-z) <= 2**-p (half an ULP of 1, ties to even)
    import mpmath

    start = p * math.log(2)
    near = neighbours(float(fmt.round(start)), fmt, 4)
    with mpmath.workprec(200):
        bound = p * mpmath.log(2)
        past = np.array([mpmath.mpf(float(v)) >= bound for v in near])
    return Edges(
        one_plus_exp=_first(near, past),
        sigmoid_one=math.nan if exact.one_from is None else exact.one_from,
        sigmoid_zero=math.nan if exact.zero_up_to is None else exact.zero_up_to,
        exp_overflow=_first(over, overflow),
    )


def logit_points(fmt: FloatFormat, n: int, seed: int) -> np.ndarray:
    """The audit's logits for ``fmt``: every finite value (16-bit), else about ``n`` points.

    Always includes ``+-0``, ``+-inf``, the smallest subnormal and ``+-max``.
    """
    specials = [0.0, -0.0, math.inf, -math.inf]
    if fmt.bits == 16:
        values = fmt.values()
    else:
        rng = np.random.default_rng(seed)
        e = edges(fmt)
        n_log = max(2, (n * 3) // 5)
        exponents = np.linspace(math.log2(fmt.smallest_subnormal), math.log2(fmt.max), n_log // 2)
        with np.errstate(over="ignore"):
            magnitudes = np.minimum(np.exp2(exponents), fmt.max)
        width = 1.25 * abs(e.sigmoid_zero)
        uniform = rng.uniform(-width, width, max(0, n - n_log - 64))
        named = [
            neighbours(v, fmt, 2) for x in e.named(fmt).values() for v in (x, -x) if np.isfinite(v)
        ]
        values = fmt.round(np.concatenate([magnitudes, -magnitudes, uniform, *named]))
        values = values[np.isfinite(values)]
    values = np.unique(values)  # merges -0 into 0; both are added back below
    values = values[values != 0]
    return np.concatenate([values, np.asarray(specials)])


def targets_for(fmt: FloatFormat, targets: tuple[float, ...]) -> tuple[np.ndarray, list[str]]:
    """The targets rounded to ``fmt``, without duplicates, and notes on what merged."""
    rounded = fmt.round(np.asarray(targets, dtype=np.float64))
    notes = []
    kept: list[float] = []
    for raw, r in zip(targets, rounded):
        if float(r) in kept:
            notes.append(f"target {raw!r} rounds to {float(r)!r} in {fmt.name}")
            continue
        kept.append(float(r))
    return np.asarray(kept), notes
