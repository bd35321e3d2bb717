"""Character-level text: tiny Shakespeare shipped in the package, vocabulary, nanoGPT's split, seeded windows."""
import hashlib

import numpy as np
import pytest

from leafgrad.datasets import CharText, Shakespear, TinyShakespeare
from leafgrad.text import SHAKESPEARE_SHA256, TextError


@pytest.fixture(scope="module")
def shakespeare():
    return TinyShakespeare()


def test_tiny_shakespeare_is_nanogpts(shakespeare):
    text = shakespeare.decode(shakespeare.ids)
    assert len(text) == 1115394
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == SHAKESPEARE_SHA256
    assert shakespeare.vocab_size == 65
    assert shakespeare.vocab == "".join(sorted(set(text)))
    assert shakespeare.vocab[:3] == "\n !"
    assert len(shakespeare.train_ids) == 1003854 and len(shakespeare.val_ids) == 111540  # nanoGPT's numbers
    assert shakespeare.decode(shakespeare.train_ids[:14]) == "First Citizen:"
    assert shakespeare.ids.dtype == np.int64


def test_windows_are_seeded_and_shifted(shakespeare):
    x, y = shakespeare.get_batch("train", 12, 64, np.random.RandomState(3))
    x2, y2 = shakespeare.get_batch("train", 12, 64, np.random.RandomState(3))
    assert x.shape == y.shape == (12, 64) and x.dtype == np.int64
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    starts = np.random.RandomState(3).randint(len(shakespeare.train_ids) - 64, size=12)
    for row, s in zip(x, starts):
        np.testing.assert_array_equal(row, shakespeare.train_ids[s:s + 64])
    xv, _ = shakespeare.get_batch("val", 2, 8, np.random.RandomState(0))
    assert shakespeare.decode(xv[0]) in shakespeare.decode(shakespeare.val_ids)
    batches = shakespeare.fixed_batches("val", 3, 4, 8, seed=1)
    again = shakespeare.fixed_batches("val", 3, 4, 8, seed=1)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))


def test_encode_decode_and_unknown_characters():
    text = CharText("hello world\n" * 10)
    assert text.vocab == "\n dehlorw"
    assert text.decode(text.encode("hold")) == "hold"
    with pytest.raises(TextError, match="'z'"):
        text.encode("hz")
    assert CharText("ab", vocab="ba").encode("ab").tolist() == [1, 0]


def test_from_file_checks(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("naïve café ☕\n" * 20, encoding="utf-8")
    text = CharText.from_file(str(good))
    assert "☕" in text.vocab and text.name == "good.txt"
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(TextError, match="empty"):
        CharText.from_file(str(empty))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(TextError, match="not UTF-8"):
        CharText.from_file(str(latin))
    with pytest.raises(TextError, match="context"):
        CharText("abcdefghij" * 3).check_block_size(8)  # validation split: 3 characters


def test_dezero_shakespear_is_unchanged():
    assert Shakespear.__mro__[1].__name__ == "Dataset"
    assert not issubclass(TinyShakespeare, Shakespear)
