"""Train with every optimizer for two epochs; rank 0 saves the final parameters.

``mpiexec -n 2 python train_equivalence.py --batch 4 --out a.npz`` must give
the parameters of ``python train_equivalence.py --serial --batch 8 --out b.npz``.
"""
from __future__ import annotations

from common import dataset, model_for, communicator, parser, save

import leafgrad.distributed as dist
from leafgrad.optimizers import SGD, AdaDelta, AdaGrad, Adam, ClipGrad, MomentumSGD, WeightDecay


def optimizers():
    adam = Adam(0.01)
    adam.add_hook(WeightDecay(1e-3))
    adam.add_hook(ClipGrad(0.5))
    return {"SGD": SGD(0.1), "MomentumSGD": MomentumSGD(0.1), "AdaGrad": AdaGrad(0.05),
            "AdaDelta": AdaDelta(), "Adam": adam}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch", type=int, required=True, help="batch size per rank")
    p.add_argument("--examples", type=int, default=41)
    p.add_argument("--bucket-mb", type=float, default=0.001)
    args = p.parse_args()
    comm = communicator(args.serial)
    data = dataset(args.examples)
    results = {}
    for k, (name, inner) in enumerate(optimizers().items()):
        model = model_for(comm)
        opt = dist.DistributedOptimizer(inner, comm, bucket_mb=args.bucket_mb).setup(model)
        loader = dist.DistributedDataLoader(data, args.batch, comm, seed=3)
        overlap = k % 2 == 0   # half the optimizers average during backward, half in update()
        for epoch in range(2):
            for x, t in loader:
                model.cleargrads()
                if len(t) == 0:   # the short last batch left this rank nothing
                    opt.update(weight=0)
                    continue
                loss = model.loss(x, t)
                if overlap:
                    opt.backward(loss, weight=len(t))
                    opt.update()
                else:
                    loss.backward()
                    opt.update(weight=len(t))
        for pname, param in dist.named_parameters(model):
            results[f"{name}/{pname}"] = param.data
        results[f"{name}/calls"] = opt.reducer.stats["allreduce_calls"]
    save(comm, args.out, results)


if __name__ == "__main__":
    main()
