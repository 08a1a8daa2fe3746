#!/usr/bin/env bash
# Build cegraph (release) and run a pipeline: by default pipelines/smoke.yaml, the CEG ladder
# shrunk to about a minute on the built-in grammar corpus (no data needed). The full CPU
# experiment: ./scripts/main.sh pipelines/ladder-cpu.yaml (about 80 minutes on 2 cores).
# Extra arguments go to `cegraph run`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --quiet --bins
pipeline="${1:-pipelines/smoke.yaml}"
[ $# -gt 0 ] && shift
target/release/cegraph run "$pipeline" "$@"
target/release/cegraph verify "$pipeline"
echo "reports: $(ls -d out/report-*/report.html 2>/dev/null | tr '\n' ' ')"
