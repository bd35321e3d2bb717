"""A run interrupted after ``--stop`` steps and resumed from rank 0's checkpoint ends where the uninterrupted run ends.

Rank 0 alone writes the checkpoint and alone reads it back into a freshly built
model (other ranks start from different weights); ``broadcast_state`` gives
every rank rank 0's parameters and Adam state, and the loader continues at the
saved epoch and step.  Rank 0 saves both runs' final parameters.
"""
from __future__ import annotations

import os

from common import communicator, dataset, model_for, parser, save

import leafgrad.distributed as dist
from leafgrad.optimizers import Adam
from leafgrad.serialization import load_checkpoint, save_checkpoint

BATCH = 4
EPOCHS = 3


def train(comm, model, opt, loader, steps):
    """Take ``steps`` optimizer steps from where ``loader`` is; return (epoch, iteration) reached."""
    for _ in range(steps):
        try:
            x, t = next(loader)
        except StopIteration:
            x, t = next(loader)
        model.cleargrads()
        if len(t) == 0:
            opt.update(weight=0)
            continue
        opt.backward(model.loss(x, t), weight=len(t))
        opt.update()


def fresh(comm, data):
    model = model_for(comm)
    opt = dist.DistributedOptimizer(Adam(0.01), comm, bucket_mb=0.001).setup(model)
    loader = dist.DistributedDataLoader(data, BATCH, comm, seed=5)
    return model, opt, loader


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--stop", type=int, default=7)
    args = p.parse_args()
    comm = communicator(args.serial)
    data = dataset(37)
    steps_per_epoch = len(dist.ShardSampler(len(data), BATCH, comm))
    total = EPOCHS * steps_per_epoch

    model, opt, loader = fresh(comm, data)
    train(comm, model, opt, loader, total)
    straight = {name: p.data.copy() for name, p in dist.named_parameters(model)}

    model, opt, loader = fresh(comm, data)
    train(comm, model, opt, loader, args.stop)
    ckpt = args.out + ".ckpt.npz"
    if comm.is_root:
        save_checkpoint(ckpt, model, opt, epoch=loader.epoch,
                        extra={"iteration": loader.iteration})
    del model, opt, loader

    model, opt, loader = fresh(comm, data)   # as a new job would start
    where = None
    if comm.is_root:
        info = load_checkpoint(ckpt, model, opt.optimizer)
        where = (info["epoch"], info["extra"]["iteration"])
        os.remove(ckpt)
    epoch, iteration = comm.bcast_object(where)
    opt.broadcast_state()
    loader.set_epoch(epoch, iteration)
    train(comm, model, opt, loader, total - args.stop)
    resumed = {name: p.data for name, p in dist.named_parameters(model)}

    out = {"straight/" + k: v for k, v in straight.items()}
    out.update({"resumed/" + k: v for k, v in resumed.items()})
    save(comm, args.out, out)


if __name__ == "__main__":
    main()
