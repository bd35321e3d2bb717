"""``leafgrad predict RUN_DIR --data PATH``: predictions in input order, with the run's names and scaling."""
import csv
import os

import numpy as np
import pytest

from cli_helpers import KINDS, assert_one_sentence_error, linear, no_pictures, run, trees, write_csv  # noqa: F401


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture
def tree_run(tmp_path, capsys, no_pictures):
    """A run trained on trees.csv (its heights are around 1000: without the run's scaling nothing fits)."""
    data = trees(tmp_path / "trees.csv")
    out = str(tmp_path / "run")
    code, _, err = run(capsys, "train", "--data", data, "--target", "kind", "--epochs", "15", "--out", out,
                       "--quiet")
    assert code == 0, err
    return out, data


def test_predict_a_csv_with_its_target(tree_run, tmp_path, capsys, monkeypatch):
    out, data = tree_run
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run(capsys, "predict", out, "--data", data)
    assert code == 0, err
    assert stdout.startswith("wrote trees-predictions.csv: 90 rows (prediction, probability_birch, ")
    assert "accuracy 100.0% (90 of 90 rows right, against its column 'kind')" in stdout
    header, rows = read_csv(tmp_path / "trees-predictions.csv")
    assert header == ["prediction", "probability_birch", "probability_oak", "probability_pine"]
    assert [r[0] for r in rows] == [KINDS[i % 3] for i in range(90)]            # input order, label names
    p = np.array([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    assert [header[1 + k][len("probability_"):] for k in np.argmax(p, axis=1)] == [r[0] for r in rows]


def test_new_rows_in_another_column_order_without_target(tree_run, tmp_path, capsys):
    out, _ = tree_run
    new = write_csv(tmp_path / "new.csv", ["density", "height"], [["0.2", "1000"], ["0.8", "1080"], ["0.5", "1040"]])
    code, stdout, err = run(capsys, "predict", out, "--data", new, "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert "accuracy" not in stdout
    _, rows = read_csv(tmp_path / "p.csv")
    assert [r[0] for r in rows] == ["oak", "pine", "birch"]


def test_predict_regression_and_npz(tmp_path, capsys, no_pictures):
    data = linear(tmp_path / "lin.csv")
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--data", data, "--target", "y", "--task", "regression", "--epochs", "60",
               "--out", out, "--quiet")[0] == 0
    code, stdout, err = run(capsys, "predict", out, "--data", data, "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert "mean squared error" in stdout and "against its column 'y'" in stdout
    header, rows = read_csv(tmp_path / "p.csv")
    assert header == ["prediction"] and len(rows) == 60
    _, truth = read_csv(data)
    err_rms = np.sqrt(np.mean([(float(r[0]) - float(t[-1])) ** 2 for r, t in zip(rows, truth)]))
    assert err_rms < 0.5 * np.std([float(t[-1]) for t in truth])   # it learnt something

    x = np.array([[float(v) for v in t[:3]] for t in truth], dtype=np.float32)
    np.savez(tmp_path / "new.npz", x=x)
    code, stdout, err = run(capsys, "predict", out, "--data", tmp_path / "new.npz", "--out", tmp_path / "q.csv")
    assert code == 0, err
    _, rows_npz = read_csv(tmp_path / "q.csv")
    np.testing.assert_allclose([float(r[0]) for r in rows_npz], [float(r[0]) for r in rows], rtol=1e-5)


@pytest.mark.parametrize("header, words", [
    (["height"], ["lacks the run's feature columns density"]),
    (["height", "density", "id", "notes"], ["has columns the run did not train on: id, notes"]),
    (["height", "colour"], ["lacks the run's feature columns density and has columns the run did not "
                            "train on: colour"]),
])
def test_missing_or_extra_columns(tree_run, tmp_path, capsys, header, words):
    out, _ = tree_run
    new = write_csv(tmp_path / "new.csv", header, [["1"] * len(header)])
    code, _, err = run(capsys, "predict", out, "--data", new, "--out", tmp_path / "p.csv")
    assert_one_sentence_error(code, err, *words, "the run's columns are height, density")


def test_predict_errors(tree_run, tmp_path, capsys):
    out, data = tree_run
    code, _, err = run(capsys, "predict", tmp_path / "nothing", "--data", data)
    assert_one_sentence_error(code, err, "no run to predict with there")
    code, _, err = run(capsys, "predict", out, "--data", tmp_path / "absent.csv")
    assert_one_sentence_error(code, err, "absent.csv: no such file")
    bad = write_csv(tmp_path / "bad.csv", ["height", "density"], [["1000", "x"]])
    code, _, err = run(capsys, "predict", out, "--data", bad, "--out", tmp_path / "p.csv")
    assert_one_sentence_error(code, err, "line 2 (row 1), column 'density' holds 'x'")
    code, _, err = run(capsys, "predict", out, "--data", data, "--out", data)
    assert_one_sentence_error(code, err, "is the input file")
    code, _, err = run(capsys, "predict", out, "--data", data, "--out", tmp_path / "no" / "p.csv")
    assert_one_sentence_error(code, err, "does not exist")
    np.savez(tmp_path / "wide.npz", x=np.zeros((2, 5)))
    code, _, err = run(capsys, "predict", out, "--data", tmp_path / "wide.npz", "--out", tmp_path / "p.csv")
    assert_one_sentence_error(code, err, "x has rows of shape (5,), but the run was trained on (2,)")
    code, _, err = run(capsys, "predict", out)
    assert_one_sentence_error(code, err, "--data")


def test_a_built_in_run_cannot_predict_files(tmp_path, capsys, no_pictures):
    out = str(tmp_path / "spiral")
    assert run(capsys, "train", "--epochs", "1", "--quiet", "--out", out)[0] == 0
    data = write_csv(tmp_path / "p.csv", ["x1", "x2"], [["0.1", "0.2"]])
    code, _, err = run(capsys, "predict", out, "--data", data)
    assert_one_sentence_error(code, err, "trained on the built-in data set spiral", "--data PATH")
    assert not os.path.exists(tmp_path / "p-predictions.csv")
