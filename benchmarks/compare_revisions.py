"""leafgrad against another revision of itself, side by side in one run: ``python benchmarks/compare_revisions.py --base DIR``.

``DIR`` is a checkout of the revision to compare with, for example one made by
``git worktree add /tmp/leafgrad-base <commit>``.  Two copies of leafgrad
cannot share one interpreter, so each measurement runs in a fresh process
(one thread) that imports leafgrad from one checkout or the other; the
processes alternate, base then this checkout then base..., so a slow period
of a shared machine hits both alike.  Items (the numbering of ``run.py``):

1. MLP 784-1000-1000-10, ReLU, batch 128, float32: one SGD step (ms);
3. scalar chain ``y = y * 1.0001 + 0.0001``, forward + backward (us per op);
4. wide graph ``y = y + x[i] * w``, backward (s), N = 8,000 and 32,000.

The workloads are the ones of ``run.py`` (``_mlp.py``, ``_micro.py``); they use
only leafgrad's public API, so any revision runs them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: item -> (label, unit, scale from seconds, work for the child)
ITEMS = {
    "1": ("MLP 784-1000-1000-10, batch 128: one SGD step", "ms", 1e3, {"kind": "mlp", "reps": 10}),
    "3": ("scalar chain, forward + backward (20,000 ops)", "us/op", 1e6 / 20000,
          {"kind": "chain", "length": 10000, "reps": 3}),
    "4a": ("wide graph backward, N = 8,000", "s", 1.0, {"kind": "wide", "n": 8000, "reps": 2}),
    "4b": ("wide graph backward, N = 32,000", "s", 1.0, {"kind": "wide", "n": 32000, "reps": 1}),
}


def child(work: dict) -> List[float]:
    """Run in the child process: time ``work`` with the leafgrad that ``sys.path`` finds first."""
    from _common import interleaved, interleaved_prepared, load  # pins one thread first
    if work["kind"] == "mlp":
        from _mlp import make_step
        times = interleaved({"lg": make_step("leafgrad", [784, 1000, 1000, 10], 128)}, work["reps"], warmup=3)
    elif work["kind"] == "chain":
        from _micro import chain
        prepare = chain("leafgrad", work["length"])
        prepare()()  # warm-up
        times = interleaved_prepared({"lg": prepare}, {"lg": work["reps"]})
    else:
        from _micro import wide
        times = interleaved_prepared({"lg": wide("leafgrad", work["n"])}, {"lg": work["reps"]})
    assert load("leafgrad").__file__.startswith(os.environ["LEAFGRAD_UNDER_TEST"]), load("leafgrad").__file__
    return times["lg"]


def measure(checkout: str, work: dict) -> List[float]:
    """Timings of ``work`` in a fresh interpreter that imports leafgrad from ``checkout``."""
    env = dict(os.environ, LEAFGRAD_UNDER_TEST=os.path.join(os.path.abspath(checkout), "leafgrad"),
               PYTHONPATH=os.path.abspath(checkout))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(work)],
                          capture_output=True, text=True, env=env, check=False, cwd=HERE)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement in {checkout} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a checkout of the revision to compare with")
    parser.add_argument("--items", default="1,3,4a,4b", help="comma-separated items (1, 3, 4a, 4b)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating processes per revision and item")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, HERE)
        import _common  # noqa: F401  (pins one thread; puts this checkout on sys.path: undone below)
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != ROOT]
        sys.path.insert(0, os.environ["PYTHONPATH"])
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if not args.base:
        parser.error("--base DIR is required")
    revisions = {"base": args.base, "this": ROOT}
    print(f"base: {os.path.abspath(args.base)}\nthis: {ROOT}\nmedians of {args.rounds} alternating processes each")
    for item in args.items.split(","):
        label, unit, scale, work = ITEMS[item]
        times: Dict[str, List[float]] = {"base": [], "this": []}
        for r in range(args.rounds):
            order = ("base", "this") if r % 2 == 0 else ("this", "base")
            for name in order:
                times[name] += measure(revisions[name], work)
        med = {name: statistics.median(ts) * scale for name, ts in times.items()}
        print(f"{item:>3}. {label}: base {med['base']:.3f} {unit}, this {med['this']:.3f} {unit} "
              f"(this / base = {med['this'] / med['base']:.3f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
