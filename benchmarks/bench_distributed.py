"""Data-parallel training step on 1 and 2 ranks, with the time spent in communication.

Run: ``python benchmarks/bench_distributed.py`` (needs ``pip install 'leafgrad[mpi]'``).
It starts itself under ``mpiexec -n 1`` and ``mpiexec -n 2`` (one BLAS thread
per rank) and prints, for an MLP ``784-H-H-10`` (ReLU, softmax cross entropy,
float32, SGD) with a batch of ``--batch`` examples per rank:

* ``step``: median time of one training step (forward, backward, averaging, update);
* ``backward``: of which backward (with overlap, it also packs and starts the buckets);
* ``wait``: time blocked waiting for the allreduces after backward (communication not hidden);
* ``allreduce alone``: one blocking allreduce of all the gradient bytes, nothing else running
  (what communication costs when nothing overlaps it), median and fastest;
* for two modes: ``no_sync`` (``with optimizer.no_sync(): loss.backward()``, then every
  bucket is averaged in ``update()``: nothing overlaps) and ``overlap`` (plain
  ``loss.backward()``: the gradient hooks start each bucket during backward).

``--json FILE`` also writes the numbers.  Options: ``--hidden``, ``--batch``,
``--steps``, ``--bucket-mb``, ``--ranks`` (e.g. ``1,2``).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import leafgrad.distributed as dist  # noqa: E402
import leafgrad.functions as F  # noqa: E402
from leafgrad.distributed.launch import mpiexec_command, worker_environment  # noqa: E402
from leafgrad.models import MLP  # noqa: E402
from leafgrad.optimizers import SGD  # noqa: E402

MARK = "BENCH_RESULT "


def worker(args: argparse.Namespace) -> None:
    """One rank: time the training step in both modes; rank 0 prints the medians as JSON."""
    comm = dist.init()
    rng = np.random.default_rng(comm.rank)
    x = rng.standard_normal((args.batch, 784)).astype(np.float32)
    t = rng.integers(0, 10, args.batch)
    np.random.seed(0)
    model = MLP((args.hidden, args.hidden, 10), activation=F.relu)
    model(x[:1])                                  # create the weights before the broadcast
    opt = dist.DistributedOptimizer(SGD(0.01), comm, bucket_mb=args.bucket_mb).setup(model)
    grad_bytes = sum(p.data.nbytes for _, p in dist.named_parameters(model))

    result = {"ranks": comm.size, "hidden": args.hidden, "batch_per_rank": args.batch,
              "grad_MB": grad_bytes / 1e6, "buckets": len(opt.reducer.buckets)}
    modes = ("no_sync", "overlap")
    times = {mode: {"step": [], "forward": [], "backward": [], "wait": [], "update": []} for mode in modes}
    for i in range(2 * (args.steps + 2)):         # the modes alternate, so both see the same machine load
        mode = modes[i % 2]
        comm.barrier()
        t0 = time.perf_counter()
        loss = F.softmax_cross_entropy(model(x), t)
        t1 = time.perf_counter()
        model.cleargrads()
        if mode == "overlap":
            loss.backward()
        else:
            with opt.no_sync():
                loss.backward()
        t2 = time.perf_counter()
        opt.synchronize()
        t3 = time.perf_counter()
        opt.optimizer.update()
        t4 = time.perf_counter()
        if i >= 4:                                # two warm-up steps each (the first also fixes the layout)
            for key, dt in (("step", t4 - t0), ("forward", t1 - t0), ("backward", t2 - t1),
                            ("wait", t3 - t2), ("update", t4 - t3)):
                times[mode][key].append(dt * 1e3)
    for mode in modes:
        result[mode] = {k: statistics.median(v) for k, v in times[mode].items()}

    # Communication alone: one blocking allreduce of all the gradient bytes.
    buf = np.ones(grad_bytes // 4, np.float32)
    alone = []
    for i in range(args.steps + 2):
        comm.barrier()
        t0 = time.perf_counter()
        if comm.mpi_comm is not None:
            from mpi4py import MPI
            comm.mpi_comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        if i >= 2:
            alone.append((time.perf_counter() - t0) * 1e3)
    result["allreduce_alone_ms"] = statistics.median(alone)
    result["allreduce_alone_min_ms"] = min(alone)
    if comm.is_root:
        print(MARK + json.dumps(result), flush=True)


def driver(args: argparse.Namespace) -> None:
    """Start one job per rank count and print the table."""
    rows = []
    for n in [int(r) for r in args.ranks.split(",")]:
        argv = [sys.executable, os.path.abspath(__file__), "--worker", "--hidden", str(args.hidden),
                "--batch", str(args.batch), "--steps", str(args.steps), "--bucket-mb", str(args.bucket_mb)]
        cmd = mpiexec_command(n, argv)
        out = subprocess.run(cmd, capture_output=True, text=True, env=worker_environment(1), timeout=1800)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
        line = next(l for l in out.stdout.splitlines() if l.startswith(MARK))
        rows.append(json.loads(line[len(MARK):]))

    first = rows[0]
    print(f"MLP 784-{args.hidden}-{args.hidden}-10, float32, batch {args.batch} per rank, "
          f"gradients {first['grad_MB']:.1f} MB in {first['buckets']} buckets (cap {args.bucket_mb} MiB); "
          f"median of {args.steps} steps, ms")
    print(f"{'ranks':>5} {'mode':>8} {'step':>8} {'forward':>8} {'backward':>9} {'wait':>7} "
          f"{'update':>7} {'allreduce alone (min)':>22} {'examples/s':>11}")
    for r in rows:
        for mode in ("no_sync", "overlap"):
            m = r[mode]
            rate = r["ranks"] * r["batch_per_rank"] / (m["step"] / 1e3)
            print(f"{r['ranks']:>5} {mode:>8} {m['step']:>8.1f} {m['forward']:>8.1f} {m['backward']:>9.1f} "
                  f"{m['wait']:>7.1f} {m['update']:>7.1f} "
                  f"{r['allreduce_alone_ms']:>14.1f} ({r['allreduce_alone_min_ms']:5.1f}) {rate:>11.0f}")
    if hasattr(os, "getloadavg"):
        print(f"load average at the end (1/5/15 min): {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
              f"on {os.cpu_count()} cores")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--batch", type=int, default=128, help="examples per rank")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--bucket-mb", type=float, default=4.0)
    p.add_argument("--ranks", default="1,2")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
