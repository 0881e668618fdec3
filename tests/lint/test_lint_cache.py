"""The first-pass cache, and summaries reaching the workers under every start method."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from logitlab.lint import _engine
from logitlab.lint._codes import CODES
from logitlab.lint._engine import Options, lint_paths

ALL = Options(select=frozenset(c.code for c in CODES))
FIXTURES = Path(__file__).parent / "fixtures"


def _project(tmp_path: Path, fillers: int = 0) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "crossfile", root)
    for i in range(fillers):
        (root / f"filler_{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    return root


def _keys(found: list[object]) -> set[tuple[str, int, str]]:
    return {(Path(f.path).name, f.line, f.code) for f in found}  # type: ignore[attr-defined]


def test_second_run_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    cache = tmp_path / "cache"
    first = lint_paths([str(root)], ALL, jobs=1, cache=str(cache))
    assert (cache / ".gitignore").exists() and len(list(cache.iterdir())) > 1
    calls = []
    real = _engine._lint_source

    def counting(*args: object, **kwargs: object) -> object:
        if len(args) > 4 and args[4]:  # a first-pass summary
            calls.append(args[1])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_engine, "_lint_source", counting)
    second = lint_paths([str(root)], ALL, jobs=1, cache=str(cache))
    assert _keys(second) == _keys(first)
    assert not calls  # nothing summarised again; the second pass reads files itself
    # a changed file is linted again, the others still come from the cache
    train = root / "pkg" / "train.py"
    train.write_text(train.read_text() + "\n# changed\n")
    lint_paths([str(root)], ALL, jobs=1, cache=str(cache))
    assert calls == [str(train)]


def test_cache_is_keyed_by_options(tmp_path: Path) -> None:
    root = _project(tmp_path)
    cache = str(tmp_path / "cache")
    everything = lint_paths([str(root)], ALL, jobs=1, cache=cache)
    only = Options(select=frozenset({"LGL900"}))
    assert lint_paths([str(root)], only, jobs=1, cache=cache) == []
    assert _keys(lint_paths([str(root)], ALL, jobs=1, cache=cache)) == _keys(everything)


def test_no_cache_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    lint_paths([str(root)], ALL, jobs=1, cache=False)
    assert not (tmp_path / _engine.CACHE_DIR).exists()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_summaries_reach_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    root = _project(tmp_path, fillers=70)  # enough files for a process pool
    alone = _keys(lint_paths([str(root)], ALL, jobs=1))
    monkeypatch.setenv("LOGITLAB_START_METHOD", method)
    pooled = _keys(lint_paths([str(root)], ALL, jobs=2))
    assert pooled == alone
    assert any(name == "train.py" for name, _, _ in alone)  # a cross-file finding


def _entries(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if len(p.name) == 64]


def test_cache_is_bounded_least_recently_used_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    root = tmp_path / "proj"
    root.mkdir()
    for i in range(8):
        (root / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    cache = tmp_path / "cache"
    lint_paths([str(root)], ALL, jobs=1, cache=str(cache))
    assert len(_entries(cache)) == 8
    # every entry last used long ago, but m0's: a run that reads it keeps it
    old = time.time() - 7 * 86400
    for p in _entries(cache):
        os.utime(p, (old, old))
    keep = root / "m0.py"
    lint_paths([str(keep)], ALL, jobs=1, cache=str(cache))  # a hit: touches the entry
    fresh = [p for p in _entries(cache) if p.stat().st_mtime > old + 1]
    assert len(fresh) == 1
    # three new files: the run writes, so it evicts down to five entries
    monkeypatch.setattr(_engine, "CACHE_MAX_ENTRIES", 5)
    for i in range(8, 11):
        (root / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n")
    new = [str(root / f"m{i}.py") for i in range(8, 11)]
    lint_paths([str(keep), *new], ALL, jobs=1, cache=str(cache))
    left = _entries(cache)
    assert len(left) == 5
    assert fresh[0] in left  # the recently used entry stayed
    assert sum(1 for p in left if p.stat().st_mtime > old + 1) == 4  # and the new ones
    assert (cache / ".gitignore").exists()


def test_cache_drops_entries_unused_for_a_month(tmp_path: Path) -> None:
    import os
    import time

    root = _project(tmp_path)
    cache = tmp_path / "cache"
    lint_paths([str(root)], ALL, jobs=1, cache=str(cache))
    n = len(_entries(cache))
    stale = _entries(cache)[0]
    month = time.time() - (_engine.CACHE_MAX_AGE_DAYS + 1) * 86400
    os.utime(stale, (month, month))
    tmp = cache / ".tmp-left-by-a-crash"
    tmp.write_bytes(b"x")
    os.utime(tmp, (month, month))
    store = _engine.Cache(str(cache), ALL)
    assert store.evict() == 2
    assert not stale.exists() and not tmp.exists()
    assert len(_entries(cache)) == n - 1


def test_cache_bounded_in_bytes(tmp_path: Path) -> None:
    root = _project(tmp_path, fillers=6)
    cache = tmp_path / "cache"
    lint_paths([str(root)], ALL, jobs=1, cache=str(cache))
    sizes = sorted(p.stat().st_size for p in _entries(cache))
    store = _engine.Cache(str(cache), ALL)
    store.max_bytes = sum(sizes) // 2
    store.evict()
    assert 0 < sum(p.stat().st_size for p in _entries(cache)) <= store.max_bytes
