"""``[tool.logitlab.lint]`` in the nearest pyproject.toml.

Keys: ``select`` and ``ignore`` (lists of codes or prefixes), ``exclude`` (glob patterns
matched against file names and paths relative to each linted directory),
``max-file-bytes``, and ``per-file-ignores`` (a table: glob -> codes, globs matched
against paths relative to the current directory and against file names).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

#: The largest config file read; a pyproject.toml is a few KiB (``/dev/zero`` never ends).
MAX_CONFIG_BYTES = 1 << 20

KNOWN_KEYS = frozenset({"select", "ignore", "exclude", "max-file-bytes", "per-file-ignores"})


class ConfigError(ValueError):
    """A value in the config file is wrong; the message names the key."""


@dataclass
class LintConfig:
    path: str | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    max_file_bytes: int | None = None
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def find_pyproject(start: str) -> str | None:
    current = os.path.abspath(start)
    if not os.path.isdir(current):
        current = os.path.dirname(current)
    while True:
        candidate = os.path.join(current, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _load_toml(path: str) -> dict[str, Any] | None:
    """The parsed file, or None when no TOML parser is available (3.10 without tomli)."""
    import importlib

    for name in ("tomllib", "tomli"):  # tomllib is 3.11+, tomli its backport
        try:
            toml = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ValueError("not a regular file")
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValueError(f"larger than {MAX_CONFIG_BYTES} bytes")
        data: dict[str, Any] = toml.loads(raw.decode("utf-8"))
        return data
    return None


def _codes(value: object, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"[tool.logitlab.lint] {key} must be a list of rule codes")
    return list(value)


def load_config(start: str, explicit: str | None = None) -> LintConfig:
    path = explicit or find_pyproject(start)
    if path is None:
        return LintConfig()
    try:
        data = _load_toml(path)
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from err
    except ValueError as err:  # TOMLDecodeError, UnicodeDecodeError, not a regular file
        raise ConfigError(f"cannot read {path}: {err}") from err
    config = LintConfig(path=path)
    if data is None:
        config.warnings.append(f"{path}: not read (install tomli to read it on Python 3.10)")
        return config
    section: Any = data
    where = []
    for key in ("tool", "logitlab", "lint"):
        if not isinstance(section, dict) or key not in section:
            return config
        section = section[key]
        where.append(key)
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [{'.'.join(where)}] must be a table")
    for key in section:
        if key not in KNOWN_KEYS:
            config.warnings.append(f"{path}: unknown key [tool.logitlab.lint] {key}")
    if "select" in section:
        config.select = _codes(section["select"], "select")
    if "ignore" in section:
        config.ignore = _codes(section["ignore"], "ignore")
    if "exclude" in section:
        config.exclude = _codes(section["exclude"], "exclude")
    if "per-file-ignores" in section:
        table = section["per-file-ignores"]
        if not isinstance(table, dict):
            raise ConfigError("[tool.logitlab.lint] per-file-ignores must be a table")
        for pattern, codes in table.items():
            config.per_file_ignores[pattern] = _codes(codes, f"per-file-ignores {pattern!r}")
    if "max-file-bytes" in section:
        value = section["max-file-bytes"]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError("[tool.logitlab.lint] max-file-bytes must be a positive integer")
        config.max_file_bytes = value
    return config
