"""The two kinds of error the ``leafgrad`` command reports in one sentence, without a traceback."""
from __future__ import annotations

from typing import Optional

__all__ = ["UsageError", "DataError", "sentence"]


class UsageError(Exception):
    """A bad option or a bad data file: ``main`` prints the message as one sentence and exits with status 2."""

    def __init__(self, message: str, prog: Optional[str] = None) -> None:
        super().__init__(message)
        self.prog = prog


class DataError(Exception):
    """Data or a package that a command needs is missing, or a run cannot be read: exit status 1."""


def sentence(text: str) -> str:
    """``text`` on one line, ending with a full stop."""
    text = " ".join(str(text).split())
    return text if text.endswith((".", "!", "?")) else text + "."
