"""What the tests of the ``leafgrad`` command share: running it in this process, and checking its errors."""
import os

import numpy as np
import pytest

from leafgrad import cli
from leafgrad.cli import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
