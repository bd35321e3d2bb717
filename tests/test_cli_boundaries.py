"""The run folder and the files the command writes are boundaries (issue 17).

Runs are never overwritten by surprise, one training at a time holds a folder,
a full disk is one sentence (the last checkpoint intact, no temporary files),
``predict --out`` writes through devices, FIFOs and symbolic links, option
values out of range stop before any folder is made, and damaged run files are
bad input (exit status 2) with every problem listed.
"""
import errno
import hashlib
import json
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

import leafgrad.serialization as S
from cli_helpers import no_pictures, run, trees  # noqa: F401
from leafgrad.cli.run_schema import seal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digest(folder):
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(folder))}


@pytest.fixture
def tree_run(tmp_path, capsys, no_pictures):
    data = trees(tmp_path / "trees.csv", n=30)
    out = str(tmp_path / "run")
    code, _, err = run(capsys, "train", "--data", data, "--target", "kind", "--hidden", "5", "--epochs", "3",
                       "--out", out, "--quiet")
    assert code == 0, err
    return out, data


# ---- runs are not overwritten; one training at a time ---------------------------------------
def test_out_naming_a_run_is_refused_unless_resumed_or_overwritten(tree_run, capsys):
    out, data = tree_run
    before = digest(out)
    code, _, err = run(capsys, "train", "--data", data, "--target", "kind", "--out", out, "--quiet")
    assert code == 2 and "already holds a run" in err and f"--resume {out}" in err and "--overwrite" in err
    assert digest(out) == before
    code, _, err = run(capsys, "train", "--resume", out, "--epochs", "4", "--quiet")
    assert code == 0, err
    code, _, err = run(capsys, "train", "--resume", out, "--overwrite", "--quiet")
    assert code == 2 and "give one of them" in err
    code, _, err = run(capsys, "train", "--data", data, "--target", "kind", "--hidden", "4", "--epochs", "1",
                       "--out", out, "--overwrite", "--quiet")
    assert code == 0, err
    assert json.load(open(os.path.join(out, "run.json")))["config"]["hidden"] == [4]
    assert not os.path.exists(os.path.join(out, ".lock"))


def test_a_live_lock_stops_a_second_training_and_a_stale_one_is_taken_over(tree_run, capsys):
    out, _ = tree_run
    import socket
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(os.path.join(out, ".lock"), "w") as f:
            json.dump({"pid": sleeper.pid, "host": socket.gethostname()}, f)
        before = digest(out)
        code, _, err = run(capsys, "train", "--resume", out, "--epochs", "4", "--quiet")
        assert code == 2 and f"another training (process {sleeper.pid})" in err
        assert digest(out) == before
    finally:
        sleeper.kill()
        sleeper.wait()
    # The process is gone: its lock is stale; the temporary files a killed writer left go too.
    for name in (".checkpoint.npz.abcd1234.tmp", ".run.json.x_y_z.tmp", ".probe-q1w2e3"):
        open(os.path.join(out, name), "w").close()
    code, _, err = run(capsys, "train", "--resume", out, "--epochs", "4", "--quiet")
    assert code == 0, err
    assert sorted(n for n in os.listdir(out) if n.startswith(".")) == []


# ---- a full disk -----------------------------------------------------------------------------
def test_a_full_disk_is_one_sentence_and_the_last_checkpoint_resumes_exactly(tmp_path, capsys, monkeypatch,
                                                                               no_pictures):
    data = trees(tmp_path / "trees.csv", n=30)
    args = ["--data", data, "--target", "kind", "--hidden", "5", "--epochs", "4", "--quiet"]
    code, _, err = run(capsys, "train", *args, "--out", tmp_path / "whole")
    assert code == 0, err
    real_write = S._write_array
    calls = {"n": 0}

    def fill_up(f, a):
        calls["n"] += 1
        if calls["n"] > 40:  # the checkpoints of epochs 0 and 1 fit (16 arrays each), then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(f, a)
    monkeypatch.setattr(S, "_write_array", fill_up)
    out = str(tmp_path / "cut")
    code, _, err = run(capsys, "train", *args, "--out", out)
    assert code == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "the disk is full" in err and f"--resume {out}" in err
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "metrics.csv", "run.json"]  # no temporary files
    monkeypatch.setattr(S, "_write_array", real_write)
    code, _, err = run(capsys, "train", "--resume", out, "--quiet")
    assert code == 0, err
    whole = open(tmp_path / "whole" / "metrics.csv").read().splitlines()
    cut = open(os.path.join(out, "metrics.csv")).read().splitlines()
    strip = [lambda rows: [r.rsplit(",", 1)[0] for r in rows]][0]  # all but the seconds
    assert strip(cut) == strip(whole)


# ---- options out of range: a sentence before any folder is made ----------------------------------
@pytest.mark.parametrize("option", [["--seed", "4294967296"], ["--hidden", "1000000,1000000"],
                                    ["--hidden", "2000000"]])
def test_options_out_of_range_make_no_folder(tmp_path, capsys, option):
    out = tmp_path / "never"
    code, _, err = run(capsys, "train", *option, "--out", out, "--epochs", "1")
    assert code == 2 and "Traceback" not in err and option[0] in err
    assert not out.exists()


# ---- predict --out -----------------------------------------------------------------------------
def test_predict_out_writes_through_symlinks_fifos_and_to_standard_output(tree_run, tmp_path, capsys):
    out, data = tree_run
    code, _, err = run(capsys, "predict", out, "--data", data, "--out", tmp_path / "plain.csv", "--quiet")
    assert code == 0, err
    expected = open(tmp_path / "plain.csv").read()

    target = tmp_path / "target.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    os.symlink(target, link)
    code, _, err = run(capsys, "predict", out, "--data", data, "--out", link, "--quiet")
    assert code == 0, err
    assert os.path.islink(link) and target.read_text() == expected

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    code, _, err = run(capsys, "predict", out, "--data", data, "--out", fifo, "--quiet")
    reader.join(10)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and got == [expected]

    code, stdout, err = run(capsys, "predict", out, "--data", data, "--out", "-")
    assert code == 0, err
    assert stdout.replace("\r\n", "\n") == expected.replace("\r\n", "\n")
    assert err.startswith("wrote standard output: 30 rows")
    if os.access(os.devnull, os.W_OK):
        code, _, err = run(capsys, "predict", out, "--data", data, "--out", os.devnull, "--quiet")
        assert code == 0, err
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert sorted(os.listdir(tmp_path)) == sorted(["fifo", "link.csv", "plain.csv", "run", "target.csv",
                                                   "trees.csv"])


# ---- damaged run files: exit status 2, every problem listed ----------------------------------------
def test_predict_refuses_nan_weights_and_a_damaged_record(tree_run, capsys):
    out, data = tree_run
    path = os.path.join(out, "model.npz")
    with np.load(path) as z:
        arrays = dict(z)
    good = dict(arrays)
    arrays["l1/b"] = arrays["l1/b"].astype(np.int32)
    arrays["l9/W"] = arrays["l0/W"]
    np.savez(path, **arrays)
    code, _, err = run(capsys, "predict", out, "--data", data)
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 3 and "2 problems" in lines[0], err  # every problem, one line each
    assert "'l1/b': dtype int32" in err and "'l9/W'" in err
    arrays = dict(good)
    arrays["l0/W"] = arrays["l0/W"].copy()
    arrays["l0/W"][0, 0] = np.nan
    np.savez(path, **arrays)
    code, _, err = run(capsys, "predict", out, "--data", data)
    assert code == 2 and "'l0/W': the file holds NaN" in err
    del arrays["l1/b"]
    np.savez(path, **arrays)
    code, _, err = run(capsys, "predict", out, "--data", data)
    assert code == 2 and "'l1/b' is missing" in err


def test_resume_refuses_a_random_position_out_of_range_without_crashing(tree_run, tmp_path):
    """pos = 10**6 used to segfault the process on --resume (exit 139, no message)."""
    out, _ = tree_run
    path = os.path.join(out, "checkpoint.npz")
    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(arrays["__meta__"].tobytes())
    meta["random"]["pos"] = 10 ** 6
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    env = dict(os.environ, PYTHONPATH=REPO, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "leafgrad", "train", "--resume", out, "--epochs", "5", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "position 1000000" in proc.stderr and "Traceback" not in proc.stderr


def test_run_json_with_std_zero_names_the_field(tree_run, capsys):
    out, data = tree_run
    path = os.path.join(out, "run.json")
    record = json.load(open(path))
    record["data_info"]["std"][0] = 0
    with open(path, "w") as f:
        json.dump(seal(record), f)
    code, _, err = run(capsys, "predict", out, "--data", data)
    assert code == 2 and "data_info.std" in err and "'height'" in err


# ---- data: units, constant columns, Unicode labels -----------------------------------------------
def scaled_trees(tmp_path, name, factor, constant=None, labels=None):
    """trees.csv with its height column multiplied by ``factor`` (and a constant column, other labels)."""
    from cli_helpers import write_csv
    rows = [line.split(",") for line in open(trees(tmp_path / "t.csv", n=60)).read().splitlines()[1:]]
    header = ["height", "density", "kind"] + ([] if constant is None else ["c"])
    out = []
    for h, d, k in rows:
        k = k if labels is None else labels[["oak", "birch", "pine"].index(k)]
        out.append([repr(float(h) * factor), d, k] + ([] if constant is None else [constant]))
    return write_csv(tmp_path / name, header, out)


def accuracy(capsys, tmp_path, data, name):
    code, out, err = run(capsys, "train", "--data", data, "--target", "kind", "--epochs", "10",
                         "--out", tmp_path / name, "--quiet")
    assert code == 0 and "Warning" not in err, err
    return out.split(", ")[:2]


def test_standardization_does_not_depend_on_units(tmp_path, capsys, no_pictures):
    base = accuracy(capsys, tmp_path, scaled_trees(tmp_path, "a.csv", 1.0), "a")
    assert accuracy(capsys, tmp_path, scaled_trees(tmp_path, "b.csv", 1e300), "b") == base
    assert accuracy(capsys, tmp_path, scaled_trees(tmp_path, "c.csv", 1e-300), "c") == base


def test_a_constant_column_is_recorded_and_predict_warns_when_it_differs(tmp_path, capsys, no_pictures):
    data = scaled_trees(tmp_path, "train.csv", 1.0, constant="5")
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--data", data, "--target", "kind", "--epochs", "5", "--out", out, "--quiet")
    assert code == 0, err
    assert json.load(open(out / "run.json"))["data_info"]["constant"] == [2]
    code, _, err = run(capsys, "predict", out, "--data", data, "--out", tmp_path / "same.csv", "--quiet")
    assert code == 0 and err == ""
    other = scaled_trees(tmp_path, "other.csv", 1.0, constant="7000")
    code, _, err = run(capsys, "predict", out, "--data", other, "--out", tmp_path / "other_p.csv", "--quiet")
    assert code == 0
    assert "warning: column 'c' held 5 in every training row" in err and "60 of the 60 rows" in err
    assert open(tmp_path / "same.csv").read() == open(tmp_path / "other_p.csv").read()


def test_unicode_labels_are_class_names(tmp_path, capsys, no_pictures):
    data = scaled_trees(tmp_path, "u.csv", 1.0, labels=["²", "1", "é ü"])
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--data", data, "--target", "kind", "--epochs", "5", "--out", out, "--quiet")
    assert code == 0, err
    code, stdout, err = run(capsys, "predict", out, "--data", data, "--out", "-", "--quiet")
    assert code == 0, err
    assert stdout.splitlines()[0] == "prediction,probability_1,probability_²,probability_é ü"


# ---- pictures of many classes --------------------------------------------------------------------
def test_the_confusion_matrix_of_many_classes_is_bounded(tmp_path):
    import tracemalloc
    from cli_helpers import HAS_MPL, assert_png
    from leafgrad.cli import plots
    rng = np.random.RandomState(0)
    k = 10_000
    t = rng.randint(0, k, 5000)
    predicted = np.where(rng.rand(5000) < 0.5, t, rng.randint(0, k, 5000))
    t[:300] = 7  # class 7 is the most frequent: shown
    tracemalloc.start()
    try:
        counts, shown = plots.confusion_counts(t, predicted, k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert counts.shape == (30, 30) and counts.sum() == 5000 and shown[-1] == -1 and 7 in shown
    assert peak < 2 * 2 ** 20  # k**2 counts would take 800 MB
    small, _ = plots.confusion_counts([0, 1, 1], [1, 1, 0], 2)
    assert small.tolist() == [[0, 1], [1, 1]]
    if HAS_MPL:
        names = [f"class {i}" for i in range(k)]
        assert plots.plot_confusion_matrix(str(tmp_path / "cm.png"), t, predicted, names, "many")
        assert_png(tmp_path / "cm.png")


# ---- every line of an error; exit statuses -----------------------------------------------------------
def test_an_unreadable_data_file_is_bad_input_and_a_full_disk_a_failed_run(tree_run, capsys, monkeypatch):
    from leafgrad.cli import table
    out, data = tree_run
    for code_expected, number in ((2, errno.EACCES), (1, errno.EIO)):
        def refuse(self, path, number=number):
            raise OSError(number, os.strerror(number), path)
        monkeypatch.setattr(table._Csv, "__init__", refuse)
        code, _, err = run(capsys, "predict", out, "--data", data)
        assert code == code_expected and "Traceback" not in err and os.strerror(number) in err and data in err


def test_sentence_keeps_every_line():
    from leafgrad.cli.errors import sentence
    assert sentence("one  problem") == "one problem."
    assert sentence("2 problems:\n  first\n  second") == "2 problems:\n  first\n  second"


def test_pictures_of_a_column_in_units_of_1e300(tmp_path, capsys):
    from cli_helpers import HAS_MPL, assert_png
    if not HAS_MPL:
        pytest.skip("matplotlib is not installed")
    for factor in (1e300, 1e-300):
        data = scaled_trees(tmp_path, "big.csv", factor)
        out = tmp_path / f"run{factor:g}"
        code, _, err = run(capsys, "train", "--data", data, "--target", "kind", "--epochs", "1", "--out", out,
                           "--quiet")
        assert code == 0 and "Warning" not in err, err
        assert_png(out / "decision_boundary.png")
