"""The lint rules: one small class per family of codes, each with messages that say why
and what to write instead. :data:`RULES` is the one explicit list the engine runs.

Rules see a :class:`Context` (the module's :class:`ModuleAnalysis` plus ``emit``) and
use only :mod:`ast`.
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from logitlab.lint._analysis import OPS, PASS_THROUGH, ModuleAnalysis, Scope, Value
from logitlab.lint._finding import Edit, Fix, Key
from logitlab.lint._formats import (
    BFLOAT16,
    FLOAT16,
    FLOAT32,
    FLOAT64,
    FORMATS,
    approx,
    per_format,
)

FLOAT64_EPS = 2.0 ** (1 - FLOAT64.p)  # machine epsilon: spacing just above 1
FLOAT32_EPS = 2.0 ** (1 - FLOAT32.p)


@dataclass
class Pending:
    code: str
    node: ast.AST
    message: str
    fix: Fix | None = None


@dataclass
class Context:
    analysis: ModuleAnalysis
    findings: list[Pending] = field(default_factory=list)
    #: ids of ``log`` calls already explained by a wider finding (hand-written CE)
    covered: set[int] = field(default_factory=set)
    #: ids of nodes inside a ``where(...)`` (a piecewise-stable formula)
    in_where: set[int] = field(default_factory=set)

    def emit(self, code: str, node: ast.AST, message: str, fix: Fix | None = None) -> None:
        self.findings.append(Pending(code, node, message, fix))


# --- small helpers -----------------------------------------------------------------------


def key_of(node: ast.AST) -> Key:
    return (
        node.lineno,  # type: ignore[attr-defined]
        node.col_offset,  # type: ignore[attr-defined]
        node.end_lineno or node.lineno,  # type: ignore[attr-defined]
        node.end_col_offset or 0,  # type: ignore[attr-defined]
    )


def call_edit(call: ast.Call, action: str, **params: object) -> Edit:
    return Edit("call", key_of(call.func), action, tuple(sorted(params.items())))


def is_one(node: ast.AST) -> bool:
    if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
        return False
    return isinstance(node.value, (int, float)) and node.value == 1


def unneg(node: ast.expr) -> ast.expr:
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return node


def same(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a) == ast.dump(b)


def simple_call(call: ast.Call, nargs: int = 1) -> bool:
    """A function call with exactly ``nargs`` positional args and no keywords."""
    return len(call.args) == nargs and not call.keywords


def minus_abs(node: ast.expr) -> bool:
    """``-abs(x)`` (or ``-abs(x) * c``): exp of it is at most 1, the stable softplus
    tail log1p(exp(-|x|))."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
        return minus_abs(node.left) or (isinstance(node.op, ast.Mult) and minus_abs(node.right))
    if not (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)):
        return False
    inner = node.operand
    if not isinstance(inner, ast.Call):
        return False
    func = inner.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("abs", "absolute", "fabs")


def line(node: ast.AST) -> int:
    return getattr(node, "lineno", 1)


def where(v: Value) -> str:
    """``line 12`` or, for a value from another file, ``line 12 of models.py``."""
    text = f"line {line(v.origin)}"
    return f"{text} of {os.path.basename(v.path)}" if v.path else text


def sigmoid_input(ana: ModuleAnalysis, node: ast.expr) -> tuple[ast.expr, str] | None:
    """If ``node`` applies a sigmoid right here, its input and the form (arg0/method)."""
    if not isinstance(node, ast.Call):
        return None
    op = ana.op_of(node)
    if op is not None and op[0] == "sigmoid" and op[2] is not None:
        return op[2], ("method" if op[1] == "method" else "arg0")
    return None


def softmax_call(ana: ModuleAnalysis, node: ast.expr) -> tuple[str, str] | None:
    """If ``node`` is a softmax call: (framework, form)."""
    if not isinstance(node, ast.Call):
        return None
    op = ana.op_of(node)
    if op is not None and op[0] == "softmax" and op[2] is not None:
        return op[1], ("method" if op[1] == "method" else "arg0")
    return None


#: names that hold a small constant added inside a log
EPS_NAME = re.compile(r"eps|gamma|tiny|delta|smooth", re.IGNORECASE)


@dataclass
class Eps:
    values: list[float | None] = field(default_factory=list)
    uppers: list[float | None] = field(default_factory=list)
    float64_eps: bool = False
    #: the dtype the code shows for the probabilities (``float64`` after ``.double()``)
    dtype: str | None = None


def eps_constant(ana: ModuleAnalysis, node: ast.expr, scope: Scope, eps: Eps) -> float | None:
    """Value of an eps-like expression (a small constant, a finfo eps, a name for one)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        if isinstance(node.value, bool):
            return None
        v = float(node.value)
        return v if 0 < v < 0.5 else None
    if isinstance(node, ast.Attribute) and node.attr in ("eps", "epsilon", "tiny"):
        text = ast.dump(node)
        if "float64" in text or "double" in text or "float_info" in text or "'float'" in text:
            eps.float64_eps = True
            return FLOAT64_EPS
        if "float32" in text:
            return FLOAT32_EPS
        return None
    if isinstance(node, ast.Name):
        found = ana.lookup(node.id, scope, node.lineno, node.col_offset)
        if found is not None and not isinstance(found[0], ast.Name):
            return eps_constant(ana, found[0], found[1], eps)
        if EPS_NAME.search(node.id):
            return math.nan
    if isinstance(node, ast.Attribute) and EPS_NAME.search(node.attr):
        return math.nan  # self.eps, self.gamma, cfg.epsilon: value unknown
    return None


def one_ish(ana: ModuleAnalysis, node: ast.expr, scope: Scope, eps: Eps) -> bool:
    """``1``, or ``1 + eps`` / ``eps + 1``: ``1e-10 + 1 - p`` parses as ``(1e-10 + 1) - p``
    (the eps is then added to 1, where it vanishes)."""
    if is_one(node):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        for one, other in ((node.left, node.right), (node.right, node.left)):
            if is_one(one):
                v = eps_constant(ana, other, scope, eps)
                if v is not None:
                    eps.values.append(v)
                    return True
    return False


def strip_eps(
    ana: ModuleAnalysis, node: ast.expr, scope: Scope, eps: Eps, follow: int = 2
) -> ast.expr:
    """Peel ``p + eps`` and ``clamp(p, eps, 1 - eps)`` off ``node``; record the eps."""
    for _ in range(6):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            v = eps_constant(ana, node.right, scope, eps)
            if v is not None:
                eps.values.append(v)
                node = node.left
                continue
            v = eps_constant(ana, node.left, scope, eps)
            if v is not None:
                eps.values.append(v)
                node = node.right
                continue
            return node
        if isinstance(node, ast.Call):
            op = ana.op_of(node)
            if op is None or op[0] != "clamp" or op[2] is None:
                return node
            bounds = list(node.args[1:] if op[1] != "method" else node.args)
            for kw in node.keywords:
                if kw.arg in ("min", "a_min", "clip_value_min", "max", "a_max", "clip_value_max"):
                    bounds.append(kw.value)
            for b in bounds:
                if isinstance(b, ast.BinOp) and isinstance(b.op, ast.Sub) and is_one(b.left):
                    eps.uppers.append(eps_constant(ana, b.right, scope, eps))
                else:
                    v = eps_constant(ana, b, scope, eps)
                    if v is not None:
                        eps.values.append(v)
            node = op[2]
            continue
        if isinstance(node, ast.Name) and follow > 0:
            found = ana.lookup(node.id, scope, node.lineno, node.col_offset)
            if found is not None:
                before = len(eps.values) + len(eps.uppers)
                inner = strip_eps(ana, found[0], found[1], eps, follow - 1)
                if len(eps.values) + len(eps.uppers) > before:
                    return inner if isinstance(inner, ast.Name) else node
            return node
        return node
    return node


def eps_note(eps: Eps) -> str:
    """What the eps does and does not do, and when it is too small for the dtype.

    The dtype is the one the code shows (``eps.dtype``); when it shows none, the note
    names each of float32 and float64 where the statement holds.
    """
    if not eps.values and not eps.uppers:
        return ""
    notes = []
    names = [eps.dtype] if eps.dtype in FORMATS else ["float32", "float64"]
    uppers = [u for u in eps.uppers if u is not None and not math.isnan(u)]
    small_upper = False
    if eps.float64_eps and eps.dtype != "float64":
        notes.append(
            f"the eps is float64's machine eps ({approx(FLOAT64_EPS)}), far below float32's"
            f" spacing just below 1 ({approx(FLOAT32.spacing_below_one)}): in float32,"
            " 1 - eps rounds to 1.0 and p + eps == p unless p is tiny"
        )
        small_upper = True
    elif uppers:
        u = min(uppers)
        rounding = [n for n in names if u <= FORMATS[n].one_minus_eps_is_one]
        if rounding:
            fmt = FORMATS[rounding[0]]
            notes.append(
                f"1 - {u:g} rounds to 1.0 in {' and '.join(rounding)} (1 - eps does once"
                f" eps <= 2**-{fmt.p + 1} = {approx(fmt.one_minus_eps_is_one)}), so the clamp"
                " does not keep log(1 - p) finite"
            )
            small_upper = True
    finite = [v for v in eps.values if v is not None and not math.isnan(v)]
    if finite:
        v = min(finite)
        if eps.dtype in (None, "float16", "bfloat16") and not small_upper:
            halves = [
                f
                for f in (FLOAT16, BFLOAT16)
                if eps.dtype in (None, f.name) and v <= f.one_plus_eps_is_one
            ]
            if halves:
                notes.append(
                    f"eps={v:g} vanishes next to p near 1 in "
                    + "/".join(f.name for f in halves)
                    + " (p + eps == p for eps <= "
                    + ", ".join(f"{approx(f.one_plus_eps_is_one)} in {f.name}" for f in halves)
                    + ")"
                )
        notes.append(
            f"an eps only caps the loss at -log(eps) = {-math.log(v):.3g}; the gradient"
            " through a saturated probability is still zero"
        )
    else:
        notes.append(
            "an eps only caps the loss at -log(eps); the gradient through a saturated"
            " probability is still zero"
        )
    return "; " + "; ".join(notes)


#: spellings that name a dtype, by format
_DTYPE_WORDS = (
    ("float64", ("float64", "double", "'f8'", "float_")),
    ("bfloat16", ("bfloat16",)),
    ("float16", ("float16", "half", "'f2'")),
    ("float32", ("float32", "'f4'")),
)
_CAST_METHODS = {"double": "float64", "float": "float32", "half": "float16", "bfloat16": "bfloat16"}


def _dtype_word(node: ast.AST) -> str | None:
    text = ast.dump(node)
    for name, words in _DTYPE_WORDS:
        if any(w in text for w in words):
            return name
    if isinstance(node, ast.Name) and node.id == "float":
        return "float64"  # astype(float) is float64
    return None


def dtype_of(ana: ModuleAnalysis, node: ast.expr, scope: Scope, depth: int = 4) -> str | None:
    """The floating-point format the code shows for ``node``: a cast on the way
    (``.double()``, ``.astype(np.float64)``, ``.to(torch.float16)``, ``dtype=``), followed
    through names; None when the code does not say."""
    budget = [40]

    def visit(n: ast.AST, d: int, sc: Scope = scope) -> str | None:
        budget[0] -= 1
        if budget[0] < 0 or d < 0:
            return None
        if isinstance(n, ast.Call):
            func = n.func
            if isinstance(func, ast.Attribute):
                if func.attr in _CAST_METHODS and not n.args:
                    return _CAST_METHODS[func.attr]
                if func.attr in ("astype", "to", "type") and n.args:
                    found = _dtype_word(n.args[-1] if func.attr == "to" else n.args[0])
                    if found is not None:
                        return found
            for kw in n.keywords:
                if kw.arg == "dtype":
                    return _dtype_word(kw.value)
            qual = ana.resolve(func)
            if qual is not None and qual.rsplit(".", 1)[-1] in ("float64", "float32", "float16"):
                return qual.rsplit(".", 1)[-1]
            for child in (func.value if isinstance(func, ast.Attribute) else None, *n.args):
                if child is not None:
                    found = visit(child, d - 1, sc)
                    if found is not None:
                        return found
            return None
        if isinstance(n, ast.Name):
            hit = ana.lookup(n.id, sc, n.lineno, n.col_offset)
            return None if hit is None else visit(hit[0], d - 1, hit[1])
        if isinstance(n, ast.BinOp):
            return visit(n.left, d - 1, sc) or visit(n.right, d - 1, sc)
        if isinstance(n, (ast.Subscript, ast.UnaryOp)):
            return visit(n.value if isinstance(n, ast.Subscript) else n.operand, d - 1, sc)
        return None

    found = visit(node, depth)
    visit = None  # type: ignore[assignment]  # a closure calling itself is a cycle (holding the tree)
    if found is None and not (ana.frameworks & _FLOAT32_FRAMEWORKS) and _in_metric(ana, scope):
        return "float64"  # a NumPy metric: NumPy computes in float64 unless told otherwise
    return found


#: names of functions (and files) that compute evaluation metrics
_METRIC = re.compile(r"metric|score|log_?loss|eval|auc|accuracy|brier|calibrat|perplex", re.I)


def _in_metric(ana: ModuleAnalysis, scope: Scope) -> bool:
    s: Scope | None = scope
    while s is not None:
        if isinstance(s.node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _METRIC.search(
            s.node.name
        ):
            return True
        s = s.parent
    return bool(ana.path) and bool(_METRIC.search(os.path.basename(ana.path)))


#: frameworks whose floating-point default is float32
_FLOAT32_FRAMEWORKS = frozenset({"torch", "tensorflow", "keras", "jax", "flax", "mxnet", "paddle"})


# --- spelling replacements ---------------------------------------------------------------

LOGSIGMOID = {
    "torch": "torch.nn.functional.logsigmoid",
    "method": "torch.nn.functional.logsigmoid",
    "scipy": "scipy.special.log_expit",
    "jax": "jax.nn.log_sigmoid",
    "tensorflow": "tensorflow.math.log_sigmoid",
    "keras": "keras.ops.log_sigmoid",
}
SIGMOID = {
    "torch": "torch.sigmoid",
    "numpy": "scipy.special.expit",
    "jax": "jax.nn.sigmoid",
    "tensorflow": "tensorflow.math.sigmoid",
}
SOFTPLUS = {
    "torch": "torch.nn.functional.softplus",
    "method": "torch.nn.functional.softplus",
    "numpy": "numpy.logaddexp",
    "jax": "jax.nn.softplus",
    "tensorflow": "tensorflow.math.softplus",
}
LOGSUMEXP = {
    "torch": "torch.logsumexp",
    "numpy": "scipy.special.logsumexp",
    "jax": "jax.nn.logsumexp",
    "tensorflow": "tensorflow.math.reduce_logsumexp",
}
PRETTY = {
    "torch.nn.functional.logsigmoid": "F.logsigmoid",
    "torch.nn.functional.softplus": "F.softplus",
    "tensorflow.math.log_sigmoid": "tf.math.log_sigmoid",
    "tensorflow.math.sigmoid": "tf.math.sigmoid",
    "tensorflow.math.softplus": "tf.math.softplus",
    "tensorflow.math.reduce_logsumexp": "tf.math.reduce_logsumexp",
    "numpy.logaddexp": "np.logaddexp(0, x)",
}


#: binary cross-entropy from logits, by the framework the advice is for
BCE_LOGITS = {
    "torch": "F.binary_cross_entropy_with_logits(logits, y)",
    "numpy": "np.logaddexp(0, z) - y * z (NumPy; scipy.special.log_expit(z) is log p)",
    "jax": "optax.sigmoid_binary_cross_entropy(logits, y)",
    "tensorflow": "tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)",
    "keras": "keras.losses.binary_crossentropy(y, z, from_logits=True)",
}
#: categorical cross-entropy from logits, by framework
CE_LOGITS = {
    "torch": "F.cross_entropy(logits, target) (it accepts class probabilities as target) or"
    " -(y * F.log_softmax(logits, dim)).sum(dim)",
    "numpy": "-(y * scipy.special.log_softmax(z, axis)).sum(axis)",
    "jax": "optax.softmax_cross_entropy(logits, labels) or -(y * jax.nn.log_softmax(z)).sum(-1)",
    "tensorflow": "tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)",
    "keras": "keras.losses.categorical_crossentropy(y, z, from_logits=True)",
}
LOG_SOFTMAX = {
    "torch": "F.log_softmax(x, dim)",
    "numpy": "scipy.special.log_softmax(x, axis)",
    "jax": "jax.nn.log_softmax(x, axis)",
    "tensorflow": "tf.nn.log_softmax(x, axis)",
    "keras": "keras.ops.log_softmax(x, axis)",
}
_FW_OF = {"scipy": "numpy", "math": "numpy", "numpy": "numpy", "torch": "torch"}
_FW_OF.update({"jax": "jax", "tensorflow": "tensorflow", "keras": "keras"})


def advice_framework(ana: ModuleAnalysis, *fws: str) -> str:
    """The framework advice should be written for: the call's own, else the file's."""
    for fw in fws:
        if fw in _FW_OF:
            return _FW_OF[fw]
    present = ana.frameworks
    for fw in ("torch", "tensorflow", "keras", "jax", "numpy", "scipy"):
        if fw in present:
            return _FW_OF[fw]
    return "torch"


def pretty(qual: str) -> str:
    return PRETTY.get(qual, qual)


def renamed(ana: ModuleAnalysis, func: ast.expr, new_last: str) -> str | None:
    """Qualified name of ``func`` with its last component replaced, if it resolves."""
    qual = ana.resolve(func)
    if qual is None:
        return None
    return qual.rsplit(".", 1)[0] + "." + new_last


# --- rules -------------------------------------------------------------------------------


class Rule:
    codes: tuple[str, ...] = ()

    def check(self, ctx: Context) -> None:
        raise NotImplementedError


def log_input(ana: ModuleAnalysis, call: ast.Call) -> tuple[str, ast.expr] | None:
    """If ``call`` is log(x) / x.log() with nothing else: (framework, x)."""
    op = ana.op_of(call)
    if op is None or op[0] != "log" or op[2] is None:
        return None
    if op[1] == "method":
        if call.args or call.keywords:
            return None
    elif not simple_call(call):
        return None
    return op[1], op[2]


class HandWrittenCrossEntropy(Rule):
    """LGL040/LGL041: ``-(y*log(p) + (1-y)*log(1-p))`` and ``-sum(y*log(p))`` on probabilities."""

    codes = ("LGL040", "LGL041", "LGL042")

    def check(self, ctx: Context) -> None:
        ana = ctx.analysis
        for binop, scope in ana.binops:
            if isinstance(binop.op, (ast.Add, ast.Sub)):
                self._binary(ctx, binop, scope)
        for call, scope in ana.calls:
            self._categorical(ctx, call, scope)
            self._logit_ratio(ctx, call, scope)

    def _logit_ratio(self, ctx: Context, call: ast.Call, scope: Scope) -> None:
        """LGL042: ``log(p / (1 - p))``."""
        ana = ctx.analysis
        found = log_input(ana, call)
        if found is None or id(call) in ctx.covered:
            return
        ratio = found[1]
        if not (isinstance(ratio, ast.BinOp) and isinstance(ratio.op, ast.Div)):
            return
        eps = Eps()
        p = strip_eps(ana, ratio.left, scope, eps)
        q = strip_eps(ana, ratio.right, scope, eps)
        if not (
            isinstance(q, ast.BinOp)
            and isinstance(q.op, ast.Sub)
            and one_ish(ana, q.left, scope, eps)
            and (same(strip_eps(ana, q.right, scope, eps), p) or same(q.right, p))
        ):
            return
        ctx.covered.add(id(call))
        self._emit_logit(ctx, call, p, scope, found[0], eps)

    @staticmethod
    def _term(
        ana: ModuleAnalysis, node: ast.expr, scope: Scope | None = None
    ) -> tuple[ast.expr, ast.Call] | None:
        node = unneg(node)
        if isinstance(node, ast.Name) and scope is not None:
            # the two terms on their own statements: a = y * log(p); b = ...; -(a + b)
            found = ana.lookup(node.id, scope, node.lineno, node.col_offset)
            if found is None:
                return None
            node = unneg(found[0])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for weight, log in ((node.left, node.right), (node.right, node.left)):
                log = unneg(log)
                if isinstance(log, ast.Call) and log_input(ana, log) is not None:
                    return unneg(weight), log
        return None

    def _binary(self, ctx: Context, binop: ast.BinOp, scope: Scope) -> None:
        ana = ctx.analysis
        if isinstance(binop.op, ast.Sub) and self._logit(ctx, binop, scope):
            return
        left = self._term(ana, binop.left, scope)
        right = self._term(ana, binop.right, scope)
        if left is None or right is None:
            return
        eps = Eps()
        args = []
        for _, log in (left, right):
            found = log_input(ana, log)
            assert found is not None
            args.append(strip_eps(ana, found[1], scope, eps))
        p = None
        for a, b in ((args[0], args[1]), (args[1], args[0])):
            if (
                isinstance(b, ast.BinOp)
                and isinstance(b.op, ast.Sub)
                and one_ish(ana, b.left, scope, eps)
            ):
                inner = strip_eps(ana, b.right, scope, eps)
                if same(inner, a) or same(b.right, a):
                    p = a
        if p is None:
            return
        ctx.covered.update((id(left[1]), id(right[1])))
        v = ana.value(p, scope)
        origin = ""
        if v is not None and v.kind == "sigmoid":
            origin = f" (p comes from a sigmoid at {where(v)}: pass its input)"
        eps.dtype = dtype_of(ana, p, scope)
        fw = advice_framework(ana, ana.op_of(left[1])[1])  # type: ignore[index]
        ctx.emit(
            "LGL040",
            binop,
            "hand-written binary cross-entropy on probabilities: log(1 - p) is log(0) once"
            " p rounds to 1, which a sigmoid does for logits >= "
            + per_format("sigmoid_is_one", eps.dtype)
            + f"; compute it from the logits with {BCE_LOGITS[fw]}"
            + origin
            + eps_note(eps),
        )

    def _logit(self, ctx: Context, binop: ast.BinOp, scope: Scope) -> bool:
        """LGL042: ``log(p) - log(1 - p)``, the logit recomputed from a probability."""
        ana = ctx.analysis
        logs = []
        for side in (binop.left, binop.right):
            if not isinstance(side, ast.Call):
                return False
            found = log_input(ana, side)
            if found is None:
                return False
            logs.append(found)
        eps = Eps()
        p = strip_eps(ana, logs[0][1], scope, eps)
        q = strip_eps(ana, logs[1][1], scope, eps)
        if not (
            isinstance(q, ast.BinOp)
            and isinstance(q.op, ast.Sub)
            and one_ish(ana, q.left, scope, eps)
            and (same(strip_eps(ana, q.right, scope, eps), p) or same(q.right, p))
        ):
            return False
        ctx.covered.update((id(binop.left), id(binop.right)))
        self._emit_logit(ctx, binop, p, scope, logs[0][0], eps)
        return True

    def _emit_logit(
        self, ctx: Context, node: ast.AST, p: ast.expr, scope: Scope, fw: str, eps: Eps
    ) -> None:
        ana = ctx.analysis
        v = ana.value(p, scope)
        adv = advice_framework(ana, fw)
        eps.dtype = dtype_of(ana, p, scope)
        logit = {
            "torch": "torch.logit(p, eps)",
            "numpy": "scipy.special.logit(p)",
            "jax": "jax.scipy.special.logit(p)",
            "tensorflow": "the logits the probabilities were computed from",
            "keras": "the logits the probabilities were computed from",
        }[adv]
        if v is not None and v.kind == "sigmoid":
            instead = f"p is a sigmoid ({where(v)}), so this is its input: use the logits directly"
        else:
            instead = f"keep the logits p was computed from and use them directly (or {logit})"
        ctx.emit(
            "LGL042",
            node,
            "log(p) - log(1 - p) recomputes a logit from a probability: log(1 - p) is"
            " log(0) = -inf once p rounds to 1 (a sigmoid does for logits >= "
            + per_format("sigmoid_is_one", eps.dtype)
            + ") and all precision in the logit is lost near 0 and 1; "
            + instead
            + eps_note(eps),
        )

    def _categorical(self, ctx: Context, call: ast.Call, scope: Scope) -> None:
        ana = ctx.analysis
        op = ana.op_of(call)
        if op is None or op[0] not in ("sum", "mean") or op[2] is None:
            return
        term = self._term(ana, op[2])
        if term is None:
            return
        weight, log = term
        found = log_input(ana, log)
        assert found is not None
        eps = Eps()
        p = strip_eps(ana, found[1], scope, eps)
        if same(weight, p) or same(weight, found[1]):
            if p is not found[1]:
                ctx.covered.add(id(log))  # an entropy with an eps: p log(p + eps) is finite
            return  # entropy -sum(p log p), not a cross-entropy
        v = ana.value(p, scope)
        is_softmax = v is not None and v.kind == "softmax"
        if not is_softmax and not (eps.values or eps.uppers):
            return
        if v is not None and v.kind == "sigmoid":
            return  # a sigmoid here is one term of a binary CE; LGL011 reports its log
        ctx.covered.add(id(log))
        origin = (
            f" (p comes from a softmax at {where(v)}: pass its input)"
            if is_softmax and v is not None
            else ""
        )
        eps.dtype = dtype_of(ana, p, scope)
        fw = advice_framework(ana, found[0], op[1])
        ctx.emit(
            "LGL041",
            call,
            "hand-written cross-entropy on probabilities: log(p) underflows to -inf (or is"
            " capped by the eps) for confident predictions; compute it from the logits with "
            + CE_LOGITS[fw]
            + origin
            + eps_note(eps),
        )


class SigmoidThenBinaryCrossEntropy(Rule):
    """LGL001/LGL002: BCE on a sigmoid, explicit or as the model's last layer."""

    codes = ("LGL001", "LGL002")

    def check(self, ctx: Context) -> None:
        ana = ctx.analysis
        # criterion origin -> inputs of every call of it, to know if the loss may change
        uses: dict[int, list[tuple[ast.expr | None, Scope]]] = {}
        sites: list[tuple[ast.Call, Scope, ast.expr | None, Value | None, str]] = []
        for call, scope in ana.calls:
            op = ana.op_of(call)
            if op is not None and op[0] == "bce_fn":
                sites.append((call, scope, op[2], None, "functional"))
                continue
            if op is not None:
                continue
            crit = ana.value(call.func, scope) if isinstance(call.func, ast.expr) else None
            if crit is not None and crit.kind == "bce_module":
                arg = call.args[0] if call.args else None
                for kw in call.keywords:
                    if kw.arg == "input":
                        arg = kw.value
                sites.append((call, scope, arg, crit, "module"))
                uses.setdefault(id(crit.origin), []).append((arg, scope))
        for call, scope, arg, crit, form in sites:
            v = ana.value(arg, scope)
            if v is None or v.kind != "sigmoid" or arg is None:
                continue
            if v.via == "model":
                same_model = crit is not None and all(
                    (u := ana.value(a, where)) is not None and u.origin is v.origin
                    for a, where in uses.get(id(crit.origin), [])
                )
                self._model(ctx, call, arg, v, crit if same_model else None, form)
                continue
            loss = "F.binary_cross_entropy" if form == "functional" else "nn.BCELoss"
            instead = (
                "F.binary_cross_entropy_with_logits(logits, y)"
                if form == "functional"
                else "nn.BCEWithLogitsLoss() on the logits"
            )
            fix = None
            inner = sigmoid_input(ana, arg)
            if inner is not None and form == "functional" and arg is call.args[0]:
                qual = renamed(ana, call.func, "binary_cross_entropy_with_logits")
                fix = Fix(
                    "safe",
                    "use binary_cross_entropy_with_logits on the sigmoid's input",
                    (call_edit(call, "bce_logits", qual=qual, form=inner[1]),),
                )
            elif (
                inner is not None
                and crit is not None
                and isinstance(crit.origin, ast.Call)
                and all(
                    a is not None and sigmoid_input(ana, a) is not None
                    for a, _where in uses.get(id(crit.origin), [])
                )
                and call.args
                and arg is call.args[0]
            ):
                ctor = crit.origin
                fix = Fix(
                    "unsafe",
                    "construct nn.BCEWithLogitsLoss and pass it the sigmoid's input",
                    (
                        call_edit(
                            ctor,
                            "rename_call",
                            new="BCEWithLogitsLoss",
                            qual=renamed(ana, ctor.func, "BCEWithLogitsLoss"),
                        ),
                        call_edit(call, "unwrap_arg0", form=inner[1]),
                    ),
                )
            ctx.emit(
                "LGL001",
                call,
                f"{loss} on the output of a sigmoid: sigmoid rounds to exactly 1 once"
                f" logit >= {approx(FLOAT32.sigmoid_is_one)} (float32), torch then clamps"
                " log(1 - p) at -100 and the gradient"
                f" vanishes for confident mistakes; use {instead}, which computes"
                " max(x, 0) - x*y + log1p(exp(-|x|)) exactly",
                fix,
            )

    def _model(
        self,
        ctx: Context,
        call: ast.Call,
        arg: ast.expr,
        v: Value,
        crit: Value | None,
        form: str,
    ) -> None:
        ana = ctx.analysis
        loss = "F.binary_cross_entropy" if form == "functional" else "nn.BCELoss"
        edits: list[Edit] = []
        origin = v.origin
        squash_edit = model_squash_edit(ana, origin)
        removable = squash_edit is not None
        if squash_edit is not None:
            edits.append(squash_edit)
        if removable:
            if form == "functional":
                edits.append(
                    call_edit(
                        call,
                        "rename_call",
                        new="binary_cross_entropy_with_logits",
                        qual=renamed(ana, call.func, "binary_cross_entropy_with_logits"),
                    )
                )
            elif crit is not None and isinstance(crit.origin, ast.Call):
                edits.append(
                    call_edit(
                        crit.origin,
                        "rename_call",
                        new="BCEWithLogitsLoss",
                        qual=renamed(ana, crit.origin.func, "BCEWithLogitsLoss"),
                    )
                )
            else:
                removable = False
        blockers = other_uses(ana, origin, crit) if removable else []
        fix = (
            Fix(
                "unsafe",
                "remove the model's final sigmoid and switch the loss to its logits form;"
                " inference code must now apply torch.sigmoid to the model's output",
                tuple(edits),
                line(origin),
            )
            if removable and not blockers
            else None
        )
        blocked = (
            "; no fix offered: removing the sigmoid would feed logits to the other uses of"
            " the model's output at line " + ", ".join(str(n) for n in blockers)
            if blockers
            else ""
        )
        ctx.emit(
            "LGL002",
            call,
            f"{loss} on the output of a model whose last layer is a sigmoid (line"
            f" {where(v)[5:]}): the loss saturates and its gradient vanishes for confident"
            " mistakes; drop the sigmoid from the model and use nn.BCEWithLogitsLoss /"
            " F.binary_cross_entropy_with_logits, and apply torch.sigmoid where inference"
            " code needs probabilities" + blocked,
            fix,
        )


def other_uses(ana: ModuleAnalysis, origin: ast.AST, crit: Value | None) -> list[int]:
    """Lines where the output of the model ending in ``origin`` is used other than as the
    input of the criterion being fixed (``crit``; None: a functional loss). Those uses
    would get logits once the final sigmoid is removed."""
    consumed: set[int] = set()
    lines: list[int] = []
    for call, scope in ana.calls:
        op = ana.op_of(call)
        crit_here = ana.value(call.func, scope) if op is None else None
        is_loss = (op is not None and op[0] == "bce_fn") or (
            crit is not None and crit_here is not None and crit_here.origin is crit.origin
        )
        if is_loss and call.args:
            for node in ast.walk(call.args[0]):
                consumed.add(id(node))
    origin_line = line(origin)
    for call, scope in ana.calls:
        if id(call) in consumed:
            continue
        cls = scope.cls
        if cls is not None and cls.node.lineno <= origin_line <= (cls.node.end_lineno or 0):
            continue  # the model's own definition
        v = ana.value(call, scope)
        if v is None or v.origin is not origin or v.via != "model" or v.kind != "sigmoid":
            continue
        lines.append(line(call))
    return sorted(set(lines))


def model_squash_edit(ana: ModuleAnalysis, origin: ast.AST) -> Edit | None:
    """The edit that removes a model's final sigmoid/softmax, if it can be removed.

    The squash must be the last layer of an ``nn.Sequential(...)`` or applied in the
    expression a ``forward`` returns (possibly under ``.squeeze()`` and the like).
    """
    if not isinstance(origin, ast.Call):
        return None
    for seq, _scope in ana.calls:
        op = ana.op_of(seq)
        if op is not None and op[0] == "sequential" and seq.args and seq.args[-1] is origin:
            return call_edit(seq, "drop_last_arg")
    if not _returned_by_forward(ana, origin):
        return None
    op = ana.op_of(origin)
    if op is not None and op[1] == "method":
        return call_edit(origin, "unwrap_self", form="method")
    if origin.args:
        return call_edit(origin, "unwrap_self", form="arg0")
    return None


def _returned_by_forward(ana: ModuleAnalysis, node: ast.AST) -> bool:
    for info in ana.classes.values():
        method = info.methods.get("forward")
        if method is None:
            continue
        for ret in method.returns:
            while (
                isinstance(ret, ast.Call)
                and isinstance(ret.func, ast.Attribute)
                and ret.func.attr in PASS_THROUGH
                and ret is not node
            ):
                ret = ret.func.value
            if ret is node:
                return True
    return False


KERAS_BCE_STRINGS = frozenset({"binary_crossentropy", "BinaryCrossentropy", "bce"})


class KerasSigmoidBinaryCrossEntropy(Rule):
    """LGL003: Keras BinaryCrossentropy after a sigmoid activation."""

    codes = ("LGL003",)

    def check(self, ctx: Context) -> None:
        ana = ctx.analysis
        sigmoid_layer: ast.Call | None = None
        losses: list[ast.AST] = []
        compiled: list[tuple[ast.AST, ast.Call, Scope]] = []
        in_compile: set[int] = set()
        for call, scope in ana.calls:
            is_compile = isinstance(call.func, ast.Attribute) and call.func.attr == "compile"
            for kw in call.keywords:
                if kw.arg == "activation" and self._is_sigmoid(ana, kw.value):
                    sigmoid_layer = call
                if kw.arg == "loss" and self._is_bce(ana, kw.value):
                    if is_compile:
                        compiled.append((kw.value, call, scope))
                    else:
                        losses.append(kw.value)
                if kw.arg == "loss" and is_compile:
                    in_compile.update(id(n) for n in ast.walk(kw.value))
            qual = ana.resolve(call.func)
            if (
                qual is not None
                and qual.endswith("Activation")
                and call.args
                and self._is_sigmoid(ana, call.args[0])
            ):
                sigmoid_layer = call
            if (
                (
                    qual is not None
                    and qual.startswith("keras.")
                    and qual.endswith("losses.BinaryCrossentropy")
                )
                and not self._from_logits(call)
                and not any(x is call for x in losses)
            ):
                losses.append(call)
        self._explicit(ctx)
        for node, compile_call, scope in compiled:
            last = self._final_layer(ana, compile_call, scope)
            if last is None:
                if sigmoid_layer is not None:  # the model cannot be followed: any sigmoid layer
                    self._emit(ctx, node, sigmoid_layer)
                continue
            kind, layer = last
            if kind != "sigmoid":
                continue  # a tanh generator, a linear (logits) head: nothing to report
            self._emit(ctx, node, layer)
        if sigmoid_layer is None:
            return
        seen: set[int] = set()
        for node in losses:
            if id(node) in seen or id(node) in in_compile:
                continue  # a loss given to compile is paired with the compiled model above
            seen.add(id(node))
            self._emit(ctx, node, sigmoid_layer)

    def _emit(self, ctx: Context, node: ast.AST, layer: ast.AST) -> None:
        ctx.emit(
            "LGL003",
            node,
            "Keras binary cross-entropy on a sigmoid activation (line"
            f" {line(layer)}): the TensorFlow backend recovers the logits from"
            " the sigmoid op, but the torch and JAX backends compute log(p) on"
            " saturated probabilities; use a linear last layer and"
            " BinaryCrossentropy(from_logits=True), and apply sigmoid at inference",
        )

    def _final_layer(
        self, ana: ModuleAnalysis, compile_call: ast.Call, scope: Scope
    ) -> tuple[str, ast.AST] | None:
        """The activation of the last layer of the model ``compile`` is called on
        (``sigmoid``, ``other``), and that layer; None when the model cannot be followed."""
        receiver = compile_call.func.value  # type: ignore[attr-defined]
        if not isinstance(receiver, ast.Name):
            return None
        added = [
            c
            for c, _s in ana.calls_named("add")
            if isinstance(c.func, ast.Attribute)
            and isinstance(c.func.value, ast.Name)
            and c.func.value.id == receiver.id
            and c.args
            and line(c) < line(compile_call)
        ]
        if added:
            return self._layer_kind(ana, max(added, key=line).args[0])
        found = ana.lookup(receiver.id, scope, receiver.lineno, receiver.col_offset)
        if found is None or not isinstance(found[0], ast.Call):
            return None
        ctor: ast.Call = found[0]
        where_ = found[1]
        qual = ana.resolve(ctor.func) or ""
        if qual.endswith("Sequential"):
            layers = ctor.args[0] if ctor.args else None
            if isinstance(layers, (ast.List, ast.Tuple)) and layers.elts:
                return self._layer_kind(ana, layers.elts[-1])
            return None
        if qual.endswith("Model"):
            out = ctor.args[1] if len(ctor.args) > 1 else None
            for kw in ctor.keywords:
                if kw.arg == "outputs":
                    out = kw.value
            for _ in range(4):
                if isinstance(out, ast.Name):
                    hit = ana.lookup(out.id, where_, out.lineno, out.col_offset)
                    out = None if hit is None else hit[0]
            if isinstance(out, ast.Call):
                layer = ana.layer_activation(out)
                if layer is not None:
                    return layer
                op = ana.op_of(out)
                if op is not None:
                    return ("sigmoid" if op[0] == "sigmoid" else "other"), out
            return None
        return None

    @staticmethod
    def _layer_kind(ana: ModuleAnalysis, node: ast.expr) -> tuple[str, ast.AST] | None:
        if not isinstance(node, ast.Call):
            return None
        qual = ana.resolve(node.func) or ""
        act: ast.expr | None = None
        if qual.endswith("Activation") and node.args:
            act = node.args[0]
        for kw in node.keywords:
            if kw.arg == "activation":
                act = kw.value
        if act is None:
            return ("other", node) if qual else None
        kind = ana.activation_of(act)
        return None if kind is None else (kind, node)

    def _explicit(self, ctx: Context) -> None:
        """``binary_crossentropy(y, sigmoid(z))`` and ``BinaryCrossentropy()(y, p)``."""
        ana = ctx.analysis
        for call, scope in ana.calls:
            qual = ana.resolve(call.func)
            if qual is not None and qual.endswith(
                (
                    "losses.binary_crossentropy",
                    "backend.binary_crossentropy",
                    "ops.binary_crossentropy",
                )
            ):
                if self._from_logits(call):
                    continue
            else:
                crit = ana.value(call.func, scope)
                if crit is None or crit.kind != "keras_bce":
                    continue
                if isinstance(crit.origin, ast.Call) and self._from_logits(crit.origin):
                    continue
            pred = call.args[1] if len(call.args) > 1 else None
            for kw in call.keywords:
                if kw.arg in ("y_pred", "output"):
                    pred = kw.value
            v = ana.value(pred, scope)
            if v is None or v.kind != "sigmoid":
                continue
            ctx.emit(
                "LGL003",
                call,
                "Keras binary cross-entropy on the output of a sigmoid (line"
                f" {where(v)[5:]}): the TensorFlow backend recovers the logits from the"
                " sigmoid op, but the torch and JAX backends compute log(p) on saturated"
                " probabilities; pass the logits with from_logits=True",
            )

    @staticmethod
    def _is_sigmoid(ana: ModuleAnalysis, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return node.value == "sigmoid"
        qual = ana.resolve(node)
        return qual is not None and ana_op(qual) == "sigmoid"

    def _is_bce(self, ana: ModuleAnalysis, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in KERAS_BCE_STRINGS
        if isinstance(node, ast.Call):
            qual = ana.resolve(node.func)
            return (
                qual is not None
                and qual.endswith("losses.BinaryCrossentropy")
                and not self._from_logits(node)
            )
        qual = ana.resolve(node)
        return qual is not None and qual.endswith("losses.binary_crossentropy")

    @staticmethod
    def _from_logits(call: ast.Call) -> bool:
        return any(
            kw.arg == "from_logits"
            and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)
            for kw in call.keywords
        )


#: TensorFlow losses whose ``logits`` argument must be logits: name -> (squash it applies,
#: position of the logits argument)
TF_LOGIT_LOSSES = {
    "nn.softmax_cross_entropy_with_logits": ("softmax", 99),
    "nn.softmax_cross_entropy_with_logits_v2": ("softmax", 99),
    "nn.sparse_softmax_cross_entropy_with_logits": ("softmax", 99),
    "nn.sigmoid_cross_entropy_with_logits": ("sigmoid", 99),
    "nn.weighted_cross_entropy_with_logits": ("sigmoid", 99),
    "losses.softmax_cross_entropy": ("softmax", 1),
    "losses.sparse_softmax_cross_entropy": ("softmax", 1),
    "losses.sigmoid_cross_entropy": ("sigmoid", 1),
}
#: Keras cross-entropies that take probabilities unless ``from_logits=True``
#: (binary_crossentropy is LGL003's)
KERAS_CE = ("categorical_crossentropy", "sparse_categorical_crossentropy")


class TensorFlowSquashIntoCrossEntropy(Rule):
    """LGL004: a TensorFlow cross-entropy given probabilities: a layer's
    ``activation=tf.nn.softmax``/``sigmoid`` (or ``tf.nn.softmax(z)``) fed to
    ``softmax_cross_entropy_with_logits`` / ``tf.losses.softmax_cross_entropy`` (which
    apply the squash again), or to a Keras cross-entropy without ``from_logits``."""

    codes = ("LGL004",)

    def check(self, ctx: Context) -> None:
        ana = ctx.analysis
        for call, scope in ana.calls:
            qual = ana.resolve(call.func)
            if qual is None or not qual.startswith(("tensorflow.", "keras.")):
                continue
            name = qual.split(".", 1)[1].replace("compat.v1.", "")
            if name in TF_LOGIT_LOSSES:
                squash, pos = TF_LOGIT_LOSSES[name]
                arg = call.args[pos] if len(call.args) > pos else None
                for kw in call.keywords:
                    if kw.arg == "logits":
                        arg = kw.value
                v = ana.value(arg, scope)
                if v is None or v.kind not in ("sigmoid", "softmax"):
                    continue
                what = "a layer's activation" if v.via == "layer" else f"a {v.kind}"
                ctx.emit(
                    "LGL004",
                    call,
                    f"{name.rsplit('.', 1)[-1]} applies {squash} to its logits argument, but it"
                    f" gets probabilities from {what} ({where(v)}): the {v.kind} is applied twice,"
                    " the loss is wrong and its gradient nearly vanishes; "
                    + (
                        "drop the activation from the layer (activation=None) and pass the"
                        " layer's output as logits; apply the activation only for predictions"
                        if v.via == "layer"
                        else "pass the logits (the input of the softmax/sigmoid)"
                    ),
                )
                continue
            last = name.rsplit(".", 1)[-1]
            if not (name.startswith(("keras.losses.", "losses.")) and last in KERAS_CE):
                continue
            if KerasSigmoidBinaryCrossEntropy._from_logits(call):
                continue
            pred = call.args[1] if len(call.args) > 1 else None
            for kw in call.keywords:
                if kw.arg == "y_pred":
                    pred = kw.value
            v = ana.value(pred, scope)
            if v is None or v.via != "layer" or v.kind not in ("sigmoid", "softmax"):
                continue
            ctx.emit(
                "LGL004",
                call,
                f"{last} on the output of a layer with a {v.kind} activation ({where(v)}):"
                " only the TensorFlow backend recovers the logits from the activation op;"
                f" log({v.kind}) saturates otherwise; use a linear layer (activation=None)"
                f" and {last}(y, logits, from_logits=True), and apply {v.kind} for predictions",
                self._local_fix(ana, call, pred, scope),
            )

    @staticmethod
    def _local_fix(
        ana: ModuleAnalysis, call: ast.Call, pred: ast.expr | None, scope: Scope
    ) -> Fix | None:
        """A safe fix when the layer's output provably goes nowhere else: a name bound
        once, in a function, to ``Dense(..., activation=...)(h)`` built right there, and
        read only by this loss (no other name in the module is spelled the same). The loss
        keeps its value (computed from the logits); nothing else sees the layer."""
        if not isinstance(pred, ast.Name) or scope is ana.module_scope:
            return None
        if any(kw.arg == "from_logits" or kw.arg is None for kw in call.keywords):
            return None
        if not isinstance(scope.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        entries = scope.assigns.get(pred.id, [])
        if len(entries) != 1 or entries[0][3]:
            return None  # a parameter, bound twice, or inside a branch
        value = entries[0][2]
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Call)):
            return None
        layer = value.func
        acts = [kw for kw in layer.keywords if kw.arg == "activation"]
        if len(acts) != 1 or any(kw.arg is None for kw in layer.keywords):
            return None
        spelled = sum(
            1
            for n in ast.walk(ana.tree)
            if (isinstance(n, ast.Name) and n.id == pred.id)
            or (isinstance(n, ast.arg) and n.arg == pred.id)
            or (isinstance(n, (ast.Global, ast.Nonlocal)) and pred.id in n.names)
        )
        if spelled != 2:  # the binding and this use, nothing else
            return None
        return Fix(
            "safe",
            "make the layer linear (activation=None) and pass from_logits=True",
            (
                call_edit(layer, "set_kwarg", name="activation", value="None"),
                call_edit(call, "set_kwarg", name="from_logits", value="True"),
            ),
        )


def ana_op(qual: str) -> str | None:
    hit = OPS.get(qual)
    return None if hit is None else hit[0]


class SoftmaxIntoLogLoss(Rule):
    """LGL020/LGL021: softmax into NLLLoss (computes -p) or CrossEntropyLoss (twice)."""

    codes = ("LGL020", "LGL021")

    def check(self, ctx: Context) -> None:
        ana = ctx.analysis
        for call, scope in ana.calls:
            op = ana.op_of(call)
            kind = None
            arg: ast.expr | None = None
            if op is not None:
                if op[0] in ("nll_fn", "ce_fn"):
                    kind, arg = op[0][:-3], op[2]
            else:
                crit = ana.value(call.func, scope)
                if crit is not None and crit.kind in ("nll_module", "ce_module"):
                    kind, arg = crit.kind[:-7], (call.args[0] if call.args else None)
            if kind is None or arg is None:
                continue
            v = ana.value(arg, scope)
            if v is None or v.kind != "softmax":
                continue
            sm = softmax_call(ana, arg) if call.args and arg is call.args[0] else None
            if kind == "nll":
                fix = None
                if sm is not None:
                    assert isinstance(arg, ast.Call)
                    fix = Fix(
                        "unsafe",
                        "pass log_softmax instead of softmax (this changes the loss value: it"
                        " becomes the correct one)",
                        (
                            call_edit(
                                call,
                                "rename_arg0",
                                new="log_softmax",
                                qual=renamed(ana, arg.func, "log_softmax"),
                            ),
                        ),
                    )
                ctx.emit(
                    "LGL020",
                    call,
                    "softmax probabilities passed to NLLLoss/nll_loss, which expects"
                    " log-probabilities: it computes -p instead of -log p, a wrong loss; use"
                    " F.cross_entropy(logits, target), or nll_loss(F.log_softmax(logits, dim))",
                    fix,
                )
            else:
                fix = None
                if sm is not None:
                    fix = Fix(
                        "unsafe",
                        "pass the logits (drop the softmax); this changes the loss value",
                        (call_edit(call, "unwrap_arg0", form=sm[1]),),
                    )
                elif v.via == "model":
                    edit = model_squash_edit(ana, v.origin)
                    if edit is not None:
                        fix = Fix(
                            "unsafe",
                            "remove the model's final softmax; inference code must now apply"
                            " softmax to the model's output",
                            (edit,),
                            line(v.origin),
                        )
                instead = (
                    f"; drop the final softmax from the model ({where(v)}) and"
                    " apply softmax where inference code needs probabilities"
                    if v.via == "model"
                    else ""
                )
                ctx.emit(
                    "LGL021",
                    call,
                    "softmax probabilities passed to CrossEntropyLoss/cross_entropy, which"
                    " applies log_softmax itself: softmax is applied twice and the gradients"
                    " shrink; pass the logits" + instead,
                    fix,
                )


class LogOfSquashing(Rule):
    """LGL010/LGL011 log(softmax), log(sigmoid), log(1 - sigmoid); LGL031/LGL032 softplus
    and logsumexp written as log(1 + exp(x)) and log(sum(exp(x)))."""

    codes = ("LGL010", "LGL011", "LGL031", "LGL032")

    def check(self, ctx: Context) -> None:
        ana = ctx.analysis
        for call, scope in ana.calls:
            if id(call) in ctx.covered:
                continue
            op = ana.op_of(call)
            if op is None or op[2] is None:
                continue
            if op[0] == "log1p":
                self._log1p(ctx, call, op[1], op[2])
                continue
            found = log_input(ana, call)
            if found is None:
                continue
            fw, arg = found
            if self._softplus(ctx, call, fw, arg) or self._logsumexp(ctx, call, fw, arg, scope):
                continue
            eps = Eps()
            core = strip_eps(ana, arg, scope, eps)
            negate = False
            if (
                isinstance(core, ast.BinOp)
                and isinstance(core.op, ast.Sub)
                and one_ish(ana, core.left, scope, eps)
            ):
                core = strip_eps(ana, core.right, scope, eps)
                negate = True
            v = ana.value(core, scope)
            if v is None or v.kind not in ("sigmoid", "softmax"):
                continue
            if ana.is_helper_scope(scope):
                continue  # reported where the helper is called
            if v.kind == "softmax" and negate:
                continue  # log(1 - softmax) has no simple stable form; left alone
            plain = not eps.values and not eps.uppers and core is (arg.right if negate else arg)  # type: ignore[attr-defined]
            plain = plain and id(call) not in ana.helper_calls and id(core) not in ana.helper_calls
            if v.kind == "softmax":
                self._log_softmax(ctx, call, fw, core, plain, eps)
            else:
                self._log_sigmoid(ctx, call, fw, core, plain, eps, negate)

    def _log_softmax(
        self, ctx: Context, call: ast.Call, fw: str, core: ast.expr, plain: bool, eps: Eps
    ) -> None:
        ana = ctx.analysis
        fix = None
        sm = softmax_call(ana, core)
        eps.dtype = dtype_of(ana, core, ana.module_scope)
        adv = advice_framework(ana, fw, sm[0] if sm else "")
        if plain and sm is not None and sm[0] in ("torch", "method", "scipy", "jax", "tensorflow"):
            assert isinstance(core, ast.Call)
            compatible = fw == "method" or sm[0] == "method" or fw == sm[0]
            compatible = compatible or (fw == "numpy" and sm[0] == "scipy")
            if compatible:
                fix = Fix(
                    "safe",
                    "use log_softmax",
                    (
                        call_edit(
                            call,
                            "log_softmax",
                            qual=renamed(ana, core.func, "log_softmax"),
                            form=sm[1],
                        ),
                    ),
                )
        ctx.emit(
            "LGL010",
            call,
            "log of a softmax: softmax underflows to 0 for logits more than "
            + per_format("log_underflow", eps.dtype).replace("-", "")
            + f" below the max and log gives -inf; use {LOG_SOFTMAX[adv]}, which computes"
            " x - logsumexp(x) without forming the probabilities" + eps_note(eps),
            fix,
        )

    def _log_sigmoid(
        self,
        ctx: Context,
        call: ast.Call,
        fw: str,
        core: ast.expr,
        plain: bool,
        eps: Eps,
        negate: bool,
    ) -> None:
        ana = ctx.analysis
        inner = sigmoid_input(ana, core)
        fix = None
        sig_fw = ana.op_of(core)[1] if isinstance(core, ast.Call) and ana.op_of(core) else ""  # type: ignore[index]
        qual = LOGSIGMOID.get(sig_fw)
        adv = advice_framework(ana, fw, sig_fw)
        compatible = fw == "method" or sig_fw == "method" or fw == sig_fw
        compatible = compatible or (fw == "numpy" and sig_fw == "scipy")
        compatible = compatible or (fw == "jax" and sig_fw == "jax")
        if plain and inner is not None and qual is not None and compatible:
            fix = Fix(
                "safe",
                f"use {pretty(qual)}",
                (call_edit(call, "logsigmoid", qual=qual, negate=negate, form=inner[1]),),
            )
        what = "log(1 - sigmoid(x))" if negate else "log(sigmoid(x))"
        instead = "logsigmoid(-x)" if negate else "logsigmoid(x)"
        qual_text = pretty(
            qual or LOGSIGMOID.get("scipy" if adv == "numpy" else adv) or LOGSIGMOID["torch"]
        )
        dtype = dtype_of(ana, core, ana.module_scope)
        eps.dtype = dtype
        when = (
            "sigmoid(x) rounds to 1 (x >= " + per_format("sigmoid_is_one", dtype) + ")"
            if negate
            else "sigmoid(x) underflows to 0 (x < " + per_format("log_underflow", dtype) + ")"
        )
        ctx.emit(
            "LGL011",
            call,
            f"{what} becomes log(0) = -inf once {when}; write {instead} ({qual_text}),"
            " which is exact for all x"
            + (" — identity: log(1 - sigmoid(x)) = logsigmoid(-x)" if negate else "")
            + eps_note(eps),
            fix,
        )

    def _exp_input(self, node: ast.expr) -> tuple[ast.expr, str] | None:
        if isinstance(node, ast.Call):
            op = self._ana.op_of(node)
            if op is not None and op[0] == "exp" and op[2] is not None:
                if op[1] == "method" and (node.args or node.keywords):
                    return None
                if op[1] != "method" and not simple_call(node):
                    return None
                return op[2], op[1]
        return None

    def _one_plus_exp(self, node: ast.expr) -> tuple[ast.expr, str] | None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            if is_one(node.left):
                return self._exp_input(node.right)
            if is_one(node.right):
                return self._exp_input(node.left)
        return None

    def _softplus_fix(self, call: ast.Call, fw: str, exp_fw: str) -> Fix | None:
        fw = exp_fw if fw == "method" else fw
        if fw != exp_fw and exp_fw != "method":
            return None
        qual = SOFTPLUS.get(fw)
        if qual is None:
            return None
        return Fix(
            "safe",
            f"use {pretty(qual)}",
            (call_edit(call, "softplus", qual=qual, logaddexp=fw == "numpy"),),
        )

    def _softplus(self, ctx: Context, call: ast.Call, fw: str, arg: ast.expr) -> bool:
        self._ana = ctx.analysis
        found = self._one_plus_exp(arg)
        if found is None or minus_abs(found[0]):
            return False
        self._emit_softplus(ctx, call, fw, found[1])
        return True

    def _log1p(self, ctx: Context, call: ast.Call, fw: str, arg: ast.expr) -> None:
        self._ana = ctx.analysis
        if fw == "method" and (call.args or call.keywords):
            return
        if fw != "method" and not simple_call(call):
            return
        found = self._exp_input(arg)
        if found is not None and not minus_abs(found[0]):
            self._emit_softplus(ctx, call, fw, found[1])

    def _emit_softplus(self, ctx: Context, call: ast.Call, fw: str, exp_fw: str) -> None:
        fix = self._softplus_fix(call, fw, exp_fw)
        ctx.emit(
            "LGL031",
            call,
            "hand-written softplus: exp(x) overflows to inf for x > "
            + per_format("log_max")
            + " (math.exp raises); use softplus(x) (F.softplus, jax.nn.softplus,"
            " np.logaddexp(0, x)), which is log1p(exp(-|x|)) + max(x, 0)",
            fix,
        )

    @staticmethod
    def _is_max(ana: ModuleAnalysis, node: ast.expr, scope: Scope) -> bool:
        if "max" in ast.dump(node).lower():
            return True
        if isinstance(node, ast.Name):
            found = ana.lookup(node.id, scope, node.lineno, node.col_offset)
            return found is not None and "max" in ast.dump(found[0]).lower()
        return False

    def _logsumexp(
        self, ctx: Context, call: ast.Call, fw: str, arg: ast.expr, scope: Scope
    ) -> bool:
        ana = self._ana = ctx.analysis
        if not isinstance(arg, ast.Call):
            return False
        op = ana.op_of(arg)
        if op is None or op[0] != "sum" or op[2] is None:
            return False
        summed = op[2]
        if isinstance(summed, (ast.GeneratorExp, ast.ListComp)):
            summed = summed.elt
        found = self._exp_input(summed)
        if found is None:
            return False
        exp_arg, exp_fw = found
        shift, shift_scope = exp_arg, scope
        if isinstance(exp_arg, ast.Name):
            assigned = ana.lookup(exp_arg.id, scope, exp_arg.lineno, exp_arg.col_offset)
            if assigned is not None:
                shift, shift_scope = assigned  # shifted = x - x.max(...); exp(shifted)
        if (
            isinstance(shift, ast.BinOp)
            and isinstance(shift.op, ast.Sub)
            and self._is_max(ana, shift.right, shift_scope)
        ):
            return False  # the stable form m + log(sum(exp(x - m)))
        rest = list(arg.args[1:] if op[1] != "method" else arg.args)
        kws = {kw.arg for kw in arg.keywords}
        fix = None
        sum_fw = op[1]
        kinds = {fw, sum_fw, exp_fw} - {"method"}
        target = kinds.pop() if len(kinds) == 1 else ("method" if not kinds else "")
        has_dim = bool(rest) or bool(kws & {"dim", "axis"})
        allowed = {"dim", "keepdim", "axis", "keepdims"}
        if (
            (target in LOGSUMEXP or target == "method")
            and kws <= allowed
            and len(rest) <= 2
            and (has_dim or target != "torch")
        ):
            if target == "method" and not has_dim:
                target = ""
            if target:
                qual = LOGSUMEXP.get(target, "method")
                fix = Fix(
                    "safe",
                    "use logsumexp",
                    (call_edit(call, "logsumexp", qual=qual, sum_form=op[1]),),
                )
        ctx.emit(
            "LGL032",
            call,
            "hand-written logsumexp: exp(x) overflows for x > "
            + per_format("log_max")
            + " and underflows"
            " to log(0) when all x are very negative; use logsumexp(x, dim)"
            " (torch.logsumexp, scipy.special.logsumexp, jax.nn.logsumexp), which subtracts"
            " the max first",
            fix,
        )
        return True


class HandWrittenSigmoid(Rule):
    """LGL030: ``1 / (1 + exp(-x))`` and ``exp(x) / (1 + exp(x))``."""

    codes = ("LGL030",)

    def check(self, ctx: Context) -> None:
        ana = ctx.analysis
        helper = LogOfSquashing()
        helper._ana = ana
        for binop, scope in ana.binops:
            if not isinstance(binop.op, ast.Div) or id(binop) in ctx.in_where:
                continue
            denom = helper._one_plus_exp(binop.right)
            if denom is None:
                continue
            exp_arg, fw = denom
            if clipped(ana, exp_arg, scope):
                continue  # 1/(1 + exp(-clip(z, -250, 250))): the exp cannot overflow
            if is_one(binop.left):
                form = "recip"
            else:
                num = helper._exp_input(binop.left)
                if num is None or not same(num[0], exp_arg):
                    continue
                form = "ratio"
            fix = None
            if fw == "method" or fw in SIGMOID:
                fix = Fix(
                    "safe",
                    "use " + ("x.sigmoid()" if fw == "method" else pretty(SIGMOID[fw])),
                    (
                        Edit(
                            "binop",
                            key_of(binop),
                            "sigmoid",
                            (("form", form), ("qual", SIGMOID.get(fw, "method"))),
                        ),
                    ),
                )
            hint = {
                "math": f"math.exp raises OverflowError for x < -{approx(FLOAT64.log_max)};"
                " use scipy.special.expit(x), or branch on the sign of x",
                "numpy": "np.exp overflows (RuntimeWarning, inf) for x < -"
                + per_format("log_max", dtype_of(ana, exp_arg, scope))
                + "; use scipy.special.expit(x)",
            }.get(
                fw,
                "exp overflows for large |x| (x < -"
                + per_format("log_max", dtype_of(ana, exp_arg, scope))
                + ") and exp(x)/(1 + exp(x)) gives inf/inf = nan; use the framework's sigmoid",
            )
            ctx.emit("LGL030", binop, "hand-written sigmoid: " + hint, fix)


def clipped(ana: ModuleAnalysis, node: ast.expr, scope: Scope, depth: int = 2) -> bool:
    """``node`` is (or a name holds) a clip/clamp, so exp of it is bounded."""
    node = unneg(node)
    if isinstance(node, ast.Call):
        op = ana.op_of(node)
        if op is not None and op[0] == "clamp":
            return True
        func = node.func
        return isinstance(func, ast.Attribute) and func.attr in ("clamp", "clip", "clip_by_value")
    if isinstance(node, ast.Name) and depth > 0:
        found = ana.lookup(node.id, scope, node.lineno, node.col_offset)
        return found is not None and clipped(ana, found[0], found[1], depth - 1)
    return False


def collect_where(ctx: Context) -> None:
    """Mark nodes inside ``where(...)``: a two-branch formula is the stable idiom."""
    ana = ctx.analysis
    for call, _scope in ana.calls:
        op = ana.op_of(call)
        if op is not None and op[0] == "where":
            for arg in call.args[1:]:
                for node in ast.walk(arg):
                    ctx.in_where.add(id(node))


#: the one explicit list of rules, in the order they run (wider findings first)
RULES: tuple[Rule, ...] = (
    HandWrittenCrossEntropy(),
    SigmoidThenBinaryCrossEntropy(),
    KerasSigmoidBinaryCrossEntropy(),
    TensorFlowSquashIntoCrossEntropy(),
    SoftmaxIntoLogLoss(),
    LogOfSquashing(),
    HandWrittenSigmoid(),
)

PREPARE: tuple[Callable[[Context], None], ...] = (collect_where,)
