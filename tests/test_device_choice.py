"""The choice of device without a GPU: finding out whether CuPy can run and why not, the errors of
``--device gpu`` and ``Trainer(device="gpu")``, ``track()`` following the arrays, and the GPU's way of
training an epoch (reading the losses once, at its end) run with NumPy."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import leafgrad.functions as F
from cli_helpers import assert_one_sentence_error, no_pictures, run  # noqa: F401 (a fixture)
from leafgrad import cuda
from leafgrad.cli.run_folder import read_metrics
from leafgrad.datasets import get_spiral
from leafgrad.memory import track
from leafgrad.models import MLP
from leafgrad.optimizers import OPTIMIZERS, SGD, Adam, from_name
from leafgrad.training import Callback, DivergenceError, Trainer, _moved_at_once

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


# ---------------------------------------------------------------------------------------------
# Trainer(device=...)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spiral():
    x, t = get_spiral(train=True)
    x_test, t_test = get_spiral(train=False)
    return x.astype(np.float32), t.astype(np.int64), x_test.astype(np.float32), t_test.astype(np.int64)


def trainer(reading_once, optimizer=None, hidden=(30,), **kwargs):
    """A small MLP's trainer; ``reading_once`` trains each epoch the GPU's way (here on NumPy)."""
    np.random.seed(0)
    t = Trainer(MLP((*hidden, 3), activation=F.relu), optimizer or Adam(alpha=0.01), **kwargs)
    t._read_once_per_epoch = reading_once
    return t


def test_trainer_device_errors(no_gpu):
    with pytest.raises(ValueError, match="Trainer: unknown device 'cuda'; choose from cpu, gpu"):
        Trainer(MLP((3,)), SGD(), device="cuda")
    with pytest.raises(RuntimeError, match=r"Trainer\(device='gpu'\) needs CuPy on a GPU, but CuPy is installed"):
        Trainer(MLP((3,)), SGD(), device="gpu")
    assert Trainer(MLP((3,)), SGD()).device == "cpu"


def test_index_arrays_moved_at_once():
    batches = [np.array([4, 2, 0]), np.array([], dtype=np.int64), np.array([1, 3])]
    moved = _moved_at_once(batches, np)
    assert [m.tolist() for m in moved] == [[4, 2, 0], [], [1, 3]]
    assert moved[0].base is moved[2].base is not None  # views of one array: one transfer on the GPU
    assert _moved_at_once([], np) == []


@pytest.mark.parametrize("batch_size", [30, 32, 1000])
def test_reading_once_per_epoch_gives_the_same_numbers(spiral, batch_size):
    """The GPU's epoch (losses and right answers kept in an array, read at the end) is the CPU's, run on NumPy."""
    x, t, x_test, t_test = spiral
    histories, weights = [], []
    for once in (False, True):
        tr = trainer(once, batch_size=batch_size)
        events = []

        class Record(Callback):
            def on_batch_end(self, trainer, batch, loss, acc):
                events.append((trainer.epoch, batch, loss, acc))
        tr.fit(x, t, epochs=3, validation_data=(x_test, t_test), callbacks=[Record()])
        histories.append(([m[:5] for m in tr.history], events))
        weights.append([p.data.copy() for p in tr.model.params()])
    assert histories[0] == histories[1]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_reading_once_per_epoch_in_regression():
    rng = np.random.RandomState(0)
    x = rng.randn(50, 3).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5], dtype=np.float32)).reshape(-1, 1)
    runs = []
    for once in (False, True):
        np.random.seed(0)
        tr = Trainer(MLP((8, 1)), Adam(alpha=0.01), task="regression", batch_size=16)
        tr._read_once_per_epoch = once
        runs.append([m[:3] for m in tr.fit(x, y, epochs=2)])
    np.testing.assert_array_equal(runs[0], runs[1])  # NaN accuracy in both


def test_reading_once_per_epoch_names_the_first_bad_batch(spiral):
    """Found at the end of the epoch, a divergence names the same batch as at once, with the same callbacks."""
    x, t, _, _ = spiral
    found = []
    for once in (False, True):
        tr = trainer(once, optimizer=Adam(alpha=1e10), hidden=(100, 100), batch_size=30)
        events = []

        class Record(Callback):
            def on_batch_end(self, trainer, batch, loss, acc):
                events.append(batch)

            def on_epoch_end(self, trainer, metrics):
                events.append("end")
        with np.errstate(all="ignore"), pytest.raises(DivergenceError) as info:
            tr.fit(x, t, epochs=3, callbacks=[Record()])
        found.append((info.value.epoch, info.value.batch, str(info.value), events, tr.epoch))
    assert found[0] == found[1]
    epoch, batch, message, events, done = found[1]
    assert epoch == 1 and batch >= 2 and events == list(range(1, batch)) and done == 0
    assert f"at epoch 1, batch {batch}" in message


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_reinstalling_the_optimizer_state_changes_nothing(spiral, name):
    """Trainer(device="gpu") moves the optimizer's state by reinstalling its state_dict(): on NumPy, a no-op."""
    x, t, _, _ = spiral
    runs = []
    for reinstall in (False, True):
        tr = trainer(False, optimizer=from_name(name), batch_size=30)
        tr.fit(x, t, epochs=1)
        if reinstall:
            tr.optimizer.load_state_dict(tr.optimizer.state_dict())
        tr.fit(x, t, epochs=2)
        runs.append([m[:3] for m in tr.history])
    assert runs[0] == runs[1]


def test_predict_and_evaluate_stay_on_the_cpu_model(spiral):
    x, t, x_test, t_test = spiral
    tr = trainer(False, batch_size=30)
    tr.fit(x, t, epochs=1)
    scores = tr.predict(x_test)
    assert isinstance(scores, np.ndarray) and scores.shape == (300, 3)
    assert tr.evaluate(x_test, t_test)[1] == np.mean(np.argmax(scores, axis=1) == t_test)


# ---------------------------------------------------------------------------------------------
# leafgrad train / predict --device
# ---------------------------------------------------------------------------------------------
def test_train_device_gpu_without_cupy_stops_with_status_2():
    """For real: CuPy hidden from a fresh interpreter, as where it is not installed."""
    code, out, err = python("import sys; sys.modules['cupy'] = None\n"
                            "from leafgrad.cli import main\n"
                            "sys.exit(main(['train', '--device', 'gpu', '--epochs', '1', '--quiet']))")
    assert_one_sentence_error(code, err, "leafgrad train: error: --device gpu: CuPy is not installed",
                              'pip install "leafgrad[gpu]" for CUDA 12', '"leafgrad[gpu-cuda13]" for CUDA 13',
                              "nvidia-smi")
    assert out == ""


def test_train_device_gpu_without_a_gpu(tmp_path, capsys, no_gpu):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--device", "GPU", "--out", out)
    assert_one_sentence_error(code, err, "--device gpu: CuPy is installed but finds no GPU")
    assert not out.exists()  # checked before anything is written


def test_device_option_errors(tmp_path, capsys, no_gpu):
    code, _, err = run(capsys, "train", "--device", "cuda")
    assert_one_sentence_error(code, err, "unknown device 'cuda'; choose from cpu, gpu")
    code, _, err = run(capsys, "train", "--device", "gpu", "--distributed")
    assert_one_sentence_error(code, err, "--device gpu does not work with --distributed yet")
    code, _, err = run(capsys, "predict", str(tmp_path), "--data", "x.csv", "--device", "gpu")
    assert_one_sentence_error(code, err, "leafgrad predict: error: --device gpu: CuPy is installed but finds no GPU")


def test_device_cpu_is_the_default_and_a_run_resumes_on_any_device(tmp_path, capsys, no_pictures):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert run(capsys, "train", "--epochs", "2", "--out", a, "--quiet")[0] == 0
    assert run(capsys, "train", "--epochs", "1", "--out", b, "--quiet", "--device", "cpu")[0] == 0
    code, _, err = run(capsys, "train", "--resume", b, "--epochs", "2", "--quiet", "--device", "cpu")
    assert code == 0, err
    columns = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")
    rows = [[[r[k] for k in columns] for r in read_metrics(os.path.join(d, "metrics.csv"))] for d in (a, b)]
    assert rows[0] == rows[1] and len(rows[0]) == 2
    with open(os.path.join(b, "run.json")) as f:
        assert "device" not in f.read()  # not one of the options that define a run
