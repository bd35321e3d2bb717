"""Where the memory goes: the same computations measured in leafgrad, DeZero 0.0.13 and PyTorch.

Run: ``python examples/memory_comparison.py`` (``--quick`` for small sizes).
DeZero (``pip install dezero==0.0.13``) and PyTorch are optional: each column
appears when the package is installed.  The figures of docs/memory.md come
from this script.

leafgrad and DeZero arrays are NumPy arrays, measured with
``leafgrad.memory.track`` (tracemalloc).  PyTorch's allocator does not report
to tracemalloc, so for PyTorch the script counts the bytes of the tensors that
autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``),
which is what its graph keeps alive.
"""
import argparse
import gc

import numpy as np

from leafgrad.memory import format_bytes, track

MiB = 1024 * 1024


def mib(n):
    return f"{n / MiB:7.1f} MiB"


# =============================================================================
# 1. A chain of element-wise functions on a 1000 x 1000 float64 array (8 MB)
# =============================================================================
def chain(F, x):
    """y = sum(tanh(exp(sin(x) * 2) + 1)): sin needs x, exp and tanh need their outputs."""
    return F.sum(F.tanh(F.exp(F.sin(x) * 2.0) + 1.0))


def chain_framework(lib, F, n):
    x = lib.Variable(np.random.rand(n, n))
    gc.collect()
    with track() as fwd:
        y = chain(F, x)
    with track() as bwd:
        y.backward()
    after = bwd.current + fwd.current  # alive after backward, while y still is
    del y
    x.cleargrad()
    gc.collect()
    with track() as total:
        y = chain(F, x)
        y.backward()
    return {"kept by the graph after forward": fwd.current, "peak of forward": fwd.peak,
            "peak of forward + backward": total.peak,
            "alive after backward (y still held)": after}


def chain_torch(n):
    import torch
    x = torch.rand(n, n, dtype=torch.float64, requires_grad=True)
    saved = {}

    def pack(t):
        if t.data_ptr() != x.data_ptr():
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = torch.tanh(torch.exp(torch.sin(x) * 2.0) + 1.0).sum()  # noqa: F841 (kept alive while counting)
    return {"kept by the graph after forward": sum(saved.values())}


# =============================================================================
# 2. One training step of an MLP 784-1000-1000-10 (ReLU), float32
# =============================================================================
def mlp_step_framework(lib, F, L, models, batch):
    np.random.seed(0)
    model = models.MLP((1000, 1000, 10), activation=F.relu)
    x = np.random.rand(batch, 784).astype(np.float32)
    t = np.random.randint(0, 10, batch)
    with lib.no_grad():
        model(x[:1])                      # create the weights (lazily sized)
    for p in model.params():              # DeZero's initializer makes float64 weights under NumPy 2
        p.data = p.data.astype(np.float32)
    gc.collect()
    with track() as fwd:
        loss = F.softmax_cross_entropy(model(x), t)
    with track() as bwd:
        model.cleargrads()
        loss.backward()
    return {"kept by the graph after forward": fwd.current, "peak of forward": fwd.peak,
            "peak of backward": bwd.peak, "forward + backward peak": max(fwd.peak, fwd.current + bwd.peak)}


def mlp_step_torch(batch):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 1000), torch.nn.ReLU(), torch.nn.Linear(1000, 1000),
                                torch.nn.ReLU(), torch.nn.Linear(1000, 10))
    x = torch.rand(batch, 784)
    t = torch.randint(0, 10, (batch,))
    params = {p.data_ptr() for p in model.parameters()} | {x.data_ptr()}
    saved = {}

    def pack(tensor):
        if tensor.data_ptr() not in params:
            saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(model(x), t)  # noqa: F841
    return {"kept by the graph after forward": sum(saved.values())}


# =============================================================================
# 3. Keeping every step's loss Variable (a common mistake: losses.append(loss))
# =============================================================================
def kept_losses(lib, F, L, models, optimizers, steps):
    np.random.seed(0)
    x = np.random.rand(100, 2).astype(np.float32)
    t = np.random.randint(0, 3, 100)
    model = models.MLP((100, 3))
    opt = optimizers.SGD(0.1).setup(model)
    with lib.no_grad():
        model(x[:1])
    gc.collect()
    losses = []
    with track() as mem:
        for _ in range(steps):
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()
            losses.append(loss)
        del loss
        gc.collect()
    return mem.current


# =============================================================================
# 4. What the switches change, in leafgrad
# =============================================================================
def switches(n):
    """Bytes alive after each block (y still held), relative to before it."""
    import leafgrad
    import leafgrad.functions as F
    x = leafgrad.Variable(np.random.rand(n, n))
    out = {}

    def measure(label, block):
        x.cleargrad()
        gc.collect()
        with track() as m:
            keep = block()
        out[label] = (m.current, m.peak)
        del keep
        x.cleargrad()

    measure("forward (graph recorded)", lambda: chain(F, x))

    def no_grad_forward():
        with leafgrad.no_grad():
            return chain(F, x)
    measure("forward under no_grad()", no_grad_forward)

    def backward(**kwargs):
        y = chain(F, x)
        y.backward(**kwargs)
        return y
    measure("forward + backward(): x.grad only", backward)
    measure("forward + backward(retain_graph=True)", lambda: backward(retain_graph=True))

    def held(**kwargs):
        h = F.exp(F.sin(x) * 2.0)          # the user holds one intermediate
        y = F.sum(F.tanh(h + 1.0))
        y.backward(**kwargs)
        return h, y
    measure("holding exp's output h, backward()", held)
    measure("holding exp's output h, backward(retain_grad=True)", lambda: held(retain_grad=True))
    return out


def load_frameworks():
    frameworks = {}
    import leafgrad
    import leafgrad.functions as F
    import leafgrad.layers as L
    import leafgrad.models as models
    import leafgrad.optimizers as optimizers
    frameworks["leafgrad"] = (leafgrad, F, L, models, optimizers)
    try:
        if "int" not in np.__dict__:  # DeZero 0.0.13 uses np.int, removed in NumPy 1.24
            np.int = int
        import dezero
        import dezero.functions as DF
        import dezero.layers as DL
        import dezero.models as DM
        import dezero.optimizers as DO
        frameworks["DeZero 0.0.13"] = (dezero, DF, DL, DM, DO)
    except ImportError:
        pass
    return frameworks


def table(title, results):
    print(f"\n{title}")
    keys = []
    for r in results.values():
        keys += [k for k in r if k not in keys]
    names = list(results)
    print(f"  {'':44s}" + "".join(f"{n:>16s}" for n in names))
    for k in keys:
        cells = [mib(results[n][k]) if k in results[n] else "-" for n in names]
        print(f"  {k:44s}" + "".join(f"{c:>16s}" for c in cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    batch = 256 if args.quick else 4096
    steps = 50 if args.quick else 1000
    with track():  # keep tracing on throughout: the blocks below then also see arrays being freed
        run(n, batch, steps)


def run(n, batch, steps):
    frameworks = load_frameworks()
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False

    results = {name: chain_framework(fw[0], fw[1], n) for name, fw in frameworks.items()}
    if has_torch:
        results["PyTorch"] = chain_torch(n)
    table(f"1. y = sum(tanh(exp(sin(x) * 2) + 1)), x: {n}x{n} float64 ({format_bytes(8 * n * n)})",
          results)

    results = {name: mlp_step_framework(fw[0], fw[1], fw[2], fw[3], batch) for name, fw in frameworks.items()}
    if has_torch:
        results["PyTorch"] = mlp_step_torch(batch)
    table(f"2. one training step, MLP 784-1000-1000-10 ReLU, batch {batch}, float32", results)

    print(f"\n3. {steps} training steps keeping every loss Variable (MLP 2-100-3, batch 100): still alive")
    for name, fw in frameworks.items():
        print(f"  {name:44s}{mib(kept_losses(*fw, steps)):>16s}")

    print(f"\n4. leafgrad: what the switches change (the chain of 1., x: {n}x{n} float64)")
    print(f"  {'':52s}{'alive after':>16s}{'peak':>16s}")
    for k, (current, peak) in switches(n).items():
        print(f"  {k:52s}{mib(current):>16s}{mib(peak):>16s}")


if __name__ == "__main__":
    main()
