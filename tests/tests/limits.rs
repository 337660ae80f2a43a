//! `crtask serve` under stalled, oversized and hostile traffic: the
//! connection cap and timeouts, webhook bodies refused unread, the memory
//! budget, and the limits on uploaded contexts. Real server process, raw
//! sockets for the misbehaving clients.

use crtask_tests::{github_signature, post_webhook, Registry, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SECRET: &str = "limits-test-secret";

struct Fixture {
    _reg: Registry,
    srv: Server,
    _secret: tempfile::TempDir,
}

fn fixture(extra: &[&str]) -> Fixture {
    let reg = Registry::start().unwrap_or_else(|e| panic!("registry: {e:#}"));
    let secret = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = secret.path().join("secret");
    std::fs::write(&file, SECRET).unwrap_or_else(|e| panic!("write: {e}"));
    let mut args = vec![
        "--git-webhook-secret-file".to_string(),
        file.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let srv = Server::start(&reg, &args).unwrap_or_else(|e| panic!("server: {e:#}"));
    Fixture {
        _reg: reg,
        srv,
        _secret: secret,
    }
}

fn addr(srv: &Server) -> String {
    srv.url.trim_start_matches("http://").to_string()
}

fn connect(srv: &Server) -> TcpStream {
    let s = TcpStream::connect(addr(srv)).unwrap_or_else(|e| panic!("connect: {e}"));
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    s
}

/// A line of /proc/PID/status in KiB (`VmHWM`: peak RSS; `VmRSS`).
fn proc_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// This process's soft open-file limit, from /proc (no unsafe rlimit call).
fn open_file_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(1024)
}

fn ping(srv: &Server) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"zen": "Keep it logically awesome.", "hook_id": 1}))
        .unwrap_or_default();
    post_webhook(
        &format!("{}/webhooks/git", srv.url),
        &[
            ("X-GitHub-Event", "ping".to_string()),
            ("X-GitHub-Delivery", format!("d-{}", body.len())),
            ("Content-Type", "application/json".to_string()),
            ("X-Hub-Signature-256", github_signature(SECRET, &body)),
        ],
        &body,
    )
    .unwrap_or_else(|e| panic!("signed ping: {e:#}"))
}

fn healthz(srv: &Server) -> u16 {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .and_then(|c| c.get(format!("{}/healthz", srv.url)).send())
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|e| panic!("healthz: {e}"))
}

/// The status code and the whole answer of a raw exchange, reading until
/// the answer is complete, the server closes, or the read timeout passes.
fn read_answer(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                let text = String::from_utf8_lossy(&buf);
                // One whole answer with a Content-Length body is enough.
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(usize::MAX);
                    if body.len() >= len {
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn a_thousand_stalled_connections_leave_healthz_and_signed_pushes_answering() {
    // Timeouts far longer than the test: only the cap and eviction can help.
    let f = fixture(&[
        "--max-connections",
        "200",
        "--header-timeout",
        "300",
        "--idle-timeout",
        "300",
    ]);
    let n = 1000.min(open_file_limit().saturating_sub(200) as usize);
    assert!(n >= 500, "this test needs at least 700 open files");
    let mut stalled = Vec::with_capacity(n);
    for i in 0..n {
        let Ok(mut s) = TcpStream::connect(addr(&f.srv)) else {
            continue;
        };
        // Half send nothing, half half a request.
        if i % 2 == 0 {
            let _ = s.write_all(b"POST /webhooks/git HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: pu");
        }
        stalled.push(s);
    }
    assert!(stalled.len() >= n / 2, "only {} connected", stalled.len());
    for _ in 0..3 {
        assert_eq!(healthz(&f.srv), 200);
        let (code, body) = ping(&f.srv);
        assert_eq!(code, 202, "{body}");
        assert!(body.to_string().contains("ping"), "{body}");
    }
    // The server holds no more sockets than its cap (plus its own files).
    let pid = f.srv.pid().unwrap_or_else(|| panic!("server not running"));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(fds <= 200 + 128, "{fds} descriptors open with a cap of 200");
    drop(stalled);
    assert_eq!(healthz(&f.srv), 200);
}

/// Sends the headers and (from another thread) up to `len` bytes of body,
/// then reads the answer.
fn post_big(srv: &Server, headers: &str, len: usize) -> (u16, String) {
    let mut s = connect(srv);
    let head = format!(
        "POST /webhooks/git HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: push\r\nX-GitHub-Delivery: big\r\n{headers}Content-Length: {len}\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut w = s.try_clone().unwrap_or_else(|e| panic!("clone: {e}"));
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0;
        while sent < len {
            let n = chunk.len().min(len - sent);
            if w.write_all(chunk.get(..n).unwrap_or_default()).is_err() {
                break; // the server answered and closed without reading it all
            }
            sent += n;
        }
    });
    let answer = read_answer(&mut s);
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    answer
}

#[test]
fn oversized_bodies_are_refused_unread_or_within_the_memory_budget() {
    let f = fixture(&[]);
    let pid = f.srv.pid().unwrap_or_else(|| panic!("server not running"));
    let before = proc_kib(pid, "VmRSS");
    const BODY: usize = 25 << 20;
    let run = |headers: &'static str| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..32)
                .map(|_| scope.spawn(|| post_big(&f.srv, headers, BODY)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or((0, String::new())))
                .collect::<Vec<_>>()
        })
    };
    // No signature header at all: 401 before the body is read.
    for (code, text) in run("") {
        assert_eq!(code, 401, "{text}");
        assert!(text.contains("\"error\""), "a JSON error: {text}");
        assert!(text.contains("missing X-Hub-Signature-256"), "{text}");
    }
    eprintln!(
        "peak RSS after the unsigned bodies: {} KiB",
        proc_kib(pid, "VmHWM")
    );
    // A (forged) signature: read within the budget, then refused by the check.
    for (code, text) in run("X-Hub-Signature-256: sha256=00\r\n") {
        assert!(code == 401 || code == 503, "{text}");
        assert!(text.contains("\"error\""), "a JSON error: {text}");
    }
    let peak = proc_kib(pid, "VmHWM");
    eprintln!("server RSS before {before} KiB, peak {peak} KiB");
    assert!(
        peak < 150 * 1024,
        "peak RSS {peak} KiB (before: {before} KiB) over 150 MiB"
    );
    assert_eq!(healthz(&f.srv), 200);
    assert_eq!(ping(&f.srv).0, 202);
}

#[test]
fn slow_clients_are_cut_off_by_the_timeouts() {
    let f = fixture(&[
        "--header-timeout",
        "2",
        "--idle-timeout",
        "3",
        "--body-timeout",
        "2",
    ]);
    // Slowloris: a header line every 300 ms, never the end of the headers.
    let mut s = connect(&f.srv);
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    let start = Instant::now();
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(300));
        if s.write_all(b"X-Slow: 1\r\n").is_err() {
            closed = true;
            break;
        }
        let _ = s.set_nonblocking(true);
        let mut b = [0u8; 512];
        let gone = matches!(s.read(&mut b), Ok(0))
            || matches!(s.read(&mut b), Err(e) if e.kind() != std::io::ErrorKind::WouldBlock);
        let _ = s.set_nonblocking(false);
        if gone {
            closed = true;
            break;
        }
    }
    assert!(closed, "a client dripping headers was never cut off");

    // Idle: after one answer, the connection is closed when nothing follows.
    let mut s = connect(&f.srv);
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let (code, _) = read_answer(&mut s);
    assert_eq!(code, 200);
    let mut b = [0u8; 64];
    assert!(
        matches!(s.read(&mut b), Ok(0) | Err(_)),
        "an idle keep-alive connection stays open"
    );

    // Body: headers promise 1000 bytes, 10 come, then nothing (an upload,
    // on the management API's listener).
    let mut s = TcpStream::connect(f.srv.api.trim_start_matches("http://"))
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let _ = s.write_all(
        b"POST /api/v1/contexts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n0123456789",
    );
    let (code, text) = read_answer(&mut s);
    assert_eq!(code, 408, "{text}");
    assert!(text.contains("not received within 2 s"), "{text}");
    assert_eq!(healthz(&f.srv), 200);
}

/// A tar.gz of the given regular files.
fn targz(entries: impl IntoIterator<Item = (String, Vec<u8>)>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_slice())
            .unwrap_or_else(|e| panic!("append: {e}"));
    }
    b.into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_else(|e| panic!("gzip: {e}"))
}

fn upload(srv: &Server, archive: Vec<u8>) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/contexts", srv.api))
        .body(archive)
        .send()
        .unwrap_or_else(|e| panic!("upload: {e}"));
    let code = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn uploads_left(srv: &Server) -> Vec<String> {
    std::fs::read_dir(srv.data.join("contexts"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn upload_limits_each_give_a_specific_answer_and_leave_nothing_behind() {
    let f = fixture(&[
        "--context-max-entries",
        "1000",
        "--context-disk-limit",
        "8388608",
        "--upload-max-age",
        "2",
    ]);
    // 200,000 empty files: a small tarball, refused by the entry count.
    let bomb = targz((0..200_000).map(|i| (format!("f{i}"), Vec::new())));
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    let (code, body) = upload(&f.srv, bomb);
    assert_eq!(code, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("more than 1000 entries")),
        "{body}"
    );

    // A 5,000-character name: 400, not 500.
    let (code, body) = upload(&f.srv, targz([("n".repeat(5000), b"x".to_vec())]));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("its path is 5000 bytes long")),
        "{body}"
    );

    // Ten 1 MiB files fit the entry count and the content limit, not 8 MiB on disk.
    let (code, body) = upload(
        &f.srv,
        targz((0..10).map(|i| (format!("e{i}"), vec![0u8; 1 << 20]))),
    );
    assert_eq!(code, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("8388608 bytes on disk")),
        "{body}"
    );
    assert!(
        uploads_left(&f.srv).is_empty(),
        "{:?}",
        uploads_left(&f.srv)
    );

    // A good upload no run takes is deleted once it is older than the age.
    let (code, body) = upload(
        &f.srv,
        targz([("Dockerfile".to_string(), b"FROM x\n".to_vec())]),
    );
    assert_eq!(code, 201, "{body}");
    let id = body["id"].as_str().unwrap_or_default().to_string();
    assert!(uploads_left(&f.srv).contains(&id));
    let start = Instant::now();
    while uploads_left(&f.srv).contains(&id) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !uploads_left(&f.srv).contains(&id),
        "upload {id} still there after a minute with --upload-max-age 2"
    );
}
