#!/usr/bin/env bash
# On a machine with a CUDA GPU: `nas train` on the GPU (auto device), killed and resumed twice
# (on the GPU, then on the CPU), a second run on the same folder refused, `nas cam` on the
# result, the stage-1 proxy evaluator on the GPU, and B0 training throughput against
# torchvision's and timm's efficientnet_b0 under one torch.
#
# Issue 16 (trials at GPU speed), about 8 minutes on an H200, each part under its own timeout:
#   levers  proxy B0 at 32 px, images/s with each speed lever against eager on the same GPU
#           (benchmarks/bench_proxy_levers.py; levers.md, levers.json)
#   search  the bare `nas search --target-flops 400M --device cuda` (default budget, ladder
#           and finalists included): wall time (search.txt, the run folder search/)
#   tpd     --trials-per-device 1, 2, 4: wall time of the same 8 one-epoch trials (tpd.txt)
#   gputests  the tests marked gpu (pytest -m gpu; gputests.txt)
#
#   PARTS="levers search tpd gputests" benchmarks/gpu_check.sh DATA_DIR "$OUT" [PYTHON]
#   [PARTS="train proxy throughput"] benchmarks/gpu_check.sh DATA_DIR OUT_DIR [PYTHON]
#
# DATA_DIR holds Fashion-MNIST's four IDX .gz files. PYTHON (default python3) needs torch and
# Pillow; the throughput rows for torchvision and timm need those two beside it (skipped
# otherwise). The package is used from this checkout (PYTHONPATH): optuna, ray and fvcore are
# not needed.
set -u
DATA=${1:?usage: gpu_check.sh DATA_DIR OUT_DIR [PYTHON]}
OUT=${2:?usage: gpu_check.sh DATA_DIR OUT_DIR [PYTHON]}
PY=${3:-python3}
PARTS=${PARTS:-train proxy throughput}
TRAIN_ARGS=${TRAIN_ARGS:---train-samples 20000}  # e.g. "--train-samples 640 --threads 1" to try it on a CPU
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT"
NAS=("$PY" -m nas.cli)  # an array, not a shell function: `$!` of a background job is its pid
step() { printf '\n===== %s\n' "$*"; }
want() { [[ " $PARTS " == *" $1 "* ]]; }

# Start `nas train ARGS` in the background and kill -9 it once checkpoint N exists.
train_until() {
    local n=$1; shift
    "${NAS[@]}" train "$@" &
    local pid=$! ckpt
    ckpt=$(printf '%s/checkpoints/epoch-%04d.pt' "$RUN" "$n")
    while kill -0 $pid 2>/dev/null && [ ! -f "$ckpt" ]; do sleep 0.1; done
    kill -9 $pid 2>/dev/null && echo "killed pid $pid after checkpoint $n"
    wait $pid 2>/dev/null
}

step device
nvidia-smi -L
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

if want train; then
    RUN=$OUT/fm
    step "nas train, 3 epochs at 64 px: killed after epoch 1 (GPU), after epoch 2 (GPU), ends on the CPU"
    train_until 1 efficientnet-b0 --dataset fashion-mnist --data-dir "$DATA" --epochs 3 \
        --resolution 64 $TRAIN_ARGS --out "$RUN"
    "${NAS[@]}" train efficientnet-b0 --resume --out "$RUN" &
    pid=$!
    sleep 8  # the resumed run holds the folder now: a second one must be refused
    "${NAS[@]}" train efficientnet-b0 --resume --out "$RUN"
    echo "second run on the same folder: rc=$? (2 expected)"
    while kill -0 $pid 2>/dev/null && [ ! -f "$RUN/checkpoints/epoch-0002.pt" ]; do sleep 0.1; done
    kill -9 $pid 2>/dev/null && echo "killed pid $pid after checkpoint 2"
    wait $pid 2>/dev/null
    "${NAS[@]}" train efficientnet-b0 --resume --out "$RUN" --device cpu --threads 8
    echo "rc=$?"
    cat "$RUN/metrics.csv"
    cat "$RUN/results.json"; echo

    step "nas cam on that run's checkpoint"
    "${NAS[@]}" cam "$RUN" --images 8 -o "$OUT/cam.png"
    echo "rc=$?"
fi

if want proxy; then
    step "stage-1 proxy evaluator on the GPU (default proxy settings)"
    "$PY" - "$DATA" <<'EOF'
import sys
from nas.evaluate import ProxyConfig, evaluate_proxy
from space import get_model
for _ in range(2):  # the first call includes CUDA start-up
    r = evaluate_proxy(get_model("efficientnet-b0"), ProxyConfig(data_dir=sys.argv[1]), seed=0,
                       device="cuda")
    print(f"cuda: acc {r.accuracy:.4f}  {r.seconds:.1f}s  {r.images_per_sec:.0f} img/s")
EOF
fi

if want levers; then
    step "issue 16: proxy B0 at 32 px, each speed lever vs eager (same GPU, same run)"
    timeout 270 "$PY" -m benchmarks.bench_proxy_levers --device cuda --data-dir "$DATA" \
        --train-samples 16384 --epochs 2 --rounds 2 --json "$OUT/levers.json" \
        --variants eager,channels_last,bf16,b256,b1024,best-eager,compile,cudagraphs,best \
        | tee "$OUT/levers.md"
    echo "rc=${PIPESTATUS[0]}"
fi

if want search; then
    step "issue 16: bare nas search --target-flops 400M --device cuda, wall time"
    start=$(date +%s.%N)
    timeout 200 "${NAS[@]}" search --target-flops 400M --device cuda --data-dir "$DATA" \
        --out "$OUT/search" > "$OUT/search.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    echo "rc=$rc wall_s=$("$PY" -c "print(round($end - $start, 1))")" | tee "$OUT/search.txt"
    tail -5 "$OUT/search.log" | tee -a "$OUT/search.txt"
    cp "$OUT/search/summary.json" "$OUT/search_summary.json" 2>/dev/null
fi

if want tpd; then
    step "issue 16: --trials-per-device 1, 2, 4 (8 one-epoch trials, no pruning, no finalists)"
    for n in 1 2 4; do
        start=$(date +%s.%N)
        timeout 100 "${NAS[@]}" search --target-flops 400M --device cuda --data-dir "$DATA" \
            --trials 8 --epochs 1 --pruner none --finalists 0 --trials-per-device "$n" \
            --out "$OUT/tpd$n" > "$OUT/tpd$n.log" 2>&1
        rc=$?
        end=$(date +%s.%N)
        wall=$("$PY" -c "print(round($end - $start, 1))")
        echo "trials_per_device=$n rc=$rc wall_s=$wall" | tee -a "$OUT/tpd.txt"
    done
fi

if want gputests; then
    step "issue 16: the tests marked gpu"
    timeout 120 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/nas/test_device.py \
        2>&1 | tail -5 | tee "$OUT/gputests.txt"
fi

if want throughput; then
    step "B0 training throughput, ours vs torchvision and timm, same torch"
    "$PY" -m benchmarks.bench_train_throughput --peer-python "$PY" --resolution 224 \
        --batch-size 128 --steps 10 --rounds 5 --warmup 5 --json "$OUT/throughput.json"
fi
