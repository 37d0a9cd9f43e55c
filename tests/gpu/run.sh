#!/usr/bin/env bash
# GPU tests on the GPU machine: builds build-gpu/ with tests/gpu/build.sh, runs the tests
# labelled gpu, keeps the full output in $OUT/gpu_tests.log (build-gpu/gpu_tests.log without
# $OUT) and prints the table rows the tests print (| op | shape | rel_l2 | tol | ms | rate |).
#   bash tests/gpu/run.sh                       # everything
#   bash tests/gpu/run.sh gpu_test_ops_cuda     # only these targets, and only their tests
set -euo pipefail
cd "$(dirname "$0")/../.."

bash tests/gpu/build.sh "$@"
log_dir="${OUT:-build-gpu}"
mkdir -p "$log_dir"
log="$log_dir/gpu_tests.log"
only=()
if [ $# -gt 0 ]; then
  only=(-R "^($(IFS='|'; echo "$*"))\$")
fi

status=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >"$log" 2>&1 || true
(cd build-gpu && ctest -L gpu "${only[@]}" -V --timeout 600) >>"$log" 2>&1 || status=$?

echo "== tables (full log: $log)"
grep -E '^([0-9]+: )?(device:|\|)' "$log" | sed -E 's/^[0-9]+: //' || true
echo "== failures and summary"
grep -E '(^|: )FAIL |tests passed|tests failed|skipped' "$log" | sed -E 's/^[0-9]+: //' || true
exit "$status"
