#!/usr/bin/env bash
# Time `cegraph exp show` over N experiments × M nodes (warm cache), and `metrics diff`
# between two of them. Usage: scripts/bench_exp_show.sh [BIN] [N] [M]
set -euo pipefail
BIN=${1:-target/release/cegraph}
BIN=$(realpath "$BIN")
N=${2:-1000}
M=${3:-50}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
touch cegraph.toml
python3 - "$N" "$M" <<'PY'
import json, os, sys
n, m = int(sys.argv[1]), int(sys.argv[2])
with open("cegraph.yaml", "w") as f:
    f.write("stages:\n  t:\n    matrix:\n      i: [%s]\n" % ", ".join(str(i) for i in range(m)))
    f.write("    cmd: echo ${params.lr} > \"${outs[0]}\"\n    params: {lr: 0.1, layers: 4}\n")
    f.write("    outs: [\"${out_dir}/m.json\"]\n")
os.makedirs("cache/experiments")
for e in range(n):
    nodes = {
        f"t[i={i}]": {
            "key": f"{(e * m + i):064x}",
            "params": {"lr": 0.001 * (e + 1), "layers": 4},
            "metrics": {"loss": 1.0 / (e + i + 1), "acc": (e + i) % 100 / 100},
        }
        for i in range(m)
    }
    exp = {"format": 1, "name": f"exp-{e}", "pipeline": "cegraph.yaml", "created_at": e,
           "overrides": [{"target": "t.lr", "text": str(0.001 * (e + 1))}], "git": None,
           "nodes": nodes}
    with open(f"cache/experiments/exp-{e}.json", "w") as f:
        json.dump(exp, f)
PY
"$BIN" exp show --csv > /dev/null  # warm the page cache and the spec memo
python3 - "$BIN" "$N" "$M" <<'PY'
import subprocess, sys, time
bin_, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for what in (["exp", "show"], ["exp", "show", "--csv"], ["metrics", "diff", "exp-1", "exp-2"]):
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([bin_, *what], check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t)
    print(f"{' '.join(what):28} {n} experiments x {m} nodes: best of 5 {best * 1000:.0f} ms")
PY
