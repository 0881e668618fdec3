"""JSON Schemas (draft 2020-12) of logitlab's JSON outputs, shipped with the package.

``load("compare")`` returns the schema of ``logitlab compare --json`` and
:meth:`logitlab.Comparison.to_dict`; ``load("audit")`` that of ``logitlab audit --format
json``.  Non-finite numbers are the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` in every output.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["NAMES", "load"]

#: The schemas shipped.
NAMES = ("audit", "compare")


def load(name: str) -> dict[str, Any]:
    """The schema called ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}; choose from {', '.join(NAMES)}")
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
