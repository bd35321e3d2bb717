"""What the tests of the ``leafgrad`` command share: running it in this process, checking its errors, data files."""
import importlib.util
import os

import numpy as np
import pytest

from leafgrad import cli
from leafgrad.cli import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAS_MPL = importlib.util.find_spec("matplotlib") is not None
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None


@pytest.fixture
def no_pictures(monkeypatch):
    """Draw no pictures, as without matplotlib (for tests that do not look at them: they are the slow part)."""
    monkeypatch.setattr(plots, "figure_class", lambda: None)


def run(capsys, *argv):
    """``leafgrad *argv`` in this process: (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_png(path):
    assert os.path.isfile(path), path
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, path
    assert os.path.getsize(path) > 5000, path  # a real picture, not an empty canvas


def assert_one_sentence_error(code, err, *words, status=2):
    assert code == status, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("leafgrad") and lines[0].endswith("."), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


def model_weights_finite(path):
    """True when every weight in the checkpoint ``path`` is finite."""
    with np.load(path) as z:
        keys = [k for k in z.files if k.startswith("model/")]
        assert keys
        return all(np.isfinite(z[k]).all() for k in keys)


# Small data files of one's own, made in the test's folder (no network, no scikit-learn).
KINDS = ("oak", "birch", "pine")


def write_csv(path, header, rows):
    """Write a CSV file by hand (the rows may be ragged or odd on purpose)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(str(v) for v in row) + "\n")
    return str(path)


def trees(path, n=90, seed=0):
    """Three kinds of tree, told apart by two measurements far from 0 (height around 1000: scaling matters)."""
    rng = np.random.RandomState(seed)
    rows = []
    for i in range(n):
        k = i % 3
        rows.append([f"{1000 + 40 * k + rng.randn() * 5:.2f}", f"{0.2 + 0.3 * k + rng.randn() * 0.04:.4f}",
                     KINDS[k]])
    return write_csv(path, ["height", "density", "kind"], rows)


def linear(path, n=60, scale=10.0):
    """A regression target y = 10 (2a - b + c / 2) + 50 of three features."""
    rng = np.random.RandomState(0)
    x = rng.randn(n, 3)
    y = x @ np.array([2.0, -1.0, 0.5]) * scale + 50
    return write_csv(path, ["a", "b", "c", "y"], [[f"{v:.4f}" for v in r] + [f"{t:.3f}"] for r, t in zip(x, y)])
