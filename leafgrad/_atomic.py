"""Atomic file writes: a file is written completely or not at all.

``write_atomic`` writes into a temporary file in the target's folder, flushes
and fsyncs it, then renames it over the target, so a reader (or a crash) never
sees half a file.  Used by the ``leafgrad`` command and ``plot_dot_graph``.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Callable

__all__ = ["write_atomic"]


def write_atomic(path: str, write: Callable[[Any], None], binary: bool = True) -> None:
    """Write ``path`` completely or not at all: ``write(f)`` into a temporary file beside it, then rename.

    ``f`` is opened ``"wb"``, or, when not ``binary``, as UTF-8 text with
    ``newline=""`` (what the ``csv`` module wants).  The new file gets the
    permissions of the file it replaces, else the usual ones for the umask.
    """
    from leafgrad.serialization import _file_mode  # only when writing: keeps this module's import light
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
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
