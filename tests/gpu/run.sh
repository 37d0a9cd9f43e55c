#!/usr/bin/env bash
# Everything that needs the GPU machine, in one call: builds build-gpu/ (tests/gpu/build.sh), runs
# the tests labelled gpu, the PyTorch cross-check of the DiT (tests/gpu/ref_wan.py compare on the
# files test_dit_cuda leaves), then the benchmarks (reel bench ... and the PyTorch reference
# forward, same run). Full output goes to $OUT (build-gpu/ without $OUT): gpu_tests.log and
# bench.log; the tables are printed last.
#   bash tests/gpu/run.sh                      # tests and benchmarks
#   REEL_GPU_BENCH=0 bash tests/gpu/run.sh     # tests only
#   REEL_GPU_BENCH="vae generate" bash ...     # only these benchmark groups (dit vae t5 attn generate)
#   REEL_GPU_TESTS=0 bash tests/gpu/run.sh     # benchmarks only
#   bash tests/gpu/run.sh gpu_test_ops_cuda    # only these test targets (no benchmarks)
set -uo pipefail
cd "$(dirname "$0")/../.."

bash tests/gpu/build.sh || exit 1
log_dir="${OUT:-build-gpu}"
mkdir -p "$log_dir"
log="$log_dir/gpu_tests.log"
blog="$log_dir/bench.log"
: >"$log"
: >"$blog"
status=0
only=()
if [ $# -gt 0 ]; then
  only=(-R "^($(IFS='|'; echo "$*"))\$")
  REEL_GPU_BENCH=0
fi
[ "${REEL_GPU_BENCH:-all}" = 0 ] && REEL_GPU_BENCH=none
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >>"$log" 2>&1 || true
git log -1 --format='commit %h %cd' >>"$log" 2>/dev/null || true

if [ "${REEL_GPU_TESTS:-1}" != 0 ]; then
  ref_dir="$PWD/build-gpu/dit_ref"
  rm -rf "$ref_dir" && mkdir -p "$ref_dir"
  (cd build-gpu && REEL_DIT_REF_DIR="$ref_dir" ctest -L gpu "${only[@]}" -V --timeout 600) >>"$log" 2>&1 \
    || status=$?
  if [ -f "$ref_dir/reel_cuda.safetensors" ]; then
    echo "== PyTorch cross-check of the DiT (tests/gpu/ref_wan.py compare)" >>"$log"
    PYTHONUNBUFFERED=1 python3 tests/gpu/ref_wan.py compare "$ref_dir" >>"$log" 2>&1 || status=1
  fi
fi

bench() { # one benchmark command, its output kept
  echo "== reel bench $*" >>"$blog"
  timeout 300 build-gpu/reel bench "$@" >>"$blog" 2>&1 || { echo "FAIL reel bench $*" >>"$blog"; status=1; }
}
want() { # is this benchmark group selected by REEL_GPU_BENCH ("all", "0" or a list)?
  case " ${REEL_GPU_BENCH:-all} " in *" all "*|*" $1 "*) return 0 ;; *) return 1 ;; esac
}
torch_ref() { # a PyTorch reference measurement in the same run
  echo "== PyTorch: $*" >>"$blog"
  PYTHONUNBUFFERED=1 timeout 300 python3 "$@" >>"$blog" 2>&1 || echo "FAIL python3 $*" >>"$blog"
}
if want dit; then
  bench dit --model 1.3B --frames 81 --size 832x480 --attn dense --iters 3
  # a prompt of 128 tokens (about the default negative prompt's), padded to 512 as prompts are
  bench dit --model 1.3B --frames 81 --size 832x480 --attn dense --iters 3 --prompt-tokens 128
  bench dit --model 1.3B --frames 81 --size 832x480 --attn dense --iters 3 --batch 2
  bench dit --model 1.3B --frames 81 --size 832x480 --attn dense:kernel=cudnn --iters 3
  bench dit --model 1.3B --frames 81 --size 832x480 --attn radial --iters 3
  bench dit --model 14B --frames 81 --size 1280x720 --attn dense --iters 1
  torch_ref tests/gpu/ref_wan.py bench
fi
if want vae; then
  bench vae --iters 3 --keep
  torch_ref tests/gpu/ref_vae.py time --model /tmp/reel-bench-vae-96.safetensors --shape 21x60x104 --dtype bf16
  torch_ref tests/gpu/ref_vae.py time --model /tmp/reel-bench-vae-96.safetensors --shape 21x60x104 --dtype fp32
  rm -f /tmp/reel-bench-vae-96.safetensors
fi
want t5 && bench t5 --iters 20
want attn && bench attn --reps 5
if want generate; then
  bench generate --model 1.3B --frames 81 --size 832x480 --steps 50 --cfg 5 --attn dense
  bench generate --model 1.3B --frames 81 --size 832x480 --steps 50 --cfg 5 --attn radial
fi

echo "== tables (full logs: $log $blog)"
grep -hE '^([0-9]+: )?(device:|\||Wan |weights |==|\{)' "$log" "$blog" | sed -E 's/^[0-9]+: //' || true
echo "== failures and summary"
grep -hE '(^|: )FAIL |tests passed|tests failed|skipped|error' "$log" "$blog" | sed -E 's/^[0-9]+: //' | head -40 || true
exit "$status"
