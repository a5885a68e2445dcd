#!/usr/bin/env bash
# One-shot verification of the CUDA backend on a GPU machine (an H100/H200 session):
# build with CUDA, run tests/gpu (the _cuda parity tests) and tests/serving/test_gpu_serving.py
# (PyTorch training and serving on CUDA), the device benchmark and the pytest-benchmark groups, and leave at most 8 files under
# $OUT (default: ./device-check-out). TOTAL_S (default 570) bounds the whole run; ARCHS (default
# "80-real;90") are the CUDA architectures built.
#
#   OUT=/some/dir TOTAL_S=330 ARCHS=90-real bash benchmarks/gpu/run_device_check.sh
#
# Needs: python3 with numpy, pytest, torch (CUDA), pybind11 >= 3, scikit-build-core, cmake,
# nvcc (with cuFFT, or the nvidia-cufft wheel); CuPy, torchaudio and pytest-benchmark are used
# when present. No package index is needed (nothing is downloaded).
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/device-check-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
TOTAL_S="${TOTAL_S:-570}"
ARCHS="${ARCHS:-80-real;90}"
START=$(date +%s)
left() { echo $(( TOTAL_S - ($(date +%s) - START) )); }
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"
summary "device check started $(date -u +%FT%TZ) in $PWD"

# ---------------------------------------------------------------- environment
{
  nvidia-smi || true
  command -v nvcc && nvcc --version || ls /usr/local/cuda/bin 2>/dev/null
  "$PY" --version
  cmake --version | head -1
  "$PY" - <<'PYEOF'
import importlib
for name in ("numpy", "pytest", "pytest_benchmark", "torch", "torchaudio", "cupy", "pybind11",
             "scikit_build_core", "soundfile", "soxr", "scipy", "librosa"):
    try:
        m = importlib.import_module(name)
        print(f"{name:18s} {getattr(m, '__version__', '?')}")
    except Exception as e:
        print(f"{name:18s} MISSING ({type(e).__name__}: {e})")
try:
    import onnxruntime
    print("onnxruntime providers", onnxruntime.get_available_providers())
except Exception as e:
    print("onnxruntime:", e)
try:
    import torch
    print("torch cuda", torch.version.cuda, torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as e:
    print("torch:", e)
PYEOF
} > "$OUT/env.txt" 2>&1
summary "environment: $OUT/env.txt"

# ---------------------------------------------------------------- build (CUDA required)
BUILD_START=$(date +%s)
# the pybind11 that python imports (a carried newer one comes first on PYTHONPATH), not whichever
# CMake's package registry would find
PYBIND_ARGS=()
PYBIND_DIR=$("$PY" -c "import pybind11; print(pybind11.get_cmake_dir())" 2>/dev/null) \
  && PYBIND_ARGS=(-C "cmake.define.pybind11_DIR=$PYBIND_DIR")
MLU_CUDA=ON timeout $(( $(left) - 60 )) "$PY" -m pip install --no-build-isolation --no-deps \
  --no-index -v -e . -C build-dir=build/device -C cmake.define.CMAKE_CUDA_ARCHITECTURES="$ARCHS" \
  "${PYBIND_ARGS[@]}" > "$OUT/build.log" 2>&1
BUILD_RC=$?
if [ "$BUILD_RC" != 0 ] && grep -q "unsupported GNU version\|unsupported compiler" "$OUT/build.log"; then
  summary "nvcc rejects this host compiler: retrying with -allow-unsupported-compiler"
  MLU_CUDA=ON timeout $(( $(left) - 60 )) "$PY" -m pip install --no-build-isolation --no-deps \
    --no-index -v -e . -C build-dir=build/device -C cmake.define.CMAKE_CUDA_ARCHITECTURES="$ARCHS" "${PYBIND_ARGS[@]}" \
    -C cmake.define.CMAKE_CUDA_FLAGS=-allow-unsupported-compiler >> "$OUT/build.log" 2>&1
  BUILD_RC=$?
fi
summary "build rc=$BUILD_RC in $(( $(date +%s) - BUILD_START )) s (log: build.log)"
grep -iE "warning|error" "$OUT/build.log" | grep -v "^ *$" | head -30 >> "$OUT/summary.txt" || true
summary "build_info: $("$PY" -c "import json, ml_utilities; print(json.dumps(ml_utilities.build_info()))" 2>&1 | head -c 900)"
if [ "$BUILD_RC" != 0 ]; then
  summary "BUILD FAILED: stopping (see build.log)"
  exit 1
fi

# ---------------------------------------------------------------- tests/gpu
PYTEST_OPTS=(-o addopts="" -p no:cacheprovider -W "ignore::DeprecationWarning"
             -W "ignore::FutureWarning" -ra --tb=short)
if "$PY" -c "import pytest_timeout" 2>/dev/null; then PYTEST_OPTS+=(--timeout=120); fi
TEST_START=$(date +%s)
TEST_S=$(( $(left) * 55 / 100 ))
timeout "$TEST_S" "$PY" -m pytest tests/gpu tests/serving/test_gpu_serving.py -q \
  "${PYTEST_OPTS[@]}" --durations=15 \
  > "$OUT/tests-gpu.txt" 2>&1
TEST_RC=$?
summary "tests/gpu rc=$TEST_RC in $(( $(date +%s) - TEST_START )) s: $(tail -1 "$OUT/tests-gpu.txt")"
grep -E "^(FAILED|ERROR)" "$OUT/tests-gpu.txt" | head -40 >> "$OUT/summary.txt" || true
grep -E "^SKIPPED" "$OUT/tests-gpu.txt" | head -10 >> "$OUT/summary.txt" || true

# ---------------------------------------------------------------- the device benchmark
BENCH_START=$(date +%s)
timeout $(( $(left) * 60 / 100 )) "$PY" -m ml_utilities bench --device cuda --repeat 5 \
  --json "$OUT/bench.json" > "$OUT/bench.txt" 2>&1
BENCH_RC=$?
summary "bench --device cuda rc=$BENCH_RC in $(( $(date +%s) - BENCH_START )) s"
grep -E "^(case|1 x|[0-9]+ x)|target|speedup|hours" "$OUT/bench.txt" | tee -a "$OUT/summary.txt"

# ---------------------------------------------------------------- pytest-benchmark groups
LEFT=$(left)
if "$PY" -c "import pytest_benchmark" 2>/dev/null && [ "$LEFT" -gt 90 ]; then
  timeout $(( LEFT - 30 )) "$PY" -m pytest benchmarks/gpu -q -o addopts="" -p no:cacheprovider \
    --benchmark-enable --benchmark-min-rounds=3 --benchmark-max-time=0.5 \
    --benchmark-json="$OUT/pytest-bench.json" > "$OUT/pytest-bench.txt" 2>&1
  summary "benchmarks/gpu rc=$? ($(tail -1 "$OUT/pytest-bench.txt"))"
  grep -A20 "speed-up against the peer" "$OUT/pytest-bench.txt" >> "$OUT/summary.txt" || true
else
  summary "benchmarks/gpu skipped (pytest-benchmark missing or ${LEFT}s left)"
fi

summary "device check finished in $(( $(date +%s) - START )) s"
[ "$TEST_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
