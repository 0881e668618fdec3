"""float32 CPU kernels of the compiled fast paths, compiled from C at first use.

``_native.c`` (shipped in this package) holds

* the BCE pass that :mod:`._bce_compiled` runs for float32 tensors on the CPU rather
  than inductor's kernels: one pass instead of two, its own vectorisable ``exp`` (4 u,
  proved in the source), the loss summed in the same loop.  Inductor's two float64
  kernels measured about 1.9x ``torch.compile(F.binary_cross_entropy_with_logits)``;
  this pass runs at about its speed;
* the two elementwise passes of :mod:`._softmax_fast` (the row sums of the forward, the
  gradient's bulk of the backward) for float32 logits without label smoothing, with the
  same ``exp``.

Both run where :func:`logitlab.stable.set_torch_compile` asks for compiled kernels.

The source is compiled once per machine with the C compiler inductor also needs
(``$CC``, else ``cc``, ``gcc`` or ``clang``), ``-O3 -march=native`` and no fast-math
(``-fno-math-errno -fno-trapping-math`` only), into ``$LOGITLAB_CACHE_DIR`` (default
``$XDG_CACHE_HOME/logitlab`` or ``~/.cache/logitlab``) under a name hashed from the
source, the compiler, the flags and the CPU (a library built with ``-march=native`` may
not run on another CPU sharing the same home directory), written atomically.  A cache
folder that cannot be written, or that others can write to (a library there could be
theirs), is not used: the library is then compiled into a fresh private folder.  It takes
well under a second.  Where no compiler works, or ``LOGITLAB_STABLE_NATIVE=0``, the
inductor kernels run instead (one warning for a failed compile).

The kernel runs on ``torch.get_num_threads()`` threads (the caller's and a pool's), one
contiguous part each: ctypes releases the GIL for the call.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = [
    "FLAGS",
    "available",
    "bce_f32",
    "cache_dir",
    "elementwise",
    "library",
    "serves",
    "softmax_grad",
    "softmax_rows",
]

_SOURCE = Path(__file__).with_name("_native.c")

#: Compiler flags: no fast-math (nothing is reassociated; FMA contraction only tightens
#: the source's bounds).
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math")

#: Tried where a compiler refuses ``-march=native`` (some older clang on ARM).
_PORTABLE = tuple(f for f in FLAGS if f != "-march=native")

#: Elements per part are a multiple of this (the kernel's block).
_ALIGN = 512

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_tried = False
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0


def cache_dir() -> Path:
    """Where the compiled library is kept."""
    explicit = os.environ.get("LOGITLAB_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "logitlab"


def _compilers() -> list[str]:
    names = [os.environ["CC"]] if os.environ.get("CC") else []
    names += ["cc", "gcc", "clang"]
    found = []
    for name in names:
        path = shutil.which(name.split()[0]) if name.strip() else None
        if path and path not in found:
            found.append(path)
    return found


def _cpu_id() -> str:
    """What ``-march=native`` depends on: the machine and, on Linux, the CPU's model and
    feature flags."""
    parts = [platform.machine(), platform.system()]
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    parts.append(line.strip())
                if line.strip() == "":
                    break  # the first processor describes them all
    except OSError:
        pass
    return "\n".join(parts)


def _version(compiler: str) -> str:
    try:
        done = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout


def _private(path: Path) -> bool:
    """Whether ``path`` is this user's and no one else can write to it (POSIX; a library
    loaded from a folder others can write to could be theirs)."""
    if not hasattr(os, "getuid"):
        return True
    info = path.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _compile_into(compiler: str, flags: tuple[str, ...], target: Path) -> Path:
    """Compile the source to ``target``, atomically (another process may race to it)."""
    fd, partial = tempfile.mkstemp(prefix=target.name, suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run(
            [compiler, *flags, "-o", partial, str(_SOURCE)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _build(compiler: str, flags: tuple[str, ...] = FLAGS) -> Path:
    """The library for ``compiler`` and ``flags``, compiled unless already in the cache;
    in a fresh private folder where the cache cannot be written or others could write to
    it."""
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join(
            [
                source,
                compiler.encode(),
                _version(compiler).encode(),
                " ".join(flags).encode(),
                _cpu_id().encode(),
            ]
        )
    ).hexdigest()[:24]
    name = f"native_{key}.so"
    folder = cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _private(folder):
            target = folder / name
            if target.exists() and _private(target):
                return target
            return _compile_into(compiler, flags, target)
    except OSError:
        pass
    private = Path(tempfile.mkdtemp(prefix="logitlab-native-"))
    return _compile_into(compiler, flags, private / name)


def _load() -> ctypes.CDLL | None:
    errors = []
    for compiler in _compilers():
        lib = None
        for flags in (FLAGS, _PORTABLE):
            try:
                lib = ctypes.CDLL(str(_build(compiler, flags)))
                break
            except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                errors.append(f"{Path(compiler).name} {' '.join(flags[:2])}: {err}")
        if lib is None:
            continue
        pointer, i64, f64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
        signatures = {
            # z, y, grad, n, gs, sum, declined, near, index, capacity
            "logitlab_bce_f32": [pointer] * 3 + [i64, f64] + [pointer] * 4 + [i64],
            "logitlab_exp_neg": [pointer, pointer, i64],
            "logitlab_log1p_unit": [pointer, pointer, i64],
            # z, rows, C, tail, m, k, nan, r, spread, buffer
            "logitlab_softmax_rows_f32": [pointer, i64, i64, f64] + [pointer] * 6,
            # z, rows, C, m, c, kr, t, k, out, bulk, flagged, capacity, count
            "logitlab_softmax_grad_f32": [pointer, i64, i64] + [pointer] * 8 + [i64, pointer],
        }
        for name, argtypes in signatures.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = None
        return lib
    warnings.warn(
        "logitlab.stable: could not compile its float32 kernels ("
        + ("; ".join(errors) or "no C compiler found")
        + "); using the torch.compile kernels, which are slower but equally accurate",
        RuntimeWarning,
        stacklevel=4,
    )
    return None


def library() -> ctypes.CDLL | None:
    """The compiled library, built and loaded at the first call; None where disabled or
    no compiler works (warned once)."""
    global _library, _tried
    if os.environ.get("LOGITLAB_STABLE_NATIVE", "1").strip().lower() in ("0", "false"):
        return None
    with _lock:
        if not _tried:
            _tried = True
            _library = _load()
    return _library


def available() -> bool:
    """Whether the native kernel can run (compiling it at the first call)."""
    return library() is not None


def serves(z: Any) -> bool:
    """Whether the C kernels run for the tensor ``z``: float32 on the CPU, where compiled
    kernels are asked for (:func:`logitlab.stable.set_torch_compile`) and they build."""
    import torch

    from logitlab.stable._compile import _wants_compile

    return (
        z.device.type == "cpu"
        and z.dtype == torch.float32
        and _wants_compile(z.numel())
        and available()
    )


def _threads(parts: int) -> ThreadPoolExecutor:
    """A pool of at least ``parts`` threads; a new one in a forked child (a DataLoader
    worker), where the parent's threads do not exist."""
    global _pool, _pool_size, _pool_pid
    with _lock:
        forked = _pool_pid != os.getpid()
        if _pool is None or _pool_size < parts or forked:
            if _pool is not None and not forked:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(parts, thread_name_prefix="logitlab-native")
            _pool_size, _pool_pid = parts, os.getpid()
        return _pool


#: Near-tie indices each part reports (more, rare, are searched for by the caller).
CAPACITY = 1024


def bce_f32(z: Any, y: Any, gs: float, with_grad: bool) -> tuple[float, int, Any, Any]:
    """``(loss sum, declined, near-tie indices, gradient)`` for contiguous float32 CPU
    tensors ``z`` and ``y`` of one size (see ``_native.c``); the gradient (None
    without ``with_grad``) holds NaN at the near-ties.  The indices are an int64 tensor,
    or None where a part found more than :data:`CAPACITY` of them (then search for the
    NaNs)."""
    import torch

    lib = library()
    assert lib is not None
    n = z.numel()
    grad = torch.empty_like(z) if with_grad else None
    parts = _parts(n, _ALIGN)
    sums = (ctypes.c_double * len(parts))()
    declined = (ctypes.c_int64 * len(parts))()
    near = (ctypes.c_int64 * len(parts))()
    index = torch.empty((len(parts), CAPACITY), dtype=torch.int64)
    zp, yp, ip = z.data_ptr(), y.data_ptr(), index.data_ptr()
    gp = grad.data_ptr() if grad is not None else 0

    def part(i: int) -> None:
        start, count = parts[i]
        lib.logitlab_bce_f32(
            zp + 4 * start,
            yp + 4 * start,
            (gp + 4 * start) if gp else None,
            count,
            gs,
            ctypes.addressof(sums) + 8 * i,
            ctypes.addressof(declined) + 8 * i,
            ctypes.addressof(near) + 8 * i,
            ip + 8 * CAPACITY * i,
            CAPACITY,
        )

    _in_parallel(part, len(parts))
    found = None
    if all(count <= CAPACITY for count in near):
        found = torch.cat(
            [index[i, : near[i]] + parts[i][0] for i in range(len(parts)) if near[i]]
            or [index[0, :0]]
        )
    return math.fsum(sums), sum(declined), found, grad


def _parts(n: int, align: int = 1) -> list[tuple[int, int]]:
    """``(start, count)`` of each thread's part of ``n`` items (elements or rows), each
    part but the last a multiple of ``align`` long."""
    import torch

    threads = max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
    step = -(-max(n, 1) // threads)
    step = -(-step // align) * align
    return [(s, min(n, s + step) - s) for s in range(0, n, step)] or [(0, 0)]


def _in_parallel(run: Any, count: int) -> None:
    """``run(i)`` for ``i < count``: the first here, the others on the pool."""
    others = [_threads(count - 1).submit(run, i) for i in range(1, count)]
    run(0)
    for future in others:
        future.result()


def softmax_rows(z: Any, tail: float) -> tuple[Any, Any, Any, Any, Any]:
    """``(m, k, nan, r, spread)`` of the float32 (N, C) contiguous CPU logits ``z``: the
    row maxima (float64), their first columns, whether a row holds a NaN, the sums of
    the other exponentials and the spreads (see ``_native.c``)."""
    import torch

    lib = library()
    assert lib is not None
    rows, classes = (int(n) for n in z.shape)
    m = torch.empty(rows, dtype=torch.float64)
    k = torch.empty(rows, dtype=torch.int64)
    nan = torch.empty(rows, dtype=torch.int64)
    r = torch.empty(rows, dtype=torch.float64)
    spread = torch.empty(rows, dtype=torch.float64)
    parts = _parts(rows)
    buffers = torch.empty((len(parts), max(classes, 1)), dtype=torch.float64)

    def run(i: int) -> None:
        start, count = parts[i]
        lib.logitlab_softmax_rows_f32(
            z.data_ptr() + 4 * start * classes,
            count,
            classes,
            tail,
            *(x.data_ptr() + 8 * start for x in (m, k, nan, r, spread)),
            buffers[i].data_ptr(),
        )

    _in_parallel(run, len(parts))
    return m, k, nan.bool(), r, spread


#: Flagged gradient elements each part reports (beyond that the caller's own pass runs).
SOFTMAX_CAPACITY = 1 << 14


def softmax_grad(
    z: Any, m: Any, c: Any, kr: Any, t: Any, k: Any
) -> tuple[Any, Any, list[tuple[int, int]] | None]:
    """``(out, bulk, flagged)``: the float32 gradient bulk ``float(c e_j (1 - kr))``,
    ``(c e_t, c e_k)`` per row and the ``(row, column)`` elements whose bounds round
    apart, outside the target and arg-max columns; ``flagged`` is None where a part
    found more than :data:`SOFTMAX_CAPACITY` (see ``_native.c``)."""
    import torch

    lib = library()
    assert lib is not None
    rows, classes = (int(n) for n in z.shape)
    out = torch.empty((rows, classes), dtype=torch.float32)
    bulk = torch.empty((rows, 2), dtype=torch.float64)
    parts = _parts(rows)
    flagged = torch.empty((len(parts), SOFTMAX_CAPACITY), dtype=torch.int64)
    counts = (ctypes.c_int64 * len(parts))()
    m, c, kr = (x.contiguous() for x in (m, c, kr))
    t, k = t.contiguous(), k.contiguous()

    def run(i: int) -> None:
        start, count = parts[i]
        lib.logitlab_softmax_grad_f32(
            z.data_ptr() + 4 * start * classes,
            count,
            classes,
            m.data_ptr() + 8 * start,
            c.data_ptr() + 8 * start,
            kr.data_ptr() + 8 * start,
            t.data_ptr() + 8 * start,
            k.data_ptr() + 8 * start,
            out.data_ptr() + 4 * start * classes,
            bulk.data_ptr() + 16 * start,
            flagged[i].data_ptr(),
            SOFTMAX_CAPACITY,
            ctypes.addressof(counts) + 8 * i,
        )

    _in_parallel(run, len(parts))
    if any(n > SOFTMAX_CAPACITY for n in counts):
        return out, bulk, None
    pairs: list[tuple[int, int]] = []
    for i, n in enumerate(counts):
        start = parts[i][0]
        for flat in flagged[i, :n].tolist():
            row, col = divmod(flat, classes)
            pairs.append((start + row, col))
    return out, bulk, pairs


def elementwise(name: str, values: Any) -> Any:
    """``logitlab_exp_neg`` or ``logitlab_log1p_unit`` on a float64 NumPy array (tests)."""
    import numpy as np

    lib = library()
    assert lib is not None
    x = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty_like(x)
    getattr(lib, f"logitlab_{name}")(x.ctypes.data, out.ctypes.data, x.size)
    return out
