"""get_file: cache folder, atomic download, checksums, and a clear error without network.

No test touches the network: downloads come from ``file://`` URLs or from an
HTTP server on 127.0.0.1 run in a thread for the test.
"""
import hashlib
import http.server
import os
import socket
import threading
import urllib.request
from pathlib import Path

import pytest

from leafgrad import download
from leafgrad.download import ChecksumError, DownloadError, get_cache_dir, get_file

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch, no_network):
    """A fresh cache folder per test, short socket timeouts, and no URL beyond this machine."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("LEAFGRAD_CACHE_DIR", str(folder))
    monkeypatch.setattr(download, "_TIMEOUT_S", 5.0)
    return folder


@pytest.fixture
def source(tmp_path):
    """A file to download, with its file:// URL."""
    src = tmp_path / "src" / "data.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    return src, src.as_uri()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 - http.server's naming
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, declared = route
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 in a thread; ``routes[path] = (body, declared Content-Length)``."""
    routes: dict = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield base, routes
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------------------------
def test_cache_dir_from_environment(cache):
    assert get_cache_dir() == str(cache)


def test_cache_dir_default_without_environment(monkeypatch):
    monkeypatch.delenv("LEAFGRAD_CACHE_DIR")
    assert get_cache_dir() == download.cache_dir
    monkeypatch.setattr(download, "cache_dir", "/somewhere/else")
    assert get_cache_dir() == "/somewhere/else"


def test_default_cache_dir_is_dot_leafgrad():
    import importlib
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "LEAFGRAD_CACHE_DIR"}
    code = "import leafgrad.download as d, os; print(d.cache_dir == os.path.join(os.path.expanduser('~'), '.leafgrad'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=str(Path(importlib.import_module("leafgrad").__file__).parent.parent))
    assert out.stdout.strip() == "True", out.stderr


def test_file_url_download_and_cache(cache, source, capsys):
    src, url = source
    path = get_file(url)
    assert path == str(cache / "data.bin")
    assert Path(path).read_bytes() == PAYLOAD
    assert "Downloading: data.bin" in capsys.readouterr().err
    assert _leftovers(cache) == ["data.bin"]  # no temporary file left behind
    # Cached: the source can vanish, no download happens.
    src.unlink()
    assert get_file(url) == path
    assert capsys.readouterr().err == ""


def test_file_name_argument(cache, source):
    _, url = source
    path = get_file(url, "other.bin", quiet=True)
    assert path == str(cache / "other.bin")
    assert Path(path).read_bytes() == PAYLOAD


def test_file_name_from_url_ignores_query(cache, server):
    base, routes = server
    routes["/dir/thing.txt?x=1"] = (b"hello", 5)
    assert get_file(base + "/dir/thing.txt?x=1", quiet=True) == str(cache / "thing.txt")


@pytest.mark.parametrize("bad", ["../evil", "a/b", "..", ""])
def test_bad_file_name(bad, source):
    _, url = source
    with pytest.raises(ValueError, match="get_file"):
        get_file(url, bad)


def test_http_download_with_checksums(cache, server):
    base, routes = server
    routes["/f.bin"] = (PAYLOAD, len(PAYLOAD))
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert Path(get_file(base + "/f.bin", md5=md5, quiet=True)).read_bytes() == PAYLOAD
    assert Path(get_file(base + "/f.bin", "g.bin", sha256=sha.upper(), quiet=True)).read_bytes() == PAYLOAD
    with pytest.raises(ValueError, match="not both"):
        get_file(base + "/f.bin", "h.bin", md5=md5, sha256=sha)


def test_checksum_mismatch_discards_download(cache, server):
    base, routes = server
    routes["/f.bin"] = (PAYLOAD, len(PAYLOAD))
    with pytest.raises(ChecksumError, match=r"checksum mismatch for .*/f\.bin: expected sha256 0+"):
        get_file(base + "/f.bin", sha256="0" * 64, quiet=True)
    assert _leftovers(cache) == []


def test_known_checksum_table_is_used(cache, server, monkeypatch):
    base, routes = server
    routes["/train-images-idx3-ubyte.gz"] = (b"not mnist", 9)
    url = base + "/train-images-idx3-ubyte.gz"
    monkeypatch.setitem(download.KNOWN_CHECKSUMS, url, ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"))
    with pytest.raises(ChecksumError, match="expected md5 f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        get_file(url, quiet=True)
    assert _leftovers(cache) == []
    # An explicit checksum takes precedence over the table.
    assert get_file(url, md5=hashlib.md5(b"not mnist").hexdigest(), quiet=True)


def test_known_checksums_are_the_published_ones():
    table = download.KNOWN_CHECKSUMS
    assert table["https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz"] == (
        "md5", "ec29112dd5afa0611ce80d1b7f02629c")
    assert table["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"] == (
        "md5", "c32a1d4ab5d03f1284b67883e8d87530")
    assert table["https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"] == (
        "md5", "03b5dce01913d631647c71ecec9e9cb8")
    for algorithm, digest in table.values():
        assert algorithm == "md5" and len(digest) == 32 and int(digest, 16) >= 0


def test_truncated_download_leaves_nothing(cache, server):
    base, routes = server
    routes["/short.bin"] = (PAYLOAD[:100], len(PAYLOAD))  # the server promises more than it sends
    with pytest.raises(DownloadError, match="short.bin"):
        get_file(base + "/short.bin", quiet=True)
    assert _leftovers(cache) == []


def test_interrupted_download_keeps_nothing_and_old_state(cache, source, monkeypatch):
    _, url = source
    real_urlopen = urllib.request.urlopen

    class Broken:
        def __init__(self, response):
            self.response, self.calls = response, 0
            self.headers = response.headers

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt  # e.g. Ctrl-C halfway through
            return self.response.read(10)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.response.close()

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Broken(real_urlopen(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        get_file(url, quiet=True)
    assert _leftovers(cache) == []


def test_no_network_error_is_one_clear_line(cache):
    url = f"http://127.0.0.1:{_closed_port()}/mnist/train-images-idx3-ubyte.gz"
    with pytest.raises(DownloadError) as info:
        get_file(url)
    msg = str(info.value)
    assert msg.startswith(f"get_file: could not download {url} (no network?): ")
    assert f"put the file at {cache / 'train-images-idx3-ubyte.gz'} to use it offline" in msg
    assert "\n" not in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert isinstance(info.value, OSError)
    assert _leftovers(cache) == []


def test_not_a_url(cache):
    with pytest.raises(ValueError, match="get_file: cannot download 'nonsense/x.bin': unknown url type"):
        get_file("nonsense/x.bin")


def test_http_404(cache, server):
    base, _ = server
    with pytest.raises(DownloadError, match=r"HTTP 404.*put the file at"):
        get_file(base + "/missing.bin", quiet=True)


def test_mirrors_are_tried_in_order(cache, source):
    _, url = source
    dead = f"http://127.0.0.1:{_closed_port()}/data.bin"
    path = get_file(dead, mirrors=[url], quiet=True)
    assert Path(path).read_bytes() == PAYLOAD


def test_all_mirrors_fail(cache):
    port = _closed_port()
    with pytest.raises(DownloadError, match=r"from any of 2 URLs .*put the file at") as info:
        get_file(f"http://127.0.0.1:{port}/a/x.bin", mirrors=[f"http://127.0.0.1:{port}/b/x.bin"])
    assert "/a/x.bin" in str(info.value) and "/b/x.bin" in str(info.value)


def test_cached_file_is_trusted_without_checksum(cache):
    cache.mkdir()
    (cache / "cifar-10-binary.tar.gz").write_bytes(b"placed by hand")
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert get_file(url) == str(cache / "cifar-10-binary.tar.gz")


def test_utils_reexports_get_file():
    from leafgrad import utils
    assert utils.get_file is get_file
    assert "get_file" in utils.__all__
    assert utils.cache_dir == download.cache_dir
