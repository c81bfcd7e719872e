#!/usr/bin/env bash
# The whole GPU measurement, for a machine with an NVIDIA GPU (or any GPU wgpu reaches), in one
# go: for the wgpu and vulkan backends against PyTorch CUDA,
#
#   1. `lenet bench` twice with an empty cache folder before the first run only: the first
#      epoch of a cold run (CubeCL autotunes and compiles) against a warm run's, and the warm
#      epochs; then the cache folder's size;
#   2. benches/compare.sh --device cuda: interleaved pairs, Burn's epoch time over PyTorch's;
#   3. `lenet --config configs/lenet.json` and `configs/speedrun.json`, timed whole, with the
#      PyTorch recipe of the speedrun (benches/pytorch_reference.py --speedrun) beside it.
#
#   benches/gpu.sh [--pairs N] [--backends "wgpu vulkan"] [--no-pytorch] [--no-build] > figures.txt
#
# Needs the Vulkan loader (libvulkan1) and the GPU's Vulkan driver, python3 with torch (CUDA)
# and numpy (set PYTHON), and MNIST in $MNIST_DIR or ../shared/data/mnist. Builds go to
# target/gpu-<feature>; --no-build runs the binaries already there, for a GPU machine without
# Rust (build them elsewhere with the cargo line below and copy target/gpu-*/release/lenet).
# --backends measures fewer backends; --no-pytorch leaves out PyTorch's speedrun at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=3 build=1 backends="wgpu vulkan" pytorch=1
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --backends) backends=$2; shift 2 ;;
    --no-pytorch) pytorch=0; shift ;;
    *) echo "unknown argument $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-python3}
data_dir=${MNIST_DIR:-$(cd ../shared/data/mnist 2>/dev/null && pwd || true)}
data_args=()
if [ -n "$data_dir" ]; then data_args=(--data-dir "$data_dir"); fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/lenet/cubecl

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

for feature in $backends; do
  target=target/gpu-$feature
  if [ "$build" = 1 ]; then
    cargo build --release --quiet --no-default-features --features "$feature" --target-dir "$target"
  fi
  lenet=$target/release/lenet

  echo "== $feature: cold and warm (cache $cache)"
  rm -rf "$cache"
  "$lenet" bench --device "$feature" --epochs 3 --warmup-batches 0 "${data_args[@]}"
  "$lenet" bench --device "$feature" --epochs 3 --warmup-batches 0 "${data_args[@]}"
  du -sh "$cache" 2>/dev/null || echo "no cache folder at $cache"

  echo "== $feature: against PyTorch CUDA"
  PYTHON=$python benches/compare.sh --pairs "$pairs" --device cuda --lenet "$lenet" \
    --burn-device "$feature"

  for config in lenet speedrun; do
    echo "== $feature: configs/$config.json, whole command"
    start=$(date +%s.%N)
    "$lenet" --config "configs/$config.json" --device "$feature" --no-tui --overwrite \
      --artifact-dir "target/gpu-runs/$feature-$config" "${data_args[@]}" | tail -4
    "$python" -c "import sys; print(f'wall: {float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" \
      "$start" "$(date +%s.%N)"
  done
done

if [ "$pytorch" = 0 ]; then exit 0; fi
echo "== PyTorch CUDA: configs/speedrun.json's recipe"
"$python" benches/pytorch_reference.py --speedrun configs/speedrun.json --device cuda \
  "${data_args[@]}"
