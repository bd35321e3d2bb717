"""Saving and loading weights and training checkpoints: atomic writes, all-or-nothing loads.

* Files are ``.npz`` archives (readable by ``numpy.load`` and by DeZero) and
  never contain pickled objects: they are written and read with
  ``allow_pickle=False``.
* Writing is atomic: the archive goes to a temporary file in the target's
  folder, is flushed and ``fsync``-ed, then renamed over the target with
  ``os.replace``.  A crash, an exception or a ``kill -9`` during a save leaves
  the previous file untouched (at worst a stray ``.<name>.*.tmp`` file stays
  next to it).
* Loading is all or nothing: every entry is checked against the model (and
  the optimizer) before anything changes, the ``.npy`` headers before any
  array is read (:mod:`leafgrad._npz_reader`), so a file cannot make us
  allocate more than the model needs.  A truncated or corrupt file, a member
  that is not an ``.npy`` array, an entry holding pickled objects, a missing,
  extra, wrongly shaped, non-float or non-finite parameter (also for a model
  whose weights are not created yet: see :func:`_param_specs`) raises
  :class:`SerializationError` listing every problem, and leaves the model
  exactly as it was.

``save_checkpoint`` / ``load_checkpoint`` bundle the model's weights, the
optimizer's state, the epoch, NumPy's global random state and any extra
values into one file, so that training resumed from it continues exactly as
if it had never stopped.  Loading one checks its record (counters,
hyperparameters, random states through :func:`check_random_state`) as well.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np

from leafgrad import cuda
from leafgrad._npz_reader import NpzArchive

__all__ = ["SerializationError", "save_weights", "load_weights", "save_checkpoint", "load_checkpoint",
           "save_npz", "load_npz", "check_random_state"]

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
def load_npz(path: PathLike, what: str = "load_npz") -> Dict[str, np.ndarray]:
    """Read every array of the ``.npz`` file ``path`` into memory, without pickles.

    Raises :class:`SerializationError` (prefixed with ``what``) for a file that
    is not an archive, is truncated or corrupt, holds Python objects or members
    that are not ``.npy`` arrays, or whose headers declare more data than the
    members hold.
    """
    path = _existing_npz_path(path)
    with NpzArchive(path, what) as archive:
        return archive.read_all()


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


class _Spec(NamedTuple):
    """What a parameter must look like in a file: ``shape`` (None: any; a None size: any) and ``dtype`` (None: any float)."""

    shape: Optional[tuple]
    dtype: Optional[np.dtype]


def _lazy_spec(owner: Any, attr: str, chained_in: Optional[int]) -> _Spec:
    """The shape a not-yet-created parameter will have, as far as its layer (and the layer before it) tells."""
    from leafgrad.layers import Conv2d, Deconv2d, Linear, _ConvBase
    from leafgrad.utils import pair
    dtype = np.dtype(getattr(owner, "dtype", np.float32)) if owner is not None else None
    if isinstance(owner, Linear) and attr == "W":
        return _Spec((owner.in_size if owner.in_size is not None else chained_in, owner.out_size), dtype)
    if isinstance(owner, _ConvBase) and attr == "W":
        kh, kw = pair(owner.kernel_size)
        c, oc = owner.in_channels, owner.out_channels
        if isinstance(owner, Conv2d):
            return _Spec((oc, c, kh, kw), dtype)
        if isinstance(owner, Deconv2d):
            return _Spec((c, oc, kh, kw), dtype)
    return _Spec(None, dtype if isinstance(owner, (Linear, _ConvBase)) else None)


def _param_specs(model: Any) -> List[Tuple[str, Any, _Spec]]:
    """``(path, parameter, spec)`` for every parameter of ``model``, built or not.

    A built parameter must keep its shape and dtype.  A parameter not created
    yet is described by its layer (``Linear``: ``(in_size?, out_size)``;
    ``Conv2d``: ``(out_channels, in_channels?, KH, KW)``), and a ``Linear`` in
    a ``layers`` list (``Sequential``, ``MLP``) takes its input size from the
    layer before it, so that the shapes chain.
    """
    from leafgrad.layers import Layer, Linear
    owners: Dict[int, Tuple[Any, str]] = {}
    chained: Dict[int, int] = {}
    if isinstance(model, Layer):
        stack = [model]
        seen = {id(model)}
        while stack:
            layer = stack.pop()
            seq = getattr(layer, "layers", None)
            if isinstance(seq, list):
                for a, b in zip(seq, seq[1:]):
                    if isinstance(a, Linear) and isinstance(b, Linear):
                        chained[id(b)] = a.out_size
            for name, obj in layer._registered():
                if isinstance(obj, Layer):
                    if id(obj) not in seen:
                        seen.add(id(obj))
                        stack.append(obj)
                else:
                    owners.setdefault(id(obj), (layer, name))
    specs = []
    for key, param in _named_params(model):
        data = param.data
        if data is not None:
            specs.append((key, param, _Spec(tuple(data.shape), np.dtype(data.dtype))))
        else:
            owner, attr = owners.get(id(param), (None, ""))
            specs.append((key, param, _lazy_spec(owner, attr, chained.get(id(owner)))))
    return specs


def _fmt_shape(shape: Optional[tuple]) -> str:
    if shape is None:
        return "any shape"
    inner = ", ".join("?" if n is None else str(n) for n in shape)
    return f"({inner}{',' if len(shape) == 1 else ''})"


def _shape_fits(shape: tuple, spec: Optional[tuple]) -> bool:
    return spec is None or (len(shape) == len(spec) and all(s is None or s == n for n, s in zip(shape, spec)))


#: A parameter whose size the model cannot bound (a free input size) is read only when it is smaller than
#: this, or stored at most ``_MAX_RATIO`` times compressed: no file makes leafgrad allocate much more than its size.
_FREE_LIMIT = 16 << 20
_MAX_RATIO = 16


def _unbounded(entry: Any, spec: _Spec) -> bool:
    """True when ``entry`` (a header) is large, compressed far beyond its stored size, and only a free size allows it."""
    nbytes, stored = getattr(entry, "nbytes", 0), getattr(entry, "stored", None)
    free = spec.shape is None or any(n is None for n in spec.shape)
    return free and stored is not None and nbytes > _FREE_LIMIT and nbytes > _MAX_RATIO * stored


def _as_dtype(key: str, a: np.ndarray, dtype: Optional[np.dtype], cast: bool, problems: List[str]) -> Any:
    """``a`` in ``dtype`` (native byte order), cast when the values survive exactly (or ``cast``); None on a problem."""
    target = dtype if dtype is not None else a.dtype.newbyteorder("=")
    if a.dtype == target:
        return a
    b = a.astype(target)
    if cast or np.array_equal(b.astype(a.dtype), a):
        return b
    problems.append(f"parameter {key!r}: dtype {a.dtype} in the file, the model expects {target} "
                    "(the values do not convert exactly)")
    return None


def _plan_weights(model: Any, arrays: Mapping[str, Any], strict: bool, where: str,
                  cast: bool = False, fetch: Optional[Callable[[str], np.ndarray]] = None,
                  ) -> Tuple[List[Tuple[Any, np.ndarray]], List[str], List[str]]:
    """Match file entries against ``model``'s parameters without changing anything.

    ``arrays`` maps names to arrays, or to :class:`~leafgrad._npz_reader.Member`
    headers read by ``fetch(name)`` only once every name, shape and dtype kind
    was accepted (so a file cannot make us allocate what the model does not
    need).  Returns (assignments, problems, ignored): ``(param, array)`` pairs to
    install, a description of every problem found, and the file keys left unused.
    Checked: every parameter is present (``strict``; built or not), no unknown
    names (``strict``), shapes as the model needs, floating dtypes (another
    float dtype is cast only when exact, or always with ``cast``), finite values.
    """
    fetch = fetch if fetch is not None else (lambda k: arrays[k])
    problems: List[str] = []
    wanted: List[Tuple[str, Any, _Spec]] = []
    specs = _param_specs(model)
    known = {key for key, _, _ in specs}
    for key, param, spec in specs:
        if key not in arrays:
            if strict:
                problems.append(f"parameter {key!r} is missing from the file")
            continue
        entry = arrays[key]
        kind = np.dtype(entry.dtype).kind
        if kind not in "biufc":
            problems.append(f"parameter {key!r}: unsupported dtype {entry.dtype} in the file")
        elif kind != "f":
            problems.append(f"parameter {key!r}: dtype {entry.dtype} in the file; weights must be floating point")
        elif not _shape_fits(tuple(entry.shape), spec.shape):
            problems.append(f"parameter {key!r}: shape {tuple(entry.shape)} in the file, "
                            f"the model expects {_fmt_shape(spec.shape)}")
        elif _unbounded(entry, spec):
            problems.append(f"parameter {key!r}: shape {tuple(entry.shape)} in the file ({entry.nbytes} bytes "
                            f"from {entry.stored} in the file), and the model, not built yet, cannot bound "
                            "its size; build it first (call it once on an input) to load this file")
        else:
            wanted.append((key, param, spec))
    ignored = [k for k in arrays if k not in known]
    if strict:
        for k in ignored:
            problems.append(f"the file has an entry {k!r} that matches no parameter of the model")
    if problems:
        return [], problems, ignored
    assignments: List[Tuple[Any, np.ndarray]] = []
    for key, param, spec in wanted:
        a = fetch(key)
        if not np.isfinite(a).all():
            problems.append(f"parameter {key!r}: the file holds NaN or infinite values")
            continue
        a = _as_dtype(key, a, spec.dtype, cast, problems)
        if a is None:
            continue
        if param.data is not None:
            xp = cuda.get_array_module(param.data)
            if xp is not np:
                a = xp.asarray(a)
        assignments.append((param, a))
    return assignments, problems, ignored


def _raise_problems(what: str, path: str, problems: List[str]) -> None:
    if problems:
        if len(problems) == 1:
            raise SerializationError(f"{what}: {path!r}: {problems[0]}; nothing was loaded")
        lines = "\n  ".join(problems)
        raise SerializationError(f"{what}: {path!r}: {len(problems)} problems; nothing was loaded:\n  {lines}")


def load_weights(model: Any, path: PathLike, strict: bool = True, _cast: bool = False) -> List[str]:
    """Load ``path`` (written by ``save_weights``) into ``model``: all or nothing.

    With ``strict=True`` (the default) every parameter, created or not yet,
    must be in the file, and every entry of the file must match a parameter.
    Shapes must be what the model needs (for a parameter not created yet, what
    its layer and the layer before it determine), dtypes floating point (a
    float64 array into a float32 parameter is accepted only when its values are
    exactly float32 values), values finite.  Headers are checked before any
    array is read.  With ``strict=False`` extra entries are ignored and missing
    parameters keep their values (or stay uncreated).  Returns the file
    entries that were ignored.
    """
    what = "load_weights"
    with NpzArchive(_existing_npz_path(path), what) as archive:
        assignments, problems, ignored = _plan_weights(model, archive.members, strict, what, cast=_cast,
                                                       fetch=archive.read)
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


#: The largest ``__meta__`` entry read (the JSON of counters, hyperparameters and ``extra`` values).
META_LIMIT = 16 << 20
_MT_KEYS = 624


def check_random_state(state: Any) -> Optional[str]:
    """Why ``state`` (a ``RandomState.get_state()`` tuple) is not a valid MT19937 state, or None if it is.

    The position must be within the 624 keys (NumPy's legacy setter accepts
    any, and the next draw then reads outside the state: a segfault); the
    state is then set on a scratch generator with NumPy's own setter, which
    draws once, so no generator in use is touched.
    """
    try:
        name, keys, pos, has_gauss, cached = state
    except (TypeError, ValueError):
        return "it is not a (name, keys, pos, has_gauss, cached_gaussian) tuple"
    if name != "MT19937":
        return f"generator {name!r} is not MT19937"
    if not isinstance(keys, np.ndarray) or keys.shape != (_MT_KEYS,) or \
            keys.dtype.newbyteorder("=") != np.dtype(np.uint32):
        return f"its keys are not {_MT_KEYS} unsigned 32-bit integers"
    for label, value, lo, hi in (("position", pos, 0, _MT_KEYS), ("has_gauss", has_gauss, 0, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
            return f"its {label} {value!r} is not a whole number from {lo} to {hi}"
    if isinstance(cached, bool) or not isinstance(cached, (int, float)) or not math.isfinite(cached):
        return f"its cached gaussian {cached!r} is not a finite number"
    try:
        scratch = np.random.RandomState()
        scratch.set_state((name, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)))
        scratch.random_sample()
    except (ValueError, TypeError, OverflowError) as err:
        return f"NumPy refuses it ({err})"
    return None


def _is_int(v: Any, lowest: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lowest


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_meta(meta: Any) -> List[str]:
    """The problems of a checkpoint's ``__meta__`` record (its types and ranges)."""
    if not isinstance(meta, dict):
        return ["the '__meta__' entry is not a JSON object"]
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
        return [f"unsupported checkpoint format {meta.get('format')!r} version {meta.get('version')!r}"]
    problems = []
    if meta.get("epoch") is not None and not _is_int(meta.get("epoch")):
        problems.append(f"the epoch {meta.get('epoch')!r} is not a whole number >= 0")
    opt = meta.get("optimizer")
    if opt is not None:
        if not isinstance(opt, dict) or not isinstance(opt.get("type"), str):
            problems.append("optimizer: the record is malformed")
        else:
            for k, v in (opt.get("hyperparams") or {}).items() if isinstance(opt.get("hyperparams"), dict) else ():
                if not _is_number(v) or v < 0:
                    problems.append(f"optimizer: hyperparameter {k!r} is {v!r}, not a finite number >= 0")
            for k, v in (opt.get("counters") or {}).items() if isinstance(opt.get("counters"), dict) else ():
                if not _is_int(v):
                    problems.append(f"optimizer: counter {k!r} is {v!r}, not a whole number >= 0")
            for k in ("hyperparams", "counters", "state"):
                if not isinstance(opt.get(k, {}), dict):
                    problems.append(f"optimizer: {k} is not a JSON object")
            for pname, snames in (opt.get("state") or {}).items() if isinstance(opt.get("state"), dict) else ():
                if not isinstance(snames, list) or not all(isinstance(n, str) for n in snames):
                    problems.append(f"optimizer: the state names of parameter {pname!r} are malformed")
    rs = meta.get("random")
    if rs is not None and not isinstance(rs, dict):
        problems.append("the random state is malformed")
    if not isinstance(meta.get("extra", {}), dict) or not isinstance(meta.get("extra_arrays", []), list) or \
            not all(isinstance(k, str) for k in meta.get("extra_arrays", [])):
        problems.append("the extra values are malformed")
    return problems


def load_checkpoint(path: PathLike, model: Any, optimizer: Any = None,
                    restore_random_state: bool = True,
                    _extra: Optional[Callable[[Dict[str, Any]], Dict[str, Tuple[tuple, Any]]]] = None,
                    _check: Optional[Callable[[Dict[str, Any]], List[str]]] = None,
                    _writer: str = "save_checkpoint") -> Dict[str, Any]:
    """Restore a ``save_checkpoint`` file into ``model`` (and ``optimizer``): all or nothing.

    Everything is read and checked first; on any problem a
    :class:`SerializationError` names it and nothing changes (model,
    optimizer, random state).  Checked: the weights as :func:`load_weights`
    checks them; the optimizer's type, hyperparameters (finite numbers),
    counters (whole numbers >= 0) and state arrays (shaped and typed like
    their parameters, finite); the random state (:func:`check_random_state`);
    no entry the format does not define.  Headers are checked before arrays
    are read.  NumPy's global random state is restored unless
    ``restore_random_state=False``.  Returns ``{"epoch": ..., "extra": {...}}``.
    """
    what = "load_checkpoint"
    spath = os.fspath(path)
    with NpzArchive(_existing_npz_path(path), what) as archive:
        result, commit = _plan_checkpoint(archive, spath, model, optimizer, restore_random_state, _extra, _check,
                                          _writer)
    commit()  # nothing below can fail
    return result


def _plan_checkpoint(archive: NpzArchive, spath: str, model: Any, optimizer: Any, restore_random_state: bool,
                     extra_spec: Optional[Callable[[Dict[str, Any]], Dict[str, Tuple[tuple, Any]]]],
                     check: Optional[Callable[[Dict[str, Any]], List[str]]],
                     writer: str) -> Tuple[Dict[str, Any], Callable]:
    """Read and check the checkpoint in ``archive``; returns its result and a function that installs it."""
    what = "load_checkpoint"
    members = archive.members
    m = members.get(_META_KEY)
    if m is None:
        raise SerializationError(f"{what}: {spath!r} is not a leafgrad checkpoint (no {_META_KEY!r} entry); "
                                 "use load_weights for a weights file")
    if m.dtype != np.uint8 or len(m.shape) != 1 or m.nbytes > META_LIMIT:
        raise SerializationError(f"{what}: {spath!r}: the {_META_KEY!r} entry is not a JSON text of at most "
                                 f"{META_LIMIT} bytes")
    try:
        meta = json.loads(archive.read(_META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise SerializationError(f"{what}: {spath!r}: the {_META_KEY!r} entry is corrupt: {err}") from err
    _raise_problems(what, spath, _check_meta(meta))

    opt_meta = meta.get("optimizer")
    extra_names = set(meta.get("extra_arrays", []))
    model_entries, opt_entries, extra_entries = {}, {}, {}
    problems: List[str] = []
    for k, member in members.items():
        if k.startswith("model/"):
            model_entries[k[len("model/"):]] = member
        elif k.startswith("optimizer/"):
            opt_entries[k[len("optimizer/"):]] = member
        elif k.startswith("extra/") and k[len("extra/"):] in extra_names:
            extra_entries[k[len("extra/"):]] = member
        elif k not in (_META_KEY, "random/keys"):
            problems.append(f"entry {k!r} is not part of a leafgrad checkpoint")
    _raise_problems(what, spath, problems)

    # The weights (headers first, then the arrays the model needs).
    assignments, model_problems, _ = _plan_weights(model, model_entries, True, what,
                                                   fetch=lambda k: archive.read("model/" + k))
    _raise_problems(what, spath, ["model: " + p for p in model_problems])

    # The optimizer: its record and the headers of its state arrays, then the arrays.
    opt_state = None
    if optimizer is not None:
        if opt_meta is None:
            problems.append("the checkpoint holds no optimizer state")
        else:
            opt_state = {"type": opt_meta.get("type"), "hyperparams": opt_meta.get("hyperparams", {}),
                         "counters": opt_meta.get("counters", {}), "state": {}}
            listed = set()
            for pname, snames in opt_meta.get("state", {}).items():
                slots = {}
                for sname in snames:
                    listed.add(f"{sname}/{pname}")
                    member = opt_entries.get(f"{sname}/{pname}")
                    if member is None:
                        problems.append(f"optimizer: state {sname!r} of parameter {pname!r} is missing")
                    else:
                        slots[sname] = member
                opt_state["state"][pname] = slots
            problems += [f"entry {'optimizer/' + k!r} is not part of the optimizer's state"
                         for k in opt_entries if k not in listed]
            installed = {id(p): a for p, a in assignments}
            shapes = {}
            for key, param in _named_params(model):
                a = installed.get(id(param), param.data)
                if a is not None:
                    shapes[key] = (tuple(a.shape), a.dtype)
            problems += ["optimizer: " + p for p in optimizer.check_state_dict(opt_state, shapes)]
            _raise_problems(what, spath, problems)
            for pname, slots in opt_state["state"].items():
                for sname in list(slots):
                    a = archive.read(f"optimizer/{sname}/{pname}")
                    if not np.isfinite(a).all():
                        problems.append(f"optimizer: state {sname!r} of parameter {pname!r} holds NaN or "
                                        "infinite values")
                    slots[sname] = a

    random_state = None
    if restore_random_state:
        rs = meta.get("random") or {}
        keys = members.get("random/keys")
        if keys is None or keys.shape != (_MT_KEYS,) or keys.dtype.newbyteorder("=") != np.dtype(np.uint32):
            problems.append("the random state is missing or malformed")
        else:
            random_state = (rs.get("name", "MT19937"), archive.read("random/keys"), rs.get("pos"),
                            rs.get("has_gauss"), rs.get("cached_gaussian"))
            why = check_random_state(random_state)
            if why is not None:
                problems.append(f"the random state is invalid: {why}")
            else:
                random_state = (random_state[0], random_state[1].astype(np.uint32), *random_state[2:])

    expected = extra_spec(meta) if extra_spec is not None else {}
    for name, (shape, kinds) in expected.items():
        member = extra_entries.get(name)
        typed = member is not None and (member.dtype.kind in kinds if isinstance(kinds, str)
                                        else member.dtype.newbyteorder("=") == np.dtype(kinds))
        if member is None or member.shape != shape or not typed:
            problems.append(f"the extra array {name!r} is missing: the file was not written by {writer}"
                            if member is None else
                            f"the extra array {name!r} has shape {member.shape} and dtype {member.dtype}, "
                            f"expected shape {shape} and dtype {kinds}")
    _raise_problems(what, spath, problems)
    extra: Dict[str, Any] = {name: archive.read("extra/" + name) for name in extra_entries}
    for k, v in (meta.get("extra") or {}).items():
        extra.setdefault(k, v)
    if check is not None:
        problems += check(extra)
    _raise_problems(what, spath, problems)

    def commit() -> None:
        for param, a in assignments:
            param.data = a
        if opt_state is not None:
            optimizer._apply_state_dict(opt_state)
        if random_state is not None:
            np.random.set_state(random_state)
    return {"epoch": meta.get("epoch"), "extra": extra}, commit
