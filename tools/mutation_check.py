"""Mutation check of the gradient formulas: does the test suite notice a wrong gradient?

For every ``backward``-like method that a Function class of leafgrad defines, in turn, the method
is made to return twice its gradients, and the gradient tests run against that mutant in a fresh
process.  A mutant is *caught* when the tests fail.  Every formula should be caught.

    python3 tools/mutation_check.py                 # all formulas, tests/test_gradients.py
    python3 tools/mutation_check.py --list          # only list the formulas
    python3 tools/mutation_check.py -k Softplus -j 2 --tests tests/test_gradients.py tests/test_conv.py

Works from any directory and any checkout: it tests the leafgrad next to it (``../leafgrad``).
Prints one line per formula and ``caught N of M``; exits 1 when a mutant survives.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def formulas() -> list[str]:
    """``module.Class.method`` for every backward-like method a Function class of leafgrad defines."""
    sys.path.insert(0, str(ROOT))
    import leafgrad
    from leafgrad.core import Function
    for info in pkgutil.walk_packages(leafgrad.__path__, "leafgrad."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional dependency missing: no formulas there
            continue

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    found = set()
    for cls in subclasses(Function):
        if not cls.__module__.startswith("leafgrad.") or "<locals>" in cls.__qualname__:
            continue
        for name, value in vars(cls).items():
            if name.startswith("backward") and inspect.isfunction(value):
                found.add(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return sorted(found)


def _doubled(method):
    """``method`` returning twice each gradient (None stays None)."""
    def twice(g):
        return None if g is None else g * 2.0

    def mutant(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        if isinstance(result, (tuple, list)):
            return type(result)(twice(g) for g in result)
        return twice(result)
    mutant.__name__, mutant.__qualname__ = method.__name__, method.__qualname__
    return mutant


def run_one(spec: str, pytest_args: list[str]) -> int:
    """In this process: plant the mutant ``spec``, then run pytest (its exit status)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    module, cls_name, method = spec.rsplit(".", 2)
    cls = getattr(importlib.import_module(module), cls_name)
    setattr(cls, method, _doubled(vars(cls)[method]))
    import pytest
    return int(pytest.main(pytest_args))


def _check(spec: str, tests: list[str], timeout: float) -> tuple[str, str, float]:
    start = time.monotonic()
    command = [sys.executable, str(Path(__file__).resolve()), "--run-one", spec, "--",
               "-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=", *tests]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return spec, "timeout", time.monotonic() - start
    if done.returncode == 1:
        return spec, "caught", time.monotonic() - start
    if done.returncode == 0:
        return spec, "NOT caught", time.monotonic() - start
    return spec, f"error (pytest exit {done.returncode}): {done.stdout[-300:]}{done.stderr[-300:]}", \
        time.monotonic() - start


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-one"]:
        return run_one(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", nargs="+", default=["tests/test_gradients.py"],
                        help="test files to run against each mutant (relative to the checkout)")
    parser.add_argument("-k", dest="only", default="", help="only formulas whose name contains this")
    parser.add_argument("-j", dest="jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant (default 600)")
    parser.add_argument("--list", action="store_true", help="list the formulas and stop")
    args = parser.parse_args(argv)
    specs = [s for s in formulas() if args.only in s]
    if args.list:
        print("\n".join(specs))
        print(f"{len(specs)} formulas")
        return 0
    print(f"{len(specs)} formulas, each doubled in turn, against {' '.join(args.tests)} ({ROOT})", flush=True)
    outcomes = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for spec, outcome, seconds in pool.map(lambda s: _check(s, args.tests, args.timeout), specs):
            outcomes[spec] = outcome
            print(f"{outcome:>10}  {spec}  ({seconds:.0f} s)", flush=True)
    caught = sum(o == "caught" for o in outcomes.values())
    survivors = [s for s, o in outcomes.items() if o != "caught"]
    print(f"caught {caught} of {len(specs)}; not caught: {len(survivors)}")
    for spec in survivors:
        print(f"  not caught: {spec} ({outcomes[spec]})")
    return 0 if not survivors else 1


if __name__ == "__main__":
    sys.exit(main())
