"""``benchmarks/bench_gpu.py`` on a machine without a GPU: a clear message, not a traceback."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _gpu_present() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, or no driver
        return False


@pytest.mark.skipif(_gpu_present(), reason="a GPU is present: gpu_check.sh runs the benchmark")
def test_bench_gpu_without_a_gpu_exits_with_a_message():
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_gpu.py")],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert run.returncode == 1
    assert "bench_gpu: no usable GPU" in run.stderr and "Traceback" not in run.stderr
