#!/usr/bin/env bash
# Benchmark: base-image update decisions.
# (a) latency from a registry notification's arrival to the dependent run
#     being queued (the webhook answers only after the run is recorded), p50
#     and p99 over N notifications, each a new digest of the tracked tag;
# (b) fan-out: 1,000 and 10,000 tasks on one base image, one notification,
#     time until every run is queued.
# Runs are recorded and queued by the real server and store; the settle
# window is set to an hour so that no build starts (the worker pool is idle,
# not stubbed), which keeps the measurement to the decision and recording.
#   infra/bench/base-image.sh [N] [FANOUTS]   (default 200 "1000 10000")
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${1:-200}
fanouts=${2:-"1000 10000"}
cargo build --quiet --release -p crtask
bin="${CARGO_TARGET_DIR:-$root/target}/release/crtask"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo bench-token > "$work/token"
mkdir -p "$work/ctx"
printf 'FROM registry.invalid:5000/base:1\nRUN true\n' > "$work/ctx/Dockerfile"

python3 - "$bin" "$work" "$n" "$fanouts" <<'PY'
import json, os, statistics, subprocess, sys, time, urllib.request, random
bin, work, n, fanouts = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(x) for x in sys.argv[4].split()]

def free_port():
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def serve(name):
    port, api_port = free_port(), free_port()
    d = os.path.join(work, name)
    p = subprocess.Popen([bin, "serve", "--listen", f"127.0.0.1:{port}", "--api-listen", f"127.0.0.1:{api_port}",
        "--data-dir", d,
        "--registry", "registry.invalid:5000", "--registry-webhook-token-file", os.path.join(work, "token"),
        "--settle-window", "3600", "--poll-interval", "0"], stderr=open(d + ".log", "w"))
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
            urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz"); break
        except Exception:
            time.sleep(0.1)
    return p, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{api_port}"

def call(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")

def create_tasks(base, count):
    for i in range(count):
        call(f"{base}/api/v1/tasks", "POST", {"name": f"t{i}", "context": os.path.join(work, "ctx"),
             "images": [f"t{i}:latest"], "createTime": "2026-01-01T00:00:00.000Z"})

def notify(base, digest):
    env = {"events": [{"id": digest[-12:], "action": "push", "timestamp": "2026-01-01T00:00:00Z",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                   "repository": "base", "tag": "1", "url": f"http://registry.invalid:5000/v2/base/manifests/{digest}"},
        "request": {"host": "registry.invalid:5000", "method": "PUT"}}]}
    return call(f"{base}/webhooks/registry", "POST", env, {"Authorization": "Bearer bench-token",
        "Content-Type": "application/vnd.docker.distribution.events.v1+json"})

def digest():
    return "sha256:" + "".join(random.choice("0123456789abcdef") for _ in range(64))

# (a) latency, one dependent: each notification queues one run; the run is
# then canceled so the next notification is not folded into it.
p, base, api = serve("latency")
create_tasks(api, 1)
lat = []
for _ in range(n):
    t0 = time.perf_counter(); a = notify(base, digest()); lat.append((time.perf_counter() - t0) * 1000)
    assert a["outcome"] == "triggered", a
    call(f"{api}/api/v1/runs/{a['runs'][0]}/cancel", "POST")
p.terminate(); p.wait()
lat.sort()
print(f"(a) notification -> run queued, 1 dependent, {n} notifications: "
      f"p50 {statistics.median(lat):.1f} ms, p99 {lat[int(len(lat)*0.99)-1]:.1f} ms, max {lat[-1]:.1f} ms")

# (b) fan-out
for count in fanouts:
    p, base, api = serve(f"fanout{count}")
    t0 = time.perf_counter(); create_tasks(api, count); created = time.perf_counter() - t0
    t0 = time.perf_counter(); a = notify(base, digest()); took = time.perf_counter() - t0
    queued = len(a["runs"])
    p.terminate(); p.wait()
    print(f"(b) {count} dependents: {queued} runs queued in {took:.2f} s "
          f"({took/count*1000:.2f} ms per task; creating the tasks took {created:.1f} s)")
PY
