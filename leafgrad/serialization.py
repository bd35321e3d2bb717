"""Saving and loading weights and training checkpoints: atomic writes, all-or-nothing loads.

* Files are ``.npz`` archives (readable by ``numpy.load`` and by DeZero) and
  never contain pickled objects: they are written and read with
  ``allow_pickle=False``.
* Writing is atomic: the archive goes to a temporary file in the target's
  folder, is flushed and ``fsync``-ed, then renamed over the target with
  ``os.replace``.  A crash, an exception or a ``kill -9`` during a save leaves
  the previous file untouched (at worst a stray ``.<name>.*.tmp`` file stays
  next to it).
* Loading is all or nothing: every entry is read and checked against the
  model (and the optimizer) before anything changes.  A truncated or corrupt
  file, an entry holding pickled objects, or a missing, extra, wrongly shaped
  or wrongly typed parameter raises :class:`SerializationError` naming the
  parameter and the problem, and leaves the model exactly as it was.

``save_checkpoint`` / ``load_checkpoint`` bundle the model's weights, the
optimizer's state, the epoch, NumPy's global random state and any extra
values into one file, so that training resumed from it continues exactly as
if it had never stopped.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from leafgrad import cuda

__all__ = ["SerializationError", "save_weights", "load_weights", "save_checkpoint", "load_checkpoint",
           "save_npz", "load_npz"]

PathLike = Union[str, "os.PathLike[str]"]

CHECKPOINT_FORMAT = "leafgrad-checkpoint"
CHECKPOINT_VERSION = 1
_META_KEY = "__meta__"


class SerializationError(ValueError):
    """A weights or checkpoint file that cannot be loaded (the message says which entry and why)."""


# =============================================================================
# Paths and atomic writing
# =============================================================================
def _npz_path(path: PathLike) -> str:
    """``path`` as a string, with ``.npz`` appended when missing (as ``numpy.savez`` does)."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path.endswith(".npz"):
        path += ".npz"
    return path


def _existing_npz_path(path: PathLike) -> str:
    """The file to read: ``path`` itself if it exists, else ``path + '.npz'`` if that exists."""
    raw = os.fspath(path)
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    if os.path.exists(raw):
        return raw
    with_ext = _npz_path(raw)
    if os.path.exists(with_ext):
        return with_ext
    raise FileNotFoundError(f"no such weights file: {raw!r}")


def _file_mode(path: str) -> int:
    """Permission bits for the new file: the old file's, else 0o666 minus the process umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    umask = 0o022
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
                    break
    return 0o666 & ~umask


def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories cannot be opened)."""
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_array(fileobj: Any, array: np.ndarray) -> None:
    """Write one array in ``.npy`` format (no pickles)."""
    np.lib.format.write_array(fileobj, array, allow_pickle=False)


def _write_npz(fileobj: Any, arrays: Mapping[str, np.ndarray], compress: bool) -> None:
    """Write ``arrays`` to ``fileobj`` as an ``.npz`` archive (the layout ``numpy.savez`` writes)."""
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(fileobj, mode="w", compression=compression, allowZip64=True) as zf:
        for key, array in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                _write_array(member, array)


def save_npz(path: PathLike, arrays: Mapping[str, Any], compress: bool = False) -> str:
    """Write ``arrays`` (name -> array) to the ``.npz`` file ``path`` atomically; return the path written.

    Arrays on the GPU are copied to the host.  Object arrays are refused.
    ``.npz`` is appended to ``path`` when missing.
    """
    path = _npz_path(path)
    host = {}
    for key, a in arrays.items():
        a = np.asarray(cuda.as_numpy(a))
        if a.dtype.hasobject:
            raise SerializationError(f"save_npz: entry {key!r} holds Python objects ({a.dtype}); "
                                     "only numeric arrays can be saved")
        host[key] = a
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, host, compress)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError, NotImplementedError):
            os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return path


# =============================================================================
# Reading
# =============================================================================
def _describe_start(head: bytes) -> str:
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array, not an .npz archive"
    if head[:1] == b"\x80":
        return "a Python pickle, not an .npz archive (pickles are never loaded)"
    if not head:
        return "empty"
    return "not an .npz (zip) archive"


def load_npz(path: PathLike, what: str = "load_npz") -> Dict[str, np.ndarray]:
    """Read every array of the ``.npz`` file ``path`` into memory, without pickles.

    Raises :class:`SerializationError` (prefixed with ``what``) for a file that
    is not an archive, is truncated or corrupt, or holds Python objects.
    """
    path = _existing_npz_path(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if not head.startswith(b"PK"):
        raise SerializationError(f"{what}: {path!r} is {_describe_start(head)}")
    arrays: Dict[str, np.ndarray] = {}
    key = None
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                a = npz[key]
                if not a.flags.writeable:
                    a = a.copy()
                arrays[key] = a
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise SerializationError(f"{what}: {path!r}: entry {key!r} holds pickled Python objects; "
                                     "refusing to load it (allow_pickle=False)") from err
        raise SerializationError(f"{what}: {path!r}: entry {key!r} is corrupt: {err}") from err
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, NotImplementedError) as err:
        where = "" if key is None else f" (at entry {key!r})"
        raise SerializationError(f"{what}: {path!r} is truncated or corrupt{where}: "
                                 f"{type(err).__name__}: {err}") from err
    return arrays


# =============================================================================
# Weights
# =============================================================================
def _named_params(model: Any) -> List[Tuple[str, Any]]:
    if hasattr(model, "named_params"):
        return list(model.named_params())
    params_dict: Dict[str, Any] = {}
    model._flatten_params(params_dict)
    return list(params_dict.items())


def _weights_arrays(model: Any) -> Dict[str, Any]:
    """``path -> array`` for every initialized parameter."""
    return {key: p.data for key, p in _named_params(model) if p.data is not None}


def save_weights(model: Any, path: PathLike, compress: bool = False) -> str:
    """Write every initialized parameter of ``model`` to ``path`` (atomically); return the path written.

    Keys are parameter paths (``"l0/W"``), as in DeZero, so DeZero reads the
    file too.  ``compress=True`` deflates the archive (slower, rarely smaller
    for trained float weights).
    """
    return save_npz(path, _weights_arrays(model), compress=compress)


def _plan_weights(model: Any, arrays: Mapping[str, np.ndarray], strict: bool, where: str,
                  cast: bool = False) -> Tuple[List[Tuple[Any, np.ndarray]], List[str], List[str]]:
    """Match file ``arrays`` against ``model``'s parameters without changing anything.

    Returns (assignments, problems, ignored): ``(param, array)`` pairs to install,
    a description of every problem found, and the file keys left unused.
    """
    assignments: List[Tuple[Any, np.ndarray]] = []
    problems: List[str] = []
    named = _named_params(model)
    known = set()
    for key, param in named:
        known.add(key)
        current = param.data
        if key not in arrays:
            if current is not None and strict:
                problems.append(f"parameter {key!r} is missing from the file")
            continue
        a = arrays[key]
        if a.dtype.kind not in "biufc":
            problems.append(f"parameter {key!r}: unsupported dtype {a.dtype} in the file")
            continue
        if current is not None:
            if tuple(a.shape) != tuple(current.shape):
                problems.append(f"parameter {key!r}: shape {tuple(a.shape)} in the file, "
                                f"the model expects {tuple(current.shape)}")
                continue
            if a.dtype != current.dtype:
                if cast and a.dtype.kind == current.dtype.kind == "f":
                    a = a.astype(current.dtype)
                else:
                    problems.append(f"parameter {key!r}: dtype {a.dtype} in the file, "
                                    f"the model expects {current.dtype}")
                    continue
            xp = cuda.get_array_module(current)
            if xp is not np:
                a = xp.asarray(a)
        assignments.append((param, a))
    ignored = [k for k in arrays if k not in known]
    if strict:
        for k in ignored:
            problems.append(f"the file has an entry {k!r} that matches no parameter of the model")
    return assignments, problems, ignored


def _raise_problems(what: str, path: str, problems: List[str]) -> None:
    if problems:
        if len(problems) == 1:
            raise SerializationError(f"{what}: {path!r}: {problems[0]}; nothing was loaded")
        lines = "\n  ".join(problems)
        raise SerializationError(f"{what}: {path!r}: {len(problems)} problems; nothing was loaded:\n  {lines}")


def load_weights(model: Any, path: PathLike, strict: bool = True, _cast: bool = False) -> List[str]:
    """Load ``path`` (written by ``save_weights``) into ``model``: all or nothing.

    With ``strict=True`` (the default) every initialized parameter must be in
    the file with the same shape and dtype, and every entry of the file must
    match a parameter.  Lazily created parameters not yet initialized take the
    file's array (or stay uninitialized if the file lacks them).  With
    ``strict=False`` extra entries are ignored and missing parameters keep
    their values.  Returns the file entries that were ignored.
    """
    what = "load_weights"
    arrays = load_npz(path, what)
    assignments, problems, ignored = _plan_weights(model, arrays, strict, what, cast=_cast)
    _raise_problems(what, os.fspath(path), problems)
    for param, a in assignments:
        param.data = a
    return ignored


# =============================================================================
# Checkpoints
# =============================================================================
def _random_state() -> Tuple[np.ndarray, Dict[str, Any]]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return np.asarray(keys), {"name": name, "pos": int(pos), "has_gauss": int(has_gauss),
                              "cached_gaussian": float(cached)}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def save_checkpoint(path: PathLike, model: Any, optimizer: Any = None, epoch: Optional[int] = None,
                    extra: Optional[Mapping[str, Any]] = None, compress: bool = False) -> str:
    """Save everything needed to resume training into one ``.npz`` file, atomically.

    Stores ``model``'s weights, ``optimizer``'s state (hyperparameters,
    counters, per-parameter arrays), ``epoch``, NumPy's global random state,
    and ``extra``: a mapping of names to NumPy arrays or JSON-serializable
    values (numbers, strings, lists, dicts).  Returns the path written.
    """
    arrays: Dict[str, Any] = {}
    for key, a in _weights_arrays(model).items():
        arrays["model/" + key] = a
    opt_meta = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        opt_meta = {"type": sd["type"], "hyperparams": sd["hyperparams"], "counters": sd["counters"],
                    "state": {}}
        for pname, slots in sd["state"].items():
            opt_meta["state"][pname] = sorted(slots)
            for sname, a in slots.items():
                arrays[f"optimizer/{sname}/{pname}"] = a
    keys, rs = _random_state()
    arrays["random/keys"] = keys
    extra_meta: Dict[str, Any] = {}
    extra_arrays: List[str] = []
    for k, v in (extra or {}).items():
        if isinstance(v, cuda.array_types):
            arrays["extra/" + k] = v
            extra_arrays.append(k)
        else:
            extra_meta[k] = v
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": epoch,
            "optimizer": opt_meta, "random": rs, "extra": extra_meta, "extra_arrays": extra_arrays}
    try:
        text = json.dumps(meta, default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise TypeError(f"save_checkpoint: extra values must be arrays or JSON-serializable: {err}") from None
    arrays[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return save_npz(path, arrays, compress=compress)


def load_checkpoint(path: PathLike, model: Any, optimizer: Any = None,
                    restore_random_state: bool = True) -> Dict[str, Any]:
    """Restore a ``save_checkpoint`` file into ``model`` (and ``optimizer``): all or nothing.

    Everything is read and checked first; on any problem a
    :class:`SerializationError` names it and nothing changes (model,
    optimizer, random state).  NumPy's global random state is restored unless
    ``restore_random_state=False``.  Returns ``{"epoch": ..., "extra": {...}}``.
    """
    what = "load_checkpoint"
    spath = os.fspath(path)
    arrays = load_npz(path, what)
    if _META_KEY not in arrays:
        raise SerializationError(f"{what}: {spath!r} is not a leafgrad checkpoint (no {_META_KEY!r} entry); "
                                 "use load_weights for a weights file")
    try:
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise SerializationError(f"{what}: {spath!r}: the {_META_KEY!r} entry is corrupt: {err}") from err
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
        raise SerializationError(f"{what}: {spath!r}: unsupported checkpoint format "
                                 f"{meta.get('format')!r} version {meta.get('version')!r}")

    model_arrays, opt_arrays, extra = {}, {}, {}
    for k, a in arrays.items():
        if k.startswith("model/"):
            model_arrays[k[len("model/"):]] = a
        elif k.startswith("optimizer/"):
            opt_arrays[k[len("optimizer/"):]] = a
        elif k.startswith("extra/"):
            extra[k[len("extra/"):]] = a
    problems: List[str] = []
    assignments, model_problems, _ = _plan_weights(model, model_arrays, True, what)
    problems += ["model: " + p for p in model_problems]

    opt_state = None
    opt_meta = meta.get("optimizer")
    if optimizer is not None:
        if opt_meta is None:
            problems.append("the checkpoint holds no optimizer state")
        else:
            opt_state = {"type": opt_meta.get("type"), "hyperparams": opt_meta.get("hyperparams", {}),
                         "counters": opt_meta.get("counters", {}), "state": {}}
            for pname, snames in opt_meta.get("state", {}).items():
                slots = {}
                for sname in snames:
                    a = opt_arrays.get(f"{sname}/{pname}")
                    if a is None:
                        problems.append(f"optimizer: state {sname!r} of parameter {pname!r} is missing")
                    else:
                        slots[sname] = a
                opt_state["state"][pname] = slots
            # Shapes the parameters will have once the model's weights are installed.
            shapes = {}
            for key, param in _named_params(model):
                a = model_arrays.get(key)
                if a is not None:
                    shapes[key] = (a.shape, param.data.dtype if param.data is not None else a.dtype)
            problems += ["optimizer: " + p for p in optimizer.check_state_dict(opt_state, shapes)]

    random_state = None
    if restore_random_state:
        rs = meta.get("random") or {}
        keys = arrays.get("random/keys")
        try:
            if keys is None or keys.shape != (624,) or keys.dtype.kind != "u":
                raise ValueError("bad keys")
            random_state = (str(rs.get("name", "MT19937")), keys.astype(np.uint32), int(rs["pos"]),
                            int(rs["has_gauss"]), float(rs["cached_gaussian"]))
        except (KeyError, TypeError, ValueError):
            problems.append("the random state is missing or malformed")
    _raise_problems(what, spath, problems)

    # Commit: nothing below can fail.
    for param, a in assignments:
        param.data = a
    if opt_state is not None:
        optimizer._apply_state_dict(opt_state)
    if random_state is not None:
        np.random.set_state(random_state)
    extra.update(meta.get("extra") or {})
    return {"epoch": meta.get("epoch"), "extra": extra}
