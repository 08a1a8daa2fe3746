#!/usr/bin/env bash
# Run every test: the engine, the libtorch stages and the CLI end to end.
#
# The remote-cache tests need an S3 endpoint and the Slurm tests a cluster: unless the caller
# already provides them (CEGRAPH_TEST_S3_ENDPOINT, SLURM_CONF, as .ci/run does), this starts a
# local moto server and a one-node Slurm cluster itself where it can (Slurm needs root and apt),
# stops what it started on exit, and says what it skipped and why.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Binaries carry an rpath to libtorch; the library's own unit-test harness may not.
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

started=()
cleanup() {
    for s in "${started[@]}"; do bash "scripts/$s.sh" stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

if [ -z "${CEGRAPH_TEST_S3_ENDPOINT:-}" ]; then
    if env_lines="$(bash scripts/moto.sh start 2>/tmp/cegraph-moto-start.log)"; then
        eval "$env_lines"
        started+=(moto)
    else
        echo "SKIPPED: S3 remote-cache tests: could not start moto ($(tail -1 /tmp/cegraph-moto-start.log))" >&2
    fi
fi
if [ -z "${SLURM_CONF:-}" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIPPED: Slurm executor tests: starting a local cluster needs root (run scripts/slurm.sh start as root, then export SLURM_CONF)" >&2
    elif env_lines="$(bash scripts/slurm.sh start 2>/tmp/cegraph-slurm-start.log)"; then
        eval "$env_lines"
        started+=(slurm)
    else
        echo "SKIPPED: Slurm executor tests: could not start a local cluster ($(tail -1 /tmp/cegraph-slurm-start.log))" >&2
    fi
fi

cargo test --all-targets "$@"
