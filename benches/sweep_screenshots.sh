#!/usr/bin/env bash
# The pictures of docs/sweeps.md: `lenet serve` over an artifacts folder holding the example
# sweeps, and headless Chromium's screenshots of their pages. Run the sweeps first:
#
#   lenet sweep --config configs/sweeps/speedrun-lr-batch.json
#   lenet sweep --config configs/sweeps/lenet-random.json
#   benches/sweep_screenshots.sh [ARTIFACTS] [OUT_DIR]   # default artifacts, docs/images/sweeps
#
# Needs chromium and python3 (for a free port). LENET names the binary [default: cargo run
# --release --]. The server is started on 127.0.0.1 and stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
artifacts=${1:-artifacts}
out=${2:-docs/images/sweeps}
if [ -n "${LENET:-}" ]; then lenet=("$LENET"); else lenet=(cargo run --release --quiet --); fi
work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${lenet[@]}" serve --artifacts "$artifacts" --port "$port" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 60); do
  if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1])" \
    "http://127.0.0.1:$port/api/sweeps" 2>/dev/null; then
    break
  fi
  sleep 1
done
mkdir -p "$out"
shot() {
  # The page fetches its data after it loads: Chromium gives it time before the picture.
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$3" \
    --disable-background-networking --disable-component-update --disable-sync --no-first-run \
    --user-data-dir="$work/chromium" --virtual-time-budget=10000 --screenshot="$1" "$2" 2>/dev/null
  echo "wrote $1 ($2)"
}
# Each page's height: the grid's two charts; the random sweep's four, and parallel coordinates.
for page in speedrun-lr-batch:1220 lenet-random:1900; do
  sweep=${page%:*}
  if [ -f "$artifacts/$sweep/sweep.json" ]; then
    shot "$out/$sweep.png" "http://127.0.0.1:$port/#/sweep/$sweep" "1280,${page#*:}"
  else
    echo "skipped $sweep: $artifacts/$sweep holds no sweep (run it first)" >&2
  fi
done
