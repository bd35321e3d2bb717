"""Train with every optimizer for two epochs, each in its own way of stepping; rank 0 saves the final parameters.

``mpiexec -n 2 python train_equivalence.py --batch 4 --out a.npz`` must give
the parameters of ``python train_equivalence.py --serial --batch 8 --out b.npz``.
The ways of stepping (``MODES``) cover the optimizer's ``backward(loss, weight)``,
plain ``loss.backward()`` (averaged while backward runs, by the gradient hooks),
a weight given only to ``update``, and micro-batches accumulated in ``param.grad``
with and without ``no_sync()``.  Some runs use 45 examples, so that the last
batch splits unevenly (3 and 2) and the weights matter, the others 41, so that
the last batch leaves one rank nothing.  The reducer's counters are saved too
(``NAME/stats/...``).
"""
from __future__ import annotations

from common import dataset, model_for, communicator, parser, save

import leafgrad.distributed as dist
from leafgrad.optimizers import SGD, AdaDelta, AdaGrad, Adam, ClipGrad, MomentumSGD, WeightDecay

# optimizer name -> (way of stepping, examples added to --examples)
MODES = {"SGD": ("explicit", 0), "MomentumSGD": ("update_weight", 4), "AdaGrad": ("plain", 0),
         "AdaDelta": ("no_sync", 4), "Adam": ("accumulate", 0)}


def optimizers():
    adam = Adam(0.01)
    adam.add_hook(WeightDecay(1e-3))
    adam.add_hook(ClipGrad(0.5))
    return {"SGD": SGD(0.1), "MomentumSGD": MomentumSGD(0.1), "AdaGrad": AdaGrad(0.05),
            "AdaDelta": AdaDelta(), "Adam": adam}


def micro_losses(model, x, t):
    """The batch's loss as two micro-batch terms (each scaled by its share of the batch) that add up to it."""
    n, h = len(t), len(t) // 2
    parts = [(x[:h], t[:h]), (x[h:], t[h:])]
    return [model.loss(xp, tp) * (len(tp) / n) for xp, tp in parts if len(tp)]


def step(model, opt, mode, x, t):
    """One optimizer step on this rank's batch ``x, t`` (not empty)."""
    n = len(t)
    if mode == "explicit":
        opt.backward(model.loss(x, t), weight=n)
        opt.update()
    elif mode == "update_weight":        # sent during backward with weight 1, so sent again with n
        model.loss(x, t).backward()
        opt.update(weight=n)
    elif mode == "plain":                # right without weights: this model's batches are even but for one
        model.loss(x, t).backward()
        opt.update()
    elif mode == "no_sync":
        *first, last = micro_losses(model, x, t)
        with opt.no_sync():
            for loss in first:
                loss.backward()
        opt.backward(last, weight=n)     # sends the accumulated total while this backward runs
        opt.update()
    else:                                # accumulate without no_sync: what went out early is redone
        for loss in micro_losses(model, x, t):
            loss.backward()
        opt.update(weight=n)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch", type=int, required=True, help="batch size per rank")
    p.add_argument("--examples", type=int, default=41)
    p.add_argument("--bucket-mb", type=float, default=0.001)
    args = p.parse_args()
    comm = communicator(args.serial)
    results = {}
    for name, inner in optimizers().items():
        mode, extra = MODES[name]
        data = dataset(args.examples + extra)
        model = model_for(comm)
        opt = dist.DistributedOptimizer(inner, comm, bucket_mb=args.bucket_mb).setup(model)
        loader = dist.DistributedDataLoader(data, args.batch, comm, seed=3)
        for epoch in range(2):
            for x, t in loader:
                model.cleargrads()
                if len(t) == 0:   # the short last batch left this rank nothing
                    opt.update(weight=0)
                    continue
                step(model, opt, mode, x, t)
        for pname, param in dist.named_parameters(model):
            results[f"{name}/{pname}"] = param.data
        for key, value in opt.reducer.stats.items():
            results[f"{name}/stats/{key}"] = value
        results[f"{name}/stats/buckets"] = len(opt.reducer.buckets)
    save(comm, args.out, results)


if __name__ == "__main__":
    main()
