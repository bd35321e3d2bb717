"""Who may write a run's folder: one training at a time, never over a finished run by surprise.

* :func:`refuse_existing_run`: ``--out DIR`` naming a folder that already holds
  a run stops (exit status 2) unless the run is being resumed or
  ``--overwrite`` was given.
* :class:`RunLock`: a lock file ``DIR/.lock`` (created with ``O_EXCL``, holding
  the process id and the host) stops a second training into the same folder.
  A lock whose process is gone (a training killed with ``kill -9``) is stale:
  it is taken over, with a note.
* :func:`clean_temporaries`: the temporary files a killed run left (``.NAME.*.tmp``
  written by the atomic writers, ``.probe-*``) are removed when the next
  training takes the lock.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
from typing import Any, List, Optional

from leafgrad.cli.errors import UsageError

__all__ = ["LOCK", "RunLock", "refuse_existing_run", "clean_temporaries", "remove_run_files", "os_error_sentence"]

LOCK = ".lock"
#: The files that make a folder a run (any one of them).
_RUN_FILES = ("run.json", "checkpoint.npz", "model.npz", "metrics.csv")
_PICTURES = ("curves.png", "decision_boundary.png", "confusion_matrix.png", "predictions.png")
#: The temporary names the atomic writers give the run's own files (and the probe of prepare_out): only these go.
_TEMPORARY = re.compile(r"^(\.(" + "|".join(re.escape(n) for n in _RUN_FILES + _PICTURES) +
                        r")\.[A-Za-z0-9_]+\.tmp|\.probe-[A-Za-z0-9_]+)$")


def refuse_existing_run(out: str, resuming: bool, overwrite: bool) -> None:
    """UsageError when ``out`` holds a run and it is neither resumed nor to be overwritten."""
    if resuming or overwrite or not os.path.isdir(out):
        return
    found = [name for name in _RUN_FILES if os.path.exists(os.path.join(out, name))]
    if found:
        raise UsageError(f"--out {out} already holds a run ({', '.join(found)}); continue it with --resume {out}, "
                         "choose another folder, or pass --overwrite to replace it")


def remove_run_files(out: str) -> None:
    """Remove the files of the run in ``out`` (for ``--overwrite``); other files stay."""
    for name in _RUN_FILES + _PICTURES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out, name))


def clean_temporaries(out: str) -> List[str]:
    """Remove the temporary files a killed writer left in ``out``; returns their names."""
    removed = []
    with contextlib.suppress(OSError):
        for name in os.listdir(out):
            if _TEMPORARY.match(name) and os.path.isfile(os.path.join(out, name)):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(out, name))
                    removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except (OverflowError, ValueError, OSError):
        return False
    return True


class RunLock:
    """``with RunLock(out):`` holds ``out/.lock`` for the block; a UsageError if another live training holds it."""

    def __init__(self, out: str) -> None:
        self.path = os.path.join(out, LOCK)
        self.note: Optional[str] = None
        self._held = False

    def _owner(self) -> Optional[dict]:
        try:
            with open(self.path, encoding="utf-8") as f:
                owner = json.loads(f.read(4096) or "null")
            return owner if isinstance(owner, dict) else None
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; UsageError when a live process holds it."""
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self._owner()
                pid = owner.get("pid") if owner else None
                same_host = owner is not None and owner.get("host") == me["host"]
                if isinstance(pid, int) and same_host and _alive(pid) and pid != me["pid"]:
                    raise UsageError(f"another training (process {pid}) is writing to {os.path.dirname(self.path)}; "
                                     "wait for it to end or choose another --out") from None
                if owner is not None and not same_host:
                    raise UsageError(f"{self.path} says that a training on {owner.get('host')} (process {pid}) is "
                                     "writing to this folder; if it ended, delete the lock file") from None
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)  # stale: its process is gone
                self.note = f"took over the stale lock of process {pid}" if pid else "removed a damaged lock file"
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(me))
            self._held = True
            return
        raise UsageError(f"cannot take the lock {self.path}: another training keeps taking it")

    def release(self) -> None:
        """Remove the lock file (only when this object holds it)."""
        if self._held:
            self._held = False
            with contextlib.suppress(OSError):
                os.remove(self.path)

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def os_error_sentence(err: OSError, out: str) -> str:
    """One sentence for an OSError met while writing the run in ``out``."""
    reason = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        reason = "the disk is full (no space left on device)"
    where = f" ({err.filename})" if getattr(err, "filename", None) else ""
    return f"cannot write the run in {out}: {reason}{where}"

