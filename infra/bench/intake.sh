#!/usr/bin/env bash
# Benchmark: signed GitHub push intake. `crtask serve` (POST /webhooks/git:
# HMAC-SHA256 check, parse, decide, one durable SQLite record per delivery,
# answered after the commit) against adnanh/webhook (an HMAC-SHA256 rule on
# X-Hub-Signature-256 executing /bin/true), same load client (wrk), same
# body, same connections, interleaved in the same run. Every request carries
# a distinct X-GitHub-Delivery id, so crtask records distinct deliveries.
# Prints req/s, p50/p99 latency, errors and peak RSS for each side.
#   infra/bench/intake.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (default 10 64 2)
# CRTASK_BIN=path uses that binary instead of building the release one.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
secs=${1:-10}; conns=${2:-64}; rounds=${3:-2}
need() { command -v "$1" >/dev/null 2>&1 || { apt-get install -y -qq "$2" >/dev/null; }; }
need webhook webhook
need wrk wrk
need sqlite3 sqlite3
if [ -n "${CRTASK_BIN:-}" ]; then
  bin=$CRTASK_BIN
else
  cargo build --quiet --release -p crtask
  bin="${CARGO_TARGET_DIR:-$root/target}/release/crtask"
fi

work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
secret="bench-secret-$RANDOM$RANDOM"
printf '%s' "$secret" > "$work/secret"

# One GitHub push for a repository no task tracks: crtask verifies, parses,
# reads the tasks, decides ("no task tracks ...") and records the event.
python3 - "$work" "$secret" <<'PY'
import hashlib, hmac, json, sys
work, secret = sys.argv[1], sys.argv[2]
sha = "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f"
commit = {"id": sha, "message": "bench", "added": [], "removed": [], "modified": ["README.md"]}
body = json.dumps({
    "ref": "refs/heads/main", "before": "0" * 40, "after": sha,
    "created": False, "deleted": False, "forced": False,
    "commits": [commit], "head_commit": commit,
    "repository": {"full_name": "bench/app", "clone_url": "https://github.com/bench/app.git",
                   "html_url": "https://github.com/bench/app", "default_branch": "main"},
    "pusher": {"name": "bench"},
}).encode()
open(f"{work}/body.json", "wb").write(body)
sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
open(f"{work}/signature", "w").write(sig)
hooks = [{
    "id": "push", "execute-command": "/bin/true",
    "trigger-rule-mismatch-http-response-code": 401,
    "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": secret,
                               "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}},
}]
json.dump(hooks, open(f"{work}/hooks.json", "w"))
PY

# The body is signed once (the signature covers the body only); each request
# gets its own delivery id. Non-2xx answers count as errors.
cat > "$work/load.lua" <<'LUA'
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["X-Hub-Signature-256"] = os.getenv("BENCH_SIGNATURE")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = os.getenv("BENCH_RUN") .. "-" .. tostring(tid) .. "-" .. n
  return wrk.format()
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("%.0f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout, summary.requests))
end
LUA

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }
peak_rss() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
threads=$(( $(nproc) < 2 ? 1 : 2 ))

load() { # NAME URL RUN-ID
  BENCH_BODY="$work/body.json" BENCH_SIGNATURE="$(cat "$work/signature")" BENCH_RUN="$3" \
    wrk -t "$threads" -c "$conns" -d "${secs}s" --timeout 10s -s "$work/load.lua" "$2" | tail -n 1
}
report() { # NAME RESULT RSS
  read -r rps p50 p99 errors requests <<<"$2"
  printf '%-8s %9s req/s   p50 %7s ms   p99 %7s ms   errors %5s / %7s   peak RSS %6s MiB\n' \
    "$1" "$rps" "$p50" "$p99" "$errors" "$requests" "$3"
}

echo "intake: ${secs}s x ${rounds} rounds per side, ${conns} connections, wrk -t ${threads}, $(nproc) cores"
run_webhook() { # ROUND
  p=$(port)
  webhook -hooks "$work/hooks.json" -ip 127.0.0.1 -port "$p" >"$work/webhook.log" 2>&1 &
  pid=$!
  wait_up "http://127.0.0.1:$p/"
  res=$(load webhook "http://127.0.0.1:$p/hooks/push" "w$1")
  report webhook "$res" "$(peak_rss "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
run_crtask() { # ROUND
  p=$(port)
  data="$work/crtask-$1"
  "$bin" serve --listen "127.0.0.1:$p" --data-dir "$data" \
    --git-webhook-secret-file "$work/secret" 2>"$work/crtask.log" &
  pid=$!
  wait_up "http://127.0.0.1:$p/healthz"
  res=$(load crtask "http://127.0.0.1:$p/webhooks/git" "c$1")
  report crtask "$res" "$(peak_rss "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  # Every acknowledged delivery is a durable row of its own.
  read -r rows distinct <<<"$(sqlite3 -separator ' ' "$data/crtask.db" \
    "SELECT count(*), count(DISTINCT delivery) FROM events WHERE source = 'git'")"
  echo "         crtask recorded $rows git events, $distinct distinct delivery ids"
}

# Odd rounds run webhook first, even rounds crtask first (the machine's
# load drifts; alternating keeps the order from favouring one side).
for r in $(seq 1 "$rounds"); do
  echo "round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ $((r % 2)) -eq 1 ]; then
    run_webhook "$r"; run_crtask "$r"
  else
    run_crtask "$r"; run_webhook "$r"
  fi
done
