"""Plain-language sentences that say why the numbers on screen are what they are.

Everything said is read off a :class:`~logitlab.analysis.compare.Comparison`: the rows that
ran (their status, values, errors and per-element flags), the inputs as the frameworks got
them (rounded to the dtype) and the exact values.  Thresholds come from
:func:`~logitlab.analysis.saturation.saturation` (or
:func:`~logitlab.analysis.saturation.saturation_thresholds` for other sigmoids), clamp and
clip constants from the formulations.  Nothing is typed in and nothing is recomputed.

Each sentence template is one function below, guarded only by the flags, statuses and
values present; templates are written per flag over rows (by formulation name and
``via_probabilities``), not for PyTorch's rows alone.  A row that did not run gets exactly
one sentence, the same for every such row (:func:`_not_run`), and is named nowhere else.

:func:`sentences` returns :class:`Sentence` objects that also say which rows and elements
they name and what they claim about the flags (:class:`Claim`), so that tests can check
that no sentence contradicts a flag; :func:`explain` returns the texts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from logitlab.analysis.compare import Comparison, Row
from logitlab.analysis.saturation import Saturation, saturation_thresholds
from logitlab.core.formats import FloatFormat
from logitlab.core.numbers import shortest_repr
from logitlab.formulations._torch import TORCH_BACKWARD_EPSILON, TORCH_LOG_CLAMP

__all__ = ["Claim", "Sentence", "explain", "sentences", "softmax_sentences"]

# Subscript digits for element numbers: z₁, z₂, ...
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
# A loss error above this many ULPs, with no flag to explain it, gets a sentence of its own.
_NOTABLE_ULPS = 8.0
# At most this many elements are named in one list; the rest are counted.
_LIST = 4
# The sigmoid each probabilities-path formulation goes through (its threshold is that
# sigmoid's, found by search).  A row not listed gets sentences without a threshold.
_SIGMOID_OF = {
    "torch.probabilities": "torch.sigmoid",
    "torch.naive": "torch.sigmoid",
    "numpy.naive": "numpy.sigmoid",
    "sklearn.log_loss": "scipy.expit",
    "keras.probabilities": "keras.sigmoid",
    "jax.naive": "jax.sigmoid",
}
# Logits-path formulas whose loss loses digits without a flag, and the family that says
# where: "torch" computes (1 - y) z + log(1 + exp(-z)) (Keras' torch backend calls it),
# "numpy" max(z, 0) - z y + log1p(exp(-|z|)).  Other rows get the measurement alone.
_FORMULA = {
    "torch.logits": ("torch", "(1 − y)·z + log(1 + exp(−z))"),
    "keras.logits": ("torch", "(1 − y)·z + log(1 + exp(−z)) (PyTorch's, on Keras' torch backend)"),
    "numpy.logits": ("numpy", "max(z, 0) − z·y + log1p(exp(−|z|))"),
}


@dataclass(frozen=True)
class Claim:
    """What a sentence says about one row's flags at some elements.

    ``holds``: each of ``elements`` has ``flag`` on ``side`` (``"loss"``, ``"gradient"``
    or ``"any"``); otherwise none of them has it, and ``flag=None`` then means no flag at
    all on that side.
    """

    row: str
    side: str
    flag: str | None
    elements: tuple[int, ...]
    holds: bool


def _held(name: str, flag: str, loss: list[int], grad: list[int]) -> list[Claim]:
    """Claims that ``flag`` holds on the loss at ``loss`` and on the gradient at ``grad``
    (a side with no elements makes no claim)."""
    claims = []
    if loss:
        claims.append(Claim(name, "loss", flag, tuple(loss), True))
    if grad:
        claims.append(Claim(name, "gradient", flag, tuple(grad), True))
    return claims


def _flagged(ctx: _Ctx | _SoftmaxCtx, flag: str) -> Iterator[tuple[Row, list[int], list[int]]]:
    """(row, loss elements, gradient elements) of each row with ``flag`` on either side."""
    for r in ctx.ok:
        loss = ctx.where(r, flag, "loss")
        grad = ctx.where(r, flag, "gradient")
        if loss or grad:
            yield r, loss, grad


def _sides(
    loss: list[int], grad: list[int], at: Callable[[list[int]], str], lead: str = "the"
) -> str:
    """ "the loss at ... and the gradient at ...", for the sides that have elements, each
    listed by ``at``."""
    return " and ".join(
        f"{lead} {side} at {at(ix)}" for side, ix in (("loss", loss), ("gradient", grad)) if ix
    )


def _flag_sentence(
    flag: str,
    text: str,
    name: str,
    loss: list[int],
    grad: list[int],
    more: tuple[Claim, ...] = (),
) -> Sentence:
    """The sentence of a template named after ``flag`` that says the flag holds for row
    ``name`` at ``loss`` and ``grad`` (with ``more`` claims)."""
    return Sentence(
        flag,
        text,
        rows=(name,),
        elements=tuple(sorted(set(loss) | set(grad))),
        claims=(*_held(name, flag, loss, grad), *more),
    )


@dataclass(frozen=True)
class Sentence:
    """One sentence, the template that made it, and the rows and elements it names."""

    template: str
    text: str
    rows: tuple[str, ...] = ()
    elements: tuple[int, ...] = ()
    claims: tuple[Claim, ...] = ()


@dataclass(frozen=True)
class _Ctx:
    c: Comparison
    sat: Saturation
    fmt: FloatFormat
    z: np.ndarray
    y: np.ndarray
    w: np.ndarray | None
    exact_grad: np.ndarray
    exact_elements: np.ndarray | None  # per element, only without reduction
    ok: tuple[Row, ...]

    @property
    def n(self) -> int:
        return int(self.z.size)

    def num(self, v: float) -> str:
        return shortest_repr(v, self.fmt)

    def loss_flags(self, row: Row, i: int) -> tuple[str, ...]:
        f = row.element_loss_flags
        return f[i] if i < len(f) else ()

    def grad_flags(self, row: Row, i: int) -> tuple[str, ...]:
        f = row.element_grad_flags
        return f[i] if i < len(f) else ()

    def flags(self, row: Row, i: int) -> tuple[str, ...]:
        return (*self.loss_flags(row, i), *self.grad_flags(row, i))

    def where(self, row: Row, flag: str, side: str = "any") -> list[int]:
        get = {"loss": self.loss_flags, "gradient": self.grad_flags, "any": self.flags}[side]
        return [i for i in range(self.n) if flag in get(row, i)]

    def weight(self, i: int) -> float:
        return 1.0 if self.w is None else float(self.w[i])

    def z_name(self, i: int) -> str:
        return "z" + str(i + 1).translate(_SUB)

    def element(self, i: int, target: bool = False) -> str:
        text = f"{self.z_name(i)} = {self.num(self.z[i])}"
        return f"{text} (y = {self.num(self.y[i])})" if target else text

    def elements(self, idx: Sequence[int], target: bool = False) -> str:
        shown = [self.element(i, target) for i in idx[:_LIST]]
        more = len(idx) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _y(i: int) -> str:
    return "y" + str(i + 1).translate(_SUB)


def _names(rows: Iterable[Row]) -> str:
    names = [r.formulation.name for r in rows]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _up(u: float) -> str:
    """``u`` to two significant digits, rounded up: the text reads back as a bound >= ``u``
    ("within 0.52 ULPs" for 0.5104)."""
    if u == 0:
        return "0"
    scale = 10.0 ** (math.floor(math.log10(u)) - 1)
    if scale == 0 or not math.isfinite(u / scale):
        return f"{u:.2g}"

    def text(k: int) -> str:
        bound = k * scale
        if bound < 1e-3:
            return f"{bound:.2g}"
        if bound >= 1e4:
            mantissa, exponent = f"{bound:.1e}".split("e")
            return f"{mantissa}e{int(exponent)}"
        return f"{bound:.{max(0, -math.floor(math.log10(scale)))}f}"

    k = max(1, math.ceil(u / scale) - 1)
    while float(text(k)) < u:
        k += 1
    return text(k)


def _ulps(u: float) -> str:
    """An error in ULPs to about two digits (nearest: it says how far off, not a bound)."""
    if math.isnan(u):
        return "NaN"
    if math.isinf(u):
        return "infinitely many"
    if u >= 1e4:
        mantissa, exponent = f"{u:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{u:.3g}"


def _minus(text: str) -> str:
    return text.replace("-", "−")


@functools.cache
def _other_thresholds(dtype: str, sigmoid: str) -> tuple[float | None, float | None] | None:
    try:
        t = saturation_thresholds(dtype, sigmoid)
    except Exception:  # the sigmoid's framework refused: say nothing about a threshold
        return None
    return t.one_from, t.zero_up_to


def _thresholds(ctx: _Ctx, row: Row) -> tuple[str, float | None, float | None] | None:
    """(sigmoid name, one_from, zero_up_to) of the sigmoid ``row`` goes through."""
    sigmoid = _SIGMOID_OF.get(row.formulation.name)
    if sigmoid is None:
        return None
    if sigmoid == "torch.sigmoid":
        return sigmoid, ctx.sat.one_from, ctx.sat.zero_up_to
    found = _other_thresholds(ctx.fmt.name, sigmoid)
    return None if found is None else (sigmoid, *found)


def _via(ctx: _Ctx, probabilities: bool) -> list[Row]:
    return [r for r in ctx.ok if r.formulation.via_probabilities == probabilities]


# --- sentence templates -------------------------------------------------------------------


def _rounded_targets(ctx: _Ctx) -> list[Sentence]:
    """The targets as the dtype holds them, where that shows in four digits."""
    shown: dict[str, list[int]] = {}
    for i in range(ctx.n):
        text = ctx.num(ctx.y[i])
        if f"{float(text):.4g}" != f"{float(ctx.y[i]):.4g}":
            shown.setdefault(text, []).append(i)
    if not shown:
        return []
    parts = [
        f"y = {text} is {float(ctx.y[idx[0]])!r} ({', '.join(_y(i) for i in idx[:_LIST])})"
        for text, idx in shown.items()
    ]
    return [
        Sentence(
            "rounded targets",
            f"In {ctx.fmt.name} " + "; ".join(parts) + ": that is what every framework got, "
            "and every number here is computed from it.",
            elements=tuple(i for idx in shown.values() for i in idx),
        )
    ]


def _saturated(ctx: _Ctx, one: bool) -> list[Sentence]:
    """Where sigmoid rounded to exactly 1 (``one``) or 0 on a probabilities path."""
    groups: dict[float, list[tuple[Row, list[int]]]] = {}
    sigmoids: dict[float, list[str]] = {}
    plain: list[tuple[Row, list[int]]] = []
    for r in _via(ctx, True):
        idx = [
            i
            for i in ctx.where(r, "sigmoid saturated")
            if (ctx.z[i] > 0) == one and math.isfinite(ctx.z[i])
        ]
        if not idx:
            continue
        t = _thresholds(ctx, r)
        threshold = None if t is None else (t[1] if one else t[2])
        if t is None or threshold is None:
            plain.append((r, idx))
        else:
            groups.setdefault(threshold, []).append((r, idx))
            if t[0] not in sigmoids.setdefault(threshold, []):
                sigmoids[threshold].append(t[0])
    value, log = ("1", "log(1 − p)") if one else ("0", "log(p)")
    out: list[Sentence] = []
    for threshold, members in groups.items():
        sigmoid = ", ".join(sigmoids[threshold])
        # Every element past the threshold that counts is saturated on these rows.
        past = [
            i
            for i in range(ctx.n)
            if math.isfinite(ctx.z[i])
            and (ctx.z[i] >= threshold if one else ctx.z[i] <= threshold)
            and ctx.weight(i) != 0
        ]
        direction = "up" if one else "down"
        where = _where_rows(ctx, members)
        out.append(
            Sentence(
                "sigmoid saturated",
                f"From z = {ctx.num(threshold)} {direction}, {ctx.fmt.name} sigmoid "
                f"({sigmoid}) is exactly {value}, so {log} = log 0 in {where}.",
                rows=tuple(r.formulation.name for r, _ in members),
                elements=tuple(sorted({i for _, idx in members for i in idx})),
                claims=tuple(
                    Claim(r.formulation.name, "any", "sigmoid saturated", tuple(idx), True)
                    for r, idx in members
                )
                + tuple(
                    Claim(r.formulation.name, "any", "sigmoid saturated", tuple(past), True)
                    for r, _ in members
                ),
            )
        )
    for r, idx in plain:
        out.append(
            Sentence(
                "sigmoid saturated",
                f"σ(z) rounded to exactly {value} in {r.formulation.name} at "
                f"{ctx.elements(idx)}, so {log} = log 0 there.",
                rows=(r.formulation.name,),
                elements=tuple(idx),
                claims=(Claim(r.formulation.name, "any", "sigmoid saturated", tuple(idx), True),),
            )
        )
    return out


def _where_rows(ctx: _Ctx, members: list[tuple[Row, list[int]]]) -> str:
    sets = {tuple(idx) for _, idx in members}
    if len(sets) == 1:
        return f"{_names(r for r, _ in members)} ({ctx.elements(members[0][1])})"
    return "; ".join(f"{r.formulation.name} ({ctx.elements(idx)})" for r, idx in members)


def _charge(ctx: _Ctx, i: int, one: bool, cost: float, per: str) -> str:
    """The term an element is charged where a log is replaced by ``-cost``."""
    coefficient = (1 - ctx.y[i]) if one else ctx.y[i]
    w = ctx.weight(i)
    value = float(ctx.fmt.round(w * coefficient * cost))
    formula = ("(1 − y)" if one else "y") + f" × {per}"
    given = f"y = {ctx.num(ctx.y[i])}"
    if ctx.w is not None:
        formula = "w × " + formula
        given = f"w = {ctx.num(w)}, " + given
    text = f"{formula} = {ctx.num(value)} for {ctx.z_name(i)} = {ctx.num(ctx.z[i])} ({given})"
    if ctx.exact_elements is not None:
        text += f", where the exact loss is {ctx.num(ctx.exact_elements[i])}"
    return text


def _log_clamped(ctx: _Ctx) -> list[Sentence]:
    """PyTorch's −100 clamp replaced a log that counts."""
    out = []
    cost = -TORCH_LOG_CLAMP
    for r in ctx.ok:
        idx = ctx.where(r, "log clamped", "loss")
        if not idx:
            continue
        parts = [_charge(ctx, i, ctx.z[i] > 0, cost, f"{cost:g}") for i in idx[:_LIST]]
        more = len(idx) - len(parts)
        out.append(
            Sentence(
                "log clamped",
                f"{r.formulation.name} clamps each log at {_minus(f'{TORCH_LOG_CLAMP:g}')}, so "
                f"where σ(z) is so close to 0 or 1 that log(p) or log(1 − p) is below "
                f"{_minus(f'{TORCH_LOG_CLAMP:g}')} (log 0 included) that term costs "
                f"{cost:g} times its coefficient: "
                + "; ".join(parts)
                + (f"; and {more} more" if more > 0 else "")
                + ".",
                rows=(r.formulation.name,),
                elements=tuple(idx),
                claims=(Claim(r.formulation.name, "loss", "log clamped", tuple(idx), True),),
            )
        )
    return out


def _zero_coefficient(ctx: _Ctx) -> list[Sentence]:
    """A saturated element whose log 0 term has coefficient 0, and nothing else wrong."""
    out = []
    for r in _via(ctx, True):
        for one in (True, False):
            hard = 1.0 if one else 0.0
            idx = [
                i
                for i in range(ctx.n)
                if ctx.loss_flags(r, i) == ("sigmoid saturated",)
                and ctx.y[i] == hard
                and (ctx.z[i] > 0) == one
            ]
            if not idx:
                continue
            term, log, kept = (
                ("(1 − y)", "log(1 − p)", "−log(1)") if one else ("y", "log(p)", "−log(1 − 0)")
            )
            out.append(
                Sentence(
                    "zero coefficient",
                    f"With y = {hard:g} the {term} term is zero, so {log} = log 0 costs "
                    f"{r.formulation.name} nothing at {ctx.elements(idx)}; its loss there is "
                    f"{kept} = 0, every digit of the exact one lost.",
                    rows=(r.formulation.name,),
                    elements=tuple(idx),
                    claims=(
                        Claim(r.formulation.name, "loss", "sigmoid saturated", tuple(idx), True),
                        Claim(r.formulation.name, "loss", "log clamped", tuple(idx), False),
                        Claim(r.formulation.name, "loss", "non-finite", tuple(idx), False),
                    ),
                )
            )
    return out


def _clip_epsilon(row: Row) -> tuple[float, str] | None:
    """The clip's epsilon and where it comes from, for frameworks that say."""
    if row.formulation.framework == "keras":
        try:
            import keras

            return float(keras.config.epsilon()), "keras.config.epsilon()"
        except Exception:
            return None
    return None


def _probability_clipped(ctx: _Ctx) -> list[Sentence]:
    """A framework clipped p to [eps, 1 − eps] in a term that counts."""
    out = []
    for r in ctx.ok:
        idx = ctx.where(r, "probability clipped", "loss")
        if not idx:
            continue
        eps = _clip_epsilon(r)
        bounds = (
            "[eps, 1 − eps] (eps of the probabilities' dtype)"
            if eps is None
            else f"[{eps[0]:g}, 1 − {eps[0]:g}] ({eps[1]})"
        )
        text = (
            f"{r.formulation.name} clips p to {bounds} before taking logs, so it never takes "
            f"log 0, but the clip changes the loss at {ctx.elements(idx, target=True)}"
        )
        if ctx.exact_elements is not None and r.value is not None:
            v = r.value.ravel()
            text += ": " + "; ".join(
                f"{ctx.z_name(i)} gets {ctx.num(v[i])} where the exact loss is "
                f"{ctx.num(ctx.exact_elements[i])}"
                for i in idx[:_LIST]
            )
        out.append(
            Sentence(
                "probability clipped",
                text + ".",
                rows=(r.formulation.name,),
                elements=tuple(idx),
                claims=(
                    Claim(r.formulation.name, "loss", "probability clipped", tuple(idx), True),
                ),
            )
        )
    return out


def _exact_grads(ctx: _Ctx, idx: Sequence[int]) -> str:
    return ", ".join(f"{ctx.num(ctx.exact_grad[i])} for {ctx.z_name(i)}" for i in idx[:3]) + (
        f" and {len(idx) - 3} more" if len(idx) > 3 else ""
    )


def _vanished_through_p(ctx: _Ctx) -> tuple[list[Sentence], dict[str, set[int]]]:
    """A zero gradient on a probabilities path where p is 0 or 1, or was clipped."""
    out = []
    explained: dict[str, set[int]] = {}
    for r in _via(ctx, True):
        vanished = ctx.where(r, "gradient vanished", "gradient")
        at_limit = [
            i
            for i in vanished
            if "sigmoid saturated" in ctx.flags(r, i) or not math.isfinite(ctx.z[i])
        ]
        clipped = [
            i
            for i in vanished
            if i not in at_limit and "probability clipped" in ctx.loss_flags(r, i)
        ]
        name = r.formulation.name
        if at_limit:
            out.append(
                Sentence(
                    "gradient vanished through p",
                    "The gradient through the probabilities is p(1 − p) × (…) = 0 once p is "
                    f"exactly 0 or 1, so {name} stops learning: it returns 0 where the exact "
                    f"gradient is {_exact_grads(ctx, at_limit)}.",
                    rows=(name,),
                    elements=tuple(at_limit),
                    claims=(Claim(name, "gradient", "gradient vanished", tuple(at_limit), True),),
                )
            )
        if clipped:
            out.append(
                Sentence(
                    "gradient vanished at the clip",
                    f"The clip of p in {name} has derivative 0 outside [eps, 1 − eps], so it "
                    f"returns a zero gradient where the exact one is {_exact_grads(ctx, clipped)}.",
                    rows=(name,),
                    elements=tuple(clipped),
                    claims=(
                        Claim(name, "gradient", "gradient vanished", tuple(clipped), True),
                        Claim(name, "loss", "probability clipped", tuple(clipped), True),
                    ),
                )
            )
        explained[name] = set(at_limit) | set(clipped)
    return out, explained


def _logits_keep(ctx: _Ctx, lost: Sequence[int]) -> list[Sentence]:
    """The logits rows with a sound gradient where a probabilities path lost it."""
    keep: dict[tuple[int, ...], list[Row]] = {}
    for r in _via(ctx, False):
        if r.grad is None:
            continue
        g = r.grad.ravel()
        idx = tuple(i for i in lost if not ctx.grad_flags(r, i) and g[i] != 0)
        if idx:
            keep.setdefault(idx, []).append(r)
    out = []
    for idx, rows in keep.items():
        first = rows[0]
        assert first.grad is not None
        g = first.grad.ravel()
        example = ", ".join(f"{ctx.num(g[i])} for {ctx.z_name(i)}" for i in idx[:3])
        out.append(
            Sentence(
                "logits keep the gradient",
                f"The logits path differentiates σ(z) − y directly: {_names(rows)} "
                f"{'keeps' if len(rows) == 1 else 'keep'} the gradient at "
                f"{ctx.elements(list(idx))} ({first.formulation.name} returns {example}).",
                rows=tuple(r.formulation.name for r in rows),
                elements=idx,
                claims=tuple(Claim(r.formulation.name, "gradient", None, idx, False) for r in rows),
            )
        )
    return out


def _vanished_on_logits(ctx: _Ctx) -> tuple[list[Sentence], dict[str, set[int]]]:
    """A logits path's zero gradient at a hard target: σ(z) rounded to the target."""
    out = []
    explained: dict[str, set[int]] = {}
    one, zero = ctx.sat.one_from, ctx.sat.zero_up_to
    for r in _via(ctx, False):
        idx = [
            i
            for i in ctx.where(r, "gradient vanished", "gradient")
            if math.isfinite(ctx.z[i])
            and (
                (ctx.y[i] == 1 and one is not None and ctx.z[i] >= one)
                or (ctx.y[i] == 0 and zero is not None and ctx.z[i] <= zero)
            )
        ]
        if not idx:
            continue
        name = r.formulation.name
        out.append(
            Sentence(
                "gradient vanished on the logits path",
                f"The gradient of {name} is proportional to σ(z) − y, and at "
                f"{ctx.elements(idx, target=True)} σ(z) rounds to exactly the hard target, so "
                f"it returns 0 where the exact gradient is {_exact_grads(ctx, idx)}: the logits "
                "path stops learning too once σ(z) rounds to the target.",
                rows=(name,),
                elements=tuple(idx),
                claims=(Claim(name, "gradient", "gradient vanished", tuple(idx), True),),
            )
        )
        explained[name] = set(idx)
    return out, explained


def _vanished_otherwise(ctx: _Ctx, explained: dict[str, set[int]]) -> list[Sentence]:
    """Any other zero gradient where the exact one is not: the fact, no cause."""
    out = []
    for r in ctx.ok:
        name = r.formulation.name
        idx = [
            i
            for i in ctx.where(r, "gradient vanished", "gradient")
            if i not in explained.get(name, set())
        ]
        if idx:
            text = (
                f"{name} returns a zero gradient where the exact one, rounded to "
                f"{ctx.fmt.name}, is not: {_exact_grads(ctx, idx)}."
            )
            out.append(_flag_sentence("gradient vanished", text, name, [], idx))
    return out


def _epsilon_z() -> float:
    """|z| beyond which sigmoid's p(1 − p) is below PyTorch's backward epsilon."""
    e = TORCH_BACKWARD_EPSILON
    p = 2 * e / (1 + math.sqrt(1 - 4 * e))  # the smaller root of p(1 - p) = e
    return math.log1p(-p) - math.log(p)


def _gradient_clamped(ctx: _Ctx) -> list[Sentence]:
    """PyTorch's backward divided by max(p(1 − p), 1e-12) and shrank the gradient."""
    out = []
    for r in ctx.ok:
        idx = [
            i
            for i in ctx.where(r, "gradient clamped", "gradient")
            if "sigmoid saturated" not in ctx.flags(r, i)
        ]
        if not idx or r.grad is None:
            continue
        g = r.grad.ravel()
        eps = f"{TORCH_BACKWARD_EPSILON:g}"
        which = "; ".join(
            f"{ctx.element(i)}: {ctx.num(g[i])} where the exact one is {ctx.num(ctx.exact_grad[i])}"
            for i in idx[:3]
        )
        name = r.formulation.name
        out.append(
            Sentence(
                "gradient clamped",
                f"The gradient of {name} is too small although sigmoid has not rounded to 0 or 1 "
                f"({which}): PyTorch's binary_cross_entropy backward divides (p − y) by "
                f"max(p(1 − p), {eps}), and p(1 − p) is below {eps} here (|z| beyond about "
                f"{_epsilon_z():.2f}), so the gradient shrinks with p.",
                rows=(name,),
                elements=tuple(idx),
                claims=(
                    Claim(name, "gradient", "gradient clamped", tuple(idx), True),
                    Claim(name, "any", "sigmoid saturated", tuple(idx), False),
                ),
            )
        )
    return out


def _quiet_gradient_error(ctx: _Ctx) -> list[Sentence]:
    """A probabilities path's gradient far off with no flag: p carries the rounding."""
    out = []
    for r in _via(ctx, True):
        if r.grad is None or r.grad_relative_error is None or r.grad_ulp_error is None:
            continue
        rel, ulps, g = r.grad_relative_error.ravel(), r.grad_ulp_error.ravel(), r.grad.ravel()
        quiet = [i for i in range(ctx.n) if rel[i] > 0.01 and ulps[i] > 1 and not ctx.flags(r, i)]
        if not quiet:
            continue
        i = quiet[0]
        name = r.formulation.name
        out.append(
            Sentence(
                "quiet gradient error",
                f"The gradient of {name} for {ctx.element(i)} is {min(float(rel[i]), 1.0):.0%} off "
                f"although sigmoid has not rounded to 0 or 1: it is computed from p = σ(z) "
                f"rounded to {ctx.fmt.name}: {ctx.num(g[i])} where the exact one is "
                f"{ctx.num(ctx.exact_grad[i])}.",
                rows=(name,),
                elements=(i,),
                claims=(Claim(name, "any", None, (i,), False),),
            )
        )
    return out


def _non_finite(ctx: _Ctx) -> list[Sentence]:
    """NaN or an infinity where the exact value is finite."""
    out = []
    for r, loss, grad in _flagged(ctx, "non-finite"):
        name = r.formulation.name
        where = _sides(loss, grad, ctx.elements, "in the")
        text = f"{name} returns NaN or an infinity where the exact value is finite: {where}"
        causes = []
        sat_loss = [
            i
            for i in loss
            if "sigmoid saturated" in ctx.loss_flags(r, i)
            and "log clamped" not in ctx.loss_flags(r, i)
            and "probability clipped" not in ctx.loss_flags(r, i)
        ]
        sat_grad = [i for i in grad if "sigmoid saturated" in ctx.grad_flags(r, i)]
        if sat_loss:
            causes.append(
                f"at {', '.join(ctx.z_name(i) for i in sat_loss[:_LIST])} p is exactly 0 or 1 "
                "and it takes log 0 = −inf unclamped (0 × (−inf) = NaN where the coefficient "
                "is 0)"
            )
        if sat_grad:
            causes.append(
                f"its gradient at {', '.join(ctx.z_name(i) for i in sat_grad[:_LIST])} divides "
                "by p, 1 − p or p(1 − p), which is 0 there"
            )
        if causes:
            text += "; " + "; ".join(causes)
        more = (Claim(name, "loss", "log clamped", tuple(sat_loss), False),) if sat_loss else ()
        out.append(_flag_sentence("non-finite", text + ".", name, loss, grad, more))
    return out


def _nan_at_infinity(ctx: _Ctx) -> list[Sentence]:
    """NaN where the exact value is infinite."""
    out = []
    for r, loss, grad in _flagged(ctx, "NaN"):
        name = r.formulation.name
        where = _sides(loss, grad, lambda ix: ctx.elements(ix, target=True))
        text = (
            f"{name} returns NaN for {where}, where the exact value is infinite: with a "
            "target other than the limit, an infinite logit costs an infinite loss."
        )
        out.append(_flag_sentence("NaN", text, name, loss, grad))
    return out


def _flushed(ctx: _Ctx) -> list[Sentence]:
    """A zero where the exact result is a subnormal, from a framework that flushes."""
    out = []
    for r, loss, grad in _flagged(ctx, "subnormal flushed"):
        name = r.formulation.name
        xla = " (XLA does)" if r.formulation.framework == "jax" else ""
        where = []
        if loss:
            text = f"the loss at {ctx.elements(loss)}"
            if ctx.exact_elements is not None:
                text += " (exact " + ", ".join(ctx.num(ctx.exact_elements[i]) for i in loss[:3])
                text += ")"
            where.append(text)
        if grad:
            where.append(
                f"the gradient at {ctx.elements(grad)} (exact "
                + ", ".join(ctx.num(ctx.exact_grad[i]) for i in grad[:3])
                + ")"
            )
        text = (
            f"{name} flushes subnormal results to zero{xla}: it returns 0 for "
            f"{' and '.join(where)}, non-zero values below {ctx.fmt.name}'s smallest normal "
            f"{ctx.num(ctx.fmt.smallest_normal)}."
        )
        out.append(_flag_sentence("subnormal flushed", text, name, loss, grad))
    return out


def _cancellation(ctx: _Ctx) -> list[Sentence]:
    """A logits path far off the exact loss with no flag: where its formula loses digits."""
    out = []
    for r in _via(ctx, False):
        if r.loss_flags or r.ulp_error is None:
            continue
        u = r.max_ulp_error
        if not (math.isinf(u) or u > _NOTABLE_ULPS):
            continue
        name = r.formulation.name
        ulps = r.ulp_error.ravel()
        per_element = ulps.size == ctx.n and ctx.exact_elements is not None
        idx = [i for i in range(ctx.n) if not per_element or not ulps[i] <= _NOTABLE_ULPS]
        text = f"{name} is {_ulps(u)} ULPs off the exact loss here, with no flag"
        named: list[int] = []
        family = _FORMULA.get(name)
        if family is not None:
            text += f": it computes {family[1]}"
            z, y = ctx.z, ctx.y
            causes = []
            if family[0] == "torch":
                small = [i for i in idx if 0 <= y[i] < 1 and z[i] < 0]
                if small:
                    causes.append(
                        "at z < 0 the terms have opposite signs ((1 − y)·z < 0 and "
                        "log(1 + exp(−z)) ≈ −z) and their small difference loses digits, "
                        f"worst for small targets, y = 0 included ({ctx.elements(small, True)})"
                    )
                named = small
            else:
                soft = [i for i in idx if 0 < y[i] < 1 and z[i] > 0]
                if soft:
                    causes.append(
                        "at z > 0 with a soft target near 1, z and z·y cancel "
                        f"({ctx.elements(soft, target=True)})"
                    )
                named = soft
            if causes:
                text += "; " + "; ".join(causes)
        out.append(
            Sentence(
                "cancellation",
                text + ".",
                rows=(name,),
                elements=tuple(sorted(named)),
                claims=(Claim(name, "loss", None, tuple(range(ctx.n)), False),),
            )
        )
    return out


def _inside_range(ctx: _Ctx) -> list[Sentence]:
    """Every logit inside the unsaturated range, and no row saturated."""
    one, zero = ctx.sat.one_from, ctx.sat.zero_up_to
    if one is None or zero is None or not np.isfinite(ctx.z).all():
        return []
    if not ((ctx.z > zero) & (ctx.z < one)).all():
        return []
    if any(ctx.where(r, "sigmoid saturated") for r in ctx.ok):
        return []
    rows = [r for r in _via(ctx, True) if _SIGMOID_OF.get(r.formulation.name) == "torch.sigmoid"]
    return [
        Sentence(
            "inside the range",
            f"Every logit is inside {ctx.fmt.name}'s unsaturated range ({ctx.num(zero)} < z < "
            f"{ctx.num(one)}), so torch.sigmoid never rounds to exactly 0 or 1 here. Drag a "
            f"logit to {ctx.num(one)} or above to see the probabilities path break.",
            rows=(),
            claims=tuple(
                Claim(r.formulation.name, "any", "sigmoid saturated", tuple(range(ctx.n)), False)
                for r in rows
            ),
        )
    ]


def _accurate(ctx: _Ctx) -> list[Sentence]:
    """Rows within a few ULPs of the exact loss, with no loss flag."""
    rows = [
        r
        for r in ctx.ok
        if not r.loss_flags and math.isfinite(r.max_ulp_error) and r.max_ulp_error <= _NOTABLE_ULPS
    ]
    if not rows:
        return []
    listed = ", ".join(f"{r.formulation.name} ({_up(r.max_ulp_error)} ULPs)" for r in rows)
    return [
        Sentence(
            "accurate",
            f"Within {_NOTABLE_ULPS:g} ULPs of the exact loss, with no flag: {listed}.",
            rows=tuple(r.formulation.name for r in rows),
            claims=tuple(
                Claim(r.formulation.name, "loss", None, tuple(range(ctx.n)), False) for r in rows
            ),
        )
    ]


def _row_notes(ctx: _Ctx) -> list[Sentence]:
    """What a row says about itself (a wider or narrower result format)."""
    return [
        Sentence("row note", f"{r.formulation.name} {note}.", rows=(r.formulation.name,))
        for r in ctx.ok
        for note in r.notes
    ]


def _not_run(ctx: _Ctx) -> list[Sentence]:
    """One line, the same for every row that did not run, with its reason."""
    out = []
    for r in ctx.c.rows:
        if r.status == "ok":
            continue
        reason = r.reason or ""
        prefix = f"{r.status}: "
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
        text = f"{r.formulation.name} did not run ({r.status})"
        out.append(
            Sentence(
                "not run",
                text + (f": {reason}." if reason else "."),
                rows=(r.formulation.name,),
            )
        )
    return out


def _input_notes(ctx: _Ctx) -> list[Sentence]:
    """How the inputs were rounded to the dtype."""
    return [Sentence("input note", n[0].upper() + n[1:] + ".") for n in ctx.c.notes]


def _infinite_logits(ctx: _Ctx) -> list[Sentence]:
    idx = [i for i in range(ctx.n) if math.isinf(ctx.z[i])]
    if not idx:
        return []
    return [
        Sentence(
            "infinite logit",
            f"An infinite logit is allowed ({ctx.elements(idx)}): there sigmoid is exactly 0 "
            "or 1 by right, not by rounding, and the table shows what each framework does at "
            "the limit.",
            elements=tuple(idx),
        )
    ]


# --- assembly -----------------------------------------------------------------------------


def _context(comparison: Comparison, sat: Saturation) -> _Ctx:
    c = comparison
    case = c.case
    shape = case.logits.shape
    w = None if case.weight is None else np.broadcast_to(case.weight, shape).ravel()
    exact_elements = c.exact_value().ravel() if case.reduction == "none" else None
    return _Ctx(
        c=c,
        sat=sat,
        fmt=c.dtype,
        z=case.logits.ravel(),
        y=np.broadcast_to(case.targets, shape).ravel(),
        w=w,
        exact_grad=c.exact_grad().ravel(),
        exact_elements=exact_elements,
        ok=tuple(r for r in c.rows if r.status == "ok"),
    )


def sentences(comparison: Comparison, saturation: Saturation | None = None) -> list[Sentence]:
    """Every sentence, in reading order, with what it names and claims.

    ``saturation`` (the sigmoid thresholds) is needed for BCE; softmax cross-entropy
    comparisons get their own templates (:func:`softmax_sentences`)."""
    if comparison.quantity == "softmax_ce":
        return softmax_sentences(comparison)
    if saturation is None:
        from logitlab.analysis.saturation import saturation as find

        saturation = find(comparison.dtype.name)
    ctx = _context(comparison, saturation)
    through_p, explained_p = _vanished_through_p(ctx)
    on_logits, explained_logits = _vanished_on_logits(ctx)
    lost = sorted({i for s in through_p for i in s.elements})
    templates: list[Callable[[], list[Sentence]]] = [
        lambda: _rounded_targets(ctx),
        lambda: _saturated(ctx, one=True),
        lambda: _saturated(ctx, one=False),
        lambda: _log_clamped(ctx),
        lambda: _zero_coefficient(ctx),
        lambda: _probability_clipped(ctx),
        lambda: through_p,
        lambda: _logits_keep(ctx, lost),
        lambda: on_logits,
        lambda: _vanished_otherwise(ctx, {**explained_p, **explained_logits}),
        lambda: _gradient_clamped(ctx),
        lambda: _quiet_gradient_error(ctx),
        lambda: _non_finite(ctx),
        lambda: _nan_at_infinity(ctx),
        lambda: _flushed(ctx),
        lambda: _cancellation(ctx),
        lambda: _inside_range(ctx),
        lambda: _accurate(ctx),
        lambda: _row_notes(ctx),
        lambda: _not_run(ctx),
        lambda: _input_notes(ctx),
        lambda: _infinite_logits(ctx),
    ]
    return [s for t in templates for s in t()]


def explain(comparison: Comparison, saturation: Saturation | None = None) -> list[str]:
    """Sentences for the explorer's explanation box, in reading order (focal comparisons:
    :func:`logitlab.analysis.explain_focal.focal_sentences`, where that module is built)."""
    if comparison.quantity == "focal":
        import importlib

        try:
            module = importlib.import_module("logitlab.analysis.explain_focal")
        except ModuleNotFoundError as err:
            if err.name != "logitlab.analysis.explain_focal":
                raise
            return []
        return list(module.focal_sentences(comparison))
    return [s.text for s in sentences(comparison, saturation)]


# --- softmax cross-entropy ----------------------------------------------------------------
# The same rules as above: every sentence is read off the rows, their per-sample flags and
# the exact values; a sentence is guarded by the flags it reports and claims them.


@dataclass(frozen=True)
class _SoftmaxCtx:
    c: Comparison
    fmt: FloatFormat
    z: np.ndarray  # (N, C)
    q: np.ndarray  # (N, C) coefficients
    exact_samples: np.ndarray | None  # (N,), only without reduction
    ok: tuple[Row, ...]

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    def num(self, v: float) -> str:
        return shortest_repr(v, self.fmt)

    def where(self, row: Row, flag: str, side: str = "any") -> list[int]:
        loss = row.element_loss_flags
        grad = row.element_grad_flags
        out = []
        for i in range(self.n):
            f: tuple[str, ...] = ()
            if side in ("loss", "any") and i < len(loss):
                f += loss[i]
            if side in ("gradient", "any") and i < len(grad):
                f += grad[i]
            if flag in f:
                out.append(i)
        return out

    def sample(self, i: int) -> str:
        row = ", ".join(self.num(v) for v in self.z[i])
        if self.c.case.class_indices:
            t = f"target {int(self.c.case.target[i])}"
        else:
            t = "target [" + ", ".join(self.num(v) for v in self.c.case.target[i]) + "]"
        return f"sample {i} (z = [{row}], {t})"

    def samples(self, idx: Sequence[int]) -> str:
        named = [self.sample(i) for i in idx[:_LIST]]
        more = len(idx) - len(named)
        return ", ".join(named) + (f" and {more} more" if more > 0 else "")

    def exact_of(self, i: int) -> str | None:
        if self.exact_samples is None:
            return None
        return self.num(self.exact_samples[i])


def _sm_underflow(ctx: _SoftmaxCtx) -> list[Sentence]:
    """A probability the loss needs rounded to 0 by the path's softmax."""
    rows = [(r, ctx.where(r, "softmax underflow")) for r in ctx.ok]
    rows = [(r, idx) for r, idx in rows if idx]
    if not rows:
        return []
    idx = sorted({i for _, i_list in rows for i in i_list})
    i = idx[0]
    needed = np.flatnonzero((ctx.q[i] != 0) & np.isfinite(ctx.z[i]))
    gap = float(np.max(ctx.z[i][np.isfinite(ctx.z[i])]) - np.min(ctx.z[i][needed]))
    tiny = ctx.fmt.smallest_subnormal
    names = _names(r for r, _ in rows)
    text = (
        f"At {ctx.samples(idx)} the softmax of {names} rounds a class probability the loss "
        f"needs to exactly 0 in {ctx.fmt.name}: that class's logit is {ctx.num(gap)} below the "
        f"row's largest, so p ≤ exp(−{ctx.num(gap)})"
    )
    if gap > -math.log(tiny / 2):
        text += f", below half of {ctx.fmt.name}'s smallest subnormal {ctx.num(tiny)}"
    text += "; it is positive exactly."
    return [
        Sentence(
            "softmax underflow",
            text,
            rows=tuple(r.formulation.name for r, _ in rows),
            elements=tuple(idx),
            claims=tuple(
                Claim(r.formulation.name, "any", "softmax underflow", tuple(i_list), True)
                for r, i_list in rows
            ),
        )
    ]


def _sm_log_of_zero(ctx: _SoftmaxCtx) -> list[Sentence]:
    """+inf from log(0) where the exact loss is finite."""
    out = []
    for r in ctx.ok:
        idx = ctx.where(r, "log of 0", "loss")
        if not idx:
            continue
        name = r.formulation.name
        exact = [e for e in (ctx.exact_of(i) for i in idx[:_LIST]) if e is not None]
        text = (
            f"{name} then takes log(0) = −inf: its loss at {ctx.samples(idx)} is +inf"
            + (
                f" where the exact loss is {', '.join(exact)}"
                if exact
                else " where the exact loss is finite"
            )
            + "."
        )
        out.append(_flag_sentence("log of 0", text, name, idx, []))
    return out


def _sm_logits_keep(ctx: _SoftmaxCtx) -> list[Sentence]:
    """Where some path underflowed, the paths that never form p and have no flag there."""
    lost = sorted({i for r in ctx.ok for i in ctx.where(r, "softmax underflow", "loss")})
    if not lost:
        return []
    keep = [
        r
        for r in ctx.ok
        if not r.formulation.via_probabilities
        and not any(r.element_loss_flags[i] for i in lost if i < len(r.element_loss_flags))
        and math.isfinite(r.max_ulp_error)
        and r.max_ulp_error <= _NOTABLE_ULPS
    ]
    if not keep:
        return []
    listed = ", ".join(f"{r.formulation.name} ({_up(r.max_ulp_error)} ULPs)" for r in keep)
    return [
        Sentence(
            "logits keep the loss",
            f"The paths that work on the logits never form p: log_softmax(z) = z − max z − "
            f"log Σ exp(z − max z) keeps the log-probability a finite number, and they get the "
            f"loss right: {listed}.",
            rows=tuple(r.formulation.name for r in keep),
            elements=tuple(lost),
            claims=tuple(Claim(r.formulation.name, "loss", None, tuple(lost), False) for r in keep),
        )
    ]


def _sm_clipped(ctx: _SoftmaxCtx) -> list[Sentence]:
    """A framework clipped the probability before the log."""
    out = []
    for r in ctx.ok:
        idx = ctx.where(r, "probability clipped", "loss")
        if not idx:
            continue
        name = r.formulation.name
        eps = _clip_epsilon(r)
        text = f"{name} clips the probabilities before the log"
        if eps is not None:
            text += (
                f" to [{eps[0]:g}, 1 − {eps[0]:g}] ({eps[1]}), so its loss per sample is at most "
                f"−log({eps[0]:g}) = {-math.log(eps[0]):.6g}"
            )
        exact = [e for e in (ctx.exact_of(i) for i in idx[:_LIST]) if e is not None]
        text += f": at {ctx.samples(idx)}"
        text += f" the exact loss is {', '.join(exact)}." if exact else " it is wrong."
        out.append(_flag_sentence("probability clipped", text, name, idx, []))
    return out


def _masked_samples(ctx: _SoftmaxCtx) -> list[int]:
    return [i for i in range(ctx.n) if (ctx.z[i] == -np.inf).any()]


def _fully_masked(ctx: _SoftmaxCtx) -> list[int]:
    return [i for i in range(ctx.n) if (ctx.z[i] == -np.inf).all() and ctx.q[i].any()]


def _sm_masked_nan(ctx: _SoftmaxCtx) -> list[Sentence]:
    """NaN at a sample with a masked logit, where the exact value is defined."""
    out = []
    for r, loss, grad in _flagged(ctx, "masked NaN"):
        name = r.formulation.name
        causes = []
        via_p = r.formulation.via_probabilities
        if loss:
            causes.append(
                "softmax gives p = 0 at a −inf logit and 0 · log(0) = 0 · (−inf) is NaN"
                if via_p
                else "a target of 0 times log_softmax = −inf at the masked class is 0 · (−inf) "
                "= NaN"
            )
        if grad:
            causes.append(
                "the backward of log divides by p = 0 at the masked class (0 / 0 = NaN) and "
                "softmax's backward spreads it over the row"
                if via_p
                else "the backward of 0 · (−inf) is NaN"
            )
        text = (
            f"{name} returns NaN in {_sides(loss, grad, ctx.samples, 'its')}, each with a "
            f"masked (−inf) logit and a defined exact value: {'; '.join(causes)}."
        )
        out.append(_flag_sentence("masked NaN", text, name, loss, grad))
    return out


def _sm_masked_safe(ctx: _SoftmaxCtx) -> list[Sentence]:
    """At masked samples whose target puts no mass on a masked class, the rows with no flag."""
    idx = [
        i
        for i in _masked_samples(ctx)
        if i not in set(_fully_masked(ctx)) and not (ctx.q[i][ctx.z[i] == -np.inf] != 0).any()
    ]
    if not idx:
        return []
    safe = [
        r
        for r in ctx.ok
        if all(
            not (r.element_loss_flags[i] if i < len(r.element_loss_flags) else ())
            and not (r.element_grad_flags[i] if i < len(r.element_grad_flags) else ())
            for i in idx
        )
    ]
    if not safe:
        return []
    return [
        Sentence(
            "masked safe",
            f"{_names(safe)} handle the masked logits at {ctx.samples(idx)} with no flag: a "
            "masked class whose target is 0 adds nothing to the loss and gets a zero gradient.",
            rows=tuple(r.formulation.name for r in safe),
            elements=tuple(idx),
            claims=tuple(Claim(r.formulation.name, "any", None, tuple(idx), False) for r in safe),
        )
    ]


def _per_sample(r: Row, n: int, idx: Sequence[int]) -> list[float] | None:
    if r.value is None or np.asarray(r.value).size != n:
        return None
    v = np.asarray(r.value, dtype=np.float64).ravel()
    return [float(v[i]) for i in idx]


def _sm_masked_target(ctx: _SoftmaxCtx) -> list[Sentence]:
    """A target that puts mass on a masked class: the exact loss is +inf by right."""
    idx = [
        i
        for i in _masked_samples(ctx)
        if i not in set(_fully_masked(ctx)) and (ctx.q[i][ctx.z[i] == -np.inf] != 0).any()
    ]
    if not idx:
        return []
    text = (
        f"At {ctx.samples(idx)} the target (or label smoothing) puts weight on a masked class: "
        "its probability is exactly 0, so the exact loss is +inf by right, not by rounding"
    )
    if ctx.c.case.reduction == "none":
        gives_inf = [
            r.formulation.name
            for r in ctx.ok
            if (v := _per_sample(r, ctx.n, idx)) is not None and all(x == math.inf for x in v)
        ]
        if gives_inf:
            text += f"; {', '.join(gives_inf)} return +inf there"
    return [Sentence("masked target", text + ".", elements=tuple(idx))]


def _sm_fully_masked(ctx: _SoftmaxCtx) -> list[Sentence]:
    """A row whose every logit is -inf: the exact loss is undefined."""
    idx = _fully_masked(ctx)
    if not idx:
        return []
    nan_rows: list[str] = []
    numbers: list[str] = []
    for r in ctx.ok:
        if r.value is None:
            continue
        v = np.asarray(r.value).ravel()
        picked = v if v.size == ctx.n else v[:1]
        shown = [picked[i] if picked.size == ctx.n else picked[0] for i in idx]
        if all(np.isnan(x) for x in shown):
            nan_rows.append(r.formulation.name)
        else:
            numbers.append(f"{r.formulation.name} ({', '.join(ctx.num(x) for x in shown)})")
    text = (
        f"{_upper_first(ctx.samples(idx))} is fully masked (every logit −inf): softmax has no "
        "value there and neither has the exact loss (NaN), so no flag is raised"
    )
    if nan_rows:
        text += f"; NaN from {', '.join(nan_rows)}"
    if numbers:
        text += f"; a number by convention from {', '.join(numbers)}"
    if ctx.c.case.reduction != "none":
        text += f"; the {ctx.c.case.reduction} over the batch is then undefined too"
    return [Sentence("fully masked", text + ".", elements=tuple(idx))]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sm_double_softmax(ctx: _SoftmaxCtx) -> list[Sentence]:
    """Softmax applied to a softmax's output."""
    out = []
    c_classes = int(ctx.z.shape[1])
    lo = math.log(math.e + c_classes - 1) - 1
    hi = math.log(math.e + c_classes - 1)
    case = ctx.c.case
    hard = case.class_indices and case.weight is None and not case.label_smoothing
    for r in ctx.ok:
        idx = ctx.where(r, "double softmax")
        if not idx:
            continue
        name = r.formulation.name
        text = (
            f"{name} applies softmax twice: F.cross_entropy takes logits, and given "
            "probabilities in [0, 1] it takes their softmax again"
        )
        if hard:
            text += (
                f", so with {c_classes} classes its loss per sample lies between {lo:.4g} and "
                f"{hi:.4g} however far apart the logits are"
            )
        text += "; its gradient is scaled by the first softmax's derivative."
        out.append(
            Sentence(
                "double softmax",
                text,
                rows=(name,),
                elements=tuple(idx),
                claims=(Claim(name, "any", "double softmax", tuple(idx), True),),
            )
        )
    return out


def _sm_other(ctx: _SoftmaxCtx) -> list[Sentence]:
    """non-finite, NaN-at-infinity, vanished gradients and flushes not said above."""
    out = []
    for r in ctx.ok:
        name = r.formulation.name
        parts = []
        claims = []
        said_loss = set(ctx.where(r, "log of 0", "loss")) | set(ctx.where(r, "masked NaN", "loss"))
        said_grad = set(ctx.where(r, "masked NaN", "gradient"))
        underflow = set(ctx.where(r, "softmax underflow"))
        clipped = set(ctx.where(r, "probability clipped"))
        twice = set(ctx.where(r, "double softmax"))
        for flag, side, words in (
            ("non-finite", "loss", "NaN or an infinity in the loss where the exact is finite"),
            (
                "non-finite",
                "gradient",
                "NaN or an infinity in the gradient where the exact is finite",
            ),
            ("NaN", "any", "NaN where the exact value is infinite"),
            ("gradient vanished", "gradient", "a zero gradient where the exact one is not"),
            ("subnormal flushed", "any", "0 where the exact result is a subnormal (flushed)"),
        ):
            idx = ctx.where(r, flag, side)
            said = said_loss if side == "loss" else said_grad if side == "gradient" else set()
            idx = [i for i in idx if i not in said]
            if not idx:
                continue
            text = f"{words} at {ctx.samples(idx)}"
            if flag == "non-finite" and side == "gradient" and set(idx) <= underflow:
                text += " (the backward of log divides by the underflowed p = 0)"
            elif flag == "gradient vanished" and set(idx) <= clipped:
                text += " (the clip has a zero gradient outside [eps, 1 − eps])"
            elif flag == "gradient vanished" and set(idx) <= twice:
                text += " (the first softmax saturated, and its derivative is 0)"
            elif flag == "gradient vanished" and set(idx) <= underflow:
                text += " (p rounded to 0, so p − q is exactly −q or 0)"
            parts.append(text)
            claims.append(Claim(name, side, flag, tuple(idx), True))
        if not parts:
            continue
        out.append(
            Sentence(
                "softmax other flags",
                f"{name}: " + "; ".join(parts) + ".",
                rows=(name,),
                elements=tuple(sorted({i for cl in claims for i in cl.elements})),
                claims=tuple(claims),
            )
        )
    return out


def _sm_accurate(ctx: _SoftmaxCtx) -> list[Sentence]:
    rows = [
        r
        for r in ctx.ok
        if not r.loss_flags and math.isfinite(r.max_ulp_error) and r.max_ulp_error <= _NOTABLE_ULPS
    ]
    if not rows:
        return []
    listed = ", ".join(f"{r.formulation.name} ({_up(r.max_ulp_error)} ULPs)" for r in rows)
    return [
        Sentence(
            "accurate",
            f"The loss is within {_NOTABLE_ULPS:g} ULPs of the exact one, with no loss flag, "
            f"from {listed}.",
            rows=tuple(r.formulation.name for r in rows),
            claims=tuple(
                Claim(r.formulation.name, "loss", None, tuple(range(ctx.n)), False) for r in rows
            ),
        )
    ]


def _sm_notes(ctx: _SoftmaxCtx) -> list[Sentence]:
    out = [
        Sentence("row note", f"{r.formulation.name} {note}.", rows=(r.formulation.name,))
        for r in ctx.ok
        for note in r.notes
    ]
    for r in ctx.c.rows:
        if r.status == "ok":
            continue
        reason = r.reason or ""
        out.append(
            Sentence(
                "not run",
                f"{r.formulation.name} did not run ({r.status})"
                + (f": {reason}." if reason else "."),
                rows=(r.formulation.name,),
            )
        )
    out.extend(Sentence("input note", n[0].upper() + n[1:] + ".") for n in ctx.c.notes)
    return out


def softmax_sentences(comparison: Comparison) -> list[Sentence]:
    """The sentences for a softmax cross-entropy comparison, in reading order."""
    c = comparison
    case = c.case
    # One sample: its sum, and its mean without a class weight (the mean divides by 1),
    # is its own loss.
    one = case.logits.shape[0] == 1 and bool(case.coefficients.any())
    own = case.reduction == "none" or (one and (case.reduction == "sum" or case.weight is None))
    exact_samples = c.exact_value().ravel() if own else None
    ctx = _SoftmaxCtx(
        c=c,
        fmt=c.dtype,
        z=np.asarray(case.logits, dtype=np.float64),
        q=case.coefficients,
        exact_samples=exact_samples,
        ok=tuple(r for r in c.rows if r.status == "ok"),
    )
    templates: list[Callable[[_SoftmaxCtx], list[Sentence]]] = [
        _sm_underflow,
        _sm_log_of_zero,
        _sm_clipped,
        _sm_logits_keep,
        _sm_masked_nan,
        _sm_masked_safe,
        _sm_masked_target,
        _sm_fully_masked,
        _sm_double_softmax,
        _sm_other,
        _sm_accurate,
        _sm_notes,
    ]
    return [s for t in templates for s in t(ctx)]
