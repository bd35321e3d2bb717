"""Download files once into a cache folder: ``get_file(url, file_name=None)``.

The cache folder is ``~/.leafgrad`` unless the environment variable
``LEAFGRAD_CACHE_DIR`` names another one (read at each call, so it can be set
after import).  A file already in the cache is used as is, without network:
put a file there by hand to work offline.

A download is written to a temporary file in the cache folder and renamed
into place (``os.replace``) only once it is complete and its checksum (if one
is known) matches, so an interrupted download never leaves a partial file
under the final name.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional, Sequence

__all__ = ["get_file", "get_cache_dir", "cache_dir", "DownloadError", "ChecksumError", "KNOWN_CHECKSUMS"]

#: Name of the environment variable that overrides the cache folder.
CACHE_ENV = "LEAFGRAD_CACHE_DIR"

#: The cache folder as it was when leafgrad was imported (DeZero's ``utils.cache_dir``).
#: ``get_file`` reads ``LEAFGRAD_CACHE_DIR`` again at each call; see :func:`get_cache_dir`.
cache_dir: str = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".leafgrad")

#: Checksums that the publishers of these files state, keyed by URL: ``(algorithm, hex digest)``.
#: A download from one of these URLs is verified against it unless the caller passes its own.
#: MNIST: the MD5s torchvision's ``datasets.MNIST.resources`` lists for these files.
#: CIFAR: the MD5s on the dataset page https://www.cs.toronto.edu/~kriz/cifar.html (binary versions).
KNOWN_CHECKSUMS: dict[str, tuple[str, str]] = {}
for _base in ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"):
    KNOWN_CHECKSUMS.update({
        _base + "train-images-idx3-ubyte.gz": ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        _base + "train-labels-idx1-ubyte.gz": ("md5", "d53e105ee54ea40749a09fcbcd1e9432"),
        _base + "t10k-images-idx3-ubyte.gz": ("md5", "9fb629c4189551a2d022fa330f9573f3"),
        _base + "t10k-labels-idx1-ubyte.gz": ("md5", "ec29112dd5afa0611ce80d1b7f02629c"),
    })
for _base in ("https://www.cs.toronto.edu/~kriz/", "http://www.cs.toronto.edu/~kriz/"):
    KNOWN_CHECKSUMS.update({
        _base + "cifar-10-binary.tar.gz": ("md5", "c32a1d4ab5d03f1284b67883e8d87530"),
        _base + "cifar-100-binary.tar.gz": ("md5", "03b5dce01913d631647c71ecec9e9cb8"),
    })
del _base

_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


class DownloadError(OSError):
    """A file could not be downloaded (no network, unreachable host, HTTP error, truncated transfer)."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its expected checksum; it was discarded."""


def get_cache_dir() -> str:
    """The cache folder ``get_file`` uses now: ``$LEAFGRAD_CACHE_DIR`` if set, else ``cache_dir``."""
    return os.environ.get(CACHE_ENV) or cache_dir


def _file_name_from_url(url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    return path[path.rfind("/") + 1:]


def _check_file_name(file_name: str, url: str) -> None:
    if not file_name:
        raise ValueError(f"get_file: cannot derive a file name from {url!r}; pass file_name=...")
    if file_name in (".", "..") or "/" in file_name or (os.sep != "/" and os.sep in file_name):
        raise ValueError(f"get_file: file_name must be a plain file name, got {file_name!r}")


def _expected_checksum(url: str, md5: Optional[str], sha256: Optional[str]) -> Optional[tuple[str, str]]:
    if md5 is not None and sha256 is not None:
        raise ValueError("get_file: pass md5= or sha256=, not both")
    if sha256 is not None:
        return ("sha256", sha256.lower())
    if md5 is not None:
        return ("md5", md5.lower())
    return KNOWN_CHECKSUMS.get(url)


def _new_hash(algorithm: str):
    if algorithm == "md5":
        try:
            return hashlib.md5(usedforsecurity=False)
        except TypeError:  # pragma: no cover - very old OpenSSL bindings
            return hashlib.md5()
    return hashlib.new(algorithm)


def _progress(file_name: str, done: int, total: Optional[int]) -> None:
    if total:
        frac = min(done / total, 1.0)
        bar = "#" * int(frac * 30)
        sys.stderr.write("\r[{:<30}] {:6.2f}%".format(bar, frac * 100))
    else:
        sys.stderr.write("\r{:.1f} MiB".format(done / (1 << 20)))
    sys.stderr.flush()


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _download(url: str, file_path: str, file_name: str,
              checksum: Optional[tuple[str, str]], quiet: bool) -> None:
    """Fetch ``url`` into a temporary file beside ``file_path``; rename it into place when complete."""
    folder = os.path.dirname(file_path)
    hasher = _new_hash(checksum[0]) if checksum else None
    offline_hint = f"put the file at {file_path} to use it offline"
    try:
        response = urllib.request.urlopen(url, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"get_file: could not download {url}: HTTP {e.code} {e.reason}; "
                            f"{offline_hint}") from None
    except ValueError as e:  # not a URL urllib understands: a caller's mistake, not the network's
        raise ValueError(f"get_file: cannot download {url!r}: {e}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"get_file: could not download {url} (no network?): {reason}; "
                            f"{offline_hint}") from None

    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix="." + file_name + ".", suffix=".part")
    try:
        with response, os.fdopen(fd, "wb") as out:
            length = response.headers.get("Content-Length") if response.headers else None
            total = int(length) if length and length.isdigit() else None
            if not quiet:
                sys.stderr.write(f"Downloading: {file_name}\n")
            done = 0
            try:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    done += len(chunk)
                    if not quiet:
                        _progress(file_name, done, total)
            except (OSError, http.client.HTTPException) as e:
                raise DownloadError(f"get_file: download of {url} broke off after {done} bytes "
                                    f"(no network?): {e}; {offline_hint}") from None
            if total is not None and done != total:
                raise DownloadError(f"get_file: download of {url} is incomplete: got {done} of "
                                    f"{total} bytes; {offline_hint}")
            out.flush()
            os.fsync(out.fileno())
        if not quiet:
            sys.stderr.write(" Done\n")
        if hasher is not None:
            got = hasher.hexdigest()
            if got != checksum[1]:
                raise ChecksumError(f"get_file: checksum mismatch for {url}: expected {checksum[0]} "
                                    f"{checksum[1]}, got {got}; the download was discarded")
        os.replace(tmp_path, file_path)
        _fsync_dir(folder)
    except BaseException:
        try:
            os.remove(tmp_path)
        except OSError:
            pass
        raise


def get_file(url: str, file_name: Optional[str] = None, *, md5: Optional[str] = None,
             sha256: Optional[str] = None, mirrors: Sequence[str] = (), quiet: bool = False) -> str:
    """Return the path of ``file_name`` in the cache folder, downloading it from ``url`` if absent.

    ``file_name`` defaults to the last component of the URL's path.  A download
    is verified against ``md5`` or ``sha256`` when given, else against
    ``KNOWN_CHECKSUMS[url]`` when the publisher states one; a file already in
    the cache is trusted as is.  ``mirrors`` are further URLs for the same file,
    tried in order when ``url`` fails.  Progress goes to stderr unless ``quiet``.
    Raises :class:`DownloadError` (one line, no traceback from ``urllib``)
    when no URL can be fetched, and :class:`ChecksumError` on a bad checksum.
    """
    if file_name is None:
        file_name = _file_name_from_url(url)
    _check_file_name(file_name, url)
    folder = get_cache_dir()
    file_path = os.path.join(folder, file_name)
    if os.path.exists(file_path):
        return file_path
    os.makedirs(folder, exist_ok=True)

    urls = [url, *mirrors]
    errors: list[DownloadError] = []
    for candidate in urls:
        checksum = _expected_checksum(candidate, md5, sha256)
        try:
            _download(candidate, file_path, file_name, checksum, quiet)
            return file_path
        except ChecksumError:
            raise
        except DownloadError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    tried = "; ".join(str(e).split("; put the file at")[0].replace("get_file: ", "") for e in errors)
    raise DownloadError(f"get_file: could not download {file_name} from any of {len(urls)} URLs "
                        f"({tried}); put the file at {file_path} to use it offline")
