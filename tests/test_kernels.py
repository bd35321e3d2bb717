"""The fused optimizer kernels (``leafgrad/_kernels.py``) run on the CPU: each CUDA body is compiled
as C++ with the loop CuPy's ``ElementwiseKernel`` wraps around it, and the optimizers' fused
branch, fed NumPy arrays, must give the NumPy update bit for bit.

Without a C++ compiler these tests are skipped; ``tests/test_gpu.py`` runs the kernels on a GPU.
"""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

import leafgrad.optimizers as O
from leafgrad import _kernels
from leafgrad.core import Parameter, Variable
from leafgrad.layers import Layer

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler")

_CTYPES = {np.dtype(np.float32): ("float", ctypes.c_float), np.dtype(np.float64): ("double", ctypes.c_double)}


def _compile(tmp_path, name, dtype, kinds):
    """``name``'s body inside a loop over the elements; ``kinds`` says which inputs are arrays ('a') or scalars."""
    in_params, out_params, body = _kernels.SOURCES[name]
    ins = [p.split()[1] for p in in_params.split(",")]
    outs = [p.split()[1] for p in out_params.split(",")]
    args, refs = ["long n"], []
    for p, kind in zip(ins, kinds):
        if kind == "a":
            args.append(f"const T* _raw_{p}")
            refs.append(f"const T &{p} = _raw_{p}[i];")
        else:
            args.append(f"T {p}")
    for p in outs:
        args.append(f"T* _raw_{p}")
        refs.append(f"T &{p} = _raw_{p}[i];")
    ctype, cscalar = _CTYPES[dtype]
    source = (f"#include <cmath>\nusing std::sqrt;\ntypedef {ctype} T;\n"
              f"extern \"C\" void kernel({', '.join(args)}) {{\n"
              f"  for (long i = 0; i < n; ++i) {{\n    {' '.join(refs)}\n    {body}\n  }}\n}}\n")
    src = tmp_path / f"{name}_{ctype}_{''.join(kinds)}.cpp"
    src.write_text(source)
    lib = src.with_suffix(".so")
    # no FMA contraction, as --fmad=false on the GPU; IEEE division and square root
    subprocess.run([CXX, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    fn = ctypes.CDLL(str(lib)).kernel
    fn.restype = None
    return fn, cscalar


@pytest.fixture
def cpu_kernels(monkeypatch, tmp_path):
    """Route the optimizers' fused branch to the kernels compiled for the CPU; record the launches."""
    launches = []

    def launch(name, *args):
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        kinds = ["a" if isinstance(a, np.ndarray) else "s" for a in args]
        fn, cscalar = _compile(tmp_path, name, arrays[0].dtype, kinds)
        assert all(a.flags.c_contiguous and a.dtype == arrays[0].dtype for a in arrays)
        fn(ctypes.c_long(arrays[0].size),
           *[a.ctypes.data_as(ctypes.c_void_p) if isinstance(a, np.ndarray) else cscalar(a) for a in args])
        launches.append(name)

    monkeypatch.setattr(_kernels, "fusable", lambda data, grad, *state: True)
    monkeypatch.setattr(_kernels, "launch", launch)
    return launches


class Two(Layer):
    """Two parameters, with enough elements for any rounding difference to show."""

    def __init__(self, dtype, xp=np):
        super().__init__()
        rng = np.random.RandomState(0)
        self.W = Parameter(xp.asarray(rng.randn(64, 33).astype(dtype)))
        self.b = Parameter(xp.asarray(rng.randn(33).astype(dtype)))


def train(opt, dtype, xp=np, steps=4):
    """``steps`` updates of ``opt`` with seeded gradients on arrays of ``xp``; the parameters and the state."""
    layer = Two(dtype, xp)
    opt.setup(layer)
    for s in range(steps):
        rng = np.random.RandomState(100 + s)
        for p in layer.params():
            p.grad = Variable(xp.asarray(rng.randn(*p.shape).astype(dtype)))
        opt.update()
    return [p.data for p in layer.params()], opt.state_dict()["state"]


OPTIMIZERS = {
    "sgd": lambda: O.SGD(lr=0.1),
    "momentum_sgd": lambda: O.MomentumSGD(lr=0.05, momentum=0.8),
    "adagrad": lambda: O.AdaGrad(lr=0.1),
    "adadelta": lambda: O.AdaDelta(rho=0.9, eps=1e-4),
    "adam": lambda: O.Adam(alpha=0.01, beta1=0.8, beta2=0.99, eps=1e-6),
}


def test_every_kernel_has_an_optimizer_here():
    assert set(OPTIMIZERS) == set(_kernels.SOURCES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_kernel_equals_the_numpy_update_bit_for_bit(cpu_kernels, monkeypatch, name, dtype):
    fused_params, fused_state = train(OPTIMIZERS[name](), dtype)
    assert cpu_kernels == [name] * 8  # 4 steps, 2 parameters: one launch each
    monkeypatch.undo()  # the NumPy array code
    params, state = train(OPTIMIZERS[name](), dtype)
    for got, expected in zip(fused_params, params):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected)
    for key in state:
        for slot in state[key]:
            np.testing.assert_array_equal(fused_state[key][slot], state[key][slot])


def test_fusable_is_false_for_numpy_arrays():
    a = np.zeros(3, np.float32)
    assert not _kernels.fusable(a, a, a)


def test_sources_name_their_parameters_once():
    for name, (ins, outs, body) in _kernels.SOURCES.items():
        names = [p.split()[1] for p in (ins + "," + outs).split(",")]
        assert len(names) == len(set(names)), name
        assert all(p.split()[0] == "T" for p in (ins + "," + outs).split(",")), name
