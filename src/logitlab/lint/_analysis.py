"""What one module means to the rules: import aliases, scopes, and where values come from.

Everything here uses only :mod:`ast`. One iterative walk collects imports, assignments,
returns, classes and the candidate nodes; values are then resolved lazily and memoised,
so a file without candidates costs one walk.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

# --- what a qualified name means ---------------------------------------------------------

#: qualified name -> (operation, framework)
OPS: dict[str, tuple[str, str]] = {}


def _add(op: str, framework: str, *names: str) -> None:
    for name in names:
        OPS[name] = (op, framework)


_add("exp", "torch", "torch.exp", "torch.special.exp")
_add("exp", "numpy", "numpy.exp")
_add("exp", "jax", "jax.numpy.exp")
_add("exp", "math", "math.exp")
_add("exp", "tensorflow", "tensorflow.exp", "tensorflow.math.exp")
_add("log", "torch", "torch.log")
_add("log", "numpy", "numpy.log")
_add("log", "jax", "jax.numpy.log")
_add("log", "math", "math.log")
_add("log", "tensorflow", "tensorflow.math.log", "tensorflow.log")
_add("log1p", "torch", "torch.log1p", "torch.special.log1p")
_add("log1p", "numpy", "numpy.log1p")
_add("log1p", "jax", "jax.numpy.log1p")
_add("log1p", "math", "math.log1p")
_add("log1p", "tensorflow", "tensorflow.math.log1p")
_add("sum", "torch", "torch.sum")
_add("sum", "numpy", "numpy.sum")
_add("sum", "jax", "jax.numpy.sum")
_add("sum", "math", "builtins.sum", "math.fsum")
_add("sum", "tensorflow", "tensorflow.reduce_sum", "tensorflow.math.reduce_sum")
_add("mean", "torch", "torch.mean")
_add("mean", "numpy", "numpy.mean")
_add("mean", "jax", "jax.numpy.mean")
_add("mean", "tensorflow", "tensorflow.reduce_mean", "tensorflow.math.reduce_mean")
_add("sigmoid", "torch", "torch.sigmoid", "torch.nn.functional.sigmoid", "torch.special.expit")
_add("sigmoid", "scipy", "scipy.special.expit")
_add("sigmoid", "jax", "jax.nn.sigmoid", "jax.scipy.special.expit")
_add(
    "sigmoid",
    "tensorflow",
    "tensorflow.sigmoid",
    "tensorflow.math.sigmoid",
    "tensorflow.nn.sigmoid",
)
_add("sigmoid", "keras", "keras.activations.sigmoid", "keras.ops.sigmoid")
_add("softmax", "torch", "torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax")
_add("softmax", "scipy", "scipy.special.softmax")
_add("softmax", "jax", "jax.nn.softmax")
_add("softmax", "tensorflow", "tensorflow.nn.softmax", "tensorflow.math.softmax")
_add("softmax", "keras", "keras.activations.softmax", "keras.ops.softmax")
_add("clamp", "torch", "torch.clamp", "torch.clip")
_add("clamp", "numpy", "numpy.clip")
_add("clamp", "jax", "jax.numpy.clip")
_add("clamp", "tensorflow", "tensorflow.clip_by_value")
_add("where", "torch", "torch.where")
_add("where", "numpy", "numpy.where")
_add("where", "jax", "jax.numpy.where")
_add("where", "tensorflow", "tensorflow.where")
_add("bce_fn", "torch", "torch.nn.functional.binary_cross_entropy")
_add("nll_fn", "torch", "torch.nn.functional.nll_loss")
_add("ce_fn", "torch", "torch.nn.functional.cross_entropy")
_add("sigmoid_module", "torch", "torch.nn.Sigmoid", "torch.nn.modules.activation.Sigmoid")
_add("softmax_module", "torch", "torch.nn.Softmax", "torch.nn.modules.activation.Softmax")
_add("bce_module", "torch", "torch.nn.BCELoss", "torch.nn.modules.loss.BCELoss")
_add("nll_module", "torch", "torch.nn.NLLLoss", "torch.nn.modules.loss.NLLLoss")
_add("ce_module", "torch", "torch.nn.CrossEntropyLoss", "torch.nn.modules.loss.CrossEntropyLoss")
_add("sequential", "torch", "torch.nn.Sequential")
_add("keras_bce", "keras", "keras.losses.BinaryCrossentropy")
_add("keras_bce_fn", "keras", "keras.losses.binary_crossentropy")
_add("finfo", "numpy", "numpy.finfo")
_add("finfo", "torch", "torch.finfo")

#: tensor methods: name -> operation (the receiver is the input)
METHODS: dict[str, str] = {
    "exp": "exp",
    "log": "log",
    "log1p": "log1p",
    "sum": "sum",
    "mean": "mean",
    "sigmoid": "sigmoid",
    "softmax": "softmax",
    "clamp": "clamp",
    "clip": "clamp",
}

#: methods that keep a probability a probability (shape, dtype, device)
PASS_THROUGH = frozenset(
    {
        "squeeze",
        "unsqueeze",
        "view",
        "view_as",
        "reshape",
        "reshape_as",
        "flatten",
        "float",
        "double",
        "half",
        "to",
        "cuda",
        "cpu",
        "contiguous",
        "train",
        "eval",
        "type",
        "gather",
        "index_select",
        "take_along_dim",
        "masked_select",
    }
)

#: constructors of modules whose instances we track
MODULE_KINDS = frozenset(
    {"sigmoid_module", "softmax_module", "bce_module", "nll_module", "ce_module", "keras_bce"}
)


def normalise(qualname: str) -> str:
    """Map spellings of the same object onto one (``tf.keras.x`` is ``keras.x``)."""
    if qualname.startswith("tensorflow.keras."):
        return "keras." + qualname[len("tensorflow.keras.") :]
    if qualname.startswith("tensorflow.python.keras."):
        return "keras." + qualname[len("tensorflow.python.keras.") :]
    return qualname


# --- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """What an expression evaluates to, as far as the rules care.

    ``kind`` is ``sigmoid``/``softmax`` (a probability tensor), one of
    :data:`MODULE_KINDS` (a module instance), ``sigmoid_model``/``softmax_model`` (a
    model whose output is a probability). ``origin`` is the node that applies the
    sigmoid/softmax (or constructs the module). ``via`` is ``inline`` when the expression
    itself applies it, ``name`` when it flows through an assignment, ``model`` when it
    comes out of a model defined in this file.
    """

    kind: str
    origin: ast.AST
    via: str
    framework: str = ""


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: ast.ClassDef
    attrs: dict[str, list[tuple[ast.expr, Scope]]] = field(default_factory=dict)
    methods: dict[str, Scope] = field(default_factory=dict)


@dataclass(eq=False)
class Scope:
    node: ast.AST
    parent: Scope | None
    cls: ClassInfo | None = None
    # name -> [(line, col, value or None for a parameter)]
    assigns: dict[str, list[tuple[int, int, ast.expr | None]]] = field(default_factory=dict)
    returns: list[ast.expr] = field(default_factory=list)


_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
#: nodes the walk never needs to enter or record: names, constants, contexts, operators
_LEAVES = frozenset(
    {ast.Name, ast.Constant, ast.Load, ast.Store, ast.Del, ast.Pass, ast.Break, ast.Continue}
    | {
        c
        for c in vars(ast).values()
        if isinstance(c, type) and issubclass(c, (ast.operator, ast.unaryop, ast.cmpop, ast.boolop))
    }
)


class ModuleAnalysis:
    """Index of one parsed module; resolve names and evaluate values on demand."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.aliases: dict[str, str] = {}
        self.module_aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        self.classes: dict[str, ClassInfo] = {}
        self.functions: dict[str, Scope] = {}
        self.calls: list[tuple[ast.Call, Scope]] = []
        self.binops: list[tuple[ast.BinOp, Scope]] = []
        self.module_scope = Scope(tree, None)
        self._memo: dict[tuple[int, int], Value | None] = {}
        self._active: set[int] = set()
        self._walk()

    # -- collection --------------------------------------------------------------------

    def _walk(self) -> None:
        calls = self.calls
        binops = self.binops
        stack: list[tuple[ast.AST, Scope, ClassInfo | None]] = [
            (stmt, self.module_scope, None) for stmt in reversed(self.tree.body)
        ]
        interesting_ops = (ast.Div, ast.Add, ast.Sub)
        while stack:
            node, scope, cls = stack.pop()
            if isinstance(node, ast.Call):
                calls.append((node, scope))
            elif isinstance(node, ast.BinOp):
                if isinstance(node.op, interesting_ops):
                    binops.append((node, scope))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind(target, node.value, scope, node)
            elif isinstance(node, ast.AnnAssign):
                if node.value is not None:
                    self._bind(node.target, node.value, scope, node)
            elif isinstance(node, ast.Return):
                if node.value is not None:
                    scope.returns.append(node.value)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self._import(node, scope)
                continue
            elif isinstance(node, _FUNCS):
                inner = Scope(node, scope, cls)
                a = node.args
                for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg):
                    if arg is not None:
                        inner.assigns[arg.arg] = [(0, 0, None)]
                if cls is not None:
                    cls.methods[node.name] = inner
                elif scope is self.module_scope:
                    self.functions[node.name] = inner
                self._bind_name(node.name, scope, node.lineno, node.col_offset, None)
                for d in node.decorator_list:
                    stack.append((d, scope, None))
                for stmt in reversed(node.body):
                    stack.append((stmt, inner, None))
                continue
            elif isinstance(node, ast.ClassDef):
                info = ClassInfo(node.name, node)
                if scope is self.module_scope:
                    self.classes[node.name] = info
                self._bind_name(node.name, scope, node.lineno, node.col_offset, None)
                for stmt in reversed(node.body):
                    stack.append((stmt, scope, info))
                continue
            children = []
            for name in node._fields:
                value = getattr(node, name, None)
                if type(value) is list:
                    for item in value:
                        if isinstance(item, ast.AST) and type(item) not in _LEAVES:
                            children.append((item, scope, None))
                elif isinstance(value, ast.AST) and type(value) not in _LEAVES:
                    children.append((value, scope, None))
            children.reverse()
            stack.extend(children)

    def _bind_name(
        self, name: str, scope: Scope, line: int, col: int, value: ast.expr | None
    ) -> None:
        scope.assigns.setdefault(name, []).append((line, col, value))

    def _bind(self, target: ast.expr, value: ast.expr, scope: Scope, stmt: ast.stmt) -> None:
        if isinstance(target, ast.Name):
            self._bind_name(target.id, scope, stmt.lineno, stmt.col_offset, value)
        elif isinstance(target, ast.Attribute):
            if (
                isinstance(target.value, ast.Name)
                and target.value.id == "self"
                and scope.cls is not None
            ):
                scope.cls.attrs.setdefault(target.attr, []).append((value, scope))
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                for t, v in zip(target.elts, value.elts, strict=True):
                    self._bind(t, v, scope, stmt)
            else:
                for t in target.elts:
                    if isinstance(t, ast.Name):
                        self._bind_name(t.id, scope, stmt.lineno, stmt.col_offset, None)

    def _import(self, node: ast.Import | ast.ImportFrom, scope: Scope) -> None:
        top = scope is self.module_scope
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    local, target = alias.asname, alias.name
                else:
                    local = target = alias.name.split(".", 1)[0]
                self.aliases[local] = target
                if top:
                    self.module_aliases[local] = target
            return
        if node.level or not node.module:
            return
        for alias in node.names:
            if alias.name == "*":
                self.star_modules.append(node.module)
                continue
            local = alias.asname or alias.name
            self.aliases[local] = f"{node.module}.{alias.name}"
            if top:
                self.module_aliases[local] = f"{node.module}.{alias.name}"

    @property
    def frameworks(self) -> frozenset[str]:
        """Top-level frameworks this module imports (``jax`` for ``jax.numpy as np``)."""
        return frozenset(normalise(t).split(".", 1)[0] for t in self.aliases.values())

    # -- names -------------------------------------------------------------------------

    def resolve(self, node: ast.expr) -> str | None:
        """Qualified name of a dotted expression rooted at an import, else None."""
        qual = self._resolve(node)
        return None if qual is None else normalise(qual)

    def _resolve(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            return None if base is None else f"{base}.{node.attr}"
        if isinstance(node, ast.Name):
            target = self.aliases.get(node.id)
            if target is not None:
                return target
            if node.id == "sum":
                return "builtins.sum"
            for module in self.star_modules:
                if f"{module}.{node.id}" in OPS:
                    return f"{module}.{node.id}"
        return None

    def op_of(self, call: ast.Call) -> tuple[str, str, ast.expr | None] | None:
        """The operation a call performs: (op, framework, input expression).

        Functions take their input as the first argument; tensor methods (``x.log()``)
        take the receiver.
        """
        func = call.func
        qual = self.resolve(func)
        if qual is not None:
            hit = OPS.get(qual)
            if hit is None:
                return None
            op, fw = hit
            first: ast.expr | None = call.args[0] if call.args else None
            if first is None:
                for kw in call.keywords:
                    if kw.arg in ("input", "x", "a", "logits", "features", "t"):
                        first = kw.value
                        break
            return op, fw, first
        if isinstance(func, ast.Attribute):
            method = METHODS.get(func.attr)
            if method is None:
                return None
            receiver = func.value
            if isinstance(receiver, ast.Name) and receiver.id == "self":
                return None  # self.sigmoid(x) is a module attribute, evaluated elsewhere
            if method == "sigmoid" and call.args:
                return None
            return method, "method", receiver
        # a function of that name defined in this file (or a missed import)
        if (
            isinstance(func, ast.Name)
            and func.id in ("sigmoid", "expit", "softmax")
            and (func.id in self.functions or func.id not in self.aliases)
        ):
            name = "softmax" if func.id == "softmax" else "sigmoid"
            return name, "local", call.args[0] if call.args else None
        return None

    def lookup(self, name: str, scope: Scope, line: int, col: int) -> tuple[ast.expr, Scope] | None:
        """The value last assigned to ``name`` before (line, col), searching outwards."""
        s: Scope | None = scope
        while s is not None:
            entries = s.assigns.get(name)
            if entries:
                if s is scope:
                    best = None
                    for entry in entries:
                        if (entry[0], entry[1]) < (line, col):
                            best = entry
                    if best is None:
                        return None
                else:
                    best = entries[-1]
                return None if best[2] is None else (best[2], s)
            s = s.parent
        return None

    # -- values ------------------------------------------------------------------------

    def value(self, expr: ast.expr | None, scope: Scope) -> Value | None:
        if expr is None:
            return None
        key = (id(expr), id(scope))
        if key in self._memo:
            return self._memo[key]
        if id(expr) in self._active or len(self._active) > 40:
            return None
        self._active.add(id(expr))
        try:
            result = self._value(expr, scope)
        finally:
            self._active.discard(id(expr))
        self._memo[key] = result
        return result

    def _value(self, expr: ast.expr, scope: Scope) -> Value | None:
        if isinstance(expr, ast.Call):
            return self._call_value(expr, scope)
        if isinstance(expr, ast.Name):
            found = self.lookup(expr.id, scope, expr.lineno, expr.col_offset)
            if found is None:
                return None
            v = self.value(found[0], found[1])
            if v is not None and v.via == "inline":
                return Value(v.kind, v.origin, "name", v.framework)
            return v
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id == "self" and scope.cls:
                for value, where in scope.cls.attrs.get(expr.attr, []):
                    v = self.value(value, where)
                    if v is not None:
                        return Value(v.kind, v.origin, "name" if v.via == "inline" else v.via)
            return None
        if isinstance(expr, ast.Subscript):
            v = self.value(expr.value, scope)
            if v is not None and v.kind in ("sigmoid", "softmax"):
                return Value(v.kind, v.origin, "name", v.framework)
            return None
        if isinstance(expr, ast.IfExp):
            return self.value(expr.body, scope) or self.value(expr.orelse, scope)
        return None

    def _call_value(self, call: ast.Call, scope: Scope) -> Value | None:
        op = self.op_of(call)
        if op is not None:
            kind, fw, _ = op
            if kind in ("sigmoid", "softmax"):
                return Value(kind, call, "inline", fw)
            if kind in MODULE_KINDS:
                return Value(kind, call, "inline", fw)
            if kind == "sequential":
                positional = [a for a in call.args if not isinstance(a, ast.Starred)]
                if positional and len(positional) == len(call.args):
                    last = self.value(positional[-1], scope)
                    if last is not None:
                        if last.kind == "sigmoid_module" or last.kind == "sigmoid_model":
                            return Value("sigmoid_model", last.origin, "model", "torch")
                        if last.kind == "softmax_module" or last.kind == "softmax_model":
                            return Value("softmax_model", last.origin, "model", "torch")
                return None
            return None
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in PASS_THROUGH:
            v = self.value(func.value, scope)
            if v is not None:
                return Value(v.kind, v.origin, "name" if v.via == "inline" else v.via, v.framework)
            return None
        if isinstance(func, ast.Attribute) and func.attr == "forward":
            target = self.value(func.value, scope)
        else:
            target = self.value(func, scope)
        if target is not None:
            if target.kind == "sigmoid_module":
                return Value("sigmoid", call, "inline", "torch")
            if target.kind == "softmax_module":
                return Value("softmax", call, "inline", "torch")
            if target.kind == "sigmoid_model":
                return Value("sigmoid", target.origin, "model", "torch")
            if target.kind == "softmax_model":
                return Value("softmax", target.origin, "model", "torch")
            return None
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "self"
            and func.attr in ("sigmoid", "softmax")
            and call.args
        ):
            return Value(func.attr, call, "inline", "torch")
        if isinstance(func, ast.Name):
            info = self.classes.get(func.id)
            if info is not None:
                out = self.forward_value(info)
                if out is not None:
                    return Value(out.kind + "_model", out.origin, "model", "torch")
                return None
            fn = self.functions.get(func.id)
            if fn is not None:
                for ret in fn.returns:
                    v = self.value(ret, fn)
                    if v is not None and v.kind in ("sigmoid", "softmax"):
                        return Value(v.kind, v.origin, "function", v.framework)
        return None

    def forward_value(self, info: ClassInfo) -> Value | None:
        """What the ``forward`` (or ``call``) of a model class defined here returns."""
        method = info.methods.get("forward") or info.methods.get("call")
        if method is None:
            return None
        for ret in method.returns:
            v = self.value(ret, method)
            if v is not None and v.kind in ("sigmoid", "softmax"):
                return v
        return None
