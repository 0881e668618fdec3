"""Read a user's batch (logits, targets, optional weight and pos_weight) from a file.

``logitlab compare --from FILE`` reads, by extension:

* ``.npz``: arrays named ``logits`` and ``targets``, optionally ``weight`` and
  ``pos_weight`` (the aliases in :data:`KEYS` are accepted too; other keys are ignored
  and listed in the notes);
* ``.npy``: a structured array whose fields carry those names, or an ``(N, 2)`` array
  whose column 0 holds the logits and column 1 the targets;
* ``.pt``: ``torch.save`` of a dict of tensors with those names, read with
  ``torch.load(weights_only=True)``; bfloat16 tensors are converted to float32 first
  (exact: every bfloat16 value is a float32 value);
* ``.csv``: a header row naming the columns (same names), then one row of numbers per
  element (comma-separated; ``inf`` and ``-inf`` are read as infinities).

The file's size is checked before it is read (:data:`MAX_FILE_BYTES`), array sizes before
they are loaded where the format allows (``.npy``, ``.npz``), and the element count after
broadcasting (:data:`MAX_BATCH_ELEMENTS`).  Every problem is an
:class:`~logitlab.InputError` naming ``--from`` (and the key where one is at fault).

:func:`batch_case` validates and rounds a whole batch into a
:class:`~logitlab.core.inputs.BCECase` the way :meth:`BCECase.from_user` does, vectorised
and without that method's per-element-mpmath cap of ``MAX_ELEMENTS``.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from logitlab.core.errors import InputError
from logitlab.core.formats import FloatFormat
from logitlab.core.inputs import BCECase

__all__ = [
    "EXTENSIONS",
    "KEYS",
    "MAX_BATCH_ELEMENTS",
    "MAX_FILE_BYTES",
    "BatchFile",
    "batch_case",
    "read_batch",
]

#: The most elements (after broadcasting) a batch may have.
MAX_BATCH_ELEMENTS = 10_000_000
#: The largest file read: 10^7 elements of four float64 arrays, with room for headers.
MAX_FILE_BYTES = 400 * 1024 * 1024
EXTENSIONS = (".npz", ".npy", ".pt", ".csv")
#: Each input and the names it may have in a file, the first one preferred.
KEYS: dict[str, tuple[str, ...]] = {
    "logits": ("logits", "z", "logit", "input"),
    "targets": ("targets", "y", "target", "labels", "label"),
    "weight": ("weight", "weights", "w"),
    "pos_weight": ("pos_weight", "pos_weights", "pw"),
}
_REQUIRED = ("logits", "targets")
ARG = "--from"


@dataclass(frozen=True)
class BatchFile:
    """What a file held: float64 arrays (``weight``/``pos_weight`` may be ``None``), the
    key each came from, and the float format of the logits when it is one logitlab knows
    (``None`` for integers or text)."""

    path: str
    logits: np.ndarray
    targets: np.ndarray
    weight: np.ndarray | None
    pos_weight: np.ndarray | None
    keys: dict[str, str]
    file_dtype: str | None
    stored_dtype: str
    notes: tuple[str, ...] = field(default=())


def _fail(message: str) -> InputError:
    return InputError(ARG, message)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _known_dtype(dtype: Any) -> str | None:
    """The logitlab format of a NumPy or torch dtype, or ``None``."""
    name = str(dtype).removeprefix("torch.")
    if name in ("float16", "bfloat16", "float32", "float64"):
        return name
    # NumPy saves ml_dtypes' bfloat16 as two opaque bytes ('V2'); read them as bfloat16.
    if isinstance(dtype, np.dtype) and dtype.kind == "V" and dtype.itemsize == 2:
        return "bfloat16"
    return None


def _to_float64(a: Any, key: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind == "V" and arr.dtype.itemsize == 2 and arr.dtype.names is None:
        import ml_dtypes

        arr = arr.view(ml_dtypes.bfloat16)
    if arr.dtype.kind not in "biuf" and str(arr.dtype) != "bfloat16":
        raise _fail(f"key {key!r} holds {arr.dtype} values; expected numbers")
    return np.asarray(arr, dtype=np.float64)


def _pick(found: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    chosen: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for name, aliases in KEYS.items():
        present = [a for a in aliases if a in found]
        if len(present) > 1:
            raise _fail(f"{path} has both {present[0]!r} and {present[1]!r}; keep one")
        if present:
            chosen[name] = found[present[0]]
            keys[name] = present[0]
    missing = [n for n in _REQUIRED if n not in chosen]
    if missing:
        listed = ", ".join(repr(k) for k in found) or "none"
        names = " or ".join(repr(a) for a in KEYS[missing[0]])
        raise _fail(f"{path} has no {missing[0]} (a key named {names}); keys found: {listed}")
    used = set(keys.values())
    ignored = [k for k in found if k not in used]
    return chosen, keys, ignored


def _check_count(n: int, what: str) -> None:
    if n > MAX_BATCH_ELEMENTS:
        raise _fail(f"{what} has {n} elements; at most {MAX_BATCH_ELEMENTS} allowed")


def _npz_members(path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, _ = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, _, _ = np.lib.format.read_array_header_2_0(fh)
            _check_count(math.prod(shape), f"key {info.filename[:-4]!r}")
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            out[key] = data[key]
    return out


def _npy_members(path: str) -> dict[str, Any]:
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    _check_count(int(arr.size) * max(1, len(arr.dtype.names or ())), path)
    arr = np.array(arr)
    if arr.dtype.names:
        return {name: arr[name] for name in arr.dtype.names}
    if arr.ndim == 2 and arr.shape[1] == 2:
        return {"logits": arr[:, 0], "targets": arr[:, 1]}
    raise _fail(
        f"{path} holds an array of shape {arr.shape}; expected a structured array with fields "
        "logits and targets, or an (N, 2) array of [logits, targets]"
    )


def _pt_members(path: str) -> dict[str, Any]:
    import torch

    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise _fail(f"{path} holds a {type(data).__name__}; expected a dict of tensors")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(value, torch.Tensor):
            raise _fail(f"key {key!r} holds a {type(value).__name__}; expected a tensor")
        t = value.detach()
        if t.dtype == torch.bfloat16:
            out[str(key)] = (t.to(torch.float32).numpy(), "bfloat16")
        else:
            out[str(key)] = (t.numpy(), str(t.dtype).removeprefix("torch."))
    return out


def _csv_members(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        header = fh.readline()
    names = [h.strip() for h in header.strip().split(",")]
    if not header.strip() or any(not n for n in names):
        raise _fail(f"{path} needs a header row naming the columns, e.g. logits,targets")
    try:
        float(names[0])
    except ValueError:
        pass
    else:
        raise _fail(f"{path} starts with numbers; the first row must name the columns")
    if len(set(names)) != len(names):
        raise _fail(f"{path} names a column twice: {header.strip()!r}")
    try:
        table = np.loadtxt(
            path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2, encoding="utf-8"
        )
    except ValueError as err:
        raise _fail(f"cannot read {path}: {_first_line(err)}") from None
    if table.shape[0] == 0:
        raise _fail(f"{path} has a header but no rows")
    if table.shape[1] != len(names):
        raise _fail(f"{path} has {table.shape[1]} columns but its header names {len(names)}")
    return {name: table[:, i] for i, name in enumerate(names)}


def read_batch(path: str | os.PathLike[str]) -> BatchFile:
    """Read a batch file (see the module docstring for the formats)."""
    p = Path(path)
    name = str(path)
    ext = p.suffix.lower()
    if ext not in EXTENSIONS:
        raise _fail(
            f"unknown extension {p.suffix or '(none)'!r} of {name}; use one of "
            + ", ".join(EXTENSIONS)
        )
    if not p.exists():
        raise _fail(f"no such file: {name}")
    if not p.is_file():
        raise _fail(f"{name} is not a file")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _fail(f"{name} is {size} bytes; at most {MAX_FILE_BYTES} allowed")
    if size == 0:
        raise _fail(f"{name} is empty")
    readers = {".npz": _npz_members, ".npy": _npy_members, ".pt": _pt_members, ".csv": _csv_members}
    try:
        found = readers[ext](name)
    except InputError:
        raise
    except Exception as err:  # a corrupt or foreign file: say so in one line
        raise _fail(f"cannot read {name} as {ext}: {_first_line(err)}") from None
    dtypes: dict[str, str] = {}
    if ext == ".pt":
        dtypes = {k: v[1] for k, v in found.items()}
        found = {k: v[0] for k, v in found.items()}
    elif ext != ".csv":
        dtypes = {k: str(np.asarray(v).dtype) for k, v in found.items()}
        for k, v in found.items():
            known = _known_dtype(np.asarray(v).dtype)
            if known is not None:
                dtypes[k] = known
    chosen, keys, ignored = _pick(found, name)
    arrays = {n: _to_float64(a, keys[n]) for n, a in chosen.items()}
    stored = dtypes.get(keys["logits"], "text")
    file_dtype = _known_dtype(stored)
    notes = []
    if ignored:
        notes.append(f"ignored keys in {name}: " + ", ".join(ignored))
    return BatchFile(
        path=name,
        logits=arrays["logits"],
        targets=arrays["targets"],
        weight=arrays.get("weight"),
        pos_weight=arrays.get("pos_weight"),
        keys=keys,
        file_dtype=file_dtype,
        stored_dtype=stored,
        notes=tuple(notes),
    )


def _first(mask: np.ndarray, a: np.ndarray) -> tuple[int, float]:
    i = int(np.argmax(mask.ravel()))
    return i, float(a.ravel()[i])


def batch_case(
    logits: Any,
    targets: Any,
    *,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: Any = "mean",
    dtype: str | FloatFormat = "float32",
    names: dict[str, str] | None = None,
    argument: str | None = None,
) -> BCECase:
    """A :class:`BCECase` for a whole batch, checked and rounded like
    :meth:`BCECase.from_user` (same rules, same notes) but vectorised and capped at
    :data:`MAX_BATCH_ELEMENTS` instead of ``MAX_ELEMENTS``.

    ``names`` maps each input to the key it came from and ``argument`` names the source
    (``"--from"``): errors then read ``--from: key 'y': value 1.5 at index 3 is outside
    [0, 1]``; without them the argument is the input's own name.
    """
    names = names or {}

    def err(name: str, message: str) -> InputError:
        if argument is None:
            return InputError(name, message)
        return InputError(argument, f"key {names.get(name, name)!r}: {message}")

    return BCECase.from_user(
        logits,
        targets,
        weight=weight,
        pos_weight=pos_weight,
        reduction=reduction,
        dtype=dtype,
        max_elements=MAX_BATCH_ELEMENTS,
        error=err,
    )
