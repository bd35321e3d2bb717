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
import leafgrad.functions as F
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
    # each DeZero module is a proxy: leafgrad's objects themselves, plus what DeZero's module re-exports
    assert F is dezero.functions and sys.modules["dezero.functions"] is F
    assert F.sin is leafgrad.functions.sin and F.Function is leafgrad.Function
    assert Config is leafgrad.Config and isinstance(using_config('train', True), leafgrad.using_config)
    assert as_variable is leafgrad.as_variable and no_grad is leafgrad.no_grad
    assert dezero.utils.sum_to is leafgrad.utils.sum_to and dezero.cuda.as_numpy is leafgrad.cuda.as_numpy
    assert dezero.datasets.Spiral is importlib.import_module("leafgrad.datasets").Spiral
    assert dezero.dataloaders.DataLoader is dezero.DataLoader
    assert dezero.Dataset is importlib.import_module("leafgrad.datasets").Dataset
    assert dezero.transforms.Compose is importlib.import_module("leafgrad.transforms").Compose
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


# =============================================================================
# Issue 18: every name DeZero's modules expose, its version, its graph
# =============================================================================
#: Every name each DeZero 0.0.13 module exposes (``vars(module)`` less dunders), with its kind:
#: written from DeZero's source (oreilly-japan/deep-learning-from-scratch-3, ``dezero/``).
DEZERO_NAMES = {
    "dezero": """
        Config:class DataLoader:class Dataset:class Function:class Layer:class Model:class Parameter:class
        SeqDataLoader:class Variable:class as_array:function as_variable:function core:module cuda:module
        dataloaders:module datasets:module dezero:module functions:module functions_conv:module
        is_simple_core:bool layers:module models:module no_grad:function optimizers:module
        setup_variable:function test_mode:function transforms:module using_config:function utils:module
    """,
    "dezero.core": """
        Add:class Config:class Div:class Function:class Mul:class Neg:class Parameter:class Pow:class
        Sub:class Variable:class add:function array_types:class as_array:function as_variable:function
        contextlib:module dezero:module div:function mul:function neg:function no_grad:function np:module
        pow:function rdiv:function rsub:function setup_variable:function sub:function test_mode:function
        using_config:function weakref:module
    """,
    "dezero.core_simple": """
        Add:class Config:class Div:class Function:class Mul:class Neg:class Pow:class Sub:class
        Variable:class add:function as_array:function as_variable:function contextlib:module div:function
        mul:function neg:function no_grad:function np:module pow:function rdiv:function rsub:function
        setup_variable:function sub:function using_config:function weakref:module
    """,
    "dezero.functions": """
        BatchNorm:class BroadcastTo:class Clip:class Cos:class Exp:class Function:class GetItem:class
        GetItemGrad:class LeakyReLU:class Linear:class Log:class LogSoftmax:class MatMul:class Max:class
        MeanSquaredError:class Min:class ReLU:class Reshape:class Sigmoid:class Sin:class Softmax:class
        SoftmaxCrossEntropy:class Sum:class SumTo:class Tanh:class Transpose:class Variable:class
        accuracy:function add:function as_array:function as_variable:function average:function
        average_pooling:function batch_nrom:function binary_cross_entropy:function broadcast_to:function
        clip:function col2im:function conv2d:function conv2d_simple:function cos:function cuda:module
        deconv2d:function dezero:module div:function dropout:function embed_id:function exp:function
        expand_dims:function flatten:function get_item:function im2col:function leaky_relu:function
        linear:function linear_simple:function log:function log_softmax:function matmul:function
        max:function mean:function mean_squared_error:function mean_squared_error_simple:function
        min:function mul:function neg:function np:module pooling:function pooling_simple:function
        pow:function relu:function reshape:function rsub:function sigmoid:function
        sigmoid_cross_entropy:function sigmoid_simple:function sin:function softmax:function
        softmax_cross_entropy:function softmax_cross_entropy_simple:function softmax_simple:function
        sub:function sum:function sum_to:function tanh:function transpose:function utils:module
    """,
    "dezero.functions_conv": """
        AveragePooling:class Col2im:class Conv2DGradW:class Conv2d:class Deconv2d:class Function:class
        Im2col:class Pooling:class Pooling2DGrad:class Pooling2DWithIndexes:class _col2im_gpu:function
        _im2col_gpu:function as_variable:function average_pooling:function broadcast_to:function
        col2im:function col2im_array:function conv2d:function conv2d_simple:function cuda:module
        deconv2d:function get_conv_outsize:function get_deconv_outsize:function im2col:function
        im2col_array:function linear:function np:module pair:function pooling:function
        pooling_simple:function
    """,
    "dezero.layers": """
        BatchNorm:class Conv2d:class Deconv2d:class EmbedID:class F:module LSTM:class Layer:class
        Linear:class Parameter:class RNN:class cuda:module np:module os:module pair:function weakref:module
    """,
    "dezero.models": """
        BottleneckA:class BottleneckB:class BuildingBlock:class F:module L:module Layer:class MLP:class
        Model:class ResNet:class ResNet101:class ResNet152:class ResNet50:class Sequential:class
        SqueezeNet:class VGG16:class _global_average_pooling_2d:function np:module utils:module
    """,
    "dezero.optimizers": """
        AdaDelta:class AdaGrad:class Adam:class ClipGrad:class FreezeParam:class MomentumSGD:class
        Optimizer:class Parameter:class SGD:class WeightDecay:class cuda:module math:module
    """,
    "dezero.datasets": """
        CIFAR10:class CIFAR100:class Compose:class Dataset:class Flatten:class ImageNet:class MNIST:class
        Normalize:class Shakespear:class SinCurve:class Spiral:class ToFloat:class cache_dir:str
        get_file:function get_spiral:function gzip:module load_cache_npz:function np:module os:module
        pickle:module plt:module save_cache_npz:function tarfile:module
    """,
    "dezero.dataloaders": """
        DataLoader:class Image:module SeqDataLoader:class cuda:module math:module np:module
        pil_available:bool
    """,
    "dezero.transforms": """
        AsType:class CenterCrop:class Compose:class Convert:class Flatten:class Image:module Normalize:class
        RandomHorizontalFlip:class Resize:class ToArray:class ToFloat:class ToInt:class ToPIL:class
        np:module pair:function
    """,
    "dezero.utils": """
        Variable:class _dot_func:function _dot_var:function array_allclose:function array_equal:function
        as_variable:function cache_dir:str cuda:module get_conv_outsize:function get_deconv_outsize:function
        get_dot_graph:function get_file:function gradient_check:function logsumexp:function
        max_backward_shape:function np:module numerical_grad:function os:module pair:function
        plot_dot_graph:function reshape_sum_backward:function show_progress:function subprocess:module
        sum_to:function urllib:module
    """,
    "dezero.cuda": """
        Variable:class as_cupy:function as_numpy:function get_array_module:function gpu_enable:bool
        np:module
    """,
}


def _is_kind(obj, kind):
    if kind == "module":
        return isinstance(obj, types.ModuleType)
    if kind == "class":
        return isinstance(obj, type)
    if kind == "function":
        return callable(obj) and not isinstance(obj, (type, types.ModuleType))
    return type(obj).__name__ == kind


def test_every_dezero_name_is_importable_as_the_same_kind(alias):
    import dezero
    wrong = []
    for module, names in DEZERO_NAMES.items():
        mod = importlib.import_module(module)
        for entry in names.split():
            name, kind = entry.split(":")
            try:
                obj = getattr(mod, name)
            except AttributeError:
                wrong.append(f"{module}.{name}: missing")
                continue
            except ImportError as e:  # DeZero's own import of an optional extra (plt, Image)
                if (e.name or "").split(".")[0] in ("matplotlib", "PIL"):
                    continue
                raise
            if name == "array_types" and kind == "class" and isinstance(obj, tuple):
                continue  # (np.ndarray, cupy.ndarray) where CuPy is installed, as in DeZero
            if not _is_kind(obj, kind):
                wrong.append(f"{module}.{name}: {type(obj).__name__}, not a {kind}")
            if kind == "module" and name in ("dezero", "functions", "utils", "cuda", "F", "L"):
                expected = {"dezero": "dezero", "functions": "dezero.functions", "F": "dezero.functions",
                            "L": "dezero.layers", "utils": "dezero.utils", "cuda": "dezero.cuda"}[name]
                if obj is not sys.modules[expected]:
                    wrong.append(f"{module}.{name} is not {expected}")
    assert not wrong, wrong
    from dezero.functions import Function, Variable, as_array, as_variable  # noqa: F401 (the issue's case)
    from dezero.utils import _dot_func, _dot_var  # noqa: F401
    # leafgrad's own modules did not grow: the alias adds DeZero's re-exports
    assert "Function" not in vars(leafgrad.functions) and "Variable" not in vars(leafgrad.utils)


def test_leafgrad_submodules_import_through_the_proxies(alias):
    import dezero.functions.conv as conv
    assert conv is importlib.import_module("leafgrad.functions.conv")


def test_star_import_takes_dezero_names(alias):
    namespace = {}
    exec("from dezero.functions import *", namespace)
    assert namespace["Function"] is leafgrad.Function and namespace["sin"] is leafgrad.functions.sin
    assert namespace["np"] is np


def test_dezero_version_under_the_alias(alias):
    import dezero
    assert dezero.__version__ == "0.0.13"
    assert leafgrad.__version__ != "0.0.13"


def test_cache_npz_and_progress(alias, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEAFGRAD_CACHE_DIR", str(tmp_path))
    from dezero.datasets import load_cache_npz, save_cache_npz
    from dezero.utils import show_progress
    assert load_cache_npz("http://example.com/data.tar.gz") == (None, None)
    data, label = np.arange(6.0).reshape(2, 3), np.array([0, 1])
    save_cache_npz(data, label, "http://example.com/data.tar.gz", train=True)
    assert (tmp_path / "data.tar.gz.train.npz").exists()
    got_data, got_label = load_cache_npz("http://example.com/data.tar.gz", train=True)
    np.testing.assert_array_equal(got_data, data)
    np.testing.assert_array_equal(got_label, label)
    show_progress(5, 10, 100)
    assert capsys.readouterr().out.endswith("[###############...............] 50.00%")


def test_gpu_im2col_helpers_give_the_patches(alias):
    from dezero.functions_conv import _col2im_gpu, _im2col_gpu, col2im_array, im2col_array
    img = np.random.RandomState(0).rand(2, 3, 6, 5)
    col = _im2col_gpu(img, (3, 2), (2, 1), (1, 0))
    np.testing.assert_array_equal(col, im2col_array(img, (3, 2), (2, 1), (1, 0), to_matrix=False))
    np.testing.assert_array_equal(_col2im_gpu(col, 2, 1, 1, 0, 6, 5),
                                  col2im_array(col, img.shape, (3, 2), (2, 1), (1, 0), to_matrix=False))


def test_graph_walker_program():
    """A walker over creator.inputs / creator.outputs and get_dot_graph print what DeZero prints."""
    lines = run_program("graph_walker.py")
    assert lines == (PROGRAMS / "graph_walker.expected").read_text().splitlines()


def test_custom_functions_program():
    """Functions written on ``from dezero.functions import Function, ...`` (one with two outputs, two whose
    backward reads ``self.outputs[0]()``): DeZero prints these losses (on NumPy 2; on NumPy 1.26 the
    last digits move: exp and log1p round differently there)."""
    lines = run_program("custom_functions.py")
    losses = [numbers(line)[-1] for line in lines[:4]]
    np.testing.assert_allclose(losses, [1.0936439898941472, 1.0929400561360934, 0.9028041588929001,
                                        0.10953034605905691], rtol=1e-10)
    assert lines[4:] == ["classes True True MeanSquaredError", "version 0.0.13"]


def test_double_backward_program():
    """A second backward() on the same graph accumulates under the alias, as DeZero prints."""
    lines = run_program("double_backward.py")
    expected = [[25.0], [50.0], [3.595864390349418, -13.945818524767017],
                [7.191728780698836, 13.113524851672732], [1.797932195174709, -6.972909262383508]]
    assert [line.split()[0] for line in lines] == ["first", "second", "a", "b", "a"]
    for line, want in zip(lines, expected):
        np.testing.assert_allclose(numbers(line)[-len(want):], want, rtol=1e-14)


# ---- outside the alias: the same graph, leafgrad's memory rules ------------------------------------
def _constant_cases():
    from leafgrad.core import Add, Div, Mul, Pow, Sub
    return [  # (expression, DeZero's class, position of the constant in inputs, the constant)
        (lambda x: x + 2, Add, 1, 2), (lambda x: 2 + x, Add, 1, 2), (lambda x: x - 2, Sub, 1, 2),
        (lambda x: 1 - x, Sub, 0, 1), (lambda x: x * 3.5, Mul, 1, 3.5), (lambda x: 3.5 * x, Mul, 1, 3.5),
        (lambda x: x / 4, Div, 1, 4), (lambda x: 4 / x, Div, 0, 4), (lambda x: x ** 3, Pow, None, None),
    ]


def test_constant_forms_are_dezero_classes_with_a_constant_input():
    for expression, cls, position, c in _constant_cases():
        x = leafgrad.Variable(np.array(2.0))
        f = expression(x).creator
        assert isinstance(f, cls) and type(f).__name__ == cls.__name__, (cls, type(f))
        inputs = f.inputs
        if position is None:  # Pow keeps its exponent as an attribute, as DeZero does
            assert inputs == [x] and f.c == 3
            continue
        assert len(inputs) == 2 and inputs[1 - position] is x
        const = inputs[position]
        assert const.creator is None and not const.requires_grad and const.data == c
        assert repr(const) == repr(leafgrad.Variable(np.array(c)))
        assert f.inputs[position] is const  # the same object on every read
    x = leafgrad.Variable(np.array(2.0))
    assert repr((1 - x * x).creator.inputs[0]) == "variable(1)"  # the example


def test_inputs_are_the_live_variables_else_stand_ins():
    from leafgrad.core import VariableStandIn
    x = leafgrad.Variable(np.ones((2, 3)), name="x")
    h = F.exp(x)          # Exp keeps its output
    a = h + x             # Add keeps nothing
    y = F.sum(a * h)      # Mul keeps both inputs
    f_mul = y.creator.inputs[0].creator
    assert f_mul.inputs[0] is a and f_mul.inputs[1] is h  # alive: the very objects
    del a, h
    a_in, h_in = f_mul.inputs
    assert type(a_in) is VariableStandIn and a_in.creator.inputs[1] is x
    assert a_in.name is None and a_in.generation == 2 and a_in.creator.outputs[0]() is a_in
    assert a_in.data is not None and a_in.shape == (2, 3)  # Mul kept it
    add = a_in.creator
    assert add.inputs[0] is h_in  # one stand-in for exp's dropped output, whoever reads it
    assert h_in.creator.inputs == [x] and h_in.data is not None  # Exp kept its output
    assert f_mul.inputs[0] is a_in  # the same object on every read


def test_reading_inputs_keeps_no_array_alive():
    """Walking creator.inputs / outputs makes small stand-ins, keeps no array, and makes no cycle."""
    import gc
    import weakref
    from leafgrad.memory import track

    def walk(y):
        seen, stack, found = set(), [y.creator], 0
        while stack:
            f = stack.pop()
            if f is None or f in seen:
                continue
            seen.add(f)
            for v in f.inputs:
                found += 1
                stack.append(v.creator)
            for r in f.outputs:
                assert r() is not None
        return found

    gc.disable()
    try:
        x = leafgrad.Variable(np.random.rand(200, 500))  # 800 KB per array
        h = F.sin(x)
        a = h + 1.0          # nobody keeps h's or a's array
        b = F.exp(a)         # Exp keeps b's array
        y = F.sum(b * 2.0)
        dead_h, dead_a = weakref.ref(h.data), weakref.ref(a.data)
        funcs = [weakref.ref(f) for f in (h.creator, a.creator, b.creator, y.creator)]
        del h, a, b
        assert dead_h() is None and dead_a() is None
        with track() as first:
            assert walk(y) == 7  # sin 1, + 1.0 2, exp 1, * 2.0 2, sum 1
        with track() as again:
            walk(y)
        assert first.current < 16 * 1024, first   # a few stand-ins, no 800 KB array
        assert again.current < 1024, again        # reading again makes nothing new
        assert dead_h() is None and dead_a() is None
        y.backward()
        assert walk(y) == 7 and x.grad is not None  # after backward the walk still sees the graph
        del y
        assert all(r() is None for r in funcs)      # freed by reference counting alone
    finally:
        gc.enable()


def test_second_backward_raises_outside_the_alias_and_accumulates_under_it():
    x = leafgrad.Variable(np.array(3.0))
    y = x ** 3 - 2 * x
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    compat.uninstall()
    compat.install()
    try:
        x = leafgrad.Variable(np.array(3.0))
        y = x ** 3 - 2 * x
        y.backward()
        y.backward()
        assert float(x.grad.data) == 50.0
    finally:
        compat.uninstall()
    y = x ** 3
    y.backward()
    with pytest.raises(RuntimeError):
        y.backward()


def test_alias_notes_input_shapes_only_while_installed():
    from leafgrad.core import AddConstant, Function
    compat.uninstall()
    compat.install()
    try:
        assert AddConstant._keeps
        x = leafgrad.Variable(np.ones((2, 3), np.float32))
        y = F.exp(x + 1)
        stand_in = y.creator.inputs[0]
        assert stand_in.data is None and (stand_in.shape, stand_in.dtype) == ((2, 3), np.float32)
        h = x * 2
        h.name = "h"
        z = F.sin(h)
        del h
        assert z.creator.inputs[0].name == "h" and z.creator.inputs[0].data is not None  # Sin keeps x
    finally:
        compat.uninstall()
    assert AddConstant._keeps == leafgrad.core._LEGACY_PROMOTION and Function._keep is leafgrad.core._keep_declared
    y = F.exp(leafgrad.Variable(np.ones((2, 3))) + 1)
    assert y.creator.inputs[0].shape is None and y.creator.inputs[0].creator._input_meta is None


def _graph_functions(y):
    """Every function found by walking ``creator.inputs`` from ``y`` (DeZero's way), each once."""
    seen, stack, order = set(), [y.creator], []
    while stack:
        f = stack.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        order.append(f)
        stack.extend(x.creator for x in f.inputs)
    return order


def _gradient_cases():
    from test_gradients import CASES
    return CASES


@pytest.mark.parametrize("case", _gradient_cases(), ids=lambda c: c.name)
def test_inputs_and_outputs_read_as_the_seeds_say_for_every_function(case):
    """For every row of the gradient table: each function's ``inputs`` are Variables standing where the
    graph's edges say, each computed input is its creator's output, and reading changes no gradient."""
    from leafgrad import graph
    grads = []
    for read in (False, True):
        arrays = case.arrays()
        variables = [leafgrad.Variable(arrays[k]) for k in case.wrt]
        loss = case.loss(variables, arrays)
        if read:
            for f in _graph_functions(loss):
                inputs = f.inputs
                extra = 0 if f._dezero_constant is None else 1
                assert len(inputs) == len(f._edges) + extra, type(f).__qualname__
                assert f.inputs == inputs  # the same objects on a second read
                for k, (kind, target, index) in enumerate(graph.inputs_of(f)):
                    x = inputs[k + (1 if extra and f._dezero_constant <= k else 0)]
                    assert isinstance(x, leafgrad.Variable)
                    if kind == graph.COMPUTED:
                        assert x.creator is target and target.outputs[index]() is x
                    elif kind == graph.LEAF:
                        assert x is target
                    else:
                        assert x.creator is None and not x.requires_grad
        loss.backward()
        grads.append([v.grad.data for v in variables])
    for g0, g1 in zip(*grads):
        np.testing.assert_array_equal(g0, g1)


@pytest.mark.parametrize("case", [c for c in _gradient_cases() if 2 in c.orders and c.recorded],
                         ids=lambda c: c.name)
def test_the_recorded_gradient_graph_reads_as_the_seeds_say(case):
    """The graph a ``create_graph=True`` backward builds is walked the same way; the second order is unchanged."""
    seconds = []
    for read in (False, True):
        arrays = case.arrays()
        variables = [leafgrad.Variable(arrays[k]) for k in case.wrt]
        case.loss(variables, arrays).backward(create_graph=True)
        g = variables[0].grad
        for v in variables:
            v.cleargrad()
        total = F.sum(g * g)
        if read:
            for f in _graph_functions(total):
                for x in f.inputs:
                    assert isinstance(x, leafgrad.Variable)
                    if x.creator is not None:
                        assert x.creator.outputs[x._output_index]() is x
        total.backward()
        seconds.append([None if v.grad is None else v.grad.data for v in variables])
    for g0, g1 in zip(*seconds):
        if g0 is None:
            assert g1 is None
        else:
            np.testing.assert_array_equal(g0, g1)


def test_a_backward_that_reads_its_outputs_finds_them_alive():
    """DeZero's own style, ``y = self.outputs[0]()`` in backward: a dropped output is revived for the call;
    only a book-style function that reads its outputs keeps their arrays, and backward frees them."""
    import weakref

    class Exp(leafgrad.Function):
        def forward(self, x):
            return np.exp(x)

        def backward(self, gy):
            y = self.outputs[0]()
            return gy * y

    class Square(leafgrad.Function):
        def forward(self, x):
            return x * x

        def backward(self, gy):
            x, = self.inputs
            return 2 * x * gy

    assert Exp._reads_outputs and not Square._reads_outputs
    x = leafgrad.Variable(np.array([0.5, 1.0]))
    loss = F.sum(Exp()(x) * 3.0)      # the exp output is dropped at once
    f = loss.creator.inputs[0].creator.inputs[0].creator
    assert f.outputs[0]().data is not None
    kept = weakref.ref(f.output_data[0])
    loss.backward()
    np.testing.assert_allclose(x.grad.data, 3 * np.exp([0.5, 1.0]))
    assert kept() is None             # released by backward
    x.cleargrad()
    y = Square()(x)
    assert y.creator.output_data is None
    z = F.sum(Exp()(x) * Exp()(x))
    z.backward(create_graph=True)     # the recorded walk differentiates through the revived output
    gx = x.grad
    x.cleargrad()
    F.sum(gx).backward()
    np.testing.assert_allclose(x.grad.data, 4 * np.exp(2 * np.array([0.5, 1.0])))
