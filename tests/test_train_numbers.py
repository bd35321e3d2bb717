"""``leafgrad train`` on the built-in data sets gives the numbers it gave before training became a library.

The expected metrics were written by ``leafgrad train`` at commit e6b1840 (the
1,061-line ``cli.py``), on NumPy 2.4 with OpenBLAS.  Bit for bit they are equal
on that machine; the tolerance here only absorbs a different BLAS (the float32
sums of a matrix product may round differently), while a changed batch order,
initialization or update rule moves these numbers by far more.
"""
import csv
import os

import numpy as np
import pytest

from cli_helpers import HAS_SKLEARN, no_pictures  # noqa: F401 (a fixture)
from leafgrad import cli


# argv -> rows of (train_loss, train_acc, test_loss, test_acc), one per epoch.
PINNED = {
    ("--epochs", "3"): [
        (0.8104142606258392, 0.5133333333333333, 0.7055948972702026, 0.5366666666666666),
        (0.65253084897995, 0.5533333333333333, 0.5854913592338562, 0.6733333333333333),
        (0.5304041594266892, 0.7433333333333333, 0.45353585481643677, 0.91),
    ],
    ("--optimizer", "momentum", "--batch-size", "50", "--seed", "5", "--epochs", "3"): [
        (1.115048885345459, 0.37, 0.938668429851532, 0.5233333333333333),
        (0.8528759876887003, 0.5233333333333333, 0.7719443440437317, 0.5066666666666667),
        (0.7313462893168131, 0.53, 0.7180894017219543, 0.5366666666666666),
    ],
    ("--dataset", "digits", "--epochs", "2"): [
        (1.981003734432109, 0.5013908205841446, 1.6461716890335083, 0.754874651810585),
        (1.3613446403776654, 0.8066759388038943, 1.0554248094558716, 0.8440111420612814),
    ],
    ("--dataset", "digits", "--model", "cnn", "--epochs", "2"): [
        (2.0007620146277882, 0.4207232267037552, 1.5222175121307373, 0.6713091922005571),
        (1.040908868521742, 0.7892906815020863, 0.5900378823280334, 0.9108635097493036),
    ],
}


@pytest.mark.parametrize("argv", list(PINNED), ids=lambda a: " ".join(a))
def test_same_numbers_as_before(argv, tmp_path, capsys, no_pictures):
    if "digits" in argv and not HAS_SKLEARN:
        pytest.skip("scikit-learn is not installed")
    out = str(tmp_path / "run")
    assert cli.main(["train", *argv, "--quiet", "--out", out]) == 0, capsys.readouterr().err
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        rows = [[float(row[k]) for k in ("train_loss", "train_acc", "test_loss", "test_acc")]
                for row in csv.DictReader(f)]
    expected = np.array(PINNED[argv])
    got = np.array(rows)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got[:, [0, 2]], expected[:, [0, 2]], rtol=1e-4)   # losses
    np.testing.assert_allclose(got[:, [1, 3]], expected[:, [1, 3]], atol=0.007)  # accuracies: 2 examples of 300
