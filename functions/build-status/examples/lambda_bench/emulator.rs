//! The Lambda Runtime API emulator and the function processes run against it.

use super::*;

/// How an invocation ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Response(Value),
    Error(Value),
}

pub(crate) struct Done {
    pub(crate) handed: Instant,
    pub(crate) done: Instant,
    pub(crate) outcome: Outcome,
}

#[derive(Default)]
pub(crate) struct EmuState {
    pub(crate) queue: VecDeque<(String, Vec<u8>)>,
    pub(crate) handed: HashMap<String, Instant>,
    pub(crate) done: HashMap<String, Done>,
    pub(crate) first_next: Option<Instant>,
    pub(crate) init_error: Option<Value>,
    pub(crate) next_id: u64,
}

/// A lean Lambda Runtime API: `/next` (long poll), `/response`, `/error`,
/// `/init/error`. It records when each event is handed out and when its
/// answer arrives.
pub(crate) struct Emulator {
    pub(crate) addr: String,
    pub(crate) state: Arc<(Mutex<EmuState>, Condvar)>,
}

pub(crate) const NEXT: &str = "/2018-06-01/runtime/invocation/next";
pub(crate) const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
pub(crate) const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:crtask-bench";

pub(crate) fn json_body(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into()))
}

impl Emulator {
    pub(crate) fn start() -> Res<Self> {
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
    pub(crate) fn push(&self, event: &Value) -> String {
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
    pub(crate) fn wait(
        &self,
        id: &str,
        timeout: Duration,
        alive: &mut dyn FnMut() -> bool,
    ) -> Res<Done> {
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

    pub(crate) fn first_next(&self) -> Option<Instant> {
        lock(&self.state.0).first_next
    }
}

pub(crate) fn answer(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Message {
    Message {
        first: format!("HTTP/1.1 {status} X"),
        headers,
        body,
        arrived: Instant::now(),
        close: false,
    }
}

pub(crate) fn emulate(state: &(Mutex<EmuState>, Condvar), req: &Message) -> Message {
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
pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) spawned: Instant,
    pub(crate) output: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    pub(crate) fn spawn(binary: &Path, emu: &Emulator, env: &[(String, String)]) -> Res<Self> {
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

    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub(crate) fn log(&self) -> String {
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
