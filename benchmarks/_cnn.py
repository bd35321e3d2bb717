"""One SGD training step of a small CNN (item 5), in leafgrad, PyTorch and DeZero.

conv 3x3 (1 -> 16, pad 1), ReLU, max-pool 2 -> conv 3x3 (16 -> 32, pad 1), ReLU,
max-pool 2 -> linear (32*7*7 -> 10) -> softmax cross entropy; 28x28 inputs, float32.
``in_channels`` and ``size`` change the images (3 and 32: the CNN of ``bench_conv.py``
and ``bench_gpu.py``, linear 2048 -> 10); ``gpu`` runs it on the GPU.
(No hand-written NumPy floor: the im2col / col2im code would be the library's own.)
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from _common import load, on_gpu


def _init(batch: int, seed: int = 0, in_channels: int = 1, size: int = 28) -> dict:
    rng = np.random.default_rng(seed)

    def he(shape: tuple, fan_in: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(1.0 / fan_in))

    flat = 32 * (size // 4) ** 2
    return {
        "W1": he((16, in_channels, 3, 3), 9 * in_channels), "b1": np.zeros(16, np.float32),
        "W2": he((32, 16, 3, 3), 144), "b2": np.zeros(32, np.float32),
        "W3": he((flat, 10), flat), "b3": np.zeros(10, np.float32),
        "x": rng.standard_normal((batch, in_channels, size, size), dtype=np.float32),
        "t": rng.integers(0, 10, batch).astype(np.int64),
    }


def _dezero_like(mod: Any, init: dict, lr: float) -> Callable[[], Any]:
    F = mod.functions
    conv2d = getattr(F, "conv2d", None)
    pooling = getattr(F, "pooling", None)
    if conv2d is None and mod.__name__ == "leafgrad":  # not yet re-exported by leafgrad.functions
        from leafgrad.functions.conv import conv2d, pooling
    P = {k: mod.Parameter(init[k].copy()) for k in ("W1", "b1", "W2", "b2", "W3", "b3")}
    model = mod.layers.Layer()
    for k, p in P.items():
        setattr(model, k, p)
    try:
        opt = mod.optimizers.SGD(lr)
        opt.setup(model)
        update = opt.update
    except AttributeError:
        def update() -> None:
            for p in P.values():
                if p.grad is not None:
                    p.data -= lr * p.grad.data
    x, t = init["x"], init["t"]

    def step() -> Any:
        h = pooling(F.relu(conv2d(x, P["W1"], P["b1"], 1, 1)), 2, 2)
        h = pooling(F.relu(conv2d(h, P["W2"], P["b2"], 1, 1)), 2, 2)
        h = F.reshape(h, (h.shape[0], -1))
        loss = F.softmax_cross_entropy(F.linear(h, P["W3"], P["b3"]), t)
        model.cleargrads()
        loss.backward()
        update()
        return loss

    return step


def _torch(init: dict, lr: float, device: str = "cpu") -> Callable[[], Any]:
    torch = load("torch")
    tF = torch.nn.functional
    P = {k: torch.from_numpy(init[k].copy()).to(device).requires_grad_() for k in ("W1", "b1", "W2", "b2", "b3")}
    P["W3"] = torch.from_numpy(np.ascontiguousarray(init["W3"].T)).to(device).requires_grad_()
    opt = torch.optim.SGD(list(P.values()), lr=lr)
    x, t = torch.from_numpy(init["x"]).to(device), torch.from_numpy(init["t"]).to(device)

    def step() -> Any:
        h = tF.max_pool2d(tF.relu(tF.conv2d(x, P["W1"], P["b1"], 1, 1)), 2, 2)
        h = tF.max_pool2d(tF.relu(tF.conv2d(h, P["W2"], P["b2"], 1, 1)), 2, 2)
        h = h.reshape(h.shape[0], -1)
        loss = tF.cross_entropy(tF.linear(h, P["W3"], P["b3"]), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def make_step(framework: str, batch: int, lr: float = 0.001, in_channels: int = 1, size: int = 28,
              gpu: bool = False) -> Callable[[], Any]:
    """A training step of the small CNN at ``batch`` in ``framework`` ('leafgrad', 'torch', 'dezero');
    on the GPU with ``gpu`` (CuPy arrays for leafgrad and DeZero, CUDA tensors for PyTorch)."""
    init = _init(batch, 0, in_channels, size)
    if framework == "torch":
        return _torch(init, lr, "cuda" if gpu else "cpu")
    if gpu:
        init = on_gpu(init)
    mod = load(framework)
    if framework == "leafgrad":
        import leafgrad.layers  # noqa: F401
        try:
            import leafgrad.optimizers  # noqa: F401
        except ImportError:
            pass
    return _dezero_like(mod, init, lr)
