"""Layers: objects that own ``Parameter``s and call functions on them.

``Layer`` registers every ``Parameter`` and sub-``Layer`` assigned as an
attribute (their names go into ``self._params``, as in DeZero), so
``params()``, ``cleargrads()``, ``save_weights()`` and the optimizers find them
without any bookkeeping in user code.

Initializers draw from NumPy's global generator in exactly the order and
amounts DeZero 0.0.13 does, so a seeded book program starts from the same
weights.  Unlike DeZero under NumPy 2, weights keep the layer's ``dtype``
(float32 by default): scale factors are Python floats, never ``np.float64``.
"""
from __future__ import annotations

import math
import os
import weakref
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np

import leafgrad.functions as F
from leafgrad import cuda
from leafgrad.core import Parameter, Variable
from leafgrad.utils import pair

__all__ = ["Layer", "Linear", "Conv2d", "Deconv2d", "RNN", "LSTM", "EmbedID", "BatchNorm",
           # beyond DeZero: the pieces of a transformer
           "Embedding", "LayerNorm", "KVCache", "CausalSelfAttention", "TransformerBlock"]

PathLike = Union[str, "os.PathLike[str]"]


def _weak(obj: Any) -> Any:
    """A weak reference to ``obj``, or a callable returning it for objects that refuse weak references."""
    try:
        return weakref.ref(obj)
    except TypeError:  # Python numbers, tuples...: nothing to free, so a strong hold costs nothing
        return lambda obj=obj: obj


# =============================================================================
# Layer (base class)
# =============================================================================
class Layer:
    """A container of ``Parameter``s and sub-layers; subclasses implement ``forward``.

    Assigning a ``Parameter`` or a ``Layer`` to an attribute registers it by
    name in ``self._params``.  Calling the layer runs ``forward`` and keeps
    *weak* references to the inputs and outputs in ``self.inputs`` /
    ``self.outputs`` (as DeZero does), so a layer never keeps a graph alive.
    """

    def __init__(self) -> None:
        if "_params" not in self.__dict__:  # attributes may have been set before super().__init__()
            self._params: set = set()

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_params")
        if params is None and name != "_params":  # an attribute set before super().__init__()
            params = set()
            object.__setattr__(self, "_params", params)
        if params is not None:
            if isinstance(value, (Parameter, Layer)):
                params.add(name)
            else:  # re-assigned to something else (e.g. ``self.b = None``): no longer registered
                params.discard(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self.__dict__.get("_params", set()).discard(name)
        object.__delattr__(self, name)

    def __call__(self, *inputs: Any) -> Any:
        outputs = self.forward(*inputs)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        self.inputs = [_weak(x) for x in inputs]
        self.outputs = [_weak(y) for y in outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *inputs: Any) -> Any:
        """Compute the outputs from the inputs (implemented by subclasses)."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    # ---- parameters ----------------------------------------------------------------
    def _registered(self) -> Iterator[Tuple[str, Any]]:
        """The registered attributes (name, Parameter or Layer), in the order they were first set."""
        params = self._params
        for name, obj in list(self.__dict__.items()):
            if name in params and obj is not None:
                yield name, obj

    def named_params(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        """Yield ``(path, parameter)`` for every parameter, recursively; paths look like ``"l0/W"``.

        A parameter shared by two layers is yielded under each of its paths.
        """
        stack = [(prefix, self)]
        seen_layers = {id(self)}
        while stack:
            key, layer = stack.pop()
            children = []
            for name, obj in layer._registered():
                path = key + "/" + name if key else name
                if isinstance(obj, Layer):
                    if id(obj) not in seen_layers:
                        seen_layers.add(id(obj))
                        children.append((path, obj))
                else:
                    yield path, obj
            stack.extend(reversed(children))

    def params(self) -> Iterator[Parameter]:
        """Yield every parameter of this layer and its sub-layers, each once."""
        seen = set()
        stack = [self]
        seen_layers = {id(self)}
        while stack:  # same order as named_params, without building the path strings
            layer = stack.pop()
            children = []
            names = layer._params
            for name, obj in list(layer.__dict__.items()):
                if name not in names or obj is None:
                    continue
                if isinstance(obj, Layer):
                    if id(obj) not in seen_layers:
                        seen_layers.add(id(obj))
                        children.append(obj)
                elif id(obj) not in seen:
                    seen.add(id(obj))
                    yield obj
            stack.extend(reversed(children))

    def _flatten_params(self, params_dict: Dict[str, Parameter], parent_key: str = "") -> None:
        """Fill ``params_dict`` with ``path -> parameter`` (DeZero's helper, kept for compatibility)."""
        for path, param in self.named_params(parent_key):
            params_dict[path] = param

    def cleargrads(self) -> None:
        """Drop the gradient of every parameter."""
        for param in self.params():
            param.cleargrad()

    def to_cpu(self) -> "Layer":
        """Move every parameter (and its gradient) to NumPy; returns ``self``."""
        for param in self.params():
            param.to_cpu()
            if param.grad is not None:
                param.grad.to_cpu()
        return self

    def to_gpu(self) -> "Layer":
        """Move every parameter (and its gradient) to CuPy; returns ``self``."""
        for param in self.params():
            param.to_gpu()
            if param.grad is not None:
                param.grad.to_gpu()
        return self

    # ---- files -----------------------------------------------------------------------
    def save_weights(self, path: PathLike, compress: bool = False) -> None:
        """Write every initialized parameter to the ``.npz`` file ``path``, atomically.

        The file is complete or absent: it is written to a temporary file in the
        same folder, synced, then renamed over ``path``.  As with NumPy's
        ``savez``, ``.npz`` is appended to a path that lacks it.  Parameters on
        the GPU are copied to the host for writing; the layer itself stays where
        it is.
        """
        from leafgrad.serialization import save_weights
        save_weights(self, path, compress=compress)

    def load_weights(self, path: PathLike, strict: bool = True) -> None:
        """Read parameters saved by ``save_weights``; all or nothing.

        Every entry is read and checked (name, shape, dtype) before any
        parameter changes: on any problem a ``SerializationError`` names the
        parameter and the problem, and the layer is left exactly as it was.
        ``strict=False`` ignores entries the layer lacks and leaves parameters
        the file lacks as they are.
        """
        from leafgrad.serialization import load_weights
        load_weights(self, path, strict=strict)

    def __repr__(self) -> str:
        children = [name for name, obj in self._registered() if isinstance(obj, Layer)]
        if not children:
            return f"{type(self).__name__}()"
        return f"{type(self).__name__}({', '.join(children)})"


def _randn_scaled(xp: Any, shape: tuple, dtype: Any, scale: float) -> Any:
    """``randn(*shape)`` cast to ``dtype`` and scaled in place by the Python float ``scale``.

    Draws exactly what DeZero's initializers draw.  Multiplying by a Python
    float keeps the dtype (DeZero multiplies by ``np.sqrt(...)``, a float64
    scalar that turns float32 weights into float64 under NumPy 2); the values
    equal DeZero's under NumPy 1.
    """
    w = xp.random.randn(*shape).astype(dtype)
    w *= scale
    return w


# =============================================================================
# Linear / Conv2d / Deconv2d
# =============================================================================
class Linear(Layer):
    """A fully connected layer ``y = x W + b`` with ``W`` of shape ``(in_size, out_size)``.

    ``W`` is drawn from ``randn(in_size, out_size) * sqrt(1 / in_size)``; when
    ``in_size`` is None it is created at the first call, from the input's
    second axis.  ``nobias=True`` leaves the bias out.
    """

    def __init__(self, out_size: int, nobias: bool = False, dtype: Any = np.float32,
                 in_size: Optional[int] = None) -> None:
        super().__init__()
        self.in_size = in_size
        self.out_size = out_size
        self.dtype = dtype

        self.W = Parameter(None, name="W")
        if self.in_size is not None:
            self._init_W()

        if nobias:
            self.b = None
        else:
            self.b = Parameter(np.zeros(out_size, dtype=dtype), name="b")

    def _init_W(self, xp: Any = np) -> None:
        I, O = self.in_size, self.out_size
        self.W.data = _randn_scaled(xp, (I, O), self.dtype, math.sqrt(1 / I))

    def forward(self, x: Any) -> Variable:
        if self.W.data is None:
            if x.ndim < 2:
                raise ValueError(f"Linear: input of shape {x.shape} has no feature axis "
                                 "(expected (batch, in_size))")
            self.in_size = x.shape[1]
            self._init_W(cuda.get_array_module(x))
        return F.linear(x, self.W, self.b)

    def __repr__(self) -> str:
        return f"Linear(in_size={self.in_size}, out_size={self.out_size}, bias={self.b is not None})"


class _ConvBase(Layer):
    """Shared setup of ``Conv2d`` and ``Deconv2d``."""

    def __init__(self, out_channels: int, kernel_size: Any, stride: Any = 1, pad: Any = 0,
                 nobias: bool = False, dtype: Any = np.float32,
                 in_channels: Optional[int] = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.dtype = dtype

        self.W = Parameter(None, name="W")
        if in_channels is not None:
            self._init_W()

        if nobias:
            self.b = None
        else:
            self.b = Parameter(np.zeros(out_channels, dtype=dtype), name="b")

    def _w_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple:
        raise NotImplementedError

    def _init_W(self, xp: Any = np) -> None:
        C, OC = self.in_channels, self.out_channels
        KH, KW = pair(self.kernel_size)
        scale = math.sqrt(1 / (C * KH * KW))
        self.W.data = _randn_scaled(xp, self._w_shape(C, OC, KH, KW), self.dtype, scale)

    def _lazy_init(self, x: Any) -> None:
        if self.W.data is None:
            if x.ndim != 4:
                raise ValueError(f"{type(self).__name__}: input of shape {x.shape} is not "
                                 "(batch, channels, height, width)")
            self.in_channels = x.shape[1]
            self._init_W(cuda.get_array_module(x))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad})")


class Conv2d(_ConvBase):
    """A 2-D convolution; ``W`` of shape ``(out_channels, in_channels, KH, KW)``.

    ``Conv2d(out_channels, kernel_size, stride=1, pad=0, nobias=False,
    dtype=np.float32, in_channels=None)``; ``W`` is created at the first call
    when ``in_channels`` is None.
    """

    def _w_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple:
        return (OC, C, KH, KW)

    def forward(self, x: Any) -> Variable:
        self._lazy_init(x)
        return F.conv2d(x, self.W, self.b, self.stride, self.pad)


class Deconv2d(_ConvBase):
    """A 2-D transposed convolution; ``W`` of shape ``(in_channels, out_channels, KH, KW)``.

    Same arguments as ``Conv2d``.
    """

    def _w_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple:
        return (C, OC, KH, KW)

    def forward(self, x: Any) -> Variable:
        self._lazy_init(x)
        return F.deconv2d(x, self.W, self.b, self.stride, self.pad)


# =============================================================================
# RNN / LSTM
# =============================================================================
class RNN(Layer):
    """An Elman RNN: ``h = tanh(x W_x + b + h_prev W_h)``; ``reset_state()`` forgets ``h``.

    The hidden state stays attached to the graph across calls (truncated
    backpropagation through time: call ``h.unchain_backward()`` or
    ``loss.unchain_backward()`` to cut it).
    """

    def __init__(self, hidden_size: int, in_size: Optional[int] = None) -> None:
        super().__init__()
        self.x2h = Linear(hidden_size, in_size=in_size)
        # h2h maps the hidden state, so its input size is hidden_size (DeZero passes in_size here,
        # which breaks when in_size != hidden_size); left lazy when in_size is None, as in DeZero,
        # so that random numbers are drawn at the same moment.
        self.h2h = Linear(hidden_size, in_size=None if in_size is None else hidden_size, nobias=True)
        self.h = None

    def reset_state(self) -> None:
        """Forget the hidden state."""
        self.h = None

    def forward(self, x: Any) -> Variable:
        if self.h is None:
            h_new = F.tanh(self.x2h(x))
        else:
            h_new = F.tanh(self.x2h(x) + self.h2h(self.h))
        self.h = h_new
        return h_new


class LSTM(Layer):
    """A long short-term memory layer; ``reset_state()`` forgets ``h`` and ``c``."""

    def __init__(self, hidden_size: int, in_size: Optional[int] = None) -> None:
        super().__init__()
        H, I = hidden_size, in_size
        self.x2f = Linear(H, in_size=I)
        self.x2i = Linear(H, in_size=I)
        self.x2o = Linear(H, in_size=I)
        self.x2u = Linear(H, in_size=I)
        self.h2f = Linear(H, in_size=H, nobias=True)
        self.h2i = Linear(H, in_size=H, nobias=True)
        self.h2o = Linear(H, in_size=H, nobias=True)
        self.h2u = Linear(H, in_size=H, nobias=True)
        self.reset_state()

    def reset_state(self) -> None:
        """Forget the hidden state and the cell."""
        self.h = None
        self.c = None

    def forward(self, x: Any) -> Variable:
        # Same call order as DeZero: lazily created weights draw random numbers in the same order.
        if self.h is None:
            f = F.sigmoid(self.x2f(x))
            i = F.sigmoid(self.x2i(x))
            o = F.sigmoid(self.x2o(x))
            u = F.tanh(self.x2u(x))
        else:
            f = F.sigmoid(self.x2f(x) + self.h2f(self.h))
            i = F.sigmoid(self.x2i(x) + self.h2i(self.h))
            o = F.sigmoid(self.x2o(x) + self.h2o(self.h))
            u = F.tanh(self.x2u(x) + self.h2u(self.h))

        if self.c is None:
            c_new = i * u
        else:
            c_new = (f * self.c) + (i * u)
        h_new = o * F.tanh(c_new)
        self.h, self.c = h_new, c_new
        return h_new


# =============================================================================
# EmbedID / BatchNorm
# =============================================================================
class EmbedID(Layer):
    """A lookup table: row ``x`` of ``W`` (shape ``(in_size, out_size)``, drawn from ``randn``).

    ``dtype`` (default float32) is an addition: DeZero's table is float64.
    """

    def __init__(self, in_size: int, out_size: int, dtype: Any = np.float32) -> None:
        super().__init__()
        self.W = Parameter(np.random.randn(in_size, out_size).astype(dtype), name="W")

    def forward(self, x: Any) -> Variable:
        return F.embed_id(x, self.W)


class BatchNorm(Layer):
    """Batch normalization over every axis but the channel axis 1 (inputs ``(N, C)``, ``(N, C, H, W)``...).

    ``gamma``, ``beta`` and the running statistics ``avg_mean``, ``avg_var``
    are created at the first call with the input's channel count and dtype.
    The running statistics are ``Parameter``s so that ``save_weights`` keeps
    them, but they never receive a gradient.  In training mode the batch
    statistics are used and the running ones updated (``decay``); under
    ``test_mode()`` the running ones are used.
    """

    def __init__(self, decay: float = 0.9, eps: float = 2e-5) -> None:
        super().__init__()
        self.decay = decay
        self.eps = eps
        self.avg_mean = Parameter(None, name="avg_mean")
        self.avg_var = Parameter(None, name="avg_var")
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")

    def _init_params(self, x: Any) -> None:
        xp = cuda.get_array_module(x)
        D = x.shape[1]
        if self.avg_mean.data is None:
            self.avg_mean.data = xp.zeros(D, dtype=x.dtype)
        if self.avg_var.data is None:
            self.avg_var.data = xp.ones(D, dtype=x.dtype)
        if self.gamma.data is None:
            self.gamma.data = xp.ones(D, dtype=x.dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(D, dtype=x.dtype)

    def forward(self, x: Any) -> Variable:
        if self.avg_mean.data is None:
            if x.ndim < 2:
                raise ValueError(f"BatchNorm: input of shape {x.shape} has no channel axis "
                                 "(expected (N, C), (N, C, L) or (N, C, H, W))")
            self._init_params(x)
        return F.batch_norm(x, self.gamma, self.beta, self.avg_mean.data, self.avg_var.data,
                            decay=self.decay, eps=self.eps)


# =============================================================================
# Beyond DeZero: Embedding / LayerNorm / attention / transformer block
# =============================================================================
class Embedding(EmbedID):
    """A lookup table with PyTorch's argument names: ``Embedding(num_embeddings, embedding_dim)``.

    The same layer as ``EmbedID``: ``W`` of shape ``(num_embeddings, embedding_dim)`` drawn
    from ``randn`` (as ``torch.nn.Embedding``), float32 by default; ``layer(ids)`` is ``W[ids]``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype: Any = np.float32) -> None:
        super().__init__(num_embeddings, embedding_dim, dtype=dtype)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"


class LayerNorm(Layer):
    """Layer normalization over the trailing ``normalized_shape`` axes, with a gain ``gamma`` (ones)
    and, unless ``bias=False``, a shift ``beta`` (zeros): ``F.layer_norm(x, gamma, beta, eps)``."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, bias: bool = True,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape or any(int(n) <= 0 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive sizes, got {normalized_shape!r}")
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = eps
        self.gamma = Parameter(np.ones(self.normalized_shape, dtype=dtype), name="gamma")
        self.beta = Parameter(np.zeros(self.normalized_shape, dtype=dtype), name="beta") if bias else None

    def forward(self, x: Any) -> Variable:
        return F.layer_norm(x, self.gamma, self.beta, eps=self.eps)

    def __repr__(self) -> str:
        return f"LayerNorm({self.normalized_shape}, eps={self.eps}, bias={self.beta is not None})"


def _normal_linear(in_size: int, out_size: int, bias: bool, std: float, rng: Any, dtype: Any) -> Linear:
    """A ``Linear(in_size -> out_size)`` with ``W ~ N(0, std^2)`` drawn from ``rng`` (nanoGPT's init), zero bias."""
    layer = Linear(out_size, nobias=not bias, dtype=dtype)  # lazy: draws nothing
    layer.in_size = in_size
    w = rng.standard_normal((in_size, out_size)).astype(dtype)
    w *= std
    layer.W.data = w
    return layer


class KVCache:
    """The keys and values an attention layer has seen, for generation one position at a time.

    ``k`` and ``v`` are ``(B, H, T, D)`` Variables (None while empty); ``len(cache)`` is ``T``.
    Meant for ``no_grad()``: a cache filled while recording would keep the graph alive.
    """

    def __init__(self) -> None:
        self.k: Optional[Variable] = None
        self.v: Optional[Variable] = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def reset(self) -> None:
        """Forget every position."""
        self.k = self.v = None

    def append(self, k: Variable, v: Variable) -> Tuple[Variable, Variable]:
        """Add the new positions' keys and values; return all of them."""
        if self.k is not None:
            k = F.concat([self.k, k], axis=2)
            v = F.concat([self.v, v], axis=2)
        self.k, self.v = k, v
        return k, v


class CausalSelfAttention(Layer):
    """Multi-head causal self-attention with one fused ``q, k, v`` projection (as nanoGPT).

    ``CausalSelfAttention(n_embd, n_head, dropout=0.0, bias=False)`` maps ``(B, T, n_embd)`` to
    ``(B, T, n_embd)``: ``c_attn`` (``n_embd -> 3 n_embd``), ``scaled_dot_product_attention`` with
    ``causal=True`` over ``n_head`` heads (dropout on the attention probabilities in training),
    ``c_proj`` (``n_embd -> n_embd``), dropout on the result in training, as nanoGPT.  Weights are drawn from ``N(0, 0.02^2)`` (``proj_std`` for ``c_proj``) with
    ``rng`` (default NumPy's global generator).  ``forward(x, cache)`` with a ``KVCache`` attends
    to the cached positions too and adds the new ones to it.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = False,
                 dtype: Any = np.float32, init_std: float = 0.02, proj_std: Optional[float] = None,
                 rng: Any = None) -> None:
        super().__init__()
        if n_head <= 0 or n_embd <= 0 or n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_embd ({n_embd}) must be a positive multiple of "
                             f"n_head ({n_head})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"CausalSelfAttention: dropout must be in [0, 1), got {dropout}")
        rng = np.random if rng is None else rng
        self.n_embd, self.n_head, self.dropout = n_embd, n_head, dropout
        self.c_attn = _normal_linear(n_embd, 3 * n_embd, bias, init_std, rng, dtype)
        self.c_proj = _normal_linear(n_embd, n_embd, bias, init_std if proj_std is None else proj_std, rng, dtype)

    def forward(self, x: Any, cache: Optional[KVCache] = None) -> Variable:
        B, T, C = x.shape
        if C != self.n_embd:
            raise ValueError(f"CausalSelfAttention: input of shape {x.shape}, expected (B, T, {self.n_embd})")
        H = self.n_head
        q, k, v = [F.transpose(F.reshape(a, (B, T, H, C // H)), (0, 2, 1, 3))  # (B, H, T, D), views
                   for a in F.split(self.c_attn(x), 3, axis=2)]
        if cache is not None:
            k, v = cache.append(k, v)
        y = F.scaled_dot_product_attention(q, k, v, causal=True, dropout_p=self.dropout)
        y = F.reshape(F.transpose(y, (0, 2, 1, 3)), (B, T, C))
        y = self.c_proj(y)
        if self.dropout:
            y = F.dropout(y, self.dropout)
        return y

    def __repr__(self) -> str:
        return f"CausalSelfAttention(n_embd={self.n_embd}, n_head={self.n_head}, dropout={self.dropout})"


class TransformerBlock(Layer):
    """A pre-LayerNorm transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``.

    The MLP is ``c_fc`` (``n_embd -> 4 n_embd``), exact GELU, ``c_proj`` (``4 n_embd -> n_embd``),
    dropout.  ``TransformerBlock(n_embd, n_head, dropout=0.0, bias=False)``; the initialization
    arguments are those of ``CausalSelfAttention``.  ``forward(x, cache)`` passes the ``KVCache``
    to the attention.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = False,
                 dtype: Any = np.float32, init_std: float = 0.02, proj_std: Optional[float] = None,
                 rng: Any = None) -> None:
        super().__init__()
        rng = np.random if rng is None else rng
        proj_std = init_std if proj_std is None else proj_std
        self.dropout = dropout
        self.ln_1 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias, dtype, init_std, proj_std, rng)
        self.ln_2 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.c_fc = _normal_linear(n_embd, 4 * n_embd, bias, init_std, rng, dtype)
        self.c_proj = _normal_linear(4 * n_embd, n_embd, bias, proj_std, rng, dtype)

    def forward(self, x: Any, cache: Optional[KVCache] = None) -> Variable:
        x = x + self.attn(self.ln_1(x), cache)
        h = self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))
        if self.dropout:
            h = F.dropout(h, self.dropout)
        return x + h
