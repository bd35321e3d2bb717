"""A one-minute tour of the core: build a graph, go backward, see what memory was released.

Run it with ``python -m leafgrad.demo``.
"""
from __future__ import annotations

import weakref

import numpy as np

import leafgrad.functions as F
from leafgrad import Variable, no_grad


def main() -> None:
    """Print a small graph's gradients and which arrays were freed, and when."""
    np.random.seed(0)
    x = Variable(np.random.randn(1000, 100).astype(np.float32), name="x")
    W = Variable(np.random.randn(100, 10).astype(np.float32) * 0.1, name="W")

    h = x * 2.0                      # x * 2.0 keeps nothing for its backward
    a = F.tanh(F.matmul(h, W))       # matmul keeps h and W; tanh keeps its output
    loss = F.sum(a * a)
    pre = weakref.ref(h.data)
    print(f"loss = {loss.item():.4f} ({loss.dtype})")
    print("graph:", " <- ".join(type(f).__name__ for f in _creators(loss)))

    del h, a
    print(f"after `del h, a`: h's array alive? {pre() is not None} (matmul's backward needs it)")
    loss.backward()
    print(f"after loss.backward(): h's array alive? {pre() is not None} (released once used)")
    print(f"W.grad: shape {W.grad.shape}, dtype {W.grad.dtype}, norm {np.linalg.norm(W.grad.data):.4f}")
    print(f"x.grad: shape {x.grad.shape}; intermediates keep no .grad (retain_grad=False)")
    try:
        loss.backward()
    except RuntimeError as err:
        print("second backward:", str(err).split(":")[0])
    with no_grad():
        y = F.tanh(F.matmul(x, W))
    print(f"under no_grad(): y.creator = {y.creator}")


def _creators(v: Variable):
    f = v.creator
    while f is not None:
        yield f
        edge = next((e for e in f._edges if e is not None and not isinstance(e, Variable)), None)
        f = edge[0] if isinstance(edge, tuple) else edge


if __name__ == "__main__":
    main()
