"""The rules a function of the library follows, each checked over the whole library, so that a
forgotten step fails a test that names the function or class:

* every Function class defined in leafgrad declares ``retain_inputs`` in its own body (the book's
  undeclared style stays for user code);
* every public-looking function of a ``leafgrad.functions`` module is in its module's ``__all__``
  (or has a name starting with ``_``), and every module's ``__all__`` is re-exported by the package;
* every public function declares its argument kinds (``@checked``).
"""
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import leafgrad
import leafgrad.functions as F
from leafgrad import Function, Variable


def _library_modules():
    names = []
    for info in pkgutil.walk_packages(leafgrad.__path__, "leafgrad."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional dependency missing (MPI, a GUI backend): not a function module
            continue
        names.append(info.name)
    return names


_MODULES = _library_modules()
FUNCTION_MODULES = sorted(m.name for m in pkgutil.iter_modules(F.__path__, "leafgrad.functions."))


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


LIBRARY_FUNCTIONS = sorted({c for c in _subclasses(Function) if c.__module__.startswith("leafgrad.")},
                           key=lambda c: f"{c.__module__}.{c.__qualname__}")


# =============================================================================
# retention: declared by every class of the library
# =============================================================================
def test_the_walk_sees_the_library():
    names = {c.__name__ for c in LIBRARY_FUNCTIONS}
    assert {"Add", "Exp", "Softmax", "Conv2d", "Standardize"} <= names, sorted(names)


@pytest.mark.parametrize("cls", LIBRARY_FUNCTIONS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_library_function_class_declares_what_it_keeps(cls):
    assert "retain_inputs" in vars(cls), (
        f"{cls.__module__}.{cls.__qualname__} does not declare retain_inputs in its class body: "
        f"undeclared, it would keep every input Variable (the book's style); write retain_inputs = () "
        f"for none, or the positions backward reads")
    assert cls.retain_inputs is not None, (
        f"{cls.__module__}.{cls.__qualname__} declares retain_inputs = None (the book's style, for user code)")
    assert not cls._unwrap_gradients, f"{cls.__qualname__}: a declared class's backward is not unwrapped"


def test_the_unwrap_rule_reads_declarations_not_module_names():
    class BookStyle(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * 2

    class DezeroStyleSubclass(F.Softmax):  # redefines backward, inherits the declaration
        def backward(self, gy):
            return super().backward(gy)

    class Declared(Function):
        retain_inputs = ()

        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * 2

    class DeclaredButUnwrapped(Declared):
        retain_inputs = ()
        unwrap_gradients = True

        def backward(self, gy):
            return Variable(gy * 2)

    assert BookStyle._unwrap_gradients and DezeroStyleSubclass._unwrap_gradients
    assert not Declared._unwrap_gradients and DeclaredButUnwrapped._unwrap_gradients
    x = Variable(np.array([1.0, 2.0]))
    F.sum(DeclaredButUnwrapped()(x)).backward()
    assert type(x.grad.data) is np.ndarray and list(x.grad.data) == [2.0, 2.0]


# =============================================================================
# exports: a public-looking function is in __all__; every module's __all__ reaches the package
# =============================================================================
@pytest.mark.parametrize("module", FUNCTION_MODULES)
def test_every_public_looking_function_is_exported(module):
    mod = importlib.import_module(module)
    exported = set(getattr(mod, "__all__", ()))
    forgotten = [name for name, obj in vars(mod).items()
                 if inspect.isfunction(obj) and obj.__module__ == module and not name.startswith("_")
                 and name not in exported]
    assert not forgotten, (f"{module} defines {forgotten} without listing them in its __all__: export them, "
                           f"or start their names with _ if they are private")


@pytest.mark.parametrize("module", FUNCTION_MODULES)
def test_every_function_module_is_re_exported_by_the_package(module):
    mod = importlib.import_module(module)
    assert hasattr(mod, "__all__"), f"{module} has no __all__"
    missing = [name for name in mod.__all__ if name not in F.__all__ or getattr(F, name) is not getattr(mod, name)]
    assert not missing, f"{module}'s {missing} are not re-exported by leafgrad.functions: import the module there"


@pytest.mark.parametrize("module", FUNCTION_MODULES)
def test_function_modules_ask_the_public_switch(module):
    """forward asks ``leafgrad.config.is_grad_enabled()`` whether the graph is recorded, not a private name."""
    source = inspect.getsource(importlib.import_module(module))
    assert "_enable_backprop" not in source, (
        f"{module} reads the private config._enable_backprop: call leafgrad.config.is_grad_enabled()")


# =============================================================================
# argument kinds: every public function declares them with @checked
# =============================================================================
PUBLIC = sorted(name for name in F.__all__ if not isinstance(getattr(F, name), type))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_function_declares_its_arguments(name):
    fn = getattr(F, name)
    assert hasattr(fn, "argument_kinds"), (
        f"{name} does not declare its argument kinds: decorate it with @checked(...) from leafgrad.checks, "
        f"so that a bad argument is an error naming {name}")
    params = set(inspect.signature(fn).parameters)
    unknown = set(fn.argument_kinds) - params
    assert not unknown, f"{name}: @checked declares {sorted(unknown)}, which are not its parameters"
