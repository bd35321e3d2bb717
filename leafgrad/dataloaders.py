"""Mini-batch iterators over a Dataset (DeZero's ``dezero.dataloaders``)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from leafgrad import cuda

__all__ = ["DataLoader", "SeqDataLoader"]


def _check_gpu(who: str) -> None:
    cuda.require_gpu(f"{who}: gpu=True")


class DataLoader:
    """Iterate over ``dataset`` in mini-batches ``(x, t)`` of ``batch_size`` examples (the last may be smaller).

    With ``shuffle`` the order is a fresh ``np.random.permutation`` at the start
    of each pass (drawn from NumPy's global generator, as in DeZero).  One pass
    ends with ``StopIteration`` and resets the loader for the next one.  With
    ``gpu`` the batches are CuPy arrays.
    """

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool = True, gpu: bool = False) -> None:
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"{type(self).__name__}: batch_size must be a positive int, got {batch_size!r}")
        if gpu:
            _check_gpu(type(self).__name__)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.data_size = len(dataset)
        self.max_iter = math.ceil(self.data_size / self.batch_size)
        self.gpu = gpu
        self.reset()

    def reset(self) -> None:
        """Start a new pass: iteration 0 and, with ``shuffle``, a new permutation."""
        self.iteration = 0
        if self.shuffle:
            self.index = np.random.permutation(len(self.dataset))
        else:
            self.index = np.arange(len(self.dataset))

    def __iter__(self) -> "DataLoader":
        return self

    def __len__(self) -> int:
        """The number of batches in one pass."""
        return self.max_iter

    def _batch(self, batch_index: Any) -> tuple:
        batch = [self.dataset[i] for i in batch_index]
        xp = cuda.cupy if self.gpu else np
        x = xp.array([example[0] for example in batch])
        t = xp.array([example[1] for example in batch])
        return x, t

    def __next__(self) -> tuple:
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        i, batch_size = self.iteration, self.batch_size
        batch = self._batch(self.index[i * batch_size:(i + 1) * batch_size])
        self.iteration += 1
        return batch

    def next(self) -> tuple:
        """The next batch (``next(loader)``)."""
        return self.__next__()

    def to_cpu(self) -> None:
        """Give NumPy batches from now on."""
        self.gpu = False

    def to_gpu(self) -> None:
        """Give CuPy batches from now on (needs CuPy)."""
        _check_gpu(type(self).__name__)
        self.gpu = True


class SeqDataLoader(DataLoader):
    """Batches for truncated BPTT: example ``k`` of batch ``it`` is item ``(k * jump + it) % len(dataset)``.

    ``jump = len(dataset) // batch_size``, so each of the ``batch_size`` rows walks
    its own stretch of the sequence in order; never shuffled.
    """

    def __init__(self, dataset: Any, batch_size: int, gpu: bool = False) -> None:
        super().__init__(dataset=dataset, batch_size=batch_size, shuffle=False, gpu=gpu)

    def __next__(self) -> tuple:
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        jump = self.data_size // self.batch_size
        batch_index = [(k * jump + self.iteration) % self.data_size for k in range(self.batch_size)]
        batch = self._batch(batch_index)
        self.iteration += 1
        return batch
