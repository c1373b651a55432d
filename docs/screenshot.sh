#!/bin/sh
# docs/dashboard.png: the first screen of a run's dashboard, in headless Chromium (offline, as
# tests/results/test_browser.py opens the pages; `make browser` installs Chromium).
#   docs/screenshot.sh RUN_DIR [OUT.png]
# The README's picture is of the small real search whose log the README shows (Fashion-MNIST):
#   nas search --target-flops 400M --train-samples 2000 --proxy-resolution 16 --trials 24 \
#       --finalists 3 --finalist-seeds 2 --out RUN_DIR
set -eu
run_dir=${1:?usage: docs/screenshot.sh RUN_DIR [OUT.png]}
out=${2:-$(dirname "$0")/dashboard.png}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome) || {
    echo "no headless Chromium on PATH (make browser installs it)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m nas.cli dashboard "$run_dir" -o "$tmp/dashboard.html"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$tmp/profile" --host-resolver-rules="MAP * ~NOTFOUND" \
    --virtual-time-budget=15000 --window-size=1280,1100 --screenshot="$tmp/shot.png" \
    "file://$tmp/dashboard.html" 2>/dev/null
cp "$tmp/shot.png" "$out"
echo "wrote $out"
