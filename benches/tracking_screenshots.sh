#!/usr/bin/env bash
# The pictures of docs/tracking.md: two small runs logged to TensorBoard and to MLflow, then
# TensorBoard's and MLflow's own pages showing them, taken by headless Chromium. Everything is
# started here, on 127.0.0.1, and stopped at the end: an `mlflow server` with a store in a
# temporary folder, the runs, `tensorboard --logdir` on them.
#
#   benches/tracking_screenshots.sh [OUT_DIR]      # default docs/images/tracking
#
# Needs python3 with tensorboard and mlflow (set PYTHON to pick one), chromium, and MNIST in
# $MNIST_DIR or ../shared/data/mnist. LENET names the binary [default: cargo run --release --].
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/images/tracking}
python=${PYTHON:-python3}
data_dir=${MNIST_DIR:-$(cd ../shared/data/mnist && pwd)}
if [ -n "${LENET:-}" ]; then lenet=("$LENET"); else lenet=(cargo run --release --quiet --); fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {
  for _ in $(seq 120); do
    if "$python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1])" "$1" 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  echo "nothing answered at $1" >&2
  exit 1
}
shot() {
  # The pages fetch their data after they load: Chromium gives them time before the picture.
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$3" \
    --virtual-time-budget=25000 --screenshot="$1" "$2" 2>/dev/null
  echo "wrote $1 ($2)"
}

mlflow_port=$(free_port)
setsid "$python" -m mlflow server --host 127.0.0.1 --port "$mlflow_port" --workers 1 \
  --backend-store-uri "sqlite:///$work/mlflow.db" --artifacts-destination "$work/mlartifacts" \
  >"$work/mlflow.log" 2>&1 &
pids+=($!)
mlflow=http://127.0.0.1:$mlflow_port
wait_for "$mlflow/health"

for lr in 0.002 0.0005; do
  "${lenet[@]}" --config configs/smoke.json --epochs 4 --learning-rate "$lr" --no-tui \
    --tensorboard --mlflow "$mlflow" --data-dir "$data_dir" \
    --artifact-dir "$work/artifacts/smoke-lr$lr" | tail -3
done

tb_port=$(free_port)
setsid "$python" -m tensorboard.main --logdir "$work/artifacts" --host 127.0.0.1 \
  --port "$tb_port" >"$work/tensorboard.log" 2>&1 &
pids+=($!)
tensorboard=http://127.0.0.1:$tb_port
wait_for "$tensorboard/data/runs"

mkdir -p "$out"
shot "$out/tensorboard-scalars.png" "$tensorboard/#timeseries" 1400,900
shot "$out/tensorboard-hparams.png" "$tensorboard/#hparams" 1400,600
record() {
  "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$work/artifacts/smoke-lr0.002/mlflow.json" "$1"
}
experiment=$(record experiment_id)
# MLflow 3 opens on GenAI pages unless told the kind of work: the runs, their metrics as charts.
shot "$out/mlflow-runs.png" \
  "$mlflow/#/experiments/$experiment/runs?workflowType=machine_learning&compareRunsMode=CHART" \
  1600,1000
