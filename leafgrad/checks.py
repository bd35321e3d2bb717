"""The argument boundary of the public functions: what each argument may be, checked in one place.

A public function declares the kind of each argument with :func:`checked`::

    @checked(x=ARRAY, slope=NUMBER)
    def leaky_relu(x, slope=0.2): ...

and every call is checked before the function body runs: an argument of the
wrong kind is a ``TypeError`` (a value out of range, a ``ValueError``) whose
message starts with the function's name and names the argument::

    leaky_relu: slope must be a real number, got 'abc' (str)
    exp: x must be a Variable or an array of real numbers, got an array of dtype complex128

The policy: a Variable holds a real numeric array (float16/32/64, integers,
bools); ``None``, strings, object and complex arrays are refused.  Integer and
bool inputs are computed on as NumPy's own functions do (a function that
computes in floating point converts them to float64 first: see
``Function.float_inputs``), never truncated.  What the values must satisfy
beyond their kind (labels in ``[0, C)``, probabilities in ``[0, 1]``, shapes that
fit each other) is checked by each function, with messages of the same form.

Also here: small helpers shared by the functions (``shape_of``,
``normalize_axis``, ``normalize_axes``).
"""
from __future__ import annotations

import functools
import inspect
import operator
from typing import Any, Callable, Optional

import numpy as np

from leafgrad import core  # its Variable class, read at call time (core imports this module)
from leafgrad.cuda import array_types

__all__ = ["checked", "describe", "REAL_KINDS", "ARRAY", "OPTIONAL_ARRAY", "ARRAYS", "LABELS",
           "CONDITION", "NUMBER", "BOUND", "INT", "OPTIONAL_INT", "AXIS", "SHAPE",
           "PAIR", "OPTIONAL_PAIR", "BOOL", "SECTIONS", "choice", "check_labels", "labels_in_range", "check_range",
           "shape_of", "normalize_axis", "normalize_axes", "AxisError"]

#: NumPy's AxisError (a ValueError and an IndexError), wherever this NumPy version keeps it.
AxisError = getattr(getattr(np, "exceptions", np), "AxisError")

#: dtype kinds a Variable may hold: floats, signed and unsigned integers, bools.
REAL_KINDS = "fiub"


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message."""
    if isinstance(value, core.Variable):
        return "a Variable holding " + ("no data (None)" if value.data is None else describe(value.data))
    if isinstance(value, array_types):
        return f"an array of dtype {value.dtype} and shape {tuple(value.shape)}"
    if value is None:
        return "None"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))


class Kind:
    """What an argument may be: ``check(function, argument, value)`` raises when it is not."""

    #: How the requirement reads in an error message ("a real number").
    wanted = "anything"

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def check(self, function: str, argument: str, value: Any) -> None:
        """Raise ``TypeError`` naming ``function`` and ``argument`` unless ``value`` is of this kind."""
        if not self.accepts(value):
            raise TypeError(f"{function}: {argument} must be {self.wanted}, got {describe(value)}")


class _Array(Kind):
    wanted = "a Variable or an array of real numbers (float, int or bool)"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, core.Variable):
            value = value.data
        if isinstance(value, array_types) or isinstance(value, np.generic):
            return value.dtype.kind in REAL_KINDS
        return isinstance(value, (int, float, bool))


class _Optional(Kind):
    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.wanted = kind.wanted + " or None"

    def accepts(self, value: Any) -> bool:
        return value is None or self.kind.accepts(value)


class _Arrays(Kind):
    wanted = "a list or tuple of Variables or arrays of real numbers"

    def check(self, function: str, argument: str, value: Any) -> None:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{function}: {argument} must be {self.wanted}, got {describe(value)}")
        for i, item in enumerate(value):
            ARRAY.check(function, f"{argument}[{i}]", item)


class _Labels(Kind):
    wanted = "integer labels (a Variable, an array or a list of ints)"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, core.Variable):
            value = value.data
        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        if isinstance(value, array_types) or isinstance(value, np.generic):
            return value.dtype.kind in "iu"
        return _is_int(value)


class _Condition(Kind):
    wanted = "a boolean array (or a Variable or an array of real numbers, read as booleans)"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        return ARRAY.accepts(value)


class _Number(Kind):
    wanted = "a real number"

    def accepts(self, value: Any) -> bool:
        return _is_real_number(value)


class _Bound(Kind):
    wanted = "a real number, an array of real numbers or None"

    def accepts(self, value: Any) -> bool:
        return value is None or _is_real_number(value) or ARRAY.accepts(value)


class _Int(Kind):
    wanted = "an int"

    def accepts(self, value: Any) -> bool:
        return _is_int(value)


class _Axis(Kind):
    wanted = "None, an int or a tuple of ints"

    def accepts(self, value: Any) -> bool:
        if value is None or _is_int(value):
            return True
        return isinstance(value, (tuple, list)) and all(_is_int(a) for a in value)


class _Shape(Kind):
    wanted = "an int or a tuple of ints"

    def accepts(self, value: Any) -> bool:
        if _is_int(value):
            return True
        return isinstance(value, (tuple, list)) and all(_is_int(s) for s in value)


class _Pair(Kind):
    wanted = "an int or a pair of ints"

    def accepts(self, value: Any) -> bool:
        if _is_int(value):
            return True
        return isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value)


class _Bool(Kind):
    wanted = "True or False"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_)) or (_is_int(value) and value in (0, 1))


class _Sections(Kind):
    wanted = "an int or a sequence of ints"

    def accepts(self, value: Any) -> bool:
        if _is_int(value):
            return True
        return isinstance(value, (tuple, list)) and all(_is_int(v) for v in value)


class _Choice(Kind):
    def __init__(self, *options: Any) -> None:
        self.options = options
        self.wanted = "one of " + ", ".join(repr(o) for o in options)

    def check(self, function: str, argument: str, value: Any) -> None:
        if not any(value == o and type(value) is type(o) for o in self.options):
            raise ValueError(f"{function}: {argument} must be {self.wanted}, got {describe(value)}")


ARRAY = _Array()
OPTIONAL_ARRAY = _Optional(ARRAY)
ARRAYS = _Arrays()
LABELS = _Labels()
CONDITION = _Condition()
NUMBER = _Number()
BOUND = _Bound()
INT = _Int()
OPTIONAL_INT = _Optional(INT)
AXIS = _Axis()
SHAPE = _Shape()
PAIR = _Pair()
OPTIONAL_PAIR = _Optional(PAIR)
BOOL = _Bool()
SECTIONS = _Sections()
choice = _Choice


def checked(**kinds: Kind) -> Callable[[Callable], Callable]:
    """Declare the kind of each argument of a public function; every call checks them first.

    The decorated function keeps its name, docstring and signature; its
    ``argument_kinds`` attribute holds the declaration (the tests read it).
    """
    def decorate(fn: Callable) -> Callable:
        params = list(inspect.signature(fn).parameters)
        unknown = set(kinds) - set(params)
        if unknown:
            raise TypeError(f"checked: {fn.__name__} has no argument {sorted(unknown)}")
        plan = [(params.index(name), name, kind) for name, kind in kinds.items()]
        name = fn.__name__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            n = len(args)
            for position, argument, kind in plan:
                if position < n:
                    kind.check(name, argument, args[position])
                elif argument in kwargs:
                    kind.check(name, argument, kwargs[argument])
            return fn(*args, **kwargs)

        wrapper.argument_kinds = dict(kinds)
        return wrapper
    return decorate


# =============================================================================
# Values
# =============================================================================
def _position(flat_index: int, shape: tuple) -> Any:
    index = tuple(int(i) for i in np.unravel_index(flat_index, shape))
    return index[0] if len(index) == 1 else index


def check_labels(function: str, t: Any, classes: int, ignore_index: Optional[int] = None,
                 what: str = "label") -> bool:
    """Raise ``ValueError`` naming the first integer label of ``t`` outside ``[0, classes)`` and where it is.

    Labels equal to ``ignore_index`` are allowed.  Labels that live on the GPU are
    not read here (that would make the host wait for the GPU at every call):
    returns False for them, and the function checks them on the device (a
    ``softmax_cross_entropy`` or ``accuracy`` with an out-of-range label is NaN).
    """
    if not isinstance(t, np.ndarray):
        return False
    bad = (t < 0) | (t >= classes)
    if ignore_index is not None:
        bad &= t != ignore_index
    if bad.any():
        where = _position(int(bad.argmax()), tuple(t.shape))
        value = t.reshape(-1)[int(bad.argmax())]
        raise ValueError(f"{function}: {what} {int(value)} at position {where} is outside [0, {classes})")
    return True


def labels_in_range(t: Any, classes: int) -> Any:
    """Whether every label of ``t`` lies in ``[0, classes)``, as a 0-d array where ``t`` lives (no read)."""
    return ((t >= 0) & (t < classes)).all()


def check_range(function: str, argument: str, a: Any, low: float, high: float) -> None:
    """Raise ``ValueError`` naming the first value of the array ``a`` outside ``[low, high]`` and where it is.

    NaN is not out of range here (a diverging computation is reported where it is noticed).
    Values that live on the GPU are not read (that would wait for the GPU).
    """
    if not isinstance(a, np.ndarray):
        return
    bad = (a < low) | (a > high)
    if bad.any():
        flat = int(bad.argmax())
        value = a.reshape(-1)[flat]
        raise ValueError(f"{function}: {argument} has the value {float(value)} at position "
                         f"{_position(flat, tuple(a.shape))}, outside [{low}, {high}]")


# =============================================================================
# Shapes and axes
# =============================================================================
def shape_of(x: Any) -> tuple:
    """The shape of a Variable, an array or a scalar."""
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    return tuple(shape)


def _as_int(name: str, axis: Any) -> int:
    try:
        return operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}: axis must be an int, a tuple of ints or None, got {axis!r}") from None


def normalize_axis(name: str, axis: Any, shape: tuple, extra: int = 0) -> int:
    """``axis`` as a non-negative int for an input of ``shape``.

    ``extra=1`` allows one position past the last axis (for functions that add an axis,
    such as ``expand_dims`` and ``stack``).
    """
    a = _as_int(name, axis)
    ndim = len(shape) + extra
    if not -ndim <= a < ndim:
        raise AxisError(f"{name}: axis {a} is out of range for an input of shape {tuple(shape)}")
    return a + ndim if a < 0 else a


def normalize_axes(name: str, axis: Any, shape: tuple) -> Optional[tuple]:
    """``axis`` (None, an int, or a tuple/list of ints) as None or a tuple of non-negative ints."""
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axis(name, a, shape) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{name}: repeated axis in {tuple(axis)} for an input of shape {tuple(shape)}")
        return axes
    return (normalize_axis(name, axis, shape),)
