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
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import MetadataWrapper, PositionProvider

from logitlab.lint._engine import Options, lint_source
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
            return cst.parse_expression(best[0] + qual[len(best[1]) :])
        module, _, name = qual.rpartition(".")
        if module in self.from_modules or module == "scipy.special":
            AddImportsVisitor.add_needed_import(self.context, module, name)
            return cst.Name(name)
        top, _, rest = qual.partition(".")
        asname = _IMPORT_AS.get(top)
        AddImportsVisitor.add_needed_import(self.context, top, asname=asname)
        return cst.parse_expression(f"{asname or top}.{rest}")


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


ACTIONS: dict[str, Action] = {
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


def _char_key(lines: list[str], key: Key) -> Key:
    def col(lineno: int, byte_col: int) -> int:
        if 0 < lineno <= len(lines) and not lines[lineno - 1].isascii():
            return len(lines[lineno - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))
        return byte_col

    return (key[0], col(key[0], key[1]), key[2], col(key[2], key[3]))


def _allowed(finding: Finding, unsafe: bool) -> bool:
    fix = finding.fix
    return fix is not None and (fix.applicability == "safe" or unsafe)


def _apply_round(source: str, findings: list[Finding]) -> tuple[str, list[Finding]]:
    lines = source.splitlines()
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
    if not edits:
        return source, []
    module = cst.parse_module(source)
    context = CodemodContext()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(source)
    spell = _Speller(tree, context)
    transformer = _Transformer(edits, spell)
    new_module = MetadataWrapper(module).visit(transformer)
    new_module = AddImportsVisitor(context).transform_module(new_module)
    fixed = [f for f, keys in owners if keys and all(k in transformer.applied for k in keys)]
    return new_module.code, fixed


def fix_source(
    source: str, path: str = "<string>", options: Options | None = None, unsafe: bool = False
) -> FixResult:
    """Apply every allowed fix until none is left; return the new text and what changed."""
    options = options or Options()
    fixed: list[Finding] = []
    current = source
    for _ in range(MAX_ROUNDS):
        findings = lint_source(current, path, options)
        fixable = [f for f in findings if _allowed(f, unsafe)]
        if not fixable:
            break
        try:
            new, done = _apply_round(current, fixable)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(new)
        except (cst.ParserSyntaxError, SyntaxError, ValueError, RecursionError):
            break
        if new == current or not done:
            break
        current = new
        fixed.extend(done)
    remaining = lint_source(current, path, options)
    return FixResult(current, fixed, remaining)


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff ``patch`` accepts, also when a file has no trailing newline (the
    last line gets the ``\\ No newline at end of file`` marker)."""
    out = []
    for text in difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    ):
        out.append(text)
        if not text.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


@dataclass
class FileFix:
    """What fixing one file did: the diff, how many findings were fixed, what is left."""

    path: str
    diff: str
    fixed: int
    remaining: list[Finding]
    fixable_unsafe: int = 0


def fix_file(args: tuple[str, tuple[Options, bool, bool]]) -> FileFix:
    """Fix one file; write it back when ``write``. Used by the CLI's process pool."""
    from logitlab.lint._engine import decode_source, read_source

    path, (options, unsafe, write) = args
    options = options.for_path(path)
    source, problem = read_source(path, options)
    if problem is not None or source is None:
        remaining = [problem] if problem is not None and problem.code in options.select else []
        return FileFix(path, "", 0, remaining)
    try:
        result = fix_source(source, path, options, unsafe)
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
