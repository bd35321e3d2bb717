"""Run a program written for DeZero unchanged: ``import dezero`` resolves to leafgrad.

Command line::

    python -m leafgrad.compat program.py [args...]
    python -m leafgrad.compat -m package.module [args...]

In Python, :func:`install` does the same for the running process (and
:func:`uninstall` undoes it).  Nothing happens at ``import leafgrad``: the
alias exists only once :func:`install` has run.

How names map:

* each of DeZero's modules (``dezero``, ``dezero.core``, ``dezero.functions``,
  ... ``dezero.cuda``: :data:`SUBMODULES`) is a small proxy module: a name is
  looked up on the leafgrad module(s) behind it, so ``dezero.functions.sin is
  leafgrad.functions.sin`` and types are shared; DeZero's own meaning wins for
  a few names (``dezero.utils.get_dot_graph`` draws DeZero's picture), and
  what DeZero's modules re-export (``dezero.functions.Function``,
  ``dezero.models.utils``, ``dezero.datasets.load_cache_npz``, ...) comes from
  :mod:`leafgrad._dezero_names`.  ``dezero.__version__`` is ``"0.0.13"``.
* ``dezero.X`` for a leafgrad module DeZero does not have is that module itself.
* ``dezero.core_simple.Variable`` is :class:`SimpleVariable`: the book's first
  core (steps 1-32) keeps gradients as arrays, and its steps 28-29 write
  ``x.data -= lr * x.grad``.

While the alias is installed, DeZero's semantics win where they differ
(:func:`leafgrad.core.set_dezero_semantics`): ``backward()`` keeps the graph,
so a second ``backward()`` accumulates, and stand-ins of ``Function.inputs``
know their shapes.  docs/compat.md lists what still differs.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import runpy
import sys
import types
from typing import Any, Callable, Optional, Sequence

from leafgrad import _dezero_names
from leafgrad.core import Variable, set_dezero_semantics

__all__ = ["install", "uninstall", "is_installed", "run_path", "run_module", "main", "SimpleVariable",
           "SUBMODULES"]

ALIAS = "dezero"
TARGET = "leafgrad"

#: DeZero 0.0.13's modules: each is a proxy under the alias (``dezero.X`` for ``X`` in this list).
SUBMODULES = ("functions", "functions_conv", "layers", "models", "optimizers", "datasets",
              "dataloaders", "transforms", "utils", "cuda", "core", "core_simple")


_VARIABLE_GRAD = Variable.grad  # the slot that holds a Variable's gradient


class SimpleVariable(Variable):
    """``dezero.core_simple.Variable``: a Variable whose ``grad`` reads as an array, as in the book's first core.

    The gradient is stored as a Variable (the engine adds to it as usual); only
    reading it gives its array, so ``x.data -= lr * x.grad`` works as in the
    book's steps 28-29.
    """

    __slots__ = ()

    @property
    def grad(self) -> Any:
        """The gradient's array, or None."""
        g = _VARIABLE_GRAD.__get__(self)
        return None if g is None else g.data

    @grad.setter
    def grad(self, value: Any) -> None:
        _VARIABLE_GRAD.__set__(self, value if value is None or isinstance(value, Variable) else Variable(value))


#: Names a proxy module answers itself, before looking in its source modules.
_OWN_NAMES = {ALIAS + ".core_simple": {"Variable": SimpleVariable}}


#: Proxy modules: alias name -> (source modules searched in order, optional ones marked with '?').
_PROXIES: dict[str, tuple[str, ...]] = {
    ALIAS: (TARGET,),
    ALIAS + ".core": (TARGET + ".core", TARGET + ".config"),
    ALIAS + ".core_simple": (TARGET + ".core", TARGET + ".config"),
    ALIAS + ".functions_conv": ("?" + TARGET + ".functions.conv", TARGET + ".functions"),
    **{f"{ALIAS}.{m}": (f"{TARGET}.{m}",) for m in SUBMODULES if m not in ("core", "core_simple", "functions_conv")},
}


def _source_modules(sources: Sequence[str]) -> list:
    mods = []
    for name in sources:
        optional = name.startswith("?")
        name = name.lstrip("?")
        if optional and importlib.util.find_spec(name) is None:
            continue
        mods.append(importlib.import_module(name))
    return mods


def _lookup(alias: str, sources: Sequence[str], name: str) -> Any:
    """The object ``alias.name`` stands for: DeZero's own meaning first, then leafgrad's, then DeZero's extras."""
    own = _OWN_NAMES.get(alias, {})
    if name in own:
        return own[name]
    override = _dezero_names.OVERRIDES.get(alias, {}).get(name)
    if override is not None:
        return override()
    for mod in _source_modules(sources):
        if hasattr(mod, name):
            value = getattr(mod, name)
            if isinstance(value, types.ModuleType) and value.__name__.startswith(TARGET + "."):
                short = value.__name__[len(TARGET) + 1:]
                if short in SUBMODULES:  # a module re-exported: the alias's own (dezero.functions.cuda)
                    return importlib.import_module(f"{ALIAS}.{short}")
            return value
    extra = _dezero_names.EXTRAS.get(alias, {}).get(name)
    if extra is not None:
        return extra()
    targets = ", ".join(s.lstrip("?") for s in sources)
    raise AttributeError(f"module {alias!r} (leafgrad.compat alias of {targets}) has no attribute {name!r}")


def _make_getattr(module: types.ModuleType, alias: str, sources: Sequence[str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for the proxy ``module``; a name found once is kept in its dict."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _lookup(alias, sources, name)
        module.__dict__[name] = value
        return value

    return __getattr__


def _names(alias: str, sources: Sequence[str], public_only: bool) -> list:
    """The names a proxy offers: its sources' (their ``__all__`` when ``public_only``) and DeZero's."""
    names = set(_OWN_NAMES.get(alias, {})) | set(_dezero_names.OVERRIDES.get(alias, {}))
    names |= set(_dezero_names.EXTRAS.get(alias, {}))
    for mod in _source_modules(sources):
        names |= set(getattr(mod, "__all__", ())) if public_only else set(dir(mod))
    if public_only:
        names = {n for n in names if not n.startswith("_")}
    return sorted(names)


class _AliasLoader(importlib.abc.Loader):
    """Loads ``dezero[.X]``: either a proxy module, or the leafgrad module put in its place."""

    def __init__(self, alias: str, target: Optional[str]) -> None:
        self.alias = alias
        self.target = target  # None for a proxy

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[types.ModuleType]:
        return None  # the default: a fresh module object

    def exec_module(self, module: types.ModuleType) -> None:
        if self.target is not None:
            # The import system takes whatever sits in sys.modules after exec_module, so the
            # alias becomes the leafgrad module itself, its own __spec__ and __name__ untouched.
            sys.modules[self.alias] = importlib.import_module(self.target)
            return
        sources, alias = _PROXIES[self.alias], self.alias
        module.__dict__["__getattr__"] = _make_getattr(module, alias, sources)
        module.__dict__["__doc__"] = (f"leafgrad.compat alias: names come from "
                                      f"{', '.join(s.lstrip('?') for s in sources)}, and DeZero's own")
        module.__dict__["__dir__"] = lambda: sorted(set(module.__dict__) | set(_names(alias, sources, False)))
        module.__dict__["__all__"] = _names(alias, sources, True)  # what ``from dezero.X import *`` takes
        if alias == ALIAS:
            module.__dict__["__version__"] = _dezero_names.DEZERO_VERSION  # leafgrad's: leafgrad.__version__


class _AliasFinder(importlib.abc.MetaPathFinder):
    """A meta path finder that answers for ``dezero`` and ``dezero.*`` only."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        if fullname in _PROXIES:
            loader = _AliasLoader(fullname, None)
            # a package when leafgrad's module is one, so that ``import dezero.functions.conv`` works
            source = _PROXIES[fullname][-1]
            is_pkg = fullname == ALIAS or importlib.util.find_spec(source).submodule_search_locations is not None
        else:
            real = TARGET + fullname[len(ALIAS):]
            try:
                real_spec = importlib.util.find_spec(real)
            except ModuleNotFoundError:
                real_spec = None
            if real_spec is None:
                raise ModuleNotFoundError(
                    f"No module named {fullname!r}: leafgrad.compat maps it to {real!r}, which does not exist",
                    name=fullname)
            loader = _AliasLoader(fullname, real)
            is_pkg = real_spec.submodule_search_locations is not None
        return importlib.util.spec_from_loader(fullname, loader, origin="leafgrad.compat alias",
                                               is_package=is_pkg)


_finder: Optional[_AliasFinder] = None


def is_installed() -> bool:
    """True while the ``dezero`` alias is installed."""
    return _finder is not None and _finder in sys.meta_path


def install() -> None:
    """Make ``import dezero`` (and ``dezero.*``) resolve to leafgrad in this process; idempotent.

    Raises RuntimeError if a real ``dezero`` was imported already.
    """
    global _finder
    if is_installed():
        return
    existing = sys.modules.get(ALIAS)
    if existing is not None:
        raise RuntimeError(f"leafgrad.compat.install: a module named {ALIAS!r} is already imported "
                           f"({getattr(existing, '__file__', existing)!r}); install the alias before "
                           "anything imports dezero")
    _finder = _AliasFinder()
    sys.meta_path.insert(0, _finder)
    set_dezero_semantics(True)


def uninstall() -> None:
    """Remove the alias and forget the ``dezero`` modules it made (leafgrad's own modules stay)."""
    global _finder
    if _finder is not None and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    _finder = None
    set_dezero_semantics(False)
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        del sys.modules[name]


def run_path(path: str, argv: Sequence[str] = ()) -> dict:
    """Run the DeZero program at ``path`` as ``__main__`` with ``sys.argv = [path, *argv]``; returns its globals."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"leafgrad.compat: no such program file: {path!r}")
    install()
    old_argv, old_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [path, *argv]
    program_dir = os.path.dirname(os.path.abspath(path))
    if sys.path:
        sys.path[0] = program_dir
    else:
        sys.path.insert(0, program_dir)
    try:
        return runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = old_argv
        if old_path0 is not None:
            sys.path[0] = old_path0


def run_module(module: str, argv: Sequence[str] = ()) -> dict:
    """Run the DeZero program ``module`` (``python -m`` style) as ``__main__``; returns its globals."""
    install()
    old_argv = sys.argv
    sys.argv = [module, *argv]
    try:
        return runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = old_argv


_USAGE = ("usage: python -m leafgrad.compat program.py [args...]\n"
          "       python -m leafgrad.compat -m package.module [args...]\n"
          "Runs a program written for DeZero with `import dezero` resolving to leafgrad.\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line: run a DeZero program (a file, or ``-m module``) on leafgrad."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(_USAGE)
        return 0 if args else 2
    if args[0] == "-m":
        if len(args) < 2:
            sys.stderr.write(_USAGE)
            return 2
        run_module(args[1], args[2:])
    else:
        try:
            run_path(args[0], args[1:])
        except FileNotFoundError as e:
            if str(e).startswith("leafgrad.compat:"):
                sys.stderr.write(f"{e}\n")
                return 2
            raise
    return 0


if __name__ == "__main__":
    # Run through the importable module, so that the alias state lives in ``leafgrad.compat``.
    from leafgrad import compat as _compat

    sys.exit(_compat.main())
