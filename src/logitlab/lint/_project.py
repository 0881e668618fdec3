"""Project-wide summaries: what each module exports that the rules care about.

The engine's first pass summarises every file it lints (:meth:`ModuleAnalysis.summary`:
classes whose ``forward`` or methods return probabilities, functions that return them,
one-line helpers around log/sigmoid/softmax, module-level imports). The second pass
re-lints the files that import project modules with a :class:`Project` attached, which
resolves absolute, relative and sibling-script imports and names re-exported by the
project's own modules (``from .backend import np``). Summaries are plain dicts, so they
travel to worker processes and into the cache (``.logitlab_cache/``) as JSON.
"""

from __future__ import annotations

import ast
import functools
import os
from dataclasses import dataclass
from typing import Any

from logitlab.lint._analysis import OPS, ModuleAnalysis, Value

Summary = dict[str, Any]


@dataclass(frozen=True)
class ExtClass:
    """A class defined in another file of the project."""

    path: str
    name: str
    data: Summary


@dataclass(frozen=True)
class ExtFunction:
    path: str
    name: str
    data: Summary


def module_name(path: str) -> str:
    """Dotted module name of ``path``, from the topmost directory with ``__init__.py``."""
    path = os.path.abspath(path)
    directory, base = os.path.split(path)
    parts = [] if base == "__init__.py" else [base.rsplit(".", 1)[0]]
    return ".".join([*_package(directory), *parts])


@functools.lru_cache(maxsize=4096)
def _package(directory: str) -> tuple[str, ...]:
    """The package names leading to ``directory`` (one stat per directory per run)."""
    if not os.path.isfile(os.path.join(directory, "__init__.py")):
        return ()
    parent, pkg = os.path.split(directory)
    return (*_package(parent), pkg)


def _origin(line: int) -> ast.AST:
    node = ast.Constant(None)
    node.lineno = line
    node.col_offset = 0
    return node


class Project:
    """Summaries of every linted file, and name resolution across them."""

    def __init__(self, summaries: dict[str, Summary]) -> None:
        self.summaries = summaries
        self.by_module: dict[str, str] = {}
        self.by_dir: dict[tuple[str, str], str] = {}
        self._canonical: dict[tuple[str, str, int], str] = {}
        self._prefixes: set[str] | None = None
        for path in summaries:
            self.by_module.setdefault(module_name(path), path)
            directory, base = os.path.split(os.path.abspath(path))
            stem = base.rsplit(".", 1)[0]
            self.by_dir[(directory, stem)] = path

    # -- names -----------------------------------------------------------------------

    def _absolute(self, ana: ModuleAnalysis, qual: str) -> str:
        """``..backend.np`` relative to the importing module, made absolute."""
        if not qual.startswith("."):
            return qual
        level = len(qual) - len(qual.lstrip("."))
        here = module_name(ana.path).split(".")
        if os.path.basename(ana.path) != "__init__.py":
            here = here[:-1]
        base = here[: len(here) - (level - 1)] if level > 1 else here
        rest = qual[level:]
        return ".".join([*base, rest]) if rest else ".".join(base)

    def _split(self, ana: ModuleAnalysis, qual: str) -> tuple[str, list[str]] | None:
        """(path of the project module, remaining attribute names) for ``qual``."""
        parts = qual.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            path = self.by_module.get(".".join(parts[:cut]))
            if path is None and cut == 1 and ana.path:
                directory = os.path.dirname(os.path.abspath(ana.path))
                path = self.by_dir.get((directory, parts[0]))
            if path is not None:
                return path, parts[cut:]
        return None

    def canonical(self, ana: ModuleAnalysis, qual: str, depth: int = 0) -> str:
        """Follow re-exports: ``pkg.backend.np`` -> ``numpy`` when pkg/backend.py
        imports numpy as np.  Memoised per importing file (the project does not change)."""
        key = (ana.path, qual, depth)
        memo = self._canonical
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = self._canonical_now(ana, qual, depth)
        return hit

    def _canonical_now(self, ana: ModuleAnalysis, qual: str, depth: int) -> str:
        qual = self._absolute(ana, qual)
        if depth > 4 or qual in OPS:
            return qual
        found = self._split(ana, qual)
        if found is None:
            return qual
        path, rest = found
        aliases = self.summaries[path].get("aliases", {})
        if rest and rest[0] in aliases:
            target = aliases[rest[0]]
            if target.startswith("."):
                other = ModuleAnalysis.__new__(ModuleAnalysis)
                other.path = path
                target = self._absolute(other, target)
            return self.canonical(ana, ".".join([target, *rest[1:]]), depth + 1)
        return qual

    def _lookup(self, ana: ModuleAnalysis, qual: str) -> tuple[str, str, Summary] | None:
        found = self._split(ana, qual)
        if found is None or len(found[1]) != 1:
            return None
        path, (name,) = found
        data = self.summaries[path]
        if name in data.get("classes", {}):
            return "class", path, data["classes"][name] | {"name": name}
        if name in data.get("functions", {}):
            return "function", path, data["functions"][name] | {"name": name}
        return None

    # -- values (called by ModuleAnalysis) ---------------------------------------------

    def imported_value(self, ana: ModuleAnalysis, local: str) -> Value | None:
        qual = ana.aliases.get(local)
        if qual is None:
            return None
        return self._value_of(ana, self.canonical(ana, qual))

    def attribute_value(self, ana: ModuleAnalysis, expr: ast.Attribute) -> Value | None:
        qual = ana.resolve(expr)  # ``models.CTRModel`` with ``import models``
        return None if qual is None else self._value_of(ana, qual)

    def _value_of(self, ana: ModuleAnalysis, qual: str) -> Value | None:
        hit = self._lookup(ana, qual)
        if hit is None:
            return None
        kind, path, data = hit
        if kind == "class":
            return Value("class", _origin(1), "model", "", ExtClass(path, data["name"], data), path)
        return Value(
            "function", _origin(1), "function", "", ExtFunction(path, data["name"], data), path
        )

    def helper_op(self, ana: ModuleAnalysis, qual: str) -> tuple[str, str] | None:
        hit = self._lookup(ana, qual)
        if hit is None or hit[0] != "function" or "helper" not in hit[2]:
            return None
        op, fw = hit[2]["helper"]
        return str(op), str(fw)

    def function_value(self, info: object) -> Value | None:
        if not isinstance(info, ExtFunction) or "returns" not in info.data:
            return None
        kind, line = info.data["returns"]
        return Value(kind, _origin(line), "function", "", None, info.path)

    def class_forward(self, info: object) -> Value | None:
        if not isinstance(info, ExtClass) or not info.data.get("forward"):
            return None
        kind, line = info.data["forward"]
        return Value(kind, _origin(line), "model", "torch", None, info.path)

    def class_method(self, info: object, name: str) -> Value | None:
        if not isinstance(info, ExtClass) or name not in info.data.get("methods", {}):
            return None
        kind, line = info.data["methods"][name]
        return Value(kind, _origin(line), "function", "", None, info.path)

    def has_method(self, info: object, name: str) -> bool:
        return isinstance(info, ExtClass) and name in info.data.get("methods", {})

    # -- which files the second pass needs ---------------------------------------------

    def agrees(self, path: str, asked: list[tuple[str, str, str | None]]) -> bool:
        """Whether this project answers the questions a :class:`Recorder` recorded for
        the file at ``path`` as the recorder did."""
        ana = ModuleAnalysis.__new__(ModuleAnalysis)
        ana.path = path
        for kind, qual, answer in asked:
            if kind == "c":
                real = self.canonical(ana, qual)
                if real != answer and not self._same_for_rules(ana, str(answer), real):
                    return False
            elif kind == "h":
                if self.helper_op(ana, qual) is not None:
                    return False
            elif kind == "i":
                if self._value_of(ana, self.canonical(ana, qual)) is not None:
                    return False
            elif kind == "v":
                if self._value_of(ana, qual) is not None:
                    return False
            else:
                return False
        return True

    def _same_for_rules(self, ana: ModuleAnalysis, guessed: str, real: str) -> bool:
        """Whether the rules treat the name the first pass assumed (``guessed``) and the
        one a re-export leads to (``real``) alike, so the difference cannot change a
        finding: ``_pytest._io.TerminalWriter`` re-exported from
        ``_pytest._io.terminalwriter``.

        The analysis looks at a resolved name in three ways: as a framework operation
        or on the way to one (``OPS``, and ``keras.``/``tensorflow.`` names), as a
        project value (a class, function or helper of another file), and by its text
        (the last part, as in ``...Sequential`` or ``...float32``, and the words
        ``layers`` and ``losses``).  The two names are alike when neither is a framework
        name, neither is a project module nor leads into one that exports a class or
        function, the real one is not re-exported further, and their last parts and
        those words agree.
        """
        if guessed.rsplit(".", 1)[-1] != real.rsplit(".", 1)[-1]:
            return False
        for word in _RULE_WORDS:
            if (word in guessed) != (word in real):
                return False
        if self._prefixes is None:
            self._prefixes = {
                ".".join(parts[:i])
                for parts in (m.split(".") for m in self.by_module)
                for i in range(1, len(parts) + 1)
            }
        for name in (guessed, real):
            if name.startswith(".") or _framework_name(name):
                return False
            if name in self._prefixes:
                return False  # a project module: names under it may be classes
            found = self._split(ana, name)
            if found is not None:
                data = self.summaries[found[0]]
                if data.get("classes") or data.get("functions"):
                    return False
                if name is real and found[1] and found[1][0] in data.get("aliases", {}):
                    return False  # re-exported further than canonical follows
        return True

    def useful(self, path: str) -> bool:
        data = self.summaries.get(path) or {}
        return bool(data.get("classes") or data.get("functions") or data.get("aliases"))

    def imports_project(self, path: str) -> bool:
        """Whether the file at ``path`` imports a project module that exports something."""
        data = self.summaries.get(path)
        if not data:
            return False
        ana = ModuleAnalysis.__new__(ModuleAnalysis)
        ana.path = path
        for qual in data.get("imports", ()):
            found = self._split(ana, self._absolute(ana, qual))
            if found is not None and found[0] != path:
                other = self.summaries[found[0]]
                if other.get("classes") or other.get("functions"):
                    return True
                target = other.get("aliases", {}).get(found[1][0]) if found[1] else None
                if target is not None and (
                    _may_matter(str(target)) or self._split(ana, str(target)) is not None
                ):
                    return True
        return False


class Recorder(Project):
    """Stands in for the project in the first pass, before the other files are read.

    It answers each question about another module as a project would whose other files
    export nothing (a relative name made absolute, no helper, no value) and records the
    question with its answer. Once every file is summarised, :meth:`Project.agrees`
    puts the same questions to the real project: when every answer is the same, the
    analysis takes the same path, so the findings made with the recorder are the ones
    a second pass would make and the file is not read again.
    """

    def __init__(self) -> None:
        super().__init__({})
        self.asked: set[tuple[str, str, str | None]] = set()

    def canonical(self, ana: ModuleAnalysis, qual: str, depth: int = 0) -> str:
        answer = self._absolute(ana, qual)
        self.asked.add(("c", qual, answer))
        return answer

    def helper_op(self, ana: ModuleAnalysis, qual: str) -> tuple[str, str] | None:
        self.asked.add(("h", qual, None))
        return None

    def imported_value(self, ana: ModuleAnalysis, local: str) -> Value | None:
        qual = ana.aliases.get(local)
        if qual is not None:
            self.asked.add(("i", qual, None))
        return None

    def attribute_value(self, ana: ModuleAnalysis, expr: ast.Attribute) -> Value | None:
        qual = ana.resolve(expr)
        if qual is not None:
            self.asked.add(("v", qual, None))
        return None


#: top-level packages whose re-export (``from .backend import np``) can change a finding
_FRAMEWORK_ROOTS = ("torch", "numpy", "jax", "tensorflow", "keras", "scipy", "math", "optax")


#: every framework operation the rules know (``OPS``) and each dotted prefix of one: a
#: name among these can become an operation, by itself or with attributes after it
_OPS_PREFIXES = frozenset(
    ".".join(parts[:i])
    for parts in (name.split(".") for name in OPS)
    for i in range(1, len(parts) + 1)
)
#: frameworks the rules also tell apart by the text of a name (``startswith("keras.")``)
_TEXT_ROOTS = frozenset({"tensorflow", "tf", "keras"})


def _framework_name(name: str) -> bool:
    """Whether a rule can treat ``name`` (or a name under it) as a framework's."""
    return name in _OPS_PREFIXES or name.split(".", 1)[0] in _TEXT_ROOTS


#: words the rules look for inside a resolved name (``"layers" in qual``,
#: ``endswith("losses.BinaryCrossentropy")``)
_RULE_WORDS = ("layers", "losses")


def _may_matter(target: str) -> bool:
    """A re-exported name can change findings when it is a framework (or part of one) or
    a relative name (followed further by ``canonical``)."""
    return target.startswith(".") or target.split(".", 1)[0] in _FRAMEWORK_ROOTS


def import_summary(tree: ast.Module) -> Summary:
    """The cheap part of a summary, from the top-level statements only: imports."""
    aliases: dict[str, str] = {}
    imports: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                imports.append(a.name + ".x")
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(stmt, ast.ImportFrom):
            base = "." * stmt.level + (stmt.module or "")
            sep = "." if stmt.module else ""
            for a in stmt.names:
                if a.name != "*":
                    aliases[a.asname or a.name] = f"{base}{sep}{a.name}"
                    imports.append(f"{base}{sep}{a.name}")
    return {"classes": {}, "functions": {}, "aliases": aliases, "imports": imports}
