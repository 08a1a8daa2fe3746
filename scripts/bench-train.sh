#!/usr/bin/env bash
# Training speed, three ways on the same model, batch, precision and threads: cegraph's trainer
# (`cegraph-worker bench-train`: the trainer's own step), PyTorch eager, and PyTorch with
# torch.compile + fused AdamW (scripts/bench_train.py), alternating ROUNDS times; prints the
# median tokens/s of each, cegraph's ratio to each, and MFU (6N + 12·L·H·Q·T + 6·d·V per token:
# every matmul, the tied unembedding's too, as nanoGPT's estimate_mfu counts) against the matmul peak measured in the same precision on the same threads.
# Not a test: timings depend on what else the machine is doing.
#
# Default size: nanoGPT's shakespeare_char CPU run (4 layers, 4 heads, width 128, context 64,
# batch 12, vocab 65, dropout 0; nanoGPT's architecture is layernorm+flash here), 1 thread.
#   ROUNDS=3  BENCH_STEPS=200  BENCH_WARMUP=20  BENCH_THREADS=1  BENCH_PRECISION=fp32
#   BENCH_INNOVATIONS=layernorm+flash  SIZES="4x128"  (layers x width; heads = width/32)
#   MODES="eager compile-fused"  (any of eager, compile, compile-fused)
#   PROFILE=release|dev, or CEGRAPH_BIN_DIR=a directory with a prebuilt cegraph-worker
#   PYTHON=a python3 with torch 2.11 (default: the repo's venv, scripts/torch-env.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SIZES:=4x128}" "${ROUNDS:=3}" "${PROFILE:=release}" "${MODES:=eager compile-fused}"
export BENCH_STEPS="${BENCH_STEPS:-200}" BENCH_WARMUP="${BENCH_WARMUP:-20}"
export BENCH_THREADS="${BENCH_THREADS:-1}" BENCH_BLOCK="${BENCH_BLOCK:-64}"
export BENCH_BATCH="${BENCH_BATCH:-12}" BENCH_VOCAB="${BENCH_VOCAB:-65}"
export BENCH_PRECISION="${BENCH_PRECISION:-fp32}"
export BENCH_INNOVATIONS="${BENCH_INNOVATIONS:-layernorm+flash}"
export OMP_NUM_THREADS="$BENCH_THREADS"
if [ -n "${CEGRAPH_BIN_DIR:-}" ]; then
  worker="$CEGRAPH_BIN_DIR/cegraph-worker"
else
  source scripts/env.sh
  flags=(); dir=debug
  [ "$PROFILE" = release ] && flags=(--release) && dir=release
  cargo build "${flags[@]}" --quiet -p cegraph-torch --bin cegraph-worker
  worker="target/$dir/cegraph-worker"
fi
py="${PYTHON:-$(bash scripts/torch-env.sh)}"
export LD_LIBRARY_PATH="$("$py" -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { sed -n "s/.*$1=\([0-9.e+-]*\).*/\1/p" | head -1; }
peak=$("$py" scripts/bench_train.py --peak | field gflops)
echo "$BENCH_PRECISION matmul peak: ${peak} GFLOP/s, ${BENCH_THREADS} thread(s); innovations $BENCH_INNOVATIONS; context $BENCH_BLOCK, batch $BENCH_BATCH; $BENCH_STEPS steps × $ROUNDS rounds"
for size in $SIZES; do
  export BENCH_LAYERS="${size%x*}" BENCH_EMBD="${size#*x}"
  export BENCH_HEADS="${BENCH_HEADS_FIXED:-$(( BENCH_EMBD / 32 > 0 ? BENCH_EMBD / 32 : 1 ))}"
  declare -A runs=(); fpt=0
  for _ in $(seq "$ROUNDS"); do
    line=$("$worker" bench-train | grep '^cegraph ')
    runs[cegraph]+="$(echo "$line" | field tokens_per_s) "; fpt=$(echo "$line" | field mfu_flops_per_token)
    for mode in $MODES; do
      runs[$mode]+="$("$py" scripts/bench_train.py --mode "$mode" | field tokens_per_s) "
    done
  done
  c=$(printf '%s\n' ${runs[cegraph]} | median)
  echo "size ${size} (${BENCH_HEADS} heads), $(printf '%.3g' "$fpt") FLOPs/token (6N + attention + the unembedding's 6·d·V)"
  printf '  %-14s %12s %8s %7s   %s\n' runner tokens/s "cg/this" mfu runs
  for r in cegraph $MODES; do
    m=$(printf '%s\n' ${runs[$r]} | median)
    awk -v r="$r" -v m="$m" -v c="$c" -v f="$fpt" -v k="$peak" -v all="${runs[$r]}" 'BEGIN {
      printf "  %-14s %12.0f %7.3fx %6.1f%%   %s\n", r, m, c/m, 100*m*f/(k*1e9), all }'
  done
  unset runs
done
