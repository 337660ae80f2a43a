//! Cold start and warm latency of the Lambda function binaries (issue #4),
//! run by `infra/bench/lambda.sh`.
//!
//! Each binary runs as a process against a Lambda Runtime API emulator in
//! this process; its AWS calls go (`AWS_ENDPOINT_URL`) to a timing proxy in
//! this process that forwards them to `moto_server` and records how long
//! each one took. Measured:
//!
//! - init: process spawn -> its first `GET /next` (the runtime is ready);
//! - cold start: process spawn -> the `POST .../response` of the first
//!   event, which was queued before the spawn (N fresh processes);
//! - warm: one process, K events back to back; per invocation, the event
//!   handed out on `/next` -> its `/response` arriving;
//! - "excl. AWS": the same minus the time the proxy spent on the AWS calls
//!   made inside that window (from the request's first byte at the proxy to
//!   the answer's last byte written back). The SDK's own work (building,
//!   signing, parsing) stays in the function's time.
//!
//! The baseline is `examples/hello.rs` (echo, same profile); the emulator's
//! own cost is shown by a raw HTTP client that plays the runtime
//! (`GET /next`, `POST /response`) with no function at all.
//!
//! Usage: `lambda_bench --moto URL --hello PATH [--function NAME=PATH]...
//! [--event NAME=FILE]... [--env KEY=VALUE]... [--cold N] [--warm K]`.
//! Known names: `git-webhook`, `build-status`, `registry-event`, `schedule`;
//! a missing binary is skipped with a note.

use aws_sdk_dynamodb::config::Credentials;
use chrono::{TimeZone, Utc};
use crtask_core::domain::model::{
    BaseImageTriggerType, BuildSpec, ContextSource, Run, RunStatus, RunType, Task, Trigger,
};
use crtask_core::ports::Store;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

// ---------------------------------------------------------------- HTTP/1.1

/// One HTTP/1.1 message (request or response), body de-chunked.
struct Message {
    first: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// When the first line arrived.
    arrived: Instant,
    /// The peer ends the connection after this message.
    close: bool,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The message with `content-length` framing, in one buffer (one write:
    /// no Nagle/delayed-ACK stall between head and body).
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        out.extend_from_slice(self.first.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (k, v) in &self.headers {
            if [
                "content-length",
                "transfer-encoding",
                "connection",
                "keep-alive",
            ]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
            {
                continue;
            }
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// Reads one message; `None` when the peer closed the connection first.
/// `head` tells that a response answers a `HEAD` request (no body).
fn read_message(r: &mut impl BufRead, head: bool) -> std::io::Result<Option<Message>> {
    let Some(first) = read_line(r)? else {
        return Ok(None);
    };
    let arrived = Instant::now();
    let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
    let mut headers = Vec::new();
    loop {
        let h = read_line(r)?.ok_or_else(eof)?;
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut m = Message {
        first,
        headers,
        body: Vec::new(),
        arrived,
        close: false,
    };
    let response = m.first.starts_with("HTTP/");
    let status: u16 = m
        .first
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    m.close = m.first.starts_with("HTTP/1.0")
        || m.header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
    let chunked = m
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = m
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    if response && (head || status < 200 || status == 204 || status == 304) {
        // No body.
    } else if chunked {
        loop {
            let size = read_line(r)?.ok_or_else(eof)?;
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size '{size}'")))?;
            if size == 0 {
                while !read_line(r)?.ok_or_else(eof)?.is_empty() {}
                break;
            }
            let at = m.body.len();
            m.body.resize(at + size, 0);
            r.read_exact(&mut m.body[at..])?;
            read_line(r)?;
        }
    } else if let Some(n) = length {
        m.body.resize(n, 0);
        r.read_exact(&mut m.body)?;
    } else if response {
        r.read_to_end(&mut m.body)?;
        m.close = true;
    }
    Ok(Some(m))
}

/// Accepts connections on a free loopback port, one thread each; `handle`
/// serves one connection. Returns `127.0.0.1:<port>`.
fn serve(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Res<String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?
        .to_string();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = conn.set_nodelay(true);
            let h = handle.clone();
            std::thread::spawn(move || h(conn));
        }
    });
    Ok(addr)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------- timing proxy

/// One AWS call as the proxy saw it.
#[derive(Clone)]
struct Call {
    start: Instant,
    end: Instant,
    op: String,
}

/// Forwards every request to the upstream (moto) and records its timing.
struct Proxy {
    addr: String,
    calls: Arc<Mutex<Vec<Call>>>,
    /// Connections the functions opened to the proxy.
    connections: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(upstream: &str) -> Res<Self> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let log = calls.clone();
        let connections: Arc<AtomicUsize> = Arc::default();
        let n = connections.clone();
        let addr = serve(move |client| {
            n.fetch_add(1, Ordering::Relaxed);
            let _ = proxy_connection(client, &upstream, &log);
        })?;
        Ok(Proxy {
            addr,
            calls,
            connections,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The calls that started and ended inside `[from, to]`.
    fn calls_in(&self, from: Instant, to: Instant) -> Vec<Call> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.start >= from && c.end <= to)
            .cloned()
            .collect()
    }
}

fn proxy_connection(client: TcpStream, upstream: &str, log: &Mutex<Vec<Call>>) -> Res<()> {
    let mut out = client.try_clone().map_err(|e| e.to_string())?;
    let mut input = BufReader::new(client);
    let mut up: Option<(TcpStream, BufReader<TcpStream>)> = None;
    while let Some(req) = read_message(&mut input, false).map_err(|e| e.to_string())? {
        let head = req.first.starts_with("HEAD ");
        let op = req
            .header("x-amz-target")
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| {
                let mut p = req.first.split_whitespace();
                format!("{} {}", p.next().unwrap_or(""), p.next().unwrap_or(""))
            });
        let (mut w, mut r) = match up.take() {
            Some(c) => c,
            None => {
                let s = TcpStream::connect(upstream).map_err(|e| format!("{upstream}: {e}"))?;
                let _ = s.set_nodelay(true);
                let r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
                (s, r)
            }
        };
        w.write_all(&req.to_bytes()).map_err(|e| e.to_string())?;
        let resp = read_message(&mut r, head)
            .map_err(|e| e.to_string())?
            .ok_or("upstream closed the connection")?;
        if !resp.close {
            up = Some((w, r));
        }
        // Logged before the answer goes back, so the call is on record (and
        // ends) before the function can act on it; the write itself counts
        // as the function's time.
        let bytes = resp.to_bytes();
        lock(log).push(Call {
            start: req.arrived,
            end: Instant::now(),
            op,
        });
        // The client's connection stays open, as with the real endpoints.
        out.write_all(&bytes).map_err(|e| e.to_string())?;
        if req.close {
            return Ok(());
        }
    }
    Ok(())
}

// ------------------------------------------------- Runtime API emulator

/// How an invocation ended.
#[derive(Debug, Clone)]
enum Outcome {
    Response(Value),
    Error(Value),
}

struct Done {
    handed: Instant,
    done: Instant,
    outcome: Outcome,
}

#[derive(Default)]
struct EmuState {
    queue: VecDeque<(String, Vec<u8>)>,
    handed: HashMap<String, Instant>,
    done: HashMap<String, Done>,
    first_next: Option<Instant>,
    init_error: Option<Value>,
    next_id: u64,
}

/// A lean Lambda Runtime API: `/next` (long poll), `/response`, `/error`,
/// `/init/error`. It records when each event is handed out and when its
/// answer arrives.
struct Emulator {
    addr: String,
    state: Arc<(Mutex<EmuState>, Condvar)>,
}

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:crtask-bench";

fn json_body(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into()))
}

impl Emulator {
    fn start() -> Res<Self> {
        let state: Arc<(Mutex<EmuState>, Condvar)> = Arc::default();
        let s = state.clone();
        let addr = serve(move |conn| {
            let Ok(mut out) = conn.try_clone() else {
                return;
            };
            let mut input = BufReader::new(conn);
            while let Ok(Some(req)) = read_message(&mut input, false) {
                let answer = emulate(&s, &req);
                if out.write_all(&answer.to_bytes()).is_err() {
                    return;
                }
            }
        })?;
        Ok(Emulator { addr, state })
    }

    /// Queues `event`; returns its request id.
    fn push(&self, event: &Value) -> String {
        let (lock_, cv) = &*self.state;
        let mut st = lock(lock_);
        st.next_id += 1;
        let id = format!("bench-{}", st.next_id);
        st.queue
            .push_back((id.clone(), serde_json::to_vec(event).unwrap_or_default()));
        cv.notify_all();
        id
    }

    /// Waits for `id`'s answer; fails when the function reports an init
    /// error, when `alive` says the process is gone, or after `timeout`.
    fn wait(&self, id: &str, timeout: Duration, alive: &mut dyn FnMut() -> bool) -> Res<Done> {
        let (lock_, cv) = &*self.state;
        let until = Instant::now() + timeout;
        let mut st = lock(lock_);
        loop {
            if let Some(d) = st.done.remove(id) {
                return Ok(d);
            }
            if let Some(e) = &st.init_error {
                return Err(format!("init error: {e}"));
            }
            if Instant::now() >= until {
                return Err(format!("no answer to {id} within {timeout:?}"));
            }
            if !alive() {
                return Err("the process exited".into());
            }
            st = cv
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn first_next(&self) -> Option<Instant> {
        lock(&self.state.0).first_next
    }
}

fn answer(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Message {
    Message {
        first: format!("HTTP/1.1 {status} X"),
        headers,
        body,
        arrived: Instant::now(),
        close: false,
    }
}

fn emulate(state: &(Mutex<EmuState>, Condvar), req: &Message) -> Message {
    let (lock_, cv) = state;
    let mut parts = req.first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "GET" && path == NEXT {
        let mut st = lock(lock_);
        st.first_next.get_or_insert(req.arrived);
        loop {
            if let Some((id, event)) = st.queue.pop_front() {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
                    + 30_000;
                st.handed.insert(id.clone(), Instant::now());
                let headers = vec![
                    ("content-type".into(), "application/json".into()),
                    ("lambda-runtime-aws-request-id".into(), id),
                    ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
                    ("lambda-runtime-invoked-function-arn".into(), ARN.into()),
                    (
                        "lambda-runtime-trace-id".into(),
                        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
                            .into(),
                    ),
                ];
                return answer(200, headers, event);
            }
            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
    let accepted = answer(202, Vec::new(), br#"{"status":"OK"}"#.to_vec());
    if method == "POST" && path == "/2018-06-01/runtime/init/error" {
        lock(lock_).init_error = Some(json_body(&req.body));
        cv.notify_all();
        return accepted;
    }
    if let (Some(rest), "POST") = (path.strip_prefix(INVOCATION), method) {
        let outcome = match rest.rsplit_once('/') {
            Some((id, "response")) => Some((id, Outcome::Response(json_body(&req.body)))),
            Some((id, "error")) => Some((id, Outcome::Error(json_body(&req.body)))),
            _ => None,
        };
        if let Some((id, outcome)) = outcome {
            let mut st = lock(lock_);
            let handed = st.handed.remove(id).unwrap_or(req.arrived);
            st.done.insert(
                id.to_string(),
                Done {
                    handed,
                    done: req.arrived,
                    outcome,
                },
            );
            cv.notify_all();
            return accepted;
        }
    }
    answer(404, Vec::new(), b"{}".to_vec())
}

// ------------------------------------------------------------ processes

/// A function binary running against an [`Emulator`]; killed on drop.
struct Process {
    child: Child,
    spawned: Instant,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    fn spawn(binary: &Path, emu: &Emulator, env: &[(String, String)]) -> Res<Self> {
        let mut cmd = Command::new(binary);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("AWS_") || k.starts_with("CRTASK_") || k == "RUST_LOG" {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("AWS_LAMBDA_RUNTIME_API", &emu.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", "crtask-bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/crtask-bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        // Drained like Lambda's log pipe; the last lines explain failures.
        let output: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let pipes: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().ok_or("no stdout pipe")?),
            Box::new(child.stderr.take().ok_or("no stderr pipe")?),
        ];
        for pipe in pipes {
            let o = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = lock(&o);
                    if o.len() == 20 {
                        o.pop_front();
                    }
                    o.push_back(line);
                }
            });
        }
        Ok(Process {
            child,
            spawned,
            output,
        })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        lock(&self.output)
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- cases

type EventFn = Box<dyn Fn(usize) -> Value>;
type CheckFn = Box<dyn Fn(&Outcome) -> Res<()>>;

/// One thing to measure: a binary, its environment, its events.
struct Case {
    label: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    event: EventFn,
    check: CheckFn,
    note: Option<String>,
}

fn expect_response(check: impl Fn(&Value) -> Res<()> + 'static) -> CheckFn {
    Box::new(move |o| match o {
        Outcome::Response(v) => check(v),
        Outcome::Error(e) => Err(format!("the function answered an error: {e}")),
    })
}

const PUSH_SECRET: &str = "whsec-bench-0123456789abcdefghijklmnopqrstuvwxyz";
const REPO_URL: &str = "https://github.com/acme/app.git";
/// The build as `StartBuild` names it (kept on the run) and as its
/// state-change events name it (the ARN).
const BUILD: &str = "crtask-builder:0f1e2d3c-4b5a-4697-8899-aabbccddeeff";
const BUILD_ARN: &str = "arn:aws:codebuild:us-east-1:123456789012:build/crtask-builder:0f1e2d3c-4b5a-4697-8899-aabbccddeeff";

/// A signed GitHub push to a branch the task does not track, as a Function
/// URL event (payload 2.0); delivery `i` is unique so it is not a replay.
fn push_event(i: usize) -> Value {
    let commit = "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f";
    let head = json!({"id": commit, "message": "change", "added": [], "removed": [], "modified": ["app.go"]});
    let body = json!({
        "ref": "refs/heads/bench",
        "before": "0000000000000000000000000000000000000001",
        "after": commit,
        "created": false, "deleted": false, "forced": false,
        "commits": [head],
        "head_commit": head,
        "repository": {"full_name": "acme/app", "clone_url": REPO_URL,
            "html_url": "https://github.com/acme/app", "default_branch": "main"},
        "pusher": {"name": "bench"}
    })
    .to_string();
    let mut mac = match Hmac::<Sha256>::new_from_slice(PUSH_SECRET.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("hmac takes keys of any length"),
    };
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let delivery = format!("{:08x}-cc78-11e3-81ab-{:012x}", std::process::id(), i);
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhooks/git",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": delivery,
            "x-hub-signature-256": signature,
            "user-agent": "GitHub-Hookshot/7e5a3b1"
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {"method": "POST", "path": "/webhooks/git", "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10", "userAgent": "GitHub-Hookshot/7e5a3b1"},
            "requestId": format!("req-{i}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_766_400_000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

const IN_PROGRESS: &str =
    include_str!("../../../shared/core/tests/fixtures/codebuild/in-progress.json");
const NOT_CRTASK: &str =
    include_str!("../../../shared/core/tests/fixtures/codebuild/not-crtask.json");

fn run_id(i: usize) -> String {
    format!("bench{i}")
}

/// The fixture's IN_PROGRESS event for run `i` (queued in the store).
fn in_progress_event(template: &Value, i: usize) -> Value {
    let mut e = template.clone();
    e["detail"]["build-id"] = BUILD_ARN.into();
    e["resources"] = json!([BUILD_ARN]);
    if let Some(vars) = e
        .pointer_mut("/detail/additional-information/environment/environment-variables")
        .and_then(Value::as_array_mut)
    {
        for v in vars {
            if v["name"] == "CRTASK_RUN_ID" {
                v["value"] = run_id(i).into();
            }
        }
    }
    e
}

fn queued_run(i: usize) -> Run {
    Run {
        run_id: run_id(i),
        task: Some("web".into()),
        run_type: RunType::AutoBuild,
        status: RunStatus::Queued,
        trigger: Trigger::Commit {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            branch: "main".into(),
            repository: "acme/app".into(),
        },
        platform: "linux/amd64".into(),
        create_time: Utc::now(),
        start_time: None,
        finish_time: None,
        output_images: Vec::new(),
        base_images: Vec::new(),
        steps: Vec::new(),
        error: None,
        dedupe_key: None,
        builder_ref: Some(BUILD.into()),
        spec: BuildSpec {
            context: ContextSource::Git {
                url: REPO_URL.into(),
                reference: Some("main".into()),
                subdir: None,
            },
            file: "Dockerfile".into(),
            images: vec!["web:{{.Run.ID}}".into()],
            build_args: Vec::new(),
            target: None,
            platform: None,
            push: true,
            timeout: 3600,
            values: BTreeMap::new(),
        },
    }
}

fn task() -> Task {
    Task {
        name: "web".into(),
        context: format!("{REPO_URL}#main"),
        file: "Dockerfile".into(),
        images: vec!["app:{{.Run.ID}}".into()],
        branch: None,
        commit_trigger_enabled: true,
        pull_request_trigger_enabled: false,
        tag_trigger_enabled: false,
        pull_request_push_enabled: false,
        base_image_trigger_enabled: true,
        base_image_trigger_type: BaseImageTriggerType::Runtime,
        timers: Vec::new(),
        build_args: Vec::new(),
        values: BTreeMap::new(),
        path_filters: Vec::new(),
        target: None,
        platform: None,
        push: true,
        timeout: 3600,
        create_time: Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .unwrap_or_else(Utc::now),
    }
}

/// What moto holds for the functions: a table (with task `web` and the
/// queued runs `bench0..runs`), a bucket and a secret (every function's).
async fn setup(moto: &str, runs: usize) -> Res<Vec<(String, String)>> {
    let conf = crtask_aws::config::loader()
        .endpoint_url(moto)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "bench"))
        .load()
        .await;
    let suffix = format!("{}-{}", std::process::id(), Utc::now().timestamp_millis());
    let table = format!("crtask-bench-{suffix}");
    let dynamo = crtask_aws::config::dynamodb(&conf);
    crtask_aws::create_table(&dynamo, &table)
        .await
        .map_err(|e| format!("create table: {e}"))?;
    let store = crtask_aws::DynamoStore::new(dynamo, table.clone());
    store
        .create_task(&task())
        .await
        .map_err(|e| format!("create task: {e}"))?;
    for i in 0..runs {
        store
            .insert_run(&queued_run(i))
            .await
            .map_err(|e| format!("insert run: {e}"))?;
    }
    let bucket = format!("crtask-bench-{suffix}");
    crtask_aws::config::s3(&conf)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| format!("create bucket: {e:?}"))?;
    let secret = crtask_aws::config::secretsmanager(&conf)
        .create_secret()
        .name(format!("crtask/bench-{suffix}"))
        .secret_string(PUSH_SECRET)
        .send()
        .await
        .map_err(|e| format!("create secret: {e:?}"))?
        .arn
        .ok_or("create secret: no arn")?;
    Ok(vec![
        ("CRTASK_TABLE".into(), table),
        ("CRTASK_BUCKET".into(), bucket),
        ("CRTASK_BUILDER_PROJECT".into(), "crtask-builder".into()),
        (
            "CRTASK_REGISTRY_HOST".into(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
        ),
        ("CRTASK_GIT_WEBHOOK_SECRET_ARN".into(), secret.clone()),
        // The newer functions' secrets (the same value will do here).
        ("CRTASK_REGISTRY_WEBHOOK_SECRET_ARN".into(), secret.clone()),
        ("CRTASK_SCHEDULE_SECRET_ARN".into(), secret),
    ])
}

/// The cases of function `name` (binary `path`).
fn cases_for(
    name: &str,
    path: &Path,
    env: &[(String, String)],
    events: &HashMap<String, Value>,
) -> Res<Vec<Case>> {
    let mk = |label: &str, event: EventFn, check: CheckFn, note: Option<&str>| Case {
        label: label.into(),
        binary: path.into(),
        env: env.to_vec(),
        event,
        check,
        note: note.map(str::to_string),
    };
    if let Some(e) = events.get(name) {
        let e = e.clone();
        return Ok(vec![mk(
            name,
            Box::new(move |_| e.clone()),
            Box::new(|_| Ok(())),
            Some("event given with --event; answers (or errors) are not checked"),
        )]);
    }
    let parse = |s: &str| serde_json::from_str::<Value>(s).map_err(|e| format!("fixture: {e}"));
    Ok(match name {
        "git-webhook" => vec![mk(
            "git-webhook (signed push, no task matches: event recorded)",
            Box::new(push_event),
            expect_response(|v| {
                let body: Value = v["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or(Value::Null);
                (v["statusCode"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
                    && body["outcome"] == "ignored")
                    .then_some(())
                    .ok_or(format!("expected a 2xx 'ignored' answer, got {v}"))
            }),
            None,
        )],
        "build-status" => {
            let template = parse(IN_PROGRESS)?;
            let not_crtask = parse(NOT_CRTASK)?;
            vec![
                mk(
                    "build-status (IN_PROGRESS of a queued run: run updated)",
                    Box::new(move |i| in_progress_event(&template, i)),
                    expect_response(|v| {
                        (v["outcome"] == "updated")
                            .then_some(())
                            .ok_or(format!("expected 'updated', got {v}"))
                    }),
                    None,
                ),
                mk(
                    "build-status (not a crtask build: ignored, no AWS call)",
                    Box::new(move |_| not_crtask.clone()),
                    expect_response(|v| {
                        (v["outcome"] == "ignored")
                            .then_some(())
                            .ok_or(format!("expected 'ignored', got {v}"))
                    }),
                    None,
                ),
            ]
        }
        "registry-event" => vec![mk(
            "registry-event (ECR push of an image nothing depends on: event recorded)",
            Box::new(|i| {
                json!({"version": "0", "id": format!("bench-{i}"),
                    "detail-type": "ECR Image Action", "source": "aws.ecr",
                    "account": "123456789012", "time": "2026-11-27T08:00:00Z",
                    "region": "us-east-1", "resources": [],
                    "detail": {"result": "SUCCESS", "repository-name": "bench/nothing-depends",
                        "image-digest": format!("sha256:{i:064x}"), "action-type": "PUSH",
                        "image-tag": "latest"}})
            }),
            expect_response(|v| {
                (v["outcome"] == "recorded" && v["events"][0]["outcome"] == "ignored")
                    .then_some(())
                    .ok_or(format!("expected a recorded 'ignored' event, got {v}"))
            }),
            None,
        )],
        "schedule" => vec![
            mk(
                "schedule (poll tick, nothing tracked: round and stalled-run check)",
                Box::new(|_| json!({"kind": "poll-tick", "scheduledTime": "2026-11-27T08:00:00Z"})),
                expect_response(|v| {
                    (v["outcome"] == "polled")
                        .then_some(())
                        .ok_or(format!("expected 'polled', got {v}"))
                }),
                None,
            ),
            mk(
                "schedule (timer payload with a forged signature: rejected and recorded)",
                Box::new(|i| {
                    json!({"task": format!("bench-{i}"), "timer": "t1",
                        "schedule": format!("bench-{i}.t1"),
                        "scheduledTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:00Z").to_string(),
                        "signature": "0".repeat(64)})
                }),
                expect_response(|v| {
                    (v["outcome"] == "rejected")
                        .then_some(())
                        .ok_or(format!("expected 'rejected', got {v}"))
                }),
                None,
            ),
        ],
        other => vec![mk(
            other,
            Box::new(|i| json!({"bench": i})),
            Box::new(|_| Ok(())),
            Some("unknown function: a small JSON event, answer not checked"),
        )],
    })
}

// ----------------------------------------------------------- measuring

#[derive(Default)]
struct Measured {
    init: Vec<f64>,
    cold: Vec<f64>,
    cold_excl: Vec<f64>,
    cold_calls: Vec<usize>,
    warm: Vec<f64>,
    warm_excl: Vec<f64>,
    warm_calls: Vec<usize>,
    cold_ops: Vec<String>,
    /// One warm invocation: the function's own stretches and the AWS calls.
    timeline: String,
    warm_ops: Vec<String>,
    notes: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn aws_ms(calls: &[Call]) -> f64 {
    calls.iter().map(|c| ms(c.end - c.start)).sum()
}

/// `own 0.120 | GetItem 1.300 | own 0.210 | ...` (ms) for one invocation.
fn timeline(from: Instant, to: Instant, calls: &[Call]) -> String {
    let mut parts = Vec::new();
    let mut at = from;
    for c in calls {
        parts.push(format!(
            "own {:.3}",
            ms(c.start.saturating_duration_since(at))
        ));
        parts.push(format!("{} {:.3}", c.op, ms(c.end - c.start)));
        at = c.end;
    }
    parts.push(format!("own {:.3}", ms(to.saturating_duration_since(at))));
    parts.join(" | ")
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// One cold start of `case` with event `i`: a fresh process (and
/// emulator), the event queued before the spawn.
fn cold_once(case: &Case, proxy: &Proxy, i: usize, m: &mut Measured) -> Res<()> {
    let mut env = case.env.clone();
    env.push(("AWS_ENDPOINT_URL".into(), proxy.url()));
    let emu = Emulator::start()?;
    let id = emu.push(&(case.event)(i));
    let mut p = Process::spawn(&case.binary, &emu, &env)?;
    let fail = |p: &Process, e: String| format!("{e}\n--- last output:\n{}", p.log());
    let d = emu
        .wait(&id, TIMEOUT, &mut || p.alive())
        .map_err(|e| fail(&p, e))?;
    (case.check)(&d.outcome).map_err(|e| fail(&p, e))?;
    let calls = proxy.calls_in(p.spawned, d.done);
    let total = ms(d.done - p.spawned);
    m.init
        .push(emu.first_next().map(|t| ms(t - p.spawned)).unwrap_or(total));
    m.cold.push(total);
    m.cold_excl.push(total - aws_ms(&calls));
    m.cold_calls.push(calls.len());
    if i == 0 {
        m.cold_ops = calls.iter().map(|c| c.op.clone()).collect();
        if let Outcome::Error(e) = &d.outcome {
            m.notes.push(format!("answered an error: {e}"));
        }
    }
    Ok(())
}

/// Warm: one process; event `first` starts it, then `warm` events queued
/// at once are served back to back.
fn warm_run(case: &Case, proxy: &Proxy, first: usize, warm: usize, m: &mut Measured) -> Res<()> {
    let mut env = case.env.clone();
    env.push(("AWS_ENDPOINT_URL".into(), proxy.url()));
    let emu = Emulator::start()?;
    let start = emu.push(&(case.event)(first));
    let mut p = Process::spawn(&case.binary, &emu, &env)?;
    let fail = |p: &Process, e: String| format!("{e}\n--- last output:\n{}", p.log());
    emu.wait(&start, TIMEOUT, &mut || p.alive())
        .map_err(|e| fail(&p, e))?;
    let ids: Vec<String> = (0..warm)
        .map(|i| emu.push(&(case.event)(first + 1 + i)))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let d = emu
            .wait(id, TIMEOUT, &mut || p.alive())
            .map_err(|e| fail(&p, e))?;
        (case.check)(&d.outcome).map_err(|e| fail(&p, e))?;
        let calls = proxy.calls_in(d.handed, d.done);
        let total = ms(d.done - d.handed);
        m.warm.push(total);
        m.warm_excl.push(total - aws_ms(&calls));
        m.warm_calls.push(calls.len());
        if i == warm / 2 {
            m.warm_ops = calls.iter().map(|c| c.op.clone()).collect();
            m.timeline = timeline(d.handed, d.done, &calls);
        }
    }
    Ok(())
}

/// Measures every case: the cold starts interleaved (repetition `i` of
/// each case, then `i + 1`), so that all see the same machine load; then
/// the warm runs. A case that fails is reported and left out.
fn measure(cases: &[Case], proxy: &Proxy, cold: usize, warm: usize) -> Vec<Res<Measured>> {
    let mut out: Vec<Res<Measured>> = cases.iter().map(|_| Ok(Measured::default())).collect();
    for i in 0..cold {
        for (case, r) in cases.iter().zip(out.iter_mut()) {
            if let Ok(m) = r {
                if let Err(e) = cold_once(case, proxy, i, m) {
                    *r = Err(e);
                }
            }
        }
    }
    for (case, r) in cases.iter().zip(out.iter_mut()) {
        eprintln!("warm: {} ...", case.label);
        if let Ok(m) = r {
            if let Err(e) = warm_run(case, proxy, cold, warm, m) {
                *r = Err(e);
            }
        }
    }
    out
}

/// The emulator with no function: this thread plays the runtime over one
/// keep-alive connection (`GET /next`, `POST /response` echoing the event).
fn measure_emulator(warm: usize) -> Res<Measured> {
    let emu = Emulator::start()?;
    let ids: Vec<String> = (0..warm)
        .map(|i| emu.push(&json!({"hello": "world", "n": i})))
        .collect();
    let conn = TcpStream::connect(&emu.addr).map_err(|e| e.to_string())?;
    let _ = conn.set_nodelay(true);
    let mut out = conn.try_clone().map_err(|e| e.to_string())?;
    let mut input = BufReader::new(conn);
    let host = emu.addr.clone();
    let client = std::thread::spawn(move || -> Res<()> {
        for _ in 0..warm {
            let get = format!("GET {NEXT} HTTP/1.1\r\nhost: {host}\r\n\r\n");
            out.write_all(get.as_bytes()).map_err(|e| e.to_string())?;
            let ev = read_message(&mut input, false)
                .map_err(|e| e.to_string())?
                .ok_or("closed")?;
            let id = ev
                .header("lambda-runtime-aws-request-id")
                .ok_or("no request id")?
                .to_string();
            let post = Message {
                first: format!("POST {INVOCATION}{id}/response HTTP/1.1"),
                headers: vec![("host".into(), host.clone())],
                body: ev.body,
                arrived: Instant::now(),
                close: false,
            };
            out.write_all(&post.to_bytes()).map_err(|e| e.to_string())?;
            read_message(&mut input, false)
                .map_err(|e| e.to_string())?
                .ok_or("closed")?;
        }
        Ok(())
    });
    let mut m = Measured::default();
    for id in &ids {
        let d = emu.wait(id, TIMEOUT, &mut || true)?;
        m.warm.push(ms(d.done - d.handed));
        m.warm_excl.push(ms(d.done - d.handed));
        m.warm_calls.push(0);
    }
    client
        .join()
        .map_err(|_| "the client thread panicked".to_string())??;
    Ok(m)
}

// ------------------------------------------------------------ reporting

/// Nearest-rank percentile of `v` (`p` in 0..=100).
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn mean(v: &[usize]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<usize>() as f64 / v.len() as f64
}

fn size(path: &Path) -> String {
    std::fs::metadata(path)
        .map(|m| format!("{:.1} MiB", m.len() as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|_| "-".into())
}

fn summarize(ops: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for op in ops {
        match counts.iter_mut().find(|(o, _)| o == op) {
            Some((_, n)) => *n += 1,
            None => counts.push((op.clone(), 1)),
        }
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(o, n)| {
            if *n > 1 {
                format!("{o} x{n}")
            } else {
                o.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct Args {
    moto: String,
    hello: PathBuf,
    functions: Vec<(String, PathBuf)>,
    events: HashMap<String, Value>,
    env: Vec<(String, String)>,
    cold: usize,
    warm: usize,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        moto: String::new(),
        hello: PathBuf::new(),
        functions: Vec::new(),
        events: HashMap::new(),
        env: Vec::new(),
        cold: 20,
        warm: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let pair = |v: String| -> Res<(String, String)> {
            v.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or(format!("'{v}' is not NAME=VALUE"))
        };
        match flag.as_str() {
            "--moto" => a.moto = value()?,
            "--hello" => a.hello = value()?.into(),
            "--function" => {
                let (k, v) = pair(value()?)?;
                a.functions.push((k, v.into()));
            }
            "--event" => {
                let (k, v) = pair(value()?)?;
                let text =
                    std::fs::read_to_string(&v).map_err(|e| format!("cannot read {v}: {e}"))?;
                let e = serde_json::from_str(&text).map_err(|e| format!("{v}: {e}"))?;
                a.events.insert(k, e);
            }
            "--env" => a.env.push(pair(value()?)?),
            "--cold" => a.cold = value()?.parse().map_err(|e| format!("--cold: {e}"))?,
            "--warm" => a.warm = value()?.parse().map_err(|e| format!("--warm: {e}"))?,
            other => {
                return Err(format!(
                    "unknown argument '{other}' (see the file's header)"
                ))
            }
        }
    }
    if a.moto.is_empty() || a.hello.as_os_str().is_empty() {
        return Err("--moto URL and --hello PATH are required".into());
    }
    if a.cold == 0 || a.warm == 0 {
        return Err("--cold and --warm must be at least 1".into());
    }
    Ok(a)
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("lambda_bench: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Res<()> {
    let args = parse_args()?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("tokio: {e}"))?;
    // One queued run per build-status event (cold reps, warm start, warm).
    let mut env = rt.block_on(setup(&args.moto, args.cold + args.warm + 1))?;
    env.extend(args.env.iter().cloned());
    let proxy = Proxy::start(&args.moto)?;

    let hello_case = Case {
        label: "hello (lambda_runtime echo, baseline)".into(),
        binary: args.hello.clone(),
        env: Vec::new(),
        event: Box::new(|i| json!({"hello": "world", "n": i})),
        check: Box::new(|o| match o {
            Outcome::Response(v) if v["hello"] == "world" => Ok(()),
            other => Err(format!("hello did not echo its event: {other:?}")),
        }),
        note: None,
    };
    let mut cases = vec![hello_case];
    let mut skipped = Vec::new();
    for (name, path) in &args.functions {
        if !path.is_file() {
            skipped.push(format!("{name}: no binary at {}: skipped", path.display()));
            continue;
        }
        cases.extend(cases_for(name, path, &env, &args.events)?);
    }

    let emulator = measure_emulator(args.warm)?;
    eprintln!("cold starts: {} x {} cases ...", args.cold, cases.len());
    let mut results = Vec::new();
    for (case, r) in cases
        .iter()
        .zip(measure(&cases, &proxy, args.cold, args.warm))
    {
        match r {
            Ok(m) => results.push((case, m)),
            Err(e) => skipped.push(format!("{}: failed: {e}", case.label)),
        }
    }

    let Some((_, hello)) = results.first() else {
        return Err(format!("the hello baseline failed: {}", skipped.join("; ")));
    };
    let (hello_init, hello_cold, hello_cold_excl) = (
        pct(&hello.init, 50.0),
        pct(&hello.cold, 50.0),
        pct(&hello.cold_excl, 50.0),
    );
    println!(
        "{} cold starts and {} warm invocations per row; times in ms.\n",
        args.cold, args.warm
    );
    println!("| function (event) | binary | init p50 (x hello) | cold start min / p50 / p90 | cold p50 excl. AWS | cold ratio to hello (raw / excl. AWS) | warm p50 / p99 | warm excl. AWS p50 / p99 | AWS calls (cold / warm) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (case, m) in &results {
        println!(
            "| {} | {} | {:.2} ({:.2}) | {:.2} / {:.2} / {:.2} | {:.2} | {:.2} / {:.2} | {:.3} / {:.3} | {:.3} / {:.3} | {:.1} / {:.1} |",
            case.label,
            size(&case.binary),
            pct(&m.init, 50.0),
            pct(&m.init, 50.0) / hello_init,
            pct(&m.cold, 0.0),
            pct(&m.cold, 50.0),
            pct(&m.cold, 90.0),
            pct(&m.cold_excl, 50.0),
            pct(&m.cold, 50.0) / hello_cold,
            pct(&m.cold_excl, 50.0) / hello_cold_excl,
            pct(&m.warm, 50.0),
            pct(&m.warm, 99.0),
            pct(&m.warm_excl, 50.0),
            pct(&m.warm_excl, 99.0),
            mean(&m.cold_calls),
            mean(&m.warm_calls),
        );
    }
    println!(
        "| emulator alone (raw HTTP client as the runtime, no process) | - | - | - | - | - | {:.3} / {:.3} | - | 0 |",
        pct(&emulator.warm, 50.0),
        pct(&emulator.warm, 99.0)
    );
    println!("\nAWS calls (first cold invocation; one warm invocation):\n");
    for (case, m) in &results {
        println!(
            "- {}: cold: {}; warm: {}",
            case.label,
            summarize(&m.cold_ops),
            summarize(&m.warm_ops)
        );
    }
    println!(
        "\nOne warm invocation, in order (ms; \"own\" is the function's time between AWS calls):\n"
    );
    for (case, m) in &results {
        println!("- {}: {}", case.label, m.timeline);
    }
    skipped.push(format!(
        "the functions opened {} connections to the AWS proxy for {} calls",
        proxy.connections.load(Ordering::Relaxed),
        lock(&proxy.calls).len()
    ));
    let notes: Vec<String> = results
        .iter()
        .flat_map(|(c, m)| {
            c.note
                .iter()
                .map(move |n| format!("{}: {n}", c.label))
                .chain(m.notes.iter().map(move |n| format!("{}: {n}", c.label)))
        })
        .chain(skipped.iter().cloned())
        .collect();
    if !notes.is_empty() {
        println!("\nNotes:\n");
        for n in notes {
            println!("- {n}");
        }
    }
    Ok(())
}
