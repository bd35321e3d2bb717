"""tools/dezero_suite.py, the runner of the book's compatibility suite, on a small made-up book.

The real book (its 60 steps and DeZero's tests) needs a fetched copy; this
book has a few steps and tests of each kind the runner must tell apart.
"""
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import leafgrad

REPO = Path(leafgrad.__file__).resolve().parent.parent
SUITE = REPO / "tools" / "dezero_suite.py"


def load_suite():
    spec = importlib.util.spec_from_file_location("dezero_suite", SUITE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def book(tmp_path):
    """A book whose ``dezero`` is a one-class stand-in: enough for steps that print plain numbers."""
    root = tmp_path / "book"
    write(root / "dezero" / "__init__.py", """
        class Variable:
            def __init__(self, data):
                self.data = data
    """)
    write(root / "steps" / "step01.py", """
        import numpy as np
        import dezero
        np.random.seed(0)
        x = dezero.Variable(np.random.rand(3))
        print("sum", x.data.sum(), "of", len(x.data))
        open("picture.png", "w").close()
    """)
    write(root / "steps" / "step02.py", """
        import dezero
        train_set = dezero.datasets.MNIST(train=True)
    """)
    write(root / "steps" / "step03.py", """
        import dezero
        print("module", dezero.Variable.__module__)
    """)
    write(root / "steps" / "step54.py", """
        import numpy as np
        import dezero
        print("draw", np.random.rand())
    """)
    write(root / "steps" / "step09.py", """
        import dezero
        raise TypeError("made to stop")
    """)
    # test_sum.py::TestSumTo::test_backward3 is on the runner's list of DeZero's wrong tests.
    write(root / "tests" / "test_sum.py", """
        import unittest
        import numpy as np
        from dezero import Variable

        class TestSumTo(unittest.TestCase):
            def test_forward1(self):
                self.assertEqual(Variable(np.ones(2)).data.sum(), 2.0)

            def test_backward3(self):
                self.assertEqual(Variable.__module__, "dezero")
    """)
    write(root / "tests" / "test_other.py", """
        import unittest
        from dezero import Variable

        class TestOther(unittest.TestCase):
            def test_module(self):
                self.assertEqual(Variable.__module__, "dezero")
    """)
    write(root / "tests" / "test_against_chainer.py", """
        import unittest
        import chainer

        class TestA(unittest.TestCase):
            def test_one(self):
                pass

            def test_two(self):
                pass

        class TestA(unittest.TestCase):  # defined again: this one counts
            def test_three(self):
                pass
    """)
    return root


def test_runner_on_a_small_book(book):
    proc = subprocess.run([sys.executable, str(SUITE), str(book)], capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("step", "test_"))}
    assert "same" in lines["step01"].split() and "wrote picture.png" in lines["step01"]
    assert "needs the network (MNIST)" in lines["step02"]
    assert "DIFFER" in lines["step03"] and "leafgrad.core" in lines["step03"]
    assert "same-lines" in lines["step54"]
    assert "both stop with 'TypeError: made to stop'" in lines["step09"]
    assert "1 pass, 1 fail where DeZero's test is wrong" in lines["test_sum.py"]
    assert "(on DeZero: 2 pass)" in lines["test_sum.py"]
    assert "0 pass, 1 FAIL" in lines["test_other.py"]
    assert "  test_other.py::TestOther::test_module [failed]" in out
    assert "      why: asks sum_to for shape (10,)" in out
    if importlib.util.find_spec("chainer") is None:
        assert "1 tests: need Chainer" in lines["test_against_chainer.py"]
    assert "== steps: 3 agree, 1 differ, 1 skipped (need the network)" in out


def test_compare_words_and_numbers():
    suite = load_suite()
    Run = suite.Run
    a = Run(0, ["loss 0.12345678 at epoch 3", "variable([1. 2.])"], "", [], 0.0)
    close = Run(0, ["loss 0.12345679 at epoch 3", "variable([1.  2.])"], "", [], 0.0)
    same, note = suite.compare(a, close, rtol=1e-6, seeded=True)
    assert same and "within 8.1e-08 relative" in note
    assert not suite.compare(a, close, rtol=1e-9, seeded=True)[0]
    other = Run(0, ["loss 0.9 at step 3", "variable([1. 2.])"], "", [], 0.0)
    same, note = suite.compare(a, other, rtol=1e-6, seeded=False)
    assert not same and note.startswith("line 1:")
    assert suite.compare(a, Run(0, ["loss 0.5 at epoch 4", "variable([3. 4.])"], "", [], 0.0),
                         rtol=0, seeded=False) == (True, "2 lines, numbers not compared")
    assert suite.parse_steps("1-3,28,59-60") == {1, 2, 3, 28, 59, 60}
