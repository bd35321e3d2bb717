"""Transforms: NumPy references for the array transforms, Pillow for the image ones (skipped without it)."""
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from leafgrad import transforms as T


# =============================================================================
# Array transforms
# =============================================================================
def test_compose_applies_in_order():
    f = T.Compose([lambda x: x + 1, lambda x: x * 10])
    assert f(1) == 20
    assert T.Compose()(5) == 5 and T.Compose([])(5) == 5
    assert "Compose" in repr(T.Compose([T.Flatten()]))


def test_normalize_scalar_keeps_float32():
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    y = T.Normalize(0.5, 0.5)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, (x - np.float32(0.5)) / np.float32(0.5))
    y = T.Normalize(np.float64(3.0), np.float64(2.0))(x)  # NumPy float64 scalars must not promote
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, (x - 3) / 2, rtol=1e-6)


def test_normalize_defaults_and_float64():
    x = np.linspace(-1, 1, 5)
    y = T.Normalize()(x)
    assert y.dtype == np.float64 and np.array_equal(y, x) and y is not x


def test_normalize_integer_input_gives_float32():
    x = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    y = T.Normalize(0.0, 255.0)(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x / 255.0, rtol=1e-6)


def test_normalize_per_channel():
    x = np.random.rand(3, 4, 5).astype(np.float32)
    mean, std = [0.1, 0.2, 0.3], (1.0, 2.0, 4.0)
    y = T.Normalize(mean, std)(x)
    ref = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-6)
    y1 = T.Normalize([0.5], [2.0])(x)  # a single value acts as a scalar
    np.testing.assert_allclose(y1, (x - 0.5) / 2.0, rtol=1e-6)


def test_normalize_channel_mismatch():
    with pytest.raises(ValueError, match=r"Normalize: mean has 2 values but the array has shape \(3, 4\)"):
        T.Normalize([0.1, 0.2], 1.0)(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="Normalize: std must be a scalar or a sequence"):
        T.Normalize(0.0, np.ones((2, 2)))(np.zeros((2, 2), np.float32))


@settings(max_examples=25, deadline=None)
@given(x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
                    elements=st.floats(-100, 100, width=32)),
       mean=st.floats(-10, 10), std=st.floats(0.1, 10))
def test_normalize_property(x, mean, std):
    y = T.Normalize(mean, std)(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, (x.astype(np.float64) - mean) / std, rtol=1e-4, atol=1e-4)
    channels = x.shape[0]
    m = np.linspace(-1, 1, channels)
    y = T.Normalize(m, std)(x)
    assert y.dtype == np.float32
    ref = (x.astype(np.float64) - m.reshape((-1,) + (1,) * (x.ndim - 1))) / std
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_flatten_astype_toint():
    x = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    f = T.Flatten()(x)
    assert f.shape == (6,) and not np.shares_memory(f, x)
    y = T.AsType()(x)
    assert y.dtype == np.float32 and np.array_equal(y, x)
    assert T.ToFloat is T.AsType
    assert T.AsType(np.float64)(x).dtype == np.float64
    z = T.ToInt()(np.array([1.7, -2.2]))
    assert z.dtype == np.int64 and z.tolist() == [1, -2]
    assert T.ToInt(np.int8)(np.array([3.0])).dtype == np.int8
    assert repr(T.AsType()) == "AsType(float32)"


def test_random_horizontal_flip_array():
    x = np.arange(12).reshape(1, 3, 4)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(x), x[..., ::-1])
    assert T.RandomHorizontalFlip(0.0)(x) is x
    np.random.seed(3)
    flips = [T.RandomHorizontalFlip()(x)[0, 0, 0] == 3 for _ in range(20)]
    np.random.seed(3)
    assert flips == [r < 0.5 for r in np.random.rand(20)]  # one rand() per call
    with pytest.raises(ValueError, match="RandomHorizontalFlip: p must be in"):
        T.RandomHorizontalFlip(1.5)


def test_toarray_passes_arrays_through_without_pillow(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    x = np.zeros((3, 2, 2), np.uint8)
    assert T.ToArray()(x) is x


# =============================================================================
# Pillow missing: a clear ImportError
# =============================================================================
@pytest.mark.parametrize("make", [lambda: T.Resize(4), lambda: T.CenterCrop(2), lambda: T.Convert(),
                                  lambda: T.ToPIL()])
def test_image_transforms_without_pillow(monkeypatch, make):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'needs Pillow.*pip install "leafgrad\[image\]"'):
        make()


def test_toarray_of_non_array_without_pillow(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="ToArray needs Pillow"):
        T.ToArray()([1, 2, 3])


# =============================================================================
# Image transforms (Pillow)
# =============================================================================
@pytest.fixture
def Image():
    return pytest.importorskip("PIL.Image")


def _rgb(h, w):
    return (np.arange(h * w * 3) % 251).astype(np.uint8).reshape(h, w, 3)


def test_convert(Image):
    arr = _rgb(4, 5)
    img = Image.fromarray(arr)
    assert np.array_equal(np.asarray(T.Convert("RGB")(img)), arr)
    assert np.array_equal(np.asarray(T.Convert("BGR")(img)), arr[..., ::-1])
    assert T.Convert("L")(img).mode == "L"


def test_resize(Image):
    img = Image.fromarray(_rgb(6, 8))
    out = T.Resize(4)(img)
    assert out.size == (4, 4)
    assert T.Resize((5, 3))(img).size == (5, 3)
    ref = img.resize((5, 3), Image.BILINEAR)
    assert np.array_equal(np.asarray(T.Resize((5, 3))(img)), np.asarray(ref))


@pytest.mark.parametrize("size,crop", [((7, 9), (4, 4)), ((8, 8), (3, 5)), ((5, 6), (5, 6))])
def test_center_crop_matches_dezero_box(Image, size, crop):
    W, H = size
    arr = _rgb(H, W)
    out = T.CenterCrop(crop)(Image.fromarray(arr))
    OW, OH = crop
    left, up = (W - OW) // 2, (H - OH) // 2
    right = W - ((W - OW) // 2 + (W - OW) % 2)
    bottom = H - ((H - OH) // 2 + (H - OH) % 2)
    assert out.size == crop
    assert np.array_equal(np.asarray(out), arr[up:bottom, left:right])


def test_center_crop_too_large(Image):
    with pytest.raises(ValueError, match=r"CenterCrop: crop size \(5, 5\) is larger than the image size \(4, 4\)"):
        T.CenterCrop(5)(Image.fromarray(_rgb(4, 4)))


def test_toarray_and_topil_roundtrip(Image):
    arr = _rgb(3, 4)
    img = Image.fromarray(arr)
    chw = T.ToArray()(img)
    assert chw.shape == (3, 3, 4) and chw.dtype == np.float32
    assert np.array_equal(chw, arr.transpose(2, 0, 1))
    assert T.ToArray(np.uint8)(img).dtype == np.uint8
    back = T.ToPIL()(chw.astype(np.uint8))
    assert np.array_equal(np.asarray(back), arr)
    gray = Image.fromarray(arr[..., 0])
    g = T.ToArray()(gray)
    assert g.shape == (1, 3, 4)
    assert np.array_equal(np.asarray(T.ToPIL()(g.astype(np.uint8))), arr[..., 0])


def test_toarray_topil_errors(Image):
    with pytest.raises(TypeError, match="ToArray: expected a PIL image or an ndarray, got list"):
        T.ToArray()([1])
    with pytest.raises(ValueError, match=r"ToPIL: expected an array of shape \(C, H, W\).*got shape \(4, 4\)"):
        T.ToPIL()(np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match="ToPIL: a 3-channel image must be uint8, got float32"):
        T.ToPIL()(np.zeros((3, 2, 2), np.float32))


def test_random_horizontal_flip_image(Image):
    arr = _rgb(2, 3)
    out = T.RandomHorizontalFlip(1.0)(Image.fromarray(arr))
    assert np.array_equal(np.asarray(out), arr[:, ::-1])


def test_image_pipeline(Image):
    f = T.Compose([T.Convert("RGB"), T.Resize(8), T.CenterCrop(6), T.ToArray(), T.Normalize(127.5, 127.5)])
    y = f(Image.fromarray(_rgb(10, 12)))
    assert y.shape == (3, 6, 6) and y.dtype == np.float32
    assert -1.0 <= y.min() and y.max() <= 1.0
