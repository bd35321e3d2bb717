"""Gradient averaging across ranks in buckets, started while backward is still running.

``GradientReducer`` owns a fixed list of named parameters, packed into
*buckets*: flat buffers of about ``bucket_bytes`` each, one dtype a bucket.
One non-blocking allreduce (``Iallreduce``, in place) is made per bucket, not
one per parameter.

Each bucket's buffer is laid out as ``[gradients... | one flag per parameter |
weight | redo vote]``.  A rank writes ``weight * gradient`` (zeros for a
parameter it has no gradient for), the flag 1 where it has one, and its
``weight`` (1 by default, or its number of examples).  After the sum, a
parameter gets the gradient ``sum / total weight`` if any rank had one, and
keeps none otherwise: every rank takes the same decision, with no extra
collective call.

What a round computes: ``finish()`` gives every parameter the weighted mean
over the ranks of what each rank holds in ``param.grad`` *at that moment*
(``None`` on a rank: that rank has no gradient for it), exactly as if nothing
had been sent before.  Sending early is an optimisation that never changes
this result:

* Overlap (what PyTorch's DistributedDataParallel does): at construction the
  reducer registers one post-accumulate gradient hook per parameter
  (``leafgrad.engine.register_post_accumulate_grad_hook``).  The engine calls
  it during ``backward()`` as soon as that parameter's gradient of this
  backward is final and stored in ``param.grad``; the hook copies it into its
  bucket, and a bucket whose gradients are all in starts its allreduce at
  once, while backward goes on with the layers below.  The first hook of a
  round starts the round (weight 1) when ``start(weight)`` did not.
* Buckets start in their index order on every rank (MPI requires the same
  order of collectives everywhere), and the last bucket is only ever started
  by ``finish()``: it carries each rank's *redo vote*.  A rank votes to redo
  when something it sent early is no longer what its ``param.grad`` holds
  (another backward added to it, ``cleargrads()`` or an assignment replaced
  it) or was weighted with a weight that changed since.  If any rank voted,
  every rank packs all of its buckets again from ``param.grad`` and sends them
  again: correct whatever happened, at the price of a second round.
* The layout follows the order in which backward produces gradients (last
  layer first), learnt at the first round from rank 0's hooks.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from leafgrad.core import Parameter, Variable
from leafgrad.cuda import get_array_module
from leafgrad.distributed.communicator import Communicator

__all__ = ["GradientReducer"]


class _Bucket:
    """A flat buffer for some parameters' gradients, their presence flags, the ranks' weight and redo vote."""

    __slots__ = ("params", "names", "spans", "flat", "n", "filled", "packed", "sources", "request",
                 "launched", "weight")

    def __init__(self, named: List[Tuple[str, Parameter]], xp: Any, dtype: Any) -> None:
        self.names = [name for name, _ in named]
        self.params = [p for _, p in named]
        self.spans = []
        offset = 0
        for p in self.params:
            self.spans.append((offset, offset + p.data.size))
            offset += p.data.size
        self.n = offset
        self.flat = xp.zeros(offset + len(self.params) + 2, dtype=dtype)
        self.reset()

    def reset(self) -> None:
        self.filled = 0
        self.packed = [False] * len(self.params)
        # What was packed for each parameter: a weak reference to its ``grad`` then, or None for none.
        self.sources: List[Optional[weakref.ref]] = [None] * len(self.params)
        self.request = None
        self.launched = False
        self.weight = 1.0

    def is_current(self, k: int) -> bool:
        """True if parameter ``k`` was packed and its ``grad`` is still what was packed."""
        if not self.packed[k]:
            return False
        ref, g = self.sources[k], self.params[k].grad
        return g is None if ref is None else (g is not None and ref() is g)

    @property
    def nbytes(self) -> int:
        return self.flat.nbytes


def _make_hook(ref: "weakref.ref[GradientReducer]") -> Callable[[Variable], None]:
    """The hook registered on every parameter: tells the reducer, if it still exists, that a gradient is final."""
    def hook(param: Variable) -> None:
        reducer = ref()
        if reducer is not None:
            reducer.grad_ready(param)
    return hook


def _remove_all(handles: list) -> None:
    for handle in handles:
        handle.remove()
    handles.clear()


class GradientReducer:
    """Averages the gradients of ``named_params`` (a list of ``(name, Parameter)``) over ``comm``'s ranks.

    One round per update: backward (plain ``loss.backward()``: the hooks
    registered here start the round and send each full bucket), then
    ``finish()``, which sends what is left, waits, and writes the averaged
    gradients to ``param.grad``.  ``start(weight)`` before backward sets this
    rank's weight; ``close()`` unregisters the hooks (also done when the
    reducer is garbage).  With one rank nothing is averaged and no hook is
    registered.
    """

    def __init__(self, named_params: Sequence[Tuple[str, Parameter]], comm: Communicator,
                 bucket_bytes: int = 4 << 20) -> None:
        self.comm = comm
        self.bucket_bytes = int(bucket_bytes)
        self.named = list(named_params)
        self._param_by_name = {name: p for name, p in self.named}
        self._name_by_id = {id(p): name for name, p in self.named}
        self.buckets: List[_Bucket] = []
        self._where: Dict[int, Tuple[_Bucket, int]] = {}
        self._active = False
        self._explicit = False                 # the round was begun by start(), not by a hook
        self._weight = 1.0
        self._next = 0                         # index of the next bucket to start
        self._stale = False                    # something sent early this round is out of date
        self._paused = 0                       # depth of no_sync() blocks
        self._observed: Dict[str, None] = {}   # names in the order the hooks fired (first round)
        self._relaid = False
        # rounds: finish() calls; redone: rounds sent twice; early_calls: allreduces started during backward
        self.stats = {"rounds": 0, "redone": 0, "allreduce_calls": 0, "early_calls": 0, "bytes": 0}
        # Default layout: reverse registration order (for a sequential model, last layer first).
        self._build([name for name, _ in reversed(self.named)])
        self._handles: list = []
        if comm.size > 1:
            hook = _make_hook(weakref.ref(self))
            self._handles = [p.register_post_accumulate_grad_hook(hook) for _, p in self.named]
        self._finalizer = weakref.finalize(self, _remove_all, self._handles)

    def close(self) -> None:
        """Unregister the gradient hooks: later backwards no longer start rounds (``finish()`` still works)."""
        self._finalizer()

    @property
    def hooked(self) -> bool:
        """True while the reducer's hooks are registered on its parameters."""
        return bool(self._handles)

    # ---- layout ------------------------------------------------------------------------
    def _build(self, order: Sequence[str]) -> None:
        """Pack the parameters into buckets in ``order``, one dtype a bucket, at most ``bucket_bytes`` each."""
        open_by_dtype: Dict[str, list] = {}
        groups: List[list] = []   # [xp, dtype, [(name, p)], bytes] in creation order
        for name in order:
            p = self._param_by_name[name]
            if p.data is None:
                raise ValueError(f"GradientReducer: parameter {name} has no data yet")
            key = p.data.dtype.str
            group = open_by_dtype.get(key)
            # A bucket takes parameters until the next would overflow it; a parameter larger than a
            # bucket has a bucket of its own.
            if group is None or (group[2] and group[3] + p.data.nbytes > self.bucket_bytes):
                group = [get_array_module(p.data), p.data.dtype, [], 0]
                open_by_dtype[key] = group
                groups.append(group)
            group[2].append((name, p))
            group[3] += p.data.nbytes
        self.buckets = [_Bucket(members, xp, dtype) for xp, dtype, members, _ in groups]
        self._where = {}
        for b in self.buckets:
            for k, p in enumerate(b.params):
                self._where[id(p)] = (b, k)

    @property
    def order(self) -> List[str]:
        """Parameter names in bucket order."""
        return [name for b in self.buckets for name in b.names]

    # ---- one round -----------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True between the start of a round (``start`` or the first hook) and ``finish``."""
        return self._active

    def start(self, weight: Optional[float] = None) -> None:
        """Begin a round in which this rank's gradients count ``weight`` times (default 1).

        A round that ``start`` began is finished first (each ``start`` is a
        round of its own); a round that a hook began becomes this one, with
        this weight.
        """
        w = check_weight("GradientReducer.start", weight)
        if self._active and self._explicit:
            self.finish()
        if not self._active:
            self._begin()
        self._explicit = True
        self._set_weight(w)

    def _begin(self) -> None:
        self._weight = 1.0
        self._next = 0
        self._stale = False
        for b in self.buckets:
            b.reset()
        self._active = True
        self._explicit = False

    def _set_weight(self, w: float) -> None:
        if w != self._weight and self._next:
            self._stale = True      # buckets already sent carry the old weight
        self._weight = w

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within the block, backward sends nothing: gradients just accumulate in ``param.grad``.

        ``finish()`` (the next update) averages them all.  For micro-batches
        (all backwards but the last inside the block) and for a backward that
        only some ranks make (say, for a picture).
        """
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    def grad_ready(self, param: Parameter) -> None:
        """``param.grad`` is final for this backward: pack it, and start the buckets it completes.

        Called by the hooks; begins a round (weight 1) if none is active.
        """
        if self._paused:
            return
        if not self._active:
            self._begin()
        b, k = self._where[id(param)]
        if not self._relaid:
            self._observe(param)
        if b.packed[k]:
            # A second backward in this round: a bucket not sent yet just takes the new total.
            if b.launched:
                self._stale = True
                return
            self._pack(b, k)
        else:
            self._pack(b, k)
            b.filled += 1
            if b.filled == len(b.params):
                self._start_ready()
                return
        self._progress()

    def _observe(self, param: Parameter) -> None:
        """First round only: note the order in which gradients become final."""
        self._observed.setdefault(self._name_by_id[id(param)])

    def _pack(self, b: _Bucket, k: int) -> None:
        """Copy ``param.grad`` into its place in the bucket (zeros and flag 0 if it has none)."""
        p = b.params[k]
        lo, hi = b.spans[k]
        out = b.flat[lo:hi]
        g = p.grad
        if g is None:
            out[...] = 0
            b.flat[b.n + k] = 0
            b.sources[k] = None
        else:
            if g.data.size != p.data.size:
                raise ValueError(f"GradientReducer: gradient of {b.names[k]} has shape {g.data.shape}, "
                                 f"the parameter {p.data.shape}")
            out[...] = g.data.reshape(-1)
            b.flat[b.n + k] = 1
            b.sources[k] = weakref.ref(g)
        b.packed[k] = True

    def _launch(self, b: _Bucket, vote: int = 0) -> None:
        """Weight the packed gradients and start the bucket's allreduce."""
        for k in range(len(b.params)):
            if not b.is_current(k):
                self._pack(b, k)
        if self._weight != 1.0:
            b.flat[:b.n] *= self._weight
        b.flat[-2] = self._weight
        b.flat[-1] = vote
        b.weight = self._weight
        b.request = self.comm.iallreduce_sum_inplace(b.flat)
        b.launched = True
        self.stats["allreduce_calls"] += 1
        self.stats["bytes"] += b.nbytes

    def _start_ready(self) -> None:
        """Start, in index order, every bucket whose gradients are all packed; never the last one."""
        while self._next < len(self.buckets) - 1 and not self._stale:
            b = self.buckets[self._next]
            if b.filled < len(b.params):
                break
            self._launch(b)
            self._next += 1
            self.stats["early_calls"] += 1
        self._progress()

    def _progress(self) -> None:
        """Let MPI advance the started allreduces (most MPI libraries progress only inside MPI calls)."""
        pending = [b.request for b in self.buckets[:self._next] if b.request is not None]
        if pending:
            from mpi4py import MPI
            MPI.Request.Testall(pending)

    def _out_of_date(self) -> bool:
        """True if a bucket sent early no longer matches ``param.grad`` or this round's weight."""
        if self._stale:
            return True
        for b in self.buckets[:self._next]:
            if b.weight != self._weight or not all(b.is_current(k) for k in range(len(b.params))):
                return True
        return False

    def _send_rest(self, vote: int) -> None:
        """Start every bucket not started yet, in index order; the last carries ``vote``; wait for all."""
        last = len(self.buckets) - 1
        while self._next <= last:
            self._launch(self.buckets[self._next], vote if self._next == last else 0)
            self._next += 1
        requests = [b.request for b in self.buckets if b.request is not None]
        if requests:
            from mpi4py import MPI
            MPI.Request.Waitall(requests)

    def finish(self, weight: Optional[float] = None) -> None:
        """Send what is left, wait for every bucket, and store the averaged gradients in ``param.grad``.

        ``weight`` applies to a round that ``start(weight)`` did not begin.
        """
        w = check_weight("GradientReducer.finish", weight)
        if not self._active:
            self._begin()
        if weight is not None and not self._explicit:
            self._set_weight(w)
        self._send_rest(1 if self._out_of_date() else 0)
        if self.buckets and self.buckets[-1].flat[-1] > 0:   # some rank's early sends are out of date
            self._next = 0
            for b in self.buckets:
                b.reset()
            self._send_rest(0)
            self.stats["redone"] += 1
        for b in self.buckets:
            total = float(b.flat[-2])
            scale = 1.0 / total if total > 0 else 0.0
            flags = b.flat[b.n:b.n + len(b.params)]
            for k, p in enumerate(b.params):
                if flags[k] > 0:
                    lo, hi = b.spans[k]
                    p.grad = Variable((b.flat[lo:hi] * scale).reshape(p.data.shape))
                else:
                    p.grad = None
            b.request = None
        self._active = False
        self.stats["rounds"] += 1
        if not self._relaid:
            self._relayout()

    def _relayout(self) -> None:
        """Once, after the first round: adopt rank 0's observed gradient order for the bucket layout."""
        self._relaid = True
        order = self.comm.bcast_object(list(self._observed) if self.comm.is_root else None)
        self._observed = {}
        if not order:
            return
        names = set(order)
        order = list(order) + [name for name in self.order if name not in names]
        if order != self.order and sorted(order) == sorted(self.order):
            self._build(order)


def check_weight(where: str, weight: Optional[float]) -> float:
    """``weight`` as a float >= 0 (1 for None); a ``ValueError`` naming ``where`` otherwise."""
    w = 1.0 if weight is None else float(weight)
    if not w >= 0.0:
        raise ValueError(f"{where}: weight must be >= 0, got {weight!r}")
    return w
