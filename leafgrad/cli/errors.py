"""The two kinds of error the ``leafgrad`` command reports in one sentence (one line per problem), without a traceback."""
from __future__ import annotations

from typing import Optional

__all__ = ["UsageError", "DataError", "sentence"]


class UsageError(Exception):
    """Bad input (an option, a data file, a damaged run file): ``main`` prints the message and exits with status 2.

    A message listing several problems keeps one line per problem (see :func:`sentence`).
    """

    def __init__(self, message: str, prog: Optional[str] = None) -> None:
        super().__init__(message)
        self.prog = prog


class DataError(Exception):
    """Data or a package that a command needs is missing, or the run failed (a full disk): exit status 1."""


def sentence(text: str) -> str:
    """``text`` as one sentence ending with a full stop; a list of problems keeps one line per problem.

    Spaces inside each line are tidied; the lines after the first are indented.
    """
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    lines = [line for line in lines if line] or [""]
    first = lines[0]
    if len(lines) == 1:
        return first if first.endswith((".", "!", "?")) else first + "."
    return "\n  ".join([first.rstrip(":") + ":"] + lines[1:])
