//! The two listeners over TCP: the routers `crtask serve` builds, served by
//! `listener::serve` on loopback sockets, and raw HTTP/1.1 requests written
//! to them (no client library smoothing anything over).

use crtask_local::config::ServerSettings;
use crtask_local::listener;
use crtask_local::platform::Platform;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const API_TOKEN: &str = "listener-test-token";

struct Listeners {
    public: SocketAddr,
    api: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Both listeners on free loopback ports; with `token`, the API needs it.
async fn start(token: bool) -> Listeners {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = ServerSettings {
        data_dir: Some(dir.path().join("data")),
        poll_interval: Some(0),
        workers: Some(1),
        ..Default::default()
    };
    if token {
        let f = dir.path().join("api-token");
        std::fs::write(&f, API_TOKEN).unwrap();
        settings.api_token_file = vec![f];
    }
    let platform = Platform::assemble(settings).await.unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let public = listener::bind(loopback, "--listen").await.unwrap();
    let api = listener::bind(loopback, "--api-listen").await.unwrap();
    let (public_addr, api_addr) = (public.local_addr().unwrap(), api.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for (l, router) in [
        (public, platform.public_router()),
        (api, platform.api_router()),
    ] {
        let mut rx = stopped.clone();
        tokio::spawn(async move {
            let limits = crtask_local::limits::Limits::default();
            listener::serve(l, router, &limits, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        });
    }
    Listeners {
        public: public_addr,
        api: api_addr,
        stop,
        _dir: dir,
    }
}

/// Status, headers (lower-case names) and the body as JSON (or a string).
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_json_error(&self) -> bool {
        self.header("content-type") == Some("application/json")
            && self.body.as_object().map(|o| o.len()) == Some(1)
            && self.body["error"].is_string()
    }
}

/// Writes one raw request (`Connection: close` added) and reads the reply.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{head}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // A server may answer (413) before reading all of a large body.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
    Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn the_public_listener_never_serves_the_api() {
    let l = start(false).await;
    let task = br#"{"name": "web", "context": "/dev/null", "images": ["web:1"]}"#;
    for head in [
        "GET /api/v1/tasks HTTP/1.1",
        "POST /api/v1/tasks HTTP/1.1\r\nContent-Type: application/json",
        "GET /api/v1/events HTTP/1.1",
        "DELETE /api/v1/tasks/web HTTP/1.1",
        "GET /api/v1/runs/ca1/log?follow=true HTTP/1.1",
    ] {
        let r = raw(l.public, head, task).await;
        assert_eq!(r.status, 404, "{head}: {}", r.body);
        assert!(r.is_json_error(), "{head}: {:?} {}", r.headers, r.body);
    }
    // The same calls reach the API on its own listener (no token needed on
    // loopback without a token file), and the public ones did nothing.
    let r = raw(l.api, "GET /api/v1/tasks HTTP/1.1", b"").await;
    assert_eq!((r.status, r.body), (200, json!([])));
    // Healthz answers on both.
    for addr in [l.public, l.api] {
        let r = raw(addr, "GET /healthz HTTP/1.1", b"").await;
        assert_eq!((r.status, r.body), (200, json!("ok\n")));
    }
    // And the API listener serves no webhooks.
    let r = raw(l.api, "POST /webhooks/git HTTP/1.1", b"{}").await;
    assert_eq!(r.status, 404);
    assert!(r.is_json_error(), "{}", r.body);
}

#[tokio::test]
async fn every_rejection_is_json_over_tcp() {
    let l = start(false).await;
    let json_ct = "Content-Type: application/json";
    let big = vec![b'x'; 3 << 20];
    let cases: Vec<(SocketAddr, String, &[u8], u16)> = vec![
        (
            l.api,
            format!("POST /api/v1/tasks HTTP/1.1\r\n{json_ct}"),
            b"{\"name\": ",
            400,
        ),
        (
            l.api,
            format!("POST /api/v1/tasks HTTP/1.1\r\n{json_ct}"),
            b"{\"name\": 5}",
            422,
        ),
        (
            l.api,
            "POST /api/v1/tasks HTTP/1.1\r\nContent-Type: text/plain".into(),
            b"{}",
            415,
        ),
        (l.api, "POST /api/v1/tasks HTTP/1.1".into(), b"{}", 415),
        (
            l.api,
            format!("POST /api/v1/tasks HTTP/1.1\r\n{json_ct}"),
            &big,
            413,
        ),
        (l.api, "GET /api/v1/nope HTTP/1.1".into(), b"", 404),
        (l.api, "PATCH /api/v1/tasks HTTP/1.1".into(), b"", 405),
        (l.api, "GET /api/v1/runs?top=-1 HTTP/1.1".into(), b"", 400),
        (l.public, "GET /webhooks/git HTTP/1.1".into(), b"", 405),
        (l.public, "GET /nope HTTP/1.1".into(), b"", 404),
        (l.public, "POST /webhooks/git HTTP/1.1".into(), b"{}", 400),
        (
            l.public,
            "POST /webhooks/registry HTTP/1.1".into(),
            b"{}",
            401,
        ),
    ];
    for (addr, head, body, status) in cases {
        let r = raw(addr, &head, body).await;
        assert_eq!(r.status, status, "{head}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{head}: {}",
            r.body
        );
        assert!(r.body["error"].is_string(), "{head}: {}", r.body);
    }
    let r = raw(l.api, "PUT /healthz HTTP/1.1", b"").await;
    assert_eq!(r.header("allow"), Some("GET,HEAD"));
    let r = raw(l.api, "GET /api/v1/tasks HTTP/1.1", b"").await;
    assert_eq!((r.status, r.body), (200, json!([])), "nothing was created");
}

#[tokio::test]
async fn with_a_token_the_api_answers_401_json_until_it_is_sent() {
    let l = start(true).await;
    let get = "GET /api/v1/tasks HTTP/1.1";
    let r = raw(l.api, get, b"").await;
    assert_eq!(r.status, 401);
    assert!(r.is_json_error(), "{}", r.body);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"crtask\"")
    );
    let r = raw(l.api, &format!("{get}\r\nAuthorization: Bearer nope"), b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"error": "the API token is wrong"}));
    let r = raw(
        l.api,
        &format!("{get}\r\nAuthorization: Bearer {API_TOKEN}"),
        b"",
    )
    .await;
    assert_eq!((r.status, r.body), (200, json!([])));
    // Healthz stays open for probes.
    let r = raw(l.api, "GET /healthz HTTP/1.1", b"").await;
    assert_eq!(r.status, 200);
}
