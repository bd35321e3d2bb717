"""leafgrad.training over MPI, through ``leafgrad train --distributed`` under ``mpiexec -n 2``.

Skipped, with the reason, when mpi4py or mpiexec is missing (``pip install 'leafgrad[mpi]'``).
"""
import os

import numpy as np

from cli_helpers import trees
from test_distributed import _run, needs_mpi


@needs_mpi
def test_divergence_stops_every_rank(tmp_path):
    out = str(tmp_path / "run")
    rc, stdout, err = _run(["-m", "leafgrad", "train", "--distributed", "--lr", "1e10", "--epochs", "3",
                            "--out", out], timeout=120)   # a rank left behind would hang: the timeout fails
    assert rc == 1, (rc, err)
    # One rank says it, once: the loss explodes (or turns nan) in the first epoch.
    assert err.count("leafgrad train: error: training diverged: the loss became ") == 1
    assert "at epoch 1, batch" in err
    assert "keeps the checkpoint of epoch 0, whose weights are finite." in err
    assert "aborting" not in err and "Traceback" not in err
    with np.load(os.path.join(out, "checkpoint.npz")) as z:
        assert all(np.isfinite(z[k]).all() for k in z.files if k.startswith("model/"))


@needs_mpi
def test_own_data_on_two_ranks_matches_one_process(tmp_path):
    data = trees(tmp_path / "trees.csv")
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    common = ["-m", "leafgrad", "train", "--data", data, "--target", "kind", "--epochs", "3",
              "--batch-size", "7", "--quiet", "--out"]
    rc, _, err = _run(common + [one], mpi=False)
    assert rc == 0, err
    rc, stdout, err = _run(common + [two, "--distributed"])
    assert rc == 0, err
    assert len(stdout.strip().splitlines()) == 1
    with np.load(os.path.join(one, "model.npz")) as a, np.load(os.path.join(two, "model.npz")) as b:
        for key in a.files:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
