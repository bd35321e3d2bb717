"""Failure is loud, not a hang: an exception on one rank ends the whole job, naming the rank.

Without this, a rank that raises simply exits while the others wait forever in
their next collective.  ``install_abort_handler(comm)`` (done by
``leafgrad.distributed.init``) replaces ``sys.excepthook``: an uncaught
exception prints ``rank R of N failed`` with the traceback on standard error,
then calls ``MPI_Abort``, which ends every rank and makes ``mpiexec`` exit
non-zero.  ``abort_on_error(comm)`` does the same around a block.
"""
from __future__ import annotations

import sys
import threading
import traceback
from typing import Any, Optional

from leafgrad.distributed.communicator import Communicator

__all__ = ["install_abort_handler", "uninstall_abort_handler", "abort_on_error", "report_and_abort"]

_installed: Optional[tuple] = None   # (comm, previous sys.excepthook, previous threading.excepthook)


def report_and_abort(comm: Communicator, exc_type: type, exc: BaseException, tb: Any,
                     where: str = "", with_traceback: bool = True) -> None:
    """Print which rank failed and why on standard error, then abort the job with exit code 1."""
    text = (f"leafgrad.distributed: rank {comm.rank} of {comm.size} failed{where} with "
            f"{exc_type.__name__}: {exc}; aborting all ranks\n")
    if with_traceback:
        text += "".join(traceback.format_exception(exc_type, exc, tb))
    try:
        sys.stdout.flush()
        sys.stderr.write(text)
        sys.stderr.flush()
    finally:
        comm.abort(1)


def install_abort_handler(comm: Communicator) -> None:
    """Make an uncaught exception (in the main thread or any other) abort the job, naming this rank.

    Does nothing in a job of one rank (an exception ends the process anyway)
    or when already installed.
    """
    global _installed
    if comm.size <= 1 or _installed is not None:
        return

    def excepthook(exc_type, exc, tb):
        report_and_abort(comm, exc_type, exc, tb)

    def thread_excepthook(args):
        if args.exc_type is SystemExit:
            return
        report_and_abort(comm, args.exc_type, args.exc_value, args.exc_traceback,
                         where=f" in thread {getattr(args.thread, 'name', '?')}")

    _installed = (comm, sys.excepthook, threading.excepthook)
    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def uninstall_abort_handler() -> None:
    """Put back the exception hooks that ``install_abort_handler`` replaced."""
    global _installed
    if _installed is not None:
        _, sys.excepthook, threading.excepthook = _installed
        _installed = None


class abort_on_error:
    """``with abort_on_error(comm): ...``: an exception escaping the block aborts the whole job.

    ``SystemExit`` with a non-zero code aborts too (a rank that just exits
    leaves the others waiting forever); ``SystemExit(0)`` passes through.
    Exceptions of the types in ``brief`` (expected errors, such as a bad
    option) are reported in one line, without the traceback.  In a job of one
    rank nothing changes.
    """

    def __init__(self, comm: Communicator, brief: tuple = ()) -> None:
        self.comm = comm
        self.brief = tuple(brief)

    def __enter__(self) -> "abort_on_error":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None or self.comm.size <= 1:
            return False
        if exc_type is SystemExit and exc.code in (None, 0):
            return False
        report_and_abort(self.comm, exc_type, exc, tb,
                         with_traceback=not issubclass(exc_type, self.brief))
        return False
