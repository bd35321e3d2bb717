"""One SGD training step of an MLP (ReLU, softmax cross entropy, float32) in each framework.

Every builder takes the same initial weights and batch and returns a
``step()`` callable doing forward, backward and an in-place SGD update, and
returning the loss (the framework's own object, so it can be kept).
"""
from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from _common import load, on_gpu

Init = Tuple[List[np.ndarray], List[np.ndarray], np.ndarray, np.ndarray]


def init_mlp(sizes: Sequence[int], batch: int, seed: int = 0) -> Init:
    """Weights ``(in, out)`` scaled by sqrt(1/in), zero biases, a random batch and labels."""
    rng = np.random.default_rng(seed)
    Ws = [rng.standard_normal((i, o), dtype=np.float32) * np.float32(math.sqrt(1.0 / i))
          for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o, np.float32) for o in sizes[1:]]
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    t = rng.integers(0, sizes[-1], batch).astype(np.int64)
    return Ws, bs, x, t


# ---------------------------------------------------------------------------
# The floor: forward, backward and update written by hand
# ---------------------------------------------------------------------------
def numpy_step(init: Init, lr: float = 0.01) -> Callable[[], float]:
    """Hand-written NumPy: in-place bias add and ReLU, fused softmax cross entropy, in-place update."""
    Ws = [W.copy() for W in init[0]]
    bs = [b.copy() for b in init[1]]
    x, t = init[2], init[3]
    n = len(Ws)
    N = x.shape[0]
    rows = np.arange(N)

    def step() -> float:
        acts = [x]
        h = x
        for i in range(n):
            h = h.dot(Ws[i])
            h += bs[i]
            if i < n - 1:
                np.maximum(h, 0, out=h)
                acts.append(h)
        # softmax cross entropy, fused
        h -= h.max(axis=1, keepdims=True)
        e = np.exp(h)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.log(s).mean() - h[rows, t].mean())
        e /= s
        e[rows, t] -= 1.0
        e *= 1.0 / N
        g = e
        del h, s
        # backward and update, last layer first
        for i in range(n - 1, -1, -1):
            a = acts.pop()
            gW = a.T.dot(g)
            gb = g.sum(axis=0)
            if i > 0:
                g = g.dot(Ws[i].T)
                g *= a > 0
            del a
            Ws[i] -= lr * gW
            bs[i] -= lr * gb
            del gW, gb
        return loss

    return step


# ---------------------------------------------------------------------------
# leafgrad and DeZero (same API)
# ---------------------------------------------------------------------------
def _dezero_like_step(mod: Any, init: Init, lr: float, segment: Optional[int] = None,
                      checkpoint: Optional[Callable[..., Any]] = None) -> Callable[[], Any]:
    F = mod.functions
    Layer = mod.layers.Layer
    Parameter = mod.Parameter
    Ws = [Parameter(W.copy()) for W in init[0]]
    bs = [Parameter(b.copy()) for b in init[1]]
    x, t = init[2], init[3]
    n = len(Ws)
    model = Layer()
    for i in range(n):
        setattr(model, f"W{i}", Ws[i])
        setattr(model, f"b{i}", bs[i])
    try:
        opt = mod.optimizers.SGD(lr)
        opt.setup(model)
        update = opt.update
    except AttributeError:  # no optimizers module yet: the same update, written out
        def update() -> None:
            for p in (*Ws, *bs):
                if p.grad is not None:
                    p.data -= lr * p.grad.data

    def layers(h: Any, lo: int, hi: int) -> Any:
        for i in range(lo, hi):
            h = F.linear(h, Ws[i], bs[i])
            if i < n - 1:
                h = F.relu(h)
        return h

    if segment is None:
        def forward(h: Any) -> Any:
            return layers(h, 0, n)
    else:
        def forward(h: Any) -> Any:
            for lo in range(0, n, segment):
                h = checkpoint(lambda a, lo=lo: layers(a, lo, min(lo + segment, n)), h)
            return h

    def step() -> Any:
        loss = F.softmax_cross_entropy(forward(x), t)
        model.cleargrads()
        loss.backward()
        update()
        return loss

    return step


def leafgrad_step(init: Init, lr: float = 0.01, checkpoint_every: Optional[int] = None
                  ) -> Callable[[], Any]:
    """leafgrad: ``F.linear``, ``F.relu``, ``F.softmax_cross_entropy``, ``optimizers.SGD``.

    With ``checkpoint_every=k``, every ``k`` layers run under ``leafgrad.checkpoint``.
    """
    mod = load("leafgrad")
    import leafgrad.layers  # noqa: F401
    try:
        import leafgrad.optimizers  # noqa: F401
    except ImportError:
        pass
    checkpoint = None
    if checkpoint_every is not None:
        from leafgrad.checkpoint import checkpoint
    return _dezero_like_step(mod, init, lr, checkpoint_every, checkpoint)


def dezero_step(init: Init, lr: float = 0.01) -> Callable[[], Any]:
    """DeZero 0.0.13: the same program as leafgrad's."""
    return _dezero_like_step(load("dezero"), init, lr)


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------
def torch_step(init: Init, lr: float = 0.01, device: str = "cpu") -> Callable[[], Any]:
    """PyTorch: ``F.linear`` (weights stored (out, in)), ``F.relu``, ``F.cross_entropy``, ``optim.SGD``."""
    torch = load("torch")
    tF = torch.nn.functional
    Ws = [torch.from_numpy(np.ascontiguousarray(W.T)).to(device).requires_grad_() for W in init[0]]
    bs = [torch.from_numpy(b.copy()).to(device).requires_grad_() for b in init[1]]
    x = torch.from_numpy(init[2]).to(device)
    t = torch.from_numpy(init[3]).to(device)
    n = len(Ws)
    opt = torch.optim.SGD([*Ws, *bs], lr=lr)

    def step() -> Any:
        h = x
        for i in range(n):
            h = tF.linear(h, Ws[i], bs[i])
            if i < n - 1:
                h = tF.relu(h)
        loss = tF.cross_entropy(h, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


BUILDERS = {"leafgrad": leafgrad_step, "numpy": numpy_step, "torch": torch_step,
            "dezero": dezero_step}


def make_step(framework: str, sizes: Sequence[int], batch: int, seed: int = 0,
              lr: float = 0.01, gpu: bool = False) -> Callable[[], Any]:
    """A training step of the MLP ``sizes`` at ``batch`` in ``framework``; on the GPU with ``gpu``
    (CuPy arrays for leafgrad and DeZero, CUDA tensors for PyTorch)."""
    init = init_mlp(sizes, batch, seed)
    if gpu and framework == "torch":
        return torch_step(init, lr, device="cuda")
    return BUILDERS[framework](on_gpu(init) if gpu else init, lr)
