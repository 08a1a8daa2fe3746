#!/usr/bin/env bash
# Transfer rates of `cegraph push` and `pull` to a local S3 endpoint (moto): one 1 GiB
# checkpoint, then 10,000 small objects (4 KiB each), each pushed from one workspace and
# pulled into a fresh clone; then `checkout` and `verify --remote` in the clone.
#
#   scripts/bench-remote.sh [SMALL_COUNT]
#
# Uses $CEGRAPH_TEST_S3_ENDPOINT when set, else starts (and afterwards stops) moto via
# scripts/moto.sh. Needs about 6 GB free for the workspaces, caches and moto's copy.
set -euo pipefail
cd "$(dirname "$0")/.."
small="${1:-10000}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -p cegraph --release --quiet
bin="$target/release/cegraph"

tmp_parent="${TMPDIR:-/tmp}"
free_gb=$(df --output=avail -BG "$tmp_parent" | tail -n 1 | tr -dc 0-9)
if ((free_gb < 8)); then
    echo "only ${free_gb} GB free under $tmp_parent; the benchmark needs about 6 GB (keeping 8 free)" >&2
    exit 1
fi

started_moto=""
work="$(mktemp -d "$tmp_parent/cegraph-bench.XXXXXX")"
cleanup() {
    rm -rf "$work"
    if [[ -n "$started_moto" ]]; then bash scripts/moto.sh stop; fi
}
trap cleanup EXIT
if [[ -z "${CEGRAPH_TEST_S3_ENDPOINT:-}" ]]; then
    eval "$(bash scripts/moto.sh start)"
    started_moto=1
fi
endpoint="$CEGRAPH_TEST_S3_ENDPOINT"
bucket="cegraph-bench-$$"
curl -fsS -X PUT "$endpoint/$bucket" >/dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="$endpoint"
unset CEGRAPH_CACHE

origin="$work/origin"
clone="$work/clone"
mkdir -p "$origin" "$clone"
touch "$origin/cegraph.toml" "$clone/cegraph.toml"
cat >"$origin/cegraph.yaml" <<YAML
remotes:
  bench: s3://$bucket/cache
stages:
  checkpoint:
    cmd: head -c 1073741824 /dev/urandom > \${outs[0]}
    outs: [out/model.ckpt]
  shards:
    params: {n: $small}
    cmd: >-
      python3 -c "import os,sys; d=sys.argv[1]; os.makedirs(d, exist_ok=True);
      [open(f'{d}/{i:05}.bin','wb').write(os.urandom(4096)) for i in range(int(sys.argv[2]))]"
      \${outs[0]} \${params.n}
    outs: [out/shards]
YAML
echo "creating a 1 GiB checkpoint and $small small files…" >&2
(cd "$origin" && "$bin" run -q >/dev/null)
cp "$origin/cegraph.yaml" "$origin/cegraph.lock" "$clone/"

now() { date +%s.%N; }
# Runs a cegraph command in a directory; prints its wall time in seconds.
timed() {
    local dir="$1"
    shift
    local t0 t1
    t0=$(now)
    (cd "$dir" && "$bin" "$@" >"$work/last.out") || {
        cat "$work/last.out" >&2
        return 1
    }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }' 
}
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / 1e6 / s }'; }
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }

ckpt_bytes=1073741824
small_bytes=$((small * 4096))
small_objects=$((small + 1)) # the files and the directory's manifest

t_push_big=$(timed "$origin" push cegraph.yaml checkpoint)
t_pull_big=$(timed "$clone" pull cegraph.yaml checkpoint)
t_push_small=$(timed "$origin" push cegraph.yaml shards)
t_pull_small=$(timed "$clone" pull cegraph.yaml shards)
t_checkout=$(timed "$clone" checkout)
t_verify=$(timed "$clone" verify --remote bench)
cmp "$origin/out/model.ckpt" "$clone/out/model.ckpt"
diff -r "$origin/out/shards" "$clone/out/shards"
(cd "$clone" && "$bin" verify >/dev/null)

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo
echo "cegraph push/pull to moto at $endpoint (release build; $(nproc) cores, $cpu)"
printf '%-34s %8s %12s %12s\n' "transfer" "seconds" "MB/s" "objects/s"
printf '%-34s %8.2f %12s %12s\n' "push 1 GiB checkpoint" "$t_push_big" "$(mbps $ckpt_bytes "$t_push_big")" "-"
printf '%-34s %8.2f %12s %12s\n' "pull 1 GiB checkpoint" "$t_pull_big" "$(mbps $ckpt_bytes "$t_pull_big")" "-"
printf '%-34s %8.2f %12s %12s\n' "push $small small objects (4 KiB)" "$t_push_small" "$(mbps $small_bytes "$t_push_small")" "$(per_s $small_objects "$t_push_small")"
printf '%-34s %8.2f %12s %12s\n' "pull $small small objects (4 KiB)" "$t_pull_small" "$(mbps $small_bytes "$t_pull_small")" "$(per_s $small_objects "$t_pull_small")"
printf '%-34s %8.2f\n' "checkout (all outputs)" "$t_checkout"
printf '%-34s %8.2f\n' "verify --remote (every object)" "$t_verify"
echo "the clone's workspace is identical to the origin's and \`cegraph verify\` passes"
