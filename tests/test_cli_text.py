"""``leafgrad train`` on text (a character-level GPT) and ``leafgrad generate``, with tiny models and few iterations."""
import csv
import json
import os

import numpy as np
import pytest

from cli_helpers import assert_one_sentence_error, no_pictures, run  # noqa: F401
from leafgrad.cli import progress

TINY = ("--layers", "1", "--heads", "2", "--embd", "8", "--block-size", "8", "--batch-size", "4",
        "--eval-iters", "1")
POEM = "".join(f"line {i}: the cat sat on the mat, and the dog ran far away.\n" for i in range(40))


@pytest.fixture
def poem(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text(POEM, encoding="utf-8")
    return path


def metrics(folder):
    with open(os.path.join(folder, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_text_file_trains_and_generates(tmp_path, capsys, poem, no_pictures):
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", "--data", poem, "--iters", "6", "--eval-interval", "3", *TINY,
                          "--out", out)
    assert code == 0, err
    assert "poem.txt" in text and "gpt 1 layer," in text and "val loss" in text
    rows = metrics(out)
    assert list(rows[0]) == ["iteration", "train_loss", "val_loss", "lr", "seconds"]
    assert [int(r["iteration"]) for r in rows] == [0, 3, 6]
    record = json.loads((out / "run.json").read_text())
    assert record["kind"] == "text" and record["vocab"] == "".join(sorted(set(POEM)))
    assert record["config"]["layers"] == 1 and record["iterations_done"] == 6
    for name in ("model.npz", "checkpoint.npz"):
        with np.load(out / name, allow_pickle=False):
            pass

    code, text, err = run(capsys, "generate", out, "--prompt", "the cat", "--length", "30", "--seed", "1")
    assert code == 0, err
    assert text.startswith("the cat") and len(text.rstrip("\n")) >= len("the cat") + 25
    assert set(text) <= set(POEM) | {"\n"}
    assert "characters per second (with the key/value cache)" in err
    code, again, err = run(capsys, "generate", out, "--prompt", "the cat", "--length", "30", "--seed", "1",
                           "--no-cache", "--top-k", "3", "--temperature", "0.8")
    assert code == 0 and again.startswith("the cat") and "without the key/value cache" in err
    code, same, _ = run(capsys, "generate", out, "--prompt", "the cat", "--length", "30", "--seed", "1",
                        "--no-cache")
    assert same == text  # the cache changes the speed, not the text

    code, _, err = run(capsys, "generate", out, "--prompt", "the cat €", "--length", "5")
    assert_one_sentence_error(code, err, "'€'", "vocabulary")


def test_resume_of_a_text_run_is_exact(tmp_path, capsys, poem, no_pictures, monkeypatch):
    whole, part = tmp_path / "whole", tmp_path / "part"
    args = ("--data", poem, "--iters", "8", "--eval-interval", "2", *TINY, "--dropout", "0.1")
    assert run(capsys, "train", *args, "--out", whole)[0] == 0

    real = progress.IterationProgress.on_batch_end

    def stop_at_5(self, trainer, batch, loss, acc):
        real(self, trainer, batch, loss, acc)
        if batch == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.IterationProgress, "on_batch_end", stop_at_5)
    code, _, err = run(capsys, "train", *args, "--out", part)
    assert code == 130 and "--resume" in err
    monkeypatch.undo()
    assert [int(r["iteration"]) for r in metrics(part)] == [0, 2, 4]
    code, text, err = run(capsys, "train", "--resume", part)
    assert code == 0, err
    assert "after iteration 4" in text
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in metrics(whole)] == \
           [{k: v for k, v in r.items() if k not in drop} for r in metrics(part)]
    with np.load(whole / "model.npz") as a, np.load(part / "model.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])

    code, _, err = run(capsys, "train", "--resume", part, "--layers", "2")
    assert_one_sentence_error(code, err, "--layers cannot change")
    code, _, err = run(capsys, "train", "--resume", part, "--epochs", "3")
    assert_one_sentence_error(code, err, "--epochs", "--iters")


@pytest.mark.parametrize("content,words", [
    (b"", ("empty",)),
    ("short text\n".encode("utf-8") * 3, ("not longer than the context",)),
    ("caf\xe9 au lait\n".encode("latin-1") * 10, ("not UTF-8",)),
])
def test_bad_text_files(tmp_path, capsys, content, words, no_pictures):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--data", path, "--iters", "2", "--block-size", "16", "--out", out)
    assert_one_sentence_error(code, err, "bad.txt", *words)
    assert not out.exists()


@pytest.mark.parametrize("argv,words", [
    (("--dataset", "shakespeare", "--embd", "10", "--heads", "4"), ("--embd 10", "--heads 4", "divisible")),
    (("--dataset", "shakespeare", "--layers", "0"), ("--layers", "layers >= 1")),
    (("--dataset", "shakespeare", "--heads", "two"), ("--heads",)),
    (("--dataset", "shakespeare", "--block-size", "-3"), ("--block-size",)),
    (("--dataset", "shakespeare", "--dropout", "1.5"), ("--dropout",)),
    (("--dataset", "shakespeare", "--epochs", "3"), ("--epochs", "--iters")),
    (("--dataset", "shakespeare", "--hidden", "10"), ("--hidden",)),
    (("--dataset", "shakespeare", "--optimizer", "adadelta"), ("adadelta",)),
    (("--dataset", "spiral", "--iters", "10"), ("--iters", "text runs")),
    (("--dataset", "shakespeare", "--distributed"), ("--distributed",)),
])
def test_bad_text_options(tmp_path, capsys, argv, words):
    code, _, err = run(capsys, "train", *argv, "--out", tmp_path / "run")
    assert_one_sentence_error(code, err, *words)


def test_generate_needs_a_text_run(tmp_path, capsys, no_pictures):
    out = tmp_path / "spiral"
    assert run(capsys, "train", "--epochs", "1", "--quiet", "--out", out)[0] == 0
    code, _, err = run(capsys, "generate", out, "--prompt", "a")
    assert_one_sentence_error(code, err, "not a text run")
    code, _, err = run(capsys, "generate", tmp_path / "nothing")
    assert_one_sentence_error(code, err, "RUN_DIR")


def test_divergence_of_a_text_run(tmp_path, capsys, poem, no_pictures):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--data", poem, "--iters", "20", "--eval-interval", "5", *TINY,
                       "--lr", "1e30", "--out", out)
    assert_one_sentence_error(code, err, "diverged", "iteration", "--lr", status=1)
    assert [int(r["iteration"]) for r in metrics(out)] == [0]  # the checkpoint kept is the last finite one


def test_shakespeare_run_resumes_with_more_iterations(tmp_path, capsys, no_pictures):
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", "--dataset", "shakespeare", "--iters", "2", "--eval-interval", "1",
                          *TINY, "--out", out)
    assert code == 0, err
    assert "tiny shakespeare: 1,003,854 train / 111,540 val characters, 65 distinct" in text
    assert "--prompt ROMEO:" in text and "memory of one training step" in text
    code, text, err = run(capsys, "train", "--resume", out, "--iters", "3", "--quiet")
    assert code == 0, err
    assert [int(r["iteration"]) for r in metrics(out)] == [0, 1, 2, 3]
    code, text, err = run(capsys, "generate", out, "--prompt", "ROMEO:", "--length", "5", "--quiet")
    assert code == 0 and text.startswith("ROMEO:") and err == ""
    code, _, err = run(capsys, "predict", out, "--data", tmp_path / "x.csv")
    assert_one_sentence_error(code, err, "text run", "leafgrad generate")


def _reseal(path, change):
    """Change run.json with ``change(record)`` and seal it again (damage the digest cannot see)."""
    from leafgrad.cli.run_schema import DIGEST, seal
    record = json.loads(path.read_text())
    change(record)
    record.pop(DIGEST)
    path.write_text(json.dumps(seal(record)))


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_text_run_is_sealed_locked_and_not_overwritten(tmp_path, capsys, poem, no_pictures):
    from leafgrad.cli.run_schema import DIGEST, check_record
    out = tmp_path / "run"
    args = ("--data", poem, "--iters", "4", "--eval-interval", "2", *TINY, "--quiet")
    assert run(capsys, "train", *args, "--out", out)[0] == 0
    record = json.loads((out / "run.json").read_text())
    assert DIGEST in record and check_record(record) == []
    before = _files(out)

    code, _, err = run(capsys, "train", *args, "--out", out)
    assert_one_sentence_error(code, err, "already holds a run", "--overwrite")
    assert _files(out) == before
    (out / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": __import__("socket").gethostname()}))
    code, _, err = run(capsys, "train", "--resume", out, "--iters", "6")
    assert_one_sentence_error(code, err, "another training")
    (out / ".lock").unlink()
    code, _, err = run(capsys, "train", *args, "--out", out, "--iters", "2", "--overwrite")
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["iterations_done"] == 2
    assert not (out / ".lock").exists()
    code, _, err = run(capsys, "generate", out, "--seed", "4294967296")
    assert_one_sentence_error(code, err, "--seed")


@pytest.mark.parametrize("damage,words", [
    (lambda p: p.write_text(p.read_text().replace('"iterations_done": 4', '"iterations_done": 5')),
     ("record_sha256", "digest")),
    (lambda p: _reseal(p, lambda r: r.update(vocab=r["vocab"] + r["vocab"][0])), ("vocab", "twice")),
    (lambda p: _reseal(p, lambda r: r.update(vocab="")), ("vocab",)),
    (lambda p: _reseal(p, lambda r: r["config"].update(heads=3)), ("config.embd", "divisible")),
    (lambda p: _reseal(p, lambda r: r["config"].update(layers=0)), ("config.layers",)),
    (lambda p: _reseal(p, lambda r: r.update(iterations_done=-1)), ("iterations_done",)),
    (lambda p: _reseal(p, lambda r: r["config"].update(dropout=1.5)), ("config.dropout",)),
    (lambda p: _reseal(p, lambda r: r.pop("data_sha256")), ("data_sha256",)),
])
def test_a_damaged_text_run_json_is_refused(tmp_path, capsys, poem, no_pictures, damage, words):
    out = tmp_path / "run"
    assert run(capsys, "train", "--data", poem, "--iters", "4", "--eval-interval", "2", *TINY, "--quiet",
               "--out", out)[0] == 0
    damage(out / "run.json")
    before = _files(out)
    code, _, err = run(capsys, "train", "--resume", out, "--iters", "6")
    assert_one_sentence_error(code, err, "run.json", *words)
    code, _, err = run(capsys, "generate", out, "--prompt", "the", "--length", "3")
    assert_one_sentence_error(code, err, "run.json", *words)
    assert _files(out) == before


def test_damaged_text_weights_and_checkpoints_are_refused(tmp_path, capsys, poem, no_pictures):
    out = tmp_path / "run"
    assert run(capsys, "train", "--data", poem, "--iters", "4", "--eval-interval", "2", *TINY, "--quiet",
               "--out", out)[0] == 0
    with np.load(out / "model.npz") as f:
        weights = {k: f[k] for k in f.files}
    key = sorted(weights)[0]
    weights[key] = weights[key].copy()
    weights[key].flat[0] = np.nan
    np.savez(out / "model.npz", **weights)
    code, _, err = run(capsys, "generate", out, "--prompt", "the", "--length", "3")
    assert_one_sentence_error(code, err, "model.npz", "NaN")
    del weights[key]
    np.savez(out / "model.npz", **weights)
    code, _, err = run(capsys, "generate", out, "--prompt", "the", "--length", "3")
    assert_one_sentence_error(code, err, "model.npz", key)

    (out / "model.npz").unlink()  # generate then reads the checkpoint
    data = (out / "checkpoint.npz").read_bytes()
    (out / "checkpoint.npz").write_bytes(data[: len(data) // 2])
    before = _files(out)
    code, _, err = run(capsys, "generate", out, "--prompt", "the", "--length", "3")
    assert_one_sentence_error(code, err, "checkpoint.npz")
    code, _, err = run(capsys, "train", "--resume", out, "--iters", "6")
    assert_one_sentence_error(code, err, "cannot resume", "checkpoint.npz")
    assert _files(out) == before
