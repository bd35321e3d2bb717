"""The choice of device without a GPU: finding out whether CuPy can run and why not, and ``track()``
following the arrays."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from leafgrad import cuda
from leafgrad.memory import track


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_GPU = "CuPy is installed but finds no GPU (CUDA reports 0 devices; a sentence for the tests)"


def python(code):
    """Run ``code`` in a fresh interpreter that imports this leafgrad: (exit status, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return done.returncode, done.stdout, done.stderr


def cupy_with(get_device_count):
    """A stand-in for an installed CuPy module, as far as finding devices goes (no arrays, no GPU)."""
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=get_device_count)))


@pytest.fixture
def no_gpu(monkeypatch):
    """No usable GPU, whatever this machine has: CuPy installed, zero devices."""
    monkeypatch.setattr(cuda, "gpu_unavailable_reason", lambda: NO_GPU)


# ---------------------------------------------------------------------------------------------
# leafgrad.cuda: is there a GPU, and if not, why
# ---------------------------------------------------------------------------------------------
def test_reason_when_cupy_is_not_installed():
    try:
        import cupy_that_is_not_there  # noqa: F401
    except ModuleNotFoundError as err:
        missing = err
    missing.name = "cupy"
    reason = cuda._find_reason(None, missing)
    assert reason.startswith("CuPy is not installed; install it with ")
    assert 'pip install "leafgrad[gpu]" for CUDA 12' in reason
    assert 'pip install "leafgrad[gpu-cuda13]" for CUDA 13' in reason and "nvidia-smi" in reason


def test_reason_when_cupy_cannot_be_imported():
    reason = cuda._find_reason(None, ImportError("libcudart.so.12: cannot open shared object file"))
    assert reason.startswith("CuPy is installed but cannot be imported (ImportError: libcudart.so.12")
    assert "leafgrad[gpu-cuda13]" in reason


def test_an_import_that_finds_zero_devices_is_no_gpu():
    assert cuda._find_reason(cupy_with(lambda: 0), None).startswith("CuPy is installed but finds no GPU")

    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime "
                           "version")  # what CuPy 14 raises on a machine without an NVIDIA driver
    reason = cuda._find_reason(cupy_with(no_driver), None)
    assert reason.startswith("CuPy is installed but cannot use a GPU (cudaErrorInsufficientDriver: ")
    assert cuda._find_reason(cupy_with(lambda: 1), None) is None


def test_hidden_cupy_means_no_gpu_and_says_how_to_install():
    code, out, err = python("import sys; sys.modules['cupy'] = None\n"
                            "from leafgrad import cuda\n"
                            "print(cuda.cupy, cuda.gpu_enable)\n"
                            "print(cuda.gpu_unavailable_reason())")
    assert code == 0, err
    first, reason = out.splitlines()
    assert first == "None False"
    assert reason.startswith("CuPy is not installed; install it with pip install \"leafgrad[gpu]\"")


def test_importing_leafgrad_asks_cuda_nothing_and_zero_devices_is_no_gpu():
    """An installed CuPy on a machine without a GPU imports fine: gpu_enable must still be False."""
    code, out, err = python(
        "import sys, types, numpy\n"
        "calls = []\n"
        "runtime = types.SimpleNamespace(getDeviceCount=lambda: calls.append(1) or 0)\n"
        "sys.modules['cupy'] = types.SimpleNamespace(ndarray=type('ndarray', (), {}), cuda=types.SimpleNamespace("
        "runtime=runtime), get_array_module=lambda *a: numpy)\n"
        "sys.modules['cupyx'] = types.SimpleNamespace()\n"
        "import leafgrad, leafgrad.training, leafgrad.memory\n"
        "print(len(calls), leafgrad.cuda.gpu_enable, leafgrad.cuda.gpu_enable, len(calls))\n"
        "print(leafgrad.cuda.gpu_unavailable_reason())")
    assert code == 0, err
    first, reason = out.splitlines()
    assert first == "0 False False 1"  # asked once, when first read, then remembered
    assert reason.startswith("CuPy is installed but finds no GPU")


def test_as_cupy_and_data_loaders_say_why(no_gpu):
    with pytest.raises(RuntimeError, match=r"^as_cupy needs CuPy on a GPU, but CuPy is installed but finds no GPU"):
        cuda.as_cupy(np.ones(2))
    from leafgrad.dataloaders import DataLoader
    with pytest.raises(RuntimeError, match="DataLoader: gpu=True needs CuPy on a GPU, but CuPy is installed"):
        DataLoader(np.ones((3, 1)), 1, gpu=True)
    assert cuda.gpu_enable is False


# ---------------------------------------------------------------------------------------------
# leafgrad.memory.track follows the arrays
# ---------------------------------------------------------------------------------------------
def test_track_measures_the_host_when_there_is_no_gpu(no_gpu):
    with track() as mem:                      # device="auto"
        a = np.ones(1_000_000)
    assert mem.device == "cpu" and mem.gpu is None
    assert mem.peak == mem.cpu.peak >= 8_000_000 and mem.current == mem.cpu.current
    assert repr(mem).startswith("peak 7.6 MiB, current 7.6 MiB") and "GPU" not in repr(mem)
    del a
    with pytest.raises(RuntimeError, match=r"track\(device='gpu'\) needs CuPy on a GPU, but CuPy is installed"):
        track(device="gpu")
    with pytest.raises(ValueError, match="device must be one of 'auto', 'cpu', 'gpu', got 'tpu'"):
        track(device="tpu")
