"""Reading ``.npz`` archives member by member: each header is checked before any array is allocated.

``numpy.load`` unpacks a member as soon as it is asked for, so a small file
declaring a huge array makes it allocate that much before anyone can look.
:class:`NpzArchive` first reads only the ``.npy`` headers (shape, dtype, order)
of every member and checks each against the member's stored size; the caller
then compares the declared shapes with what it needs, and only then reads the
arrays it accepted.  Members that are not ``.npy`` arrays, arrays of Python
objects (pickles) and ``.npy`` versions other than 1.0 and 2.0 are refused.
Every problem is a :class:`~leafgrad.serialization.SerializationError`.
"""
from __future__ import annotations

import math
import os
import zipfile
import zlib
from typing import Any, Dict, NamedTuple, Optional

import numpy as np

__all__ = ["Member", "NpzArchive"]

#: The largest ``.npy`` header read (NumPy's own default limit).
_MAX_HEADER = 10000
_ALLOWED_KINDS = "biufcUS"  # numbers, booleans and fixed-width text (never objects)
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, NotImplementedError,
               ValueError, RuntimeError, OverflowError)


class Member(NamedTuple):
    """One array of an archive, as its header declares it."""

    key: str            #: the array's name (the member's name without ``.npy``)
    shape: tuple        #: declared shape
    dtype: np.dtype     #: declared dtype
    fortran: bool       #: stored in Fortran order
    nbytes: int         #: bytes of data the declaration implies
    stored: int         #: bytes the member takes in the file (compressed or not)

    @property
    def size(self) -> int:
        """Number of elements declared."""
        return math.prod(self.shape)


def _error(message: str) -> Exception:
    from leafgrad.serialization import SerializationError  # the public error type lives there
    return SerializationError(message)


def _describe_start(head: bytes) -> str:
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array, not an .npz archive"
    if head[:1] == b"\x80":
        return "a Python pickle, not an .npz archive (pickles are never loaded)"
    if not head:
        return "empty"
    return "not an .npz (zip) archive"


class NpzArchive:
    """An open ``.npz`` file whose members' headers have been read and checked (``with NpzArchive(...) as a``).

    ``members`` maps each array name to its :class:`Member`; :meth:`read`
    reads one array (a writable NumPy array) after checking its data's length
    and checksum.  ``what`` prefixes every error message.
    """

    def __init__(self, path: str, what: str) -> None:
        self.path, self.what = path, what
        with open(path, "rb") as f:
            head = f.read(8)
        if not head.startswith(b"PK"):
            raise _error(f"{what}: {path!r} is {_describe_start(head)}")
        self._file_size = os.path.getsize(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except _ZIP_ERRORS as err:
            raise self._corrupt(None, err) from err
        try:
            self.members: Dict[str, Member] = {}
            self._infos: Dict[str, zipfile.ZipInfo] = {}
            for info in self._zip.infolist():
                self._scan(info)
        except BaseException:
            self._zip.close()
            raise

    def _corrupt(self, key: Optional[str], err: BaseException) -> Exception:
        where = "" if key is None else f" (at entry {key!r})"
        return _error(f"{self.what}: {self.path!r} is truncated or corrupt{where}: {type(err).__name__}: {err}")

    def _scan(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if not name.endswith(".npy") or info.is_dir():
            raise _error(f"{self.what}: {self.path!r}: member {name!r} is not a .npy array; refusing the archive")
        key = name[:-len(".npy")]
        if key in self.members:
            raise _error(f"{self.what}: {self.path!r}: entry {key!r} appears twice; refusing the archive")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _error(f"{self.what}: {self.path!r}: entry {key!r} uses an unsupported compression")
        try:
            with self._zip.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=_MAX_HEADER)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=_MAX_HEADER)
                else:
                    raise _error(f"{self.what}: {self.path!r}: entry {key!r} is a .npy file of version "
                                 f"{version[0]}.{version[1]}, which is not read")
                header_len = stream.tell()
        except _ZIP_ERRORS as err:
            raise _error(f"{self.what}: {self.path!r}: entry {key!r} is corrupt: {err}") from err
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise _error(f"{self.what}: {self.path!r}: entry {key!r} holds pickled Python objects; "
                         "refusing to load it (allow_pickle=False)")
        if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise _error(f"{self.what}: {self.path!r}: entry {key!r}: unsupported dtype {dtype} in the file")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != header_len + nbytes:
            raise _error(f"{self.what}: {self.path!r}: entry {key!r} is corrupt: it declares shape {tuple(shape)} "
                         f"of {dtype} ({nbytes} bytes) but stores {max(info.file_size - header_len, 0)} bytes")
        if info.compress_size > self._file_size:
            raise _error(f"{self.what}: {self.path!r} is truncated or corrupt: entry {key!r} claims "
                         f"{info.compress_size} bytes in a file of {self._file_size}")
        self.members[key] = Member(key, tuple(shape), dtype, bool(fortran), nbytes, info.compress_size)
        self._infos[key] = info

    def read(self, key: str) -> np.ndarray:
        """The array ``key``, read after its header was accepted; SerializationError if its data is damaged."""
        m = self.members[key]
        buf = bytearray(m.nbytes)
        try:
            with self._zip.open(self._infos[key]) as stream:
                header_len = self._infos[key].file_size - m.nbytes
                if len(stream.read(header_len)) != header_len:
                    raise EOFError("the header is cut short")
                got = stream.readinto(memoryview(buf)) if m.nbytes else 0
                if got != m.nbytes or stream.read(1) != b"":  # reading to the end checks the CRC
                    raise EOFError(f"expected {m.nbytes} bytes of data, found {got}")
        except _ZIP_ERRORS as err:
            raise _error(f"{self.what}: {self.path!r}: entry {key!r} is corrupt: {err}") from err
        a = np.frombuffer(buf, dtype=m.dtype) if m.nbytes else np.zeros(0, dtype=m.dtype)
        return a.reshape(m.shape, order="F" if m.fortran else "C")

    def read_all(self) -> Dict[str, np.ndarray]:
        """Every array of the archive, by name."""
        return {key: self.read(key) for key in self.members}

    def close(self) -> None:
        """Close the file."""
        self._zip.close()

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
