"""Convolution benchmark: leafgrad against PyTorch CPU, both on one thread.

Run: ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_conv.py``
(the script sets those variables itself before NumPy is imported).

Cases, float32, batch (32, 3, 32, 32):

* ``conv+pool fwd``: ``conv2d`` (16 filters 3x3, pad 1) then 2x2 max ``pooling``
  (stride 2), forward only, without graph recording.
* ``conv+pool fwd+bwd``: the same with gradients for x, W and b (``sum`` of the output).
* ``cnn train step``: conv 3->16, relu, pool, conv 16->32, relu, pool, linear
  2048->10, softmax cross entropy, backward, SGD update (``p -= lr * grad``).

Runs alternate between leafgrad and PyTorch; the script prints each median in
ms and the ratio leafgrad / torch, for wall-clock time and for process CPU time
(the latter is less disturbed by other work on a shared machine).  PyTorch is
skipped if it is not installed.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, Optional  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import leafgrad as lg  # noqa: E402
import leafgrad.functions as F  # noqa: E402
from leafgrad.functions.conv import conv2d, pooling  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn.functional as TF  # noqa: E402

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

N, C, H, W = 32, 3, 32, 32
LR = 0.01


# =============================================================================
# Functions that the CNN step needs from the rest of the library
# =============================================================================
def _relu(x):
    if hasattr(F, "relu"):
        return F.relu(x)
    return _FallbackReLU()(x)


def _linear(x, W, b):
    if hasattr(F, "linear"):
        return F.linear(x, W, b)
    return F.matmul(x, W) + b


def _softmax_cross_entropy(x, t):
    if hasattr(F, "softmax_cross_entropy"):
        return F.softmax_cross_entropy(x, t)
    return _FallbackSoftmaxCrossEntropy()(x, t)


class _FallbackReLU(lg.Function):
    """Used only while ``leafgrad.functions.relu`` does not exist yet."""

    retain_inputs = ()

    def forward(self, x):
        mask = x > 0
        self.save_for_backward(mask)
        return x * mask

    def backward_array(self, gy):
        return gy * self.saved[0]


class _FallbackSoftmaxCrossEntropy(lg.Function):
    """Used only while ``leafgrad.functions.softmax_cross_entropy`` does not exist yet."""

    retain_inputs = ()

    def forward(self, x, t):
        m = x.max(axis=1, keepdims=True)
        e = np.exp(x - m)
        s = e.sum(axis=1, keepdims=True)
        p = e / s
        self.save_for_backward(p, t)
        logp = (x - m - np.log(s))[np.arange(len(t)), t]
        return np.asarray(-logp.mean(), dtype=x.dtype)

    def backward_array(self, gy):
        p, t = self.saved
        g = p.copy()
        g[np.arange(len(t)), t] -= 1
        return g * (gy / len(t)), None


def _fallbacks_in_use() -> List[str]:
    return [name for name in ("relu", "linear", "softmax_cross_entropy") if not hasattr(F, name)]


# =============================================================================
# Cases
# =============================================================================
def _data(seed: int = 0) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return {
        "x": rng.standard_normal((N, C, H, W)).astype(f32),
        "t": rng.integers(0, 10, N),
        "W1": (rng.standard_normal((16, C, 3, 3)) * np.sqrt(1 / (C * 9))).astype(f32),
        "b1": np.zeros(16, f32),
        "W2": (rng.standard_normal((32, 16, 3, 3)) * np.sqrt(1 / (16 * 9))).astype(f32),
        "b2": np.zeros(32, f32),
        "W3": (rng.standard_normal((32 * 8 * 8, 10)) * np.sqrt(1 / 2048)).astype(f32),
        "b3": np.zeros(10, f32),
    }


def leafgrad_cases(d: Dict[str, np.ndarray]) -> Dict[str, Callable[[], None]]:
    """The leafgrad side of each case."""
    x = lg.Variable(d["x"].copy())
    W1, b1 = lg.Parameter(d["W1"].copy()), lg.Parameter(d["b1"].copy())
    params = [lg.Parameter(d[k].copy()) for k in ("W1", "b1", "W2", "b2", "W3", "b3")]
    t = d["t"]

    def fwd():
        with lg.no_grad():
            pooling(conv2d(x, W1, b1, 1, 1), 2, 2)

    def fwd_bwd():
        x.cleargrad(), W1.cleargrad(), b1.cleargrad()
        y = F.sum(pooling(conv2d(x, W1, b1, 1, 1), 2, 2))
        y.backward()

    xd = d["x"]  # the data: a constant, as a data set's batch is

    def train_step():
        cw1, cb1, cw2, cb2, lw, lb = params
        for p in params:
            p.cleargrad()
        h = pooling(_relu(conv2d(xd, cw1, cb1, 1, 1)), 2, 2)
        h = pooling(_relu(conv2d(h, cw2, cb2, 1, 1)), 2, 2)
        h = F.reshape(h, (N, -1))
        loss = _softmax_cross_entropy(_linear(h, lw, lb), t)
        loss.backward()
        for p in params:
            p.data -= LR * p.grad.data

    return {"conv+pool fwd": fwd, "conv+pool fwd+bwd": fwd_bwd, "cnn train step": train_step}


def torch_cases(d: Dict[str, np.ndarray]) -> Dict[str, Callable[[], None]]:
    """The PyTorch side of each case."""
    x = torch.from_numpy(d["x"].copy()).requires_grad_(True)
    W1 = torch.from_numpy(d["W1"].copy()).requires_grad_(True)
    b1 = torch.from_numpy(d["b1"].copy()).requires_grad_(True)
    params = [torch.from_numpy(d[k].copy()).requires_grad_(True)
              for k in ("W1", "b1", "W2", "b2", "W3", "b3")]
    xd = torch.from_numpy(d["x"].copy())
    t = torch.from_numpy(d["t"])

    def fwd():
        with torch.no_grad():
            TF.max_pool2d(TF.conv2d(x, W1, b1, 1, 1), 2, 2)

    def fwd_bwd():
        x.grad = W1.grad = b1.grad = None
        y = TF.max_pool2d(TF.conv2d(x, W1, b1, 1, 1), 2, 2).sum()
        y.backward()

    def train_step():
        cw1, cb1, cw2, cb2, lw, lb = params
        for p in params:
            p.grad = None
        h = TF.max_pool2d(TF.relu(TF.conv2d(xd, cw1, cb1, 1, 1)), 2, 2)
        h = TF.max_pool2d(TF.relu(TF.conv2d(h, cw2, cb2, 1, 1)), 2, 2)
        h = h.reshape(N, -1)
        loss = TF.cross_entropy(h @ lw + lb, t)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad

    return {"conv+pool fwd": fwd, "conv+pool fwd+bwd": fwd_bwd, "cnn train step": train_step}


def _time_ms(fn: Callable[[], None]) -> tuple:
    """Wall-clock and process CPU time of one call, in ms."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def run(repeat: int, warmup: int) -> Dict[str, Dict[str, Optional[tuple]]]:
    """Median (wall, CPU) times in ms per case and framework, alternating the frameworks run by run."""
    d = _data()
    ours = leafgrad_cases(d)
    theirs = torch_cases(d) if torch is not None else {}
    results: Dict[str, Dict[str, Optional[tuple]]] = {}
    for name, fn in ours.items():
        other = theirs.get(name)
        for _ in range(warmup):
            fn()
            if other is not None:
                other()
        a: List[tuple] = []
        b: List[tuple] = []
        for _ in range(repeat):
            a.append(_time_ms(fn))
            if other is not None:
                b.append(_time_ms(other))
        results[name] = {"leafgrad": _medians(a), "torch": _medians(b) if b else None}
    return results


def _medians(samples: List[tuple]) -> tuple:
    return tuple(statistics.median(s[i] for s in samples) for i in range(2))


def main(argv: Optional[List[str]] = None) -> None:
    """Parse arguments, run the cases, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="timed runs per case (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs per case (default 5)")
    args = parser.parse_args(argv)

    print(f"numpy {np.__version__}, torch {torch.__version__ if torch is not None else 'not installed'}, "
          f"one thread, batch {(N, C, H, W)}, float32, median of {args.repeat}")
    missing = _fallbacks_in_use()
    if missing:
        print(f"note: leafgrad.functions lacks {', '.join(missing)}: the benchmark's own fallbacks are used")
    results = run(args.repeat, args.warmup)
    print("wall clock (ms), and process CPU time (ms; less sensitive to a loaded machine)")
    print(f"{'case':<20}{'leafgrad':>10}{'torch':>8}{'ratio':>7}   {'cpu: leafgrad':>13}{'torch':>8}{'ratio':>7}")
    for name, r in results.items():
        (ours, ours_cpu), theirs = r["leafgrad"], r["torch"]
        if theirs is None:
            print(f"{name:<20}{ours:>10.2f}{'-':>8}{'-':>7}   {ours_cpu:>13.2f}{'-':>8}{'-':>7}")
        else:
            print(f"{name:<20}{ours:>10.2f}{theirs[0]:>8.2f}{ours / theirs[0]:>7.2f}   "
                  f"{ours_cpu:>13.2f}{theirs[1]:>8.2f}{ours_cpu / theirs[1]:>7.2f}")


if __name__ == "__main__":
    main()
