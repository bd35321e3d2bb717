"""Data transforms applied by a ``Dataset`` to each example (DeZero's ``dezero.transforms``).

Array transforms (``Normalize``, ``Flatten``, ``AsType``, ``ToInt``, and
``RandomHorizontalFlip`` on arrays) need only NumPy.  Image transforms
(``Convert``, ``Resize``, ``CenterCrop``, ``ToPIL``, and ``ToArray`` on an
image) need Pillow, an optional extra: ``pip install "leafgrad[image]"``.
Pillow is imported when such a transform is created, never at import time.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from leafgrad.utils import pair

__all__ = [
    "Compose", "Convert", "Resize", "CenterCrop", "ToArray", "ToPIL", "RandomHorizontalFlip",
    "Normalize", "Flatten", "AsType", "ToFloat", "ToInt",
]

#: ``PIL.Image.BILINEAR``, spelled as its value so that Pillow is not needed to build a signature.
BILINEAR = 2


def _pil_image(who: str):
    """The ``PIL.Image`` module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"{who} needs Pillow, which is not installed: "
                          f'pip install "leafgrad[image]" (or pip install Pillow)') from None
    return Image


class Compose:
    """Apply several transforms in turn: ``Compose([t1, t2])(x) == t2(t1(x))``."""

    def __init__(self, transforms: Optional[Sequence[Callable]] = None) -> None:
        self.transforms = list(transforms) if transforms is not None else []

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return "Compose([{}])".format(", ".join(repr(t) for t in self.transforms))


# =============================================================================
# Transforms of PIL images
# =============================================================================
class Convert:
    """Convert a PIL image to ``mode`` (any Pillow mode, or ``'BGR'``: RGB with channels reversed)."""

    def __init__(self, mode: str = "RGB") -> None:
        self._Image = _pil_image("Convert")
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        if self.mode == "BGR":
            r, g, b = img.convert("RGB").split()
            return self._Image.merge("RGB", (b, g, r))
        return img.convert(self.mode)


class Resize:
    """Resize a PIL image to ``size`` (an int ``n`` for ``(n, n)``, or ``(width, height)``).

    ``mode`` is a Pillow resampling filter (default bilinear).
    """

    def __init__(self, size: Union[int, tuple], mode: int = BILINEAR) -> None:
        _pil_image("Resize")
        self.size = pair(size)
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        return img.resize(self.size, self.mode)


class CenterCrop:
    """Crop the centre ``size`` (an int ``n`` for ``(n, n)``, or ``(width, height)``) of a PIL image.

    When the margin is odd, the extra pixel is cut from the right / bottom.
    """

    def __init__(self, size: Union[int, tuple]) -> None:
        _pil_image("CenterCrop")
        self.size = pair(size)

    def __call__(self, img: Any) -> Any:
        W, H = img.size
        OW, OH = self.size
        if OW > W or OH > H:
            raise ValueError(f"CenterCrop: crop size {(OW, OH)} is larger than the image size {(W, H)}")
        left = (W - OW) // 2
        up = (H - OH) // 2
        return img.crop((left, up, left + OW, up + OH))


class ToArray:
    """Convert a PIL image to a ``(C, H, W)`` array of ``dtype``; an ndarray passes through unchanged.

    A single-channel image gives ``C == 1``.
    """

    def __init__(self, dtype: Any = np.float32) -> None:
        self.dtype = dtype

    def __call__(self, img: Any) -> np.ndarray:
        if isinstance(img, np.ndarray):
            return img
        Image = _pil_image("ToArray")
        if not isinstance(img, Image.Image):
            raise TypeError(f"ToArray: expected a PIL image or an ndarray, got {type(img).__name__}")
        array = np.asarray(img)
        array = array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)
        return array.astype(self.dtype)


class ToPIL:
    """Convert a ``(C, H, W)`` array (``C`` = 1, 3 or 4; uint8 for 3 or 4 channels) to a PIL image."""

    def __init__(self) -> None:
        self._Image = _pil_image("ToPIL")

    def __call__(self, array: np.ndarray) -> Any:
        if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[0] not in (1, 3, 4):
            shape = getattr(array, "shape", None)
            raise ValueError(f"ToPIL: expected an array of shape (C, H, W) with C in (1, 3, 4), "
                             f"got shape {shape}")
        if array.shape[0] == 1:
            return self._Image.fromarray(array[0])
        if array.dtype != np.uint8:
            raise TypeError(f"ToPIL: a {array.shape[0]}-channel image must be uint8, got {array.dtype}; "
                            "use AsType(np.uint8) first")
        return self._Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)))


class RandomHorizontalFlip:
    """Flip left-right with probability ``p``; works on PIL images and on ``(..., H, W)`` arrays.

    Draws one ``np.random.rand()`` per call from NumPy's global generator.
    """

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, img: Any) -> Any:
        if np.random.rand() >= self.p:
            return img
        if isinstance(img, np.ndarray):
            return img[..., ::-1].copy()
        Image = _pil_image("RandomHorizontalFlip")
        flip = getattr(Image, "Transpose", Image).FLIP_LEFT_RIGHT
        return img.transpose(flip)


# =============================================================================
# Transforms of NumPy arrays
# =============================================================================
class Normalize:
    """``(array - mean) / std``, with ``mean`` and ``std`` scalars or one value per channel (axis 0).

    A floating array keeps its dtype (float32 stays float32); an integer array gives float32.
    """

    def __init__(self, mean: Any = 0, std: Any = 1) -> None:
        self.mean = mean
        self.std = std

    @staticmethod
    def _stat(value: Any, array: np.ndarray, dtype: Any, what: str) -> np.ndarray:
        v = np.asarray(value, dtype=dtype)
        if v.ndim == 0 or v.size == 1:
            return v.reshape(())
        if v.ndim != 1:
            raise ValueError(f"Normalize: {what} must be a scalar or a sequence, got shape {v.shape}")
        if array.ndim == 0 or array.shape[0] != v.shape[0]:
            raise ValueError(f"Normalize: {what} has {v.shape[0]} values but the array has shape "
                             f"{array.shape} (one value per channel on axis 0 expected)")
        return v.reshape((-1,) + (1,) * (array.ndim - 1))

    def __call__(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        dtype = array.dtype if array.dtype.kind == "f" else np.dtype(np.float32)
        mean = self._stat(self.mean, array, dtype, "mean")
        std = self._stat(self.std, array, dtype, "std")
        out = np.subtract(array, mean, dtype=dtype)
        out /= std
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean!r}, std={self.std!r})"


class Flatten:
    """Flatten an array to one dimension (a copy)."""

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return array.flatten()


class AsType:
    """Cast an array to ``dtype`` (a copy)."""

    def __init__(self, dtype: Any = np.float32) -> None:
        self.dtype = dtype

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return array.astype(self.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({np.dtype(self.dtype).name})"


#: DeZero's alias: ``ToFloat()`` casts to float32.
ToFloat = AsType


class ToInt(AsType):
    """Cast an array to an integer ``dtype`` (default int64)."""

    def __init__(self, dtype: Any = np.int64) -> None:
        super().__init__(dtype)
