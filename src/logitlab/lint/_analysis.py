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
_add(
    "wrap_model",
    "torch",
    "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel",
    "torch.nn.parallel.DistributedDataParallel",
    "torch.compile",
)
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
        "detach",
        "clone",
        "permute",
        "transpose",
        "expand",
        "expand_as",
        "repeat",
        "narrow",
        "ravel",
        "clamp_min",
        "clamp_max",
        "clamp_",
        "requires_grad_",
        "share_memory",
        "to_device",
    }
)

#: attributes that keep a value's kind (``p.T``, ``p.data``, ``model.module``)
PASS_ATTRS = frozenset({"T", "data", "mT", "module", "_orig_mod"})

#: methods whose returns callers use as the model's output
MODEL_METHODS = ("forward", "call", "__call__")

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
    #: the class of a model or instance value (a :class:`ClassInfo`), for its methods
    cls: object = field(default=None, compare=False)
    #: the file the origin is in, when it is not this module (cross-file summaries)
    path: str = ""


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: ast.ClassDef
    attrs: dict[str, list[tuple[ast.expr, Scope]]] = field(default_factory=dict)
    methods: dict[str, Scope] = field(default_factory=dict)


#: one binding: (line, col where it takes effect, value or None when unknown, branch path)
Entry = tuple[int, int, "ast.expr | None", tuple[int, ...]]


@dataclass(eq=False)
class Scope:
    node: ast.AST
    parent: Scope | None
    cls: ClassInfo | None = None
    #: name -> bindings in statement order; a binding takes effect where its statement
    #: ends, so ``p = p.to(device)`` reads the previous ``p``
    assigns: dict[str, list[Entry]] = field(default_factory=dict)
    returns: list[ast.expr] = field(default_factory=list)
    #: parameter names in order (positional ones first)
    params: list[str] = field(default_factory=list)


_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
#: statements whose bodies may or may not run: bindings there get a branch path
_BRANCHY = frozenset({ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.Match})
_FIELD_NO = {"body": 0, "orelse": 1, "handlers": 2, "finalbody": 3, "cases": 2}
if hasattr(ast, "TryStar"):
    _BRANCHY = _BRANCHY | {ast.TryStar}
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
        self._path: tuple[int, ...] = ()
        self._calls_by_name: dict[str, list[tuple[ast.Call, Scope]]] | None = None
        self._helpers: dict[str, tuple[str, str] | None] = {}
        self._ops: dict[int, tuple[object, tuple[str, str, ast.expr | None] | None]] = {}
        #: ids of calls of user helpers read as the operation they wrap (no fixes there)
        self.helper_calls: set[int] = set()
        #: project-wide summaries of other modules (set by the engine's project pass)
        self.project: object = None
        #: the file this module was read from ("" for a string)
        self.path = ""
        self._all_classes: list[ClassInfo] = []
        self._walk()

    def release(self) -> None:
        """Break the cycles between classes and their methods' scopes, so that reference
        counting frees the analysis (and the tree it holds) at once: a collection with a
        large tree alive costs seconds."""
        for info in self._all_classes:
            info.methods.clear()
            info.attrs.clear()
        self._all_classes.clear()
        self.forget_values()

    def forget_values(self) -> None:
        """Drop what was worked out with the current project (values, operations,
        helpers), keeping the walk: the next run may have another project."""
        self._memo.clear()
        self._active.clear()
        self._ops.clear()
        self._helpers.clear()
        self.helper_calls.clear()

    # -- collection --------------------------------------------------------------------

    def _walk(self) -> None:
        calls = self.calls
        binops = self.binops
        stack: list[tuple[ast.AST, Scope, ClassInfo | None, tuple[int, ...]]] = [
            (stmt, self.module_scope, None, ()) for stmt in reversed(self.tree.body)
        ]
        interesting_ops = (ast.Div, ast.Add, ast.Sub)
        branchy = _BRANCHY
        while stack:
            node, scope, cls, path = stack.pop()
            self._path = path
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
                        inner.assigns[arg.arg] = [(0, 0, None, ())]
                        inner.params.append(arg.arg)
                if cls is not None:
                    cls.methods[node.name] = inner
                elif scope is self.module_scope:
                    self.functions[node.name] = inner
                self._bind_name(node.name, scope, node.lineno, node.col_offset, None)
                for d in node.decorator_list:
                    stack.append((d, scope, None, path))
                for stmt in reversed(node.body):
                    stack.append((stmt, inner, None, ()))
                continue
            elif isinstance(node, ast.ClassDef):
                info = ClassInfo(node.name, node)
                self._all_classes.append(info)
                if scope is self.module_scope:
                    self.classes[node.name] = info
                self._bind_name(node.name, scope, node.lineno, node.col_offset, None)
                for stmt in reversed(node.body):
                    stack.append((stmt, scope, info, path))
                continue
            children = []
            branches = type(node) in branchy
            for name in node._fields:
                value = getattr(node, name, None)
                if type(value) is list:
                    sub = (*path, id(node) * 4 + _FIELD_NO.get(name, 0)) if branches else path
                    for item in value:
                        if isinstance(item, ast.AST) and type(item) not in _LEAVES:
                            children.append((item, scope, None, sub))
                elif isinstance(value, ast.AST) and type(value) not in _LEAVES:
                    children.append((value, scope, None, path))
            children.reverse()
            stack.extend(children)

    def _bind_name(
        self, name: str, scope: Scope, line: int, col: int, value: ast.expr | None
    ) -> None:
        scope.assigns.setdefault(name, []).append((line, col, value, self._path))

    def _bind(self, target: ast.expr, value: ast.expr, scope: Scope, stmt: ast.stmt) -> None:
        end_line = stmt.end_lineno or stmt.lineno
        end_col = stmt.end_col_offset or 0
        if isinstance(target, ast.Name):
            self._bind_name(target.id, scope, end_line, end_col, value)
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
                starred = False
                for i, t in enumerate(target.elts):
                    starred = starred or isinstance(t, ast.Starred)
                    item: ast.expr | None = None
                    if not starred and isinstance(t, (ast.Name, ast.Tuple, ast.List)):
                        # ``mu, p = f(x)``: p is element 1 of what f returns
                        item = ast.Subscript(value, ast.Constant(i), ast.Load())
                        ast.copy_location(item, value)
                    if isinstance(t, ast.Name):
                        self._bind_name(t.id, scope, end_line, end_col, item)
                    elif item is not None:
                        self._bind(t, item, scope, stmt)

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
        if node.level:
            # relative: kept as ``..pkg.name``; the project pass resolves it
            base = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name != "*":
                    local = alias.asname or alias.name
                    sep = "." if node.module else ""
                    self.aliases[local] = f"{base}{sep}{alias.name}"
                    if top:
                        self.module_aliases[local] = self.aliases[local]
            return
        if not node.module:
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
                if self.project is not None:
                    return self.project.canonical(self, target)  # type: ignore[attr-defined]
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
        take the receiver. Memoised per call (the project, once set, does not change).
        """
        key = id(call)
        memo = self._ops
        if key in memo and memo[key][0] is self.project:
            return memo[key][1]
        result = self._op_of(call)
        memo[key] = (self.project, result)
        return result

    def _op_of(self, call: ast.Call) -> tuple[str, str, ast.expr | None] | None:
        func = call.func
        qual = self.resolve(func)
        if qual is not None:
            hit = OPS.get(qual)
            if hit is None and self.project is not None:
                hit = self.project.helper_op(self, qual)  # type: ignore[attr-defined]
                if hit is not None:
                    self.helper_calls.add(id(call))
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
        # a one-line helper of this module around log/sigmoid/softmax/exp
        if isinstance(func, ast.Name) and func.id in self.functions and func.id not in self.aliases:
            helper = self.helper_op(func.id)
            if helper is not None:
                self.helper_calls.add(id(call))
                return helper[0], helper[1], call.args[0] if call.args else None
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
        found = self.reaching(name, scope, line, col)
        if not found:
            return None
        expr, where = found[0]
        return None if expr is None else (expr, where)

    def reaching(
        self, name: str, scope: Scope, line: int, col: int
    ) -> list[tuple[ast.expr | None, Scope]]:
        """The bindings of ``name`` that may reach (line, col), latest first.

        Bindings in statement order; one inside a branch (if/else arm, loop body, try)
        does not hide the ones before it, so both arms of an ``if`` reach a use after it.
        The walk back stops at the first binding outside any branch.
        """
        s: Scope | None = scope
        while s is not None:
            entries = s.assigns.get(name)
            if entries:
                out: list[tuple[ast.expr | None, Scope]] = []
                for entry in reversed(entries):
                    if s is scope and (entry[0], entry[1]) >= (line, col):
                        continue
                    out.append((entry[2], s))
                    if not entry[3] or len(out) >= 6:
                        break
                return out
            s = s.parent
        return []

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
            return self._name_value(expr, scope)
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id == "self" and scope.cls:
                for value, where in scope.cls.attrs.get(expr.attr, []):
                    v = self.value(value, where)
                    if v is not None:
                        return _via(v, "name")
                return None
            if expr.attr in PASS_ATTRS:
                v = self.value(expr.value, scope)
                return None if v is None else _via(v, "name")
            if self.project is not None:
                return self.project.attribute_value(self, expr)  # type: ignore[attr-defined]
            return None
        if isinstance(expr, ast.Subscript):
            return self._subscript_value(expr, scope)
        if isinstance(expr, ast.IfExp):
            return self.value(expr.body, scope) or self.value(expr.orelse, scope)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div):
            fw = self._softmax_ratio(expr, scope)
            return None if fw is None else Value("softmax", expr, "inline", fw)
        return None

    def _exp_of(self, node: ast.expr, scope: Scope, depth: int = 2) -> ast.expr | None:
        """The ``exp(...)`` call ``node`` is (or a name holds), else None."""
        if isinstance(node, ast.Call):
            op = self.op_of(node)
            return node if op is not None and op[0] == "exp" else None
        if isinstance(node, ast.Name) and depth > 0:
            found = self.lookup(node.id, scope, node.lineno, node.col_offset)
            if found is not None:
                return self._exp_of(found[0], found[1], depth - 1)
        return None

    def _softmax_ratio(self, div: ast.BinOp, scope: Scope) -> str | None:
        """A hand-written softmax ``exp(a) / sum(exp(b))`` (shifted by the max or not,
        InfoNCE's ``exp(pos) / exp(all).sum()``): its framework, else None."""
        num = self._exp_of(div.left, scope)
        if num is None:
            return None
        den: ast.expr | None = div.right
        if isinstance(den, ast.Name):
            found = self.lookup(den.id, scope, den.lineno, den.col_offset)
            den = None if found is None else found[0]
        if not isinstance(den, ast.Call):
            return None
        op = self.op_of(den)
        if op is None or op[0] != "sum" or op[2] is None:
            return None
        summed = op[2]
        if isinstance(summed, (ast.GeneratorExp, ast.ListComp)):
            summed = summed.elt
        if self._exp_of(summed, scope) is None:
            return None
        num_op = self.op_of(num)  # type: ignore[arg-type]
        return "method" if num_op is None else num_op[1]

    def _name_value(self, expr: ast.Name, scope: Scope) -> Value | None:
        if expr.id == "self" and scope.cls is not None:
            return Value("instance", scope.cls.node, "self", "", scope.cls)
        for found, where in self.reaching(expr.id, scope, expr.lineno, expr.col_offset):
            v = self._param_value(expr.id, where) if found is None else self.value(found, where)
            if v is not None:
                return _via(v, "name")
        if self.project is not None and expr.id in self.aliases:
            return self.project.imported_value(self, expr.id)  # type: ignore[attr-defined]
        return None

    def _param_value(self, name: str, scope: Scope) -> Value | None:
        """What a parameter receives at the calls of its function in this module."""
        fn = scope.node
        if not isinstance(fn, _FUNCS) or name not in scope.params or scope.cls is not None:
            return None
        if self.functions.get(fn.name) is not scope:
            return None
        index = scope.params.index(name)
        a = fn.args
        positional = len(a.posonlyargs) + len(a.args)
        for call, where in self.calls_named(fn.name):
            if not isinstance(call.func, ast.Name):
                continue
            arg: ast.expr | None = None
            if index < positional and index < len(call.args):
                arg = call.args[index]
                if any(isinstance(x, ast.Starred) for x in call.args[: index + 1]):
                    continue
            for kw in call.keywords:
                if kw.arg == name:
                    arg = kw.value
            if arg is None:
                continue
            v = self.value(arg, where)
            if v is not None:
                return Value(
                    v.kind,
                    v.origin,
                    "model" if v.via == "model" else "param",
                    v.framework,
                    v.cls,
                    v.path,
                )
        return None

    def calls_named(self, name: str) -> list[tuple[ast.Call, Scope]]:
        """Calls ``name(...)`` and ``x.name(...)`` in this module."""
        index = self._calls_by_name
        if index is None:
            index = self._calls_by_name = {}
            for call, where in self.calls:
                func = call.func
                key = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if key is not None:
                    index.setdefault(key, []).append((call, where))
        return index.get(name, [])

    def _subscript_value(self, expr: ast.Subscript, scope: Scope) -> Value | None:
        key = expr.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, (int, str)):
            for elts in self._elements(expr.value, scope, 3):
                item = _element(elts, key.value)
                if item is not None:
                    v = self.value(item[0], item[1])
                    if v is not None:
                        return _via(v, "name")
        v = self.value(expr.value, scope)
        if v is not None and v.kind in ("sigmoid", "softmax"):
            return Value(v.kind, v.origin, "name", v.framework, v.cls, v.path)
        return None

    def _elements(self, expr: ast.expr, scope: Scope, depth: int) -> list[tuple[ast.expr, Scope]]:
        """Container literals ``expr`` may evaluate to: a tuple/list/dict written here, one
        a name holds, or one a function of this module returns."""
        if depth <= 0:
            return []
        if isinstance(expr, (ast.Tuple, ast.List, ast.Dict)):
            return [(expr, scope)]
        if isinstance(expr, ast.Name):
            out = []
            for found, where in self.reaching(expr.id, scope, expr.lineno, expr.col_offset):
                if found is not None:
                    out.extend(self._elements(found, where, depth - 1))
            return out
        if isinstance(expr, ast.Call):
            fn = self._callee_scope(expr, scope)
            if fn is not None:
                out = []
                for ret in fn.returns:
                    out.extend(self._elements(ret, fn, depth - 1))
                return out
        return []

    def _callee_scope(self, call: ast.Call, scope: Scope) -> Scope | None:
        func = call.func
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        if isinstance(func, ast.Attribute):
            target = self.value(func.value, scope)
            if target is not None and isinstance(target.cls, ClassInfo):
                return target.cls.methods.get(func.attr)
        return None

    def activation_of(self, node: ast.expr) -> str | None:
        """``sigmoid``/``softmax`` for an activation argument (``"sigmoid"``,
        ``tf.nn.softmax``, ``keras.activations.sigmoid``), ``other`` for another known
        one (``"tanh"``, ``None``), None when it cannot be read."""
        if isinstance(node, ast.Constant):
            if node.value in ("sigmoid", "softmax"):
                return str(node.value)
            return "other" if node.value is None or isinstance(node.value, str) else None
        qual = self.resolve(node)
        if qual is None:
            return None
        hit = OPS.get(qual)
        if hit is not None and hit[0] in ("sigmoid", "softmax"):
            return hit[0]
        return "other"

    def layer_activation(self, call: ast.Call) -> tuple[str, ast.Call] | None:
        """A dense layer with an ``activation=``: ``tf.layers.dense(x, n, activation=...)``
        applied here, or ``Dense(n, activation=...)`` (applied by ``Dense(...)(x)``);
        (activation, the layer call)."""
        func = call.func
        layer = call
        if isinstance(func, ast.Call):  # Dense(1, activation="sigmoid")(h)
            layer = func
        qual = self.resolve(layer.func)
        if qual is None:
            return None
        last = qual.rsplit(".", 1)[-1]
        applied = layer is not call or last == "dense"
        if not applied or last not in ("dense", "Dense", "Activation", "conv2d", "Conv2D"):
            return None
        if not (qual.startswith(("tensorflow.", "keras.")) or "layers" in qual):
            return None
        act: ast.expr | None = None
        if last == "Activation" and layer.args:
            act = layer.args[0]
        for kw in layer.keywords:
            if kw.arg == "activation":
                act = kw.value
        if act is None:
            return "other", layer
        kind = self.activation_of(act)
        return None if kind is None else (kind, layer)

    def _call_value(self, call: ast.Call, scope: Scope) -> Value | None:
        layer = (
            self.layer_activation(call)
            if call.keywords or isinstance(call.func, ast.Call)
            else None
        )
        if layer is not None and layer[0] in ("sigmoid", "softmax"):
            return Value(layer[0], layer[1], "layer", "tensorflow")
        op = self.op_of(call)
        if op is not None:
            kind, fw, first = op
            if kind in ("sigmoid", "softmax"):
                return Value(kind, call, "inline", fw)
            if kind in MODULE_KINDS:
                return Value(kind, call, "inline", fw)
            if kind in ("clamp", "wrap_model"):
                v = self.value(first, scope)
                return None if v is None else _via(v, "name")
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
                return _via(v, "name")
            return None
        if isinstance(func, ast.Attribute):
            receiver = self.value(func.value, scope)
            if receiver is not None and func.attr in MODEL_METHODS:
                return self._apply_model(receiver, call)
            if (
                receiver is not None
                and receiver.cls is not None
                and self.has_method(receiver.cls, func.attr)
            ):
                return self.method_value(receiver.cls, func.attr, receiver)
        target = self.value(func, scope)
        if target is not None:
            return self._apply_model(target, call)
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
            if (
                info is not None
                and self.lookup(func.id, scope, call.lineno, call.col_offset) is None
            ):
                return self.instance_value(info)
            fn = self.functions.get(func.id)
            if fn is not None:
                for ret in fn.returns:
                    v = self.value(ret, fn)
                    if v is not None and v.kind in ("sigmoid", "softmax"):
                        return Value(v.kind, v.origin, "function", v.framework, None, v.path)
        return None

    def _apply_model(self, target: Value, call: ast.Call) -> Value | None:
        """What calling a module or model value returns."""
        if target.kind == "sigmoid_module":
            return Value("sigmoid", call, "inline", "torch")
        if target.kind == "softmax_module":
            return Value("softmax", call, "inline", "torch")
        if target.kind in ("sigmoid_model", "softmax_model"):
            return Value(target.kind[:-6], target.origin, "model", "torch", None, target.path)
        if target.kind == "class" and target.cls is not None:
            return self.instance_value(target.cls)
        if target.kind == "function" and self.project is not None:
            return self.project.function_value(target.cls)  # type: ignore[attr-defined]
        if target.kind == "instance" and target.cls is not None:
            out = self.forward_of(target.cls)
            if out is not None:
                return Value(out.kind, out.origin, "model", "torch", None, out.path)
        return None

    def instance_value(self, info: object) -> Value:
        """A new instance of a class: a model ending in a squash, or a plain instance."""
        out = self.forward_of(info)
        if out is not None:
            return Value(out.kind + "_model", out.origin, "model", "torch", info, out.path)
        node = info.node if isinstance(info, ClassInfo) else ast.Pass()
        return Value("instance", node, "model", "", info)

    def summary(self) -> dict[str, object]:
        """What other modules may use from this one (JSON-able): classes whose forward or
        methods return probabilities, functions that return them, one-line helpers, and
        the module-level imports (for re-exports)."""
        classes: dict[str, object] = {}
        for name, info in self.classes.items():
            fwd = self.forward_value(info)
            methods = {}
            for m in info.methods:
                v = self.method_value(info, m, Value("instance", info.node, "self"))
                if v is not None:
                    methods[m] = [v.kind, getattr(v.origin, "lineno", 1)]
            if fwd is not None or methods:
                classes[name] = {
                    "forward": None
                    if fwd is None
                    else [fwd.kind, getattr(fwd.origin, "lineno", 1)],
                    "methods": methods,
                }
        functions: dict[str, object] = {}
        for name, fn in self.functions.items():
            helper = self.helper_op(name)
            if helper is not None:
                functions[name] = {"helper": list(helper)}
                continue
            for ret in fn.returns:
                v = self.value(ret, fn)
                if v is not None and v.kind in ("sigmoid", "softmax"):
                    functions[name] = {"returns": [v.kind, getattr(v.origin, "lineno", 1)]}
                    break
        return {"classes": classes, "functions": functions, "aliases": dict(self.module_aliases)}

    def forward_of(self, info: object) -> Value | None:
        if isinstance(info, ClassInfo):
            return self.forward_value(info)
        if self.project is not None:
            return self.project.class_forward(info)  # type: ignore[attr-defined]
        return None

    def has_method(self, info: object, name: str) -> bool:
        if isinstance(info, ClassInfo):
            return name in info.methods
        return self.project is not None and self.project.has_method(info, name)  # type: ignore[attr-defined]

    def method_value(self, info: object, name: str, receiver: Value) -> Value | None:
        """What ``obj.name(...)`` returns for an instance of ``info`` (its returns)."""
        if not isinstance(info, ClassInfo):
            if self.project is not None:
                return self.project.class_method(info, name)  # type: ignore[attr-defined]
            return None
        method = info.methods.get(name)
        if method is None:
            return None
        for ret in method.returns:
            v = self.value(ret, method)
            if v is not None and v.kind in ("sigmoid", "softmax"):
                return Value(v.kind, v.origin, "function", v.framework, None, v.path)
        return None

    def is_helper_scope(self, scope: Scope) -> bool:
        """``scope`` is a one-line helper whose calls are read as the op it wraps."""
        node = scope.node
        return isinstance(node, _FUNCS) and self.helper_op(node.name) is not None

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

    # -- helpers -----------------------------------------------------------------------

    def helper_op(self, name: str) -> tuple[str, str] | None:
        """``(op, framework)`` when the module-level function ``name`` only applies one
        operation to its first parameter: ``def log(x): return torch.log(x + 1e-8)``,
        ``def squash(z): return torch.sigmoid(z)``."""
        if name in self._helpers:
            return self._helpers[name]
        self._helpers[name] = None
        fn = self.functions.get(name)
        result = None
        if fn is not None and fn.params and len(fn.returns) == 1:
            result = self.wrapped_op(fn.returns[0], fn.params[0])
        self._helpers[name] = result
        return result

    def wrapped_op(self, ret: ast.expr, param: str) -> tuple[str, str] | None:
        if not isinstance(ret, ast.Call):
            return None
        op = self.op_of(ret)
        if op is None or op[0] not in HELPER_OPS or op[2] is None:
            return None
        inner = op[2]
        for _ in range(3):  # x + eps, clamp(x, eps, 1 - eps)
            if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Add):
                inner = (
                    inner.left
                    if isinstance(inner.right, (ast.Constant, ast.Name, ast.Attribute))
                    else inner.right
                )
            elif isinstance(inner, ast.Call):
                sub = self.op_of(inner)
                if sub is None or sub[0] != "clamp" or sub[2] is None:
                    break
                inner = sub[2]
        if isinstance(inner, ast.Name) and inner.id == param:
            return op[0], op[1]
        return None


#: operations a one-line user helper may wrap and still count as that operation
HELPER_OPS = frozenset({"log", "sigmoid", "softmax", "exp"})


def _via(v: Value, via: str) -> Value:
    """``v`` seen through a name or a pass-through: inline becomes ``via``."""
    if v.via != "inline":
        return v
    return Value(v.kind, v.origin, via, v.framework, v.cls, v.path)


def _element(container: tuple[ast.expr, Scope], key: int | str) -> tuple[ast.expr, Scope] | None:
    node, scope = container
    if isinstance(node, (ast.Tuple, ast.List)) and isinstance(key, int):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            return None
        if -len(node.elts) <= key < len(node.elts):
            return node.elts[key], scope
        return None
    if isinstance(node, ast.Dict) and isinstance(key, str):
        for k, v in zip(node.keys, node.values, strict=True):
            if isinstance(k, ast.Constant) and k.value == key:
                return v, scope
    return None
