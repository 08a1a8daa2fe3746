#!/usr/bin/env bash
# Time `cegraph exp show` over N experiments × M nodes (warm cache), `metrics diff` between
# two of them, and `metrics diff`/`params diff` between two git revisions of an N-node
# pipeline (two committed lock files, N run records each). Prints the median of 7 runs.
# Usage: scripts/bench-exp-show.sh [BIN] [N] [M]
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
# Two revisions of an N-node pipeline: every node's key and metrics differ between them.
rev="$dir/revs"
mkdir -p "$rev"
(
cd "$rev"
git init -q
touch cegraph.toml
python3 - "$N" <<'PY'
import json, os, sys
n = int(sys.argv[1])
with open("cegraph.yaml", "w") as f:
    f.write("stages:\n  t:\n    matrix:\n      i: [%s]\n" % ", ".join(str(i) for i in range(n)))
    f.write("    cmd: echo ${params.lr} > \"${outs[0]}\"\n    params: {lr: 0.1, layers: 4}\n")
    f.write("    outs: [\"${out_dir}/m.json\"]\n    metrics: \"${out_dir}/m.json\"\n")
for commit in (0, 1):
    nodes = {}
    for i in range(n):
        key = f"{commit:02x}{i:062x}"
        nodes[f"t[i={i}]"] = {"key": key, "outs": []}
        rec = {"format": 1, "key": key, "node": f"t[i={i}]",
               "inputs": {"action": "cmd", "kind_fingerprint": None, "cmd": "echo",
                          "params": {"lr": 0.1 * (commit + 1), "layers": 4},
                          "env": {}, "deps": {}, "upstream": {}, "outs": []},
               "outputs": [], "metrics": {"loss": 1.0 / (i + 1 + commit), "acc": (i % 100) / 100},
               "started_at": 0.0, "duration_s": 0.1, "host": "bench", "tool_version": "bench"}
        d = os.path.join("cache", "runs", key[:2])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, key[2:] + ".json"), "w") as f:
            json.dump(rec, f, indent=2)
    with open(f"lock{commit}.json", "w") as f:
        json.dump({"version": 1, "nodes": nodes}, f, indent=2)
PY
for c in 0 1; do
  cp "lock$c.json" cegraph.lock
  git add cegraph.yaml cegraph.lock
  git -c user.name=bench -c user.email=b@b commit -qm "rev $c"
done
"$BIN" metrics diff HEAD~1 HEAD --csv > /dev/null
)
python3 - "$BIN" "$N" "$M" "$rev" <<'PY'
import statistics, subprocess, sys, time
bin_, n, m, rev = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def bench(what, cwd, label):
    times = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([bin_, *what], check=True, cwd=cwd, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    print(f"{' '.join(what):32} {label}: median of 7 {statistics.median(times) * 1000:.0f} ms"
          f" (min {min(times) * 1000:.0f})")
for what in (["exp", "show"], ["exp", "show", "--csv"], ["metrics", "diff", "exp-1", "exp-2"]):
    bench(what, None, f"{n} experiments x {m} nodes")
for what in (["metrics", "diff", "HEAD~1", "HEAD"], ["params", "diff", "HEAD~1", "HEAD"]):
    bench(what, rev, f"two revisions of {n} nodes")
PY
