#!/usr/bin/env bash
# A fake Slurm for hermetic tests of `--executor slurm`: sbatch, squeue, sacct, scancel and
# sinfo in one script (called through links of those names). State lives in $FAKE_SLURM_DIR.
# Tasks run synchronously inside sbatch, or with FAKE_DEFER=N inside the Nth squeue call after
# their submission. Other set-ups are simulated with these variables:
#   FAKE_SBATCH_STDOUT_BEFORE  lines sbatch prints on stdout before the job id
#   FAKE_SBATCH_STDERR         what sbatch prints on stderr when it succeeds
#   FAKE_SBATCH_FAIL           sbatch prints this on stderr and exits 1 (after FAKE_SBATCH_FAIL_AFTER successes)
#   FAKE_SBATCH_CLUSTER        sbatch prints `id;cluster`; squeue lists those jobs only with -M/--clusters
#   FAKE_KILL_STAGE=stage:STATE  that stage's tasks never run: Slurm kills them (log line as slurmstepd writes it)
#   FAKE_OOM_STAGE             that stage's tasks run, then the job is marked OUT_OF_MEMORY
#   FAKE_REQUEUE_STAGE         that stage's tasks fail once, are requeued (touching $FAKE_SLURM_DIR/go) and rerun 2 polls later
#   FAKE_HIDE_RESULTS=N        results written by a task stay invisible for N squeue calls (NFS lag)
#   FAKE_HIDE_SECONDS=S        results written by a task stay invisible for S seconds (NFS lag)
#   FAKE_PENDING_REASON=R      submitted tasks pend with reason R (a hold, DependencyNeverSatisfied)
#   FAKE_FORGET=1              squeue lists no ended job (MinJobAge very short)
#   FAKE_SQUEUE_FAIL=A-B|all   squeue calls A..B fail as while slurmctld restarts
#   FAKE_OLD_SLURM=1           squeue rejects --me (Slurm before 20.11)
#   FAKE_SCANCEL_ENDED=1       scancel says the jobs already completed and exits 1
set -u
d="${FAKE_SLURM_DIR:?}"
mkdir -p "$d/tasks" "$d/hidden"
prog="$(basename "$0")"
echo "$prog $*" >>"$d/calls.log"

counter() { # name → incremented value
    local n=0
    [ -f "$d/$1" ] && n="$(cat "$d/$1")"
    n=$((n + 1))
    echo "$n" >"$d/$1"
    echo "$n"
}
value() { [ -f "$d/$1" ] && cat "$d/$1" || echo 0; }

set_task() { # file key value
    local f="$1" k="$2" v="$3"
    grep -v "^$k=" "$f" >"$f.tmp" || true
    printf '%s=%q\n' "$k" "$v" >>"$f.tmp"
    mv "$f.tmp" "$f"
}

killed_line() { # id state
    case "$2" in
    TIMEOUT) echo "slurmstepd: error: *** JOB $1 ON fake CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***" ;;
    PREEMPTED) echo "slurmstepd: error: *** JOB $1 ON fake CANCELLED AT 2026-01-01T00:00:00 DUE TO PREEMPTION ***" ;;
    NODE_FAIL) echo "slurmstepd: error: *** JOB $1 ON fake CANCELLED AT 2026-01-01T00:00:00 DUE TO NODE FAILURE ***" ;;
    OUT_OF_MEMORY) echo "slurmstepd: error: Detected 1 oom_kill event in StepId=$1.batch. Some of the step tasks have been OOM Killed." ;;
    *) echo "slurmstepd: error: *** JOB $1 ON fake CANCELLED AT 2026-01-01T00:00:00 ***" ;;
    esac
}

run_task() { # task file
    local f="$1" state deps dep_state cache marker rc
    # shellcheck disable=SC1090
    source "$f"
    for dep in $deps; do
        dep_state="$(sed -n 's/^state=//p' "$d/tasks/$dep")"
        case "$dep_state" in
        COMPLETED) ;;
        PENDING | RUNNING) return ;;
        *)
            set_task "$f" state CANCELLED
            set_task "$f" reason DependencyNeverSatisfied
            return
            ;;
        esac
    done
    if [ -n "${FAKE_KILL_STAGE:-}" ] && [ "${name##*:}" = "${FAKE_KILL_STAGE%%:*}" ]; then
        state="${FAKE_KILL_STAGE#*:}"
        killed_line "$tid" "$state" >>"$log"
        set_task "$f" state "$state"
        return
    fi
    cache="$(sed -n "s/.* exec-node --cache '\([^']*\)'.*/\1/p" "$script")"
    marker="$d/marker.$$"
    touch "$marker"
    sleep 0.01
    (cd "$chdir" && SLURM_ARRAY_TASK_ID="$k" SLURM_JOB_ID="$tid" sh "$script") >>"$log" 2>&1
    rc=$?
    if [ -n "${FAKE_HIDE_RESULTS:-}" ]; then
        find "$cache/jobs/results" -type f -newer "$marker" 2>/dev/null | while read -r r; do
            n="$(ls "$d/hidden" | wc -l)"
            mv "$r" "$d/hidden/$n"
            echo "$r" >"$d/hidden/$n.path"
            echo $(($(value squeue_calls) + FAKE_HIDE_RESULTS)) >"$d/hidden/$n.at"
        done
    fi
    if [ -n "${FAKE_HIDE_SECONDS:-}" ]; then
        find "$cache/jobs/results" -type f -newer "$marker" 2>/dev/null | while read -r r; do
            mv "$r" "$r.hidden"
            (sleep "$FAKE_HIDE_SECONDS"; mv "$r.hidden" "$r") </dev/null >/dev/null 2>&1 &
        done
    fi
    rm -f "$marker"
    if [ -n "${FAKE_REQUEUE_STAGE:-}" ] && [ "${name##*:}" = "$FAKE_REQUEUE_STAGE" ] && [ ! -e "$d/go" ]; then
        touch "$d/go"
        set_task "$f" state PENDING
        set_task "$f" reason BeginTime
        set_task "$f" run_at $(($(value squeue_calls) + 2))
        return
    fi
    if [ -n "${FAKE_OOM_STAGE:-}" ] && [ "${name##*:}" = "$FAKE_OOM_STAGE" ]; then
        killed_line "$tid" OUT_OF_MEMORY >>"$log"
        set_task "$f" state OUT_OF_MEMORY
        set_task "$f" reason OutOfMemory
        return
    fi
    if [ "$rc" = 0 ]; then
        set_task "$f" state COMPLETED
        set_task "$f" reason None
    else
        set_task "$f" state FAILED
        set_task "$f" reason NonZeroExitCode
    fi
}

run_due() {
    local now f run_at state
    now="$(value squeue_calls)"
    for f in $(ls "$d/tasks" | sort -t_ -k1,1n -k2,2n); do
        f="$d/tasks/$f"
        state="$(sed -n 's/^state=//p' "$f")"
        run_at="$(sed -n 's/^run_at=//p' "$f")"
        if [ "$state" = PENDING ] && [ "$run_at" -le "$now" ]; then
            run_task "$f"
        fi
    done
    for at in "$d"/hidden/*.at; do
        [ -e "$at" ] || continue
        n="${at%.at}"
        if [ "$(cat "$at")" -le "$now" ]; then
            mv "$n" "$(cat "$n.path")"
            rm -f "$at" "$n.path"
        fi
    done
}

sbatch_main() {
    local name="" array="0-0" output="" chdir="$PWD" deps="" script="" a
    for a in "$@"; do
        case "$a" in
        --job-name=*) name="${a#*=}" ;;
        --array=*) array="${a#*=}" ;;
        --output=*) output="${a#*=}" ;;
        --chdir=*) chdir="${a#*=}" ;;
        --dependency=afterok:*) deps="$(echo "${a#*afterok:}" | tr ':' ' ')" ;;
        -*) ;;
        *) script="$a" ;;
        esac
    done
    if [ -n "${FAKE_SBATCH_FAIL:-}" ] && [ "$(value next_id)" -ge "${FAKE_SBATCH_FAIL_AFTER:-0}" ]; then
        printf '%s\n' "$FAKE_SBATCH_FAIL" >&2
        exit 1
    fi
    local id last k f log run_at
    id="$(counter next_id)"
    id=$((id + 100))
    last="${array#0-}"
    run_at=0
    [ -n "${FAKE_DEFER:-}" ] && run_at=$(($(value squeue_calls) + FAKE_DEFER))
    for k in $(seq 0 "$last"); do
        log="${output//%A/$id}"
        log="${log//%a/$k}"
        log="${log//%%/%}"
        f="$d/tasks/${id}_$k"
        {
            printf 'tid=%q\nk=%q\nname=%q\nscript=%q\nchdir=%q\nlog=%q\ndeps=%q\n' \
                "${id}_$k" "$k" "$name" "$script" "$chdir" "$log" "$deps"
            printf 'state=PENDING\nreason=%q\nrun_at=%s\ncluster=%q\n' "${FAKE_PENDING_REASON:-None}" "$run_at" "${FAKE_SBATCH_CLUSTER:-}"
        } >"$f"
    done
    if [ -z "${FAKE_DEFER:-}" ]; then
        for k in $(seq 0 "$last"); do run_task "$d/tasks/${id}_$k"; done
    fi
    [ -n "${FAKE_SBATCH_STDOUT_BEFORE:-}" ] && printf '%s\n' "$FAKE_SBATCH_STDOUT_BEFORE"
    [ -n "${FAKE_SBATCH_STDERR:-}" ] && printf '%s\n' "$FAKE_SBATCH_STDERR" >&2
    if [ -n "${FAKE_SBATCH_CLUSTER:-}" ]; then
        echo "$id;$FAKE_SBATCH_CLUSTER"
    else
        echo "$id"
    fi
}

squeue_main() {
    local n clusters="" a prev="" f
    for a in "$@"; do
        [ "$a" = --me ] && [ -n "${FAKE_OLD_SLURM:-}" ] && {
            echo "squeue: unrecognized option '--me'" >&2
            echo "Try \"squeue --help\" for more information" >&2
            exit 1
        }
        case "$a" in
        --clusters=*) clusters="${a#*=}" ;;
        -M?*) clusters="${a#-M}" ;;
        esac
        case "$prev" in -M | --clusters) clusters="$a" ;; esac
        prev="$a"
    done
    n="$(counter squeue_calls)"
    case "${FAKE_SQUEUE_FAIL:-}" in
    all) fail=1 ;;
    *-*) [ "$n" -ge "${FAKE_SQUEUE_FAIL%-*}" ] && [ "$n" -le "${FAKE_SQUEUE_FAIL#*-}" ] && fail=1 ;;
    esac
    if [ -n "${fail:-}" ]; then
        echo "slurm_load_jobs error: Socket timed out on send/recv operation" >&2
        exit 1
    fi
    run_due
    [ -n "$clusters" ] && echo "CLUSTER: $clusters"
    for f in "$d"/tasks/*; do
        [ -e "$f" ] || continue
        (
            # shellcheck disable=SC1090
            source "$f"
            [ -n "$cluster" ] && [ "$cluster" != "$clusters" ] && exit 0
            case "$state" in
            PENDING | RUNNING) ;;
            *) [ -n "${FAKE_FORGET:-}" ] && exit 0 ;;
            esac
            echo "$tid|$name|$state|$reason|fake"
        )
    done
}

scancel_main() {
    local a
    if [ -n "${FAKE_SCANCEL_ENDED:-}" ]; then
        for a in "$@"; do
            case "$a" in -*) ;; *) echo "scancel: error: Kill job error on job id $a: Job/step already completing or completed" >&2 ;; esac
        done
        exit 1
    fi
    for a in "$@"; do
        [ -f "$d/tasks/$a" ] && set_task "$d/tasks/$a" state CANCELLED
    done
}

case "$prog" in
sbatch) sbatch_main "$@" ;;
squeue) squeue_main "$@" ;;
scancel) scancel_main "$@" ;;
sinfo) hostname ;;
sacct)
    echo "Slurm accounting storage is disabled"
    exit 1
    ;;
*)
    echo "fake_slurm: unknown program $prog" >&2
    exit 2
    ;;
esac
