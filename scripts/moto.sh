#!/usr/bin/env bash
# A local S3 endpoint (moto) for the remote-cache tests and benchmarks.
#
#   scripts/moto.sh start [PORT]   start moto_server on 127.0.0.1:PORT (default 5055) in the
#                                  background; prints the `export` lines the S3 tests read
#   scripts/moto.sh stop           stop the server this script started (by its pid file)
#
# moto lives in a throwaway venv (~/.cache/cegraph/moto-venv), created on first use and reused.
set -euo pipefail
state="${CEGRAPH_MOTO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cegraph}"
venv="$state/moto-venv"
pidfile="$state/moto.pid"
logfile="$state/moto.log"
mkdir -p "$state"

start() {
    local port="${1:-5055}"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "moto already running (pid $(cat "$pidfile"))" >&2
    else
        if [[ ! -x "$venv/bin/moto_server" ]]; then
            echo "installing moto[server] into $venv …" >&2
            rm -rf "$venv"
            if python3 -m venv "$venv" 2>/dev/null; then
                "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
            else
                # Debian without python3-venv's ensurepip: a pip-less venv, filled by the system pip.
                python3 -m venv --without-pip "$venv"
                python3 -m pip --python "$venv/bin/python" install --quiet \
                    --disable-pip-version-check 'moto[server]>=5,<6'
            fi
        fi
        "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
        echo $! >"$pidfile"
        echo "$port" >"$state/moto.port"
    fi
    port="$(cat "$state/moto.port")"
    # Wait until it answers (a fresh interpreter takes a few seconds to import moto).
    for _ in $(seq 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null ||
            python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
            echo "export CEGRAPH_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
            return 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "moto_server exited; see $logfile:" >&2
            tail -n 20 "$logfile" >&2
            rm -f "$pidfile"
            return 1
        fi
        sleep 0.2
    done
    echo "moto_server did not answer on port $port within 20 s; see $logfile" >&2
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
