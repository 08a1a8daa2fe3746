#!/usr/bin/env bash
# Kill storm: ROUNDS times, start `cegraph run --force-all -j 4` on a 22-node pipeline whose stages
# sleep and then write (20 small nodes, one 100 MB output, one that gathers), and stop it with
# kill -9 or SIGTERM at a random moment, or with kill -9 while it copies an output into the cache
# (as soon as cache/tmp holds a file). After each kill:
#   - nothing is written after cegraph is gone (stages log a timestamp just before they write
#     their output; outputs' mtimes are checked too), looked at once the stages' sleeps are over;
#   - no process of the pipeline is left after the next cegraph command (`status`): stages carry
#     KILL_STORM=<id> in their environment, and every process holding it counts;
#   - temporary files a killed copy left in cache/tmp are counted (the next run removes them).
# At the end a plain `run` completes, `verify` passes and cache/tmp is empty.
#
#   scripts/kill-storm.sh [ROUNDS]        (CEGRAPH_BIN=path to use a built binary)
#
# Exits 1 if any check failed. Needs GNU date (nanoseconds) and /proc.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-30}"
bin="${CEGRAPH_BIN:-}"
if [[ -z "$bin" ]]; then
    cargo build -p cegraph --quiet
    bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/cegraph"
fi
bin="$(realpath "$bin")"

work="$(mktemp -d "${TMPDIR:-/tmp}/cegraph-storm.XXXXXX")"
id="storm$$"
cleanup() {
    # Whatever happened, leave nothing of ours running.
    for pid in $(storm_pids); do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Processes started by this storm's stages (the variable is inherited by all their children).
storm_pids() {
    local d
    for d in /proc/[0-9]*; do
        if { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qx "KILL_STORM=$id"; then
            echo "${d#/proc/}"
        fi
    done
}

now_ns() { date +%s%N; }

cd "$work"
touch cegraph.toml
cat >cegraph.yaml <<EOF
stages:
  work:
    matrix:
      i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    env:
      KILL_STORM: $id
    cmd: >-
      sleep 0.7 && date +%s%N >> writes.log && echo \${i} > \${outs[0]}
    outs: ["\${out_dir}/n.txt"]
  big:
    env:
      KILL_STORM: $id
    cmd: >-
      sleep 0.3 && date +%s%N >> writes.log && head -c 100000000 /dev/zero > \${outs[0]}
    outs: [out/big.bin]
  gather:
    deps: [work, big]
    env:
      KILL_STORM: $id
    cmd: >-
      sleep 0.5 && date +%s%N >> writes.log && cat \${stages.work.outs} > \${outs[0]}
    outs: [out/all.txt]
EOF

kills9=0
terms=0
in_copy=0
late_writes=0
orphans_after_kill=0
orphans_after_next=0
tmp_leftovers=0
declare -A codes=()
for ((round = 1; round <= rounds; round++)); do
    "$bin" run --force-all -j 4 -q >/dev/null 2>run.err &
    pid=$!
    case $((RANDOM % 3)) in
    0)
        signal=KILL
        kills9=$((kills9 + 1))
        sleep "$((RANDOM % 30 / 10)).$((RANDOM % 10))"
        ;;
    1)
        signal=TERM
        terms=$((terms + 1))
        sleep "$((RANDOM % 30 / 10)).$((RANDOM % 10))"
        ;;
    2)
        signal=KILL
        in_copy=$((in_copy + 1))
        for ((wait_ms = 0; wait_ms < 6000; wait_ms += 5)); do
            if [[ -n "$(ls -A cache/tmp 2>/dev/null)" ]]; then break; fi
            sleep 0.005
        done
        ;;
    esac
    kill -s "$signal" "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" || rc=$?
    gone_at=$(now_ns)
    touch gone-at
    codes["$signal:$rc"]=$((${codes["$signal:$rc"]:-0} + 1))
    alive_now=$(storm_pids | wc -l)
    orphans_after_kill=$((orphans_after_kill + alive_now))
    # Longer than any stage's sleep: a surviving stage would have written by now.
    sleep 1.2
    late=$(awk -v t="$gone_at" '$1 > t' writes.log 2>/dev/null | wc -l)
    late_files=$(find out -type f -newer gone-at 2>/dev/null | wc -l)
    late_writes=$((late_writes + late + late_files))
    left_tmp=$(find cache/tmp -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    tmp_leftovers=$((tmp_leftovers + left_tmp))
    "$bin" status >/dev/null 2>>status.err || true
    survivors=$(storm_pids | wc -l)
    orphans_after_next=$((orphans_after_next + survivors))
    printf 'round %2d: %-4s rc=%-3s stage processes alive at exit=%s after status=%s late writes=%s cache/tmp entries=%s\n' \
        "$round" "$signal" "$rc" "$alive_now" "$survivors" "$((late + late_files))" "$left_tmp"
done

final_rc=0
"$bin" run -j 4 -q >final.out 2>&1 || final_rc=$?
verify_rc=0
"$bin" verify >verify.out 2>&1 || verify_rc=$?
tmp_final=$(find cache/tmp -mindepth 1 -maxdepth 1 | wc -l)
orphans_final=$(storm_pids | wc -l)

echo
echo "kill storm: $rounds rounds ($kills9 kill -9 and $terms SIGTERM at random moments, $in_copy kill -9 during a copy into the cache) on 22 nodes, -j 4"
for k in "${!codes[@]}"; do echo "  exit codes ${k}: ${codes[$k]}"; done
echo "  stage processes still alive when cegraph was gone: $orphans_after_kill (stage children after kill -9; ended by the next command)"
echo "  processes left after the next cegraph command:     $orphans_after_next"
echo "  writes after cegraph was gone:                     $late_writes"
echo "  cache/tmp entries left by kills (before next run): $tmp_leftovers"
echo "  final run exit $final_rc, verify exit $verify_rc, cache/tmp entries $tmp_final, processes $orphans_final"
if ((orphans_after_next + late_writes + final_rc + verify_rc + tmp_final + orphans_final)); then
    echo "FAILED" >&2
    cat final.out verify.out >&2
    exit 1
fi
echo "ok"
