"""Shared pieces of the scripts that tests/test_distributed.py runs under ``mpiexec``."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

# Run from the repository checkout these scripts live in, whatever the working directory.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import leafgrad.distributed as dist  # noqa: E402
import leafgrad.functions as F  # noqa: E402
from leafgrad.core import Parameter  # noqa: E402
from leafgrad.layers import Layer  # noqa: E402


def communicator(serial: bool) -> dist.Communicator:
    """The world communicator, or a job of one rank that never touches MPI (``--serial``)."""
    if serial:
        return dist.Communicator(mpi_comm=False)
    return dist.init()


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--serial", action="store_true", help="one process, no MPI")
    p.add_argument("--out", required=True, help=".npz file rank 0 writes")
    return p


class Affine(Layer):
    """``x W + b``, written with basic functions only."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.W = Parameter((rng.standard_normal((n_in, n_out)) * (1.0 / np.sqrt(n_in))).astype(np.float32))
        self.b = Parameter(np.zeros(n_out, np.float32))

    def forward(self, x):
        return F.matmul(x, self.W) + self.b


class Net(Layer):
    """A small MLP and a side head that only examples with ``x[:, 0] > 1`` use."""

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__()
        self.l0 = Affine(5, 16, rng)
        self.l1 = Affine(16, 16, rng)
        self.l2 = Affine(16, 3, rng)
        self.side = Affine(5, 3, rng)

    def forward(self, x):
        return self.l2(F.tanh(self.l1(F.tanh(self.l0(x)))))

    def loss(self, x, t):
        """Mean squared error over the batch, plus the side head's term for the examples it sees."""
        n = len(t)
        y = self(x)
        loss = F.sum((y - t) ** 2) / n
        rows = np.nonzero(x[:, 0] > 1.0)[0]
        if len(rows):
            loss = loss + F.sum(self.side(x[rows]) ** 2) / n
        return loss


def dataset(n: int) -> list:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    t = rng.standard_normal((n, 3)).astype(np.float32)
    return list(zip(x, t))


def model_for(comm: dist.Communicator) -> Net:
    """Rank 0 draws the weights every run draws; other ranks draw different ones (the broadcast must fix them)."""
    return Net(np.random.default_rng(0 if comm.rank == 0 else 100 + comm.rank))


def save(comm: dist.Communicator, path: str, arrays: dict) -> None:
    """Rank 0 writes ``arrays`` (written to a temporary name first, then renamed)."""
    if comm.is_root:
        tmp = path + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
