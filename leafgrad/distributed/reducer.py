"""Gradient averaging across ranks in buckets, started while backward is still running.

``GradientReducer`` owns a fixed list of named parameters, packed into
*buckets*: flat buffers of about ``bucket_bytes`` each, one dtype a bucket.
One non-blocking allreduce (``Iallreduce``, in place) is made per bucket, not
one per parameter.

Each bucket's buffer is laid out as ``[gradients... | one flag per parameter |
weight]``.  A rank writes ``weight * gradient`` (zeros for a parameter it has
no gradient for), the flag 1 where it has one, and its ``weight`` (1 by
default, or its number of examples).  After the sum, a parameter gets the
gradient ``sum / total weight`` if any rank had one, and keeps none otherwise:
every rank takes the same decision, with no extra collective call.

Overlap with backward (what PyTorch's DistributedDataParallel does): before
backward, ``instrument(loss)`` puts a pass-through node (``GradientReady``)
between each parameter and the functions that read it.  The backward engine
visits functions in decreasing generation order; the node's generation is set
just below the lowest of its readers', so it runs once all of them have
delivered their gradient: the parameter's gradient for this backward is then
final.  The node copies it into its bucket, and a bucket whose gradients are
all in starts its allreduce at once, while backward goes on with the layers
below.  Buckets start in their index order on every rank (MPI requires the
same order of collectives everywhere); the layout follows the order in which
backward produces gradients (last layer first), learnt at the first step from
rank 0's graph.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from leafgrad.core import Function, Parameter, Variable
from leafgrad.cuda import get_array_module
from leafgrad.distributed.communicator import Communicator

__all__ = ["GradientReducer", "GradientReady"]


class GradientReady(Function):
    """Pass-through node inserted before a parameter: reports its final gradient of this backward.

    Made by ``GradientReducer.instrument``; never called forward.
    """

    retain_inputs = ()

    def __init__(self, reducer: "GradientReducer", param: Parameter, generation: float) -> None:
        self.reducer = reducer
        self.param = param
        self.generation = generation
        self._edges = [param]
        self.outputs = [_no_output]

    def forward(self, *xs: Any) -> Any:  # pragma: no cover - never called
        raise RuntimeError("GradientReady is a backward-only graph node")

    def backward_array(self, gy: Any) -> Any:
        self.reducer.grad_ready(self.param, gy)
        return gy

    def backward(self, gy: Variable) -> Variable:
        self.reducer.grad_ready(self.param, gy.data)
        return gy

    def _release(self) -> None:
        super()._release()
        self.reducer = None


def _no_output() -> None:
    """The (dead) weak reference to the output of a ``GradientReady`` node: it has no Variable."""
    return None


class _Bucket:
    """A flat buffer for some parameters' gradients, their presence flags and the ranks' weight."""

    __slots__ = ("params", "names", "spans", "flat", "n", "filled", "packed", "request", "launched")

    def __init__(self, named: List[Tuple[str, Parameter]], xp: Any, dtype: Any) -> None:
        self.names = [name for name, _ in named]
        self.params = [p for _, p in named]
        self.spans = []
        offset = 0
        for p in self.params:
            self.spans.append((offset, offset + p.data.size))
            offset += p.data.size
        self.n = offset
        self.flat = xp.zeros(offset + len(self.params) + 1, dtype=dtype)
        self.reset()

    def reset(self) -> None:
        self.filled = 0
        self.packed = [False] * len(self.params)
        self.request = None
        self.launched = False

    @property
    def nbytes(self) -> int:
        return self.flat.nbytes


class GradientReducer:
    """Averages the gradients of ``named_params`` (a list of ``(name, Parameter)``) over ``comm``'s ranks.

    One round per update: ``start(weight)``, optionally ``instrument(loss)``
    before ``loss.backward()`` for overlap, then ``finish()`` which starts the
    buckets not yet started, waits for all of them and writes the averaged
    gradients to ``param.grad``.
    """

    def __init__(self, named_params: Sequence[Tuple[str, Parameter]], comm: Communicator,
                 bucket_bytes: int = 4 << 20) -> None:
        self.comm = comm
        self.bucket_bytes = int(bucket_bytes)
        self.named = list(named_params)
        self._param_by_name = {name: p for name, p in self.named}
        self.buckets: List[_Bucket] = []
        self._where: Dict[int, Tuple[_Bucket, int]] = {}
        self._active = False
        self._weight = 1.0
        self._next = 0                       # index of the next bucket to start
        self._observed: Optional[list] = None  # names in the order backward delivered them (first round)
        self._relaid = False
        self.stats = {"rounds": 0, "allreduce_calls": 0, "bytes": 0}
        # Default layout: reverse registration order (for a sequential model, last layer first).
        self._build([name for name, _ in reversed(self.named)])

    # ---- layout ------------------------------------------------------------------------
    def _build(self, order: Sequence[str]) -> None:
        """Pack the parameters into buckets in ``order``, one dtype a bucket, at most ``bucket_bytes`` each."""
        open_by_dtype: Dict[str, list] = {}
        groups: List[tuple] = []   # (xp, dtype, [(name, p)]) in creation order
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
        """True between ``start`` and ``finish``."""
        return self._active

    def start(self, weight: Optional[float] = None) -> None:
        """Begin a round; this rank's gradients count ``weight`` times (default 1) in the average."""
        if self._active:
            self.finish()
        w = 1.0 if weight is None else float(weight)
        if not w >= 0.0:
            raise ValueError(f"GradientReducer: weight must be >= 0, got {weight!r}")
        self._weight = w
        self._next = 0
        for b in self.buckets:
            b.reset()
        self._active = True

    def instrument(self, loss: Variable) -> int:
        """Insert a ``GradientReady`` node before every managed parameter in ``loss``'s graph.

        Returns the number of parameters found.  Call between forward and
        ``loss.backward()``.
        """
        if not self._active:
            raise RuntimeError("GradientReducer.instrument: call start() first")
        nodes: Dict[int, GradientReady] = {}
        lowest: Dict[int, float] = {}
        first_seen: Dict[int, int] = {}
        root = loss.creator
        stack = [root] if root is not None else []
        seen = {id(root)}
        while stack:
            f = stack.pop()
            edges = f._edges
            if edges is None:
                continue
            for k, edge in enumerate(edges):
                if edge is None:
                    continue
                if isinstance(edge, Variable):
                    if id(edge) not in self._where:
                        continue
                    node = nodes.get(id(edge))
                    if node is None:
                        node = nodes[id(edge)] = GradientReady(self, edge, 0)
                        first_seen[id(edge)] = len(first_seen)
                    edges[k] = node
                elif isinstance(edge, GradientReady):   # a graph kept with retain_graph=True
                    node = edge
                    node.reducer = self
                    if id(node.param) not in nodes:
                        nodes[id(node.param)] = node
                        first_seen[id(node.param)] = len(first_seen)
                else:
                    creator = edge[0] if type(edge) is tuple else edge
                    if id(creator) not in seen:
                        seen.add(id(creator))
                        stack.append(creator)
                    continue
                pid = id(node.param)
                g = f.generation
                if pid not in lowest or g < lowest[pid]:
                    lowest[pid] = g
        for pid, node in nodes.items():
            node.generation = lowest[pid] - 0.5
        if self._observed is None and nodes:
            ordered = sorted(nodes.values(), key=lambda n: (-n.generation, first_seen[id(n.param)]))
            names = {id(p): name for name, p in self.named}
            self._observed = [names[id(n.param)] for n in ordered]
        return len(nodes)

    def grad_ready(self, param: Parameter, g: Any) -> None:
        """Take ``param``'s final gradient of this backward; start its bucket (and those after) if complete."""
        b, k = self._where[id(param)]
        if b.launched or b.packed[k]:
            raise RuntimeError(
                f"GradientReducer: a second gradient for {b.names[k]} arrived in the same round after it "
                "was packed; call optimizer.backward(loss) once per update (accumulate micro-batches "
                "with several optimizer.backward calls: each starts a new round)")
        self._pack(b, k, g)
        b.filled += 1
        if b.filled == len(b.params):
            self._start_ready()
        else:
            self._progress()

    def _pack(self, b: _Bucket, k: int, g: Any) -> None:
        """Write ``weight * (param.grad + g)`` into the bucket (``g`` None: the stored gradient alone)."""
        p = b.params[k]
        lo, hi = b.spans[k]
        out = b.flat[lo:hi]
        prev = p.grad.data if p.grad is not None else None
        if g is not None and g.size != p.data.size:
            raise ValueError(f"GradientReducer: gradient of {b.names[k]} has shape {g.shape}, "
                             f"the parameter {p.data.shape}")
        if g is None and prev is None:
            out[...] = 0
            b.flat[b.n + k] = 0
        else:
            if g is None:
                out[...] = prev.reshape(-1)
            elif prev is None:
                out[...] = g.reshape(-1)
            else:
                get_array_module(out).add(prev.reshape(-1), g.reshape(-1), out=out)
            if self._weight != 1.0:
                out *= self._weight
            b.flat[b.n + k] = 1
        b.packed[k] = True

    def _launch(self, b: _Bucket) -> None:
        for k, done in enumerate(b.packed):
            if not done:
                self._pack(b, k, None)
        b.flat[-1] = self._weight
        b.request = self.comm.iallreduce_sum_inplace(b.flat)
        b.launched = True
        self.stats["allreduce_calls"] += 1
        self.stats["bytes"] += b.nbytes

    def _start_ready(self) -> None:
        """Start, in index order, every bucket whose gradients are all packed."""
        while self._next < len(self.buckets):
            b = self.buckets[self._next]
            if b.filled < len(b.params):
                break
            self._launch(b)
            self._next += 1
        self._progress()

    def _progress(self) -> None:
        """Let MPI advance the started allreduces (most MPI libraries progress only inside MPI calls)."""
        pending = [b.request for b in self.buckets[:self._next] if b.request is not None]
        if pending:
            from mpi4py import MPI
            MPI.Request.Testall(pending)

    def start_remaining(self) -> None:
        """Start every bucket not started yet, packing the gradients stored in ``param.grad``."""
        while self._next < len(self.buckets):
            self._launch(self.buckets[self._next])
            self._next += 1

    def finish(self) -> None:
        """Start what is left, wait for every bucket, and store the averaged gradients in ``param.grad``."""
        if not self._active:
            self.start()
        self.start_remaining()
        requests = [b.request for b in self.buckets if b.request is not None]
        if requests:
            from mpi4py import MPI
            MPI.Request.Waitall(requests)
        for b in self.buckets:
            total = float(b.flat[-1])
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
        order = self.comm.bcast_object(self._observed if self.comm.is_root else None)
        if not order:
            return
        names = set(order)
        order = list(order) + [name for name in self.order if name not in names]
        if order != self.order and sorted(order) == sorted(self.order):
            self._build(order)
