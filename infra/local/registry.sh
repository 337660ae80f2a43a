#!/usr/bin/env bash
# Starts (or stops) a local CNCF distribution registry on plain HTTP.
#   infra/local/registry.sh start [ADDR] [DIR]   default 127.0.0.1:5000, ./.crtask-registry
#   infra/local/registry.sh stop  [DIR]
# Extra notification endpoints can be given as REGISTRY_NOTIFY_URL (and
# REGISTRY_NOTIFY_TOKEN for its bearer token).
set -euo pipefail
cmd=${1:-start}
case "$cmd" in
  start)
    addr=${2:-127.0.0.1:5000}
    dir=$(realpath -m "${3:-.crtask-registry}")
    mkdir -p "$dir/data"
    if curl -fsS "http://$addr/v2/" >/dev/null 2>&1; then
      echo "registry: already answering on $addr"
      exit 0
    fi
    {
      echo "version: 0.1"
      echo "log: {level: warn}"
      echo "storage:"
      echo "  filesystem: {rootdirectory: \"$dir/data\"}"
      echo "  delete: {enabled: true}"
      echo "http: {addr: \"$addr\"}"
      if [ -n "${REGISTRY_NOTIFY_URL:-}" ]; then
        echo "notifications:"
        echo "  endpoints:"
        echo "    - name: crtask"
        echo "      url: \"$REGISTRY_NOTIFY_URL\""
        if [ -n "${REGISTRY_NOTIFY_TOKEN:-}" ]; then
          echo "      headers: {Authorization: [\"Bearer $REGISTRY_NOTIFY_TOKEN\"]}"
        fi
        echo "      timeout: 2s"
        echo "      threshold: 5"
        echo "      backoff: 1s"
      fi
    } > "$dir/config.yml"
    nohup docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 &
    echo $! > "$dir/registry.pid"
    for _ in $(seq 1 100); do
      if curl -fsS "http://$addr/v2/" >/dev/null 2>&1; then
        echo "registry: listening on $addr (data in $dir)"
        exit 0
      fi
      sleep 0.1
    done
    echo "registry: did not start; see $dir/registry.log" >&2
    cat "$dir/registry.log" >&2 || true
    exit 1
    ;;
  stop)
    dir=$(realpath -m "${2:-.crtask-registry}")
    if [ -f "$dir/registry.pid" ]; then
      kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
      rm -f "$dir/registry.pid"
      echo "registry: stopped"
    fi
    ;;
  *)
    echo "usage: $0 start [ADDR] [DIR] | stop [DIR]" >&2
    exit 2
    ;;
esac
