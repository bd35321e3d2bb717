"""Graph-recording switches: ``Config``, ``using_config``, ``no_grad``, ``enable_grad``, ``test_mode``.

DeZero keeps these switches as class attributes, global to the process.  Here
each switch lives in a :class:`contextvars.ContextVar`, so the value is private
to the thread (and the asyncio task) that set it, while ``Config.enable_backprop``
still reads and writes like a plain class attribute, as the book writes it.
"""
from __future__ import annotations

import contextvars
import functools
import inspect
from typing import Any, Callable, Optional, TypeVar

__all__ = ["Config", "using_config", "no_grad", "enable_grad", "test_mode", "is_grad_enabled"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: One context variable per switch; the default is the value a new thread sees.
_SWITCHES: dict[str, contextvars.ContextVar] = {
    "enable_backprop": contextvars.ContextVar("leafgrad.enable_backprop", default=True),
    "train": contextvars.ContextVar("leafgrad.train", default=True),
}

# Module-level aliases read on the hot path by Function.__call__.
_enable_backprop = _SWITCHES["enable_backprop"]
_train = _SWITCHES["train"]


class _ConfigMeta(type):
    """Turns ``Config.<switch>`` reads and writes into context-variable reads and writes."""

    def __getattr__(cls, name: str) -> Any:
        try:
            return _SWITCHES[name].get()
        except KeyError:
            raise AttributeError(f"Config has no switch {name!r}; known: {sorted(_SWITCHES)}") from None

    def __setattr__(cls, name: str, value: Any) -> None:
        if name in _SWITCHES:
            _SWITCHES[name].set(value)
        else:
            super().__setattr__(name, value)

    def __dir__(cls):
        return sorted(set(super().__dir__()) | set(_SWITCHES))


class Config(metaclass=_ConfigMeta):
    """The switches: ``Config.enable_backprop`` (record graphs) and ``Config.train`` (training mode).

    Reading or assigning them affects only the current thread / asyncio task.
    """


#: The tokens of the ``with`` blocks open in this thread / task: ``(id(switch object), token)`` pairs, innermost
#: last.  Kept in a context variable (not on the object), so one ``no_grad()`` object can be entered by several
#: threads or tasks at once; one variable for all objects, so nothing piles up in a context.
_OPEN: contextvars.ContextVar = contextvars.ContextVar("leafgrad.using_config.open", default=())


class using_config:
    """Set ``Config.<name>`` to ``value`` inside a ``with`` block, or for the duration of a decorated call.

    The previous value comes back when the block ends, even when it raises.
    One object may be used by several threads or asyncio tasks at once, and
    as a decorator it applies inside ``async def`` coroutines and generators
    (while they run, not while they are suspended).
    """

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any) -> None:
        if name not in _SWITCHES:
            raise AttributeError(f"using_config: Config has no switch {name!r}; known: {sorted(_SWITCHES)}")
        self.name = name
        self.value = value

    def __enter__(self) -> "using_config":
        token = _SWITCHES[self.name].set(self.value)
        _OPEN.set(_OPEN.get() + ((id(self), token),))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        opened = _OPEN.get()
        me = id(self)
        for i in range(len(opened) - 1, -1, -1):
            if opened[i][0] == me:
                _SWITCHES[self.name].reset(opened[i][1])
                _OPEN.set(opened[:i] + opened[i + 1:])
                return
        raise RuntimeError("using_config: __exit__ without a matching __enter__ in this thread or task")

    def __call__(self, func: _F) -> _F:
        """Use as a decorator: ``@no_grad()`` runs ``func`` with the switch set (coroutines and generators too)."""
        name, value = self.name, self.value
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def coroutine(*args: Any, **kwargs: Any) -> Any:
                with using_config(name, value):
                    return await func(*args, **kwargs)
            return coroutine  # type: ignore[return-value]
        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def generator(*args: Any, **kwargs: Any) -> Any:
                with using_config(name, value):
                    gen = func(*args, **kwargs)
                return (yield from _each_step(gen, name, value))
            return generator  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with using_config(name, value):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _each_step(gen: Any, name: str, value: Any) -> Any:
    """Run the generator ``gen`` step by step with the switch set while it runs (not while it waits)."""
    sent: Any = None
    thrown: Optional[BaseException] = None
    while True:
        with using_config(name, value):
            try:
                item = gen.throw(thrown) if thrown is not None else gen.send(sent)
            except StopIteration as stop:
                return stop.value
        sent, thrown = None, None
        try:
            sent = yield item
        except GeneratorExit:
            with using_config(name, value):
                gen.close()
            raise
        except BaseException as err:  # thrown in by the caller: passed on to the generator
            thrown = err


def no_grad() -> using_config:
    """Switch graph recording off: ``with no_grad(): ...`` or ``@no_grad()``."""
    return using_config("enable_backprop", False)


def enable_grad() -> using_config:
    """Switch graph recording back on inside a ``no_grad`` block."""
    return using_config("enable_backprop", True)


def test_mode() -> using_config:
    """Switch to inference behaviour (dropout off, batch norm uses running statistics)."""
    return using_config("train", False)


test_mode.__test__ = False  # keep pytest from collecting it as a test


def is_grad_enabled() -> bool:
    """True when functions called now record the graph.

    A function's ``forward`` asks this to decide whether to compute what only backward needs
    (an argmax index, a mask), instead of reading the private switch.
    """
    return _enable_backprop.get()
