#!/usr/bin/env bash
# Burn (`lenet bench`) against PyTorch (benches/pytorch_reference.py) on the same machine, run
# interleaved (Burn, PyTorch, Burn, PyTorch, ...) so that drifts in machine speed hit both alike.
# Prints each pair's train-time ratio (Burn epoch seconds / PyTorch epoch seconds; below 1 means
# Burn is faster) and the median ratio.
#
#   benches/compare.sh [--pairs N] [--batch-size N] [--threads N] [--device cpu|cuda]
#                      [--features FEATURES] [--burn-device NAME] [--lenet BINARY]
#
# --lenet measures a lenet binary built elsewhere (another commit, say) instead of building this
# tree with --features.
#
# Needs python3 with torch and numpy (set PYTHON to pick one). MNIST is read from $MNIST_DIR,
# else ../shared/data/mnist, else the user cache folder (as `lenet` finds it).
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=4 batch=64 threads=$(nproc) torch_device=cpu features=flex burn_device="" lenet=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --device) torch_device=$2; shift 2 ;;
    --features) features=$2; shift 2 ;;
    --burn-device) burn_device=$2; shift 2 ;;
    --lenet) lenet=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-python3}
data_dir=${MNIST_DIR:-}
if [ -z "$data_dir" ] && [ -d ../shared/data/mnist ]; then data_dir=$(cd ../shared/data/mnist && pwd); fi
data_args=()
if [ -n "$data_dir" ]; then data_args=(--data-dir "$data_dir"); fi
burn_args=(--batch-size "$batch" --json "${data_args[@]}")
if [ -n "$burn_device" ]; then burn_args+=(--device "$burn_device"); fi

if [ -z "$lenet" ]; then
  cargo build --release --quiet --no-default-features --features "$features"
  lenet=${CARGO_TARGET_DIR:-target}/release/lenet
fi
export RAYON_NUM_THREADS=$threads

epoch_seconds() { "$python" -c 'import json,sys; print(min(json.loads(sys.stdin.read().splitlines()[-1])["epoch_seconds"]))'; }
ratios=()
for pair in $(seq "$pairs"); do
  burn=$("$lenet" bench "${burn_args[@]}" 2>/dev/null | epoch_seconds)
  torch=$("$python" benches/pytorch_reference.py --batch-size "$batch" --threads "$threads" \
    --device "$torch_device" "${data_args[@]}" 2>/dev/null | epoch_seconds)
  ratio=$("$python" -c "print(f'{$burn / $torch:.3f}')")
  ratios+=("$ratio")
  printf 'pair %d: burn %s %.2f s/epoch, pytorch %s %.2f s/epoch, ratio %s\n' \
    "$pair" "${burn_device:-$features}" "$burn" "$torch_device" "$torch" "$ratio"
done
"$python" -c "import statistics,sys; print(f'median ratio over {len(sys.argv)-1} pairs, batch $batch, $threads threads: {statistics.median(map(float, sys.argv[1:])):.3f}')" "${ratios[@]}"
