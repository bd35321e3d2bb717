"""Datasets: DeZero's numbers for the toy data; real file formats read from a temporary cache.

The files are written here in the real formats (MNIST's gzip IDX, CIFAR's
binary-version tar.gz) with a few examples each; no test touches the network.
"""
import gzip
import io
import socket
import sys
import tarfile

import numpy as np
import pytest

from leafgrad import datasets
from leafgrad.datasets import (CIFAR10, CIFAR100, MNIST, Dataset, ImageNet, Shakespear, SinCurve,
                               Spiral, get_spiral)
from leafgrad.download import DownloadError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch, no_network):
    """A fresh, empty cache folder; any attempt to reach the network fails the test."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("LEAFGRAD_CACHE_DIR", str(folder))
    return folder


# =============================================================================
# Dataset base class
# =============================================================================
class Squares(Dataset):
    def prepare(self):
        self.data = np.arange(5, dtype=np.float32)
        self.label = np.arange(5) ** 2


class Unlabelled(Dataset):
    def prepare(self):
        self.data = np.arange(3)


def test_dataset_protocol():
    ds = Squares()
    assert len(ds) == 5 and ds.train is True
    x, t = ds[3]
    assert x == 3 and t == 9
    assert ds[np.int64(2)] == (2, 4)
    ds = Squares(train=False, transform=lambda x: x * 2, target_transform=lambda t: -t)
    assert ds.train is False and ds[4] == (8, -16)
    assert Unlabelled()[1] == (1, None)


@pytest.mark.parametrize("bad", [slice(0, 2), [0, 1], 1.0, True])
def test_dataset_index_must_be_int(bad):
    with pytest.raises(TypeError, match="Squares: index must be an int"):
        Squares()[bad]


def test_dataset_without_data():
    with pytest.raises(TypeError, match="Dataset: prepare\\(\\) set no data"):
        len(Dataset())


# =============================================================================
# Toy data: the same numbers as DeZero
# =============================================================================
def _spiral_reference(train):
    """DeZero 0.0.13's get_spiral, written as its nested loop (one randn() per point)."""
    np.random.seed(1984 if train else 2020)
    x = np.zeros((300, 2), dtype=np.float32)
    t = np.zeros(300, dtype=np.int64)
    for j in range(3):
        for i in range(100):
            rate = i / 100
            theta = j * 4.0 + 4.0 * rate + np.random.randn() * 0.2
            x[100 * j + i] = np.array([rate * np.sin(theta), rate * np.cos(theta)])
            t[100 * j + i] = j
    indices = np.random.permutation(300)
    return x[indices], t[indices]


@pytest.mark.parametrize("train", [True, False])
def test_get_spiral_matches_dezero(train):
    x, t = get_spiral(train)
    after = np.random.rand()
    rx, rt = _spiral_reference(train)
    assert np.array_equal(x, rx) and np.array_equal(t, rt)
    assert after == np.random.rand()  # the generator is left in the same state
    assert x.dtype == np.float32 and x.shape == (300, 2)
    assert t.dtype == np.int64 and t.shape == (300,)
    assert np.bincount(t).tolist() == [100, 100, 100]


def test_spiral_dataset():
    ds = Spiral()
    x, t = get_spiral(True)
    assert len(ds) == 300
    assert np.array_equal(ds.data, x) and np.array_equal(ds.label, t)
    assert not np.array_equal(Spiral(train=False).data, x)
    assert ds[0][0].dtype == np.float32


@pytest.mark.parametrize("train", [True, False])
def test_sincurve_matches_dezero(train):
    np.random.seed(7)
    ds = SinCurve(train=train)
    np.random.seed(7)
    x = np.linspace(0, 2 * np.pi, 1000)
    noise = np.random.uniform(-0.05, 0.05, size=x.shape)  # drawn for the test set too, as DeZero does
    y = (np.sin(x) + noise) if train else np.cos(x)
    assert ds.data.shape == (999, 1) and ds.label.shape == (999, 1)
    assert np.array_equal(ds.data[:, 0], y[:-1]) and np.array_equal(ds.label[:, 0], y[1:])
    assert ds.data.dtype == np.float64
    assert len(ds) == 999


# =============================================================================
# MNIST: gzip-compressed IDX files
# =============================================================================
def _idx(array):
    """``array`` (uint8) in the IDX format: magic 0x0000 0x08 ndim, big-endian dims, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def _write_gz(path, payload):
    with gzip.open(path, "wb") as f:
        f.write(payload)


def _make_mnist(folder, n_train=5, n_test=3):
    rng = np.random.RandomState(1)
    made = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = rng.randint(0, 10, size=n).astype(np.uint8)
        _write_gz(folder / f"{prefix}-images-idx3-ubyte.gz", _idx(images))
        _write_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", _idx(labels))
        made[prefix] = (images, labels)
    return made


def test_mnist_from_cache(cache):
    made = _make_mnist(cache)
    ds = MNIST(train=True)
    images, labels = made["train"]
    assert ds.data.shape == (5, 1, 28, 28) and ds.data.dtype == np.uint8
    assert np.array_equal(ds.data[:, 0], images) and np.array_equal(ds.label, labels)
    x, t = ds[2]
    assert x.shape == (784,) and x.dtype == np.float32
    np.testing.assert_array_equal(x, images[2].reshape(-1).astype(np.float32) / np.float32(255))
    assert t == labels[2]
    test = MNIST(train=False, transform=None)
    assert len(test) == 3 and np.array_equal(test[1][0], made["t10k"][0][1][np.newaxis])
    assert MNIST.labels() == {i: str(i) for i in range(10)}


def test_show_without_matplotlib(cache, monkeypatch):
    _make_mnist(cache)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'MNIST.show needs matplotlib: pip install "leafgrad\[plot\]"'):
        MNIST().show()


def test_mnist_bad_magic(cache):
    _make_mnist(cache)
    _write_gz(cache / "train-images-idx3-ubyte.gz", b"\x00\x00\x08\x01" + b"\x00" * 40)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: not an IDX file of 3-d"):
        MNIST()


def test_mnist_truncated(cache):
    _make_mnist(cache)
    payload = _idx(np.zeros((4, 28, 28), np.uint8))[:-10]
    _write_gz(cache / "train-images-idx3-ubyte.gz", payload)
    with pytest.raises(ValueError, match=r"shape \(4, 28, 28\).*truncated or corrupt"):
        MNIST()


def test_mnist_count_mismatch(cache):
    _make_mnist(cache)
    _write_gz(cache / "train-labels-idx1-ubyte.gz", _idx(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        MNIST()


def test_mnist_without_network_or_cache(cache, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(datasets, "_MNIST_URLS", (f"http://127.0.0.1:{port}/mnist/",))
    with pytest.raises(DownloadError, match=r"could not download .*put the file at .*"
                                            r"train-images-idx3-ubyte\.gz to use it offline"):
        MNIST()


# =============================================================================
# CIFAR-10 / CIFAR-100: binary versions in a tar.gz
# =============================================================================
def _add(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _make_cifar10(folder, per_batch=2):
    rng = np.random.RandomState(2)
    made = {}
    with tarfile.open(folder / "cifar-10-binary.tar.gz", "w:gz") as tar:
        _add(tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n")
        for name in [f"data_batch_{i}.bin" for i in (3, 1, 2, 5, 4)] + ["test_batch.bin"]:
            images = rng.randint(0, 256, size=(per_batch, 3, 32, 32)).astype(np.uint8)
            labels = rng.randint(0, 10, size=per_batch).astype(np.uint8)
            records = np.concatenate([labels[:, None], images.reshape(per_batch, -1)], axis=1)
            _add(tar, "cifar-10-batches-bin/" + name, records.tobytes())
            made[name] = (images, labels)
    return made


def test_cifar10_from_cache(cache):
    made = _make_cifar10(cache)
    ds = CIFAR10(train=True)
    order = [f"data_batch_{i}.bin" for i in range(1, 6)]  # batches 1..5, whatever the order in the tar
    assert ds.data.shape == (10, 3, 32, 32) and ds.data.dtype == np.uint8
    assert np.array_equal(ds.data, np.concatenate([made[n][0] for n in order]))
    assert ds.label.dtype == np.int64
    assert np.array_equal(ds.label, np.concatenate([made[n][1] for n in order]))
    x, t = ds[3]
    assert x.dtype == np.float32 and x.shape == (3, 32, 32)
    np.testing.assert_array_equal(x, (ds.data[3].astype(np.float32) - np.float32(0.5)) / np.float32(0.5))
    test = CIFAR10(train=False)
    assert len(test) == 2 and np.array_equal(test.data, made["test_batch.bin"][0])
    assert CIFAR10.labels()[0] == "airplane" and len(CIFAR10.labels()) == 10


def test_cifar10_missing_member(cache):
    with tarfile.open(cache / "cifar-10-binary.tar.gz", "w:gz") as tar:
        _add(tar, "cifar-10-batches-bin/test_batch.bin", bytes(3073))
    with pytest.raises(ValueError, match="CIFAR10: .* lacks data_batch_1.bin, .*data_batch_5.bin"):
        CIFAR10(train=True)
    assert len(CIFAR10(train=False)) == 1


def test_cifar10_corrupt_member(cache):
    with tarfile.open(cache / "cifar-10-binary.tar.gz", "w:gz") as tar:
        _add(tar, "cifar-10-batches-bin/test_batch.bin", bytes(3073 + 5))
    with pytest.raises(ValueError, match="test_batch.bin has 3078 bytes, not a multiple of the record size 3073"):
        CIFAR10(train=False)


def _make_cifar100(folder):
    rng = np.random.RandomState(3)
    made = {}
    with tarfile.open(folder / "cifar-100-binary.tar.gz", "w:gz") as tar:
        for name, n in (("train.bin", 4), ("test.bin", 3)):
            images = rng.randint(0, 256, size=(n, 3, 32, 32)).astype(np.uint8)
            coarse = rng.randint(0, 20, size=n).astype(np.uint8)
            fine = rng.randint(0, 100, size=n).astype(np.uint8)
            records = np.concatenate([coarse[:, None], fine[:, None], images.reshape(n, -1)], axis=1)
            _add(tar, "cifar-100-binary/" + name, records.tobytes())
            made[name] = (images, coarse, fine)
    return made


def test_cifar100_from_cache(cache):
    made = _make_cifar100(cache)
    images, coarse, fine = made["train.bin"]
    ds = CIFAR100()
    assert ds.label_type == "fine"
    assert np.array_equal(ds.data, images) and np.array_equal(ds.label, fine)
    ds = CIFAR100(train=False, label_type="coarse")
    assert np.array_equal(ds.data, made["test.bin"][0]) and np.array_equal(ds.label, made["test.bin"][1])
    assert ds[0][0].dtype == np.float32
    assert len(CIFAR100.labels()) == 100 and len(CIFAR100.labels("coarse")) == 20
    assert CIFAR100.labels()[0] == "apple" and CIFAR100.labels()[99] == "worm"


def test_cifar100_bad_label_type(cache):
    with pytest.raises(ValueError, match="CIFAR100: label_type must be 'fine' or 'coarse', got 'medium'"):
        CIFAR100(label_type="medium")
    with pytest.raises(ValueError, match="CIFAR100.labels"):
        CIFAR100.labels("medium")


# =============================================================================
# Shakespear and ImageNet labels
# =============================================================================
def test_shakespear_from_cache(cache):
    text = "First Citizen:\nBefore we proceed, héar me speak.\n"
    (cache / "shakespear.txt").write_text(text, encoding="utf-8")
    ds = Shakespear()
    first_seen = list(dict.fromkeys(text))
    assert list(ds.char_to_id) == first_seen
    assert ds.char_to_id == {c: i for i, c in enumerate(first_seen)}
    assert ds.id_to_char == {i: c for i, c in enumerate(first_seen)}
    ids = np.array([ds.char_to_id[c] for c in text])
    assert np.array_equal(ds.data, ids[:-1]) and np.array_equal(ds.label, ids[1:])
    assert ds.data.dtype == np.int64 and len(ds) == len(text) - 1
    assert "".join(ds.id_to_char[int(i)] for i in ds.data) == text[:-1]


def test_imagenet_labels_from_cache(cache):
    (cache / "imagenet1000_clsidx_to_labels.txt").write_text(
        "{0: 'tench, Tinca tinca',\n 1: 'goldfish, Carassius auratus',\n 999: 'toilet tissue'}")
    labels = ImageNet.labels()
    assert labels == {0: "tench, Tinca tinca", 1: "goldfish, Carassius auratus", 999: "toilet tissue"}


def test_imagenet_labels_are_never_evaluated(cache, tmp_path):
    marker = tmp_path / "pwned"
    (cache / "imagenet1000_clsidx_to_labels.txt").write_text(f"open({str(marker)!r}, 'w')")
    with pytest.raises(ValueError, match="ImageNet.labels: .* is not a dict literal"):
        ImageNet.labels()
    assert not marker.exists()


def test_imagenet_images_not_provided():
    with pytest.raises(NotImplementedError, match="ImageNet.labels"):
        ImageNet()
