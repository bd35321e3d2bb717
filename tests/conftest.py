"""Shared test fixtures."""
import gc

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
