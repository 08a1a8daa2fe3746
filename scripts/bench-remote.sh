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
# Public so that this script can delete a benchmark's objects with plain curl between runs.
curl -fsS -X PUT -H 'x-amz-acl: public-read-write' "$endpoint/$bucket" >/dev/null
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
reps=3
ckpt_hash=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"]["checkpoint"]["outs"][0]["hash"])' "$origin/cegraph.lock")
sync # the run's writes must not be flushed during the timings

# The checkpoint, $reps times, each to a new prefix and into an empty cache: the median counts.
use_prefix() { sed -i "s#s3://$bucket/[a-z0-9-]*#s3://$bucket/$1#" "$origin/cegraph.yaml" "$clone/cegraph.yaml"; }
push_big=()
pull_big=()
for r in $(seq $reps); do
    use_prefix "ckpt-$r"
    push_big+=("$(timed "$origin" push cegraph.yaml checkpoint)")
    pull_big+=("$(CEGRAPH_CACHE="$work/cache-$r" timed "$clone" pull cegraph.yaml checkpoint)")
    rm -rf "$work/cache-$r"
    # moto holds objects in memory and slows down as they pile up: keep one copy at a time.
    curl -fsS -X DELETE "$endpoint/$bucket/ckpt-$r/objects/${ckpt_hash:0:2}/${ckpt_hash:2}" >/dev/null
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
t_push_big=$(median "${push_big[@]}")
t_pull_big=$(median "${pull_big[@]}")

# The small objects once (about a minute each way against moto), then the whole clone.
use_prefix main
t_push_small=$(timed "$origin" push cegraph.yaml shards)
timed "$origin" push cegraph.yaml checkpoint >/dev/null
t_pull_small=$(timed "$clone" pull cegraph.yaml shards)
timed "$clone" pull cegraph.yaml checkpoint >/dev/null
t_checkout=$(timed "$clone" checkout)
t_verify=$(timed "$clone" verify --remote bench)
cmp "$origin/out/model.ckpt" "$clone/out/model.ckpt"
diff -r "$origin/out/shards" "$clone/out/shards"
(cd "$clone" && "$bin" verify >/dev/null)

# What the endpoint itself sustains: HEAD requests from a plain Python client, 32 threads.
ceiling=$(python3 - "$endpoint/$bucket/main/runs" <<'PY'
import concurrent.futures as cf, sys, time, urllib.error, urllib.request
def head(_):
    try:
        urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=10)
    except urllib.error.HTTPError:
        pass  # an answer is an answer
n, t = 1000, time.time()
with cf.ThreadPoolExecutor(32) as ex:
    list(ex.map(head, range(n)))
print(round(n / (time.time() - t)))
PY
)

# The same 1 GiB through boto3 (moto's venv has it), same part size and parallelism, for scale.
baseline=""
venv_python="${XDG_CACHE_HOME:-$HOME/.cache}/cegraph/moto-venv/bin/python"
if [[ -x "$venv_python" ]] && "$venv_python" -c 'import boto3' 2>/dev/null; then
    baseline=$("$venv_python" - "$endpoint" "$bucket" "$origin/out/model.ckpt" "$work/boto.down" <<'PY'
import sys, time, boto3
from boto3.s3.transfer import TransferConfig
endpoint, bucket, src, dst = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
cfg = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4)
t = time.time(); s3.upload_file(src, bucket, "boto3-baseline", Config=cfg); up = time.time() - t
t = time.time(); s3.download_file(bucket, "boto3-baseline", dst, Config=cfg); down = time.time() - t
s3.delete_object(Bucket=bucket, Key="boto3-baseline")
print(f"boto3 on the same endpoint: 1 GiB upload {2**30 / 1e6 / up:.1f} MB/s, download {2**30 / 1e6 / down:.1f} MB/s")
PY
)
    rm -f "$work/boto.down"
fi

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo
echo "cegraph push/pull to moto at $endpoint (release build; $(nproc) cores, $cpu)"
echo "1 GiB rows: median of $reps (push: ${push_big[*]} s; pull: ${pull_big[*]} s)"
echo "the endpoint alone answers about $ceiling requests/s (plain Python client, 32 threads)"
if [[ -n "$baseline" ]]; then echo "$baseline"; fi
printf '%-34s %8s %12s %12s\n' "transfer" "seconds" "MB/s" "objects/s"
printf '%-34s %8.2f %12s %12s\n' "push 1 GiB checkpoint" "$t_push_big" "$(mbps $ckpt_bytes "$t_push_big")" "-"
printf '%-34s %8.2f %12s %12s\n' "pull 1 GiB checkpoint" "$t_pull_big" "$(mbps $ckpt_bytes "$t_pull_big")" "-"
printf '%-34s %8.2f %12s %12s\n' "push $small small objects (4 KiB)" "$t_push_small" "$(mbps $small_bytes "$t_push_small")" "$(per_s $small_objects "$t_push_small")"
printf '%-34s %8.2f %12s %12s\n' "pull $small small objects (4 KiB)" "$t_pull_small" "$(mbps $small_bytes "$t_pull_small")" "$(per_s $small_objects "$t_pull_small")"
printf '%-34s %8.2f\n' "checkout (all outputs)" "$t_checkout"
printf '%-34s %8.2f\n' "verify --remote (every object)" "$t_verify"
echo "the clone's workspace is identical to the origin's and \`cegraph verify\` passes"
