"""The ``leafgrad`` command end to end: train (files, metrics, resume), graph, and the error paths."""
import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from cli_helpers import (HAS_MPL, HAS_SKLEARN, assert_one_sentence_error, assert_png,  # noqa: F401
                         model_weights_finite, no_pictures, run)
from leafgrad.cli import plots
from leafgrad.cli.progress import Progress
from leafgrad.cli.run_folder import METRIC_COLUMNS, read_metrics
from leafgrad.cli.train import make_trainer
from leafgrad.training import EpochMetrics

HAS_DOT = shutil.which("dot") is not None
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# leafgrad train
# ---------------------------------------------------------------------------------------------
def test_train_spiral_writes_everything(tmp_path, capsys):
    out = str(tmp_path / "run")
    code, stdout, err = run(capsys, "train", "--epochs", "3", "--out", out)
    assert code == 0, err
    for name in ("metrics.csv", "model.npz", "checkpoint.npz", "run.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    if HAS_MPL:
        assert_png(os.path.join(out, "curves.png"))
        assert_png(os.path.join(out, "decision_boundary.png"))
    rows = read_metrics(os.path.join(out, "metrics.csv"))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for r in rows:
        assert set(r) == set(METRIC_COLUMNS)
        assert r["train_loss"] > 0 and 0 <= r["train_acc"] <= 1 and 0 <= r["test_acc"] <= 1
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    # the summary: accuracy, time, parameters, memory of one step split into forward and backward
    assert "train accuracy" in stdout and "test accuracy" in stdout
    assert "10,703 parameters" in stdout  # 2-100-100-3
    assert "forward:  peak" in stdout and "backward: peak" in stdout and "whole step: peak" in stdout
    assert "done: 3 epochs in" in stdout
    assert not [n for n in os.listdir(out) if n.startswith(".tmp")]
    record = json.load(open(os.path.join(out, "run.json")))
    assert record["epochs_done"] == 3 and record["config"]["dataset"] == "spiral"


def test_weights_file_loads_into_a_fresh_model(tmp_path, capsys, no_pictures):
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--epochs", "1", "--out", out, "--quiet")[0] == 0
    config = json.load(open(os.path.join(out, "run.json")))["config"]
    config["epochs"] = 1
    trainer, data = make_trainer(config)
    trainer.model.load_weights(os.path.join(out, "model.npz"))
    _, acc = trainer.evaluate(data.x_train, data.t_train)
    assert acc > 0.4


def test_resume_continues_exactly(tmp_path, capsys, no_pictures):
    straight, split = str(tmp_path / "a"), str(tmp_path / "b")
    assert run(capsys, "train", "--epochs", "4", "--out", straight, "--quiet")[0] == 0
    assert run(capsys, "train", "--epochs", "2", "--out", split, "--quiet")[0] == 0
    code, stdout, err = run(capsys, "train", "--resume", split, "--epochs", "4")
    assert code == 0, err
    assert "resuming" in stdout
    a = read_metrics(os.path.join(straight, "metrics.csv"))
    b = read_metrics(os.path.join(split, "metrics.csv"))
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b):
        for key in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc"):
            assert ra[key] == rb[key], (key, ra, rb)
    wa = np.load(os.path.join(straight, "model.npz"))
    wb = np.load(os.path.join(split, "model.npz"))
    assert sorted(wa.files) == sorted(wb.files)
    for k in wa.files:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_resume_with_nothing_left_to_do(tmp_path, capsys, no_pictures):
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--epochs", "1", "--out", out, "--quiet")[0] == 0
    code, stdout, _ = run(capsys, "train", "--resume", out)
    assert code == 0
    assert "already trained 1 epochs" in stdout


def test_quiet_prints_one_line(tmp_path, capsys, no_pictures):
    code, stdout, _ = run(capsys, "train", "--epochs", "1", "--out", str(tmp_path / "q"), "--quiet")
    assert code == 0
    assert len(stdout.strip().splitlines()) == 1
    assert stdout.startswith("train accuracy")


def test_plain_progress_lines_when_not_a_terminal(tmp_path, capsys, no_pictures):
    code, stdout, _ = run(capsys, "train", "--epochs", "2", "--out", str(tmp_path / "p"))
    assert code == 0
    assert "epoch 1/2" in stdout and "epoch 2/2" in stdout


def test_tqdm_bar_on_a_terminal():
    tqdm = pytest.importorskip("tqdm")  # noqa: F841

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress(0, 2, 3, quiet=False, stream=stream)
    assert progress.bar is not None
    for epoch in range(1, 3):
        progress.on_epoch_begin(None, epoch)
        for batch in range(1, 4):
            progress.on_batch_end(None, batch, 0.5, 0.75)
        progress.on_epoch_end(None, EpochMetrics(epoch, 0.5, 0.75, 0.6, 0.7, 0.1))
    progress.close()
    text = stream.getvalue()
    assert "epoch 2/2" in text and "loss 0.5000" in text and "acc 75.0%" in text
    assert "6/6" in text


def test_pictures_skipped_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plots, "figure_class", lambda: None)
    out = str(tmp_path / "nompl")
    code, stdout, err = run(capsys, "train", "--epochs", "1", "--out", out)
    assert code == 0
    assert "pictures were skipped" in err and "pip install matplotlib" in err
    assert not os.path.exists(os.path.join(out, "curves.png"))
    assert os.path.isfile(os.path.join(out, "metrics.csv"))


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed")
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_train_digits(tmp_path, capsys, model, no_pictures):
    out = str(tmp_path / model)
    code, stdout, err = run(capsys, "train", "--dataset", "digits", "--model", model, "--epochs", "1",
                            "--hidden", "32", "--out", out)
    assert code == 0, err
    assert "digits: 1438 train / 359 test" in stdout
    assert len(read_metrics(os.path.join(out, "metrics.csv"))) == 1
    assert not os.path.exists(os.path.join(out, "decision_boundary.png"))  # 64 inputs, not 2


def _write_idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def write_fake_mnist(folder, n=60):
    """Tiny MNIST-format files (random images) so that no test needs the network."""
    rng = np.random.RandomState(0)
    for prefix in ("train", "t10k"):
        _write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), rng.randint(0, 256, (n, 28, 28)))
        _write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), rng.randint(0, 10, n))


def test_train_mnist_from_the_cache(tmp_path, capsys, no_pictures, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    write_fake_mnist(str(cache))
    monkeypatch.setenv("LEAFGRAD_CACHE_DIR", str(cache))
    code, stdout, err = run(capsys, "train", "--dataset", "mnist", "--epochs", "1", "--hidden", "16",
                            "--out", str(tmp_path / "m"))
    assert code == 0, err
    assert "mnist: 60 train / 60 test, 784 features, 10 classes" in stdout


def test_mnist_unavailable_is_one_clear_line(tmp_path, capsys, monkeypatch):
    import leafgrad.datasets as D

    def offline(*args, **kwargs):
        raise OSError("get_file: could not download train-images-idx3-ubyte.gz (no network?)")

    monkeypatch.setattr(D, "get_file", offline)
    monkeypatch.setenv("LEAFGRAD_CACHE_DIR", str(tmp_path / "empty"))
    code, _, err = run(capsys, "train", "--dataset", "mnist", "--out", str(tmp_path / "m"))
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "could not load MNIST" in err and "Traceback" not in err


def test_divergence_in_the_first_epoch_keeps_the_initial_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "run")
    code, stdout, err = run(capsys, "train", "--lr", "1e10", "--epochs", "3", "--out", out)
    assert_one_sentence_error(code, err, "training diverged: the loss became", "times its first epoch's",
                              "at epoch 1, batch",
                              "--lr 1e+10 is too high for adam", "such as --lr 1e+09",
                              "keeps the checkpoint of epoch 0", status=1)
    assert "epoch 1/3" not in stdout and "continue" not in stdout + err
    assert not os.path.exists(os.path.join(out, "model.npz"))   # no weights worth keeping
    assert model_weights_finite(os.path.join(out, "checkpoint.npz"))
    assert read_metrics(os.path.join(out, "metrics.csv")) == []


# ---------------------------------------------------------------------------------------------
# Bad options: exit status 2, one sentence, no traceback
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["train", "--dataset", "cifar"], ["unknown dataset 'cifar'", "spiral, digits, mnist"]),
    (["train", "--epochs", "-3"], ["--epochs", "-3"]),
    (["train", "--epochs", "many"], ["--epochs", "many"]),
    (["train", "--batch-size", "0"], ["--batch-size"]),
    (["train", "--lr", "-1"], ["--lr"]),
    (["train", "--hidden", "10,x"], ["--hidden"]),
    (["train", "--model", "rnn"], ["unknown model 'rnn'"]),
    (["train", "--optimizer", "lbfgs"], ["unknown optimizer 'lbfgs'"]),
    (["train", "--model", "cnn"], ["--model cnn needs image data"]),
    (["train", "--bogus"], ["unrecognized arguments: --bogus", "leafgrad train"]),
    (["fly"], ["invalid choice"]),
    (["graph", "--format", "jpg"], ["unknown graph format 'jpg'"]),
    (["graph", "--order", "0"], ["--order"]),
])
def test_bad_options(argv, words, capsys, tmp_path):
    code, _, err = run(capsys, *argv, *(["--out", str(tmp_path / "x")] if argv[0] == "train" else []))
    assert_one_sentence_error(code, err, *words)


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, "train", "--out", str(blocker / "run"))
    assert_one_sentence_error(code, err, "cannot write to --out")


def test_resume_errors(tmp_path, capsys, no_pictures):
    code, _, err = run(capsys, "train", "--resume", str(tmp_path / "nothing"))
    assert_one_sentence_error(code, err, "no run to resume")
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--epochs", "1", "--out", out, "--quiet")[0] == 0
    code, _, err = run(capsys, "train", "--resume", out, "--lr", "0.5")
    assert_one_sentence_error(code, err, "--lr cannot change when resuming")


def test_no_command_prints_help(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "train" in err and "graph" in err


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--resume" in out and "--batch-size" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("leafgrad ")


# ---------------------------------------------------------------------------------------------
# leafgrad graph
# ---------------------------------------------------------------------------------------------
def test_graph_dot(tmp_path, capsys):
    path = str(tmp_path / "tanh.dot")
    code, stdout, _ = run(capsys, "graph", "--order", "2", "-o", path)
    assert code == 0 and "wrote" in stdout
    text = open(path).read()
    assert text.startswith("digraph g {") and "Tanh" in text and "gx2" in text


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz is not installed")
@pytest.mark.parametrize("example, name", [("tanh", "g.png"), ("mlp", "m.svg")])
def test_graph_image(tmp_path, capsys, example, name):
    path = str(tmp_path / name)
    code, _, err = run(capsys, "graph", example, "-o", path)
    assert code == 0, err
    if name.endswith(".png"):
        assert_png(path)
    else:
        assert b"<svg" in open(path, "rb").read()


def test_graph_without_graphviz(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, _, err = run(capsys, "graph", "-o", str(tmp_path / "g.png"))
    assert code == 1
    assert os.path.isfile(tmp_path / "g.dot")
    assert "apt-get install graphviz" in err


# ---------------------------------------------------------------------------------------------
# The entry points
# ---------------------------------------------------------------------------------------------
def test_python_dash_m_leafgrad(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "leafgrad", "train", "--epochs", "1", "--quiet",
                             "--out", str(tmp_path / "r")], capture_output=True, text=True, env=env,
                            cwd=str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("train accuracy")
    result = subprocess.run([sys.executable, "-m", "leafgrad", "train", "--dataset", "nope"],
                            capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("leafgrad train: error: unknown dataset 'nope'; "
                                     "choose from spiral, digits, mnist.")
