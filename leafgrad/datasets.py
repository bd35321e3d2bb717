"""Datasets (DeZero's ``dezero.datasets``): toy data made from NumPy's seeded generator, and real
data sets read from files that :func:`leafgrad.download.get_file` fetches once into the cache.

Nothing here unpickles: MNIST is read from its IDX files, CIFAR-10 and CIFAR-100
from their *binary* versions (fixed-length records), the ImageNet labels with
``ast.literal_eval``.  A file placed in the cache folder by hand is used as is,
so every dataset works offline once its files are there.
"""
from __future__ import annotations

import ast
import gzip
import tarfile
from typing import Any, Callable, Optional

import numpy as np

from leafgrad.download import get_file
from leafgrad.transforms import Compose, Flatten, Normalize, ToFloat

__all__ = [
    "Dataset", "Spiral", "get_spiral", "SinCurve", "MNIST", "CIFAR10", "CIFAR100", "Shakespear",
    "ImageNet", "TinyShakespeare", "CharText",
]


def _identity(x: Any) -> Any:
    return x


class Dataset:
    """A sequence of ``(data, label)`` examples; subclasses fill ``self.data`` / ``self.label`` in ``prepare``.

    ``transform`` is applied to each example's data, ``target_transform`` to its
    label, when the example is read with ``dataset[i]``.  A dataset without
    labels (``label is None``) gives ``(data, None)``.
    """

    def __init__(self, train: bool = True, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None) -> None:
        self.train = train
        self.transform = transform if transform is not None else _identity
        self.target_transform = target_transform if target_transform is not None else _identity
        self.data: Any = None
        self.label: Any = None
        self.prepare()

    def __getitem__(self, index: int) -> tuple:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"{type(self).__name__}: index must be an int, got {type(index).__name__} "
                            "(use a DataLoader for batches)")
        if self.label is None:
            return self.transform(self.data[index]), None
        return self.transform(self.data[index]), self.target_transform(self.label[index])

    def __len__(self) -> int:
        if self.data is None:
            raise TypeError(f"{type(self).__name__}: prepare() set no data")
        return len(self.data)

    def prepare(self) -> None:
        """Load or make ``self.data`` and ``self.label``; the base class does nothing."""


# =============================================================================
# Toy datasets
# =============================================================================
def get_spiral(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Three interleaved spirals of 100 points each: ``x`` (300, 2) float32 and ``t`` (300,) int64.

    Seeds NumPy's global generator (1984 for train, 2020 for test) and draws
    from it exactly as DeZero does, so the numbers are DeZero's.
    """
    seed = 1984 if train else 2020
    np.random.seed(seed=seed)
    num_data, num_class = 100, 3
    # One randn() per point, class by class, as DeZero's nested loop draws them.
    noise = np.random.randn(num_class * num_data)
    rate = np.arange(num_data) / num_data
    x = np.empty((num_class * num_data, 2), dtype=np.float32)
    t = np.repeat(np.arange(num_class, dtype=np.int64), num_data)
    for j in range(num_class):
        theta = j * 4.0 + 4.0 * rate + noise[j * num_data:(j + 1) * num_data] * 0.2
        x[j * num_data:(j + 1) * num_data, 0] = rate * np.sin(theta)
        x[j * num_data:(j + 1) * num_data, 1] = rate * np.cos(theta)
    indices = np.random.permutation(num_data * num_class)
    return x[indices], t[indices]


class Spiral(Dataset):
    """The spiral data of :func:`get_spiral` as a Dataset."""

    def prepare(self) -> None:
        self.data, self.label = get_spiral(self.train)


class SinCurve(Dataset):
    """999 steps of a noisy sine (train) or a cosine (test): ``data[i]`` is the value, ``label[i]`` the next.

    Draws its noise (uniform in [-0.05, 0.05)) from NumPy's global generator
    for train and test alike, as DeZero does; data are float64 as in DeZero.
    """

    def prepare(self) -> None:
        num_data = 1000
        x = np.linspace(0, 2 * np.pi, num_data)
        noise = np.random.uniform(-0.05, 0.05, size=x.shape)
        y = np.sin(x) + noise if self.train else np.cos(x)
        self.data = y[:-1, np.newaxis]
        self.label = y[1:, np.newaxis]


# =============================================================================
# MNIST
# =============================================================================
_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")


def _read_idx(path: str, expect_ndim: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes (MNIST's format) into an array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    where = f"{path}: not an IDX file of {expect_ndim}-d unsigned bytes"
    if len(raw) < 4 + 4 * expect_ndim:
        raise ValueError(f"{where} (only {len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expect_ndim:
        raise ValueError(f"{where} (magic bytes {raw[:4].hex()}, expected 000008{expect_ndim:02x})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=expect_ndim, offset=4))
    offset = 4 + 4 * expect_ndim
    count = int(np.prod(shape))
    if len(raw) - offset != count:
        raise ValueError(f"{path}: the header says shape {shape} ({count} bytes) but the file holds "
                         f"{len(raw) - offset} bytes of data (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


class MNIST(Dataset):
    """MNIST handwritten digits: ``data`` (N, 1, 28, 28) uint8, ``label`` (N,) uint8.

    The default transform flattens each image to 784 float32 values in [0, 1].
    Files: ``train-images-idx3-ubyte.gz`` etc. in the cache folder.
    """

    def __init__(self, train: bool = True,
                 transform: Optional[Callable] = Compose([Flatten(), ToFloat(), Normalize(0., 255.)]),
                 target_transform: Optional[Callable] = None) -> None:
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        prefix = "train" if self.train else "t10k"
        images = f"{prefix}-images-idx3-ubyte.gz"
        labels = f"{prefix}-labels-idx1-ubyte.gz"
        data_path = get_file(_MNIST_URLS[0] + images, mirrors=[u + images for u in _MNIST_URLS[1:]])
        label_path = get_file(_MNIST_URLS[0] + labels, mirrors=[u + labels for u in _MNIST_URLS[1:]])
        data = _read_idx(data_path, 3)
        self.data = data.reshape(data.shape[0], 1, data.shape[1], data.shape[2])
        self.label = _read_idx(label_path, 1)
        if len(self.data) != len(self.label):
            raise ValueError(f"MNIST: {data_path} has {len(self.data)} images but {label_path} has "
                             f"{len(self.label)} labels")

    def show(self, row: int = 10, col: int = 10) -> None:
        """Show ``row x col`` random images with matplotlib (draws from NumPy's global generator)."""
        _show_grid(self.data, row, col, "MNIST.show")

    @staticmethod
    def labels() -> dict[int, str]:
        """Class index to name."""
        return {i: str(i) for i in range(10)}


# =============================================================================
# CIFAR-10 / CIFAR-100 (binary versions: fixed-length records, no pickle)
# =============================================================================
_CIFAR_BASE = "https://www.cs.toronto.edu/~kriz/"
_PIXELS = 3 * 32 * 32


def _read_tar_members(path: str, wanted: list[str], who: str) -> dict[str, bytes]:
    """The bytes of the tar members whose base names are in ``wanted`` (nothing is extracted to disk)."""
    found: dict[str, bytes] = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if base in wanted and member.isfile() and base not in found:
                f = tar.extractfile(member)
                assert f is not None
                found[base] = f.read()
    missing = [w for w in wanted if w not in found]
    if missing:
        raise ValueError(f"{who}: {path} lacks {', '.join(missing)} (not the binary version of the data set?)")
    return found


def _records(raw: bytes, label_bytes: int, name: str, who: str) -> tuple[np.ndarray, np.ndarray]:
    size = label_bytes + _PIXELS
    if len(raw) % size:
        raise ValueError(f"{who}: {name} has {len(raw)} bytes, not a multiple of the record size {size} "
                         f"({label_bytes} label byte(s) + 3x32x32 pixels): the file is corrupt")
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, size)
    return rec[:, label_bytes:].reshape(-1, 3, 32, 32), rec[:, :label_bytes]


def _show_grid(data: np.ndarray, row: int, col: int, who: str) -> None:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f'{who} needs matplotlib: pip install "leafgrad[plot]"') from None
    C, H, W = data.shape[1:]
    img = np.zeros((H * row, W * col, C), dtype=np.float32)
    for r in range(row):
        for c in range(col):
            i = np.random.randint(0, len(data) - 1)
            img[r * H:(r + 1) * H, c * W:(c + 1) * W] = data[i].transpose(1, 2, 0) / np.float32(255)
    plt.imshow(img[..., 0] if C == 1 else img, cmap="gray" if C == 1 else None, interpolation="nearest")
    plt.axis("off")
    plt.show()


class CIFAR10(Dataset):
    """CIFAR-10: ``data`` (N, 3, 32, 32) uint8, ``label`` (N,) int64; 50,000 train, 10,000 test images.

    Read from the binary version ``cifar-10-binary.tar.gz`` (no pickle).  The
    default transform gives float32 ``(x - 0.5) / 0.5`` of the raw 0-255 values, as DeZero's.
    """

    def __init__(self, train: bool = True,
                 transform: Optional[Callable] = Compose([ToFloat(), Normalize(mean=0.5, std=0.5)]),
                 target_transform: Optional[Callable] = None) -> None:
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        path = get_file(_CIFAR_BASE + "cifar-10-binary.tar.gz")
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if self.train else ["test_batch.bin"]
        raws = _read_tar_members(path, names, type(self).__name__)
        parts = [_records(raws.pop(n), 1, n, type(self).__name__) for n in names]
        self.data = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        self.label = np.concatenate([p[1][:, 0] for p in parts]).astype(np.int64)

    def show(self, row: int = 10, col: int = 10) -> None:
        """Show ``row x col`` random images with matplotlib (draws from NumPy's global generator)."""
        _show_grid(self.data, row, col, f"{type(self).__name__}.show")

    @staticmethod
    def labels() -> dict[int, str]:
        """Class index to name."""
        return dict(enumerate(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                               "ship", "truck"]))


_CIFAR100_COARSE = [
    "aquatic mammals", "fish", "flowers", "food containers", "fruit and vegetables",
    "household electrical device", "household furniture", "insects", "large carnivores",
    "large man-made outdoor things", "large natural outdoor scenes", "large omnivores and herbivores",
    "medium-sized mammals", "non-insect invertebrates", "people", "reptiles", "small mammals", "trees",
    "vehicles 1", "vehicles 2",
]
_CIFAR100_FINE = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle",
    "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
    "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon",
    "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail",
    "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
]


class CIFAR100(CIFAR10):
    """CIFAR-100: like :class:`CIFAR10` with 100 ``'fine'`` or 20 ``'coarse'`` classes (``label_type``).

    Read from the binary version ``cifar-100-binary.tar.gz`` (no pickle).
    """

    def __init__(self, train: bool = True,
                 transform: Optional[Callable] = Compose([ToFloat(), Normalize(mean=0.5, std=0.5)]),
                 target_transform: Optional[Callable] = None, label_type: str = "fine") -> None:
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"CIFAR100: label_type must be 'fine' or 'coarse', got {label_type!r}")
        self.label_type = label_type
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        path = get_file(_CIFAR_BASE + "cifar-100-binary.tar.gz")
        name = "train.bin" if self.train else "test.bin"
        raw = _read_tar_members(path, [name], "CIFAR100")[name]
        self.data, labels = _records(raw, 2, name, "CIFAR100")
        # Each record starts with the coarse label byte, then the fine label byte.
        self.label = labels[:, 1 if self.label_type == "fine" else 0].astype(np.int64)

    @staticmethod
    def labels(label_type: str = "fine") -> dict[int, str]:
        """Class index to name, for ``'fine'`` (100) or ``'coarse'`` (20) labels."""
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"CIFAR100.labels: label_type must be 'fine' or 'coarse', got {label_type!r}")
        return dict(enumerate(_CIFAR100_FINE if label_type == "fine" else _CIFAR100_COARSE))


# =============================================================================
# Big datasets
# =============================================================================
class ImageNet(Dataset):
    """ImageNet: only the class names are available, via ``ImageNet.labels()``."""

    _LABELS_URL = ("https://gist.githubusercontent.com/yrevar/942d3a0ac09ec9e5eb3a/raw/"
                   "238f720ff059c1f82f368259d1ca4ffa5dd8f9f5/imagenet1000_clsidx_to_labels.txt")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("ImageNet: the images are not provided; use ImageNet.labels() for "
                                  "the 1000 class names")

    @staticmethod
    def labels() -> dict[int, str]:
        """The 1000 ImageNet class names by index (downloaded once; parsed safely, never ``eval``-ed)."""
        path = get_file(ImageNet._LABELS_URL)
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
        try:
            labels = ast.literal_eval(text)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"ImageNet.labels: {path} is not a dict literal of index: name ({e})") from None
        if not isinstance(labels, dict):
            raise ValueError(f"ImageNet.labels: {path} holds a {type(labels).__name__}, not a dict")
        return labels


# =============================================================================
# Text
# =============================================================================
class Shakespear(Dataset):
    """Tiny Shakespeare, one character per step: ``data[i]`` is a character id, ``label[i]`` the next one.

    ``char_to_id`` / ``id_to_char`` number the characters in order of first appearance.
    """

    def prepare(self) -> None:
        url = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
        path = get_file(url, "shakespear.txt")
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
        # dict.fromkeys keeps first-appearance order, the order DeZero numbers characters in.
        char_to_id = {ch: i for i, ch in enumerate(dict.fromkeys(text))}
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        lookup = np.zeros(max(map(ord, char_to_id), default=0) + 1, dtype=np.int64)
        lookup[[ord(ch) for ch in char_to_id]] = list(char_to_id.values())
        indices = lookup[codes]
        self.data = indices[:-1]
        self.label = indices[1:]
        self.char_to_id = char_to_id
        self.id_to_char = {i: ch for ch, i in char_to_id.items()}


# Character-level text for transformers (nanoGPT's vocabulary and split): see leafgrad/text.py.
from leafgrad.text import CharText, TinyShakespeare  # noqa: E402
