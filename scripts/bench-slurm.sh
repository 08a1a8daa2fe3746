#!/usr/bin/env bash
# Submission time and polling load of `cegraph run --executor slurm` on the local one-node
# cluster (scripts/slurm.sh), for an N-node matrix stage plus one node downstream, against
# the plain alternative a user would script: one `sbatch` per node.
#   eval "$(bash scripts/slurm.sh start)"; bash scripts/bench-slurm.sh [N=100] [release|debug]
set -euo pipefail
n="${1:-100}"
profile="${2:-release}"
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "$profile" = release ] && cargo build -q --release -p cegraph --manifest-path "$root/Cargo.toml"
bin="$root/target/$profile/cegraph"
sinfo -h >/dev/null || { echo "no Slurm cluster: eval \"\$(bash scripts/slurm.sh start)\"" >&2; exit 1; }
ws="$(mktemp -d)"
trap 'scancel --me --name=bench-plain 2>/dev/null || true; "$bin" cancel "$ws/cegraph.yaml" >/dev/null 2>&1 || true; rm -rf "$ws"' EXIT
touch "$ws/cegraph.toml"
cat >"$ws/cegraph.yaml" <<YAML
stages:
  work:
    matrix: {i: [$(seq -s, 1 "$n")]}
    cmd: echo \${matrix.i} > \${outs[0]}
    outs: ["out/\${matrix.i}.txt"]
  total:
    deps: [work]
    cmd: cat out/*.txt | wc -l > \${outs[0]}
    outs: [out/total.txt]
YAML
cd "$ws"
ms() { date +%s%N | cut -c1-13; }

t0=$(ms)
"$bin" run --executor slurm -q >submit.log
t1=$(ms)
echo "cegraph: submitted $((n + 1)) nodes in $((t1 - t0)) ms ($(grep -o '[0-9]* sbatch call(s)' submit.log))"
t2=$(ms)
"$bin" run --executor slurm --wait --poll-max 10 -q >wait.log
t3=$(ms)
echo "cegraph: all $((n + 1)) jobs done $((t3 - t0)) ms after submission began; $(grep -o 'waited.*' wait.log)"
t4=$(ms)
"$bin" run --executor slurm -q >again.log
t5=$(ms)
echo "cegraph: a second run with everything done: $((t5 - t4)) ms ($(head -n1 again.log))"

# The plain way: one sbatch per node, the last one waiting for all the others.
printf '#!/bin/sh\necho "$1" > "out/plain-$1.txt"\n' >plain.sh
t6=$(ms)
ids=()
for i in $(seq 1 "$n"); do
    ids+=("$(sbatch --parsable -J bench-plain -o /dev/null plain.sh "$i")")
done
sbatch --parsable -J bench-plain -o /dev/null --dependency="afterok:$(IFS=:; echo "${ids[*]}")" --wrap 'true' >/dev/null
t7=$(ms)
echo "plain:   submitted $((n + 1)) jobs with $((n + 1)) sbatch calls in $((t7 - t6)) ms"
echo "ratio:   cegraph submission / plain submission = $(python3 -c "print(f'{($t1-$t0)/($t7-$t6):.3f}')")"
