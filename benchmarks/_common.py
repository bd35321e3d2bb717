"""Shared helpers of the benchmark suite: thread pinning, framework loading, timing, memory probes."""
from __future__ import annotations

import os
import sys

# One thread everywhere, before NumPy or PyTorch is imported by anyone.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a checkout without installing leafgrad
    sys.path.insert(0, _ROOT)

import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, List, Optional  # noqa: E402

import numpy as np  # noqa: E402

FRAMEWORKS = ("leafgrad", "numpy", "torch", "dezero")
MiB = 1024.0 * 1024.0

_loaded: Dict[str, Any] = {}


def load(name: str) -> Optional[Any]:
    """The framework module ``name`` ('leafgrad', 'torch', 'dezero'), or None when it cannot be imported."""
    if name in _loaded:
        return _loaded[name]
    mod = None
    try:
        if name == "leafgrad":
            import leafgrad as mod  # type: ignore[no-redef]
        elif name == "torch":
            import torch as mod  # type: ignore[no-redef]
            mod.set_num_threads(1)
        elif name == "dezero":
            mod = _load_dezero()
        elif name == "numpy":
            mod = np
    except Exception as err:  # noqa: BLE001 - an optional comparison target
        print(f"[bench] {name} not available: {type(err).__name__}: {err}", file=sys.stderr)
        mod = None
    _loaded[name] = mod
    return mod


def _load_dezero() -> Any:
    """Import DeZero 0.0.13 for comparison.

    Its ``transforms`` module uses ``np.int`` as a default argument value,
    which NumPy >= 1.24 removed; the alias is provided only while DeZero's
    modules are imported, then removed again.  Nothing of leafgrad is touched.
    """
    added = not hasattr(np, "int")
    if added:
        np.int = int  # type: ignore[attr-defined]
    try:
        import dezero
        import dezero.functions  # noqa: F401
        import dezero.layers  # noqa: F401
        import dezero.optimizers  # noqa: F401
    finally:
        if added:
            del np.int  # type: ignore[attr-defined]
    return dezero


def available(names: Optional[List[str]] = None) -> List[str]:
    """The frameworks among ``names`` (default: all) that import here."""
    return [n for n in (names or FRAMEWORKS) if load(n) is not None]


def on_gpu(obj: Any) -> Any:
    """``obj`` (an array, or a list, tuple or dict of them) with each NumPy array copied to the GPU (CuPy)."""
    if isinstance(obj, np.ndarray):
        import cupy
        return cupy.asarray(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_gpu(a) for a in obj)
    if isinstance(obj, dict):
        return {k: on_gpu(v) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------
def interleaved(steps: Dict[str, Callable[[], Any]], reps: int, warmup: int = 2,
                inner: int = 1) -> Dict[str, List[float]]:
    """Time each callable ``reps`` times, round-robin across callables; seconds per call.

    Every repetition runs each callable once (``inner`` calls, averaged) in
    turn, so a slow period of a shared machine hits all of them alike.  The
    garbage collector stays enabled: its cost is part of a framework's cost.
    """
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {k: [] for k in steps}
    for _ in range(reps):
        for name, fn in steps.items():
            gc.collect()  # start each call clean; the collector stays on, as in real programs
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - t0) / inner)
    return times


def median(xs: List[float]) -> float:
    """The median of ``xs``."""
    return statistics.median(xs)


# ---------------------------------------------------------------------------
# Memory probes (Linux /proc)
# ---------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mib() -> float:
    """Current resident set size (VmRSS) in MiB."""
    return _status_kib("VmRSS") / 1024.0


def hwm_mib() -> float:
    """Peak resident set size (VmHWM) in MiB."""
    return _status_kib("VmHWM") / 1024.0


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, ``clear_refs`` value 5); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


#: Environment of memory children: glibc returns every array larger than 128 KiB to the
#: system when freed (no dynamic mmap threshold, no cached heap top), so RSS follows what
#: is alive and the peak of one step is not hidden by memory cached from an earlier one.
CHILD_ENV_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072",
                    "MALLOC_TOP_PAD_": "0"}


# ---------------------------------------------------------------------------
# Machine description and output
# ---------------------------------------------------------------------------
def machine_info() -> Dict[str, Any]:
    """CPU model, core counts, library versions and load average."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: Dict[str, Any] = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "threads": 1,
    }
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    torch = load("torch")
    info["torch"] = torch.__version__ if torch is not None else None
    dz = load("dezero")
    info["dezero"] = getattr(dz, "__version__", "0.0.13") if dz is not None else None
    lg = load("leafgrad")
    info["leafgrad"] = getattr(lg, "__version__", None) if lg is not None else None
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # NumPy >= 2
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - NumPy 1.x has no dict mode
        info["blas"] = None
    return info


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same folder, fsync, replace)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def interleaved_prepared(prepares: Dict[str, Callable[[], Callable[[], Any]]],
                         reps: Dict[str, int]) -> Dict[str, List[float]]:
    """Like :func:`interleaved`, but each call is made by ``prepare()`` first, untimed.

    ``reps`` gives each name its own number of repetitions (a slow framework may
    run fewer); the rounds stay interleaved while a name has repetitions left.
    """
    times: Dict[str, List[float]] = {k: [] for k in prepares}
    for r in range(max(reps.values(), default=0)):
        for name, prepare in prepares.items():
            if r >= reps[name]:
                continue
            run = prepare()
            gc.collect()
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
            del run
    return times
