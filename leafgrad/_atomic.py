"""Atomic file writes: a file is written completely or not at all.

``write_atomic`` writes into a temporary file in the target's folder
(``.NAME.XXXXXXXX.tmp``), flushes and fsyncs it, then renames it over the
target, so a reader (or a crash) never sees half a file.  Used by the
``leafgrad`` command and ``plot_dot_graph``.  ``write_output`` is for files
the user names: a rename would replace a device, a FIFO or a symbolic link by
a regular file, so those are written through, and ``-`` is standard output.
"""
from __future__ import annotations

import os
import stat
import sys
import tempfile
from typing import Any, Callable

__all__ = ["write_atomic", "write_output"]


def write_atomic(path: str, write: Callable[[Any], None], binary: bool = True) -> None:
    """Write ``path`` completely or not at all: ``write(f)`` into a temporary file beside it, then rename.

    ``f`` is opened ``"wb"``, or, when not ``binary``, as UTF-8 text with
    ``newline=""`` (what the ``csv`` module wants).  The new file gets the
    permissions of the file it replaces, else the usual ones for the umask.
    """
    from leafgrad.serialization import _file_mode  # only when writing: keeps this module's import light
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8",
                                                                         "newline": ""})) as f:
            os.chmod(tmp, _file_mode(path))  # mkstemp makes 0o600 files: use the usual permissions
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_output(path: str, write: Callable[[Any], None], binary: bool = True) -> None:
    """Write a file the user named: ``-`` is standard output; otherwise atomically over a regular file.

    A symbolic link is followed (its target is written, atomically when it is a
    regular file); a device, a FIFO or a socket is opened and written through,
    never replaced.
    """
    text = {} if binary else {"encoding": "utf-8", "newline": ""}
    if path == "-":
        stream = sys.stdout.buffer if binary else sys.stdout
        write(stream)
        stream.flush()
        return
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with open(real, "wb" if binary else "w", **text) as f:
            write(f)
        return
    write_atomic(real, write, binary)
