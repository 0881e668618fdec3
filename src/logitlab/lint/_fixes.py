"""LibCST codemods that apply the fixes the rules describe, keeping formatting and comments.

Rules find things with :mod:`ast` and describe each fix as edits keyed by an ``ast``
position; here a LibCST transformer finds the node at that position and rewrites it.
After each round the file is linted again and the loop repeats until nothing fixable is
left, so nested findings are fixed inside out and a second run changes nothing. A round
whose output does not parse is dropped. LibCST is imported only by this module, which
the CLI imports only for ``--fix`` and ``--diff``.
"""

from __future__ import annotations

import ast
import difflib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import MetadataWrapper, PositionProvider

from logitlab.lint._engine import Options, lint_keeping_tree
from logitlab.lint._finding import Edit, Finding, Key

MAX_ROUNDS = 8

# preferred import for a top-level package when the file has none
_IMPORT_AS = {"tensorflow": "tf", "numpy": "np"}


@dataclass
class FixResult:
    source: str
    fixed: list[Finding]
    remaining: list[Finding]

    @property
    def changed(self) -> bool:
        return bool(self.fixed)


def _module_aliases(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    aliases: dict[str, str] = {}
    from_modules: set[str] = set()
    for stmt in tree.body:
        nodes: list[ast.stmt] = [stmt]
        if isinstance(stmt, ast.Try):
            nodes = list(stmt.body)
        for node in nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        top = a.name.split(".", 1)[0]
                        aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                from_modules.add(node.module)
                for a in node.names:
                    if a.name != "*":
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases, from_modules


class _Speller:
    """Write a qualified name the way this file can refer to it, adding an import if needed."""

    def __init__(self, tree: ast.Module, context: CodemodContext) -> None:
        self.aliases, self.from_modules = _module_aliases(tree)
        self.context = context

    def __call__(self, qual: str) -> cst.BaseExpression:
        best: tuple[str, str] | None = None
        for local, target in self.aliases.items():
            if (qual == target or qual.startswith(target + ".")) and (
                best is None or len(target) > len(best[1])
            ):
                best = (local, target)
        if best is not None:
            return _dotted(best[0] + qual[len(best[1]) :])
        module, _, name = qual.rpartition(".")
        if module in self.from_modules or module == "scipy.special":
            AddImportsVisitor.add_needed_import(self.context, module, name)
            return cst.Name(name)
        top, _, rest = qual.partition(".")
        asname = _IMPORT_AS.get(top)
        AddImportsVisitor.add_needed_import(self.context, top, asname=asname)
        return _dotted(f"{asname or top}.{rest}")


def _dotted(text: str) -> cst.BaseExpression:
    """``a.b.c`` as a LibCST expression, built without the parser."""
    parts = text.split(".")
    node: cst.BaseExpression = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(node, cst.Name(part))
    return node


_ATOMS = (
    cst.Name,
    cst.Attribute,
    cst.Call,
    cst.Subscript,
    cst.Integer,
    cst.Float,
    cst.SimpleString,
)


def _paren(node: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(node, _ATOMS) or node.lpar:
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _negate(node: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = node.expression
        if isinstance(inner, (cst.Tuple, cst.GeneratorExp)):
            return inner
        return inner.with_changes(lpar=[], rpar=[])  # used as a call argument
    return cst.UnaryOperation(cst.Minus(), _paren(node))


def _first_arg(call: cst.Call) -> cst.BaseExpression:
    return call.args[0].value


def _bare(node: cst.BaseExpression) -> cst.BaseExpression:
    """``node`` without redundant parentheses, for use as a call argument."""
    if node.lpar and not isinstance(node, (cst.Tuple, cst.GeneratorExp, cst.Yield)):
        return node.with_changes(lpar=[], rpar=[])
    return node


def _unwrap(node: cst.BaseExpression, form: object) -> cst.BaseExpression:
    """The input of a sigmoid/softmax application (``f(x)`` -> x, ``x.f()`` -> x)."""
    if not isinstance(node, cst.Call):
        raise _Mismatch
    if form == "method":
        if not isinstance(node.func, cst.Attribute):
            raise _Mismatch
        return node.func.value
    if not node.args:
        raise _Mismatch
    return _first_arg(node)


def _log_input(call: cst.Call) -> cst.BaseExpression:
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value in ("log", "log1p") and not call.args:
        return func.value
    if len(call.args) != 1:
        raise _Mismatch
    return _first_arg(call)


def _exp_input(node: cst.BaseExpression) -> cst.BaseExpression:
    if not isinstance(node, cst.Call):
        raise _Mismatch
    func = node.func
    if isinstance(func, cst.Attribute) and func.attr.value == "exp" and not node.args:
        return func.value
    if len(node.args) != 1:
        raise _Mismatch
    return _first_arg(node)


def _exp_side(node: cst.BaseExpression) -> cst.BaseExpression:
    """``1 + exp(x)`` or ``exp(x) + 1`` -> the exp call."""
    if not isinstance(node, cst.BinaryOperation) or not isinstance(node.operator, cst.Add):
        raise _Mismatch
    return node.right if isinstance(node.right, cst.Call) else node.left


class _Mismatch(Exception):
    """The node no longer has the shape the fix expects (an inner fix changed it)."""


Action = Callable[[cst.CSTNode, Edit, _Speller], cst.BaseExpression]


def _rename(
    func: cst.BaseExpression, new: str, qual: object, spell: _Speller
) -> cst.BaseExpression:
    if isinstance(func, cst.Attribute):
        return func.with_changes(attr=cst.Name(new))
    if isinstance(func, cst.Name) and isinstance(qual, str):
        return spell(qual)
    raise _Mismatch


def _with_arg0(call: cst.Call, value: cst.BaseExpression) -> cst.Call:
    args = list(call.args)
    args[0] = args[0].with_changes(value=value)
    return call.with_changes(args=args)


def _a_bce_logits(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    call = _with_arg0(node, _bare(_unwrap(_first_arg(node), edit.param("form"))))
    return call.with_changes(
        func=_rename(node.func, "binary_cross_entropy_with_logits", edit.param("qual"), spell)
    )


def _a_rename_call(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    return node.with_changes(
        func=_rename(node.func, str(edit.param("new")), edit.param("qual"), spell)
    )


def _a_unwrap_arg0(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    if not node.args:
        raise _Mismatch
    return _with_arg0(node, _bare(_unwrap(_first_arg(node), edit.param("form"))))


def _a_rename_arg0(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    inner = _first_arg(node) if node.args else None
    if not isinstance(inner, cst.Call):
        raise _Mismatch
    new = inner.with_changes(
        func=_rename(inner.func, str(edit.param("new")), edit.param("qual"), spell)
    )
    return _with_arg0(node, new)


def _a_log_softmax(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    inner = _log_input(node)
    if not isinstance(inner, cst.Call):
        raise _Mismatch
    func = _rename(inner.func, "log_softmax", edit.param("qual"), spell)
    return inner.with_changes(func=func, lpar=node.lpar, rpar=node.rpar)


def _a_logsigmoid(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    arg = _log_input(node)
    if edit.param("negate"):
        if not isinstance(arg, cst.BinaryOperation):
            raise _Mismatch
        arg = arg.right
    x = _unwrap(arg, edit.param("form"))
    if edit.param("negate"):
        x = _negate(x)
    return cst.Call(
        spell(str(edit.param("qual"))), [cst.Arg(_bare(x))], lpar=node.lpar, rpar=node.rpar
    )


def _a_softplus(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    arg = _log_input(node)
    exp_call = arg if isinstance(arg, cst.Call) else _exp_side(arg)
    x = _exp_input(exp_call)
    x = _bare(x)
    args = [cst.Arg(x)]
    if edit.param("logaddexp"):
        args = [
            cst.Arg(cst.Integer("0"), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            cst.Arg(x),
        ]
    return cst.Call(spell(str(edit.param("qual"))), args, lpar=node.lpar, rpar=node.rpar)


def _a_logsumexp(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    summed = _log_input(node)
    if not isinstance(summed, cst.Call):
        raise _Mismatch
    if edit.param("sum_form") == "method":
        if not isinstance(summed.func, cst.Attribute):
            raise _Mismatch
        exp_call, rest = summed.func.value, list(summed.args)
    else:
        exp_call, rest = _first_arg(summed), list(summed.args[1:])
    x = _exp_input(exp_call)
    x_arg = cst.Arg(
        _bare(x),
        comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        if rest
        else cst.MaybeSentinel.DEFAULT,
    )
    if rest:
        rest[-1] = rest[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    qual = str(edit.param("qual"))
    if qual == "method":
        return cst.Call(
            cst.Attribute(_paren(x), cst.Name("logsumexp")), rest, lpar=node.lpar, rpar=node.rpar
        )
    return cst.Call(spell(qual), [x_arg, *rest], lpar=node.lpar, rpar=node.rpar)


def _a_drop_last_arg(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    if len(node.args) < 2:
        raise _Mismatch
    args = list(node.args[:-1])
    args[-1] = args[-1].with_changes(comma=node.args[-1].comma)
    return node.with_changes(args=args)


def _a_unwrap_self(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    assert isinstance(node, cst.Call)
    return _unwrap(node, edit.param("form"))


def _a_sigmoid(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    if not isinstance(node, cst.BinaryOperation):
        raise _Mismatch
    exp_call = _exp_side(node.right)
    x = _exp_input(exp_call)
    if edit.param("form") == "recip":
        x = _negate(x)
    qual = str(edit.param("qual"))
    if qual == "method":
        new: cst.BaseExpression = cst.Call(cst.Attribute(_paren(x), cst.Name("sigmoid")))
    else:
        new = cst.Call(spell(qual), [cst.Arg(_bare(x))])
    return new.with_changes(lpar=node.lpar, rpar=node.rpar)


def _a_set_kwarg(node: cst.CSTNode, edit: Edit, spell: _Speller) -> cst.BaseExpression:
    """``name=value`` in the call: the keyword's value replaced, or the keyword added."""
    assert isinstance(node, cst.Call)
    name, value = str(edit.param("name")), str(edit.param("value"))
    args = list(node.args)
    for i, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == name:
            args[i] = arg.with_changes(value=cst.parse_expression(value))
            return node.with_changes(args=args)
    if any(a.star for a in args):
        raise _Mismatch
    equal = cst.AssignEqual(
        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
    )
    added = cst.Arg(cst.parse_expression(value), keyword=cst.Name(name), equal=equal)
    if args and isinstance(args[-1].comma, cst.Comma):  # a trailing comma: keep the layout
        between = args[-2].comma if len(args) > 1 else None
        if not isinstance(between, cst.Comma):
            between = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        added = added.with_changes(comma=args[-1].comma)
        args[-1] = args[-1].with_changes(comma=between)
    return node.with_changes(args=[*args, added])


ACTIONS: dict[str, Action] = {
    "set_kwarg": _a_set_kwarg,
    "bce_logits": _a_bce_logits,
    "rename_call": _a_rename_call,
    "unwrap_arg0": _a_unwrap_arg0,
    "rename_arg0": _a_rename_arg0,
    "log_softmax": _a_log_softmax,
    "logsigmoid": _a_logsigmoid,
    "softplus": _a_softplus,
    "logsumexp": _a_logsumexp,
    "drop_last_arg": _a_drop_last_arg,
    "unwrap_self": _a_unwrap_self,
    "sigmoid": _a_sigmoid,
}


class _Transformer(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, edits: dict[tuple[str, Key], Edit], spell: _Speller) -> None:
        super().__init__()
        self.edits = edits
        self.spell = spell
        self.applied: set[tuple[str, Key]] = set()

    def _apply(self, target: str, key: Key, updated: cst.BaseExpression) -> cst.BaseExpression:
        edit = self.edits.get((target, key))
        if edit is None:
            return updated
        try:
            new = ACTIONS[edit.action](updated, edit, self.spell)
        except _Mismatch:
            return updated
        self.applied.add((target, key))
        return new

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        pos = self.get_metadata(PositionProvider, original_node.func)
        key = (pos.start.line, pos.start.column, pos.end.line, pos.end.column)
        return self._apply("call", key, updated_node)

    def leave_BinaryOperation(
        self, original_node: cst.BinaryOperation, updated_node: cst.BinaryOperation
    ) -> cst.BaseExpression:
        pos = self.get_metadata(PositionProvider, original_node)  # excludes parentheses, as ast
        key = (pos.start.line, pos.start.column, pos.end.line, pos.end.column)
        return self._apply("binop", key, updated_node)


class _OrdinalTransformer(cst.CSTTransformer):
    """Finds the edited nodes by their place among the calls and binary operations of a
    small expression, in source order (the same order in ``ast`` and LibCST), so no
    position metadata is computed."""

    def __init__(self, edits: dict[int, tuple[str, Edit]], spell: _Speller) -> None:
        super().__init__()
        self.edits = edits
        self.spell = spell
        self.count = 0
        self.index: dict[int, int] = {}
        self.applied: set[int] = set()
        self.wrong = False

    def _enter(self, node: cst.CSTNode) -> bool:
        self.index[id(node)] = self.count
        self.count += 1
        return True

    def visit_Call(self, node: cst.Call) -> bool:
        return self._enter(node)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> bool:
        return self._enter(node)

    def _leave(
        self, target: str, original: cst.CSTNode, updated: cst.BaseExpression
    ) -> cst.BaseExpression:
        i = self.index[id(original)]
        hit = self.edits.get(i)
        if hit is None:
            return updated
        if hit[0] != target:
            self.wrong = True
            return updated
        edit = hit[1]
        try:
            new = ACTIONS[edit.action](updated, edit, self.spell)
        except _Mismatch:
            return updated
        self.applied.add(i)
        return new

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return self._leave("call", original_node, updated_node)

    def leave_BinaryOperation(
        self, original_node: cst.BinaryOperation, updated_node: cst.BinaryOperation
    ) -> cst.BaseExpression:
        return self._leave("binop", original_node, updated_node)


def _char_key(lines: list[str], key: Key) -> Key:
    def col(lineno: int, byte_col: int) -> int:
        if 0 < lineno <= len(lines) and not lines[lineno - 1].isascii():
            return len(lines[lineno - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))
        return byte_col

    return (key[0], col(key[0], key[1]), key[2], col(key[2], key[3]))


def _allowed(finding: Finding, unsafe: bool) -> bool:
    fix = finding.fix
    return fix is not None and (fix.applicability == "safe" or unsafe)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(source: str) -> list[str]:
    """Lines with their ends, numbered as Python numbers them (``\f`` is no line end)."""
    return _LINE.findall(source)


def _collect_edits(
    lines: list[str], findings: list[Finding]
) -> tuple[dict[tuple[str, Key], Edit], list[tuple[Finding, list[tuple[str, Key]]]]]:
    edits: dict[tuple[str, Key], Edit] = {}
    owners: list[tuple[Finding, list[tuple[str, Key]]]] = []
    for finding in findings:
        assert finding.fix is not None
        keys = []
        for edit in finding.fix.edits:
            k = (edit.target, _char_key(lines, edit.key))
            if k in edits and edits[k].action != edit.action:
                break
            keys.append(k)
        else:
            for edit, k in zip(finding.fix.edits, keys, strict=True):
                edits[k] = edit
            owners.append((finding, keys))
    return edits, owners


def _transform(
    module: cst.Module, edits: dict[tuple[str, Key], Edit], spell: _Speller
) -> tuple[cst.Module, set[tuple[str, Key]]]:
    transformer = _Transformer(edits, spell)
    new_module = MetadataWrapper(module, unsafe_skip_copy=True).visit(transformer)
    return new_module, transformer.applied


def _needs_imports(context: CodemodContext) -> bool:
    return bool(context.scratch.get(AddImportsVisitor.CONTEXT_KEY))


def _header_end(tree: ast.Module) -> int:
    """Last line of the top-level statements before the first def/class (imports live
    there); new imports are added within these lines only."""
    end = 0
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            break
        end = stmt.end_lineno or stmt.lineno
    return end


def _apply_round(
    source: str, findings: list[Finding], trees: list[ast.Module] | None = None
) -> tuple[str, list[Finding]]:
    """Apply one round of edits. LibCST parses only the outermost expressions that hold
    an edit (all in one parse), so the cost follows the fixes, not the size of the file.

    ``trees``: a list holding the ast of ``source`` (from the lint), emptied here so that
    the tree is freed before LibCST runs; else the source is parsed again."""
    lines = split_lines(source)
    bare = [ln.rstrip("\r\n") for ln in lines]
    edits, owners = _collect_edits(bare, findings)
    if not edits:
        return source, []
    if trees:
        tree = trees.pop()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    context = CodemodContext()
    spell = _Speller(tree, context)
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln))
    pieces = _pieces(tree, lines, bare, edits)
    header_end = _header_end(tree)
    del tree  # the ast of a large file is large: free it before LibCST runs
    if pieces is None:
        new_module, whole = _transform(cst.parse_module(source), edits, spell)
        if _needs_imports(context):
            new_module = AddImportsVisitor(context).transform_module(new_module)
        return new_module.code, _done(owners, whole)
    applied: set[tuple[str, Key]] = set()
    out: list[str] = []
    pos = 0
    header = starts[min(header_end, len(lines))]
    shift = 0
    for ((l1, c1, l2, c2), _text, outer, keys), (module, expr) in pieces:
        a, b = starts[l1 - 1] + c1, starts[l2 - 1] + c2
        out.append(source[pos:a])
        new_text = _rewrite(module, expr, outer, keys, edits, spell, applied)
        if new_text is not None:
            out.append(new_text)
            if b <= header:
                shift += len(new_text) - (b - a)
        else:
            out.append(source[a:b])
        pos = b
    out.append(source[pos:])
    text = "".join(out)
    if _needs_imports(context):
        cut = header + shift
        head = AddImportsVisitor(context).transform_module(cst.parse_module(text[:cut])).code
        text = head + text[cut:]
    return text, _done(owners, applied)


def _rewrite(
    module: cst.Module,
    expr: cst.BaseExpression,
    outer: ast.expr,
    keys: list[tuple[tuple[str, Key], ast.expr]],
    edits: dict[tuple[str, Key], Edit],
    spell: _Speller,
    applied: set[tuple[str, Key]],
) -> str | None:
    """The new text of one outermost edited expression, or None when nothing applied."""
    if len(keys) == 1 and keys[0][1] is outer:
        # the common case: one edit, on the expression itself; no visitor needed
        k = keys[0][0]
        edit = edits[k]
        want = cst.Call if k[0] == "call" else cst.BinaryOperation
        if not isinstance(expr, want):
            return None
        try:
            new = ACTIONS[edit.action](expr, edit, spell)
        except _Mismatch:
            return None
        applied.add(k)
        return module.code_for_node(new)
    inner = sorted(
        (n for n in ast.walk(outer) if isinstance(n, (ast.Call, ast.BinOp))),
        key=lambda n: _order(_key(n)),
    )
    ordinal = {id(n): i for i, n in enumerate(inner)}
    local = {ordinal[id(node)]: (k, edits[k]) for k, node in keys}
    transformer = _OrdinalTransformer({i: (k[0], e) for i, (k, e) in local.items()}, spell)
    new_expr = expr.visit(transformer)
    if transformer.wrong or transformer.count != len(inner) or not transformer.applied:
        return None  # the two parsers disagree, or nothing applied: leave it alone
    applied.update(local[i][0] for i in transformer.applied)
    assert isinstance(new_expr, cst.CSTNode)
    return module.code_for_node(new_expr)


Span = tuple[int, int, int, int]
#: (span, text, the outermost node, the edit keys inside it with their nodes)
Group = tuple[Span, str, ast.expr, list[tuple[tuple[str, Key], ast.expr]]]


def _pieces(
    tree: ast.Module, lines: list[str], bare: list[str], edits: dict[tuple[str, Key], Edit]
) -> list[tuple[Group, tuple[cst.Module, cst.BaseExpression]]] | None:
    """The outermost edited expressions, parsed by LibCST in one go (one expression
    statement each); None when an edit's node is not found or an expression does not
    parse alone (a multi-line operation inside outer parentheses)."""
    import bisect

    spans: dict[tuple[str, Key], tuple[Span, ast.expr]] = {}
    edit_lines = sorted({k[1][0] for k in edits})
    roots = []
    for stmt in tree.body:  # walk only the top-level statements that hold an edit
        i = bisect.bisect_left(edit_lines, stmt.lineno)
        if i < len(edit_lines) and edit_lines[i] <= (stmt.end_lineno or stmt.lineno):
            roots.append(stmt)
    for node in (n for root in roots for n in ast.walk(root)):
        if isinstance(node, ast.Call):
            k = ("call", _char_key(bare, _key(node.func)))
        elif isinstance(node, ast.BinOp):
            k = ("binop", _char_key(bare, _key(node)))
        else:
            continue
        if k in edits:
            spans[k] = (_char_key(bare, _key(node)), node)
    if len(spans) != len(edits):
        return None
    groups: list[Group] = []
    for k in sorted(edits, key=lambda k: _order(spans[k][0])):
        span, node = spans[k]
        if groups and span[:2] < groups[-1][0][2:]:
            groups[-1][3].append((k, node))  # nested in the previous outermost expression
            continue
        l1, c1, l2, c2 = span
        if l1 == l2:
            text = bare[l1 - 1][c1:c2]
        else:
            text = lines[l1 - 1][c1:] + "".join(lines[l1 : l2 - 1]) + bare[l2 - 1][:c2]
        groups.append((span, text, node, [(k, node)]))
    parsed: list[tuple[cst.Module, cst.BaseExpression]] = []
    for start in range(0, len(groups), _BATCH):
        chunk = _parse_batch(groups[start : start + _BATCH])
        if chunk is None:
            return None
        parsed.extend(chunk)
    return list(zip(groups, parsed, strict=True))


#: expressions parsed per LibCST call (its parser slows down on very long inputs)
_BATCH = 128


def _parse_batch(groups: list[Group]) -> list[tuple[cst.Module, cst.BaseExpression]] | None:
    try:
        module = cst.parse_module("\n".join(g[1] for g in groups) + "\n")
        ok = len(module.body) == len(groups)
    except cst.ParserSyntaxError:
        ok = False
    parsed: list[tuple[cst.Module, cst.BaseExpression]] = []
    if ok:
        for stmt in module.body:
            expr = _expression_of(stmt)
            if expr is None:
                return None
            parsed.append((module, expr))
        return parsed
    for g in groups:  # find the one that does not parse alone
        try:
            alone = cst.parse_module(g[1] + "\n")
        except cst.ParserSyntaxError:
            return None
        expr = _expression_of(alone.body[0]) if len(alone.body) == 1 else None
        if expr is None:
            return None
        parsed.append((alone, expr))
    return parsed


def _expression_of(stmt: cst.CSTNode) -> cst.BaseExpression | None:
    if (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
    ):
        return stmt.body[0].value
    return None


def _order(span: Span) -> tuple[int, int, int, int]:
    """Source order, an outer node before the inner ones that start where it starts."""
    return (span[0], span[1], -span[2], -span[3])


def _key(node: ast.AST) -> Key:
    return (
        node.lineno,  # type: ignore[attr-defined]
        node.col_offset,  # type: ignore[attr-defined]
        node.end_lineno or node.lineno,  # type: ignore[attr-defined]
        node.end_col_offset or 0,  # type: ignore[attr-defined]
    )


def _done(
    owners: list[tuple[Finding, list[tuple[str, Key]]]], applied: set[tuple[str, Key]]
) -> list[Finding]:
    return [f for f, keys in owners if keys and all(k in applied for k in keys)]


def fix_source(
    source: str,
    path: str = "<string>",
    options: Options | None = None,
    unsafe: bool = False,
    keep_activations: bool = False,
) -> FixResult:
    """Apply every allowed fix until none is left; return the new text and what changed.

    Each round lints once; the lint that finds nothing left to fix is the one whose
    findings are returned, so a file without fixes is linted once and LibCST never runs.
    """
    import gc

    options = options or Options()
    checked = Options(options.select | {"LGL900"}, options.exclude, options.max_file_bytes)
    fixed: list[Finding] = []
    current = source
    # The collector pauses for the whole fix (it would walk the large, young trees again
    # and again; a collection with a large tree alive costs seconds). Nothing is lost:
    # the analysis breaks its own cycles, so each tree is freed when it is let go.
    enabled = gc.isenabled()
    gc.disable()
    try:
        findings, tree = lint_keeping_tree(current, path, options)
        for _ in range(MAX_ROUNDS):
            fixable = [
                f
                for f in findings
                if _allowed(f, unsafe)
                and not (keep_activations and f.fix is not None and f.fix.removes is not None)
            ]
            if not fixable:
                break
            trees = [] if tree is None else [tree]
            tree = None
            try:
                new, done = _apply_round(current, fixable, trees)
            except (cst.ParserSyntaxError, SyntaxError, ValueError, RecursionError):
                break
            del trees
            if new == current or not done:
                break
            # the lint of the new text is also its syntax check: a round whose output does
            # not parse is dropped
            after, tree = lint_keeping_tree(new, path, checked)
            if any(f.code == "LGL900" for f in after):
                break
            current = new
            fixed.extend(done)
            findings = [f for f in after if f.code in options.select]
        del tree
    finally:
        if enabled:
            gc.enable()
    return FixResult(current, fixed, findings)


class _Matcher(difflib.SequenceMatcher[str]):
    """Matching blocks found in about linear time for files where fixes change a few lines
    here and there: common head and tail are cut, lines unique to both sides anchor the
    rest (their longest increasing run, as in patience diff), and difflib's own matcher
    runs only on the small gaps between anchors. difflib alone is quadratic on large
    files with changes spread through them."""

    def __init__(self, a: list[str], b: list[str]) -> None:
        self.a, self.b = a, b
        self.opcodes = None
        blocks: list[tuple[int, int, int]] = []
        self._match(0, len(a), 0, len(b), blocks)
        merged: list[tuple[int, int, int]] = []
        for i, j, n in blocks:
            if (
                n
                and merged
                and merged[-1][0] + merged[-1][2] == i
                and merged[-1][1] + merged[-1][2] == j
            ):
                merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + n)
            elif n:
                merged.append((i, j, n))
        merged.append((len(a), len(b), 0))
        self.matching_blocks = [difflib.Match(*m) for m in merged]

    def _match(self, a0: int, a1: int, b0: int, b1: int, out: list[tuple[int, int, int]]) -> None:
        a, b = self.a, self.b
        head = 0
        while a0 + head < a1 and b0 + head < b1 and a[a0 + head] == b[b0 + head]:
            head += 1
        tail = 0
        while (
            a1 - tail > a0 + head and b1 - tail > b0 + head and a[a1 - tail - 1] == b[b1 - tail - 1]
        ):
            tail += 1
        if head:
            out.append((a0, b0, head))
        self._middle(a0 + head, a1 - tail, b0 + head, b1 - tail, out)
        if tail:
            out.append((a1 - tail, b1 - tail, tail))

    def _middle(self, a0: int, a1: int, b0: int, b1: int, out: list[tuple[int, int, int]]) -> None:
        if a0 >= a1 or b0 >= b1:
            return
        if (a1 - a0) * (b1 - b0) <= 250_000:
            sm = difflib.SequenceMatcher(None, self.a[a0:a1], self.b[b0:b1], autojunk=False)
            out.extend((a0 + i, b0 + j, n) for i, j, n in sm.get_matching_blocks() if n)
            return
        count: dict[str, list[int]] = {}
        for i in range(a0, a1):
            count.setdefault(self.a[i], [0, 0, i])[0] += 1
        for j in range(b0, b1):
            hit = count.get(self.b[j])
            if hit is not None:
                hit[1] += 1
                hit.append(j)
        pairs = sorted((v[2], v[3]) for v in count.values() if v[0] == 1 and v[1] == 1)
        anchors = _increasing_run(pairs)
        if not anchors:
            return  # nothing unique in common: report the gap as replaced
        prev_a, prev_b = a0, b0
        for i, j in anchors:
            self._match(prev_a, i, prev_b, j, out)
            out.append((i, j, 1))
            prev_a, prev_b = i + 1, j + 1
        self._match(prev_a, a1, prev_b, b1, out)


def _increasing_run(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest run of ``pairs`` (sorted by the first) increasing in the second."""
    import bisect

    tails: list[int] = []
    tail_at: list[int] = []
    back: list[int] = []
    for k, (_, j) in enumerate(pairs):
        pos = bisect.bisect_left(tails, j)
        if pos == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[pos] = j
            tail_at[pos] = k
        back.append(tail_at[pos - 1] if pos else -1)
    run: list[tuple[int, int]] = []
    k = tail_at[-1] if tail_at else -1
    while k >= 0:
        run.append(pairs[k])
        k = back[k]
    return run[::-1]


def _range(start: int, length: int) -> str:
    beginning = start + 1
    if length == 1:
        return str(beginning)
    if not length:
        beginning -= 1
    return f"{beginning},{length}"


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff ``patch`` accepts, also when a file has no trailing newline (the
    last line gets the ``\\ No newline at end of file`` marker). The hunks are
    :func:`difflib.unified_diff`'s format, found in about linear time (the collector
    paused: the matcher's many small lists hold no cycles)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        return _unified_diff(path, before, after)
    finally:
        if enabled:
            gc.enable()


def _unified_diff(path: str, before: str, after: str) -> str:
    a = split_lines(before)
    b = split_lines(after)
    out: list[str] = []

    def emit(text: str) -> None:
        out.append(text)
        if not text.endswith(("\n", "\r")):
            out.append("\n\\ No newline at end of file\n")

    for k, group in enumerate(_Matcher(a, b).get_grouped_opcodes(3)):
        if k == 0:
            out.append(f"--- a/{path}\n")
            out.append(f"+++ b/{path}\n")
        first, last = group[0], group[-1]
        out.append(
            f"@@ -{_range(first[1], last[2] - first[1])}"
            f" +{_range(first[3], last[4] - first[3])} @@\n"
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for text in a[i1:i2]:
                    emit(" " + text)
                continue
            if tag in ("replace", "delete"):
                for text in a[i1:i2]:
                    emit("-" + text)
            if tag in ("replace", "insert"):
                for text in b[j1:j2]:
                    emit("+" + text)
    return "".join(out)


@dataclass
class FileFix:
    """What fixing one file did: the diff, how many findings were fixed, what is left."""

    path: str
    diff: str
    fixed: int
    remaining: list[Finding]
    fixable_unsafe: int = 0


def _refused(finding: Finding, uses: list[str]) -> Finding:
    from logitlab.lint._engine import removal_blocked_note

    if finding.fix is None or finding.fix.removes is None:
        return finding
    f = finding
    note = removal_blocked_note(uses)
    return Finding(f.path, f.line, f.col, f.end_line, f.end_col, f.code, f.message + note, None)


def fix_file(args: tuple[str, tuple[Options, bool, bool, dict[str, list[str]]]]) -> FileFix:
    """Fix one file; write it back when ``write``. Used by the CLI's process pool.

    ``refused``: files whose fixes removing a model's final activation are refused (other
    files use the model's output, listed as ``path:line``)."""
    from logitlab.lint._engine import decode_source, read_source

    path, (options, unsafe, write, refused) = args
    options = options.for_path(path)
    source, problem = read_source(path, options)
    if problem is not None or source is None:
        remaining = [problem] if problem is not None and problem.code in options.select else []
        return FileFix(path, "", 0, remaining)
    try:
        result = fix_source(source, path, options, unsafe, keep_activations=path in refused)
        if path in refused:  # other files use the model's output: say so, offer nothing
            result = FixResult(
                result.source,
                result.fixed,
                [_refused(f, refused[path]) for f in result.remaining],
            )
    except Exception as err:  # a crash on one file must not stop the run
        crash = Finding(path, 1, 0, 1, 0, "LGL901", f"internal error while fixing: {err!r}")
        return FileFix(path, "", 0, [crash])
    if not result.changed:
        return FileFix(path, "", 0, result.remaining, _count_unsafe(result.remaining))
    diff = unified_diff(path, source, result.source)
    if write:
        import tokenize

        with open(path, "rb") as fh:
            encoding, _ = tokenize.detect_encoding(fh.readline)
        if encoding == "utf-8-sig":
            encoding = "utf-8"
        data = result.source.encode(encoding)
        if decode_source(data) == result.source:
            with open(path, "wb") as fh:
                fh.write(data)
    return FileFix(path, diff, len(result.fixed), result.remaining, _count_unsafe(result.remaining))


def _count_unsafe(findings: list[Finding]) -> int:
    return sum(1 for f in findings if f.fix is not None and f.fix.applicability == "unsafe")
