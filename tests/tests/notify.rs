//! Notifications out, end to end: the real crtask binary, buildah and the
//! distribution registry, and small HTTP receivers in this test that check
//! the signature as a user's receiver would (HMAC-SHA256 of the raw body,
//! computed here with the `hmac` crate, not crtask's code).

use crtask_tests::{free_port, show, write_files, Registry, Server};
use hmac::{KeyInit, Mac};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "notify-test-secret";

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether `X-Crtask-Signature` is `sha256=<hex HMAC-SHA256(secret, body)>`.
    fn signed_with(&self, secret: &str) -> bool {
        let Some(sig) = self
            .header("X-Crtask-Signature")
            .and_then(|s| s.strip_prefix("sha256="))
        else {
            return false;
        };
        let Ok(digest) = hex::decode(sig) else {
            return false;
        };
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&digest).is_ok()
    }
}

/// A receiver answering 200 to every POST, recording what it got.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        Self::on(free_port())
    }

    fn on(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(r) = read_request(stream) {
                    sink.lock().unwrap().push(r);
                }
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            got,
        }
    }

    /// Waits until `n` requests arrived (at most `secs`).
    fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "{} of {n} notifications arrived at {}",
                got.len(),
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read_request(stream: TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(Received { headers, body })
}

/// A receiver that accepts connections and never answers.
fn hanging_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    format!("http://127.0.0.1:{port}/hook")
}

fn secret_file(dir: &std::path::Path) -> String {
    let f = dir.join("notify.secret");
    std::fs::write(&f, format!("{SECRET}\n")).unwrap();
    f.display().to_string()
}

/// A task `app` building a `FROM scratch` image from a local directory.
fn create_task(srv: &Server, ctx: &std::path::Path, extra: &[&str]) {
    write_files(
        ctx,
        &[
            ("Dockerfile", "FROM scratch\nCOPY hello.txt /hello.txt\n"),
            ("hello.txt", "hello\n"),
        ],
    );
    let mut args = vec![
        "task",
        "create",
        "-n",
        "app",
        "-c",
        ctx.to_str().unwrap(),
        "-t",
        "app:{{.Run.ID}}",
    ];
    args.extend(extra);
    let out = srv.cli(&args);
    assert!(out.status.success(), "{}", show(&out));
}

/// Runs task `app` to its end; returns the run.
fn run_task(srv: &Server) -> serde_json::Value {
    let out = srv.cli(&["task", "run", "-n", "app", "--no-wait", "-o", "json"]);
    assert!(out.status.success(), "{}", show(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = run["runId"].as_str().unwrap().to_string();
    srv.wait_status(&id, 300, |s| s == "Succeeded").unwrap()
}

fn notifications(srv: &Server, run: &str) -> Vec<serde_json::Value> {
    let v = srv
        .cli_json(&["task", "notifications", "--run-id", run])
        .unwrap();
    v.as_array().unwrap().clone()
}

/// Polls the run's notifications until `pred` holds (at most `secs`).
fn wait_notifications(
    srv: &Server,
    run: &str,
    secs: u64,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let list = notifications(srv, run);
        if pred(&list) {
            return list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "notifications of {run} never got there: {list:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn to<'a>(list: &'a [serde_json::Value], url: &str) -> Vec<&'a serde_json::Value> {
    list.iter().filter(|n| n["url"] == url).collect()
}

#[test]
fn signed_start_and_end_notifications_for_a_real_run() {
    let reg = Registry::start().unwrap();
    let server_wide = Receiver::start();
    let per_task = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let srv = Server::start(
        &reg,
        &[
            "--notify",
            &server_wide.url,
            "--notify-secret-file",
            &secret,
        ],
    )
    .unwrap();
    create_task(&srv, &dir.path().join("ctx"), &["--notify", &per_task.url]);
    let shown = srv.cli(&["task", "show", "-n", "app"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout)
            .contains(&format!("Notify:                {}", per_task.url)),
        "{}",
        show(&shown)
    );

    let run = run_task(&srv);
    let id = run["runId"].as_str().unwrap();
    let digest = run["outputImages"][0]["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"), "{run}");

    for receiver in [&server_wide, &per_task] {
        let got = receiver.wait_for(2, 60);
        assert_eq!(got.len(), 2, "{got:?}");
        for r in &got {
            assert!(r.signed_with(SECRET), "bad signature: {r:?}");
            assert!(!r.signed_with("another secret"));
            assert_eq!(r.header("Content-Type"), Some("application/json"));
            assert_eq!(r.header("X-Crtask-Attempt"), Some("1"));
        }
        let (start, end) = (&got[0], &got[1]);
        assert_eq!(start.header("X-Crtask-Event"), Some("run.started"));
        assert_eq!(end.header("X-Crtask-Event"), Some("run.finished"));
        assert_ne!(
            start.header("X-Crtask-Delivery"),
            end.header("X-Crtask-Delivery")
        );
        let (s, e) = (start.json(), end.json());
        assert_eq!(s["event"], "run.started");
        assert_eq!(s["runId"], id);
        assert_eq!(s["task"], "app");
        assert_eq!(s["status"], "Running");
        assert_eq!(s["trigger"]["type"], "Manual");
        assert_eq!(s["outputImages"], serde_json::json!([]));
        assert_eq!(e["event"], "run.finished");
        assert_eq!(e["status"], "Succeeded");
        assert_eq!(e["runType"], run["runType"]);
        assert_eq!(e["outputImages"][0]["digest"], digest);
        assert_eq!(e["outputImages"][0]["tag"], id);
        assert_eq!(e["error"], serde_json::Value::Null);
        assert!(e.get("spec").is_none());
    }

    let list = wait_notifications(&srv, id, 30, |l| {
        l.len() == 4 && l.iter().all(|n| n["state"] == "delivered")
    });
    for n in &list {
        let attempts = n["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{n}");
        assert_eq!(attempts[0]["httpStatus"], 200);
        assert_eq!(attempts[0]["number"], 1);
    }
    let table = srv.cli(&["task", "notifications", "--run-id", id]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("run.finished") && text.contains("HTTP 200"),
        "{text}"
    );
}

#[test]
fn a_receiver_that_is_down_or_hangs_delays_nothing() {
    let reg = Registry::start().unwrap();
    let down_port = free_port();
    let down = format!("http://127.0.0.1:{down_port}/hook");
    let hang = hanging_receiver();
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let mut srv = Server::start(
        &reg,
        &[
            "--notify",
            &down,
            "--notify",
            &hang,
            "--notify-secret-file",
            &secret,
            "--notify-backoff",
            "1",
            "--notify-timeout",
            "2",
            "--notify-attempts",
            "20",
        ],
    )
    .unwrap();
    create_task(&srv, &dir.path().join("ctx"), &[]);

    // The run ends while no receiver has taken a single notification.
    let run = run_task(&srv);
    let id = run["runId"].as_str().unwrap().to_string();
    let list = notifications(&srv, &id);
    assert_eq!(list.len(), 4, "{list:#?}");
    assert!(list.iter().all(|n| n["state"] == "pending"), "{list:#?}");

    // Each failed attempt is recorded with its reason.
    let list = wait_notifications(&srv, &id, 60, |l| {
        l.iter()
            .all(|n| !n["attempts"].as_array().unwrap().is_empty())
    });
    for n in to(&list, &down) {
        let a = &n["attempts"][0];
        assert_eq!(a["httpStatus"], serde_json::Value::Null);
        let e = a["error"].as_str().unwrap();
        assert!(e.contains("cannot connect"), "{e}");
        assert_eq!(n["state"], "pending");
    }
    for n in to(&list, &hang) {
        let e = n["attempts"][0]["error"].as_str().unwrap();
        assert_eq!(e, "no answer within 2 s");
    }

    // A crash with deliveries pending loses none: after a restart, and
    // once the receiver is up, both notifications arrive, signed.
    srv.kill();
    let receiver = Receiver::on(down_port);
    srv.restart().unwrap();
    let got = receiver.wait_for(2, 120);
    assert!(got.iter().all(|r| r.signed_with(SECRET)), "{got:?}");
    let mut events: Vec<String> = got
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    events.sort();
    assert_eq!(events, ["run.finished", "run.started"]);
    let list = wait_notifications(&srv, &id, 30, |l| {
        to(l, &down).iter().all(|n| n["state"] == "delivered")
    });
    for n in to(&list, &down) {
        let attempts = n["attempts"].as_array().unwrap();
        assert!(attempts.len() >= 2, "{n}");
        assert_eq!(attempts.last().unwrap()["httpStatus"], 200);
        assert!(attempts[..attempts.len() - 1]
            .iter()
            .all(|a| a["error"].is_string()));
    }
    // The hanging receiver's deliveries are still being retried.
    for n in to(&list, &hang) {
        assert_ne!(n["state"], "delivered", "{n}");
    }
}

#[test]
fn bad_notification_urls_are_refused() {
    let reg = Registry::start().unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let cases = [
        ("ftp://example.com/x", "must start with http:// or https://"),
        ("example.com/hook", "is not a URL"),
        ("https://bob:pw@example.com/", "contains credentials"),
        (
            "http://x/\u{1b}[2J",
            "'http://x/\\u{1b}[2J' contains whitespace or control characters",
        ),
    ];
    for (url, want) in cases {
        let out = srv.cli(&[
            "task",
            "create",
            "-n",
            "bad",
            "-c",
            ctx.to_str().unwrap(),
            "--notify",
            url,
        ]);
        assert!(!out.status.success(), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{url:?}: {err}");
        assert!(!err.contains('\u{1b}'), "raw escape printed: {err:?}");
    }
    let out = srv.cli(&["task", "show", "-n", "bad"]);
    assert!(
        !out.status.success(),
        "a refused task was stored: {}",
        show(&out)
    );

    // An update with a bad URL changes nothing.
    let out = srv.cli(&[
        "task",
        "create",
        "-n",
        "ok",
        "-c",
        ctx.to_str().unwrap(),
        "--notify",
        "http://127.0.0.1:9/a",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let out = srv.cli(&["task", "update", "-n", "ok", "--notify", "gopher://x"]);
    assert!(!out.status.success(), "{}", show(&out));
    let t = srv.cli_json(&["task", "show", "-n", "ok"]).unwrap();
    assert_eq!(t["notify"], serde_json::json!(["http://127.0.0.1:9/a"]));

    // The server refuses to start with one.
    let data = dir.path().join("data");
    let out = std::process::Command::new(crtask_tests::crtask_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--notify", "file:///etc/passwd"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "--notify: notification URL 'file:///etc/passwd' must start with http:// or https://"
        ),
        "{err}"
    );
}
