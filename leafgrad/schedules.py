"""Learning-rate schedules: the learning rate as a function of the iteration (counted from 0).

::

    from leafgrad.optimizers import AdamW
    from leafgrad.schedules import WarmupCosine

    optimizer = AdamW(lr=1e-3).setup(model)
    schedule = WarmupCosine(1e-3, warmup_iters=100, decay_iters=2000, min_lr=1e-4)
    for it in range(2000):
        schedule.apply(optimizer, it)      # sets the optimizer's learning rate for this step
        ...                                # forward, backward
        optimizer.update()

``Trainer(..., schedule=schedule)`` does the same before each of its steps.
A schedule sets the optimizer's base learning rate: ``lr`` for SGD and most
others, ``alpha`` for Adam and AdamW (:func:`leafgrad.optimizers.lr_attribute`).
"""
from __future__ import annotations

import math
from typing import Any

from leafgrad.optimizers import lr_attribute

__all__ = ["Schedule", "Constant", "WarmupCosine", "set_lr"]


def set_lr(optimizer: Any, lr: float) -> None:
    """Set ``optimizer``'s base learning rate (``lr``, or Adam's ``alpha``); a ``ValueError`` if it takes none."""
    attr = lr_attribute(optimizer)
    if attr is None:
        raise ValueError(f"set_lr: {type(optimizer).__name__} takes no learning rate")
    setattr(optimizer, attr, float(lr))


class Schedule:
    """A learning rate for each iteration: ``schedule(it)``; subclasses implement ``__call__``."""

    def __call__(self, it: int) -> float:
        """The learning rate of iteration ``it`` (counted from 0)."""
        raise NotImplementedError(f"{type(self).__name__}.__call__ is not implemented")

    def apply(self, optimizer: Any, it: int) -> float:
        """Set ``optimizer``'s learning rate for iteration ``it``; returns it."""
        lr = self(it)
        set_lr(optimizer, lr)
        return lr

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """The same learning rate at every iteration."""

    def __init__(self, lr: float) -> None:
        self.lr = float(lr)

    def __call__(self, it: int) -> float:
        return self.lr


class WarmupCosine(Schedule):
    """Linear warm-up to ``lr``, then cosine decay to ``min_lr`` at ``decay_iters``, then ``min_lr``.

    nanoGPT's ``get_lr``: for ``it < warmup_iters`` the rate is
    ``lr * (it + 1) / (warmup_iters + 1)``; from ``warmup_iters`` to
    ``decay_iters`` it follows half a cosine from ``lr`` down to ``min_lr``;
    after ``decay_iters`` it stays at ``min_lr``.  ``warmup_iters=0`` is a
    plain cosine decay.
    """

    def __init__(self, lr: float, warmup_iters: int = 100, decay_iters: int = 2000,
                 min_lr: float = 1e-4) -> None:
        if warmup_iters < 0 or decay_iters < warmup_iters:
            raise ValueError(f"WarmupCosine: need 0 <= warmup_iters <= decay_iters, "
                             f"got warmup_iters={warmup_iters}, decay_iters={decay_iters}")
        self.lr = float(lr)
        self.warmup_iters = int(warmup_iters)
        self.decay_iters = int(decay_iters)
        self.min_lr = float(min_lr)

    def __call__(self, it: int) -> float:
        if it < self.warmup_iters:
            return self.lr * (it + 1) / (self.warmup_iters + 1)
        if it >= self.decay_iters:
            return self.min_lr
        ratio = (it - self.warmup_iters) / (self.decay_iters - self.warmup_iters)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.lr - self.min_lr)
