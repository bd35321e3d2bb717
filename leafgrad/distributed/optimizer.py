"""``DistributedOptimizer``: any leafgrad optimizer, with gradients averaged across ranks before each update.

A wrapper rather than an optimizer hook, because a hook (``add_hook``) runs
too late and sees too little: the wrapped optimizer decides which parameters
have a gradient before its hooks run (so a parameter that only some ranks
touched would be updated on those ranks only), hooks added earlier (say
``ClipGrad``) would act on local rather than averaged gradients, and a hook has
no moment at setup to broadcast rank 0's parameters.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Optional

import numpy as np

from leafgrad.core import Variable
from leafgrad.distributed.communicator import Communicator, get_world
from leafgrad.distributed.parameters import broadcast_parameters
from leafgrad.distributed.reducer import GradientReducer, check_weight

__all__ = ["DistributedOptimizer"]


class DistributedOptimizer:
    """Wraps ``optimizer`` so that ``update()`` first averages the gradients over all ranks.

    ``DistributedOptimizer(optimizer, comm=None, bucket_mb=4.0)``.  ``setup(target)``
    (or wrapping an optimizer already set up) broadcasts rank 0's parameters to
    every rank and registers a gradient hook on each of them.  Then each step is
    the usual one::

        model.cleargrads()
        loss.backward()               # or optimizer.backward(loss, weight=len(t))
        optimizer.update()

    During backward, each bucket of gradients starts its allreduce as soon as
    backward has produced all of them; ``update()`` sends the rest, waits,
    writes the averaged gradients into ``param.grad`` and calls the wrapped
    optimizer's ``update()`` (so its hooks, e.g. ``WeightDecay`` or
    ``ClipGrad``, see averaged gradients).  Every other attribute (``lr``,
    ``hooks``, ...) is the wrapped optimizer's.

    What ``update()`` averages is what every rank holds in ``param.grad`` when
    it is called: several backwards without ``cleargrads()`` in between
    accumulate there first, as without MPI (then the early sends are redone
    in ``update()``; ``no_sync()`` avoids that cost).

    ``weight`` (in ``backward`` or ``update``): how much this rank's gradients
    count, by default 1 for each rank.  Pass the number of examples of the
    rank's batch (``len(t)``) when batches may differ in size (the last one of
    an epoch) to get exactly the mean over all examples; a rank with an empty
    batch calls ``update(weight=0)`` without a backward.  Given to
    ``backward``, it applies from the start; given to ``update`` after a plain
    ``loss.backward()``, the buckets sent during backward (with weight 1) are
    sent again if it differs from 1.
    """

    def __init__(self, optimizer: Any, comm: Optional[Communicator] = None,
                 bucket_mb: float = 4.0) -> None:
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimizer is already distributed")
        if not hasattr(optimizer, "update") or not hasattr(optimizer, "setup"):
            raise TypeError(f"DistributedOptimizer: expected a leafgrad optimizer, got "
                            f"{type(optimizer).__name__}")
        if not bucket_mb > 0:
            raise ValueError(f"DistributedOptimizer: bucket_mb must be > 0, got {bucket_mb!r}")
        self.__dict__["optimizer"] = optimizer
        self.comm = comm if comm is not None else get_world()
        self.bucket_bytes = int(bucket_mb * (1 << 20))
        self.reducer: Optional[GradientReducer] = None
        if getattr(optimizer, "target", None) is not None:
            self._start_from_root(optimizer.target)

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found on the wrapper: the wrapped optimizer's (lr, hooks, target...).
        return getattr(self.__dict__["optimizer"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or name in ("comm", "bucket_bytes", "reducer"):
            object.__setattr__(self, name, value)
        else:  # e.g. ``optimizer.lr = 0.01`` reaches the wrapped optimizer
            setattr(self.__dict__["optimizer"], name, value)

    def _start_from_root(self, target: Any) -> None:
        named = broadcast_parameters(target, self.comm)
        if self.reducer is not None:   # set up again: the old parameters' hooks go
            self.reducer.close()
        self.reducer = GradientReducer(named, self.comm, self.bucket_bytes)

    def setup(self, target: Any) -> "DistributedOptimizer":
        """Set up the wrapped optimizer on ``target`` and give every rank rank 0's parameters."""
        self.optimizer.setup(target)
        self._start_from_root(target)
        return self

    def broadcast_state(self) -> None:
        """Give every rank rank 0's parameters and optimizer state (hyperparameters, counters, arrays).

        For resuming: rank 0 alone may read the checkpoint (it need not be on a
        file system the other machines see), then every rank calls this.
        """
        reducer = self._require_setup("broadcast_state")
        if reducer.active:
            raise RuntimeError("DistributedOptimizer.broadcast_state: gradients are being averaged; "
                               "call it between update() and the next backward")
        broadcast_parameters(self.optimizer.target, self.comm)
        if not hasattr(self.optimizer, "state_dict"):
            return
        comm = self.comm
        sd = self.optimizer.state_dict() if comm.is_root else None
        meta = None
        if comm.is_root:
            meta = {k: sd[k] for k in sd if k != "state"}
            meta["state"] = {p: {s: (tuple(a.shape), a.dtype.str) for s, a in slots.items()}
                             for p, slots in sd["state"].items()}
        meta = comm.bcast_object(meta)
        arrays = []
        state: dict = {}
        for pname, slots in meta["state"].items():
            state[pname] = {}
            for sname, (shape, dtype) in slots.items():
                a = sd["state"][pname][sname] if comm.is_root else np.empty(shape, dtype)
                state[pname][sname] = a
                arrays.append(a)
        comm.bcast_arrays(arrays)
        if not comm.is_root:
            self.optimizer.load_state_dict(dict(meta, state=state))

    def add_hook(self, f: Callable) -> None:
        """Add a hook to the wrapped optimizer; it runs on the averaged gradients."""
        self.optimizer.add_hook(f)

    def _require_setup(self, who: str) -> GradientReducer:
        if self.reducer is None:
            raise RuntimeError(f"DistributedOptimizer.{who}: call setup(model) first")
        return self.reducer

    def backward(self, loss: Variable, weight: Optional[float] = None, **kwargs: Any) -> None:
        """``loss.backward(**kwargs)`` in a round of averaging in which this rank counts ``weight`` times.

        Plain ``loss.backward()`` overlaps the averaging with backward just the
        same; this also sets the weight before anything is sent.  Each call is a
        round of its own: a second call before ``update()`` averages the first
        call's gradients before its backward adds to them.
        """
        reducer = self._require_setup("backward")
        check_weight("DistributedOptimizer.backward", weight)
        if self.comm.size > 1:   # one rank: nothing to average with
            reducer.start(weight)
        loss.backward(**kwargs)

    def no_sync(self) -> ContextManager[None]:
        """``with optimizer.no_sync(): loss.backward()`` sends nothing; ``update()`` averages it all later.

        For gradient accumulation over micro-batches (every backward but the
        last in the block), and for a backward that only some ranks make.
        """
        reducer = self._require_setup("no_sync")
        return reducer.no_sync() if self.comm.size > 1 else contextlib.nullcontext()

    def synchronize(self, weight: Optional[float] = None) -> None:
        """Average the gradients now: every ``param.grad`` becomes the ranks' mean.

        ``update()`` does it anyway (it cannot know that no backward came since:
        deciding that from local data could let one rank skip a collective that
        the others make), so calling both averages twice, which changes nothing
        but costs one more round of allreduces.
        """
        self._synchronize("synchronize", weight)

    def _synchronize(self, who: str, weight: Optional[float]) -> None:
        reducer = self._require_setup(who)
        check_weight(f"DistributedOptimizer.{who}", weight)
        if self.comm.size == 1:   # the gradients are already the average
            return
        reducer.finish(weight)

    def update(self, weight: Optional[float] = None) -> None:
        """Average the gradients over all ranks, then let the wrapped optimizer update the parameters.

        ``weight`` applies when no ``backward(loss, weight)`` started this step's averaging.
        Completes the round: buckets not sent during backward go out in their
        order (a parameter no backward reached counts as absent where its
        ``grad`` is None), then it waits for all of them.
        """
        self._synchronize("update", weight)
        self.optimizer.update()
