"""leafgrad.compat: DeZero programs run unchanged, with ``import dezero`` resolving to leafgrad.

The programs in tests/dezero_programs/ are written for DeZero 0.0.13.  The
expected numbers below are what DeZero 0.0.13 itself prints for them.
"""
import gzip
import importlib
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import leafgrad
from leafgrad import compat

REPO = Path(leafgrad.__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "dezero_programs"


def run_program(name, *args, env_extra=None):
    """Run ``python -m leafgrad.compat <program> <args>`` in a fresh interpreter; return its stdout lines."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-m", "leafgrad.compat", str(PROGRAMS / name), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=str(PROGRAMS), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def numbers(line):
    """The numbers in a printed line, e.g. 'sin 0.7 variable(0.7)' -> [0.7, 0.7]."""
    for ch in "()[],":
        line = line.replace(ch, " ")
    out = []
    for word in line.split()[1:]:
        try:
            out.append(float(word))
        except ValueError:
            pass
    return out


@pytest.fixture
def alias():
    """Install the alias in this process for one test, then remove it."""
    compat.uninstall()
    compat.install()
    try:
        yield
    finally:
        compat.uninstall()


# =============================================================================
# Programs run in a fresh interpreter: the same numbers as DeZero
# =============================================================================
def test_core_functions_program():
    lines = run_program("core_functions.py", 1000)
    assert lines[0].startswith("sin ")
    np.testing.assert_allclose(numbers(lines[0]), [0.7071067811865475, 0.7071067811865476], rtol=1e-12)
    np.testing.assert_allclose(numbers(lines[1]), [0.7071064695751781, 0.7071032148228457], rtol=1e-12)
    np.testing.assert_allclose(numbers(lines[2]), [0.6837118569138317, 0.4659526837427042], rtol=1e-10)
    assert lines[3] == "isinstance True"


def test_higher_order_program():
    lines = run_program("higher_order.py")
    np.testing.assert_allclose(numbers(lines[0]), [1.0], rtol=1e-12)
    np.testing.assert_allclose(numbers(lines[1]), [0.6650910447505024], rtol=1e-12)
    np.testing.assert_allclose(numbers(lines[2]), [0.0, -1.0, 0.0, 1.0], atol=1e-12)


def test_regression_program():
    lines = run_program("regression.py")
    np.testing.assert_allclose(numbers(lines[0]), [2.118073690511974, 5.466089050922982, 0.07908606512411756],
                               rtol=1e-10)
    assert lines[1:] == ["no_grad_creator True", "config_creator True"]


def test_simple_core_program():
    """Book steps 28-29: ``dezero.core_simple.Variable`` keeps array gradients (``x.data -= lr * x.grad``)."""
    lines = run_program("simple_core.py")
    assert len(lines) == 10
    np.testing.assert_allclose(numbers(lines[1]), [50, 3.1078618771866737, -1.1527980942669915], rtol=1e-13)
    np.testing.assert_allclose(numbers(lines[3]), [150, 3.5806204099163237, -1.1789818909121939], rtol=1e-13)
    assert all(line.endswith(" False") for line in lines[:4])  # the gradient is not a Variable
    np.testing.assert_allclose(numbers(lines[9]), [5, 1.130901122629998], rtol=1e-13)


def test_mixed_precision_program():
    """Book steps 44-46: float64 data through float32 layers; DeZero (on NumPy 1.26) prints these numbers,
    and leafgrad prints them on NumPy 1.26 and 2 alike (the float32 weights get float64 gradients)."""
    lines = run_program("mixed_precision.py")
    expected = [0.14606166234464918, 0.032887932149656664, 0.03295617664918138, 0.04130130751008247,
                0.02361998350441988, 0.031292562605914155, 0.030940089026939375, 0.029064983946398715]
    got = [numbers(line)[-1] for line in lines]
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    assert [line.split()[0] for line in lines[3:]] == ["SGD", "MomentumSGD", "AdaGrad", "AdaDelta", "Adam"]
    assert lines[0].endswith("float32 float64")  # the weights stay float32, their gradient is float64


def test_cnn_rnn_program():
    """Book steps 54-60: seeded dropout and test mode, im2col, conv and pooling, a CNN, an LSTM with
    truncated BPTT; DeZero prints these lines (float32 sums compared to float32 precision)."""
    lines = run_program("cnn_rnn.py")
    assert lines[:3] == ["dropout train variable([2. 2. 0. 2. 2. 2.])",
                         "dropout test variable([1. 1. 1. 1. 1. 1.])",
                         "im2col (32, 27) (2, 3, 5, 3, 3, 5)"]
    assert lines[3].startswith("conv (2, 4, 7, 7) (2, 4, 3, 3) ")
    np.testing.assert_allclose(numbers(lines[3])[-2:], [180.526, 2378.229], rtol=1e-5)
    np.testing.assert_allclose(numbers(lines[4]), [0.0569, 1.0], atol=1e-4)
    losses = [float(line.rsplit(" ", 1)[1]) for line in lines[5:]]
    assert [line.split(",")[0] for line in lines[5:]] == ["lstm epoch 1", "lstm epoch 2", "lstm epoch 3"]
    np.testing.assert_allclose(losses, [0.340044, 0.121909, 0.046778], atol=2e-6)


def _have(module, *names):
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    return all(hasattr(mod, n) for n in names)


def test_spiral_mlp_program():
    """Book step 49/50: DeZero prints losses 1.1269, 1.0461, 0.9506 ... 0.1296 at epoch 300."""
    if not (_have("leafgrad.models", "MLP") and _have("leafgrad.optimizers", "SGD")
            and _have("leafgrad.functions", "softmax_cross_entropy")):
        pytest.skip("leafgrad.models / optimizers / softmax_cross_entropy are not written yet")
    lines = run_program("spiral_mlp.py", 300)
    losses = [float(line.rsplit(" ", 1)[1]) for line in lines]
    assert len(losses) == 300
    np.testing.assert_allclose(losses[:3], [1.1269, 1.0461, 0.9506], atol=2e-3)
    assert 0.11 <= losses[-1] <= 0.14


def test_mnist_program_reads_the_cache(tmp_path):
    def idx(array):
        return bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes() + array.tobytes()

    rng = np.random.RandomState(0)
    for prefix, n in (("train", 4), ("t10k", 2)):
        images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        images[0, 0, 0] = 255
        with gzip.open(tmp_path / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(idx(images))
        with gzip.open(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(idx(np.arange(n, dtype=np.uint8)))
    lines = run_program("mnist_data.py", env_extra={"LEAFGRAD_CACHE_DIR": str(tmp_path)})
    assert lines == [
        "example (784,) float32 0 1.0",
        "raw (2, 1, 28, 28) uint8 2",
        "batch (2, 784) float32 [0, 1]",
        "batch (2, 784) float32 [2, 3]",
        "same True",
        "cache leafgrad.download",
    ]


def test_argv_and_exit_status(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("import sys, dezero\nprint(sys.argv[1:], __name__)\nsys.exit(3)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "leafgrad.compat", str(prog), "a", "-b"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 3 and proc.stdout.strip() == "['a', '-b'] __main__"


def test_program_directory_is_on_sys_path(tmp_path):
    (tmp_path / "helper.py").write_text("import dezero\nVALUE = dezero.Variable.__module__\n")
    prog = tmp_path / "main.py"
    prog.write_text("import helper\nprint(helper.VALUE)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "leafgrad.compat", str(prog)], capture_output=True,
                          text=True, env=env, cwd=str(REPO), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "leafgrad.core"


def test_run_module_option(tmp_path):
    pkg = tmp_path / "book"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "step01.py").write_text(
        "import sys\nfrom dezero import Variable\nprint(type(Variable).__name__, sys.argv[1:])\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "leafgrad.compat", "-m", "book.step01", "x"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "type ['x']"


def test_importing_leafgrad_installs_nothing():
    code = ("import sys, importlib.util, leafgrad, leafgrad.datasets, leafgrad.utils; "
            "print(any(type(f).__module__ == 'leafgrad.compat' for f in sys.meta_path), "
            "'dezero' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.strip() == "False False", proc.stderr


# =============================================================================
# The alias in this process
# =============================================================================
def test_alias_resolves_to_leafgrad(alias):
    import dezero
    import dezero.functions as F
    from dezero import Function, Variable, as_variable, no_grad, using_config
    from dezero.core import Config, Parameter
    from dezero.core_simple import Variable as SimpleVariable

    assert Variable is leafgrad.Variable and issubclass(SimpleVariable, leafgrad.Variable)
    assert dezero.is_simple_core is False
    assert Function is leafgrad.Function and Parameter is leafgrad.Parameter
    assert F is leafgrad.functions and dezero.functions is leafgrad.functions
    assert sys.modules["dezero.functions"] is leafgrad.functions
    assert Config is leafgrad.Config and using_config is leafgrad.using_config
    assert as_variable is leafgrad.as_variable and no_grad is leafgrad.no_grad
    assert dezero.utils is leafgrad.utils and dezero.cuda is leafgrad.cuda
    assert dezero.datasets is importlib.import_module("leafgrad.datasets")
    assert dezero.dataloaders.DataLoader is dezero.DataLoader
    assert dezero.Dataset is importlib.import_module("leafgrad.datasets").Dataset
    assert dezero.transforms is importlib.import_module("leafgrad.transforms")
    assert dezero.functions_conv.sin is leafgrad.functions.sin
    assert dezero.setup_variable() is None
    # leafgrad's own module objects keep their names and specs.
    assert leafgrad.functions.__name__ == "leafgrad.functions"
    assert leafgrad.functions.__spec__.name == "leafgrad.functions"
    x = Variable(np.array(2.0))
    y = F.sin(x) * x
    y.backward()
    np.testing.assert_allclose(x.grad.data, np.cos(2.0) * 2 + np.sin(2.0))


def test_alias_missing_module_and_name(alias):
    with pytest.raises(ModuleNotFoundError, match="'dezero.nonexistent'.*'leafgrad.nonexistent'"):
        importlib.import_module("dezero.nonexistent")
    import dezero
    with pytest.raises(AttributeError, match="module 'dezero' .* has no attribute 'no_such_name'"):
        dezero.no_such_name


def test_install_is_idempotent_and_uninstall_cleans_up():
    compat.uninstall()
    compat.install()
    compat.install()
    try:
        assert compat.is_installed()
        assert sum(type(f).__name__ == "_AliasFinder" for f in sys.meta_path) == 1
        import dezero  # noqa: F401
        import dezero.functions  # noqa: F401
    finally:
        compat.uninstall()
    assert not compat.is_installed()
    assert not [n for n in sys.modules if n == "dezero" or n.startswith("dezero.")]
    assert "leafgrad.functions" in sys.modules


def test_install_refuses_a_real_dezero(monkeypatch):
    compat.uninstall()
    monkeypatch.setitem(sys.modules, "dezero", types.ModuleType("dezero"))
    with pytest.raises(RuntimeError, match="a module named 'dezero' is already imported"):
        compat.install()
    assert not compat.is_installed()


def test_run_path_in_process(tmp_path, alias):
    prog = tmp_path / "p.py"
    prog.write_text("import numpy as np\nimport dezero\nimport dezero.functions as F\n"
                    "x = dezero.Variable(np.array([1.0, 2.0], dtype=np.float32))\n"
                    "y = F.sum(F.exp(x))\ny.backward()\nGRAD = x.grad.data\n")
    out = compat.run_path(str(prog), ["--flag"])
    np.testing.assert_allclose(out["GRAD"], np.exp([1.0, 2.0]), rtol=1e-6)
    assert out["GRAD"].dtype == np.float32


def test_main_usage_and_missing_file(capsys, tmp_path):
    assert compat.main([]) == 2
    assert "usage: python -m leafgrad.compat" in capsys.readouterr().err
    assert compat.main(["--help"]) == 0
    assert compat.main([str(tmp_path / "nope.py")]) == 2
    assert "no such program file" in capsys.readouterr().err
    compat.uninstall()
