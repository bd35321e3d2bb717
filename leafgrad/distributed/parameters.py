"""Naming a model's parameters the same way on every rank, and starting every rank from rank 0's values."""
from __future__ import annotations

from typing import Any, List, Tuple

from leafgrad.core import Parameter
from leafgrad.distributed.communicator import Communicator

__all__ = ["named_parameters", "broadcast_parameters"]


def named_parameters(target: Any) -> List[Tuple[str, Parameter]]:
    """``(name, parameter)`` pairs of ``target`` in an order that is the same on every rank.

    ``target`` is a ``Layer``/``Model`` (its ``named_params()`` paths, each
    parameter once), a single ``Parameter``, or a sequence of Parameters
    (named by position).  ``Layer.params()`` alone would not do: its order may
    follow Python's set order, which differs between processes.
    """
    if isinstance(target, Parameter):
        return [("0", target)]
    if hasattr(target, "named_params"):
        pairs = target.named_params()
    elif hasattr(target, "_flatten_params"):
        d: dict = {}
        target._flatten_params(d)
        pairs = sorted(d.items())
    elif isinstance(target, (list, tuple)):
        pairs = [(str(i), p) for i, p in enumerate(target)]
    else:
        raise TypeError(f"named_parameters: expected a Layer, a Parameter or a list of Parameters, "
                        f"got {type(target).__name__}")
    out, seen = [], set()
    for name, p in pairs:
        if not isinstance(p, Parameter):
            raise TypeError(f"named_parameters: {name} is a {type(p).__name__}, not a Parameter")
        if id(p) not in seen:
            seen.add(id(p))
            out.append((name, p))
    return out


def broadcast_parameters(target: Any, comm: Communicator) -> List[Tuple[str, Parameter]]:
    """Give every rank rank 0's parameter values, after checking that all ranks hold the same model.

    Returns ``named_parameters(target)``.  Raises ``ValueError`` naming the
    first parameter whose name, shape or dtype differs from rank 0's, and
    naming parameters that have no data yet (layers created with
    ``in_size=None`` make their weights at the first call: run one forward
    pass, or give the size, before setting up the optimizer).
    """
    named = named_parameters(target)
    lazy = [name for name, p in named if p.data is None]
    if lazy:
        raise ValueError(
            f"broadcast_parameters: parameters {', '.join(lazy)} have no data yet (a layer made with "
            "in_size=None creates its weights at the first call); run one forward pass on every rank "
            "(e.g. model(x[:1])) or give in_size, before setup, so rank 0's values can be sent")
    meta = [(name, tuple(p.data.shape), p.data.dtype.str) for name, p in named]
    root_meta = comm.bcast_object(meta)
    if root_meta != meta:
        raise ValueError(f"broadcast_parameters: rank {comm.rank}'s parameters differ from rank 0's: "
                         f"{_first_difference(root_meta, meta)}")
    comm.bcast_arrays([p.data for _, p in named])
    return named


def _first_difference(root: list, mine: list) -> str:
    for a, b in zip(root, mine):
        if a != b:
            return f"rank 0 has {a[0]} {a[1]} {a[2]}, this rank {b[0]} {b[1]} {b[2]}"
    return f"rank 0 has {len(root)} parameters, this rank {len(mine)}"
