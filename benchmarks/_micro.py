"""Per-operation overhead: a chain of scalar ops (item 3) and a wide graph (item 4).

Each builder returns a ``prepare()`` callable that builds what must exist
before the timed part and returns the timed callable.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from _common import load

Prepared = Callable[[], Callable[[], Any]]


def chain(framework: str, length: int) -> Prepared:
    """``y = y * 1.0001 + 0.0001`` ``length`` times from a scalar leaf, then backward (2 ops an iteration)."""
    if framework == "torch":
        torch = load("torch")

        def prepare() -> Callable[[], Any]:
            def run() -> Any:
                x = torch.tensor(1.0, dtype=torch.float32, requires_grad=True)
                y = x
                for _ in range(length):
                    y = y * 1.0001 + 0.0001
                y.backward()
                return x.grad
            return run
        return prepare

    mod = load(framework)  # leafgrad or dezero

    def prepare() -> Callable[[], Any]:
        def run() -> Any:
            x = mod.Variable(np.array(1.0, np.float32))
            y = x
            for _ in range(length):
                y = y * 1.0001 + 0.0001
            y.backward()
            return x.grad
        return run
    return prepare


def wide(framework: str, n: int) -> Prepared:
    """Forward (untimed): ``y = y + x[i] * w`` over ``n`` scalar leaves ``x[i]``; timed: ``y.backward()``.

    The construction of DeZero's anchor: ``w`` feeds ``n`` products, so its
    gradient is the sum of ``n`` contributions, and the ``n`` products wait in
    the backward queue while the chain of additions is walked.
    """
    if framework == "torch":
        torch = load("torch")

        def prepare() -> Callable[[], Any]:
            xs = [torch.tensor(float(i % 7), requires_grad=True) for i in range(n)]
            w = torch.tensor(2.0, requires_grad=True)
            y = torch.tensor(0.0)
            for i in range(n):
                y = y + xs[i] * w
            return y.backward
        return prepare

    mod = load(framework)

    def prepare() -> Callable[[], Any]:
        xs = [mod.Variable(np.array(float(i % 7), np.float32)) for i in range(n)]
        w = mod.Variable(np.array(2.0, np.float32))
        y = mod.Variable(np.array(0.0, np.float32))
        for i in range(n):
            y = y + xs[i] * w
        return y.backward
    return prepare
