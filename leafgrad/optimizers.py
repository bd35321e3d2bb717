"""Optimizers: ``SGD MomentumSGD AdaGrad AdaDelta Adam AdamW`` and the hooks ``WeightDecay ClipGrad FreezeParam``.

``optimizer = SGD(lr).setup(model)`` then, after each ``loss.backward()``,
``optimizer.update()`` changes every parameter that has a gradient.

Updates happen in place on ``param.data`` and allocate nothing per step: the
temporaries of the update formulas go to a scratch buffer the optimizer keeps
(as large as its largest parameter) and are written with ``out=`` and in-place
operators.  Hyperparameters are used as Python floats, so float32 parameters
stay float32 under NumPy 2 even when a schedule sets ``lr`` to a NumPy float64.
Each temporary has the dtype of the term of DeZero's formula it holds: a
float64 gradient of a float32 parameter (from a float64 input) is scaled in
float64 and rounded once, as DeZero's ``param.data -= lr * grad`` does, so a
seeded program prints the same numbers on both.

On a GPU each update is one fused kernel per parameter (``leafgrad/_kernels.py``)
that computes the same numbers, and ``ClipGrad`` never waits for the device.

Per-parameter state (momentum, running averages) is created at a parameter's
first update and can be exported and restored with ``state_dict()`` /
``load_state_dict()``, keyed by the parameter's path in the model
(``"l0/W"``): :func:`leafgrad.serialization.save_checkpoint` uses them.
"""
from __future__ import annotations

import fnmatch
import math
import weakref
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

from leafgrad import _kernels, cuda
from leafgrad.core import Parameter

__all__ = ["Optimizer", "SGD", "MomentumSGD", "AdaGrad", "AdaDelta", "Adam", "AdamW",
           "WeightDecay", "ClipGrad", "FreezeParam", "OPTIMIZERS", "from_name", "learning_rate", "lr_attribute"]


# =============================================================================
# Scratch buffers
# =============================================================================
class _Scratch:
    """Reusable flat buffers, one set per (array module, dtype), viewed in any shape up to the largest.

    ``get(like, k, dtype)`` returns the ``k``-th temporary shaped like ``like``,
    of ``dtype`` (``like``'s by default); its contents are garbage.  The buffers grow to the largest parameter seen and
    are then reused by every step.
    """

    __slots__ = ("_buffers",)

    def __init__(self) -> None:
        self._buffers: Dict[tuple, Any] = {}

    def get(self, like: Any, k: int = 0, dtype: Any = None) -> Any:
        xp = cuda.get_array_module(like)
        dtype = like.dtype if dtype is None else np.dtype(dtype)
        key = (xp.__name__, dtype.str, k)
        buf = self._buffers.get(key)
        if buf is None or buf.size < like.size:
            buf = self._buffers[key] = xp.empty(like.size, dtype=dtype)
        return buf[:like.size].reshape(like.shape)

    def clear(self) -> None:
        """Free the buffers (they come back at the next step)."""
        self._buffers.clear()


def _root(a: Any) -> Any:
    """The array that owns ``a``'s memory."""
    while getattr(a, "base", None) is not None and hasattr(a.base, "shape"):
        a = a.base
    return a


def _unalias_grads(params: List[Parameter]) -> None:
    """Give each parameter a writable gradient array of its own before hooks modify gradients in place.

    The backward walk may hand one array (or views of one array) to several
    parameters, for example the two operands of an ``Add``; an in-place hook
    would then change (or scale twice) every gradient sharing it.  A gradient
    may also be a read-only broadcast view (the gradient of a ``sum``).
    """
    owners = set()
    for p in params:
        g = p.grad.data
        root = id(_root(g))
        if root in owners or not getattr(g.flags, "writeable", True):
            p.grad.data = g.copy()
        owners.add(root)


# =============================================================================
# Optimizer (base class)
# =============================================================================
class Optimizer:
    """The base of all optimizers: ``setup(target)``, ``update()``, ``add_hook(f)``.

    Subclasses implement ``update_one(param)`` and name their hyperparameters
    in ``hyperparams`` and their per-parameter state arrays in ``state_names``.
    """

    #: Attribute names of the hyperparameters (saved by ``state_dict``).
    hyperparams: Tuple[str, ...] = ()
    #: Names of the per-parameter state arrays, created as zeros at a parameter's first update.
    state_names: Tuple[str, ...] = ()
    #: Attribute names of integer counters (saved by ``state_dict``).
    counters: Tuple[str, ...] = ()

    def __init__(self) -> None:
        self.target: Any = None
        self.hooks: List[Callable[[List[Parameter]], None]] = []
        self._state: "weakref.WeakKeyDictionary[Parameter, Dict[str, Any]]" = weakref.WeakKeyDictionary()
        self._scratch = _Scratch()

    def setup(self, target: Any) -> "Optimizer":
        """Optimize the parameters of ``target`` (a ``Layer``/``Model``, or anything with ``params()``); returns self."""
        if not hasattr(target, "params"):
            raise TypeError(f"{type(self).__name__}.setup: {type(target).__name__} has no params() method")
        self.target = target
        return self

    def update(self) -> None:
        """Run the hooks on the parameters that have a gradient, then update each of them in place."""
        if self.target is None:
            raise RuntimeError(f"{type(self).__name__}.update: call setup(model) first")
        params = []
        seen = set()
        for p in self.target.params():
            if p.grad is not None and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        if self.hooks:
            _unalias_grads(params)
            for f in self.hooks:
                f(params)
        for param in params:
            if param.grad is not None:  # a hook (FreezeParam) may have dropped it
                self.update_one(param)

    def update_one(self, param: Parameter) -> None:
        """Update one parameter from its gradient (implemented by subclasses)."""
        raise NotImplementedError(f"{type(self).__name__}.update_one is not implemented")

    def add_hook(self, f: Callable[[List[Parameter]], None]) -> None:
        """Call ``f(params)`` before every update, with the list of parameters that have a gradient."""
        self.hooks.append(f)

    # ---- per-parameter state ---------------------------------------------------------
    def _slots(self, param: Parameter) -> Dict[str, Any]:
        """The state arrays of ``param``, created as zeros at its first update."""
        slots = self._state.get(param)
        if slots is None:
            xp = cuda.get_array_module(param.data)
            slots = {name: xp.zeros_like(param.data) for name in self.state_names}
            self._state[param] = slots
        return slots

    def _named_target_params(self) -> List[Tuple[str, Parameter]]:
        """``(path, param)`` for each parameter of the target, each once (first path wins)."""
        if self.target is None:
            return []
        if hasattr(self.target, "named_params"):
            items = self.target.named_params()
        else:
            items = ((str(i), p) for i, p in enumerate(self.target.params()))
        out, seen = [], set()
        for name, p in items:
            if id(p) not in seen:
                seen.add(id(p))
                out.append((name, p))
        return out

    def state_dict(self) -> Dict[str, Any]:
        """The optimizer's state: class name, hyperparameters, counters, and per-parameter arrays.

        ``{"type": "Adam", "hyperparams": {...}, "counters": {"t": 3},
        "state": {"l0/W": {"m": array, "v": array}, ...}}``.  The arrays are
        the optimizer's own (not copies): save them before the next update.
        """
        state = {}
        for name, p in self._named_target_params():
            slots = self._state.get(p)
            if slots is not None:
                state[name] = dict(slots)
        return {
            "type": type(self).__name__,
            "hyperparams": {k: _plain_number(getattr(self, k)) for k in self.hyperparams},
            "counters": {k: int(getattr(self, k)) for k in self.counters},
            "state": state,
        }

    def check_state_dict(self, state_dict: Mapping[str, Any],
                         shapes: Optional[Mapping[str, Tuple[tuple, Any]]] = None) -> List[str]:
        """The problems that would make ``load_state_dict(state_dict)`` fail (empty when it would succeed).

        ``shapes`` maps parameter paths to ``(shape, dtype)`` to check against
        instead of the parameters' current data (used when model weights are
        loaded in the same step).
        """
        name = type(self).__name__
        problems = []
        if state_dict.get("type") != name:
            return [f"the state is for a {state_dict.get('type')!r} optimizer, this one is {name!r}"]
        for k in self.hyperparams:
            if k not in state_dict.get("hyperparams", {}):
                problems.append(f"hyperparameter {k!r} is missing")
        for k in self.counters:
            if k not in state_dict.get("counters", {}):
                problems.append(f"counter {k!r} is missing")
        params = dict(self._named_target_params())
        for pname, slots in state_dict.get("state", {}).items():
            if pname not in params:
                problems.append(f"state for parameter {pname!r}, which the model does not have")
                continue
            if shapes is not None and pname in shapes:
                shape, dtype = shapes[pname]
            else:
                data = params[pname].data
                shape, dtype = (None, None) if data is None else (data.shape, data.dtype)
            if set(slots) != set(self.state_names):
                problems.append(f"parameter {pname!r}: state arrays {sorted(slots)}, "
                                f"expected {sorted(self.state_names)}")
                continue
            for sname, arr in slots.items():
                if shape is None:
                    problems.append(f"parameter {pname!r} has state {sname!r} but is not initialized")
                elif tuple(arr.shape) != tuple(shape):
                    problems.append(f"parameter {pname!r}: state {sname!r} has shape {tuple(arr.shape)}, "
                                    f"the parameter {tuple(shape)}")
                elif np.dtype(arr.dtype) != np.dtype(dtype):
                    problems.append(f"parameter {pname!r}: state {sname!r} has dtype {arr.dtype}, "
                                    f"the parameter {dtype}")
        return problems

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``: all or nothing (a ``ValueError`` lists every problem)."""
        problems = self.check_state_dict(state_dict)
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        self._apply_state_dict(state_dict)

    def _apply_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Install a checked state dict (cannot fail)."""
        for k in self.hyperparams:
            setattr(self, k, state_dict["hyperparams"][k])
        for k in self.counters:
            setattr(self, k, int(state_dict["counters"][k]))
        params = dict(self._named_target_params())
        self._state = weakref.WeakKeyDictionary()
        for pname, slots in state_dict.get("state", {}).items():
            p = params[pname]
            xp = cuda.get_array_module(p.data) if p.data is not None else np
            self._state[p] = {s: xp.array(a, copy=True) for s, a in slots.items()}


def _plain_number(v: Any) -> Any:
    """A hyperparameter as a Python number (NumPy scalars included), for saving as JSON."""
    if isinstance(v, (np.generic,)) or (hasattr(v, "ndim") and getattr(v, "ndim", 1) == 0):
        return v.item()
    return v


# =============================================================================
# Hook functions
# =============================================================================
class WeightDecay:
    """Hook: add ``rate * param`` to each gradient (L2 regularization)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._scratch = _Scratch()

    def __call__(self, params: Iterable[Parameter]) -> None:
        rate = float(self.rate)
        for param in params:
            g = param.grad.data
            tmp = self._scratch.get(param.data)
            cuda.get_array_module(g).multiply(param.data, rate, out=tmp)
            g += tmp


class ClipGrad:
    """Hook: scale all gradients down so that their global L2 norm is at most ``max_norm``.

    On a GPU the norm and the scaling stay on the device (:func:`_clip_on_device`): no
    value comes back to the host, so the hook never waits for the GPU.
    """

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def __call__(self, params: Iterable[Parameter]) -> None:
        params = list(params)
        if params and cuda.get_array_module(params[0].grad.data) is not np:
            _clip_on_device([p.grad.data for p in params], float(self.max_norm))
            return
        total = 0.0
        for param in params:
            g = param.grad.data.ravel()
            total += float(g.dot(g))
        total_norm = math.sqrt(total)
        rate = float(self.max_norm) / (total_norm + 1e-6)
        if rate < 1:
            for param in params:
                param.grad.data *= rate


def _clip_on_device(grads: List[Any], max_norm: float) -> None:
    """``ClipGrad`` computed where the gradients are, with the host path's numbers.

    The squared norms are summed in float64 in the same order, and the rate is cast
    to each gradient's dtype as a Python float would be; where it is not below 1
    (or is NaN) the gradients are multiplied by exactly 1 instead of being left alone.
    """
    xp = cuda.get_array_module(grads[0])
    total = xp.zeros((), dtype=np.float64)
    for g in grads:
        flat = g.ravel()
        total += flat.dot(flat)
    rate = max_norm / (xp.sqrt(total) + 1e-6)
    rate = xp.where(rate < 1, rate, 1.0)
    scales: Dict[Any, Any] = {}
    for g in grads:
        if g.dtype not in scales:
            scales[g.dtype] = rate.astype(g.dtype)
        g *= scales[g.dtype]


class FreezeParam:
    """Hook: keep the given layers' (or parameters') values fixed by dropping their gradients."""

    def __init__(self, *layers: Any) -> None:
        self.freeze_params: List[Parameter] = []
        for layer in layers:
            if isinstance(layer, Parameter):
                self.freeze_params.append(layer)
            else:
                self.freeze_params.extend(layer.params())

    def __call__(self, params: Iterable[Parameter]) -> None:
        for p in self.freeze_params:
            p.grad = None


# =============================================================================
# SGD / MomentumSGD / AdaGrad / AdaDelta / Adam
# =============================================================================
class SGD(Optimizer):
    """Stochastic gradient descent: ``param -= lr * grad``."""

    hyperparams = ("lr",)

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def update_one(self, param: Parameter) -> None:
        data, grad = param.data, param.grad.data
        if _kernels.fusable(data, grad):
            _kernels.launch("sgd", grad, float(self.lr), data)
            return
        tmp = self._scratch.get(data, 0, grad.dtype)
        cuda.get_array_module(data).multiply(grad, float(self.lr), out=tmp)
        data -= tmp


class MomentumSGD(Optimizer):
    """SGD with momentum: ``v = momentum * v - lr * grad; param += v``."""

    hyperparams = ("lr", "momentum")
    state_names = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr = lr
        self.momentum = momentum

    def update_one(self, param: Parameter) -> None:
        data, grad = param.data, param.grad.data
        v = self._slots(param)["v"]
        if _kernels.fusable(data, grad, v):
            _kernels.launch("momentum_sgd", grad, float(self.lr), float(self.momentum), data, v)
            return
        tmp = self._scratch.get(data, 0, grad.dtype)
        cuda.get_array_module(data).multiply(grad, float(self.lr), out=tmp)
        v *= float(self.momentum)
        v -= tmp
        data += v


class AdaGrad(Optimizer):
    """AdaGrad: ``h += grad**2; param -= lr * grad / (sqrt(h) + eps)``."""

    hyperparams = ("lr", "eps")
    state_names = ("h",)

    def __init__(self, lr: float = 0.001, eps: float = 1e-8) -> None:
        super().__init__()
        self.lr = lr
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        xp = cuda.get_array_module(param.data)
        data, grad = param.data, param.grad.data
        h = self._slots(param)["h"]
        if _kernels.fusable(data, grad, h):
            _kernels.launch("adagrad", grad, float(self.lr), float(self.eps), data, h)
            return
        step = self._scratch.get(data, 0, np.result_type(grad, data))
        tmp = self._scratch.get(data, 1, grad.dtype)
        xp.multiply(grad, grad, out=tmp)
        h += tmp
        tmp = self._scratch.get(data, 1)
        xp.sqrt(h, out=tmp)
        tmp += float(self.eps)
        xp.multiply(grad, float(self.lr), out=step)
        step /= tmp
        data -= step


class AdaDelta(Optimizer):
    """AdaDelta: running averages of squared gradients (``msg``) and squared updates (``msdx``).

    ``msg = rho msg + (1-rho) g^2; dx = sqrt((msdx + eps) / (msg + eps)) g;
    msdx = rho msdx + (1-rho) dx^2; param -= dx``.
    """

    hyperparams = ("rho", "eps")
    state_names = ("msg", "msdx")

    def __init__(self, rho: float = 0.95, eps: float = 1e-6) -> None:
        super().__init__()
        self.rho = rho
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        xp = cuda.get_array_module(param.data)
        data, grad = param.data, param.grad.data
        slots = self._slots(param)
        msg, msdx = slots["msg"], slots["msdx"]
        rho, eps = float(self.rho), float(self.eps)
        if _kernels.fusable(data, grad, msg, msdx):
            _kernels.launch("adadelta", grad, rho, 1 - rho, eps, data, msg, msdx)
            return
        wide = np.result_type(grad, data)
        dx = self._scratch.get(data, 0, wide)
        tmp = self._scratch.get(data, 1, grad.dtype)

        xp.multiply(grad, 1 - rho, out=tmp)
        tmp *= grad
        msg *= rho
        msg += tmp
        rate, tmp = self._scratch.get(data, 1), self._scratch.get(data, 2)
        xp.add(msdx, eps, out=rate)
        xp.add(msg, eps, out=tmp)
        rate /= tmp
        xp.sqrt(rate, out=rate)
        xp.multiply(rate, grad, out=dx)
        tmp = self._scratch.get(data, 1, wide)
        xp.multiply(dx, 1 - rho, out=tmp)
        tmp *= dx
        msdx *= rho
        msdx += tmp
        data -= dx


class Adam(Optimizer):
    """Adam; ``lr`` is the bias-corrected step size ``alpha * sqrt(1 - beta2^t) / (1 - beta1^t)``.

    ``m += (1-beta1)(g - m); v += (1-beta2)(g^2 - v); param -= lr * m / (sqrt(v) + eps)``.
    The step counter ``t`` advances at every ``update()``.
    """

    hyperparams = ("alpha", "beta1", "beta2", "eps")
    state_names = ("m", "v")
    counters = ("t",)

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        super().__init__()
        self.t = 0
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Advance ``t`` and update every parameter that has a gradient."""
        self.t += 1
        super().update(*args, **kwargs)

    @property
    def lr(self) -> float:
        """The step size at step ``t``, with Adam's bias corrections folded in."""
        fix1 = 1.0 - math.pow(self.beta1, self.t)
        fix2 = 1.0 - math.pow(self.beta2, self.t)
        return float(self.alpha) * math.sqrt(fix2) / fix1

    def update_one(self, param: Parameter) -> None:
        xp = cuda.get_array_module(param.data)
        data, grad = param.data, param.grad.data
        slots = self._slots(param)
        m, v = slots["m"], slots["v"]
        beta1, beta2, eps = float(self.beta1), float(self.beta2), self._eps_now()
        if _kernels.fusable(data, grad, m, v):
            _kernels.launch("adam", grad, self.lr, 1 - beta1, 1 - beta2, eps, data, m, v)
            return
        step = self._scratch.get(data, 0)
        tmp = self._scratch.get(data, 1, np.result_type(grad, data))

        xp.subtract(grad, m, out=tmp)
        tmp *= 1 - beta1
        m += tmp
        xp.multiply(grad, grad, out=tmp)
        tmp -= v
        tmp *= 1 - beta2
        v += tmp
        tmp = self._scratch.get(data, 1)
        xp.sqrt(v, out=tmp)
        tmp += eps
        xp.multiply(m, self.lr, out=step)
        step /= tmp
        data -= step

    def _eps_now(self) -> float:
        """The ``eps`` added to ``sqrt(v)`` at this step (Adam adds ``eps`` itself)."""
        return float(self.eps)


#: What ``AdamW(decay=...)`` accepts: a rule ``(path, param) -> bool``, or the paths (glob patterns
#: allowed) and Parameters to decay.
DecayChoice = Any


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), with PyTorch's ``AdamW`` numbers.

    ``AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, decay=None, no_decay=())``.
    Each step first shrinks every decayed parameter, ``param *= 1 - lr * weight_decay``,
    then takes the Adam step with ``eps`` added to the bias-corrected ``sqrt(v)``
    as PyTorch does: ``param -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)``.

    Which parameters decay:

    * ``decay=None`` (the default): those with two axes or more (weight matrices,
      convolution kernels, embeddings), not biases or normalization gains, as
      nanoGPT's ``configure_optimizers`` chooses;
    * ``decay=callable``: ``decay(path, param)`` says, for the parameter at ``path``
      in the model (``"blocks/0/attn/W"``), whether it decays;
    * ``decay=[...]``: exactly the listed parameters, given as Parameters or as
      paths (``fnmatch`` patterns such as ``"*/W"`` work);
    * ``no_decay=[...]`` (Parameters or paths) is then exempted whatever the rule says.

    The rule is applied to the parameters as they are at each step (their shapes
    exist once the model has seen data); :meth:`decayed` lists the paths it picks.
    ``lr`` is stored as ``alpha`` (as Adam names it), so schedules and checkpoints
    treat both alike; the ``lr`` property is the bias-corrected step size, as for Adam.
    """

    hyperparams = Adam.hyperparams + ("weight_decay",)

    def __init__(self, lr: float = 0.001, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, decay: DecayChoice = None,
                 no_decay: Iterable[Any] = ()) -> None:
        beta1, beta2 = betas
        super().__init__(alpha=lr, beta1=beta1, beta2=beta2, eps=eps)
        self.weight_decay = weight_decay
        self._rule = _decay_rule(decay, no_decay)
        self._decays: "weakref.WeakKeyDictionary[Parameter, bool]" = weakref.WeakKeyDictionary()

    def _eps_now(self) -> float:
        # Adam's step scales eps by sqrt(1 - beta2^t): PyTorch adds it after the bias correction.
        return float(self.eps) * math.sqrt(1.0 - math.pow(self.beta2, self.t))

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Advance ``t``, then decay and update every parameter that has a gradient."""
        self._decays = weakref.WeakKeyDictionary()
        for name, p in self._named_target_params():
            if p.data is not None:
                self._decays[p] = bool(self._rule(name, p))
        super().update(*args, **kwargs)

    def update_one(self, param: Parameter) -> None:
        shrink = 1.0 - float(self.alpha) * float(self.weight_decay)
        if shrink != 1.0 and self._decays.get(param, False):
            param.data *= shrink
        super().update_one(param)

    def decayed(self) -> List[str]:
        """The paths of the target's parameters that decay (those whose data exists)."""
        return [name for name, p in self._named_target_params()
                if p.data is not None and self._rule(name, p)]


def _decay_rule(decay: DecayChoice, no_decay: Iterable[Any]) -> Callable[[str, Parameter], bool]:
    """``AdamW``'s choice of decayed parameters as one function ``(path, param) -> bool``."""
    if isinstance(no_decay, (str, Parameter)):
        no_decay = [no_decay]
    exempt = _matcher(no_decay, "no_decay")
    if decay is None:
        def chosen(name: str, p: Parameter) -> bool:
            return p.data is not None and p.data.ndim >= 2
    elif callable(decay) and not isinstance(decay, Parameter):
        chosen = decay
    else:
        chosen = _matcher([decay] if isinstance(decay, (str, Parameter)) else decay, "decay")
    return lambda name, p: bool(chosen(name, p)) and not exempt(name, p)


def _matcher(items: Iterable[Any], what: str) -> Callable[[str, Parameter], bool]:
    """Whether a parameter is one of ``items`` (Parameters, or paths and glob patterns)."""
    ids, patterns = set(), []
    for item in items:
        if isinstance(item, Parameter):
            ids.add(id(item))
        elif isinstance(item, str):
            patterns.append(item)
        else:
            raise TypeError(f"AdamW: {what} takes Parameters or parameter paths (such as 'l0/W'), "
                            f"got {type(item).__name__}")
    return lambda name, p: id(p) in ids or any(fnmatch.fnmatchcase(name, pat) for pat in patterns)


# =============================================================================
# Optimizers by name
# =============================================================================
#: The optimizers by the short names ``leafgrad train --optimizer`` takes, each with the keyword
#: argument that sets its learning rate (``None``: AdaDelta takes none).
OPTIMIZERS: Dict[str, Tuple[type, Optional[str]]] = {
    "sgd": (SGD, "lr"),
    "momentum": (MomentumSGD, "lr"),
    "adagrad": (AdaGrad, "lr"),
    "adadelta": (AdaDelta, None),
    "adam": (Adam, "alpha"),
    "adamw": (AdamW, "lr"),
}


def from_name(name: str, lr: Optional[float] = None) -> Optimizer:
    """A new optimizer by short name (a key of :data:`OPTIMIZERS`), with learning rate ``lr`` when given.

    AdaDelta takes no learning rate and ignores ``lr``.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    cls, keyword = OPTIMIZERS[name]
    return cls(**({keyword: lr} if keyword is not None and lr is not None else {}))


def lr_attribute(optimizer: Any) -> Optional[str]:
    """The attribute holding ``optimizer``'s base learning rate (``"alpha"`` for Adam and AdamW, ``"lr"``
    for SGD and most others), which a schedule sets; None for AdaDelta, which takes none."""
    if isinstance(optimizer, AdaDelta):
        return None
    if isinstance(optimizer, Adam):
        return "alpha"
    return "lr" if isinstance(getattr(optimizer, "lr", None), (int, float)) else None


def learning_rate(optimizer: Any) -> Optional[float]:
    """The learning rate ``optimizer`` was given (Adam's ``alpha``, SGD's ``lr``); None if it takes none."""
    attr = lr_attribute(optimizer)
    return None if attr is None else float(getattr(optimizer, attr))
