#!/usr/bin/env bash
# The GPU check of issue 13 in one go, for a session with a GPU (device time is scarce):
# the environment, the GPU tests (tests/test_gpu*.py), then the GPU benchmark (bench_gpu.py).
#
#   bash benchmarks/gpu_check.sh            # PYTHON=... picks the interpreter (default python3)
#
# A few minutes: the tests are bounded at 5 minutes (most of it CuPy compiling kernels on first
# use), the benchmark at 3.5, so the whole fits in one 10-minute device command. Full logs and
# bench_gpu.json go to $OUT (or /tmp); the output ends with the failing tests, the benchmark's
# table and a two-line summary.
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
LOGS="${OUT:-/tmp}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== environment"
"$PY" - <<'EOF'
import sys
import numpy
print("python", sys.version.split()[0], "| numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "| devices", cupy.cuda.runtime.getDeviceCount())
except Exception as err:  # noqa: BLE001
    print("cupy: not usable:", type(err).__name__, err)
try:
    import torch
    print("torch", torch.__version__, "| cuda", torch.cuda.is_available())
except Exception as err:  # noqa: BLE001
    print("torch: not usable:", type(err).__name__, err)
import leafgrad
print("leafgrad from", leafgrad.__file__, "| gpu_enable", leafgrad.cuda.gpu_enable)
EOF

echo "== GPU tests (log: $LOGS/gpu_tests.log)"
timeout 300 "$PY" -m pytest -q -p no:cacheprovider -rfEs --tb=short tests/test_gpu*.py > "$LOGS/gpu_tests.log" 2>&1
tests_rc=$?
grep -E "^(FAILED|ERROR|SKIPPED)" "$LOGS/gpu_tests.log" | cut -c1-240 | head -n 40
grep -E "^E +[^ ]" "$LOGS/gpu_tests.log" | sort | uniq -c | sort -rn | cut -c1-240 | head -n 15

echo "== GPU benchmark (log: $LOGS/bench_gpu.log)"
timeout 210 "$PY" benchmarks/bench_gpu.py --json "$LOGS/bench_gpu.json" 2>&1 | tee "$LOGS/bench_gpu.log"
bench_rc=${PIPESTATUS[0]}

echo "== summary"
echo "tests (exit $tests_rc): $(tail -n 1 "$LOGS/gpu_tests.log")"
echo "benchmark (exit $bench_rc): $LOGS/bench_gpu.json"
exit $(( tests_rc != 0 || bench_rc != 0 ))
