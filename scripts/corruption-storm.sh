#!/usr/bin/env bash
# Reliability at scale: damages objects of a real pipeline cache (random single-byte flips,
# truncations and appends) and checks that `cegraph verify` names the damaged object every
# time and that no `run` or `checkout` ever writes a mismatching byte into the workspace
# (every output's blake3 is checked after each step). Then measures restore throughput
# (copy + check) of a large output, and runs a disk-full step on a small tmpfs cache when
# `mount -t tmpfs` is permitted (skipped visibly otherwise).
#
#   scripts/corruption-storm.sh [ROUNDS=50] [BIG_MB=200] [SEED]
#   PROFILE=dev scripts/corruption-storm.sh   # reuse the debug build (dependencies are
#                                             # optimised in it: copy and blake3 run at speed)
#
# The pipeline is cmd stages only: the libtorch smoke pipeline takes minutes per round on a
# small machine, and what is checked (objects, manifests, restore paths) is the same.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
dir=$([[ "$profile" == dev ]] && echo debug || echo "$profile")
cargo build -p cegraph --profile "$profile" --quiet --bin cegraph --example corruption_storm
exec "$target/$dir/examples/corruption_storm" "$target/$dir/cegraph" "$@"
