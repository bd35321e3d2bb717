"""Each rank reads its own shard: every example goes to exactly one rank each epoch.

The epoch's order is a permutation drawn from ``(seed, epoch)``, the same on
every rank without any communication, and new each epoch.  It is cut into
*global* batches of ``batch_size * size`` examples (``batch_size`` with
``per_rank=False``), exactly the batches one process with that batch size
would take; global batch ``k`` is split into
``size`` consecutive parts, part ``r`` going to rank ``r``.  Every rank thus
makes the same number of steps (no rank waits forever in a collective for a
step another rank does not make).  Only the last global batch of an epoch may
be short: it is split as evenly as possible, so some ranks may get one example
fewer, or none; ``DistributedOptimizer.update(weight=len(t))`` then averages
exactly as one process would.
"""
from __future__ import annotations

import math
from typing import Any, Iterator, List, Optional

import numpy as np

from leafgrad import cuda
from leafgrad.dataloaders import DataLoader
from leafgrad.distributed.communicator import Communicator, get_world

__all__ = ["ShardSampler", "DistributedDataLoader"]


class ShardSampler:
    """The example indices of each step of an epoch, for one rank.

    ``ShardSampler(num_examples, batch_size, comm=None, shuffle=True, seed=0,
    drop_last=False, per_rank=True)``; ``batch_size`` is the per-rank batch
    size, or, with ``per_rank=False``, the global batch size (the examples of
    one step over all ranks, split as evenly as possible: ranks' shares then
    differ by at most one example).  ``drop_last=True`` leaves out the short
    last global batch (those examples then go to no rank that epoch).
    ``split(order)`` cuts an order of the caller's own into this rank's steps.
    """

    def __init__(self, num_examples: int, batch_size: int, comm: Optional[Communicator] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 per_rank: bool = True) -> None:
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"ShardSampler: batch_size must be a positive int, got {batch_size!r}")
        if num_examples < 0:
            raise ValueError(f"ShardSampler: num_examples must be >= 0, got {num_examples!r}")
        comm = comm if comm is not None else get_world()
        self.num_examples = int(num_examples)
        self.batch_size = int(batch_size)
        self.rank, self.size = comm.rank, comm.size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.per_rank = per_rank

    @property
    def global_batch_size(self) -> int:
        """Examples per step over all ranks: ``batch_size * size`` (``batch_size`` when not ``per_rank``)."""
        return self.batch_size * self.size if self.per_rank else self.batch_size

    def __len__(self) -> int:
        """Steps per epoch (the same on every rank)."""
        n, g = self.num_examples, self.global_batch_size
        return n // g if self.drop_last else math.ceil(n / g)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """All example indices in the order of ``epoch`` (identical on every rank)."""
        if not self.shuffle:
            return np.arange(self.num_examples)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_examples)

    def batches(self, epoch: int) -> List[np.ndarray]:
        """This rank's index array for each step of ``epoch`` (the last may be shorter, or empty)."""
        return self.split(self.epoch_order(epoch))

    def split(self, order: np.ndarray) -> List[np.ndarray]:
        """This rank's index array for each step of an epoch that takes the examples in ``order``.

        ``order`` holds ``num_examples`` indices, the same on every rank (for
        instance a permutation drawn from a generator seeded alike everywhere).
        """
        if len(order) != self.num_examples:
            raise ValueError(f"ShardSampler.split: the order has {len(order)} indices, "
                             f"expected {self.num_examples}")
        g = self.global_batch_size
        out = []
        for k in range(len(self)):
            global_batch = order[k * g:(k + 1) * g]
            out.append(global_batch if self.size == 1 else np.array_split(global_batch, self.size)[self.rank])
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        raise TypeError("ShardSampler: iterate over sampler.batches(epoch)")


class DistributedDataLoader(DataLoader):
    """A ``DataLoader`` that gives this rank its shard of each global batch.

    ``DistributedDataLoader(dataset, batch_size, comm=None, shuffle=True, seed=0,
    drop_last=False, gpu=False)``; ``batch_size`` is per rank.  Each pass is the
    next epoch (``loader.epoch``), reshuffled from the shared ``seed``;
    ``set_epoch(epoch, iteration=0)`` jumps to a point of the run (resuming a
    checkpoint).  Draws nothing from NumPy's global generator.
    """

    def __init__(self, dataset: Any, batch_size: int, comm: Optional[Communicator] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 gpu: bool = False) -> None:
        self.sampler = ShardSampler(len(dataset), batch_size, comm, shuffle, seed, drop_last)
        self._next_epoch = 0
        super().__init__(dataset, batch_size, shuffle=shuffle, gpu=gpu)
        self.max_iter = len(self.sampler)

    def reset(self) -> None:
        """Start the next epoch."""
        self.iteration = 0
        self.epoch = self._next_epoch
        self._next_epoch += 1
        self._steps = self.sampler.batches(self.epoch)
        self.index = np.concatenate(self._steps) if self._steps else np.arange(0)

    def set_epoch(self, epoch: int, iteration: int = 0) -> None:
        """Continue at step ``iteration`` of ``epoch`` (as the same run would have)."""
        self._next_epoch = int(epoch)
        self.reset()
        if not 0 <= iteration <= self.max_iter:
            raise ValueError(f"DistributedDataLoader.set_epoch: iteration {iteration} is outside "
                             f"0..{self.max_iter}")
        self.iteration = int(iteration)

    def __next__(self) -> tuple:
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        idx = self._steps[self.iteration]
        self.iteration += 1
        if len(idx) == 0:
            return self._empty_batch()
        return self._batch(idx)

    def _empty_batch(self) -> tuple:
        """A batch of zero examples shaped like the data set's examples."""
        x0, t0 = self.dataset[0]
        xp = cuda.cupy if self.gpu else np
        x0, t0 = np.asarray(x0), np.asarray(t0)
        return xp.empty((0,) + x0.shape, x0.dtype), xp.empty((0,) + t0.shape, t0.dtype)
