"""Regenerate (or check) every console output pasted in README.md from a real run.

Each output in the README sits between two markers::

    <!-- output: logitlab compare --logits 20 20 -->
    ```console
    $ logitlab compare --logits 20 20
    ...what it printed...
    ```
    <!-- /output -->

``output`` pastes the command and what it printed as a console block; ``markdown`` pastes
what it printed as it is (a Markdown table).  ``slow`` after the kind (``output slow:``)
marks commands that take more than a few seconds; ``--fast`` leaves them out.  ``server``
(``output slow server:``) runs the command while ``logitlab explore`` serves on its
default port (started first, stopped after), for the API examples.  ``timing``
(``markdown slow timing:``) marks a benchmark's table: its times and ratios change from run
to run, so the check compares everything else (the rows, the columns, every word) and treats
each number as a placeholder; regenerating pastes the numbers of a real run.  Commands
run with ``bash -c`` from the repository root, piped, at a fixed width of 100 columns, so
the output is what a user sees when piping, and with each numerical library held to its
AVX2 kernels (``PINNED_KERNELS``), so that a CPU with AVX-512 prints the same digits.

Usage: ``python scripts/readme.py`` rewrites README.md; ``--check`` exits 1 and shows a diff
when README.md differs from what the code prints now.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WIDTH = 100
MARKER = re.compile(
    r"<!-- (?P<kind>output|markdown)(?P<slow> slow)?(?P<server> server)?(?P<timing> timing)?: "
    r"(?P<command>.+?) -->\n"
    r"(?P<body>.*?)"
    r"<!-- /(?P=kind) -->",
    re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    kind: str
    slow: bool
    command: str
    server: bool
    body: str
    start: int
    end: int
    timing: bool = False


def blocks(text: str) -> list[Block]:
    return [
        Block(
            m["kind"],
            bool(m["slow"]),
            m["command"],
            bool(m["server"]),
            m["body"],
            m.start(),
            m.end(),
            bool(m["timing"]),
        )
        for m in MARKER.finditer(text)
    ]


# Each numerical library picks its vector kernels when it starts, by what the CPU has:
# torch's elementwise kernels (AVX2 or AVX-512), MKL's and oneDNN's matrix products,
# NumPy's and OpenBLAS's loops, XLA's code.  They round differently, so on a CPU with
# AVX-512 some of the outputs differ in their last digits (CI once printed 12.6% where the
# README had 12.7%, and a training loss of 4.90297e-05 for 4.90295e-05).  The outputs are made
# and checked with every library held to its AVX2 kernels, which any x86-64 machine CI runs on
# has, and with CI's two threads, since a parallel sum's order depends on the thread count.
# MKL's AVX2 setting is its reproducible mode (the same results on any CPU with AVX2); a
# library that does not know a setting ignores it.
PINNED_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512_SKX",
    "OPENBLAS_CORETYPE": "Haswell",
    "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
    "OMP_NUM_THREADS": "2",
}


def _env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    env.update(PINNED_KERNELS)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@contextlib.contextmanager
def explore_server(port: int = 8765) -> Iterator[None]:
    """``logitlab explore`` on loopback for the duration of the block."""
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("logitlab")), "explore", "--port", str(port)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("logitlab explore did not start") from None
                time.sleep(0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(command: str, server: bool = False) -> str:
    if server:
        with explore_server():
            return run(command)
    env = _env()
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode not in (0, 1):  # lint exits 1 when it finds something
        raise RuntimeError(f"{command!r} exited {done.returncode}:\n{done.stderr}")
    return done.stdout.rstrip("\n") + "\n"


def render(block: Block, output: str) -> str:
    flags = (
        (" slow" if block.slow else "")
        + (" server" if block.server else "")
        + (" timing" if block.timing else "")
    )
    head = f"<!-- {block.kind}{flags}: {block.command} -->\n"
    fence = f"```console\n$ {block.command}\n{output}```\n"
    body = output if block.kind == "markdown" else fence
    return f"{head}{body}<!-- /{block.kind} -->"


_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def comparable(block: Block, rendered: str) -> str:
    """What the check compares: the block as rendered, with a timing block's numbers masked."""
    return _NUMBER.sub("#", rendered) if block.timing else rendered


def stale(text: str, fast: bool = False) -> list[Block]:
    """The blocks of ``text`` whose pasted output differs from what the code prints now."""
    out = []
    for b in blocks(text):
        if fast and b.slow:
            continue
        now = render(b, run(b.command, b.server))
        if comparable(b, text[b.start : b.end]) != comparable(b, now):
            out.append(b)
    return out


def regenerate(text: str, fast: bool = False, keep_timing: bool = False) -> str:
    out, last = [], 0
    for b in blocks(text):
        out.append(text[last : b.start])
        if (fast and b.slow) or (keep_timing and b.timing):
            out.append(text[b.start : b.end])
        else:
            out.append(render(b, run(b.command, b.server)))
        last = b.end
    out.append(text[last:])
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    parser.add_argument("--fast", action="store_true", help="leave out the slow commands")
    parser.add_argument(
        "--keep-timing",
        action="store_true",
        help="leave the benchmark tables as they are (the prose quotes their numbers)",
    )
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    if args.check:
        if stale(text, fast=args.fast):
            new = regenerate(text, fast=args.fast)
            diff = difflib.unified_diff(
                text.splitlines(True), new.splitlines(True), "README.md", "what the code prints"
            )
            sys.stdout.writelines(diff)
            return 1
        return 0
    new = regenerate(text, fast=args.fast, keep_timing=args.keep_timing)
    part = README.with_name(README.name + ".part")
    part.write_text(new, encoding="utf-8")
    part.replace(README)  # all at once: an interrupted run leaves README.md as it was
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
