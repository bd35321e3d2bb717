"""GPU benchmark: leafgrad on CuPy, PyTorch CUDA and DeZero 0.0.13 on CuPy, side by side in one run.

Run on a machine with a CUDA GPU: ``python benchmarks/bench_gpu.py [--reps 30] [--json PATH]``
(``benchmarks/gpu_check.sh`` runs it after the GPU tests).  Float32, SGD:

* ``mlp``: a training step of the MLP 784-1000-1000-10 (ReLU) at batch 128 and 4096 (``_mlp.py``);
* ``cnn``: a training step of the small CNN of ``_cnn.py`` on 3x32x32 images (conv 3->16, ReLU,
  pool, conv 16->32, ReLU, pool, linear 2048->10) at batch 32 and 256;
* ``conv``: ``conv2d`` alone (16->32 channels, 16x16, 3x3, pad 1), forward without a graph, and
  forward + backward, at batch 32 and 256.

The frameworks run round-robin (interleaved), each call between two device synchronizations
(``cupy.cuda.Device().synchronize()`` / ``torch.cuda.synchronize()``); medians in ms.  Memory: the
GPU memory peak of one training step above what was allocated before it, from CuPy's memory pool
(``leafgrad.memory.track(device="gpu")``, a memory hook) and from ``torch.cuda.max_memory_allocated``.
Prints the ratios leafgrad / PyTorch and leafgrad / DeZero and the issue's targets (MLP within
1.2x PyTorch, CNN within 1.5x, memory peak no higher than PyTorch's).  Exits with a message
when there is no GPU.
"""
from __future__ import annotations

import _common  # noqa: F401  (first: pins the CPU math libraries to one thread)

import argparse
import gc
import sys
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from _common import interleaved, load, median, on_gpu, write_json_atomic

MiB = 1024.0 * 1024.0
#: (work, batch, the target of leafgrad / PyTorch time, or None)
WORK = [("mlp", 128, 1.2), ("mlp", 4096, 1.2), ("cnn", 32, 1.5), ("cnn", 256, 1.5),
        ("conv fwd", 32, None), ("conv fwd", 256, None), ("conv fwd+bwd", 32, None), ("conv fwd+bwd", 256, None)]
MEMORY = [("mlp", 4096), ("cnn", 256)]


def _devices(wanted: List[str]) -> tuple:
    """``(cupy, torch or None, frameworks)`` among ``wanted`` that run on the GPU; exits when CuPy finds none."""
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # noqa: BLE001 - no CuPy, or no driver
        sys.exit(f"bench_gpu: no usable GPU: CuPy is missing or finds no CUDA device ({type(err).__name__}: {err})")
    if count == 0:
        sys.exit("bench_gpu: no usable GPU: CuPy finds no CUDA device")
    lg = load("leafgrad")
    if lg is None or not lg.cuda.gpu_enable:
        sys.exit("bench_gpu: leafgrad does not see CuPy (leafgrad.cuda.gpu_enable is False)")
    frameworks = ["leafgrad"]
    torch = load("torch") if "torch" in wanted else None
    if torch is not None and torch.cuda.is_available():
        frameworks.append("torch")
    else:
        print("[bench_gpu] PyTorch with CUDA not available: skipped", file=sys.stderr)
        torch = None
    dz = load("dezero") if "dezero" in wanted else None
    if dz is not None and getattr(dz.cuda, "gpu_enable", False):
        frameworks.append("dezero")
    else:
        print("[bench_gpu] DeZero on CuPy not available: skipped", file=sys.stderr)
    return cupy, torch, frameworks


def _conv_step(framework: str, batch: int, backward: bool) -> Callable[[], Any]:
    """``conv2d`` (16->32 channels, 16x16, 3x3, pad 1) on the GPU: forward, or forward + backward."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 16, 16, 16), dtype=np.float32)
    W = rng.standard_normal((32, 16, 3, 3), dtype=np.float32) * np.float32(1 / 12)
    b = np.zeros(32, np.float32)
    gy = rng.standard_normal((batch, 32, 16, 16), dtype=np.float32)
    if framework == "torch":
        torch = load("torch")
        x, W, b, gy = (torch.from_numpy(a).cuda() for a in (x, W, b, gy))
        if not backward:
            def forward_torch() -> Any:
                with torch.no_grad():
                    return torch.nn.functional.conv2d(x, W, b, 1, 1)
            return forward_torch
        x, W, b = (a.requires_grad_() for a in (x, W, b))

        def step() -> Any:
            x.grad = W.grad = b.grad = None
            (torch.nn.functional.conv2d(x, W, b, 1, 1) * gy).sum().backward()
        return step
    mod = load(framework)
    x, W, b, gy = on_gpu([x, W, b, gy])
    if not backward:
        def forward() -> Any:
            with mod.no_grad():
                return mod.functions.conv2d(x, W, b, 1, 1)
        return forward
    x, W, b = (mod.Variable(a) for a in (x, W, b))

    def step() -> Any:
        for v in (x, W, b):
            v.cleargrad()
        mod.functions.sum(mod.functions.conv2d(x, W, b, 1, 1) * gy).backward()
    return step


def make_step(work: str, framework: str, batch: int) -> Callable[[], Any]:
    """The step of ``work`` ('mlp', 'cnn', 'conv fwd', 'conv fwd+bwd') in ``framework`` on the GPU."""
    if work == "mlp":
        from _mlp import make_step as mlp_step
        return mlp_step(framework, [784, 1000, 1000, 10], batch, gpu=True)
    if work == "cnn":
        from _cnn import make_step as cnn_step
        return cnn_step(framework, batch, in_channels=3, size=32, gpu=True)
    return _conv_step(framework, batch, backward=work.endswith("bwd"))


def _synchronized(step: Callable[[], Any], sync: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        step()
        sync()
    return run


def memory_peak_mib(framework: str, step: Callable[[], Any], cupy: Any, torch: Any) -> float:
    """The GPU memory peak of one call of ``step`` above what was allocated before it, in MiB."""
    gc.collect()
    if framework == "torch":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / MiB
    from leafgrad.memory import track  # CuPy's pool, through a memory hook
    cupy.cuda.Device().synchronize()
    with track(device="gpu") as report:
        step()
        cupy.cuda.Device().synchronize()
    return report.peak / MiB


def _ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    """Run the benchmark, print the table and the summary; return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=30, help="timed calls per framework and case (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--only", default="", help="comma-separated works to run: mlp,cnn,conv")
    parser.add_argument("--frameworks", default="torch,dezero", help="to compare with leafgrad (default torch,dezero)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    cupy, torch, frameworks = _devices(args.frameworks.split(","))
    syncs = {fw: (torch.cuda.synchronize if fw == "torch" else cupy.cuda.Device().synchronize) for fw in frameworks}
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    versions = [f"CuPy {cupy.__version__} (CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()})"]
    if torch is not None:
        versions.append(f"PyTorch {torch.__version__} (cuDNN TF32 {'on' if torch.backends.cudnn.allow_tf32 else 'off'})")
    if "dezero" in frameworks:
        versions.append("DeZero 0.0.13")
    print(f"bench_gpu: {name}; {', '.join(versions)}; medians of {args.reps}, float32, ms")
    only = [w for w in args.only.split(",") if w]
    results: Dict[str, Any] = {"frameworks": frameworks, "device": name, "times_ms": {}, "memory_mib": {}}

    print(f"\n{'work':<22}" + "".join(f"{fw:>10}" for fw in frameworks) + f"{'lg/torch':>10}{'lg/dezero':>10}  target")
    for work, batch, target in WORK:
        if only and work.split()[0] not in only:
            continue
        steps = {fw: _synchronized(make_step(work, fw, batch), syncs[fw]) for fw in frameworks}
        for fw in frameworks:
            syncs[fw]()
        times = interleaved(steps, args.reps, warmup=args.warmup)
        ms = {fw: median(t) * 1e3 for fw, t in times.items()}
        key = f"{work}, batch {batch}"
        results["times_ms"][key] = ms
        verdict = ""
        if target is not None and "torch" in ms:
            verdict = f"<= {target}x torch: {'met' if ms['leafgrad'] <= target * ms['torch'] else 'NOT met'}"
        print(f"{key:<22}" + "".join(f"{ms[fw]:>10.3f}" for fw in frameworks)
              + f"{_ratio(ms['leafgrad'], ms.get('torch')):>10}{_ratio(ms['leafgrad'], ms.get('dezero')):>10}  {verdict}")
        del steps
        gc.collect()

    print("\nGPU memory peak of one training step, MiB above what was allocated before it")
    for work, batch in MEMORY:
        if only and work not in only:
            continue
        peaks = {}
        for fw in frameworks:
            step = make_step(work, fw, batch)
            for _ in range(args.warmup):
                step()
            peaks[fw] = memory_peak_mib(fw, step, cupy, torch)
            del step
            gc.collect()
        key = f"{work}, batch {batch}"
        results["memory_mib"][key] = peaks
        verdict = ""
        if "torch" in peaks:
            verdict = f"<= torch: {'met' if peaks['leafgrad'] <= peaks['torch'] else 'NOT met'}"
        print(f"{key:<22}" + "".join(f"{peaks[fw]:>10.1f}" for fw in frameworks)
              + f"{_ratio(peaks['leafgrad'], peaks.get('torch')):>10}{_ratio(peaks['leafgrad'], peaks.get('dezero')):>10}  {verdict}")

    from leafgrad import _kernels
    results["fused_kernels_used"] = _kernels.used()
    print(f"\nleafgrad's fused optimizer kernels used: {', '.join(results['fused_kernels_used']) or 'none'}")
    if args.json:
        write_json_atomic(args.json, results)
    return results


if __name__ == "__main__":
    main()
