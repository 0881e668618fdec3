"""Benchmark ``logitlab lint`` against bare ``ast.parse`` on a large tree of real Python.

Prints files/s and the ratio lint time / parse time for the same files in the same
process (sequential, then spread over all cores), and the cold start of the CLI on one
small file. Default tree: the installed site-packages.

    python benchmarks/bench_lint.py [--root DIR] [--max-files N] [--jobs N] [--fix-mb MB]

The fix section times ``--diff`` work (fix_source + unified_diff) on a generated large
file (default 9 MB, one fixable function in ten) and on the corpus, against lint time
(targets: corpus fix time <= 5x lint time, no file over 2 s).
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from multiprocessing import get_all_start_methods, get_context

from logitlab.lint._engine import Options, decode_source, lint_file, lint_paths, lint_source

OPTIONS = Options()

TARGET_RATIO = 1.2
TARGET_COLD_START_S = 0.3
TARGET_FIX_RATIO = 5.0
TARGET_FIX_FILE_S = 2.0


def collect(root: str, max_files: int) -> list[str]:
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".py"):
                files.append(os.path.join(dirpath, name))
                if len(files) >= max_files:
                    return files
    return files


def load(files: list[str]) -> list[tuple[str, str]]:
    out = []
    for path in files:
        try:
            with open(path, "rb") as fh:
                out.append((path, decode_source(fh.read())))
        except (OSError, UnicodeDecodeError, SyntaxError, LookupError):
            continue
    return out


def parse_only(item: tuple[str, str]) -> int:
    path, source = item
    try:
        ast.parse(source, filename=path)
    except (SyntaxError, ValueError, RecursionError):
        return 0
    return 1


def interleaved(items: list[tuple[str, str]], repeats: int) -> tuple[float, float, int]:
    """Parse and lint each file back to back, so load from elsewhere hits both alike."""
    t_parse = t_lint = 0.0
    findings = 0
    clock = time.perf_counter
    for _ in range(repeats):
        for path, source in items:
            t0 = clock()
            parse_only((path, source))
            t1 = clock()
            findings += len(lint_source(source, path))
            t_lint += clock() - t1
            t_parse += t1 - t0
    return t_parse / repeats, t_lint / repeats, findings // repeats


def read_and_parse(path: str) -> int:
    with open(path, "rb") as fh:
        return parse_only((path, decode_source(fh.read())))


def read_and_lint(path: str) -> int:
    return len(lint_file(path, OPTIONS))


def pooled(pool: object, fn: object, paths: list[str]) -> float:
    start = time.perf_counter()
    for _ in pool.imap_unordered(fn, paths, chunksize=16):  # type: ignore[attr-defined]
        pass
    return time.perf_counter() - start


def cold_start(command: list[str], repeats: int = 7) -> float:
    """Median wall time of ``command small.py``; bytecode is written and one warm-up run
    goes first, as for an installed package (PYTHONDONTWRITEBYTECODE would time the
    compiler instead)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "small.py")
        with open(path, "w") as fh:
            fh.write("import torch\n\ndef f(x):\n    return torch.sigmoid(x)\n")
        args = [*command, path] if command[-1] == "lint" else command
        subprocess.run(args, check=False, capture_output=True, env=env, cwd=tmp)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(args, check=False, capture_output=True, env=env, cwd=tmp)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


LINT_ONLY_APP = (
    "import typer, sys; from logitlab.lint.cli import register; app = typer.Typer();"
    " register(app); app.command('x')(lambda: None); app(sys.argv[1:])"
)


PLAIN = """
def plain_{i}(x, y):
    total = 0
    for k in range(10):
        total += x * k + y
    return {{"value": total, "name": "plain_{i}"}}
"""
FIXABLE = """
def loss_{i}(x, y, logits):
    a = torch.log(torch.sigmoid(x))
    b = F.binary_cross_entropy(torch.sigmoid(logits), y)
    return a + b
"""


def generated(megabytes: float) -> str:
    """A large module: plain functions with a fixable one (two fixes) in every ten."""
    head = "import torch\nimport torch.nn.functional as F\n"
    out, size, i = [head], len(head), 0
    while size < megabytes * 1e6:
        text = (FIXABLE if i % 10 == 0 else PLAIN).format(i=i)
        out.append(text)
        size += len(text)
        i += 1
    return "".join(out)


def fix_section(items: list[tuple[str, str]], megabytes: float) -> None:
    from logitlab.lint._fixes import fix_source, unified_diff

    big = generated(megabytes)
    start = time.perf_counter()
    lint_source(big, "big.py")
    t_lint = time.perf_counter() - start
    start = time.perf_counter()
    result = fix_source(big, "big.py")
    diff = unified_diff("big.py", big, result.source)
    t_fix = time.perf_counter() - start
    print(
        f"fix, generated file {len(big) / 1e6:.1f} MB: lint {t_lint:.2f} s; fix + diff"
        f" {t_fix:.2f} s ({len(result.fixed)} fixes, {len(diff) / 1e6:.1f} MB diff)"
    )
    t_lint = t_fix = worst = 0.0
    worst_path = ""
    for path, source in items:
        t0 = time.perf_counter()
        lint_source(source, path)
        t1 = time.perf_counter()
        result = fix_source(source, path)
        if result.changed:
            unified_diff(path, source, result.source)
        t2 = time.perf_counter()
        t_lint += t1 - t0
        t_fix += t2 - t1
        if t2 - t1 > worst:
            worst, worst_path = t2 - t1, path
    print(
        f"fix, corpus: lint {t_lint:.2f} s; fix + diff {t_fix:.2f} s; ratio"
        f" {t_fix / t_lint:.2f}x (target <= {TARGET_FIX_RATIO}x); slowest file {worst:.2f} s"
        f" (target <= {TARGET_FIX_FILE_S} s) {worst_path}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"])
    parser.add_argument("--max-files", type=int, default=6000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fix-mb", type=float, default=9.0, help="generated file for --fix")
    parser.add_argument("--no-fix", action="store_true", help="skip the fix section")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # SyntaxWarnings from invalid escapes in third-party code

    paths = collect(args.root, args.max_files)
    items = load(paths)
    size_mb = sum(len(s) for _, s in items) / 1e6
    print(f"tree: {args.root}")
    print(f"files: {len(items)} ({size_mb:.1f} MB of source), cores used: {args.jobs}")

    t_parse, t_lint, findings = interleaved(items, args.repeats)
    n = len(items)
    print(
        f"one process, in memory: ast.parse {n / t_parse:6.0f} files/s ({t_parse:.2f} s);"
        f" lint {n / t_lint:6.0f} files/s ({t_lint:.2f} s, {findings} findings);"
        f" ratio {t_lint / t_parse:.2f}x (target <= {TARGET_RATIO}x)"
    )
    method = "fork" if "fork" in get_all_start_methods() else None
    with get_context(method).Pool(args.jobs) as pool:
        pooled(pool, read_and_parse, paths[: args.jobs * 16])  # warm the workers
        p_parse = p_lint = float("inf")
        for _ in range(args.repeats + 1):  # alternate, keep the best of each
            p_parse = min(p_parse, pooled(pool, read_and_parse, paths))
            p_lint = min(p_lint, pooled(pool, read_and_lint, paths))
    print(
        f"{args.jobs} processes, from disk: read+parse {len(paths) / p_parse:6.0f} files/s"
        f" ({p_parse:.2f} s); read+lint {len(paths) / p_lint:6.0f} files/s ({p_lint:.2f} s);"
        f" ratio {p_lint / p_parse:.2f}x"
    )
    # The target: the whole lint (discovery, both passes, pool start, results) with
    # --jobs workers against one process reading and parsing the same files; runs
    # alternate, best of each, so load from elsewhere hits both alike.
    one = e2e = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = os.path.join(tmp, "cache")
        for _ in range(args.repeats + 1):
            start = time.perf_counter()
            for path in paths:
                read_and_parse(path)
            one = min(one, time.perf_counter() - start)
            start = time.perf_counter()
            lint_paths(paths, OPTIONS, jobs=args.jobs)
            e2e = min(e2e, time.perf_counter() - start)
        start = time.perf_counter()
        lint_paths(paths, OPTIONS, jobs=args.jobs, cache=cache_dir)  # writes the cache
        cold_cache = time.perf_counter() - start
        start = time.perf_counter()
        lint_paths(paths, OPTIONS, jobs=args.jobs, cache=cache_dir)
        warm_cache = time.perf_counter() - start
    print(
        f"end to end, lint_paths with {args.jobs} processes: {e2e:.2f} s"
        f" ({len(paths) / e2e:6.0f} files/s); one process read+parse {one:.2f} s;"
        f" ratio {e2e / one:.2f}x (target <= {TARGET_RATIO}x); with the cache: writing it"
        f" {cold_cache / one:.2f}x, reading it {warm_cache / one:.2f}x"
    )
    print(f"(cpu: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    if not args.no_fix:
        fix_section(items, args.fix_mb)
    main_cmd = [sys.executable, "-c", "from logitlab.cli import main; main()"]
    bare = cold_start([sys.executable, "-c", "pass"])
    full = cold_start([*main_cmd, "lint"])
    version = cold_start([*main_cmd, "--version"])
    alone = cold_start([sys.executable, "-c", LINT_ONLY_APP, "lint"])
    print(
        f"cold start, one small file: logitlab lint {full:.3f} s ({full / bare:.1f}x python -c"
        f" pass, {bare:.3f} s; target < {TARGET_COLD_START_S} s); logitlab --version (the"
        f" Typer app) {version:.3f} s; lint as a Typer app of its own {alone:.3f} s"
    )


if __name__ == "__main__":
    main()
