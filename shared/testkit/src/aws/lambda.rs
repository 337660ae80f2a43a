//! Test peers for the function binaries (used by the tests of
//! `functions/*`, next to [`super`]'s moto harness):
//!
//! - [`RuntimeApi`]: a Lambda Runtime API emulator on a free loopback port
//!   (`GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`,
//!   `POST .../{id}/error`, `POST /2018-06-01/runtime/init/error`).
//! - [`RecordingStub`]: an HTTP server that records each request's JSON body
//!   and answers a fixed JSON body (CodeBuild's `StartBuild`, whose
//!   overrides moto ignores).
//! - [`Function`]: a function binary run as a process against both.
//!
//! Plain HTTP/1.1 on std threads: one thread per connection, keep-alive.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

type Handler = Arc<dyn Fn(Request) -> Answer + Send + Sync>;

/// Serves `handler` on a free loopback port; returns `127.0.0.1:<port>`.
fn serve(handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let h = handler.clone();
            std::thread::spawn(move || connection(conn, h));
        }
    });
    addr
}

fn connection(conn: TcpStream, handler: Handler) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_string(), path.to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, extra, body) = handler(Request {
            method,
            path,
            headers,
            body,
        });
        let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if out.write_all(head.as_bytes()).is_err() || out.write_all(&body).is_err() {
            return;
        }
    }
}

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST .../response`: the handler's answer.
    Response(serde_json::Value),
    /// `POST .../error`: the runtime's error report.
    Error(serde_json::Value),
    /// `POST /runtime/init/error`: the function failed to start.
    InitError(serde_json::Value),
}

impl Outcome {
    /// The handler's answer; panics on an error or init error report.
    pub fn response(self) -> serde_json::Value {
        match self {
            Outcome::Response(v) => v,
            other => panic!("the function did not answer: {other:?}"),
        }
    }
}

#[derive(Default)]
struct RuntimeState {
    queue: VecDeque<(String, Vec<u8>)>,
    done: HashMap<String, Outcome>,
    init_error: Option<serde_json::Value>,
    next_id: u32,
}

/// The Lambda Runtime API emulator.
pub struct RuntimeApi {
    addr: String,
    state: Arc<(Mutex<RuntimeState>, Condvar)>,
}

pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:crtask-test";

fn json_body(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into_owned()))
}

impl RuntimeApi {
    pub fn start() -> Self {
        let state: Arc<(Mutex<RuntimeState>, Condvar)> = Arc::default();
        let s = state.clone();
        let addr = serve(Arc::new(move |req: Request| {
            let (lock, cv) = &*s;
            const NEXT: &str = "/2018-06-01/runtime/invocation/next";
            const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
            if req.method == "GET" && req.path == NEXT {
                // Long poll until an event is queued.
                let mut st = lock.lock().unwrap();
                loop {
                    if let Some((id, event)) = st.queue.pop_front() {
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 30_000;
                        return (
                            200,
                            vec![
                                ("content-type".into(), "application/json".into()),
                                ("Lambda-Runtime-Aws-Request-Id".into(), id),
                                ("Lambda-Runtime-Deadline-Ms".into(), deadline.to_string()),
                                ("Lambda-Runtime-Invoked-Function-Arn".into(), FUNCTION_ARN.into()),
                                (
                                    "Lambda-Runtime-Trace-Id".into(),
                                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into(),
                                ),
                            ],
                            event,
                        );
                    }
                    st = cv.wait(st).unwrap();
                }
            }
            let accepted = (202, Vec::new(), br#"{"status":"OK"}"#.to_vec());
            if req.method == "POST" && req.path == "/2018-06-01/runtime/init/error" {
                lock.lock().unwrap().init_error = Some(json_body(&req.body));
                cv.notify_all();
                return accepted;
            }
            if let Some(rest) = req.path.strip_prefix(INVOCATION) {
                if req.method == "POST" {
                    let outcome = match rest.rsplit_once('/') {
                        Some((id, "response")) => {
                            Some((id, Outcome::Response(json_body(&req.body))))
                        }
                        Some((id, "error")) => Some((id, Outcome::Error(json_body(&req.body)))),
                        _ => None,
                    };
                    if let Some((id, o)) = outcome {
                        lock.lock().unwrap().done.insert(id.to_string(), o);
                        cv.notify_all();
                        return accepted;
                    }
                }
            }
            (404, Vec::new(), b"{}".to_vec())
        }));
        RuntimeApi { addr, state }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// Queues `event` and waits for the function's answer.
    pub fn invoke(&self, event: &serde_json::Value, timeout: Duration) -> Outcome {
        let (lock, cv) = &*self.state;
        let id = {
            let mut st = lock.lock().unwrap();
            st.next_id += 1;
            let id = format!("req-{}-{}", std::process::id(), st.next_id);
            st.queue
                .push_back((id.clone(), serde_json::to_vec(event).unwrap()));
            id
        };
        cv.notify_all();
        let start = Instant::now();
        let mut st = lock.lock().unwrap();
        loop {
            if let Some(o) = st.done.remove(&id) {
                return o;
            }
            if let Some(e) = st.init_error.clone() {
                return Outcome::InitError(e);
            }
            let left = timeout
                .checked_sub(start.elapsed())
                .unwrap_or_else(|| panic!("no answer to invocation {id} within {timeout:?}"));
            st = cv.wait_timeout(st, left).unwrap().0;
        }
    }
}

/// Records requests; answers each with `answer(request)`.
pub struct RecordingStub {
    addr: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl RecordingStub {
    pub fn start(answer: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Self {
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let r = requests.clone();
        let addr = serve(Arc::new(move |req: Request| {
            let a = answer(&req);
            r.lock().unwrap().push(req);
            a
        }));
        RecordingStub { addr, requests }
    }

    /// A CodeBuild endpoint whose `StartBuild` answers a started build of
    /// the request's project.
    pub fn codebuild() -> Self {
        Self::start(|req| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let project = body["projectName"]
                .as_str()
                .unwrap_or("unknown")
                .to_string();
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let id = format!("{project}:00000000-0000-4000-8000-{:012x}", n % (1 << 48));
            let answer = serde_json::json!({"build": {
                "id": id,
                "arn": format!("arn:aws:codebuild:us-east-1:123456789012:build/{id}"),
                "buildNumber": 1,
                "projectName": project,
                "buildStatus": "IN_PROGRESS",
                "currentPhase": "QUEUED",
                "buildComplete": false,
                "sourceVersion": body["sourceVersion"],
            }});
            (
                200,
                vec![("content-type".into(), "application/x-amz-json-1.1".into())],
                serde_json::to_vec(&answer).unwrap(),
            )
        })
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The JSON bodies of the requests whose `X-Amz-Target` ends with `.{op}`.
    pub fn calls(&self, op: &str) -> Vec<serde_json::Value> {
        self.requests()
            .iter()
            .filter(|r| {
                r.header("x-amz-target")
                    .is_some_and(|t| t.ends_with(&format!(".{op}")))
            })
            .map(|r| serde_json::from_slice(&r.body).unwrap_or_default())
            .collect()
    }
}

/// A function binary running against a [`RuntimeApi`]; killed on drop.
pub struct Function {
    child: Child,
    pub api: RuntimeApi,
    stdout: Arc<Mutex<Vec<String>>>,
    /// Every AWS call the function makes (except CodeBuild's, which go to
    /// the stub) passes this recording proxy on its way to moto.
    aws: super::http::Proxy,
}

impl Function {
    /// Starts `binary` with the Lambda environment, AWS pointed at `moto`
    /// (and CodeBuild at `codebuild` when given), plus `env`.
    pub fn start(binary: &Path, moto: &str, codebuild: Option<&str>, env: &[(&str, &str)]) -> Self {
        Self::start_under(&[], binary, moto, codebuild, env)
    }

    /// [`Function::start`] with `binary` run by `launcher` (a program and
    /// its arguments, e.g. `qemu-aarch64 -L <sysroot>` for an arm64 build;
    /// empty: `binary` itself).
    pub fn start_under(
        launcher: &[&OsStr],
        binary: &Path,
        moto: &str,
        codebuild: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let api = RuntimeApi::start();
        let aws = super::http::Proxy::start(moto)
            .unwrap_or_else(|e| panic!("cannot start the AWS recording proxy: {e}"));
        let mut cmd = match launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("AWS_") || k.starts_with("CRTASK_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "crtask-test")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/crtask-test")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/27/[$LATEST]0123456789abcdef",
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", aws.url())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if let Some(cb) = codebuild {
            cmd.env("AWS_ENDPOINT_URL_CODEBUILD", cb);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            let program = cmd.get_program().to_string_lossy().into_owned();
            panic!("cannot start {} (as {program}): {e}", binary.display())
        });
        // The function's log (stdout, as Lambda collects it) is kept for
        // tests that read it and still shown with the test's own output.
        let stdout: Arc<Mutex<Vec<String>>> = Arc::default();
        if let Some(out) = child.stdout.take() {
            let lines = Arc::clone(&stdout);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                    eprintln!("{line}");
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Function {
            child,
            api,
            stdout,
            aws,
        }
    }

    /// The AWS operations the function has called so far, in order
    /// (`PutItem`, `Query`, `GetSecretValue`, ...; S3 calls as `METHOD path`).
    pub fn aws_calls(&self) -> Vec<String> {
        super::http::lock(&self.aws.calls)
            .iter()
            .map(|c| c.op.clone())
            .collect()
    }

    /// The lines the function has written to stdout (its log) so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Invokes the function with `event` (30 s at most).
    pub fn invoke(&self, event: &serde_json::Value) -> Outcome {
        self.api.invoke(event, Duration::from_secs(30))
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // No function may Scan: cost must follow what an event touches, not
        // what the table holds. Checked for every function test.
        let scans = self.aws_calls().iter().filter(|op| *op == "Scan").count();
        if scans > 0 && !std::thread::panicking() {
            panic!("the function called DynamoDB Scan {scans} time(s)");
        }
    }
}

/// Fails unless `binary` is a position-dependent executable (ELF type
/// `ET_EXEC`): the functions' build script, `functions/link.rs`, links them
/// so to keep the dynamic loader's relocations out of every cold start.
#[cfg(target_os = "linux")]
pub fn assert_position_dependent(binary: &Path) {
    let mut header = [0u8; 18];
    std::fs::File::open(binary)
        .and_then(|mut f| f.read_exact(&mut header))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", binary.display()));
    assert_eq!(
        &header[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        binary.display()
    );
    // e_type, little-endian on every target the functions build for.
    let e_type = u16::from_le_bytes([header[16], header[17]]);
    assert_eq!(
        e_type,
        2,
        "{} is not linked position-dependent (e_type {e_type}; 3 is a PIE): is `build = \"../link.rs\"` in its Cargo.toml?",
        binary.display()
    );
}
