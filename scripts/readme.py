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
marks commands that take more than a few seconds; ``--fast`` leaves them out.  Commands
run with ``bash -c`` from the repository root, piped, at a fixed width of 100 columns, so
the output is what a user sees when piping.

Usage: ``python scripts/readme.py`` rewrites README.md; ``--check`` exits 1 and shows a diff
when README.md differs from what the code prints now.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WIDTH = 100
MARKER = re.compile(
    r"<!-- (?P<kind>output|markdown)(?P<slow> slow)?: (?P<command>.+?) -->\n"
    r"(?P<body>.*?)"
    r"<!-- /(?P=kind) -->",
    re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    kind: str
    slow: bool
    command: str
    body: str
    start: int
    end: int


def blocks(text: str) -> list[Block]:
    return [
        Block(m["kind"], bool(m["slow"]), m["command"], m["body"], m.start(), m.end())
        for m in MARKER.finditer(text)
    ]


def run(command: str) -> str:
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
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
    head = f"<!-- {block.kind}{' slow' if block.slow else ''}: {block.command} -->\n"
    fence = f"```console\n$ {block.command}\n{output}```\n"
    body = output if block.kind == "markdown" else fence
    return f"{head}{body}<!-- /{block.kind} -->"


def regenerate(text: str, fast: bool = False) -> str:
    out, last = [], 0
    for b in blocks(text):
        out.append(text[last : b.start])
        if fast and b.slow:
            out.append(text[b.start : b.end])
        else:
            out.append(render(b, run(b.command)))
        last = b.end
    out.append(text[last:])
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    parser.add_argument("--fast", action="store_true", help="leave out the slow commands")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = regenerate(text, fast=args.fast)
    if args.check:
        if new != text:
            diff = difflib.unified_diff(
                text.splitlines(True), new.splitlines(True), "README.md", "what the code prints"
            )
            sys.stdout.writelines(diff)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
