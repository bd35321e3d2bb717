"""Each example runs briefly (one or two epochs) and writes its pictures."""
import gzip
import os
import runpy
import shutil
import struct
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAS_DOT = shutil.which("dot") is not None

try:
    import matplotlib  # noqa: F401
    HAS_MPL = True
except ImportError:
    HAS_MPL = False
needs_matplotlib = pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed")


def run_example(name, *args, monkeypatch, capsys):
    """Run ``examples/NAME`` as ``python examples/NAME ARGS...`` would (its folder first on sys.path)."""
    monkeypatch.setattr(sys, "argv", [name, *args])
    monkeypatch.syspath_prepend(EXAMPLES)
    runpy.run_path(os.path.join(EXAMPLES, name), run_name="__main__")
    return capsys.readouterr().out


def assert_png(path):
    assert os.path.isfile(path), path
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    assert os.path.getsize(path) > 5000


@needs_matplotlib
def test_spiral_mlp(tmp_path, monkeypatch, capsys):
    out = run_example("spiral_mlp.py", "--epochs", "2", "--out", str(tmp_path), monkeypatch=monkeypatch,
                      capsys=capsys)
    assert "epoch 2:" in out
    assert_png(tmp_path / "spiral_loss.png")
    assert_png(tmp_path / "spiral_boundary.png")


@needs_matplotlib
def test_tanh_derivatives(tmp_path, monkeypatch, capsys):
    out = run_example("tanh_derivatives.py", "--order", "2", "--out", str(tmp_path), monkeypatch=monkeypatch,
                      capsys=capsys)
    # d2/dx2 tanh(x) = -2 tanh(x) (1 - tanh(x)^2)
    expected = -2 * np.tanh(1.0) * (1 - np.tanh(1.0) ** 2)
    assert f"{expected:.6f}" in out
    assert_png(tmp_path / "tanh_derivatives.png")
    if HAS_DOT:
        assert_png(tmp_path / "tanh_gx2.png")


@needs_matplotlib
def test_digits_cnn(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    out = run_example("digits_cnn.py", "--epochs", "1", "--out", str(tmp_path), monkeypatch=monkeypatch,
                      capsys=capsys)
    assert "epoch 1:" in out
    assert_png(tmp_path / "digits_curves.png")
    assert_png(tmp_path / "digits_predictions.png")


def _write_idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@needs_matplotlib
def test_mnist_mlp_on_cached_files(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    rng = np.random.RandomState(0)
    for prefix in ("train", "t10k"):
        _write_idx(str(cache / f"{prefix}-images-idx3-ubyte.gz"), rng.randint(0, 256, (50, 28, 28)))
        _write_idx(str(cache / f"{prefix}-labels-idx1-ubyte.gz"), rng.randint(0, 10, 50))
    monkeypatch.setenv("LEAFGRAD_CACHE_DIR", str(cache))
    out = run_example("mnist_mlp.py", "--epochs", "1", "--hidden", "16", "--limit", "40", "--out",
                      str(tmp_path), monkeypatch=monkeypatch, capsys=capsys)
    assert "epoch 1:" in out
    assert_png(tmp_path / "mnist_curves.png")
    assert_png(tmp_path / "mnist_predictions.png")


@needs_matplotlib
def test_sincurve_lstm(tmp_path, monkeypatch, capsys):
    out = run_example("sincurve_lstm.py", "--epochs", "1", "--out", str(tmp_path), monkeypatch=monkeypatch,
                      capsys=capsys)
    assert "epoch 1:" in out
    assert_png(tmp_path / "sincurve_loss.png")
    assert_png(tmp_path / "sincurve_prediction.png")


def test_memory_comparison_quick(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)   # the optional columns stay out: fast
    monkeypatch.setitem(sys.modules, "dezero", None)
    out = run_example("memory_comparison.py", "--quick", monkeypatch=monkeypatch, capsys=capsys)
    assert "kept by the graph after forward" in out
    assert "forward under no_grad()" in out


def _python_blocks(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    blocks, inside, lines = [], False, []
    for line in text.splitlines():
        if line.strip() == "```python":
            inside, lines = True, []
        elif line.strip() == "```" and inside:
            inside = False
            blocks.append("\n".join(lines))
        elif inside:
            lines.append(line)
    return blocks


@pytest.mark.parametrize("doc", ["README.md", "docs/memory.md", "docs/internals.md"])
def test_doc_snippets_run(doc, tmp_path, monkeypatch, capsys):
    """The Python blocks of the docs run, in order, in one namespace."""
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks(os.path.join(ROOT, doc))
    assert blocks
    namespace = {"__name__": "__doc_snippets__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{doc} block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    if doc == "README.md":
        assert "variable(24.0)" in out and "variable(44.0)" in out and "(2, 3) float32" in out
        assert "variable(27.0) None" in out
        assert "softmax_cross_entropy: label 5 at position 1 is outside [0, 3)" in out
        assert "variable([0.84134474 1.95449974])" in out
    elif doc == "docs/internals.md":
        assert "variable([ 0.75 12.  ]) variable([  3. -12.])" in out
        assert "variable(-0.8322936730942846)" in out
        assert "scaled: slope must be a real number, got 'abc' (str)" in out
    else:
        assert "forward: peak 22.9 MiB, current 15.3 MiB" in out
        assert "backward: peak 15.3 MiB, current -7.6 MiB" in out


@needs_matplotlib
def test_gpt_shakespeare(tmp_path, monkeypatch, capsys):
    out = run_example("gpt_shakespeare.py", "--iters", "2", "--eval-iters", "1", "--sample", "20", "--out", str(tmp_path),
                      monkeypatch=monkeypatch, capsys=capsys)
    assert "iter 0: train loss" in out and "iter 2: train loss" in out
    assert_png(tmp_path / "gpt_loss.png")
