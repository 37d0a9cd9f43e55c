#!/usr/bin/env bash
# The test command (README, CI): builds reel and runs every CPU test; GPU tests report
# "skipped" without a GPU. Then a CPU-only AddressSanitizer/UBSan build runs the CPU tests again
# (the loaders and parsers are the code that sees untrusted files).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

echo "== build (Release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build -j"$jobs"
echo "== tests"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)

echo "== build (AddressSanitizer, CPU only)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_CUDA=OFF \
  -DREEL_ASAN=ON >/dev/null
ninja -C build-asan -j"$jobs"
echo "== tests under AddressSanitizer"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
   ctest -L cpu --output-on-failure -j"$jobs" --timeout 1800)
echo "== all tests passed"
