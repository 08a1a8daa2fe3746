#!/usr/bin/env bash
# A second, independent local S3 endpoint (s3rver, Node) for the remote-cache tests, next to
# scripts/moto.sh, so the S3 code is not only ever tested against one server's quirks.
#
#   scripts/s3-alt.sh start [PORT]   start s3rver on 127.0.0.1:PORT (default 5056) in the
#                                    background; prints the `export` line the S3 tests read
#   scripts/s3-alt.sh stop           stop the server this script started (by its pid file)
#
# s3rver lives in ~/.cache/cegraph/s3rver (npm install, on first use, reused); its data in a
# fresh temporary directory per start. The tests sign with the key pair testing/testing, which
# the launcher registers next to s3rver's built-in S3RVER/S3RVER.
set -euo pipefail
state="${CEGRAPH_S3ALT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cegraph}"
home="$state/s3rver"
pidfile="$state/s3rver.pid"
logfile="$state/s3rver.log"
mkdir -p "$home"

start() {
    local port="${1:-5056}"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "s3rver already running (pid $(cat "$pidfile"))" >&2
    else
        if [[ ! -d "$home/node_modules/s3rver" ]]; then
            echo "installing s3rver into $home …" >&2
            (cd "$home" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
                npm install --silent --no-audit --no-fund 's3rver@3')
        fi
        cat >"$home/launch.js" <<'JS'
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');
DUMMY_ACCOUNT.createKeyPair('testing', 'testing');
const [port, dir] = process.argv.slice(2);
new S3rver({ address: '127.0.0.1', port: Number(port), directory: dir, silent: false })
  .run()
  .then(() => console.log(`s3rver listening on ${port}`))
  .catch((e) => { console.error(e); process.exit(1); });
JS
        local data
        data="$(mktemp -d "${TMPDIR:-/tmp}/cegraph-s3rver.XXXXXX")"
        # s3rver makes ListObjectsV2 continuation tokens with a cipher that OpenSSL 3 (Node >= 17)
        # keeps in its legacy provider: without it, every truncated listing is a 500.
        (cd "$home" && exec node --openssl-legacy-provider launch.js "$port" "$data") >"$logfile" 2>&1 &
        echo $! >"$pidfile"
        echo "$port" >"$state/s3rver.port"
        echo "$data" >"$state/s3rver.data"
    fi
    port="$(cat "$state/s3rver.port")"
    for _ in $(seq 100); do
        if grep -q "listening on" "$logfile" 2>/dev/null; then
            echo "export CEGRAPH_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
            return 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "s3rver exited; see $logfile:" >&2
            tail -n 20 "$logfile" >&2
            rm -f "$pidfile"
            return 1
        fi
        sleep 0.2
    done
    echo "s3rver did not answer on port $port within 20 s; see $logfile" >&2
    return 1
}

stop() {
    if [[ -f "$pidfile" ]]; then
        local pid
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$pidfile"
        [[ -f "$state/s3rver.data" ]] && rm -rf "$(cat "$state/s3rver.data")" "$state/s3rver.data"
    fi
}

case "${1:-}" in
    start) start "${2:-}" ;;
    stop) stop ;;
    *)
        echo "usage: $0 start [PORT] | stop" >&2
        exit 2
        ;;
esac
