"""Run the book's compatibility suite against leafgrad: its 60 steps and DeZero's own unit tests.

Usage::

    python tools/dezero_suite.py BOOK [--steps 1-60] [--no-steps] [--no-tests] [--network]
                                      [--python PY] [--reference-python PY] [--timeout S]

``BOOK`` is a copy of https://github.com/oreilly-japan/deep-learning-from-scratch-3
(a checkout, or a bare git directory, whose HEAD is then extracted). It holds
``steps/`` (60 programs), ``dezero/`` (the reference implementation) and
``tests/`` (DeZero's unit tests, most of which compare against Chainer).

* Steps: each ``steps/stepNN.py`` runs twice in a fresh folder, once on DeZero
  (``BOOK/dezero`` first on ``PYTHONPATH``) and once on leafgrad
  (``python -m leafgrad.compat stepNN.py``). Their outputs must agree line by
  line: the same words, and the same numbers up to ``--rtol``; for the steps
  that seed nothing (``UNSEEDED``) only the words; the same exit status (a step
  that stops with an error must stop with the same last line); and the same
  files written. Steps that download data are skipped (``--network`` runs them).
* Tests: DeZero's tests run under pytest twice, on DeZero and on leafgrad
  (``import dezero`` resolving to leafgrad through ``leafgrad.compat``).
  Where DeZero's test itself is wrong (``DEZERO_IS_WRONG``) a failure on
  leafgrad is expected; any other failure counts. Test modules that import
  Chainer need it in the interpreter that runs them (``--python``); Chainer 7
  needs NumPy < 2.

Run DeZero on NumPy 1.x, the NumPy it was written for: under NumPy 2 its
float32 layers turn float64, so seeded programs print other digits (see
docs/compat.md). With Chainer and NumPy 1.26 in one interpreter::

    python -m venv /tmp/np1 && /tmp/np1/bin/pip install "numpy<2" matplotlib pytest "setuptools<70" wheel
    /tmp/np1/bin/pip install --no-build-isolation chainer==7.8.1    # its setup.py needs pkg_resources
    /tmp/np1/bin/python tools/dezero_suite.py path/to/deep-learning-from-scratch-3

The exit status is 0 when every step agrees and every test passes or fails
only where expected, 1 otherwise. No network is used unless ``--network``.
"""
from __future__ import annotations

import argparse
import ast
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

#: The checkout this script belongs to: put first on PYTHONPATH for the leafgrad runs.
LEAFGRAD_ROOT = Path(__file__).resolve().parent.parent

#: Source words that mean a step downloads something (data sets, pretrained weights, images).
NEEDS_NETWORK = re.compile(r"\b(MNIST|CIFAR10|CIFAR100|ImageNet|Shakespear|get_file|pretrained=True)\b")

#: Steps whose printed numbers come from an unseeded random generator: only their words must agree.
UNSEEDED = {
    54: "dropout's random mask",
    59: "SinCurve's noise and the RNN's initial weights are not seeded",
    60: "SinCurve's noise and the LSTM's initial weights are not seeded",
}

#: DeZero's tests that ask for something DeZero itself gets wrong: (module, class, test) -> why.
DEZERO_IS_WRONG = {
    ("test_sum.py", "TestSumTo", "test_backward3"):
        "asks sum_to for shape (10,) from an array of shape (10, 20, 20): (10,) does not broadcast to "
        "(10, 20, 20) (NumPy aligns trailing axes), so no such sum exists; DeZero silently returns shape "
        "(20,), leafgrad raises ValueError",
    **{("test_conv2d.py", cls, f"test_forward{i}"):
       "demands bit-equality (array_equal) with Chainer's float32 convolution, but the order in which "
       "float32 products are summed is not part of a convolution's definition: where leafgrad sums in "
       "another order than Chainer (conv2d_simple with stride (3, 1)) the last bits differ, while its error "
       "against a float64 convolution is no larger than Chainer's"
       for cls in ("TestConv2d_simple", "TestConv2d") for i in range(1, 5)},
}

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?\b(?:nan|inf)\b")


# =============================================================================
# The book
# =============================================================================
def book_tree(book: Path, workdir: Path) -> Path:
    """The book's files: ``book`` itself when it is a checkout, else its HEAD extracted under ``workdir``."""
    if (book / "steps").is_dir():
        return book
    try:
        archive = subprocess.run(["git", "--git-dir", str(book), "archive", "HEAD"], capture_output=True,
                                 check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"dezero_suite: {book} is neither a checkout of the book (no steps/) "
                         f"nor a git directory ({e})")
    tree = workdir / "book"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.12+, and 3.8-3.11 since their 2023 updates
            tar.extraction_filter = tarfile.data_filter
        tar.extractall(tree)
    return tree


def parse_steps(spec: str) -> set:
    """``"1-22,28,59-60"`` -> {1, ..., 22, 28, 59, 60}."""
    steps = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        steps.update(range(int(lo), int(hi or lo) + 1))
    return steps


# =============================================================================
# Running a program
# =============================================================================
@dataclass
class Run:
    """What one program run left: exit status, output lines, last error line, files written, seconds."""
    rc: int
    lines: list
    error: str
    files: list
    seconds: float


def run(argv: list, pythonpath: Path, timeout: float, cwd: Optional[Path] = None) -> Run:
    """Run ``argv`` in a fresh folder (or ``cwd``) with ``pythonpath`` first; plots go to a file backend."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    with tempfile.TemporaryDirectory(prefix="dezero_suite_") as fresh:
        folder = cwd or Path(fresh)
        start = time.perf_counter()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=folder, timeout=timeout)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = -1, e.stdout or "", f"timed out after {timeout:.0f} s"
            out = out.decode() if isinstance(out, bytes) else out
        seconds = time.perf_counter() - start
        files = sorted(p.name for p in folder.iterdir()) if cwd is None else []
    error_lines = [line for line in err.splitlines() if line.strip()]
    return Run(rc, out.splitlines(), error_lines[-1] if rc and error_lines else "", files, seconds)


# =============================================================================
# Comparing outputs
# =============================================================================
def split_line(line: str) -> tuple:
    """A line's words (numbers replaced by '#', spaces collapsed) and its numbers."""
    numbers = [float(n) for n in _NUMBER.findall(line)]
    words = " ".join(_NUMBER.sub("#", line).split())
    return words, numbers


def compare(reference: Run, leafgrad: Run, rtol: float, seeded: bool) -> tuple:
    """(True, note) when the two runs agree, else (False, the first difference)."""
    if (reference.rc == 0) != (leafgrad.rc == 0) or reference.error != leafgrad.error:
        return False, f"exit {reference.rc} vs {leafgrad.rc}: DeZero {reference.error!r}, leafgrad {leafgrad.error!r}"
    if len(reference.lines) != len(leafgrad.lines):
        return False, f"{len(reference.lines)} lines on DeZero, {len(leafgrad.lines)} on leafgrad"
    worst = 0.0
    for i, (a, b) in enumerate(zip(reference.lines, leafgrad.lines), 1):
        (wa, na), (wb, nb) = split_line(a), split_line(b)
        if wa != wb or len(na) != len(nb):
            return False, f"line {i}: DeZero {a!r}, leafgrad {b!r}"
        if not seeded:
            continue
        for x, y in zip(na, nb):
            diff = 0.0 if x == y else abs(x - y) / max(abs(x), abs(y))
            if diff != diff or diff > rtol:  # nan: nan against a number
                return False, f"line {i}: DeZero {a!r}, leafgrad {b!r}"
            worst = max(worst, diff)
    if reference.files != leafgrad.files:
        return False, f"files written: DeZero {reference.files}, leafgrad {leafgrad.files}"
    notes = [f"{len(reference.lines)} lines"]
    notes.append(f"numbers within {worst:.1e} relative" if worst else
                 "identical" if seeded else "numbers not compared")
    if reference.files:
        notes.append("wrote " + " ".join(reference.files))
    if reference.rc:
        notes.append(f"both stop with {reference.error!r}")
    return True, ", ".join(notes)


# =============================================================================
# Steps
# =============================================================================
def describe(python: str) -> str:
    """``python`` and the NumPy version it imports."""
    proc = subprocess.run([python, "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True)
    return f"{python}, NumPy {proc.stdout.strip() or '?'}"


def run_steps(book: Path, wanted: set, args: argparse.Namespace) -> dict:
    """Run each wanted step on DeZero and on leafgrad and print one line per step; returns counts."""
    print(f"== steps: {book / 'steps'}: DeZero ({describe(args.reference_python)}) against "
          f"python -m leafgrad.compat ({describe(args.python)})")
    counts = {"same": 0, "differ": 0, "network": 0}
    for path in sorted((book / "steps").glob("step*.py")):
        number = int(re.sub(r"\D", "", path.stem))
        if number not in wanted:
            continue
        found = NEEDS_NETWORK.search(path.read_text(encoding="utf-8"))
        if found and not args.network:
            counts["network"] += 1
            print(f"{path.stem}  skipped    needs the network ({found.group(1)})", flush=True)
            continue
        reference = run([args.reference_python, str(path)], book, args.timeout)
        leafgrad = run([args.python, "-m", "leafgrad.compat", str(path)], LEAFGRAD_ROOT, args.timeout)
        seeded = number not in UNSEEDED
        same, note = compare(reference, leafgrad, args.rtol, seeded)
        counts["same" if same else "differ"] += 1
        kind = ("same" if seeded else "same-lines") if same else "DIFFER"
        why = "" if seeded else f" [unseeded: {UNSEEDED[number]}]"
        print(f"{path.stem}  {kind:<11}{note}{why} ({reference.seconds:.1f} s on DeZero, "
              f"{leafgrad.seconds:.1f} s on leafgrad)", flush=True)
    return counts


# =============================================================================
# DeZero's tests
# =============================================================================
_PYTEST_ON_LEAFGRAD = ("import sys; from leafgrad import compat; compat.install(); "
                       "import pytest; sys.exit(pytest.main(sys.argv[1:]))")


def count_tests(module: Path) -> int:
    """The number of ``test*`` methods in ``module``'s classes, read without importing it.

    As when Python runs the module, a class or method defined again replaces the first one.
    """
    classes = {cls.name: {node.name for node in cls.body
                          if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}
               for cls in ast.parse(module.read_text(encoding="utf-8")).body if isinstance(cls, ast.ClassDef)}
    return sum(map(len, classes.values()))


def run_pytest(python: str, modules: list, on_leafgrad: bool, book: Path, timeout: float) -> dict:
    """Run pytest on ``modules``; returns {(module, class, test): (outcome, message)}."""
    with tempfile.TemporaryDirectory(prefix="dezero_suite_") as tmp:
        ini, report = Path(tmp) / "pytest.ini", Path(tmp) / "report.xml"
        ini.write_text("[pytest]\n")
        options = ["-q", "-p", "no:cacheprovider", "-c", str(ini), "--rootdir", str(book / "tests"),
                   f"--junitxml={report}", *map(str, modules)]
        if on_leafgrad:
            result = run([python, "-c", _PYTEST_ON_LEAFGRAD, *options], LEAFGRAD_ROOT, timeout, cwd=Path(tmp))
        else:
            result = run([python, "-m", "pytest", *options], book, timeout, cwd=Path(tmp))
        if not report.exists():
            raise SystemExit(f"dezero_suite: pytest wrote no report ({result.error or result.lines[-5:]})")
        outcomes = {}
        for case in ET.parse(report).iter("testcase"):
            module, _, cls = case.get("classname", "").partition(".")
            outcome, message = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = {"failure": "failed"}.get(child.tag, child.tag)
                    message = (child.get("message") or child.text or "").strip().splitlines()
                    message = message[0] if message else ""
            outcomes[(module + ".py", cls, case.get("name"))] = (outcome, message)
        return outcomes


def run_tests(book: Path, args: argparse.Namespace) -> dict:
    """Run DeZero's tests on DeZero and on leafgrad, print a line per module and the failures; returns counts."""
    modules = sorted((book / "tests").glob("test_*.py"))
    has_chainer = subprocess.run([args.python, "-c", "import chainer"], capture_output=True).returncode == 0
    needs_chainer = [m for m in modules if re.search(r"^\s*import chainer", m.read_text(encoding="utf-8"), re.M)]
    runnable = modules if has_chainer else [m for m in modules if m not in needs_chainer]
    print(f"\n== DeZero's tests: {book / 'tests'} ({len(modules)} modules), on DeZero and on leafgrad "
          f"({args.python}{'' if has_chainer else ', which cannot import chainer'})")
    ours = run_pytest(args.python, runnable, True, book, args.timeout) if runnable else {}
    theirs = {} if args.no_reference or not runnable else run_pytest(args.reference_python, runnable, False,
                                                                     book, args.timeout)
    counts = {"passed": 0, "expected": 0, "failed": 0, "chainer": 0}
    failures, expected = [], []
    for module in modules:
        name = module.name
        if module not in runnable:
            n = count_tests(module)
            counts["chainer"] += n
            print(f"{name:<32}{n:>3} tests: need Chainer (import chainer fails)")
            continue
        cases = {k: v for k, v in ours.items() if k[0] == name}
        passed = sum(outcome == "passed" for outcome, _ in cases.values())
        for key, (outcome, message) in sorted(cases.items()):
            if outcome in ("passed", "skipped"):
                continue
            (expected if key in DEZERO_IS_WRONG else failures).append((key, outcome, message))
        n_expected = sum(1 for key, *_ in expected if key[0] == name)
        n_failed = sum(1 for key, *_ in failures if key[0] == name)
        counts["passed"] += passed
        counts["expected"] += n_expected
        counts["failed"] += n_failed
        on_dezero = sum(o == "passed" for k, (o, _) in theirs.items() if k[0] == name)
        line = f"{name:<32}{len(cases):>3} tests: {passed} pass"
        line += f", {n_expected} fail where DeZero's test is wrong" if n_expected else ""
        line += f", {n_failed} FAIL" if n_failed else ""
        print(line + (f"   (on DeZero: {on_dezero} pass)" if theirs else ""))
    for title, rows in (("failures on leafgrad", failures),
                        ("failures where DeZero's test is wrong (expected)", expected)):
        if rows:
            print(f"\n{title}:")
        for (module, cls, test), outcome, message in rows:
            why = DEZERO_IS_WRONG.get((module, cls, test))
            print(f"  {module}::{cls}::{test} [{outcome}] {message[:160]}")
            if why:
                print(f"      why: {why}")
    return counts


# =============================================================================
# Command line
# =============================================================================
def main(argv: Optional[list] = None) -> int:
    """The command line: run the steps and the tests, print a summary, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("book", type=Path, help="a copy of oreilly-japan/deep-learning-from-scratch-3")
    parser.add_argument("--steps", default="1-60", help="which steps, e.g. 1-60 or 28,29,45-50 (1-60)")
    parser.add_argument("--no-steps", action="store_true", help="do not run the steps")
    parser.add_argument("--no-tests", action="store_true", help="do not run DeZero's tests")
    parser.add_argument("--network", action="store_true",
                        help="also run the steps that download data sets and weights (skipped by default)")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not run DeZero's tests on DeZero (the steps always run on both)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for leafgrad's runs (needs numpy, pytest; chainer for most tests)")
    parser.add_argument("--reference-python", default=None, help="interpreter for DeZero's runs (--python)")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance for printed numbers (1e-6)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per program or pytest run (900)")
    args = parser.parse_args(argv)
    args.reference_python = args.reference_python or args.python
    with tempfile.TemporaryDirectory(prefix="dezero_suite_") as tmp:
        book = book_tree(args.book.resolve(), Path(tmp))
        steps = {} if args.no_steps else run_steps(book, parse_steps(args.steps), args)
        tests = {} if args.no_tests else run_tests(book, args)
    summary = []
    if steps:
        summary.append(f"steps: {steps['same']} agree, {steps['differ']} differ, "
                       f"{steps['network']} skipped (need the network)")
    if tests:
        summary.append(f"DeZero's tests on leafgrad: {tests['passed']} pass, {tests['failed']} fail, "
                       f"{tests['expected']} fail where DeZero's test is wrong, {tests['chainer']} need Chainer")
    print("\n== " + "\n== ".join(summary))
    return 1 if steps.get("differ") or tests.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
