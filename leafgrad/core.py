"""The heart of leafgrad: ``Variable``, ``Parameter``, ``Function`` and the arithmetic operators.

Who holds whom decides what memory lives:

* A ``Variable`` holds its ``creator`` strongly.  A ``Function`` holds its
  outputs through ``weakref.ref``, so the graph has no reference cycle and
  reference counting alone frees it when the user drops the final output.
* A ``Function`` does **not** hold its input Variables: it points at the
  functions that computed them, or at leaves, through edges that only
  :mod:`leafgrad.graph` reads.  An intermediate array therefore dies as soon
  as the user drops its Variable, unless a backward formula asked to keep it.
* A function declares what its backward needs with the class attributes
  ``retain_inputs`` and ``retain_outputs``, plus ``save_for_backward(...)``
  for arrays it computed.  A function written the book's way declares nothing
  (``retain_inputs = None``) and keeps all its inputs in ``self.inputs``,
  exactly as in DeZero.
* A declared function's gradient formula is written once: the first-order
  walk runs it on arrays, the recorded walk (``create_graph=True``) on
  Variables (:mod:`leafgrad.ops` has the operations that work on both).
* ``backward()`` releases what each function kept once its backward ran,
  unless ``retain_graph=True``; the graph's structure stays (without arrays)
  while the output lives, so that ``unchain_backward()`` can still cut it.

The backward walk itself is in :mod:`leafgrad.engine`.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Optional, Sequence, Union

import numpy as np

from leafgrad import graph, ops
from leafgrad.checks import ARRAY, NUMBER, REAL_KINDS, checked, describe
from leafgrad.config import _enable_backprop
from leafgrad.cuda import array_types, cupy, get_array_module

__all__ = [
    "Variable", "Parameter", "Function", "as_array", "as_variable",
    "add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow",
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "AddConstant", "SubConstant", "MulConstant", "ConstantSub",
    "DivConstant", "ConstantDiv", "VariableStandIn", "set_dezero_semantics",
]

ArrayLike = Any  # an ndarray (NumPy or CuPy), a NumPy scalar or a Python number

#: The dtypes a Variable may hold: floats, signed and unsigned integers, bools (checks.REAL_KINDS).
_REAL_DTYPES = frozenset(np.dtype(c) for c in np.typecodes["AllFloat"] + np.typecodes["AllInteger"] + "?"
                         if np.dtype(c).kind in REAL_KINDS)

# Read on every Variable made: module names are found faster than attributes of ``np``.
_NDARRAY, _F32, _F64 = np.ndarray, np.dtype(np.float32), np.dtype(np.float64)

#: NumPy 1.x promotes a 0-d float32 array (or float32 scalar) combined with a Python number to
#: float64; NumPy 2 (NEP 50) keeps float32.  On NumPy 1.x leafgrad restores NumPy 2's answer:
#: float outputs and gradients keep the floating dtype of their inputs (see _keep_float_dtype).
_LEGACY_PROMOTION = np.lib.NumpyVersion(np.__version__) < "2.0.0"


# =============================================================================
# Conversions
# =============================================================================
def as_array(x: ArrayLike, array_module=np):
    """Return ``x`` as an array of ``array_module``; scalars become 0-d arrays (DeZero's ``as_array``)."""
    if np.isscalar(x):
        return array_module.array(x)
    return x


def as_variable(obj: Union["Variable", ArrayLike]) -> "Variable":
    """Return ``obj`` if it is a Variable, else wrap it in a new (gradient-requiring) Variable."""
    if isinstance(obj, Variable):
        return obj
    return Variable(as_array(obj))


def _constant(obj: ArrayLike) -> "Variable":
    """Wrap an array or scalar that a function received directly: a constant, never given a gradient.

    ``None`` becomes a Variable without data, as in DeZero (``Linear()(x, W, None)``:
    no bias).  Anything else that is not a real number or an array of them is a ``TypeError``.
    """
    if type(obj) is not np.ndarray and obj is not None and not isinstance(obj, array_types):
        if not ARRAY.accepts(obj):
            raise TypeError(f"{describe(obj)} is not a real number or an array of them")
        obj = np.asarray(obj)
    v = Variable(obj)
    v.requires_grad = False
    return v


def _as_operand(other: Any, like: "Variable"):
    """Prepare the second operand of an arithmetic operator whose first operand is ``like``.

    A Python or NumPy scalar (or a 0-d array) takes the floating dtype of
    ``like``, so ``float32_variable * 1.5`` stays float32 under NumPy 2's
    promotion rules as it did under NumPy 1, and as it does in PyTorch.
    """
    if isinstance(other, Variable):
        return other
    if isinstance(other, array_types) and other.ndim > 0:
        return other
    if not ARRAY.accepts(other):
        return other  # not a number: Function.__call__ refuses it, naming the function and argument
    data = like.data
    xp = np if cupy is None else get_array_module(data)
    arr = xp.asarray(other)
    if data is not None and data.dtype.kind in "fc" and arr.dtype.kind in "biuf" and arr.dtype != data.dtype:
        arr = arr.astype(data.dtype)
    return arr


def _operands(x0: Any, x1: Any) -> tuple:
    """The two operands of a binary operator, a scalar one taking the other's floating dtype."""
    if isinstance(x0, Variable):
        return x0, _as_operand(x1, x0)
    if isinstance(x1, Variable):
        return _as_operand(x0, x1), x1
    x0 = _constant(x0)
    return x0, _as_operand(x1, x0)


def _scalar(obj: Any) -> Any:
    """``obj`` as a Python number if it is a scalar (Python, NumPy, or a 0-d array), else None.

    Python numbers are "weak" in NumPy's promotion (1.26 and 2.x alike), so
    ``float32 * 1.5`` stays float32; a NumPy float64 scalar would not, hence ``item()``.
    """
    if type(obj) is float or type(obj) is int:
        return obj
    if isinstance(obj, np.generic) or (type(obj) is np.ndarray and obj.ndim == 0):
        if obj.dtype.kind in "iuf":
            return obj.item()
    return None  # (a 0-d CuPy array stays an array: reading it would make the host wait for the GPU)


# =============================================================================
# Variable
# =============================================================================
class Variable:
    """An array that remembers the function that made it, so gradients can flow back through it.

    ``Variable(data, name=None)`` with ``data`` an ndarray (NumPy, or CuPy when
    installed) or ``None``.  Gradients are stored in ``grad`` as Variables.
    """

    __slots__ = ("data", "name", "grad", "creator", "generation", "requires_grad",
                 "_output_index", "__weakref__")
    # NumPy defers to our reflected operators: ``ndarray * Variable`` is a Variable.
    __array_priority__ = 200
    __array_ufunc__ = None

    def __init__(self, data: Any, name: Optional[str] = None) -> None:
        if data is not None and (type(data) is not _NDARRAY or (data.dtype is not _F32 and data.dtype is not _F64
                                                                and data.dtype not in _REAL_DTYPES)):
            _check_data(data)
        self.data = data
        self.name = name
        self.grad: Optional[Variable] = None
        self.creator: Optional[Function] = None
        self.generation = 0
        self.requires_grad = True
        self._output_index = 0

    # ---- array-like properties -------------------------------------------------
    @property
    def shape(self) -> tuple:
        """The shape of ``data``."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions of ``data``."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements of ``data``."""
        return self.data.size

    @property
    def dtype(self):
        """The dtype of ``data``."""
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        if self.data is None:
            return "variable(None)"
        p = str(self.data).replace("\n", "\n" + " " * 9)
        return "variable(" + p + ")"

    # ---- graph -------------------------------------------------------------------
    def set_creator(self, func: "Function") -> None:
        """Record ``func`` as the function that produced this Variable."""
        self.creator = func
        self.generation = func.generation + 1

    def unchain(self) -> None:
        """Forget the creator: this Variable becomes a leaf."""
        self.creator = None

    def cleargrad(self) -> None:
        """Drop the stored gradient."""
        self.grad = None

    def unchain_backward(self) -> None:
        """Cut the graph above this Variable: every Variable upstream forgets its creator.

        This Variable keeps its own creator (as in DeZero); functions upstream
        become unreachable and are freed by reference counting.
        """
        graph.unchain(self)

    def backward(self, retain_grad: bool = False, create_graph: bool = False,
                 retain_graph: Optional[bool] = None) -> None:
        """Compute the gradient of this Variable with respect to every leaf that led to it.

        ``retain_grad``: also keep ``grad`` on intermediate Variables still alive.
        ``create_graph``: record the backward computation, for higher-order gradients.
        ``retain_graph``: keep each function's saved data after use (default: ``create_graph``;
        True under the ``dezero`` alias, as DeZero keeps it), needed to call backward through
        the same graph again.
        """
        from leafgrad.engine import run_backward
        if retain_graph is None and _dezero_semantics:
            retain_graph = True  # under the dezero alias a second backward() accumulates, as in DeZero
        if self.creator is None:  # a leaf: its gradient with respect to itself
            if self.grad is None:
                xp = get_array_module(self.data)
                self.grad = Variable(xp.ones_like(self.data))
            return
        run_backward([self], [self.grad], retain_grad=retain_grad,
                     create_graph=create_graph, retain_graph=retain_graph)

    # ---- beyond DeZero -------------------------------------------------------------
    def register_post_accumulate_grad_hook(self, hook: Any) -> Any:
        """Call ``hook(self)`` in each backward as soon as this leaf's ``grad`` is final.

        Returns a handle whose ``remove()`` unregisters it (see :mod:`leafgrad.engine`).
        """
        from leafgrad.engine import register_post_accumulate_grad_hook
        return register_post_accumulate_grad_hook(self, hook)

    def item(self) -> Any:
        """The single element of ``data`` as a Python number."""
        return self.data.item()

    def detach(self) -> "Variable":
        """A new Variable sharing ``data``, outside any graph, not requiring a gradient."""
        v = Variable(self.data, self.name)
        v.requires_grad = False
        return v

    def numpy(self) -> np.ndarray:
        """``data`` as a NumPy array (copied from the GPU if needed)."""
        from leafgrad.cuda import as_numpy
        return as_numpy(self.data)

    def to_cpu(self) -> None:
        """Move ``data`` to NumPy."""
        if self.data is not None:
            from leafgrad.cuda import as_numpy
            self.data = as_numpy(self.data)

    def to_gpu(self) -> None:
        """Move ``data`` to CuPy."""
        if self.data is not None:
            from leafgrad.cuda import as_cupy
            self.data = as_cupy(self.data)

    # ---- methods that call functions -----------------------------------------------
    def reshape(self, *shape: Any) -> "Variable":
        """``F.reshape``; accepts ``x.reshape(2, 3)`` and ``x.reshape((2, 3))``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _functions().reshape(self, shape)

    def transpose(self, *axes: Any) -> "Variable":
        """``F.transpose``; accepts ``x.transpose()``, ``x.transpose(1, 0)`` and ``x.transpose((1, 0))``."""
        if len(axes) == 0:
            axes = None
        elif len(axes) == 1 and (isinstance(axes[0], (tuple, list)) or axes[0] is None):
            axes = axes[0]
        return _functions().transpose(self, axes)

    @property
    def T(self) -> "Variable":
        """The transpose (all axes reversed)."""
        return _functions().transpose(self)

    def sum(self, axis: Any = None, keepdims: bool = False) -> "Variable":
        """``F.sum`` over ``axis``."""
        return _functions().sum(self, axis, keepdims)

    def matmul(self, other: Any) -> "Variable":
        """``F.matmul(self, other)``."""
        return _functions().matmul(self, other)

    dot = matmul

    def max(self, axis: Any = None, keepdims: bool = False) -> "Variable":
        """``F.max`` over ``axis``."""
        return _functions().max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> "Variable":
        """``F.min`` over ``axis``."""
        return _functions().min(self, axis, keepdims)

    def __getitem__(self, slices: Any) -> "Variable":
        return _functions().get_item(self, slices)

    # ---- operators ---------------------------------------------------------------
    # (they call what add, sub, ... call, without those public functions' argument checks:
    # ``self`` is a Variable, and a bad ``other`` is refused by Function.__call__)
    def __add__(self, other: Any) -> "Variable":
        return _with_operand(self, other, Add, AddConstant)

    def __radd__(self, other: Any) -> "Variable":
        return _with_operand(self, other, Add, AddConstant)

    def __sub__(self, other: Any) -> "Variable":
        return _with_operand(self, other, Sub, SubConstant)

    def __rsub__(self, other: Any) -> "Variable":
        return _with_operand(self, other, Sub, ConstantSub, reflected=True)

    def __mul__(self, other: Any) -> "Variable":
        return _with_operand(self, other, Mul, MulConstant)

    def __rmul__(self, other: Any) -> "Variable":
        return _with_operand(self, other, Mul, MulConstant)

    def __truediv__(self, other: Any) -> "Variable":
        return _with_operand(self, other, Div, DivConstant)

    def __rtruediv__(self, other: Any) -> "Variable":
        return _with_operand(self, other, Div, ConstantDiv, reflected=True)

    def __neg__(self) -> "Variable":
        return Neg()(self)

    def __pow__(self, c: Any) -> "Variable":
        return pow(self, c)

    def __matmul__(self, other: Any) -> "Variable":
        return _functions().matmul(self, other)

    def __rmatmul__(self, other: Any) -> "Variable":
        return _functions().matmul(other, self)

    # Variables compare by identity (they are dictionary keys in user code, as in DeZero).
    __hash__ = object.__hash__


def _check_data(data: Any) -> None:
    """What a Variable may hold besides a NumPy array of real numbers: a CuPy one; else a TypeError."""
    if not isinstance(data, array_types):
        raise TypeError("{} is not supported".format(type(data)))  # DeZero's words
    if data.dtype not in _REAL_DTYPES:
        raise TypeError(f"Variable: data must be an array of real numbers (float, int or bool), got {describe(data)}")


class Parameter(Variable):
    """A Variable that a ``Layer`` registers as one of its trainable parameters."""

    __slots__ = ()


class VariableStandIn(Variable):
    """What ``Function.inputs`` gives for an input Variable the user dropped (or a constant).

    It stands where the dropped Variable stood in the graph (same ``creator``,
    ``generation`` and output position, so walking ``creator.inputs`` sees the
    same graph as DeZero), holds its array only where a function kept it, and
    knows its ``shape`` and ``dtype`` where the graph does (from that array, or,
    under the ``dezero`` alias, from what each function notes of its inputs);
    else they read None.  Its ``name`` is the one the Variable had when this
    function used it under the alias, else None.
    """

    __slots__ = ("_shape", "_dtype")

    def __init__(self, data: Any = None, shape: Optional[tuple] = None, dtype: Any = None) -> None:
        super().__init__(data)
        self._shape, self._dtype = shape, dtype

    @property
    def shape(self) -> Optional[tuple]:
        """The shape of the Variable it stands for (None where the graph does not know it)."""
        return self._shape if self.data is None else self.data.shape

    @property
    def dtype(self):
        """The dtype of the Variable it stands for (None where the graph does not know it)."""
        return self._dtype if self.data is None else self.data.dtype

    @property
    def ndim(self) -> Optional[int]:
        """The number of dimensions (None where the shape is not known)."""
        shape = self.shape
        return None if shape is None else len(shape)

    @property
    def size(self) -> Optional[int]:
        """The number of elements (None where the shape is not known)."""
        shape = self.shape
        return None if shape is None else int(np.prod(shape, dtype=np.int64))

    def __repr__(self) -> str:
        if self.data is not None:
            return super().__repr__()
        return f"variable(<dropped>, shape={self._shape}, dtype={self._dtype})"


#: True while the ``dezero`` alias is installed (leafgrad.compat): DeZero's semantics win where they differ.
_dezero_semantics = False


def set_dezero_semantics(on: bool) -> None:
    """Switch DeZero's semantics on or off (``leafgrad.compat`` does it when it installs the alias).

    On: ``backward()`` keeps the graph's saved data (``retain_graph=True``), so a second
    ``backward()`` accumulates as in DeZero, and every recorded function notes the shape,
    dtype and name of its inputs, so that the stand-ins of ``Function.inputs`` know them.
    Off (the default): leafgrad's behaviour, and nothing extra on ``Function.__call__``'s path.
    """
    global _dezero_semantics
    on = bool(on)
    if on == _dezero_semantics:
        return
    _dezero_semantics = on
    Function._keep = _keep_noting_inputs if on else _keep_declared
    stack = [Function]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        cls._keeps = _keeps(cls)


def _keeps(cls: type) -> bool:
    """Whether a recorded call of a ``cls`` function keeps anything besides its edges (see ``Function._keep``)."""
    return cls.retain_inputs != () or bool(cls.retain_outputs) or _LEGACY_PROMOTION or _dezero_semantics


def _functions():
    """The ``leafgrad.functions`` module (imported on first use: it imports this module)."""
    import leafgrad.functions as F
    return F


# =============================================================================
# Function
# =============================================================================
class Function:
    """A differentiable operation: ``forward`` on arrays, ``backward`` for the gradients.

    Written the book's way, a function defines ``forward(*xs)`` (arrays in,
    an array or a tuple of arrays out) and ``backward(*gys)`` (Variables in,
    a Variable or a tuple out, ``None`` for an input that gets no gradient),
    declares nothing, and keeps its input Variables in ``self.inputs``, as
    DeZero does.

    A function that declares what its backward needs keeps only that, and
    gets its ``backward`` run on plain arrays by the first-order walk (fast),
    and on Variables by the recorded walk (``create_graph=True``), so its
    gradient formula is written once, with the operators and :mod:`leafgrad.ops`:

    * ``retain_inputs = (0, 1)``: inputs backward reads, as
      ``x, W = self.get_retained_inputs()``; ``()`` keeps none;
    * ``retain_outputs = (0,)``: outputs backward reads, as
      ``y, = self.get_retained_outputs()``;
    * ``self.save_for_backward(*arrays)`` in ``forward``: arrays it computed
      that backward treats as constants (a mask, argmax indexes), read back as
      ``self.saved``.

    ``backward()`` frees all of it once used, unless ``retain_graph=True``.
    """

    #: Input positions whose arrays backward reads; None keeps all input Variables (the book's way).
    retain_inputs: Optional[tuple] = None
    #: Output positions whose arrays backward reads.
    retain_outputs: tuple = ()
    #: Input positions that ``forward`` computes on in floating point: integer and bool arrays there
    #: are converted to float64 first (what NumPy's own functions give), never truncated.
    float_inputs: tuple = ()
    #: For each input, whether backward must produce its gradient (False for a constant); set
    #: when the function is recorded (a recorded one-input function always needs it).
    needs_input_grad: tuple = (True,)
    #: True when ``backward`` returns new arrays that the function does not keep (no views, no
    #: array returned twice): the walk may then let the next function overwrite them.
    fresh_gradients = False
    #: True for a one-output function whose ``backward`` may overwrite ``gy`` when told it may
    #: (``self.may_overwrite_gy``, set by the walk for a gradient nobody else holds).
    overwrites_gy = False
    may_overwrite_gy = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A gradient formula written outside leafgrad may return Variables even on the
        # first-order walk (DeZero's style, e.g. a subclass of F.Softmax): the walk unwraps them.
        # A book-style function (declaring nothing) always gets Variables and returns them.
        cls._unwrap_gradients = cls.retain_inputs is None or (
            "backward" in cls.__dict__ and not cls.__module__.startswith("leafgrad."))
        # A backward written outside leafgrad that reads ``self.outputs[i]()`` (as DeZero's own Exp,
        # Tanh, Sigmoid do) finds its outputs alive when it runs, as in DeZero: it is wrapped to
        # revive the dropped ones (graph.revive_outputs), and a book-style one keeps their arrays.
        backward = cls.__dict__.get("backward")
        code = getattr(backward, "__code__", None)
        if code is not None and "outputs" in code.co_names and not cls.__module__.startswith("leafgrad."):
            cls.backward = _with_outputs_alive(backward)
            cls._reads_outputs = True
        cls._keeps = _keeps(cls)

    def __call__(self, *inputs: Any) -> Union[Variable, list]:
        """Run ``forward`` on the inputs' arrays; record this function in the graph when recording is on.

        Returns one Variable, or a list when ``forward`` returns a tuple.
        """
        inputs = list(inputs)
        xs = []
        for i, x in enumerate(inputs):
            if not isinstance(x, Variable):
                try:
                    x = inputs[i] = _constant(x)
                except TypeError:
                    raise TypeError(f"{type(self).__name__}: argument {_argument_name(self, i)} must be "
                                    f"{ARRAY.wanted}, got {describe(x)}") from None
            xs.append(x.data)
        if _GPU_ARRAY is not None and len(xs) > 1:
            _on_one_device(self, inputs, xs, _GPU_ARRAY, cupy.asarray)
        if self.float_inputs:
            _to_float(self.float_inputs, xs)
        try:
            ys = self.forward(*xs)
        except (ValueError, IndexError, TypeError, AttributeError) as err:
            raise _explain(err, self, xs) from err
        if type(ys) is _NDARRAY:  # one output: the common case
            outputs = [Variable(ys)]
        elif isinstance(ys, np.generic):  # NumPy turns 0-d results into scalars: an array again
            outputs = [Variable(np.asarray(ys))]
        elif isinstance(ys, tuple):
            outputs = [Variable(y if isinstance(y, array_types) else np.asarray(y)) for y in ys]
        else:  # a CuPy array (or a Python number)
            outputs = [Variable(ys if isinstance(ys, array_types) else np.asarray(ys))]
        if _LEGACY_PROMOTION:
            _keep_float_dtype(xs, outputs)

        if _enable_backprop.get() and graph.connect(self, inputs, outputs):
            if self._keeps or len(outputs) > 1:
                self._keep(inputs, xs, outputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def _keep(self, inputs: list, xs: list, outputs: list) -> None:
        """Keep what backward declared it reads (and, the book's way, every input Variable)."""
        retain = self.retain_inputs
        if retain is None:
            self._inputs = inputs
            if self._reads_outputs:  # its backward reads self.outputs[i](): graph.revive_outputs
                self.output_data = [y.data for y in outputs]
        elif retain:
            self._kept_inputs = tuple([xs[i] for i in retain])
        if self.retain_outputs:
            self.output_data = [y.data if i in self.retain_outputs else None for i, y in enumerate(outputs)]
        if len(outputs) > 1:
            self._output_meta = [(y.shape, y.dtype) for y in outputs]
        if _LEGACY_PROMOTION:
            self._input_dtypes = [getattr(x, "dtype", None) for x in xs]

    def forward(self, *xs: Any) -> Any:
        """Compute the outputs from input arrays."""
        raise NotImplementedError()

    def backward(self, *gys: Any) -> Any:
        """Compute the input gradients from the output gradients (see the class docstring)."""
        raise NotImplementedError()

    # ---- what backward may read ---------------------------------------------------
    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays computed in ``forward`` for ``backward`` (as constants); read them back as ``self.saved``."""
        self.saved = arrays

    def get_retained_inputs(self) -> tuple:
        """The inputs declared in ``retain_inputs``, in that order.

        Arrays on the first-order walk; graph-connected Variables when the
        backward is recorded (graph recording on), so the formula is differentiable.
        """
        kept = self._kept_inputs
        if kept is None:  # released by a backward (or nothing declared)
            raise self._freed_error()
        if not _enable_backprop.get():
            return kept
        return tuple(graph.input_variable(self, k, data) for k, data in zip(self.retain_inputs, kept))

    def get_retained_outputs(self) -> tuple:
        """The outputs declared in ``retain_outputs``, in that order: arrays, or Variables when recording."""
        data = self.output_data
        if data is None:  # released by a backward (or nothing declared)
            raise self._freed_error()
        if not _enable_backprop.get():
            return tuple([data[i] for i in self.retain_outputs])
        return tuple(graph.output_variable(self, i, data[i]) for i in self.retain_outputs)

    def derived_from_inputs(self, data: Any, node: "Function", inputs: Sequence[int] = (0,)) -> Any:
        """An array ``forward`` computed from some of its inputs, as backward reads it.

        ``data`` itself on the first-order walk.  When recording, ``node`` (a
        Function that keeps no inputs) applied in the graph to the inputs at
        positions ``inputs``, with ``data`` as its known result: the formula
        stays differentiable although those inputs' arrays were not kept
        (``softmax_cross_entropy`` keeps ``softmax(x)``, not ``x``).
        """
        if not _enable_backprop.get():
            return data
        return graph.apply_known(node, data, self, inputs)

    def _release(self) -> None:
        """Drop everything kept for backward (after a backward without ``retain_graph``).

        The edges to upstream functions stay, so that ``unchain_backward`` can
        still reach and cut the graph (truncated backpropagation through time);
        the walk already replaced the edges to leaves (``PendingGradients.send``),
        so a kept ``loss`` pins no input batch.
        """
        self._released = True
        # (only what was set: a function that kept nothing gets no new attributes)
        if self._inputs is not None:
            self._inputs = None
        if self._standins is not None:
            self._standins = None
        if self._kept_inputs is not None:
            self._kept_inputs = None
        if self.output_data is not None:
            self.output_data = None
        if self.saved is not None:
            self.saved = None
        if _LEGACY_PROMOTION:
            self._input_dtypes = None

    def _freed_error(self) -> RuntimeError:
        return RuntimeError(
            "Trying to backward through the graph a second time (or to read data already freed): "
            f"the saved data of {type(self).__name__} was released after the first backward. "
            "Pass retain_graph=True to the first backward() to keep it.")

    # ---- the graph as the seeds describe it ------------------------------------------
    @property
    def inputs(self) -> Optional[list]:
        """The input Variables, as in DeZero: the very objects while they are alive, else stand-ins.

        A function written the book's way keeps its inputs and gets them back.
        For the others the list is made when read (:func:`leafgrad.graph.input_variables`):
        a dropped input is a :class:`VariableStandIn` that knows its creator (and its
        array only where this function or its creator kept it); a constant is a
        constant Variable, the scalar of ``x * 2`` included.  Reading keeps no array alive.
        None for a function that was not recorded.
        """
        kept = self._inputs
        if kept is not None:
            return kept
        return graph.input_variables(self)

    @inputs.setter
    def inputs(self, value: Optional[list]) -> None:
        self._inputs = value

    # Defaults, so that reading them on a function that kept nothing is not an error.
    _inputs: Optional[list] = None
    _standins: Optional[dict] = None  # stand-ins made by reading ``inputs`` (graph.input_variables)
    _input_meta: Optional[list] = None  # (shape, dtype, name) of each input, noted under the dezero alias only
    #: Where DeZero's graph has a constant Variable that this one-input form keeps as the number ``c``.
    _dezero_constant: Optional[int] = None
    _kept_inputs: Optional[tuple] = None
    outputs: list = []
    output_data: Optional[list] = None
    saved: Optional[tuple] = None
    generation = 0
    _edges: Optional[list] = None
    #: True once backward ran through this function without retain_graph: its data is gone.
    _released = False
    _unwrap_gradients = False
    _reads_outputs = False
    _keeps = True
    _input_dtypes: Optional[list] = None


_keep_declared = Function._keep


def _keep_noting_inputs(self: Function, inputs: list, xs: list, outputs: list) -> None:
    """``Function._keep`` under the dezero alias: also note each input's shape, dtype and name."""
    _keep_declared(self, inputs, xs, outputs)
    self._input_meta = [None if x is None else (x.shape, x.dtype, v.name) for x, v in zip(xs, inputs)]


def _with_outputs_alive(backward: Any) -> Any:
    """``backward`` run with the function's dropped outputs revived, so ``self.outputs[i]()`` is a Variable."""

    @functools.wraps(backward)
    def backward_with_outputs(self: Function, *gys: Any) -> Any:
        alive = graph.revive_outputs(self)  # noqa: F841 (held while backward runs)
        return backward(self, *gys)

    return backward_with_outputs


def _float_kind(dtype: Any) -> bool:
    return dtype is not None and dtype.kind == "f"


def _keep_float_dtype(xs: Sequence[Any], outputs: list) -> None:
    """NumPy 1.x only: a float64 output computed from narrower floats alone takes their dtype back."""
    widest = None
    for x in xs:
        dtype = getattr(x, "dtype", None)
        if _float_kind(dtype):
            if dtype == np.float64:
                return
            widest = dtype if widest is None or dtype.itemsize > widest.itemsize else widest
    if widest is None:
        return
    for y in outputs:
        if y.data.dtype == np.float64:
            y.data = y.data.astype(widest)


def _argument_name(func: Function, i: int) -> str:
    """The name of ``forward``'s argument ``i`` (``xs[2]`` for ``forward(self, *xs)``), for messages."""
    names = _ARGUMENT_NAMES.get(type(func))
    if names is None:
        names = []
        for p in list(inspect.signature(type(func).forward).parameters.values())[1:]:
            names.append(("*" if p.kind is p.VAR_POSITIONAL else "") + p.name)
        _ARGUMENT_NAMES[type(func)] = names
    for k, name in enumerate(names):
        if name.startswith("*"):
            return f"{name[1:]}[{i - k}]"
        if k == i:
            return name
    return f"#{i}"


_ARGUMENT_NAMES: dict = {}

#: CuPy's array type when CuPy is installed (Function.__call__ then keeps each call on one device).
_GPU_ARRAY = None if cupy is None else cupy.ndarray


def _on_one_device(func: Function, inputs: list, xs: list, device_type: type, to_device: Any) -> None:
    """When some of ``xs`` live on the GPU (``device_type`` arrays), move the NumPy constants there.

    Labels, masks and targets given as NumPy arrays follow the data they go with.
    A NumPy input that wants a gradient cannot move (its gradient would have to
    come back to the CPU): a ``TypeError`` names the function and both devices.
    """
    on_gpu = next((i for i, x in enumerate(xs) if isinstance(x, device_type)), None)
    if on_gpu is None:
        return
    for i, x in enumerate(xs):
        if isinstance(x, np.ndarray) and not isinstance(x, device_type):
            v = inputs[i]
            if v.creator is not None or v.requires_grad:
                name = type(func).__name__
                raise TypeError(f"{name}: argument {_argument_name(func, i)} is on the CPU (a NumPy array) "
                                f"but argument {_argument_name(func, on_gpu)} is on the GPU (a CuPy array); "
                                "put both on one device (Variable.to_gpu(), or leafgrad.cuda.as_cupy)")
            xs[i] = to_device(x)


def _to_float(positions: tuple, xs: list) -> None:
    """Integer and bool arrays at ``positions`` of ``xs`` become float64 (in place in the list)."""
    for i in positions:
        if i < len(xs) and xs[i] is not None and xs[i].dtype.kind in "biu":
            xs[i] = xs[i].astype(np.float64)


def _explain(err: Exception, func: Function, xs: Sequence[Any]) -> Exception:
    """Re-raise a NumPy error from ``forward`` with the function's name and its input shapes.

    An input without data (``None``) is named: that is the usual cause.
    """
    name = type(func).__name__
    for i, x in enumerate(xs):
        if x is None:
            return TypeError(f"{name}: argument {_argument_name(func, i)} is None; expected {ARRAY.wanted}")
    if isinstance(err, AttributeError):
        return err
    message = str(err)
    if message.startswith(name) or message.startswith(name.lower()):
        return err
    shapes = ", ".join(str(getattr(x, "shape", type(x).__name__)) for x in xs)
    text = f"{name}: {message} (input shapes: {shapes})"
    try:
        return type(err)(text)
    except Exception:
        return ValueError(text)


# =============================================================================
# Arithmetic (the operators of Variable)
# =============================================================================
def _with_operand(x: Variable, other: Any, general: type, constant: Any, reflected: bool = False) -> Variable:
    """``x op other`` (``other op x`` when ``reflected``) for Variable ``x``: what the operators call.

    A scalar ``other`` becomes the number of a one-input function, ``constant(c)(x)``.
    """
    c = other if type(other) is float or type(other) is int else _scalar(other)  # the common case first
    if c is not None:
        return constant(c)(x)
    operand = _as_operand(other, x)
    return general()(operand, x) if reflected else general()(x, operand)


def _binary(x0: Any, x1: Any, general: type, constant_right: Any, constant_left: Any) -> Variable:
    """Apply a binary operator; a Variable with a scalar operand becomes a one-input function.

    ``constant_right(c)(x)`` computes ``x op c`` and ``constant_left(c)(x)`` computes ``c op x``;
    the scalar is kept as a number, not as a graph node.
    """
    if isinstance(x0, Variable):
        c = x1 if type(x1) is float or type(x1) is int else _scalar(x1)  # the common case first
        if c is not None:
            return constant_right(c)(x0)
    elif isinstance(x1, Variable):
        c = _scalar(x0)
        if c is not None:
            return constant_left(c)(x1)
    return general()(*_operands(x0, x1))


class Add(Function):
    """``x0 + x1`` with broadcasting."""

    retain_inputs = ()

    def forward(self, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        return x0 + x1

    def backward(self, gy):
        if self.x0_shape == self.x1_shape:
            return gy, gy
        need0, need1 = self.needs_input_grad
        return (ops.sum_to(gy, self.x0_shape) if need0 else None,
                ops.sum_to(gy, self.x1_shape) if need1 else None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Add."""
        g.op("Add", *inputs, out=outputs[0])


@checked(x0=ARRAY, x1=ARRAY)
def add(x0: Any, x1: Any) -> Variable:
    """``x0 + x1``."""
    return _binary(x0, x1, Add, AddConstant, AddConstant)


class AddConstant(Add):
    """``x + c`` for a scalar constant ``c`` (kept as a number, not as a graph node).

    DeZero records ``Add`` with a constant Variable: this is an ``Add``, named so, and its
    ``inputs`` read ``[x, variable(c)]``.
    """

    _dezero_constant = 1

    retain_inputs = ()

    def __init__(self, c: Any) -> None:
        self.c = c

    def forward(self, x):
        return x + self.c

    def backward(self, gy):
        return gy

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Add with the constant."""
        g.op("Add", inputs[0], g.scalar(self.c, inputs[0]), out=outputs[0])


class Sub(Function):
    """``x0 - x1`` with broadcasting."""

    retain_inputs = ()

    def forward(self, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        return x0 - x1

    def backward(self, gy):
        need0, need1 = self.needs_input_grad
        return (ops.sum_to(gy, self.x0_shape) if need0 else None,
                ops.sum_to(-gy, self.x1_shape) if need1 else None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Sub."""
        g.op("Sub", *inputs, out=outputs[0])


class SubConstant(Sub):
    """``x - c`` for a scalar constant ``c``; DeZero's ``Sub`` with ``inputs`` ``[x, variable(c)]``."""

    retain_inputs = ()
    _dezero_constant = 1

    def __init__(self, c: Any) -> None:
        self.c = c

    def forward(self, x):
        return x - self.c

    def backward(self, gy):
        return gy



@checked(x0=ARRAY, x1=ARRAY)
def sub(x0: Any, x1: Any) -> Variable:
    """``x0 - x1``."""
    return _binary(x0, x1, Sub, SubConstant, ConstantSub)


@checked(x0=ARRAY, x1=ARRAY)
def rsub(x0: Any, x1: Any) -> Variable:
    """``x1 - x0`` (the reflected ``-``)."""
    return sub(x1, x0)


class ConstantSub(Sub):
    """``c - x`` for a scalar constant ``c``; DeZero's ``Sub`` with ``inputs`` ``[variable(c), x]``."""

    retain_inputs = ()
    _dezero_constant = 0

    def __init__(self, c: Any) -> None:
        self.c = c

    def forward(self, x):
        return self.c - x

    def backward(self, gy):
        return -gy

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Sub with the constant."""
        g.op("Sub", g.scalar(self.c, inputs[0]), inputs[0], out=outputs[0])


class Neg(Function):
    """``-x``."""

    retain_inputs = ()

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Neg."""
        g.op("Neg", *inputs, out=outputs[0])


@checked(x=ARRAY)
def neg(x: Any) -> Variable:
    """``-x``."""
    return Neg()(x)


class Mul(Function):
    """``x0 * x1`` with broadcasting."""

    retain_inputs = (0, 1)
    fresh_gradients = True

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.get_retained_inputs()
        need0, need1 = self.needs_input_grad
        return (ops.sum_to(gy * x1, x0.shape) if need0 else None,
                ops.sum_to(gy * x0, x1.shape) if need1 else None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Mul."""
        g.op("Mul", *inputs, out=outputs[0])


@checked(x0=ARRAY, x1=ARRAY)
def mul(x0: Any, x1: Any) -> Variable:
    """``x0 * x1``."""
    return _binary(x0, x1, Mul, MulConstant, MulConstant)


class MulConstant(Mul):
    """``x * c`` for a scalar constant ``c``; DeZero's ``Mul`` with ``inputs`` ``[x, variable(c)]``."""

    retain_inputs = ()
    _dezero_constant = 1
    fresh_gradients = True

    def __init__(self, c: Any) -> None:
        self.c = c

    def forward(self, x):
        return x * self.c

    def backward(self, gy):
        return gy * self.c

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Mul with the constant."""
        g.op("Mul", inputs[0], g.scalar(self.c, inputs[0]), out=outputs[0])


class Div(Function):
    """``x0 / x1`` with broadcasting."""

    retain_inputs = (0, 1)
    fresh_gradients = True

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.get_retained_inputs()
        need0, need1 = self.needs_input_grad
        return (ops.sum_to(gy / x1, x0.shape) if need0 else None,
                ops.sum_to(gy * (-x0 / (x1 * x1)), x1.shape) if need1 else None)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Div."""
        g.op("Div", *inputs, out=outputs[0])


@checked(x0=ARRAY, x1=ARRAY)
def div(x0: Any, x1: Any) -> Variable:
    """``x0 / x1``."""
    return _binary(x0, x1, Div, DivConstant, ConstantDiv)


@checked(x0=ARRAY, x1=ARRAY)
def rdiv(x0: Any, x1: Any) -> Variable:
    """``x1 / x0`` (the reflected ``/``)."""
    return div(x1, x0)


class DivConstant(Div):
    """``x / c`` for a scalar constant ``c``; DeZero's ``Div`` with ``inputs`` ``[x, variable(c)]``."""

    retain_inputs = ()
    _dezero_constant = 1
    fresh_gradients = True

    def __init__(self, c: Any) -> None:
        self.c = c

    def forward(self, x):
        return x / self.c

    def backward(self, gy):
        return gy / self.c

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Div with the constant."""
        g.op("Div", inputs[0], g.scalar(self.c, inputs[0]), out=outputs[0])


class ConstantDiv(Div):
    """``c / x`` for a scalar constant ``c``; backward reads ``x``.

    DeZero's ``Div`` with ``inputs`` ``[variable(c), x]``.
    """

    retain_inputs = (0,)
    _dezero_constant = 0
    fresh_gradients = True

    def __init__(self, c: Any) -> None:
        self.c = c

    def forward(self, x):
        return self.c / x

    def backward(self, gy):
        x, = self.get_retained_inputs()
        return gy * (-self.c) / (x * x)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Div with the constant."""
        g.op("Div", g.scalar(self.c, inputs[0]), inputs[0], out=outputs[0])


# The constant forms are DeZero's classes to code that asks (``isinstance(f, Sub)``) and to
# pictures and messages (``type(f).__name__``); ``__qualname__`` keeps the form's own name.
for _form, _dezero_name in ((AddConstant, "Add"), (SubConstant, "Sub"), (ConstantSub, "Sub"),
                            (MulConstant, "Mul"), (DivConstant, "Div"), (ConstantDiv, "Div")):
    _form.__name__ = _dezero_name
del _form, _dezero_name


class Pow(Function):
    """``x ** c`` for a constant exponent ``c``."""

    retain_inputs = (0,)
    fresh_gradients = True

    def __init__(self, c: Any) -> None:
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        x, = self.get_retained_inputs()
        c = self.c
        return c * x ** (c - 1) * gy

    def to_onnx(self, g, inputs, outputs):
        """ONNX form (leafgrad.onnx): Pow with the constant."""
        g.op("Pow", inputs[0], g.scalar(self.c, inputs[0]), out=outputs[0])


@checked(x=ARRAY)
def pow(x: Any, c: Any) -> Variable:
    """``x ** c``; ``c`` is a constant (a Python or NumPy number)."""
    if isinstance(c, Variable):
        raise TypeError("pow: the exponent must be a constant number, not a Variable "
                        "(write exp(c * log(x)) for a variable exponent)")
    NUMBER.check("pow", "c", c)
    if isinstance(c, np.generic):
        c = c.item()  # a NumPy float64 exponent would turn float32 into float64 under NumPy 2
    return Pow(c)(x)
