"""The one engine behind the CLI and the flake8 plugin: read, parse, run the rules.

Robustness: every problem with a file (syntax error, bad encoding, unreadable, too large,
a symlink loop) becomes a finding (LGL900-LGL902) and the run goes on.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import io
import os
import re
import tokenize
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from logitlab.lint._analysis import ModuleAnalysis
from logitlab.lint._codes import default_selection
from logitlab.lint._finding import Finding
from logitlab.lint._rules import PREPARE, RULES, Context, Pending


def may_match(source: str) -> bool:
    """Cheap substring test: can any rule match this file? If not, it is only parsed.

    Every rule needs an ``exp(`` call, a ``log(`` call next to a sigmoid, softmax, a
    ``1 -`` or a sum, or a sigmoid/softmax next to a loss name.
    """
    squash = "igmoid" in source or "oftmax" in source or "expit" in source
    if "exp(" in source:
        return True
    if "log(" in source or "log1p(" in source:
        return squash or "1 -" in source or "1-" in source or "sum(" in source
    return squash and (
        "ross" in source
        or "BCE" in source
        or "binary_" in source
        or "nll" in source
        or "NLL" in source
    )


_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,?\s*[A-Z]+[0-9]+)*))?", re.I)

MAX_FILE_BYTES = 10 * 1024 * 1024
DEFAULT_EXCLUDE = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "node_modules",
        "build",
        "dist",
        "site-packages",
        ".eggs",
    }
)


@dataclass(frozen=True)
class Options:
    """What to report: the selected codes (after --select/--ignore and config)."""

    select: frozenset[str] = field(default_factory=lambda: frozenset(default_selection()))
    exclude: tuple[str, ...] = ()
    max_file_bytes: int = MAX_FILE_BYTES
    #: (glob, codes) pairs: codes not reported in files matching the glob
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()

    def for_path(self, path: str) -> Options:
        """These options with the per-file ignores that match ``path`` applied."""
        if not self.per_file_ignores:
            return self
        import fnmatch

        rel = os.path.relpath(path).replace(os.sep, "/")
        ignored: set[str] = set()
        for pattern, codes in self.per_file_ignores:
            if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
                ignored |= codes
        if not ignored:
            return self
        return Options(self.select - ignored, self.exclude, self.max_file_bytes)


def _char_col(lines: list[str], lineno: int, byte_col: int) -> int:
    if 0 < lineno <= len(lines):
        text = lines[lineno - 1]
        if not text.isascii():
            return len(text.encode("utf-8")[:byte_col].decode("utf-8", "replace"))
    return byte_col


def may_match_project(source: str) -> bool:
    """With project summaries a loss can consume a model defined elsewhere: a file needs
    only a loss or a log/exp call."""
    return may_match(source) or any(
        w in source for w in ("ross", "BCE", "binary_", "nll", "NLL", "log(", "compile(")
    )


def _squash_text(source: str, tree: ast.Module | None = None) -> bool:
    """Whether the module can export something a summary records: a sigmoid/softmax, or
    a one-line helper (a top-level function that returns a call) around log/exp."""
    if "igmoid" in source or "oftmax" in source or "expit" in source:
        return True
    if "log(" not in source and "exp(" not in source:
        return False
    if tree is None:
        return True
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and len(stmt.body) <= 3:
            last = stmt.body[-1]
            if isinstance(last, ast.Return) and isinstance(last.value, ast.Call):
                return True
    return False


def check_tree(
    tree: ast.Module, project: object = None, path: str = "", analysis: ModuleAnalysis | None = None
) -> list[Pending]:
    """Run every rule on a parsed module; positions are ``ast``'s (byte columns)."""
    ana = analysis or ModuleAnalysis(tree)
    ana.project = project
    ana.path = path
    ctx = Context(ana)
    try:
        for prepare in PREPARE:
            prepare(ctx)
        for rule in RULES:
            rule.check(ctx)
    finally:
        if analysis is None:
            ana.release()  # ours: freed now, not by the next collection
    return ctx.findings


def _suppressed(line_text: str, code: str) -> bool:
    match = _NOQA.search(line_text)
    if match is None:
        return False
    codes = match.group("codes")
    if not codes:
        return True
    return code.upper() in {c.upper() for c in re.split(r"[\s,]+", codes) if c}


def lint_source(
    source: str, path: str = "<string>", options: Options | None = None, project: object = None
) -> list[Finding]:
    """Lint Python source text; return findings sorted by position.

    ``project`` (a :class:`~logitlab.lint._project.Project`) lets values come from other
    files of the project; without it each file stands alone (the flake8 plugin).
    """
    return _lint_source(source, path, options, project)[0]


def _lint_source(
    source: str,
    path: str = "<string>",
    options: Options | None = None,
    project: object = None,
    summarize: bool = False,
) -> tuple[list[Finding], dict[str, object] | None]:
    """Findings, and with ``summarize`` the module's summary for the project pass."""
    # The collector would walk the young syntax tree again and again while it is built
    # (a sixth of the parse time); the tree has no cycles and is freed by reference
    # counting, so collection waits until the file is done.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _lint_source_now(source, path, options, project, summarize)
    finally:
        if enabled:
            gc.enable()


def _lint_source_now(
    source: str,
    path: str,
    options: Options | None,
    project: object,
    summarize: bool,
    keep: list[ast.Module] | None = None,
) -> tuple[list[Finding], dict[str, object] | None]:
    """``keep``: a list the parsed tree is appended to (the fixer reuses it)."""
    options = options or Options()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings are the compiler's business
            tree = ast.parse(source, filename=path)
        if keep is not None:
            keep.append(tree)
    except (SyntaxError, ValueError) as err:
        lineno = getattr(err, "lineno", None) or 1
        offset = getattr(err, "offset", None) or 1
        msg = getattr(err, "msg", None) or str(err)
        finding = Finding(
            path, lineno, max(offset - 1, 0), lineno, offset, "LGL900", f"syntax error: {msg}"
        )
        return ([finding] if "LGL900" in options.select else []), None
    except RecursionError:
        finding = Finding(path, 1, 0, 1, 0, "LGL900", "syntax error: too deeply nested to parse")
        return ([finding] if "LGL900" in options.select else []), None
    summary = None
    analysis = None
    if summarize:
        from logitlab.lint._project import import_summary

        summary = import_summary(tree)
        if _squash_text(source, tree):
            try:
                analysis = ModuleAnalysis(tree)
                analysis.path = path
                summary.update(analysis.summary())
                summary["aliases"] = import_summary(tree)["aliases"]
            except RecursionError:
                analysis = None
    in_project = may_match_project(source) if (project is not None or summary) else False
    if summary is not None and not in_project:
        summary["settled"] = True  # nothing another file could add: no second pass
    matches = in_project if project is not None else may_match(source)
    guess = summary is not None and in_project and bool(summary["imports"])
    findings: list[Finding] = []
    if matches:
        if analysis is None and guess:
            analysis = ModuleAnalysis(tree)  # one walk for both runs of the rules
        findings = findings_from_tree(tree, source, path, options, True, project, analysis)
    if guess:
        assert summary is not None
        analysis = _guess(summary, tree, source, path, options, analysis)
    if analysis is not None:
        analysis.release()
    return findings, summary


def _guess(
    summary: dict[str, object],
    tree: ast.Module,
    source: str,
    path: str,
    options: Options,
    analysis: ModuleAnalysis | None,
) -> ModuleAnalysis | None:
    """The findings a second pass would make if the other files export nothing this
    file asks about (``summary["guess"]``), and what it asked (``summary["asked"]``):
    the engine checks the answers against the real project and reads the file again
    only when one differs."""
    from logitlab.lint._project import Recorder

    recorder = Recorder()
    try:
        if analysis is None:
            analysis = ModuleAnalysis(tree)
        else:
            analysis.forget_values()
        pending = check_tree(tree, recorder, path, analysis)
    except Exception:  # RecursionError or a rule's crash: the second pass decides
        return analysis
    summary["guess"] = _findings(pending, source, path, options, True)
    summary["asked"] = sorted(recorder.asked, key=repr)
    return analysis


def lint_keeping_tree(
    source: str, path: str, options: Options
) -> tuple[list[Finding], ast.Module | None]:
    """:func:`lint_source`, and the parsed tree (None on a syntax error) for the fixer;
    the caller pauses the collector."""
    keep: list[ast.Module] = []
    findings = _lint_source_now(source, path, options, None, False, keep)[0]
    return findings, (keep[0] if keep else None)


def findings_from_tree(
    tree: ast.Module,
    source: str,
    path: str,
    options: Options,
    noqa: bool = True,
    project: object = None,
    analysis: ModuleAnalysis | None = None,
) -> list[Finding]:
    try:
        pending = check_tree(tree, project, path, analysis)
    except RecursionError:
        return []
    return _findings(pending, source, path, options, noqa)


def _findings(
    pending: list[Pending], source: str, path: str, options: Options, noqa: bool
) -> list[Finding]:
    if not pending:
        return []
    lines = source.splitlines()
    out: list[Finding] = []
    seen: set[tuple[str, int, int]] = set()
    for p in pending:
        if p.code not in options.select:
            continue
        node = p.node
        lineno: int = node.lineno  # type: ignore[attr-defined]
        col: int = node.col_offset  # type: ignore[attr-defined]
        end_line: int = node.end_lineno or lineno  # type: ignore[attr-defined]
        end_col: int = node.end_col_offset or col  # type: ignore[attr-defined]
        key = (p.code, lineno, col)
        if key in seen:
            continue
        seen.add(key)
        if (
            noqa
            and 0 < lineno <= len(lines)
            and "noqa" in lines[lineno - 1].lower()
            and _suppressed(lines[lineno - 1], p.code)
        ):
            continue
        out.append(
            Finding(
                path,
                lineno,
                _char_col(lines, lineno, col),
                end_line,
                _char_col(lines, end_line, end_col),
                p.code,
                p.message,
                p.fix,
            )
        )
    out.sort(key=lambda f: (f.line, f.col, f.code))
    return out


def decode_source(data: bytes) -> str:
    """Decode like the interpreter does (BOM, coding cookie, default UTF-8)."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def read_source(path: str, options: Options) -> tuple[str | None, Finding | None]:
    """The text of a file, or a LGL901/LGL902 finding saying why there is none."""
    try:
        st = os.stat(path)
    except OSError as err:
        return None, Finding(path, 1, 0, 1, 0, "LGL901", f"cannot read file: {err.strerror or err}")
    if not os.path.isfile(path):
        return None, Finding(path, 1, 0, 1, 0, "LGL902", "skipped: not a regular file")
    if st.st_size > options.max_file_bytes:
        return None, Finding(
            path,
            1,
            0,
            1,
            0,
            "LGL902",
            f"skipped: {st.st_size} bytes is over the {options.max_file_bytes}-byte limit",
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        return None, Finding(path, 1, 0, 1, 0, "LGL901", f"cannot read file: {err.strerror or err}")
    try:
        return decode_source(data), None
    except (UnicodeDecodeError, SyntaxError, LookupError) as err:
        reason = err.reason if isinstance(err, UnicodeDecodeError) else str(err)
        return None, Finding(path, 1, 0, 1, 0, "LGL901", f"cannot decode file: {reason}")


def lint_file(path: str, options: Options) -> list[Finding]:
    return _lint_file(path, options)[0]


def _lint_file(
    path: str, options: Options, project: object = None, summarize: bool = False
) -> tuple[list[Finding], dict[str, object] | None]:
    options = options.for_path(path)
    source, problem = read_source(path, options)
    if problem is not None:
        return ([problem] if problem.code in options.select else []), None
    assert source is not None
    return _lint_source(source, path, options, project, summarize)


def _excluded(name: str, rel: str, patterns: tuple[str, ...]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def discover(paths: Iterable[str], options: Options) -> Iterator[tuple[str, Finding | None]]:
    """Python files under ``paths``; explicit files are always linted.

    Yields (path, None) for each file and (path, finding) for directories that cannot be
    walked (a symlink loop, permission denied).
    """
    for root in paths:
        if not os.path.isdir(root):
            yield root, None
            continue
        # A loop is a directory reached again below itself (a symlink to an ancestor);
        # one reached twice side by side (a sibling symlink) is linted once, silently.
        seen: set[str] = set()
        stack: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
        while stack:
            current, ancestors = stack.pop()
            real = os.path.realpath(current)
            if real in ancestors:
                yield (
                    current,
                    Finding(
                        current,
                        1,
                        0,
                        1,
                        0,
                        "LGL902",
                        "skipped: symlink loop (a link to a directory above it)",
                    ),
                )
                continue
            if real in seen:
                continue
            seen.add(real)
            below = ancestors | {real}
            try:
                entries = sorted(os.scandir(current), key=lambda e: e.name)
            except OSError as err:
                yield (
                    current,
                    Finding(
                        current, 1, 0, 1, 0, "LGL901", f"cannot list directory: {err.strerror}"
                    ),
                )
                continue
            subdirs = []
            for entry in entries:
                if options.exclude and _excluded(
                    entry.name, os.path.relpath(entry.path, root), options.exclude
                ):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if entry.name in DEFAULT_EXCLUDE or entry.name.endswith(".egg-info"):
                        continue
                    subdirs.append(entry.path)
                elif entry.name.endswith(".py") or entry.name.endswith(".pyi"):
                    if entry.is_symlink() and not os.path.exists(entry.path):
                        yield (
                            entry.path,
                            Finding(
                                entry.path, 1, 0, 1, 0, "LGL901", "cannot read file: broken symlink"
                            ),
                        )
                        continue
                    yield entry.path, None
            stack.extend((d, below) for d in reversed(subdirs))


#: where the first pass keeps its results, relative to the current directory
CACHE_DIR = ".logitlab_cache"


#: bounds on :data:`CACHE_DIR`: entries, bytes, and days since an entry was last used
CACHE_MAX_ENTRIES = 20_000
CACHE_MAX_BYTES = 256 * 1024 * 1024
CACHE_MAX_AGE_DAYS = 30


class Cache:
    """First-pass results (findings and summary) by file content, path, options and
    logitlab version, one pickle per file; writes are atomic (a temporary file renamed
    over the entry), so concurrent runs never read a half-written entry.

    An entry's modification time is when it was last used (a hit touches it); after a
    run that wrote entries, :meth:`evict` removes the least recently used ones beyond
    :data:`CACHE_MAX_ENTRIES` or :data:`CACHE_MAX_BYTES`, and those unused for
    :data:`CACHE_MAX_AGE_DAYS`."""

    def __init__(self, directory: str, options: Options) -> None:
        from logitlab._version import __version__

        self.directory = directory
        self.max_entries = CACHE_MAX_ENTRIES
        self.max_bytes = CACHE_MAX_BYTES
        self.max_age_s = CACHE_MAX_AGE_DAYS * 86400.0
        self.salt = repr(
            (
                __version__,
                sorted(options.select),
                options.max_file_bytes,
                options.per_file_ignores,
            )
        ).encode()

    def key(self, path: str, source: str) -> str:
        import hashlib

        h = hashlib.sha256(self.salt)
        h.update(path.encode("utf-8", "surrogatepass") + b"\0")
        h.update(source.encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def get(self, key: str) -> Any:
        import pickle

        entry = os.path.join(self.directory, key)
        try:
            with open(entry, "rb") as fh:
                value = pickle.load(fh)
        except Exception:  # missing, unreadable or from an incompatible run: a miss
            return None
        with contextlib.suppress(OSError):
            os.utime(entry)  # used now: kept by the eviction
        return value

    def stamp(self) -> int | None:
        """The directory's modification time: it changes when an entry is written."""
        try:
            return os.stat(self.directory).st_mtime_ns
        except OSError:
            return None

    def evict(self, now: float | None = None) -> int:
        """Remove old entries (see the class); return how many were removed."""
        import time

        now = time.time() if now is None else now
        entries: list[tuple[float, int, str]] = []
        removed = 0
        try:
            scan = list(os.scandir(self.directory))
        except OSError:
            return 0
        for entry in scan:
            name = entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            stale_tmp = name.startswith(".tmp-") and now - st.st_mtime > 3600
            if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                if now - st.st_mtime <= self.max_age_s:
                    entries.append((st.st_mtime, st.st_size, entry.path))
                    continue
            elif not stale_tmp:
                continue  # .gitignore, a write in progress, anything not ours
            try:
                os.remove(entry.path)
                removed += 1
            except OSError:
                pass
        entries.sort(reverse=True)  # most recently used first
        total = kept = 0
        for _, size, path in entries:
            if kept < self.max_entries and total + size <= self.max_bytes:
                kept += 1
                total += size
                continue
            try:
                os.remove(path)
                removed += 1
            except OSError:
                pass
        return removed

    def put(self, key: str, value: object) -> None:
        import pickle
        import tempfile

        try:
            if not os.path.isdir(self.directory):
                os.makedirs(self.directory, exist_ok=True)
                with open(os.path.join(self.directory, ".gitignore"), "w") as fh:
                    fh.write("# written by logitlab lint\n*\n")
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, os.path.join(self.directory, key))
        except OSError:
            pass  # a read-only tree: lint without caching


def _lint_one(
    args: tuple[str, tuple[Options, Cache | None]],
) -> tuple[list[Finding], dict[str, object] | None]:
    """First pass: lint the file alone and summarise it for the project (from the cache
    when the file, the options and logitlab are unchanged)."""
    path, (options, cache) = args
    try:
        if cache is None:
            return _lint_file(path, options, summarize=True)
        opts = options.for_path(path)
        source, problem = read_source(path, opts)
        if problem is not None:
            return ([problem] if problem.code in opts.select else []), None
        assert source is not None
        key = cache.key(path, source)
        hit = cache.get(key)
        if hit is not None:
            return hit
        result = _lint_source(source, path, opts, None, True)
        cache.put(key, result)
        return result
    except Exception as err:  # a crash on one file must not stop the run
        crash = Finding(path, 1, 0, 1, 0, "LGL901", f"internal error while linting: {err!r}")
        return [crash], None


#: the project of the current run, set in each worker of the second pass
_PROJECT: object = None


def _set_project(project: object) -> None:
    global _PROJECT
    _PROJECT = project


def _relint(args: tuple[str, Options]) -> tuple[list[Finding], dict[str, object] | None]:
    """Second pass: lint again with the other files' summaries."""
    path, options = args
    try:
        return _lint_file(path, options, project=_PROJECT)[0], None
    except Exception:  # keep the first pass's findings
        return [], {"failed": True}


def lint_paths(
    paths: Iterable[str],
    options: Options | None = None,
    jobs: int = 0,
    cache: bool | str = False,
) -> list[Finding]:
    """Lint files and directories, spreading files over processes when there are many.

    ``cache``: True for :data:`CACHE_DIR`, or a directory; the first pass is then skipped
    for files whose content (and the options and logitlab version) are unchanged.
    """
    options = options or Options()
    files: list[str] = []
    findings: list[Finding] = []
    seen: set[str] = set()
    for path, problem in discover(paths, options):
        if problem is None:
            if path not in seen:
                seen.add(path)
                files.append(path)
        elif problem.code in options.select:
            findings.append(problem)
    store = None
    if cache:
        store = Cache(CACHE_DIR if cache is True else str(cache), options)
    stamp = None if store is None else store.stamp()
    per_file: dict[str, list[Finding]] = {}
    summaries: dict[str, dict[str, object]] = {}
    asked: dict[str, list[tuple[str, str, str | None]]] = {}
    guesses: dict[str, list[Finding]] = {}
    for path, (chunk, summary) in zip(
        files, map_files(_lint_one, files, (options, store), jobs), strict=True
    ):
        per_file[path] = chunk
        if summary is not None:
            if "asked" in summary:
                summary = dict(summary)
                asked[path] = summary.pop("asked")
                guesses[path] = summary.pop("guess")
            summaries[path] = summary
    if store is not None and store.stamp() != stamp:
        store.evict()  # this run wrote entries: keep the directory bounded
    if len(summaries) > 1:
        from logitlab.lint._project import Project

        project = Project(summaries)
        again = []
        for p in files:
            data = summaries.get(p)
            if data is None or data.get("settled") or not project.imports_project(p):
                continue
            if p in asked and project.agrees(p, asked[p]):
                per_file[p] = guesses[p]  # what reading it again would find
            else:
                again.append(p)
        # the project reaches the workers through the pool's initializer: inherited
        # memory is not enough under the spawn and forkserver start methods
        for path, (chunk, failed) in zip(
            again,
            map_files(_relint, again, options, jobs, _set_project, (project,)),
            strict=True,
        ):
            if not failed:
                per_file[path] = chunk
        _refuse_cross_file(per_file, files, project, options)
    for chunk in per_file.values():
        findings.extend(chunk)
    findings.sort(key=lambda f: (f.path, f.line, f.col, f.code))
    return findings


def refused_removals(
    paths: Iterable[str], options: Options, jobs: int = 0, cache: bool | str = False
) -> dict[str, list[str]]:
    """Files whose fixes removing a model's final activation the project refuses, with
    the uses in other files that block them (for ``--fix --unsafe-fixes``, which fixes
    file by file)."""
    out: dict[str, list[str]] = {}
    marker = removal_blocked_note([])
    for f in lint_paths(paths, options, jobs, cache):
        if f.fix is None and marker in f.message:
            uses = f.message.split(marker, 1)[1].split(", ")
            out.setdefault(f.path, [])
            out[f.path] = sorted(set(out[f.path]) | set(uses))
    return out


def removal_blocked_note(uses: list[str]) -> str:
    """What a finding whose activation-removing fix is refused says about it."""
    return (
        "; no fix offered: removing the activation would feed logits to the uses of the"
        " model's output in other files: " + ", ".join(uses)
    )


def _refuse_cross_file(
    per_file: dict[str, list[Finding]], files: list[str], project: Any, options: Options
) -> None:
    """Drop the fixes that remove a model's final activation when another file of the
    project uses that model's output (those uses would get logits), and say which."""
    wanted: dict[str, set[int]] = {}
    for path, chunk in per_file.items():
        for f in chunk:
            if f.fix is not None and f.fix.removes is not None:
                wanted.setdefault(path, set()).add(f.fix.removes)
    if not wanted:
        return
    uses = external_model_uses(wanted, files, project, options)
    for path in wanted:
        out = []
        for f in per_file[path]:
            removes = None if f.fix is None else f.fix.removes
            found = None if removes is None else uses.get((path, removes))
            if found:
                f = Finding(
                    f.path,
                    f.line,
                    f.col,
                    f.end_line,
                    f.end_col,
                    f.code,
                    f.message + removal_blocked_note(found),
                    None,
                )
            out.append(f)
        per_file[path] = out


def external_model_uses(
    wanted: dict[str, set[int]], files: list[str], project: Any, options: Options
) -> dict[tuple[str, int], list[str]]:
    """For each (file, line of a model's final activation): the calls of that model in
    the project's other files, as ``path:line``. Only files importing one of those
    files are read."""
    from logitlab.lint._analysis import Scope

    ana_stub = ModuleAnalysis.__new__(ModuleAnalysis)
    found: dict[tuple[str, int], list[str]] = {}
    for other in files:
        data = project.summaries.get(other)
        if not data:
            continue
        ana_stub.path = other
        targets = set()
        for qual in data.get("imports", ()):
            hit = project._split(ana_stub, project._absolute(ana_stub, qual))
            if hit is not None and hit[0] in wanted and hit[0] != other:
                targets.add(hit[0])
        if not targets:
            continue
        source, problem = read_source(other, options)
        if source is None or problem is not None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(source, filename=other)
            ana = ModuleAnalysis(tree)
        except (SyntaxError, ValueError, RecursionError):
            continue
        ana.project = project
        ana.path = other
        try:
            for call, scope in ana.calls:
                assert isinstance(scope, Scope)
                v = ana.value(call, scope)
                if (
                    v is None
                    or v.via != "model"
                    or v.kind not in ("sigmoid", "softmax")
                    or v.path not in targets
                ):
                    continue
                at = getattr(v.origin, "lineno", 0)
                if at in wanted[v.path]:
                    rel = os.path.relpath(other, os.path.dirname(v.path))
                    found.setdefault((v.path, at), []).append(f"{rel}:{call.lineno}")
        except RecursionError:
            pass
        finally:
            ana.release()
    return {
        k: sorted(set(v), key=lambda u: (u.rsplit(":", 1)[0], int(u.rsplit(":", 1)[1])))
        for k, v in found.items()
    }


def map_files(
    fn: object,
    files: list[str],
    options: object,
    jobs: int = 0,
    initializer: Any = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[Any]:
    """Apply ``fn((path, options))`` to each file, in a process pool when it pays off;
    ``initializer(*initargs)`` runs first in each process (and here when sequential)."""
    jobs = jobs or (os.cpu_count() or 1)
    if jobs <= 1 or len(files) < 64:
        if initializer is not None:
            initializer(*initargs)
        try:
            for path in files:
                yield fn((path, options))  # type: ignore[operator]
        finally:
            if initializer is not None:
                initializer(*(None for _ in initargs))
        return
    import multiprocessing

    method = os.environ.get("LOGITLAB_START_METHOD") or (
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    ctx = multiprocessing.get_context(method)
    chunksize = max(1, min(64, len(files) // (jobs * 8)))
    with ctx.Pool(jobs, initializer, initargs) as pool:
        yield from pool.imap(fn, [(p, options) for p in files], chunksize)  # type: ignore[arg-type]
