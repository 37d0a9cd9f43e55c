#!/usr/bin/env bash
# Builds reel on the GPU machine into build-gpu/ (Hopper only, to keep the build short).
# The device image has no package registry, so cJSON comes from .deps/debs (carried with the
# tree: `carry: [".deps"]`), unpacked into .deps/root. Arguments are ninja targets (default all).
set -euo pipefail
cd "$(dirname "$0")/../.."
extra=()
if [ ! -f /usr/include/cjson/cJSON.h ]; then
  mkdir -p .deps/root
  for f in .deps/debs/*.deb; do dpkg -x "$f" .deps/root; done
  extra+=("-DREEL_DEPS_PREFIX=$PWD/.deps/root/usr")
fi
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  "${extra[@]}" >build-gpu.configure.log 2>&1 || { cat build-gpu.configure.log; exit 1; }
ninja -C build-gpu "$@"
