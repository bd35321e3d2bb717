"""What DeZero 0.0.13's modules expose that leafgrad's own modules do not: the ``dezero`` alias adds it.

DeZero's modules re-export what they import (``from dezero.functions import
Function``, ``dezero.utils.Variable``, ``dezero.models.utils``), and programs
rely on that.  leafgrad's modules keep their own public names; the proxies of
:mod:`leafgrad.compat` answer DeZero's others from :data:`EXTRAS`, a table of
zero-argument callables, so that nothing (matplotlib, PIL) is imported before a
program asks for it.  The few small functions DeZero has and leafgrad does not
(``load_cache_npz``, ``show_progress``, the GPU im2col helpers) are written here.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

__all__ = ["DEZERO_VERSION", "EXTRAS", "OVERRIDES", "array_types", "using_config", "load_cache_npz",
           "save_cache_npz", "show_progress", "im2col_gpu", "col2im_gpu"]

#: The version ``dezero.__version__`` reads under the alias (leafgrad's own is ``leafgrad.__version__``).
DEZERO_VERSION = "0.0.13"


def _module(name: str) -> Callable[[], Any]:
    return lambda: importlib.import_module(name)


def _attr(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)


def _pil_image() -> Any:
    from PIL import Image  # DeZero imports it in dataloaders and transforms
    return Image


def _pil_available() -> bool:
    try:
        _pil_image()
    except ImportError:
        return False
    return True


def _urllib() -> Any:
    importlib.import_module("urllib.request")  # DeZero's utils: ``import urllib.request``
    return importlib.import_module("urllib")


def _pyplot() -> Any:
    import matplotlib.pyplot as plt  # DeZero's datasets import it at the top
    return plt


def array_types() -> Any:
    """``dezero.core.array_types``: ``np.ndarray``, or ``(np.ndarray, cupy.ndarray)`` with CuPy."""
    from leafgrad.cuda import cupy
    return np.ndarray if cupy is None else (np.ndarray, cupy.ndarray)


# =============================================================================
# Small functions DeZero has
# =============================================================================
def _cache_npz_path(filename: str, train: bool) -> str:
    from leafgrad.download import get_cache_dir
    filename = filename[filename.rfind("/") + 1:]
    return os.path.join(get_cache_dir(), filename + (".train.npz" if train else ".test.npz"))


def load_cache_npz(filename: str, train: bool = False) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """DeZero's ``datasets.load_cache_npz``: ``(data, label)`` cached for ``filename``, or ``(None, None)``."""
    path = _cache_npz_path(filename, train)
    if not os.path.exists(path):
        return None, None
    with np.load(path, allow_pickle=False) as loaded:
        return loaded["data"], loaded["label"]


def save_cache_npz(data: np.ndarray, label: np.ndarray, filename: str, train: bool = False) -> None:
    """DeZero's ``datasets.save_cache_npz``: cache ``data`` and ``label`` for ``filename`` (once; atomically)."""
    from leafgrad._atomic import write_atomic
    path = _cache_npz_path(filename, train)
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print("Saving: " + os.path.basename(path))
    write_atomic(path, lambda f: np.savez_compressed(f, data=data, label=label))
    print(" Done")


def show_progress(block_num: int, block_size: int, total_size: int) -> None:
    """DeZero's ``utils.show_progress``: a 30-character download bar (a ``urlretrieve`` report hook)."""
    done = block_num * block_size
    percent = min(done / total_size * 100, 100.0) if total_size > 0 else 100.0
    filled = min(int(percent * 30 / 100), 30)
    print("\r[{}] {:.2f}%".format("#" * filled + "." * (30 - filled), percent), end="")


def im2col_gpu(img: Any, kernel_size: Any, stride: Any, pad: Any) -> Any:
    """DeZero's ``functions_conv._im2col_gpu``: patches of shape ``(N, C, KH, KW, OH, OW)`` (any device)."""
    from leafgrad.functions.conv import im2col_array
    return im2col_array(img, kernel_size, stride, pad, to_matrix=False)


def col2im_gpu(col: Any, sy: int, sx: int, ph: int, pw: int, h: int, w: int) -> Any:
    """DeZero's ``functions_conv._col2im_gpu``: patches ``(N, C, KH, KW, OH, OW)`` summed back into an image."""
    from leafgrad.functions.conv import col2im_array
    n, c, kh, kw = col.shape[:4]
    return col2im_array(col, (n, c, h, w), (kh, kw), (sy, sx), (ph, pw), to_matrix=False)


def _datasets_cache_dir() -> str:
    from leafgrad.download import get_cache_dir
    return get_cache_dir()


def using_config(name: str, value: Any) -> Any:
    """DeZero's ``using_config`` is a function: ``with using_config('enable_backprop', False): ...``."""
    from leafgrad.config import using_config as context
    return context(name, value)


def _setup_variable() -> None:
    """DeZero's operator set-up; leafgrad's ``Variable`` has its operators already, so nothing to do."""


# =============================================================================
# The table
# =============================================================================
_core_names: Dict[str, Callable[[], Any]] = {
    "array_types": array_types, "contextlib": _module("contextlib"), "weakref": _module("weakref"),
    "dezero": _module("dezero"), "setup_variable": lambda: _setup_variable, "np": lambda: np,
}
_core_plain = {"Variable": _attr("leafgrad.core", "Variable"), "as_variable": _attr("leafgrad.core", "as_variable"),
               "as_array": _attr("leafgrad.core", "as_array"), "Function": _attr("leafgrad.core", "Function")}

#: alias module -> {name: a callable that gives the object}, for the names leafgrad's module lacks.
EXTRAS: Dict[str, Dict[str, Callable[[], Any]]] = {
    "dezero": {
        "dezero": _module("dezero"), "setup_variable": lambda: _setup_variable,
        "Layer": _attr("leafgrad.layers", "Layer"), "Model": _attr("leafgrad.models", "Model"),
        "Dataset": _attr("leafgrad.datasets", "Dataset"),
        "DataLoader": _attr("leafgrad.dataloaders", "DataLoader"),
        "SeqDataLoader": _attr("leafgrad.dataloaders", "SeqDataLoader"),
        **{m: _module("dezero." + m) for m in ("core", "core_simple", "functions", "functions_conv", "layers",
                                               "models", "optimizers", "datasets", "dataloaders", "transforms",
                                               "utils", "cuda")},
    },
    "dezero.core": dict(_core_names),
    "dezero.core_simple": dict(_core_names),
    "dezero.functions": {**_core_plain, "cuda": _module("dezero.cuda"), "utils": _module("dezero.utils"),
                         "dezero": _module("dezero"), "np": lambda: np},
    "dezero.functions_conv": {"_im2col_gpu": lambda: im2col_gpu, "_col2im_gpu": lambda: col2im_gpu,
                              "as_variable": _core_plain["as_variable"], "Function": _core_plain["Function"],
                              "cuda": _module("dezero.cuda"), "np": lambda: np},
    "dezero.layers": {"F": _module("dezero.functions"), "cuda": _module("dezero.cuda"), "np": lambda: np,
                      "os": _module("os"), "weakref": _module("weakref")},
    "dezero.models": {"F": _module("dezero.functions"), "L": _module("dezero.layers"),
                      "utils": _module("dezero.utils"), "np": lambda: np},
    "dezero.optimizers": {"cuda": _module("dezero.cuda"), "math": _module("math")},
    "dezero.datasets": {"cache_dir": _datasets_cache_dir, "load_cache_npz": lambda: load_cache_npz,
                        "save_cache_npz": lambda: save_cache_npz, "get_file": _attr("leafgrad.utils", "get_file"),
                        "os": _module("os"), "gzip": _module("gzip"), "pickle": _module("pickle"),
                        "tarfile": _module("tarfile"), "plt": _pyplot, "np": lambda: np},
    "dezero.dataloaders": {"Image": _pil_image, "pil_available": _pil_available, "cuda": _module("dezero.cuda"),
                           "math": _module("math"), "np": lambda: np},
    "dezero.transforms": {"Image": _pil_image, "np": lambda: np},
    "dezero.utils": {"Variable": _core_plain["Variable"], "as_variable": _core_plain["as_variable"],
                     "show_progress": lambda: show_progress, "cuda": _module("dezero.cuda"), "os": _module("os"),
                     "subprocess": _module("subprocess"), "urllib": _urllib, "np": lambda: np,
                     "_dot_var": _attr("leafgrad.graphviz", "dezero_dot_var"),
                     "_dot_func": _attr("leafgrad.graphviz", "dezero_dot_func")},
    "dezero.cuda": {"Variable": _core_plain["Variable"], "np": lambda: np},
}

#: Names whose DeZero meaning wins over leafgrad's under the alias (looked up before leafgrad's module).
OVERRIDES: Dict[str, Dict[str, Callable[[], Any]]] = {
    "dezero": {"using_config": lambda: using_config},
    "dezero.core": {"array_types": array_types, "using_config": lambda: using_config},
    "dezero.core_simple": {"array_types": array_types, "using_config": lambda: using_config},
    # DeZero's picture: the nodes and edges that walking creator.inputs / creator.outputs finds
    "dezero.utils": {"get_dot_graph": _attr("leafgrad.graphviz", "get_dezero_dot_graph"),
                     "plot_dot_graph": _attr("leafgrad.graphviz", "plot_dezero_dot_graph")},
}
