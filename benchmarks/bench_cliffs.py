"""The two cliffs of issue 16, leafgrad against PyTorch CPU on one thread: ``linear`` on a 3-D input and ``gelu``.

Run: ``python benchmarks/bench_cliffs.py [--repeat N]`` (one thread is set before NumPy is imported).

Cases, float32, the shapes of the default GPT (batch 12, context 64, n_embd 128):

* ``linear3d fwd`` / ``linear3d fwd+bwd``: ``(12, 64, 128) @ (128, 512) + b``, gradients for x, W, b.
* ``gelu fwd`` / ``gelu fwd+bwd``: exact GELU on ``(12, 64, 512)``; ``gelu_tanh``: the tanh form.

Runs alternate between leafgrad and PyTorch; medians of wall-clock time in ms and the ratio
leafgrad / torch.  The machine may be shared: the ratio of medians taken side by side is the number.
With ``--cold`` a 64 MiB array is written before every timed run, so that each starts with its
data out of the caches, as inside a training step where other layers ran in between.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import leafgrad as lg  # noqa: E402
import leafgrad.functions as F  # noqa: E402

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - optional
    torch = None


def _cases():
    rs = np.random.RandomState(0)
    x3 = rs.randn(12, 64, 128).astype(np.float32)
    W = (rs.randn(128, 512) * 0.05).astype(np.float32)
    b = rs.randn(512).astype(np.float32)
    h = rs.randn(12, 64, 512).astype(np.float32)
    gh = rs.randn(12, 64, 512).astype(np.float32)

    def lg_linear(backward):
        def run():
            xv, Wv, bv = lg.Variable(x3), lg.Parameter(W), lg.Parameter(b)
            if not backward:
                with lg.no_grad():
                    F.linear(xv, Wv, bv)
                return
            y = F.linear(xv, Wv, bv)
            y.grad = lg.Variable(gh)
            y.backward()
        return run

    def lg_gelu(approximate, backward):
        def run():
            xv = lg.Variable(h)
            if not backward:
                with lg.no_grad():
                    F.gelu(xv, approximate)
                return
            y = F.gelu(xv, approximate)
            y.grad = lg.Variable(gh)
            y.backward()
        return run

    cases = {
        "linear3d fwd": [lg_linear(False)], "linear3d fwd+bwd": [lg_linear(True)],
        "gelu fwd": [lg_gelu("none", False)], "gelu fwd+bwd": [lg_gelu("none", True)],
        "gelu_tanh fwd": [lg_gelu("tanh", False)], "gelu_tanh fwd+bwd": [lg_gelu("tanh", True)],
    }
    if torch is not None:
        tx, tW, tb = torch.from_numpy(x3), torch.from_numpy(W.T.copy()), torch.from_numpy(b)
        th, tg = torch.from_numpy(h), torch.from_numpy(gh)

        def t_linear(backward):
            def run():
                if not backward:
                    with torch.no_grad():
                        torch.nn.functional.linear(tx, tW, tb)
                    return
                xr, Wr, br = (t.detach().requires_grad_() for t in (tx, tW, tb))
                torch.nn.functional.linear(xr, Wr, br).backward(tg)
            return run

        def t_gelu(approximate, backward):
            def run():
                if not backward:
                    with torch.no_grad():
                        torch.nn.functional.gelu(th, approximate=approximate)
                    return
                xr = th.detach().requires_grad_()
                torch.nn.functional.gelu(xr, approximate=approximate).backward(tg)
            return run

        cases["linear3d fwd"].append(t_linear(False))
        cases["linear3d fwd+bwd"].append(t_linear(True))
        cases["gelu fwd"].append(t_gelu("none", False))
        cases["gelu fwd+bwd"].append(t_gelu("none", True))
        cases["gelu_tanh fwd"].append(t_gelu("tanh", False))
        cases["gelu_tanh fwd+bwd"].append(t_gelu("tanh", True))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=60, help="timed runs of each contender (default 60)")
    parser.add_argument("--cold", action="store_true", help="evict the caches before every timed run")
    args = parser.parse_args()
    flush = np.ones(16 * 2 ** 20, dtype=np.float32) if args.cold else None
    print(f"numpy {np.__version__}, torch {getattr(torch, '__version__', 'absent')}, one thread; "
          f"medians of {args.repeat} alternating runs, ms{', cold caches' if args.cold else ''}")
    print(f"{'case':<20}{'leafgrad':>10}{'torch':>10}{'ratio':>8}")
    for name, runs in _cases().items():
        for run in runs:  # warm-up
            run()
        times = [[] for _ in runs]
        for _ in range(args.repeat):
            for k, run in enumerate(runs):
                if flush is not None:
                    flush += 1.0
                t0 = time.perf_counter()
                run()
                times[k].append(time.perf_counter() - t0)
        med = [statistics.median(t) * 1e3 for t in times]
        if len(med) > 1:
            print(f"{name:<20}{med[0]:>10.3f}{med[1]:>10.3f}{med[0] / med[1]:>7.2f}x")
        else:
            print(f"{name:<20}{med[0]:>10.3f}{'-':>10}{'-':>8}")


if __name__ == "__main__":
    main()
