"""Models: ``Model`` (a ``Layer`` that can draw itself), ``Sequential``, ``MLP``, ``SmallCNN``, the classic CNNs.

``VGG16``, ``ResNet50/101/152`` and ``SqueezeNet`` build and run without any
network access; their weights are created lazily at the first forward pass.
``pretrained=True`` downloads DeZero's published weights once (through
``leafgrad.utils.get_file``, which caches them) and loads them.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np

import leafgrad.functions as F
import leafgrad.layers as L
from leafgrad.config import no_grad, test_mode
from leafgrad.core import Parameter, Variable
from leafgrad.layers import Layer

__all__ = ["Model", "Sequential", "MLP", "SmallCNN", "GPT", "VGG16", "ResNet", "ResNet50", "ResNet101", "ResNet152",
           "SqueezeNet"]


# =============================================================================
# Model / Sequential / MLP
# =============================================================================
class Model(Layer):
    """A ``Layer`` meant to be trained as a whole; ``plot`` draws its computational graph."""

    def plot(self, *inputs: Any, to_file: str = "model.png") -> Any:
        """Run ``forward(*inputs)`` and draw the graph of the result into ``to_file`` (needs Graphviz)."""
        from leafgrad.utils import plot_dot_graph
        y = self.forward(*inputs)
        return plot_dot_graph(y, verbose=True, to_file=to_file)


class Sequential(Model):
    """Layers (or any callables) applied one after the other; layers are registered as ``l0, l1, ...``."""

    def __init__(self, *layers: Callable) -> None:
        super().__init__()
        self.layers = []
        for i, layer in enumerate(layers):
            setattr(self, "l" + str(i), layer)
            self.layers.append(layer)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x


class MLP(Model):
    """A multi-layer perceptron: ``Linear`` layers of the given output sizes, ``activation`` between them."""

    def __init__(self, fc_output_sizes: Sequence[int], activation: Callable = F.sigmoid) -> None:
        super().__init__()
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(fc_output_sizes):
            layer = L.Linear(out_size)
            setattr(self, "l" + str(i), layer)
            self.layers.append(layer)

    def forward(self, x: Any) -> Variable:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class SmallCNN(Model):
    """A small CNN for small images: conv3x3(16)-relu-pool2, conv3x3(32)-relu-pool2, linear-relu, linear.

    ``SmallCNN(hidden_size=100, out_size=10)``: ``hidden_size`` units in the
    fully connected layer, ``out_size`` outputs (one per class).  Takes
    ``(N, C, H, W)`` images; every size is set at the first forward pass.
    ``leafgrad train --model cnn`` trains it.
    """

    def __init__(self, hidden_size: int = 100, out_size: int = 10) -> None:
        super().__init__()
        self.conv1 = L.Conv2d(16, kernel_size=3, stride=1, pad=1)
        self.conv2 = L.Conv2d(32, kernel_size=3, stride=1, pad=1)
        self.fc1 = L.Linear(hidden_size)
        self.fc2 = L.Linear(out_size)

    def forward(self, x: Any) -> Variable:
        x = F.pooling(F.relu(self.conv1(x)), 2, 2)
        x = F.pooling(F.relu(self.conv2(x)), 2, 2)
        x = F.reshape(x, (x.shape[0], -1))
        return self.fc2(F.relu(self.fc1(x)))


# =============================================================================
# Pretrained weights
# =============================================================================
# =============================================================================
# GPT
# =============================================================================
class GPT(Model):
    """A GPT language model as nanoGPT's: token and position embeddings, ``n_layer`` pre-LN
    ``TransformerBlock``s, a final ``LayerNorm``, and an output layer tied to the token embedding.

    ``GPT(vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False,
    seed=None)``.  ``model(idx)`` takes integer ids ``(B, T)`` with ``T <= block_size`` and returns
    logits ``(B, T, vocab_size)``.  Weights are drawn as nanoGPT draws them: ``N(0, 0.02^2)``, the
    residual projections ``N(0, (0.02 / sqrt(2 n_layer))^2)``, biases zero, LayerNorm gains one;
    from ``np.random.RandomState(seed)``, or NumPy's global generator when ``seed`` is None.
    Every matrix and embedding is a Parameter of two axes; biases and gains have one.
    ``dropout`` (training only) applies, as nanoGPT's, after the embeddings, to the attention
    probabilities, after the attention's output projection and after the MLP.
    """

    def __init__(self, vocab_size: int, block_size: int = 64, n_layer: int = 4, n_head: int = 4,
                 n_embd: int = 128, dropout: float = 0.0, bias: bool = False,
                 seed: Optional[int] = None) -> None:
        super().__init__()
        for label, value in (("vocab_size", vocab_size), ("block_size", block_size), ("n_layer", n_layer),
                             ("n_head", n_head), ("n_embd", n_embd)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"GPT: {label} must be a positive int, got {value!r}")
        if n_embd % n_head:
            raise ValueError(f"GPT: n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GPT: dropout must be in [0, 1), got {dropout}")
        self.vocab_size, self.block_size = int(vocab_size), int(block_size)
        self.n_layer, self.n_head, self.n_embd = int(n_layer), int(n_head), int(n_embd)
        self.dropout, self.bias = float(dropout), bool(bias)
        rng = np.random if seed is None else np.random.RandomState(seed)
        std, proj_std = 0.02, 0.02 / math.sqrt(2 * n_layer)
        self.wte = _normal_embedding(vocab_size, n_embd, std, rng)
        self.wpe = _normal_embedding(block_size, n_embd, std, rng)
        self.blocks = []
        for i in range(n_layer):
            block = L.TransformerBlock(n_embd, n_head, dropout, bias, init_std=std, proj_std=proj_std, rng=rng)
            setattr(self, "h" + str(i), block)
            self.blocks.append(block)
        self.ln_f = L.LayerNorm(n_embd, bias=bias)

    def forward(self, idx: Any, caches: Optional[Sequence[L.KVCache]] = None) -> Variable:
        """Logits ``(B, T, vocab_size)`` for ids ``(B, T)``; with ``caches`` (one ``KVCache`` per block),
        ``idx`` continues the cached positions."""
        idx = idx.data if isinstance(idx, Variable) else np.asarray(idx)
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ValueError(f"GPT: expected integer ids of shape (B, T), got {idx.dtype} of shape {idx.shape}")
        T = idx.shape[1]
        start = len(caches[0]) if caches else 0
        if T == 0 or start + T > self.block_size:
            raise ValueError(f"GPT: cannot run a sequence of {start + T} positions: the block size (the "
                             f"longest context) is {self.block_size}")
        x = F.embed_id(idx, self.wte.W) + F.get_item(self.wpe.W, slice(start, start + T))
        if self.dropout:
            x = F.dropout(x, self.dropout)
        for i, block in enumerate(self.blocks):
            x = block(x, caches[i] if caches else None)
        x = self.ln_f(x)
        return F.linear(x, F.transpose(self.wte.W))  # the output layer: the token embedding, transposed

    def generate(self, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: Optional[int] = None,
                 rng: Any = None, use_cache: bool = True) -> np.ndarray:
        """Continue the ids ``idx`` ``(B, T)`` by ``max_new_tokens`` sampled tokens; returns ``(B, T + N)``.

        Each token is drawn from ``softmax(logits / temperature)`` (restricted to the ``top_k`` most
        likely when given) with ``rng`` (a ``np.random.Generator`` or ``RandomState``; NumPy's global
        generator when None), under ``no_grad()`` and ``test_mode()``.  The context is the last
        ``block_size`` tokens at most; when it would grow past ``block_size`` it restarts from the
        last ``block_size // 2`` (with or without the cache, the same rule, so both sample the same
        tokens).  With ``use_cache`` a key/value cache makes each new token cost one position,
        plus a recomputation of ``block_size // 2`` positions each time the context restarts.
        """
        idx = np.array(idx.data if isinstance(idx, Variable) else idx)
        if idx.ndim != 2 or idx.dtype.kind not in "iu" or idx.shape[1] == 0:
            raise ValueError(f"GPT.generate: expected integer ids of shape (B, T) with T >= 1, got "
                             f"{idx.dtype} of shape {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(f"GPT.generate: ids must be in [0, {self.vocab_size}), got "
                             f"{idx.min()}..{idx.max()}")
        if temperature <= 0:
            raise ValueError(f"GPT.generate: temperature must be positive, got {temperature}")
        if top_k is not None and not 1 <= top_k:
            raise ValueError(f"GPT.generate: top_k must be at least 1, got {top_k}")
        rng = np.random if rng is None else rng
        block = self.block_size
        out = np.empty((idx.shape[0], idx.shape[1] + max_new_tokens), dtype=np.int64)
        out[:, :idx.shape[1]] = idx
        n = idx.shape[1]
        start = max(0, n - block)   # where the context begins
        caches = [L.KVCache() for _ in self.blocks] if use_cache else None
        with no_grad(), test_mode():
            for _ in range(max_new_tokens):
                if n - start > block:
                    start = n - max(1, block // 2)
                if caches is not None:
                    cached = len(caches[0])
                    if cached == 0 or start + cached != n - 1:  # (re)start: the whole context at once
                        for c in caches:
                            c.reset()
                        logits = self.forward(out[:, start:n], caches)
                    else:                                      # one new position
                        logits = self.forward(out[:, n - 1:n], caches)
                else:
                    logits = self.forward(out[:, start:n])
                out[:, n] = _sample(logits.data[:, -1, :], temperature, top_k, rng)
                n += 1
        return out


def _normal_embedding(num: int, dim: int, std: float, rng: Any) -> L.Embedding:
    """An ``Embedding(num, dim)`` with ``W ~ N(0, std^2)`` from ``rng`` (drawn once)."""
    layer = L.Embedding.__new__(L.Embedding)
    L.Layer.__init__(layer)
    w = rng.standard_normal((num, dim)).astype(np.float32)
    w *= std
    layer.W = Parameter(w, name="W")
    layer.num_embeddings, layer.embedding_dim = num, dim
    return layer


def _sample(logits: np.ndarray, temperature: float, top_k: Optional[int], rng: Any) -> np.ndarray:
    """One id per row of ``logits`` ``(B, V)``, drawn by inverting the cumulative probabilities."""
    z = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < z.shape[1]:
        kth = np.sort(z, axis=1)[:, -top_k][:, None]
        z = np.where(z < kth, -np.inf, z)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random_sample(z.shape[0]) if hasattr(rng, "random_sample") else rng.random(z.shape[0])
    ids = (np.cumsum(p, axis=1) < u[:, None]).sum(axis=1)
    return np.minimum(ids, z.shape[1] - 1)


def _load_pretrained(model: Layer, url: str) -> None:
    """Download (or find in the cache) the weights at ``url`` and load them into ``model``.

    Entries the model lacks are ignored; parameters the file lacks keep their
    initial values (with a warning); shapes must match where both exist.
    """
    from leafgrad import utils
    from leafgrad.serialization import (SerializationError, _plan_weights, _raise_problems,
                                        load_npz)
    path = utils.get_file(url)
    arrays = load_npz(path, "pretrained weights")
    assignments, problems, _ = _plan_weights(model, arrays, False, "pretrained weights", cast=True)
    _raise_problems(f"{type(model).__name__}(pretrained=True)", str(path), problems)
    if not assignments:
        raise SerializationError(f"{type(model).__name__}(pretrained=True): {str(path)!r} matches none "
                                 "of the model's parameters")
    for param, a in assignments:
        param.data = a
    missing = [k for k, _ in model.named_params() if k not in arrays]
    if missing:
        warnings.warn(f"{type(model).__name__}(pretrained=True): the weights file lacks {missing}; "
                      "they keep their initial values", stacklevel=3)


def _global_average_pooling_2d(x: Variable) -> Variable:
    """The mean over the spatial axes of an ``(N, C, H, W)`` input: ``(N, C)``."""
    N, C, H, W = x.shape
    return F.sum(x, axis=(2, 3)) * (1.0 / (H * W))


# =============================================================================
# VGG16
# =============================================================================
class VGG16(Model):
    """VGG-16 (13 convolutions, 3 fully connected layers, 1000 classes), for 224x224 RGB inputs."""

    WEIGHTS_PATH = "https://github.com/koki0702/dezero-models/releases/download/v0.1/vgg16.npz"

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        self.conv1_1 = L.Conv2d(64, kernel_size=3, stride=1, pad=1)
        self.conv1_2 = L.Conv2d(64, kernel_size=3, stride=1, pad=1)
        self.conv2_1 = L.Conv2d(128, kernel_size=3, stride=1, pad=1)
        self.conv2_2 = L.Conv2d(128, kernel_size=3, stride=1, pad=1)
        self.conv3_1 = L.Conv2d(256, kernel_size=3, stride=1, pad=1)
        self.conv3_2 = L.Conv2d(256, kernel_size=3, stride=1, pad=1)
        self.conv3_3 = L.Conv2d(256, kernel_size=3, stride=1, pad=1)
        self.conv4_1 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv4_2 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv4_3 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv5_1 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv5_2 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv5_3 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.fc6 = L.Linear(4096)
        self.fc7 = L.Linear(4096)
        self.fc8 = L.Linear(1000)
        if pretrained:
            _load_pretrained(self, VGG16.WEIGHTS_PATH)

    def forward(self, x: Any) -> Variable:
        x = F.relu(self.conv1_1(x))
        x = F.relu(self.conv1_2(x))
        x = F.pooling(x, 2, 2)
        x = F.relu(self.conv2_1(x))
        x = F.relu(self.conv2_2(x))
        x = F.pooling(x, 2, 2)
        x = F.relu(self.conv3_1(x))
        x = F.relu(self.conv3_2(x))
        x = F.relu(self.conv3_3(x))
        x = F.pooling(x, 2, 2)
        x = F.relu(self.conv4_1(x))
        x = F.relu(self.conv4_2(x))
        x = F.relu(self.conv4_3(x))
        x = F.pooling(x, 2, 2)
        x = F.relu(self.conv5_1(x))
        x = F.relu(self.conv5_2(x))
        x = F.relu(self.conv5_3(x))
        x = F.pooling(x, 2, 2)
        x = F.reshape(x, (x.shape[0], -1))
        x = F.dropout(F.relu(self.fc6(x)))
        x = F.dropout(F.relu(self.fc7(x)))
        x = self.fc8(x)
        return x

    @staticmethod
    def preprocess(image: Any, size: Optional[tuple] = (224, 224), dtype: Any = np.float32) -> np.ndarray:
        """A PIL image as the network's input: RGB, resized, BGR order, ImageNet means subtracted, CHW."""
        image = image.convert("RGB")
        if size:
            image = image.resize(size)
        image = np.asarray(image, dtype=dtype)
        image = image[:, :, ::-1]
        image = image - np.array([103.939, 116.779, 123.68], dtype=dtype)
        image = image.transpose((2, 0, 1))
        return np.ascontiguousarray(image)


# =============================================================================
# ResNet
# =============================================================================
class ResNet(Model):
    """ResNet-50/101/152 with bottleneck blocks (MSRA variant: stride on the first 1x1 convolution).

    DeZero 0.0.13 declares its convolutions with Chainer's argument order
    (``Conv2d(in, out, k, s, p)``), which makes its ResNet fail at the first
    call; here they are declared with ``Conv2d``'s own order (and ``conv1``
    keeps its bias, as in Chainer's ResNet), with the same layer names
    (``conv1 bn1 res2..res5 fc6``; blocks ``a b1 b2 ...``; ``conv1..conv4
    bn1..bn4`` inside), so DeZero's published weight files can load by name.
    ``pretrained=True`` ignores file entries the model lacks and warns about
    parameters the file lacks.
    """

    WEIGHTS_PATH = "https://github.com/koki0702/dezero-models/releases/download/v0.1/resnet{}.npz"
    _BLOCKS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}

    def __init__(self, n_layers: int = 152, pretrained: bool = False) -> None:
        super().__init__()
        if n_layers not in self._BLOCKS:
            raise ValueError("ResNet: the n_layers argument should be either 50, 101, or 152, "
                             f"but {n_layers} was given.")
        block = self._BLOCKS[n_layers]
        self.conv1 = L.Conv2d(64, 7, 2, 3)
        self.bn1 = L.BatchNorm()
        self.res2 = BuildingBlock(block[0], 64, 64, 256, 1)
        self.res3 = BuildingBlock(block[1], 256, 128, 512, 2)
        self.res4 = BuildingBlock(block[2], 512, 256, 1024, 2)
        self.res5 = BuildingBlock(block[3], 1024, 512, 2048, 2)
        self.fc6 = L.Linear(1000)
        if pretrained:
            _load_pretrained(self, ResNet.WEIGHTS_PATH.format(n_layers))

    def forward(self, x: Any) -> Variable:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.pooling(x, kernel_size=3, stride=2)
        x = self.res2(x)
        x = self.res3(x)
        x = self.res4(x)
        x = self.res5(x)
        x = _global_average_pooling_2d(x)
        x = self.fc6(x)
        return x


class ResNet152(ResNet):
    """ResNet with 152 layers."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(152, pretrained)


class ResNet101(ResNet):
    """ResNet with 101 layers."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(101, pretrained)


class ResNet50(ResNet):
    """ResNet with 50 layers."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(50, pretrained)


class BuildingBlock(Layer):
    """One ResNet stage: a ``BottleneckA`` (``a``) then ``n_layers - 1`` ``BottleneckB`` (``b1, b2, ...``)."""

    def __init__(self, n_layers: int, in_channels: int, mid_channels: int, out_channels: int,
                 stride: int, downsample_fb: bool = False) -> None:
        super().__init__()
        self.a = BottleneckA(in_channels, mid_channels, out_channels, stride, downsample_fb)
        self._forward = ["a"]
        for i in range(n_layers - 1):
            name = "b{}".format(i + 1)
            setattr(self, name, BottleneckB(out_channels, mid_channels))
            self._forward.append(name)

    def forward(self, x: Any) -> Variable:
        for name in self._forward:
            x = getattr(self, name)(x)
        return x


class BottleneckA(Layer):
    """A bottleneck that changes the channel count (and the resolution when ``stride`` > 1).

    ``downsample_fb=False`` puts the stride on the first 1x1 convolution (the
    original MSRA ResNet), ``True`` on the 3x3 one (Facebook's).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 2,
                 downsample_fb: bool = False) -> None:
        super().__init__()
        stride_1x1, stride_3x3 = (1, stride) if downsample_fb else (stride, 1)
        self.conv1 = L.Conv2d(mid_channels, 1, stride_1x1, 0, nobias=True, in_channels=None)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, stride_3x3, 1, nobias=True)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(out_channels, 1, 1, 0, nobias=True)
        self.bn3 = L.BatchNorm()
        self.conv4 = L.Conv2d(out_channels, 1, stride, 0, nobias=True)
        self.bn4 = L.BatchNorm()

    def forward(self, x: Any) -> Variable:
        h1 = F.relu(self.bn1(self.conv1(x)))
        h1 = F.relu(self.bn2(self.conv2(h1)))
        h1 = self.bn3(self.conv3(h1))
        h2 = self.bn4(self.conv4(x))
        return F.relu(h1 + h2)


class BottleneckB(Layer):
    """A bottleneck that keeps the resolution and the channel count, with an identity shortcut."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__()
        self.conv1 = L.Conv2d(mid_channels, 1, 1, 0, nobias=True)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, 1, 1, nobias=True)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(in_channels, 1, 1, 0, nobias=True)
        self.bn3 = L.BatchNorm()

    def forward(self, x: Any) -> Variable:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + x)


# =============================================================================
# SqueezeNet
# =============================================================================
class Fire(Layer):
    """SqueezeNet's Fire module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = L.Conv2d(squeeze, 1)
        self.expand1x1 = L.Conv2d(expand1x1, 1)
        self.expand3x3 = L.Conv2d(expand3x3, 3, pad=1)

    def forward(self, x: Any) -> Variable:
        h = F.relu(self.squeeze(x))
        return F.concat([F.relu(self.expand1x1(h)), F.relu(self.expand3x3(h))], axis=1)


class SqueezeNet(Model):
    """SqueezeNet 1.1 (Iandola et al. 2016): Fire modules, about 1.2 million parameters.

    DeZero 0.0.13 declares ``SqueezeNet`` without implementing it and
    publishes no weights for it, so ``pretrained=True`` raises.
    """

    def __init__(self, pretrained: bool = False, n_classes: int = 1000) -> None:
        super().__init__()
        if pretrained:
            raise NotImplementedError("SqueezeNet: no pretrained weights are published for "
                                      "DeZero/leafgrad; build it with pretrained=False")
        self.conv1 = L.Conv2d(64, 3, stride=2)
        self.fire2 = Fire(16, 64, 64)
        self.fire3 = Fire(16, 64, 64)
        self.fire4 = Fire(32, 128, 128)
        self.fire5 = Fire(32, 128, 128)
        self.fire6 = Fire(48, 192, 192)
        self.fire7 = Fire(48, 192, 192)
        self.fire8 = Fire(64, 256, 256)
        self.fire9 = Fire(64, 256, 256)
        self.conv10 = L.Conv2d(n_classes, 1)

    def forward(self, x: Any) -> Variable:
        x = F.relu(self.conv1(x))
        x = F.pooling(x, 3, 2)
        x = self.fire3(self.fire2(x))
        x = F.pooling(x, 3, 2)
        x = self.fire5(self.fire4(x))
        x = F.pooling(x, 3, 2)
        x = self.fire9(self.fire8(self.fire7(self.fire6(x))))
        x = F.dropout(x, 0.5)
        x = F.relu(self.conv10(x))
        return _global_average_pooling_2d(x)
