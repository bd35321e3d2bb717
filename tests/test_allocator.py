"""leafgrad.allocator: freed array memory is kept for reuse (glibc), and the environment can say no."""
import os
import subprocess
import sys
import textwrap

import pytest

from leafgrad import allocator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLIBC = allocator._glibc() is not None
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the C library is not glibc")

# Eight 2 MiB arrays touched and freed, 20 times after 3 warm-up rounds: the page faults it costs.
CHURN = textwrap.dedent("""
    import resource
    import numpy as np
    import leafgrad
    def churn():
        arrays = [np.ones(2 ** 19, np.float32) for _ in range(8)]
        del arrays
    for _ in range(3):
        churn()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        churn()
    print(leafgrad.allocator.applied_at_import, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
""")


def _run(code: str, **env_changes) -> list:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LEAFGRAD_MALLOC", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    env.update(env_changes)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.split()


@needs_glibc
def test_import_keeps_freed_memory_and_the_churn_costs_no_page_faults():
    applied, faults = _run(CHURN)
    assert applied == "True"
    # 20 rounds of 16 MiB would be 81,920 pages faulted in again if glibc returned them
    assert int(faults) < 2000, faults


@needs_glibc
def test_leafgrad_malloc_system_leaves_glibc_as_it_is():
    applied, faults = _run(CHURN, LEAFGRAD_MALLOC="system")
    assert applied == "False"
    assert int(faults) > 20000, faults  # glibc's adaptive thresholds give the memory back each round


@needs_glibc
@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_glibc_environment_wins(name):
    applied, _ = _run(CHURN, **{name: "131072"})
    assert applied == "False"


@needs_glibc
def test_keep_freed_memory_reports_success():
    assert allocator.keep_freed_memory() is True


@pytest.mark.parametrize("kwargs", [{"mmap_threshold": -1}, {"trim_threshold": 2 ** 31},
                                    {"mmap_threshold": 1.5}, {"trim_threshold": True}])
def test_bad_thresholds_name_the_function(kwargs):
    with pytest.raises(ValueError, match="keep_freed_memory: (mmap|trim)_threshold must be a byte count"):
        allocator.keep_freed_memory(**kwargs)


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert allocator.keep_freed_memory() is False
