"""Shared test fixtures."""
import gc
import urllib.parse
import urllib.request

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _reset_random_state():
    """Every test starts from the same NumPy random state."""
    np.random.seed(0)
    yield


@pytest.fixture
def no_gc():
    """Disable the cyclic garbage collector: whatever is freed is freed by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach beyond this machine (other than file:// and 127.0.0.1) fails the test."""
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        parts = urllib.parse.urlsplit(url if isinstance(url, str) else url.full_url)
        if parts.scheme not in ("file", "") and parts.hostname != "127.0.0.1":
            raise AssertionError(f"a test tried to reach the network: {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
