"""What an audit's numbers depend on besides logitlab's code: the numerical libraries'
versions, the machine, and the vector kernels torch dispatches to.

The same release of torch rounds some results differently on a CPU with AVX-512 than on
one with AVX2 only (its elementwise kernels are compiled once per kernel set and chosen
when it starts; ``ATEN_CPU_CAPABILITY`` overrides the choice), so a report that is to be
compared with another run says which it used.  Nothing is imported here: only libraries
the process has already imported are reported.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

# module name -> distribution name, for the libraries whose arithmetic the numbers use
LIBRARIES = {
    "numpy": "numpy",
    "mpmath": "mpmath",
    "scipy": "scipy",
    "torch": "torch",
    "jax": "jax",
    "jaxlib": "jaxlib",
    "optax": "optax",
    "keras": "keras",
    "sklearn": "scikit-learn",
    "kornia": "kornia",
}


def _version(module: str, distribution: str) -> str | None:
    version = getattr(sys.modules[module], "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """This process's ``python``, ``machine`` (as :func:`platform.machine` names it),
    ``libraries`` (distribution name -> version, for those imported), and, where torch is
    imported, ``torch_cpu_kernels`` (``DEFAULT``, ``AVX2``, ``AVX512``, ...) and
    ``torch_threads``."""
    libraries = {
        dist: _version(module, dist) for module, dist in LIBRARIES.items() if module in sys.modules
    }
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "libraries": dict(sorted(libraries.items())),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_cpu_kernels"] = torch.backends.cpu.get_cpu_capability()
        out["torch_threads"] = torch.get_num_threads()
    return out


def merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Fold one process's :func:`environment` into ``into`` (libraries united)."""
    libraries = {**into.get("libraries", {}), **other.get("libraries", {})}
    into.update(other)
    into["libraries"] = dict(sorted(libraries.items()))
