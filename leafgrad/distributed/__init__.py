"""Data-parallel training over MPI (``pip install 'leafgrad[mpi]'``), launched with ``mpiexec -n N``.

Each rank holds a full copy of the model, reads its own shard of the data, and
averages gradients with the other ranks before every update, so N ranks with
batch b train like one process with batch N*b::

    import leafgrad.distributed as dist

    comm = dist.init()                       # rank, size, is_root; errors abort the job
    model = MLP((1000, 10))
    model(x_train[:1])                       # create lazily-sized weights before setup
    optimizer = dist.DistributedOptimizer(SGD(lr=0.1), comm).setup(model)  # rank 0's weights everywhere
    loader = dist.DistributedDataLoader(train_set, batch_size=64, comm=comm, seed=0)
    for epoch in range(max_epoch):
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()                  # each bucket's allreduce starts during backward
            optimizer.update()               # waits for the averages, then SGD updates
        if comm.is_root:
            print(epoch, float(loss.data))

See ``docs/distributed.md`` for launching on several machines and the cost model.
"""
from __future__ import annotations

from leafgrad.distributed.communicator import Communicator, get_world, mpi_available
from leafgrad.distributed.data import DistributedDataLoader, ShardSampler
from leafgrad.distributed.failure import abort_on_error, install_abort_handler
from leafgrad.distributed.optimizer import DistributedOptimizer
from leafgrad.distributed.parameters import broadcast_parameters, named_parameters
from leafgrad.distributed.reducer import GradientReducer

__all__ = [
    "init", "Communicator", "get_world", "mpi_available", "DistributedOptimizer", "GradientReducer",
    "ShardSampler", "DistributedDataLoader", "broadcast_parameters", "named_parameters",
    "abort_on_error", "install_abort_handler",
]


def init(abort_on_exception: bool = True) -> Communicator:
    """The communicator of all ranks; with ``abort_on_exception``, an uncaught error on any rank ends the job.

    Works without ``mpiexec`` (and without mpi4py) as a job of one rank.
    """
    comm = get_world()
    if abort_on_exception:
        install_abort_handler(comm)
    return comm
