#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for reel and builds it into build/.
#   ./setup.sh              install packages (apt-get; sudo when not root), configure, build
#   ./setup.sh --deps-only  install packages only (what .ci/run uses)
# CUDA is used when nvcc is found (install the CUDA toolkit separately: it is not in apt here).
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential cmake ninja-build pkg-config
          libcjson-dev libpng-dev libstb-dev
          libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
          sentencepiece)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ "${1:-}" = "--deps-only" ] && exit 0

if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
ninja -C build
echo "setup: built build/reel ($(./build/reel version | head -1))"
