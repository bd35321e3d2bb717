"""Rank ``--rank`` raises after the first collective; the others go on into one that would wait forever.

The job must end quickly, non-zero, with a message naming the failing rank.
"""
from __future__ import annotations

import argparse
import sys

from common import dist  # noqa: F401  (puts the checkout on sys.path)

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rank", type=int, default=1)
    p.add_argument("--exit", action="store_true",
                   help="leave with sys.exit(3) inside abort_on_error instead of raising")
    args = p.parse_args()
    comm = dist.init()
    comm.allreduce_sum(np.ones(4, np.float32))
    if comm.rank == args.rank:
        if args.exit:
            with dist.abort_on_error(comm):
                sys.exit(3)   # a plain exit would leave the other ranks waiting in the barrier
        raise ValueError("deliberate failure to test the abort")
    comm.barrier()   # the failing rank never arrives here
    comm.allreduce_sum(np.ones(4, np.float32))
    print("unreachable: every rank passed the barrier", flush=True)


if __name__ == "__main__":
    main()
