"""``leafgrad train --data PATH``: your own CSV or .npz, classification and regression, and every bad file."""
import importlib.util
import json
import os
import re
import shlex

import numpy as np
import pytest

from cli_helpers import (HAS_MPL, HAS_SKLEARN, assert_one_sentence_error, assert_png, linear,  # noqa: F401
                         model_weights_finite, no_pictures, run, trees, write_csv)
from leafgrad.cli.run_folder import read_metrics


# ---------------------------------------------------------------------------------------------
# Training on your own file
# ---------------------------------------------------------------------------------------------
def test_csv_classification_with_string_labels(tmp_path, capsys):
    data = trees(tmp_path / "trees.csv")
    out = str(tmp_path / "run")
    code, stdout, err = run(capsys, "train", "--data", data, "--target", "kind", "--out", out, "--epochs", "15")
    assert code == 0, err
    assert "trees.csv: 72 train / 18 test, 2 features, 3 classes" in stdout
    assert "mlp 2-100-3" in stdout and "predict new rows with: leafgrad predict" in stdout
    assert "test accuracy 100.0%" in stdout
    record = json.load(open(os.path.join(out, "run.json")))
    assert record["config"]["data"] == os.path.abspath(data) and record["config"]["target"] == "kind"
    info = record["data_info"]
    assert info["features"] == ["height", "density"] and info["labels"] == ["birch", "oak", "pine"]
    assert info["mean"][0] == pytest.approx(1040, abs=3) and info["std"][1] == pytest.approx(0.245, abs=0.02)
    assert len(read_metrics(os.path.join(out, "metrics.csv"))) == 15
    if HAS_MPL:
        for name in ("curves.png", "decision_boundary.png", "confusion_matrix.png"):
            assert_png(os.path.join(out, name))


def test_the_test_rows_are_drawn_class_by_class_and_seeded(tmp_path, capsys, no_pictures):
    data = trees(tmp_path / "trees.csv", n=30)
    outs = []
    for seed, fraction in ((0, "0.2"), (0, "0.2"), (1, "0.2"), (0, "0")):
        out = str(tmp_path / f"r{len(outs)}")
        code, stdout, err = run(capsys, "train", "--data", data, "--target", "kind", "--seed", seed,
                                "--test-fraction", fraction, "--epochs", "1", "--out", out)
        assert code == 0, err
        outs.append((stdout, json.load(open(os.path.join(out, "run.json")))["data_info"]["mean"]))
    assert "24 train / 6 test" in outs[0][0]  # 2 of the 10 rows of each class
    assert outs[0][1] == outs[1][1]          # same seed, same rows
    assert outs[0][1] != outs[2][1]          # another seed, other rows
    assert "30 train, 2 features" in outs[3][0] and "test accuracy" not in outs[3][0]


def test_integer_labels_and_npz(tmp_path, capsys, no_pictures):
    rng = np.random.RandomState(0)
    x = rng.randn(80, 4).astype(np.float32)
    t = (x[:, 0] > 0).astype(np.int64) * 10 + 2   # classes 2 and 12: names sort as numbers
    np.savez(tmp_path / "d.npz", x=x, t=t)
    out = str(tmp_path / "run")
    code, stdout, err = run(capsys, "train", "--data", tmp_path / "d.npz", "--out", out, "--epochs", "3")
    assert code == 0, err
    assert "d.npz: 64 train / 16 test, 4 features, 2 classes" in stdout
    info = json.load(open(os.path.join(out, "run.json")))["data_info"]
    assert info["labels"] == ["2", "12"] and info["features"] == ["x0", "x1", "x2", "x3"]


def test_npz_images_with_a_cnn(tmp_path, capsys, no_pictures):
    rng = np.random.RandomState(0)
    t = np.arange(40) % 2
    x = rng.rand(40, 8, 8).astype(np.float32)
    x[t == 1, :4] += 1.0  # class 1: a bright upper half
    np.savez(tmp_path / "img.npz", x=x, t=np.array(["dark", "bright"])[t])
    code, stdout, err = run(capsys, "train", "--data", tmp_path / "img.npz", "--model", "cnn", "--hidden", "8",
                            "--epochs", "2", "--out", tmp_path / "run")
    assert code == 0, err
    assert "64 features, 2 classes; cnn conv16-conv32-8-2" in stdout


def test_regression(tmp_path, capsys):
    data = linear(tmp_path / "lin.csv")
    out = str(tmp_path / "run")
    code, stdout, err = run(capsys, "train", "--data", data, "--target", "y", "--task", "regression",
                            "--epochs", "60", "--out", out)
    assert code == 0, err
    assert "lin.csv: 48 train / 12 test, 3 features, regression of 'y'; mlp 3-100-1" in stdout
    assert "train mean squared error" in stdout and "accuracy" not in stdout
    rows = read_metrics(os.path.join(out, "metrics.csv"))
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] / 20   # the mean squared error went down
    assert np.isnan(rows[-1]["train_acc"]) and np.isnan(rows[-1]["test_acc"])
    if HAS_MPL:
        assert_png(os.path.join(out, "predictions.png"))
        assert_png(os.path.join(out, "curves.png"))
        assert not os.path.exists(os.path.join(out, "confusion_matrix.png"))
    code, stdout, _ = run(capsys, "train", "--resume", out, "--epochs", "61", "--quiet")
    assert code == 0 and stdout.startswith("train mse ")


def test_resume_a_file_run_exactly_and_refuse_a_changed_file(tmp_path, capsys, no_pictures):
    data = trees(tmp_path / "trees.csv")
    straight, split = str(tmp_path / "a"), str(tmp_path / "b")
    common = ["--data", data, "--target", "kind", "--quiet"]
    assert run(capsys, "train", *common, "--epochs", "4", "--out", straight)[0] == 0
    assert run(capsys, "train", *common, "--epochs", "2", "--out", split)[0] == 0
    code, _, err = run(capsys, "train", "--resume", split, "--epochs", "4")
    assert code == 0, err
    a, b = read_metrics(os.path.join(straight, "metrics.csv")), read_metrics(os.path.join(split, "metrics.csv"))
    assert [[r[k] for k in ("train_loss", "test_loss")] for r in a] == \
           [[r[k] for k in ("train_loss", "test_loss")] for r in b]
    with open(data, "a") as f:
        f.write("1000.5,0.2,oak\n")
    code, _, err = run(capsys, "train", "--resume", split, "--epochs", "5")
    assert_one_sentence_error(code, err, "has changed since the run started")
    code, _, err = run(capsys, "train", "--resume", split, "--target", "height")
    assert_one_sentence_error(code, err, "--target cannot change when resuming")


# ---------------------------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------------------------
def test_divergence_later_keeps_the_last_finite_epoch(tmp_path, capsys, no_pictures):
    data = linear(tmp_path / "lin.csv")
    out = str(tmp_path / "run")
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", "--task", "regression",
                       "--optimizer", "sgd", "--lr", "0.03", "--epochs", "20", "--out", out)
    assert code == 1, err
    epoch = int(err.split("at epoch ")[1].split(",")[0])
    assert epoch >= 2 and ", batch " in err and "--lr 0.03 is too high for sgd" in err
    assert f"keeps the checkpoint of epoch {epoch - 1}, whose weights are finite." in err
    assert model_weights_finite(os.path.join(out, "checkpoint.npz"))
    assert len(read_metrics(os.path.join(out, "metrics.csv"))) == epoch - 1
    assert json.load(open(os.path.join(out, "run.json")))["epochs_done"] == epoch - 1


# ---------------------------------------------------------------------------------------------
# Bad files and options: exit status 2, one sentence that says what and where
# ---------------------------------------------------------------------------------------------
GOOD = [["1.5", "2.5", "oak"], ["1.0", "2.0", "birch"], ["0.5", "1.5", "oak"], ["3.0", "0.5", "birch"]]
BAD_CSV = {
    "missing target": (["a", "b", "kind"], GOOD, ["--target", "colour"],
                       ["--target colour is not a column of", "its columns are: a, b, kind"]),
    "no target": (["a", "b", "kind"], GOOD, [], ["needs --target NAME", "its columns are: a, b, kind"]),
    "non-numeric": (["a", "b", "kind"], GOOD[:2] + [["0.5", "tall", "oak"]] + GOOD[3:], ["--target", "kind"],
                    ["line 4 (row 3), column 'b' holds 'tall', which is not a number"]),
    "empty cell": (["a", "b", "kind"], [["", "2.5", "oak"]] + GOOD[1:], ["--target", "kind"],
                   ["line 2 (row 1), column 'a' is empty"]),
    "not finite": (["a", "b", "kind"], GOOD[:3] + [["inf", "0.5", "birch"]], ["--target", "kind"],
                   ["line 5 (row 4), column 'a' holds 'inf', which is not a finite number"]),
    "ragged": (["a", "b", "kind"], GOOD[:2] + [["0.5", "oak"]] + GOOD[3:], ["--target", "kind"],
               ["line 4: 2 fields, but the header row has 3 columns"]),
    "header only": (["a", "b", "kind"], [], ["--target", "kind"], ["has a header row but no data rows"]),
    "single row class": (["a", "b", "kind"], GOOD + [["2.0", "2.0", "pine"]], ["--target", "kind"],
                         ["class 'pine' of 'kind' has a single row (line 6)", "--test-fraction 0"]),
    "one class": (["a", "b", "kind"], [r[:2] + ["oak"] for r in GOOD], ["--target", "kind"],
                  ["holds a single class ('oak')"]),
    "fractional labels": (["a", "b", "kind"], [r[:2] + [v] for r, v in zip(GOOD, ["1", "2", "2.5", "1"])],
                          ["--target", "kind"], ["not whole (line 4: 2.5)", "--task regression"]),
    "text target for regression": (["a", "b", "kind"], GOOD, ["--target", "kind", "--task", "regression"],
                                   ["line 2 (row 1), column 'kind' holds 'oak', which is not a number"]),
    "duplicate column": (["a", "a", "kind"], GOOD, ["--target", "kind"], ["names column 'a' twice"]),
    "no features": (["kind"], [["oak"], ["birch"]], ["--target", "kind"], ["no feature columns"]),
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_bad_csv(case, tmp_path, capsys):
    header, rows, options, words = BAD_CSV[case]
    data = write_csv(tmp_path / "d.csv", header, rows)
    code, _, err = run(capsys, "train", "--data", data, *options, "--out", tmp_path / "run")
    assert_one_sentence_error(code, err, *words)


def test_bad_files(tmp_path, capsys):
    def check(data, *words, options=()):
        code, _, err = run(capsys, "train", "--data", data, *options, "--out", tmp_path / "run")
        assert_one_sentence_error(code, err, *words)
        assert not os.path.exists(tmp_path / "run")  # no empty run folder left behind

    check(tmp_path / "absent.csv", "--data", "absent.csv: no such file")
    (tmp_path / "notes.dat").write_text("a,b\n1,2\n")
    check(tmp_path / "notes.dat", "expected a .csv file (with a header row) or an .npz file")
    (tmp_path / "empty.csv").write_text("")
    check(tmp_path / "empty.csv", "empty.csv is empty", options=("--target", "t"))
    (tmp_path / "blank.csv").write_text("\n\n")
    check(tmp_path / "blank.csv", "blank.csv is empty", options=("--target", "t"))
    (tmp_path / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    check(tmp_path / "binary.csv", "not a CSV text file", options=("--target", "t"))
    np.savez(tmp_path / "xy.npz", x=np.zeros((3, 2)), y=np.zeros(3))
    check(tmp_path / "xy.npz", "must hold arrays named x and t; it holds: x, y")
    np.savez(tmp_path / "short.npz", x=np.zeros((3, 2)), t=np.zeros(2))
    check(tmp_path / "short.npz", "x has 3 rows but t has 2")
    np.savez(tmp_path / "flat.npz", x=np.zeros(3), t=np.zeros(3))
    check(tmp_path / "flat.npz", "x must hold one row per example", "got shape (3,)")
    np.savez(tmp_path / "obj.npz", x=np.zeros((2, 2)), t=np.array([{"a": 1}, None], dtype=object))
    check(tmp_path / "obj.npz", "holds pickled Python objects", "refusing")
    (tmp_path / "fake.npz").write_text("x,t\n1,2\n")
    check(tmp_path / "fake.npz", "not an .npz (zip) archive")
    np.savez(tmp_path / "ok.npz", x=np.zeros((4, 2)), t=np.array([0, 1, 0, 1]))
    check(tmp_path / "ok.npz", "--target names a column of a CSV file", options=("--target", "t"))
    trees(tmp_path / "trees.csv")
    check(tmp_path / "trees.csv", "--model cnn needs images", options=("--target", "kind", "--model", "cnn"))


@pytest.mark.parametrize("argv, words", [
    (["--dataset", "digits", "--data", "x.csv"], ["either --dataset or --data"]),
    (["--target", "kind"], ["--target applies to your own data"]),
    (["--test-fraction", "0.3"], ["--test-fraction applies to your own data"]),
    (["--data", "x.csv", "--task", "ranking"], ["unknown task 'ranking'; choose from classification, regression"]),
    (["--data", "x.csv", "--test-fraction", "1"], ["--test-fraction", "from 0 up to (not including) 1"]),
])
def test_bad_data_options(argv, words, tmp_path, capsys):
    code, _, err = run(capsys, "train", *argv, "--out", tmp_path / "run")
    assert_one_sentence_error(code, err, *words)


def test_resume_of_a_built_in_run_takes_no_data_options(tmp_path, capsys, no_pictures):
    out = str(tmp_path / "run")
    assert run(capsys, "train", "--epochs", "1", "--quiet", "--out", out)[0] == 0
    code, _, err = run(capsys, "train", "--resume", out, "--data", "x.csv")
    assert_one_sentence_error(code, err, "--data does not apply to the run in", "trained on spiral")


# ---------------------------------------------------------------------------------------------
# The README's example, end to end: what it shows is what the commands print
# ---------------------------------------------------------------------------------------------
def _readme_section(title):
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md"),
              encoding="utf-8") as f:
        text = f.read()
    start = text.index(f"\n## {title}\n")
    return text[start:text.index("\n## ", start + 1)]


def _fenced(section, info):
    """The lines of every fenced block whose opening fence reads ```INFO (``info`` "" for plain blocks)."""
    blocks, inside, current = [], None, []
    for line in section.splitlines():
        if inside is None and line.startswith("```"):
            inside, current = line[3:].strip(), []
        elif inside is not None and line.strip() == "```":
            if inside == info:
                blocks.append(current)
            inside = None
        elif inside is not None:
            current.append(line)
    return blocks


def _same(shown, printed):
    """A line of the README against a printed line: timings may differ, "..." stands for lines left out."""
    def norm(line):
        return re.sub(r"\d+\.\d s\b", "T s", line.rstrip())
    return norm(shown) == norm(printed)


@pytest.mark.skipif(not HAS_SKLEARN, reason="the README's example needs scikit-learn (its wine data)")
def test_the_readme_example(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    section = _readme_section("Your own data")
    (make_wine,) = _fenced(section, "python make_wine.py")
    sessions = _fenced(section, "")
    lines = [line for block in sessions for line in block]
    commands = [i for i, line in enumerate(lines) if line.startswith("$ ")]
    ran = 0
    for k, i in enumerate(commands):
        command = lines[i][2:]
        shown = [x for x in lines[i + 1:commands[k + 1] if k + 1 < len(commands) else len(lines)]]
        if command == "python make_wine.py":
            exec(compile("\n".join(make_wine), "make_wine.py", "exec"), {"__name__": "__main__"})
            continue
        if command.startswith("head -2 "):
            with open(command.split()[-1], encoding="utf-8") as f:
                printed = [f.readline().rstrip("\n") for _ in range(2)]
        elif command == "cut -d, -f1-13 wine.csv | sed -n '1p;2p;61p;132p' > new_wines.csv":
            with open("wine.csv", encoding="utf-8") as f:
                rows = f.read().splitlines()
            with open("new_wines.csv", "w", encoding="utf-8") as f:
                f.write("".join(",".join(rows[n].split(",")[:13]) + "\n" for n in (0, 1, 60, 131)))
            continue
        elif command.startswith("cat "):
            with open(command.split()[-1], encoding="utf-8") as f:
                printed = f.read().splitlines()
            assert printed[0] == shown[0] and len(printed) == len(shown)
            for a, b in zip(shown[1:], printed[1:]):        # probabilities: BLAS may round the last digit
                assert a.split(",")[0] == b.split(",")[0]
                np.testing.assert_allclose([float(v) for v in a.split(",")[1:]],
                                           [float(v) for v in b.split(",")[1:]], rtol=1e-3, atol=1e-6)
            ran += 1
            continue
        elif command.startswith("leafgrad export") and importlib.util.find_spec("onnxruntime") is None:
            continue  # (the [onnx] extra is not installed)
        elif command.startswith("leafgrad "):
            if "wine-" in command:  # the bad files of the README: a typo, a short row, one more class
                with open("wine.csv", encoding="utf-8") as f:
                    rows = f.read().splitlines()
                fields = rows[6].split(",")
                fields[2] = "n/a"
                typo = rows[:6] + [",".join(fields)] + rows[7:]
                fields = rows[8].split(",")
                del fields[5]
                short = rows[:8] + [",".join(fields)] + rows[9:]
                nebbiolo = rows + [rows[1].replace("barolo", "nebbiolo")]
                for name, content in (("typo", typo), ("short-row", short), ("nebbiolo", nebbiolo)):
                    with open(f"wine-{name}.csv", "w", encoding="utf-8") as f:
                        f.write("\n".join(content) + "\n")
            cli_main_code, out, err = run(capsys, *shlex.split(command)[1:])
            printed = (out + err).splitlines()
            assert cli_main_code == (2 if "error" in "".join(shown) else 0), err
        else:
            raise AssertionError(f"the test does not know the README's command {command!r}")
        ran += 1
        j = 0
        for line in shown:  # each shown line appears, in order ("..." skips printed lines)
            if line.strip() == "...":
                continue
            while j < len(printed) and not _same(line, printed[j]):
                j += 1
            assert j < len(printed), (command, line, printed)
            j += 1
    assert ran >= 8
    (onnx_wine,) = _fenced(section, "python onnx_wine.py")
    if importlib.util.find_spec("onnxruntime") is not None:  # the exported model, run by ONNX Runtime
        exec(compile("\n".join(onnx_wine), "onnx_wine.py", "exec"), {"__name__": "__main__"})
        out, _ = capsys.readouterr()
        assert f"It prints `{out.strip()}`" in " ".join(section.split())
