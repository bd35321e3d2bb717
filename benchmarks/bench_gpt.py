"""One training step of nanoGPT's CPU-size GPT: leafgrad against nanoGPT's PyTorch model, one thread each.

Run: ``python benchmarks/bench_gpt.py /work/refs/nanogpt_model.py [--repeat N] [--no-memory]``
(``MODEL_PY`` is nanoGPT's ``model.py``; the script sets one thread before NumPy is imported).

The model: vocabulary 65 (tiny Shakespeare's characters), context 64, 4 layers, 4 heads,
n_embd 128, no biases, dropout 0, exact GELU; batch 12.  Both models start from the same
weights (leafgrad's, copied into PyTorch) and see the same batches.  One step is: forward,
cross entropy over the ``B*T`` positions, backward, clipping of the global gradient norm at 1.0,
one AdamW update (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on the parameters of two axes or
more, as nanoGPT groups them); leafgrad uses ``optimizers.Adam`` where it has no ``AdamW``.

Time: the two steps alternate, the median of each (wall clock and process CPU time) and the
ratio leafgrad / PyTorch are printed.  The machine may be shared: only side-by-side ratios mean much.

``--fresh ROUNDS`` times each framework alone in new processes instead (as a user's program runs),
leafgrad also with ``LEAFGRAD_MALLOC=system`` (glibc's own adaptive thresholds: see ``leafgrad.allocator``).
In one shared process the allocator's state is common to both frameworks and hides that difference.

``--kept`` lists instead what leafgrad's step keeps for backward, function by function.

Memory (each framework in a fresh child process, glibc returning freed arrays to the system at
once): after warm-up steps (so gradients and optimizer state exist), the peak resident set size
(VmHWM, reset through ``/proc/self/clear_refs``) during one step minus the resident size just
before it: what one step adds at its peak, measured the same way for both.  For leafgrad the
peak of NumPy allocations over the step (``leafgrad.memory.track``) is printed too.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, _HERE)

import leafgrad as lg  # noqa: E402
import leafgrad.functions as F  # noqa: E402
import leafgrad.optimizers as O  # noqa: E402
from leafgrad.models import GPT  # noqa: E402

VOCAB, BLOCK, LAYERS, HEADS, EMBD, BATCH = 65, 64, 4, 4, 128, 12
LR, BETAS, DECAY, CLIP = 1e-3, (0.9, 0.99), 0.1, 1.0


def batches(n: int, seed: int = 0) -> list:
    """``n`` batches ``(x, y)`` of ids ``(BATCH, BLOCK)``: random windows of a random id sequence."""
    rs = np.random.RandomState(seed)
    data = rs.randint(0, VOCAB, 20_000)
    out = []
    for _ in range(n):
        ix = rs.randint(0, len(data) - BLOCK - 1, BATCH)
        out.append((np.stack([data[i:i + BLOCK] for i in ix]), np.stack([data[i + 1:i + 1 + BLOCK] for i in ix])))
    return out


# ---------------------------------------------------------------------------
# leafgrad
# ---------------------------------------------------------------------------
def leafgrad_setup():
    """The model, its optimizer (AdamW where leafgrad has it) and a step function."""
    model = GPT(VOCAB, BLOCK, LAYERS, HEADS, EMBD, seed=0)
    if hasattr(O, "AdamW"):
        opt = O.AdamW(lr=LR, betas=BETAS, weight_decay=DECAY).setup(model)
        name = "AdamW"
    else:
        opt = O.Adam(alpha=LR, beta1=BETAS[0], beta2=BETAS[1]).setup(model)
        name = "Adam (no AdamW on this branch)"
    opt.add_hook(O.ClipGrad(CLIP))

    def step(x, y):
        logits = model(x)
        loss = F.softmax_cross_entropy(logits.reshape(BATCH * BLOCK, VOCAB), y.reshape(-1))
        model.cleargrads()
        loss.backward()
        opt.update()
        return float(loss.data)
    return model, step, name


# ---------------------------------------------------------------------------
# PyTorch (nanoGPT's model.py)
# ---------------------------------------------------------------------------
def torch_setup(model_py: str, weights_from=None):
    import torch
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("nanogpt_model", model_py)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # prints nanoGPT's parameter count
    conf = mod.GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=LAYERS, n_head=HEADS, n_embd=EMBD,
                         dropout=0.0, bias=False)
    model = mod.GPT(conf)
    if weights_from is not None:
        copy_weights(weights_from, model)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=BETAS)

    def step(x, y):
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        _, loss = model(xt, yt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        return float(loss.item())
    return model, step


def copy_weights(lg_model, t_model) -> None:
    """leafgrad's GPT weights into nanoGPT's (leafgrad's Linear ``W`` is ``(in, out)``: transposed)."""
    import torch
    tr = t_model.transformer
    pairs = [(lg_model.wte.W, tr.wte.weight, False), (lg_model.wpe.W, tr.wpe.weight, False),
             (lg_model.ln_f.gamma, tr.ln_f.weight, False)]
    for blk, tb in zip(lg_model.blocks, tr.h):
        pairs += [(blk.ln_1.gamma, tb.ln_1.weight, False), (blk.ln_2.gamma, tb.ln_2.weight, False),
                  (blk.attn.c_attn.W, tb.attn.c_attn.weight, True), (blk.attn.c_proj.W, tb.attn.c_proj.weight, True),
                  (blk.c_fc.W, tb.mlp.c_fc.weight, True), (blk.c_proj.W, tb.mlp.c_proj.weight, True)]
    with torch.no_grad():
        for p, t, transposed in pairs:
            a = p.data.T if transposed else p.data
            t.copy_(torch.from_numpy(np.ascontiguousarray(a)))


# ---------------------------------------------------------------------------
# Memory child
# ---------------------------------------------------------------------------
def memory_child(framework: str, model_py: str) -> dict:
    import _common
    data = batches(4, seed=1)
    if framework == "leafgrad":
        _, step, _ = leafgrad_setup()
    else:
        _, step = torch_setup(model_py)
    for x, y in data[:3]:  # warm-up: gradients and optimizer state exist from now on
        step(x, y)
    gc.collect()
    _common.reset_hwm()
    rss0 = _common.rss_mib()
    x, y = data[3]
    step(x, y)
    out = {"framework": framework, "rss_before_mib": rss0, "step_peak_growth_mib": _common.hwm_mib() - rss0}
    if framework == "leafgrad":
        gc.collect()
        with lg.memory.track() as report:
            step(x, y)
        out["numpy_peak_mib"] = report.peak / 2 ** 20
    return out


def kept_report() -> None:
    """What leafgrad's step keeps for backward, by function, and what backward leaves (``--kept``)."""
    from collections import Counter

    from leafgrad import graph
    model, step, _ = leafgrad_setup()
    params = {id(p.data) for p in model.params()}
    data = batches(4, seed=1)
    for x, y in data[:3]:
        step(x, y)
    x, y = data[3]

    def arrays(f):
        return (list(f._kept_inputs or ()) + [a for a in (f.output_data or ()) if a is not None]
                + [a for a in (f.saved or ()) if isinstance(a, np.ndarray)])

    gc.collect()
    logits = model(x)
    loss = F.softmax_cross_entropy(logits.reshape(BATCH * BLOCK, VOCAB), y.reshape(-1))
    del logits
    seen, per, functions = set(), Counter(), 0
    for f in graph.functions_of([loss]):
        functions += 1
        for a in arrays(f):
            while a.base is not None:  # a view keeps its base alive: count the base once
                a = a.base
            if id(a) not in seen and id(a) not in params:
                seen.add(id(a))
                per[type(f).__name__] += a.nbytes
    print(f"arrays kept for backward after the forward, parameters excluded: "
          f"{sum(per.values()) / 2 ** 20:.2f} MiB in {functions} functions")
    for name, n in per.most_common():
        print(f"  {name:<28}{n / 2 ** 20:8.3f} MiB")
    with lg.memory.track() as report:
        model.cleargrads()
        loss.backward()
    left = sum(1 for f in graph.functions_of([loss]) if arrays(f))
    print(f"backward: peak {report.peak / 2 ** 20:.2f} MiB above its start; functions still holding "
          f"an array: {left}; parameter gradients {sum(p.grad.data.nbytes for p in model.params()) / 2 ** 20:.2f} MiB")


def fresh_child(framework: str, model_py: str, repeat: int) -> float:
    """Median process-CPU ms of ``repeat`` steps of one framework alone in this (fresh) process."""
    data = batches(repeat + 3, seed=2)
    step = leafgrad_setup()[1] if framework == "leafgrad" else torch_setup(model_py)[1]
    for x, y in data[:3]:
        step(x, y)
    times = []
    for x, y in data[3:]:
        c0 = time.process_time()
        step(x, y)
        times.append(time.process_time() - c0)
    return statistics.median(times) * 1e3


def run_fresh(model_py: str, repeat: int, rounds: int) -> None:
    """``--fresh``: each framework alone in a new process, as a user's program runs it; rounds alternate.

    Three kinds of process: leafgrad as imported (it sets glibc's thresholds, ``leafgrad.allocator``),
    leafgrad with ``LEAFGRAD_MALLOC=system`` (glibc's adaptive thresholds), and PyTorch without leafgrad.
    """
    kinds = (("leafgrad", "leafgrad", {}), ("leafgrad, LEAFGRAD_MALLOC=system", "leafgrad", {"LEAFGRAD_MALLOC": "system"}),
             ("torch", "torch", {}))
    results: dict = {label: [] for label, _, _ in kinds}
    for _ in range(rounds):
        for label, fw, extra in kinds:
            env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
            env.update(extra)
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), model_py, "--fresh-child", fw,
                                   "--repeat", str(repeat)], capture_output=True, text=True, env=env, check=True)
            results[label].append(float(proc.stdout.strip().splitlines()[-1]))
    torch_ms = statistics.median(results["torch"])
    print(f"training step, each framework alone in a fresh process ({rounds} alternating rounds of {repeat} steps; "
          f"median of the rounds' medians, process CPU time):")
    for label, values in results.items():
        m = statistics.median(values)
        print(f"  {label:<34} {m:8.2f} ms   ratio to torch {m / torch_ms:.2f}x   rounds: "
              + " ".join(f"{v:.1f}" for v in values))


def run_memory(model_py: str) -> dict:
    import _common
    env = dict(os.environ, **_common.CHILD_ENV_MALLOC)
    results = {}
    for fw in ("leafgrad", "torch"):
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), model_py, "--memory-child", fw],
                              capture_output=True, text=True, env=env, check=True)
        results[fw] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_py", help="path of nanoGPT's model.py")
    parser.add_argument("--repeat", type=int, default=30, help="timed steps of each framework (default 30)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--kept", action="store_true",
                        help="only list what leafgrad's step keeps for backward (docs/attention.md)")
    parser.add_argument("--fresh", type=int, metavar="ROUNDS", default=0,
                        help="instead: each framework alone in fresh processes, ROUNDS alternating rounds")
    parser.add_argument("--memory-child", choices=("leafgrad", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--fresh-child", choices=("leafgrad", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fresh_child:
        print(fresh_child(args.fresh_child, args.model_py, args.repeat))
        return
    if args.fresh:
        run_fresh(args.model_py, args.repeat, args.fresh)
        return
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.model_py)))
        return
    if args.kept:
        kept_report()
        return

    import torch
    lg_model, lg_step, opt_name = leafgrad_setup()
    _, t_step = torch_setup(args.model_py, weights_from=lg_model)
    data = batches(args.repeat + 3)
    first = (lg_step(*data[0]), t_step(*data[0]))  # the same weights, the same batch: the same loss
    print(f"numpy {np.__version__}, torch {torch.__version__}, one thread; leafgrad optimizer: {opt_name}")
    print(f"first-step loss: leafgrad {first[0]:.5f}, torch {first[1]:.5f}")
    for x, y in data[1:3]:  # warm-up
        lg_step(x, y)
        t_step(x, y)
    wall = {"leafgrad": [], "torch": []}
    cpu = {"leafgrad": [], "torch": []}
    for x, y in data[3:]:
        for name, fn in (("leafgrad", lg_step), ("torch", t_step)):
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            fn(x, y)
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    print(f"training step, medians of {args.repeat} alternating steps:")
    for label, t in (("wall", wall), ("cpu", cpu)):
        a, b = statistics.median(t["leafgrad"]) * 1e3, statistics.median(t["torch"]) * 1e3
        print(f"  {label:<5} leafgrad {a:8.2f} ms   torch {b:8.2f} ms   ratio {a / b:.2f}x")
    if not args.no_memory:
        mem = run_memory(args.model_py)
        a, b = mem["leafgrad"]["step_peak_growth_mib"], mem["torch"]["step_peak_growth_mib"]
        print(f"step peak RSS growth: leafgrad {a:.1f} MiB, torch {b:.1f} MiB (ratio {a / b:.2f}); "
              f"leafgrad's NumPy peak over a step {mem['leafgrad']['numpy_peak_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
