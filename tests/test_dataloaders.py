"""DataLoader and SeqDataLoader: DeZero's batches and random-number consumption."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leafgrad import cuda
from leafgrad.dataloaders import DataLoader, SeqDataLoader
from leafgrad.datasets import Dataset, SinCurve, Spiral


class Range(Dataset):
    """``data[i] = (i, -i)`` as float32, ``label[i] = i``."""

    def __init__(self, n):
        self.n = n
        super().__init__()

    def prepare(self):
        i = np.arange(self.n)
        self.data = np.stack([i, -i], axis=1).astype(np.float32)
        self.label = i


def test_shuffled_batches_follow_the_permutation():
    ds = Spiral()
    np.random.seed(5)
    loader = DataLoader(ds, 30)
    np.random.seed(5)
    perm = np.random.permutation(300)
    batches = list(loader)
    assert len(batches) == 10 == len(loader)
    for k, (x, t) in enumerate(batches):
        idx = perm[k * 30:(k + 1) * 30]
        assert x.dtype == np.float32 and x.shape == (30, 2)
        assert np.array_equal(x, ds.data[idx]) and np.array_equal(t, ds.label[idx])
    # The pass ended: the loader drew the next permutation, right after the first one (as DeZero).
    np.random.seed(5)
    np.random.permutation(300)
    assert np.array_equal(loader.index, np.random.permutation(300))
    assert loader.iteration == 0


def test_unshuffled_batches_and_last_partial_batch():
    ds = Range(7)
    loader = DataLoader(ds, 3, shuffle=False)
    batches = list(loader)
    assert [t.tolist() for _, t in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches[2][0].tolist() == [[6.0, -6.0]]
    assert [t.tolist() for _, t in loader] == [[0, 1, 2], [3, 4, 5], [6]]  # a second pass


def test_next_and_reset():
    loader = DataLoader(Range(5), 2, shuffle=False)
    assert loader.next()[1].tolist() == [0, 1]
    assert next(loader)[1].tolist() == [2, 3]
    loader.reset()
    assert loader.next()[1].tolist() == [0, 1]


def test_labels_none():
    class NoLabel(Dataset):
        def prepare(self):
            self.data = np.arange(4, dtype=np.float32)
    x, t = next(DataLoader(NoLabel(), 4, shuffle=False))
    assert x.tolist() == [0, 1, 2, 3] and t.tolist() == [None] * 4


@pytest.mark.parametrize("bad", [0, -1, 2.5, None, True])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match="DataLoader: batch_size must be a positive int"):
        DataLoader(Range(3), bad)


def test_cpu_gpu_switch():
    loader = DataLoader(Range(3), 2)
    loader.to_cpu()
    assert loader.gpu is False
    if cuda.gpu_enable:
        loader.to_gpu()
        x, _ = next(loader)
        assert cuda.get_array_module(x) is cuda.cupy
    else:
        with pytest.raises(RuntimeError, match="DataLoader: gpu=True needs CuPy"):
            loader.to_gpu()
        with pytest.raises(RuntimeError, match="SeqDataLoader: gpu=True needs CuPy"):
            SeqDataLoader(Range(3), 1, gpu=True)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), batch=st.integers(1, 50), seed=st.integers(0, 2 ** 31 - 1))
def test_one_pass_covers_the_data_once(n, batch, seed):
    np.random.seed(seed)
    loader = DataLoader(Range(n), batch)
    np.random.seed(seed)
    perm = np.random.permutation(n)
    labels = [t for _, t in loader]
    assert len(labels) == math.ceil(n / batch)
    assert all(len(t) == batch for t in labels[:-1]) and 1 <= len(labels[-1]) <= batch
    assert np.array_equal(np.concatenate(labels), perm)


def test_seq_dataloader_matches_dezero_formula():
    np.random.seed(0)
    ds = SinCurve()
    state = np.random.get_state()[1].copy()
    loader = SeqDataLoader(ds, batch_size=3)
    assert np.array_equal(np.random.get_state()[1], state)  # no random numbers drawn
    jump = len(ds) // 3
    batches = list(loader)
    assert len(batches) == math.ceil(999 / 3)
    for it in (0, 1, 332):
        idx = [(k * jump + it) % len(ds) for k in range(3)]
        x, t = batches[it]
        assert x.shape == (3, 1) and t.shape == (3, 1)
        assert np.array_equal(x, ds.data[idx]) and np.array_equal(t, ds.label[idx])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), batch=st.integers(1, 10))
def test_seq_dataloader_rows_walk_in_order(n, batch):
    loader = SeqDataLoader(Range(n), batch)
    rows = np.stack([t for _, t in loader], axis=1)  # (batch, iterations)
    jump = n // batch
    expected = (np.arange(batch)[:, None] * jump + np.arange(rows.shape[1])[None, :]) % n
    assert np.array_equal(rows, expected)
