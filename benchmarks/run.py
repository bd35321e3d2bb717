"""The leafgrad benchmark suite: ``python benchmarks/run.py [--quick] [--json PATH]``.

Runs the same work in leafgrad, hand-written NumPy (the floor), PyTorch (CPU)
and DeZero 0.0.13 (when importable), on one thread, interleaved round-robin,
and prints medians, the ratio of each framework's figure to leafgrad's, and a
markdown table with each target met or not:

1. MLP 784-1000-1000-10 (ReLU, softmax cross entropy), batch 128, float32: one SGD step.
2. Peak memory growth of the same step at batch 4096 (a fresh process per framework).
3. Per-op overhead: ``y = y * 1.0001 + 0.0001`` chained, forward + backward, us per op.
4. Wide-graph backward: ``y = y + x[i] * w`` for N = 8,000 and 32,000.
5. A small CNN training step.
6. 1,000 steps of a small MLP keeping every ``loss``: memory growth.
7. Gradient checkpointing: 16 layers of width 1024, batch 2048, a checkpoint every 4 layers.

``--items 1,3`` runs a subset; ``--frameworks leafgrad,torch`` limits the
comparison; ``--profile`` also prints cProfile hot spots of leafgrad on items 1 and 3.
"""
from __future__ import annotations

import _common  # noqa: F401  (first: pins every math library to one thread)

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from _common import (CHILD_ENV_MALLOC, available, interleaved, interleaved_prepared,
                     machine_info, median, write_json_atomic)

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = {"leafgrad": "leafgrad", "numpy": "NumPy (hand-written)", "torch": "PyTorch",
         "dezero": "DeZero 0.0.13"}

FULL = {
    "mlp_sizes": [784, 1000, 1000, 10], "mlp_batch": 128, "mlp_reps": 30,
    "mem_batch": 4096, "mem_reps": 3,
    "chain_len": 10000, "chain_reps": 7,
    "wide_ns": [8000, 32000], "wide_reps": 5, "wide_reps_dezero": [3, 1],
    "cnn_batch": 32, "cnn_reps": 20,
    "keep_sizes": [64, 100, 100, 10], "keep_batch": 32, "keep_steps": 1000,
    "ckpt_sizes": [1024] * 17, "ckpt_batch": 2048, "ckpt_every": 4, "ckpt_reps": 5,
}
QUICK = {
    "mlp_sizes": [784, 1000, 1000, 10], "mlp_batch": 128, "mlp_reps": 5,
    "mem_batch": 1024, "mem_reps": 1,
    "chain_len": 2000, "chain_reps": 3,
    "wide_ns": [1000, 4000], "wide_reps": 2, "wide_reps_dezero": [1, 1],
    "cnn_batch": 8, "cnn_reps": 3,
    "keep_sizes": [64, 100, 100, 10], "keep_batch": 32, "keep_steps": 100,
    "ckpt_sizes": [256] * 17, "ckpt_batch": 256, "ckpt_every": 4, "ckpt_reps": 2,
}


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the results)."""
    print(msg, file=sys.stderr, flush=True)


def _report(title: str, unit: str, values: Dict[str, float], scale: float = 1.0,
            fmt: str = "{:.2f}") -> None:
    """Print one result block: each framework's median and its ratio to leafgrad."""
    print(f"\n## {title}")
    base = values.get("leafgrad")
    for fw, v in values.items():
        if v is None:
            continue
        ratio = f"  ({v / base:.2f}x leafgrad)" if base and fw != "leafgrad" else ""
        print(f"  {NAMES[fw]:<22} {fmt.format(v * scale)} {unit}{ratio}")
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# Items
# ---------------------------------------------------------------------------
def item_mlp(cfg: dict, fws: List[str]) -> dict:
    """Item 1: median time of one SGD step of the MLP."""
    from _mlp import make_step
    steps = {fw: make_step(fw, cfg["mlp_sizes"], cfg["mlp_batch"]) for fw in fws}
    times = interleaved(steps, cfg["mlp_reps"], warmup=3)
    med = {fw: median(ts) for fw, ts in times.items()}
    _report(f"1. MLP {'-'.join(map(str, cfg['mlp_sizes']))}, batch {cfg['mlp_batch']}: one SGD step",
            "ms", med, 1e3)
    return {"unit": "s", "median": med, "samples": times}


def _child(req: dict, timeout: float = 900.0) -> dict:
    """Run one measurement in a fresh interpreter (no shell) and return its JSON answer."""
    env = dict(os.environ)
    env.update(CHILD_ENV_MALLOC)
    proc = subprocess.run([sys.executable, os.path.join(HERE, "_child.py"), json.dumps(req)],
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {req} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def _median_field(runs: List[dict], field: str) -> Optional[float]:
    vals = [r[field] for r in runs if field in r]
    return median(vals) if vals else None


def item_step_memory(cfg: dict, fws: List[str]) -> dict:
    """Item 2: peak memory growth of one step at a large batch, a fresh process per measurement."""
    runs: Dict[str, List[dict]] = {fw: [] for fw in fws}
    for _ in range(cfg["mem_reps"]):
        for fw in fws:  # interleaved too: the machine's state drifts
            runs[fw].append(_child({"kind": "step_peak", "framework": fw,
                                    "sizes": cfg["mlp_sizes"], "batch": cfg["mem_batch"]}))
    rss = {fw: _median_field(r, "rss_peak_growth_mib") for fw, r in runs.items()}
    tm = {fw: _median_field(r, "tracemalloc_peak_growth_mib") for fw, r in runs.items()}
    _report(f"2a. peak RSS growth of one step, batch {cfg['mem_batch']}", "MiB", rss, fmt="{:.1f}")
    _report(f"2b. tracemalloc peak of one step, batch {cfg['mem_batch']}", "MiB",
            {k: v for k, v in tm.items() if v is not None}, fmt="{:.1f}")
    kept = {fw: _median_field(r, "tracemalloc_kept_after_first_step_mib") for fw, r in runs.items()}
    _report("2c. kept after the first step (gradients, optimizer buffers; tracemalloc)", "MiB",
            {k: v for k, v in kept.items() if v is not None}, fmt="{:.1f}")
    exact = all(r.get("hwm_reset") for rs in runs.values() for r in rs)
    return {"unit": "MiB", "rss_peak_growth": rss, "tracemalloc_peak_growth": tm,
            "kept_after_first_step": kept, "hwm_reset": exact, "runs": runs}


def item_chain(cfg: dict, fws: List[str]) -> dict:
    """Item 3: microseconds per scalar op, forward and backward."""
    from _micro import chain
    fws = [fw for fw in fws if fw != "numpy"]
    n = cfg["chain_len"]
    prepares = {fw: chain(fw, n) for fw in fws}
    for p in prepares.values():  # warm-up
        p()()
    times = interleaved_prepared(prepares, {fw: cfg["chain_reps"] for fw in fws})
    us = {fw: median(ts) / (2 * n) * 1e6 for fw, ts in times.items()}
    _report(f"3. scalar chain ({2 * n} ops), forward + backward", "us/op", us)
    return {"unit": "us/op", "median": us, "ops": 2 * n, "samples": times}


def item_wide(cfg: dict, fws: List[str]) -> dict:
    """Item 4: backward time of the wide graph at each N."""
    from _micro import wide
    fws = [fw for fw in fws if fw != "numpy"]
    out: Dict[str, Any] = {"unit": "s", "by_n": {}}
    for k, n in enumerate(cfg["wide_ns"]):
        reps = {fw: (cfg["wide_reps_dezero"][k] if fw == "dezero" else cfg["wide_reps"]) for fw in fws}
        if "dezero" in reps:
            log(f"[bench] 4. wide graph N={n}: DeZero's backward is quadratic, this takes a while")
        times = interleaved_prepared({fw: wide(fw, n) for fw in fws}, reps)
        med = {fw: median(ts) for fw, ts in times.items()}
        _report(f"4. wide graph backward, N = {n}", "s", med, fmt="{:.3f}")
        out["by_n"][str(n)] = {"median": med, "samples": times}
    return out


def item_cnn(cfg: dict, fws: List[str]) -> dict:
    """Item 5: median time of one SGD step of the small CNN."""
    from _cnn import make_step
    fws = [fw for fw in fws if fw != "numpy"]
    steps = {}
    for fw in fws:
        try:
            steps[fw] = make_step(fw, cfg["cnn_batch"])
            steps[fw]()
        except (AttributeError, ImportError, NotImplementedError) as err:
            log(f"[bench] 5. CNN: {fw} cannot run it: {type(err).__name__}: {err}")
            steps.pop(fw, None)
    times = interleaved(steps, cfg["cnn_reps"], warmup=2)
    med = {fw: median(ts) for fw, ts in times.items()}
    _report(f"5. small CNN, batch {cfg['cnn_batch']}: one SGD step", "ms", med, 1e3)
    return {"unit": "s", "median": med, "samples": times}


def item_keep_losses(cfg: dict, fws: List[str]) -> dict:
    """Item 6: memory growth over many steps that keep every loss."""
    runs = {fw: _child({"kind": "keep_losses", "framework": fw, "sizes": cfg["keep_sizes"],
                        "batch": cfg["keep_batch"], "steps": cfg["keep_steps"]}) for fw in fws}
    tm = {fw: r.get("tracemalloc_growth_mib") for fw, r in runs.items()}
    rss = {fw: r.get("rss_growth_mib") for fw, r in runs.items()}
    steps = cfg["keep_steps"]
    _report(f"6a. {steps} steps keeping every loss: tracemalloc growth", "MiB",
            {k: v for k, v in tm.items() if v is not None}, fmt="{:.2f}")
    _report(f"6b. {steps} steps keeping every loss: RSS growth", "MiB", rss, fmt="{:.2f}")
    return {"unit": "MiB", "tracemalloc_growth": tm, "rss_growth": rss, "runs": runs}


def item_checkpoint(cfg: dict, fws: List[str]) -> dict:
    """Item 7: leafgrad plain vs checkpointed: peak memory (fresh processes) and time (interleaved)."""
    from _mlp import init_mlp, leafgrad_step
    sizes, batch, every = cfg["ckpt_sizes"], cfg["ckpt_batch"], cfg["ckpt_every"]
    mem = {}
    for variant in ("plain", "checkpoint"):
        mem[variant] = _child({"kind": "checkpoint_peak", "variant": variant, "sizes": sizes,
                               "batch": batch, "every": every})
    init = init_mlp(sizes, batch)
    steps = {"plain": leafgrad_step(init), "checkpoint": leafgrad_step(init, checkpoint_every=every)}
    times = interleaved(steps, cfg["ckpt_reps"], warmup=1)
    med = {k: median(v) for k, v in times.items()}
    tm = {k: v["tracemalloc_peak_growth_mib"] for k, v in mem.items()}
    rss = {k: v["rss_peak_growth_mib"] for k, v in mem.items()}
    print(f"\n## 7. checkpointing: {len(sizes) - 1} layers of width {sizes[1]}, batch {batch}, "
          f"a checkpoint every {every} layers")
    for k in ("plain", "checkpoint"):
        print(f"  {k:<11} tracemalloc peak {tm[k]:8.1f} MiB   RSS peak {rss[k]:8.1f} MiB   "
              f"step {med[k] * 1e3:8.1f} ms")
    print(f"  memory cut {tm['plain'] / tm['checkpoint']:.2f}x (tracemalloc), "
          f"{rss['plain'] / rss['checkpoint']:.2f}x (RSS); time {med['checkpoint'] / med['plain']:.2f}x")
    return {"tracemalloc_peak_mib": tm, "rss_peak_mib": rss, "median_s": med, "samples": times,
            "runs": mem}


ITEMS: Dict[int, Callable[[dict, List[str]], dict]] = {
    1: item_mlp, 2: item_step_memory, 3: item_chain, 4: item_wide, 5: item_cnn,
    6: item_keep_losses, 7: item_checkpoint,
}


# ---------------------------------------------------------------------------
# Targets and the table
# ---------------------------------------------------------------------------
def evaluate(results: dict) -> List[dict]:
    """Every target of issue 6: leafgrad's figure, the limit, and whether it is met.

    Each check names the table row it belongs to (``row``).
    """
    items = results["items"]
    checks: List[dict] = []

    def add(row: str, what: str, value: Optional[float], limit: float, kind: str) -> None:
        met = None if value is None else (value <= limit if kind == "<=" else value >= limit)
        checks.append({"row": row, "target": what, "limit": limit, "kind": kind,
                       "value": None if value is None else round(value, 3), "met": met})

    def ratio(d: dict, a: str, b: str) -> Optional[float]:
        if d.get(a) is None or not d.get(b):
            return None
        return d[a] / d[b]

    if "1" in items:
        m = items["1"]["median"]
        add("1", "leafgrad/NumPy <= 1.05", ratio(m, "leafgrad", "numpy"), 1.05, "<=")
        add("1", "leafgrad/PyTorch < 1", ratio(m, "leafgrad", "torch"), 0.9999, "<=")
    if "2" in items:
        add("2a", "leafgrad/NumPy <= 1.0", ratio(items["2"]["rss_peak_growth"], "leafgrad", "numpy"),
            1.0, "<=")
        add("2b", "leafgrad/NumPy <= 1.0",
            ratio(items["2"]["tracemalloc_peak_growth"], "leafgrad", "numpy"), 1.0, "<=")
    if "3" in items:
        add("3", "leafgrad/PyTorch <= 1.0", ratio(items["3"]["median"], "leafgrad", "torch"), 1.0, "<=")
    if "4" in items:
        by_n = items["4"]["by_n"]
        ns = sorted(by_n, key=int)
        lo, hi = by_n[ns[0]]["median"].get("leafgrad"), by_n[ns[-1]]["median"].get("leafgrad")
        if len(ns) >= 2 and lo and hi:
            exponent = math.log(hi / lo) / math.log(int(ns[-1]) / int(ns[0]))
            add("4-" + ns[0], f"linear: time ~ N^k, k <= 1.15 (N {ns[0]} -> {ns[-1]})", exponent,
                1.15, "<=")
        add("4-" + ns[-1], f"N = {int(ns[-1]):,}: < 0.5 s", hi, 0.5, "<=")
    if "7" in items:
        c = items["7"]
        add("7a", "plain/checkpoint >= 2", ratio(c["tracemalloc_peak_mib"], "plain", "checkpoint"),
            2.0, ">=")
        add("7b", "checkpoint/plain <= 1.4", ratio(c["median_s"], "checkpoint", "plain"), 1.4, "<=")
    return checks


def _cell(v: Optional[float], base: Optional[float], scale: float, fmt: str) -> str:
    if v is None:
        return "-"
    s = fmt.format(v * scale)
    if base:
        s += f" ({v / base:.2f}x)"
    return s


def table(results: dict) -> str:
    """The markdown table for the README, each target with leafgrad's figure and met or not."""
    m = results["machine"]
    items = results["items"]
    cfg = results["config"]
    checks: Dict[str, List[dict]] = {}
    for c in evaluate(results):
        checks.setdefault(c["row"], []).append(c)

    lines = [
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores ({m.get('usable_cores')} usable), "
        f"one thread; Python {m['python']}, NumPy {m['numpy']} ({m.get('blas')}), "
        f"PyTorch {m.get('torch') or 'n/a'}, DeZero {m.get('dezero') or 'n/a'}; "
        f"load average at start {m.get('load_average')}; {results['mode']} run."
        + (" Quick-run sizes are smaller than the targets assume: met / not met is indicative only."
           if results["mode"] == "quick" else ""),
        "",
        "Medians. In parentheses: that framework's figure divided by leafgrad's "
        "(above 1: leafgrad is faster or leaner).",
        "",
        "| # | benchmark | leafgrad | NumPy (hand-written) | PyTorch | DeZero 0.0.13 "
        "| target (leafgrad's ratio) | met |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(key: str, label: str, cells: List[str]) -> None:
        cs = checks.get(key, [])
        target = "; ".join(f"{c['target']}: " + ("n/a" if c["value"] is None else f"{c['value']:.2f}")
                           for c in cs) or "-"
        if not cs or any(c["met"] is None for c in cs):
            met = "-"
        else:
            met = "met" if all(c["met"] for c in cs) else "**not met**"
        lines.append(f"| {key.split('-')[0]} | {label} | " + " | ".join(cells) + f" | {target} | {met} |")

    def fw_row(key: str, label: str, values: Dict[str, Optional[float]], scale: float, fmt: str) -> None:
        base = values.get("leafgrad")
        cells = [_cell(base, None, scale, fmt)]
        cells += [_cell(values.get(fw), base, scale, fmt) for fw in ("numpy", "torch", "dezero")]
        row(key, label, cells)

    if "1" in items:
        fw_row("1", f"MLP {'-'.join(map(str, cfg['mlp_sizes']))}, batch {cfg['mlp_batch']}: "
               "one SGD step (ms)", items["1"]["median"], 1e3, "{:.1f}")
    if "2" in items:
        b = cfg["mem_batch"]
        fw_row("2a", f"same, batch {b}: peak RSS growth of a step (MiB)",
               items["2"]["rss_peak_growth"], 1, "{:.0f}")
        fw_row("2b", f"same, batch {b}: tracemalloc peak of a step (MiB)",
               items["2"]["tracemalloc_peak_growth"], 1, "{:.0f}")
        if "kept_after_first_step" in items["2"]:
            fw_row("2c", f"same, batch {b}: kept between steps: gradients, optimizer buffers "
                   "(tracemalloc, MiB)", items["2"]["kept_after_first_step"], 1, "{:.1f}")
    if "3" in items:
        fw_row("3", f"scalar chain `y = y * 1.0001 + 0.0001`, {items['3']['ops']:,} ops, "
               "forward + backward (us/op)", items["3"]["median"], 1, "{:.2f}")
    if "4" in items:
        for n in sorted(items["4"]["by_n"], key=int):
            fw_row("4-" + n, f"wide graph `y = y + x[i] * w`, N = {int(n):,}: backward (s)",
                   items["4"]["by_n"][n]["median"], 1, "{:.3f}")
    if "5" in items:
        fw_row("5", f"small CNN, batch {cfg['cnn_batch']}: one SGD step (ms)", items["5"]["median"],
               1e3, "{:.1f}")
    if "6" in items:
        k = cfg["keep_steps"]
        fw_row("6a", f"{k:,} steps keeping every loss: tracemalloc growth (MiB)",
               items["6"]["tracemalloc_growth"], 1, "{:.2f}")
        fw_row("6b", f"{k:,} steps keeping every loss: RSS growth (MiB)", items["6"]["rss_growth"],
               1, "{:.2f}")
    if "7" in items:
        c = items["7"]
        tm, med = c["tracemalloc_peak_mib"], c["median_s"]
        desc = (f"checkpoint every {cfg['ckpt_every']} of {len(cfg['ckpt_sizes']) - 1} layers "
                f"(width {cfg['ckpt_sizes'][1]}, batch {cfg['ckpt_batch']})")
        row("7a", desc + ": tracemalloc peak of a step (MiB)",
            [f"{tm['checkpoint']:.0f} (plain {tm['plain']:.0f})", "-", "-", "-"])
        row("7b", desc + ": step time (ms)",
            [f"{med['checkpoint'] * 1e3:.0f} (plain {med['plain'] * 1e3:.0f})", "-", "-", "-"])
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Profiling
# ---------------------------------------------------------------------------
def profile(cfg: dict, top: int = 25) -> str:
    """cProfile of leafgrad on items 1 and 3: the functions with the most own time."""
    from _mlp import make_step
    from _micro import chain
    out = io.StringIO()
    step = make_step("leafgrad", cfg["mlp_sizes"], cfg["mlp_batch"])
    step()
    run = chain("leafgrad", cfg["chain_len"])()
    run()
    for title, fn, calls in (("item 1: MLP step x20", step, 20), ("item 3: scalar chain x3", run, 3)):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            fn()
        prof.disable()
        out.write(f"\n### cProfile, {title} (sorted by own time)\n")
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions: a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--items", default="1,2,3,4,5,6,7", help="comma-separated item numbers")
    parser.add_argument("--frameworks", default="leafgrad,numpy,torch,dezero",
                        help="comma-separated subset of leafgrad,numpy,torch,dezero")
    parser.add_argument("--profile", action="store_true", help="print cProfile hot spots of leafgrad")
    args = parser.parse_args(argv)

    cfg = dict(QUICK if args.quick else FULL)
    wanted = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = set(wanted) - set(NAMES)
    if unknown:
        parser.error(f"unknown frameworks: {sorted(unknown)}")
    fws = available(wanted)
    if "leafgrad" not in fws:
        parser.error("leafgrad cannot be imported")
    items = [int(i) for i in args.items.split(",") if i.strip()]
    bad = [i for i in items if i not in ITEMS]
    if bad:
        parser.error(f"unknown items: {bad} (known: 1-7)")

    results: Dict[str, Any] = {"mode": "quick" if args.quick else "full", "config": cfg,
                               "machine": machine_info(), "frameworks": fws, "items": {},
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for i in items:
        log(f"[bench] item {i} ...")
        t0 = time.perf_counter()
        try:
            results["items"][str(i)] = ITEMS[i](cfg, fws)
        except Exception as err:  # noqa: BLE001 - one broken item must not hide the others
            log(f"[bench] item {i} failed: {type(err).__name__}: {err}")
            results.setdefault("errors", {})[str(i)] = f"{type(err).__name__}: {err}"
        log(f"[bench] item {i} took {time.perf_counter() - t0:.1f} s")

    results["checks"] = evaluate(results)
    md = table(results)
    results["table_markdown"] = md
    print("\n# Summary\n")
    print(md)
    if args.profile:
        prof = profile(cfg)
        results["profile"] = prof
        print(prof)
    if args.json:
        write_json_atomic(args.json, _jsonable(results))
    return 1 if results.get("errors") else 0


def _jsonable(obj: Any) -> Any:
    """NumPy scalars to Python numbers, recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


if __name__ == "__main__":
    sys.exit(main())
