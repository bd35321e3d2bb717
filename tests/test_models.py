"""Models: MLP, Sequential, plot, and the classic CNNs built and run without network access."""
import math

import numpy as np
import pytest

import leafgrad.functions as F
import leafgrad.layers as L
import leafgrad.models as M
from leafgrad import test_mode, utils


@pytest.fixture
def no_network(monkeypatch):
    """Make any download attempt fail loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"get_file called with {args}: building a model must not download")

    monkeypatch.setattr(utils, "get_file", refuse, raising=False)


@pytest.fixture
def fast_init(monkeypatch):
    """Replace NumPy's ``randn`` by a cheap deterministic fill: drawing the tens of millions of
    weights of VGG16 / ResNet50 takes seconds, and these tests are about architecture, not values."""
    def randn(*shape):
        a = np.empty(shape, np.float32)
        a.fill(0.01)
        return a

    monkeypatch.setattr(np.random, "randn", randn)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# =============================================================================
# MLP / Sequential / Model
# =============================================================================
def test_mlp_draws_like_dezero_and_matches_numpy():
    x = np.random.randn(4, 2).astype(np.float32)
    np.random.seed(0)
    model = M.MLP((10, 3))
    y = model(x)
    np.random.seed(0)
    W0 = np.random.randn(2, 10).astype(np.float32) * np.float32(math.sqrt(1 / 2))
    W1 = np.random.randn(10, 3).astype(np.float32) * np.float32(math.sqrt(1 / 10))
    np.testing.assert_array_equal(model.l0.W.data, W0)
    np.testing.assert_array_equal(model.l1.W.data, W1)
    np.testing.assert_allclose(y.data, sigmoid(x @ W0) @ W1, rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32
    assert [k for k, _ in model.named_params()] == ["l0/W", "l0/b", "l1/W", "l1/b"]
    assert len(model.layers) == 2


def test_mlp_activation_and_depth():
    model = M.MLP((5, 5, 2), activation=F.relu)
    y = model(np.random.randn(3, 4).astype(np.float32))
    assert y.shape == (3, 2) and len(list(model.params())) == 6


def test_sequential_with_layers_and_functions():
    model = M.Sequential(L.Linear(5), F.relu, L.Linear(2))
    y = model(np.random.randn(3, 4).astype(np.float32))
    assert y.shape == (3, 2)
    assert model._params == {"l0", "l2"}  # a plain function has no parameters
    assert len(list(model.params())) == 4


def test_plot_calls_plot_dot_graph(monkeypatch, tmp_path):
    calls = {}

    def fake(y, verbose=True, to_file="graph.png"):
        calls.update(y=y, verbose=verbose, to_file=to_file)
        return "drawn"

    monkeypatch.setattr(utils, "plot_dot_graph", fake, raising=False)
    model = M.MLP((3, 2))
    out = model.plot(np.ones((1, 2), np.float32), to_file=str(tmp_path / "m.png"))
    assert out == "drawn" and calls["verbose"] is True and calls["to_file"].endswith("m.png")
    assert calls["y"].shape == (1, 2)


def test_user_model_in_book_style():
    class TwoLayerNet(M.Model):
        def __init__(self, hidden_size, out_size):
            super().__init__()
            self.l1 = L.Linear(hidden_size)
            self.l2 = L.Linear(out_size)

        def forward(self, x):
            return self.l2(F.sigmoid(self.l1(x)))

    model = TwoLayerNet(10, 1)
    assert model(np.ones((2, 3), np.float32)).shape == (2, 1)


# =============================================================================
# CNNs: built and run without network access
# =============================================================================
def test_vgg16_forward_small_input(no_network, fast_init):
    np.random.seed(0)
    model = M.VGG16()
    x = np.random.randn(1, 3, 32, 32).astype(np.float32)
    with test_mode():
        y = model(x)
    assert y.shape == (1, 1000) and y.dtype == np.float32
    assert model.fc6.W.shape == (512, 4096) and model.conv5_3.W.shape == (512, 512, 3, 3)
    assert len(list(model.params())) == 32


def test_resnet50_forward_small_input(no_network, fast_init):
    np.random.seed(0)
    model = M.ResNet50()
    x = np.random.rand(2, 3, 32, 32).astype(np.float32)
    y = model(x)  # training mode: batch statistics
    assert y.shape == (2, 1000) and y.dtype == np.float32
    assert model.conv1.W.shape == (64, 3, 7, 7)
    assert model.res5.a.conv4.W.shape == (2048, 1024, 1, 1)
    assert model.res2.b2.conv3.W.shape == (256, 64, 1, 1)
    assert not np.all(model.bn1.avg_mean.data == 0)  # running statistics were updated
    n = sum(p.data.size for p in model.params() if p.data is not None)
    assert 25_000_000 < n < 26_000_000  # 25.6 M with the BN statistics


def test_resnet_variants_build_without_allocating(no_network):
    r101, r152 = M.ResNet101(), M.ResNet152()
    assert [len(getattr(r101, f"res{i}")._forward) for i in range(2, 6)] == [3, 4, 23, 3]
    assert [len(getattr(r152, f"res{i}")._forward) for i in range(2, 6)] == [3, 8, 36, 3]
    assert isinstance(M.ResNet(50), M.ResNet)
    names = [k for k, _ in r152.named_params()]
    assert "res4/b35/conv3/W" in names and "fc6/b" in names
    with pytest.raises(ValueError, match="50, 101, or 152"):
        M.ResNet(18)


def test_squeezenet_forward(no_network):
    model = M.SqueezeNet()
    x = np.random.randn(1, 3, 64, 64).astype(np.float32)
    y = model(x)
    assert y.shape == (1, 1000) and y.dtype == np.float32
    n = sum(p.data.size for p in model.params())
    assert 1_200_000 < n < 1_300_000
    F.sum(y).backward()
    assert model.fire9.expand3x3.W.grad is not None
    with pytest.raises(NotImplementedError, match="pretrained"):
        M.SqueezeNet(pretrained=True)


def test_vgg16_preprocess():
    Image = pytest.importorskip("PIL.Image")
    img = Image.fromarray(np.full((10, 12, 3), 200, np.uint8))
    x = M.VGG16.preprocess(img, size=(8, 8))
    assert x.shape == (3, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [200 - 103.939, 200 - 116.779, 200 - 123.68], rtol=1e-5)


# =============================================================================
# Pretrained weights: downloaded through utils.get_file, only when asked
# =============================================================================
def fake_weights(tmp_path, model_factory, skip=()):
    """A weights file with every parameter name of the model (small arrays) and a fake get_file."""
    from leafgrad.serialization import _param_specs
    specs = _param_specs(model_factory())  # a weight not created yet: the shape its layer needs, 1 where free
    arrays = {k: np.full(tuple(1 if n is None else n for n in spec.shape or (2, 2)), i, np.float32)
              for i, (k, p, spec) in enumerate(specs) if k not in skip}
    path = tmp_path / "weights.npz"
    np.savez(path, **arrays)
    urls = []

    def get_file(url, file_name=None):
        urls.append(url)
        return str(path)

    return arrays, urls, get_file


def test_vgg16_pretrained_uses_get_file(tmp_path, monkeypatch):
    arrays, urls, get_file = fake_weights(tmp_path, M.VGG16)
    monkeypatch.setattr(utils, "get_file", get_file, raising=False)
    model = M.VGG16(pretrained=True)
    assert urls == [M.VGG16.WEIGHTS_PATH]
    params = dict(model.named_params())
    for k, a in arrays.items():
        np.testing.assert_array_equal(params[k].data, a)


def test_resnet_pretrained_warns_about_missing_entries(tmp_path, monkeypatch):
    arrays, urls, get_file = fake_weights(tmp_path, M.ResNet50, skip=("conv1/b",))
    monkeypatch.setattr(utils, "get_file", get_file, raising=False)
    with pytest.warns(UserWarning, match="conv1/b"):
        model = M.ResNet50(pretrained=True)
    assert urls == ["https://github.com/koki0702/dezero-models/releases/download/v0.1/resnet50.npz"]
    np.testing.assert_array_equal(model.fc6.W.data, arrays["fc6/W"])


def test_pretrained_file_that_matches_nothing_is_an_error(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    np.savez(path, something=np.zeros(3, np.float32))
    monkeypatch.setattr(utils, "get_file", lambda url, file_name=None: str(path), raising=False)
    from leafgrad.serialization import SerializationError
    with pytest.raises(SerializationError, match="matches none"):
        M.VGG16(pretrained=True)
