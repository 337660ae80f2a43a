//! The local server's router, assembled as `crtask serve` assembles it
//! ([`Platform::assemble`] on a temporary data directory, then [`router`]),
//! called in process with `tower::ServiceExt::oneshot`: no socket, no
//! build (nothing here reaches a worker).

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use crtask_local::config::ServerSettings;
use crtask_local::platform::Platform;
use crtask_local::server::router;
use crtask_testkit::{sign, GithubPush, TaskBuilder};
use serde_json::{json, Value};
use tower::ServiceExt;

const SECRET: &str = "router-test-secret";
const BODY_LIMIT: usize = 4096;

struct App {
    router: Router,
    _dir: tempfile::TempDir,
}

/// What the server answered: status, content type, body (JSON when it
/// parses, else the text as a JSON string).
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Value,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("git-webhook-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let settings = ServerSettings {
        data_dir: Some(dir.path().join("data")),
        git_webhook_secret_file: vec![secret],
        webhook_body_limit: Some(BODY_LIMIT),
        poll_interval: Some(0),
        workers: Some(1),
        ..Default::default()
    };
    let platform = Platform::assemble(settings).await.unwrap();
    App {
        router: router(platform.state),
        _dir: dir,
    }
}

impl App {
    async fn call(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer {
            status,
            content_type,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post_json(&self, uri: &str, body: impl Into<Body>) -> Answer {
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap();
        self.call(req).await
    }

    async fn webhook(&self, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        let mut req = Request::builder().method(Method::POST).uri("/webhooks/git");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        self.call(req.body(Body::from(body)).unwrap()).await
    }
}

fn is_json(a: &Answer) -> bool {
    a.content_type.as_deref() == Some("application/json")
}

#[tokio::test]
async fn healthz_answers_ok() {
    let a = app().await.get("/healthz").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "ok\n");
}

#[tokio::test]
async fn an_unknown_route_is_404_with_an_empty_body() {
    let app = app().await;
    let a = app.get("/api/v1/nothing-here").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // axum's fallback: no body at all (not the `{"error"}` shape).
    assert_eq!(a.body, "");
    // A known path with a method it does not serve.
    let a = app
        .call(Request::delete("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_is_401_json() {
    let app = app().await;
    let body = GithubPush::new(
        "https://github.com/acme/app.git",
        "main",
        "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f",
    )
    .body();
    let a = app
        .webhook(
            &sign::github_headers("push", "d-1", "not-the-secret", &body),
            body,
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(is_json(&a), "{:?}", a.content_type);
    let reason = "signature does not match any configured webhook secret";
    assert_eq!(
        a.body,
        json!({"outcome": "rejected", "reason": reason, "error": reason, "runs": []})
    );
    // Recorded, and nothing queued.
    let events = app.get("/api/v1/events?source=git").await;
    assert_eq!(
        events.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        events.body
    );
    assert_eq!(events.body[0]["outcome"], "rejected");
    assert_eq!(app.get("/api/v1/runs").await.body, json!([]));
}

#[tokio::test]
async fn an_oversized_webhook_body_is_413_json() {
    let app = app().await;
    let body = vec![b' '; BODY_LIMIT + 1];
    let a = app
        .webhook(&sign::github_headers("push", "d-1", SECRET, &body), body)
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(is_json(&a), "{:?}", a.content_type);
    let reason = format!("body is over the limit of {BODY_LIMIT} bytes");
    assert_eq!(
        a.body,
        json!({"outcome": "rejected", "reason": reason, "error": reason, "runs": []})
    );
}

#[tokio::test]
async fn tasks_are_created_and_listed() {
    let app = app().await;
    let task = TaskBuilder::new("web").branch("main").build();
    let body = serde_json::to_vec(&task).unwrap();
    let a = app.post_json("/api/v1/tasks", body.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert!(is_json(&a));
    assert_eq!(a.body["name"], "web");
    assert_eq!(a.body["context"], "https://github.com/acme/app.git#main");
    assert_eq!(a.body["images"], json!(["app:{{.Run.ID}}"]));
    assert_eq!(a.body["branch"], "main");
    // The server sets the creation time.
    assert_ne!(a.body["createTime"], json!("2023-11-14T22:13:20.000Z"));

    let list = app.get("/api/v1/tasks").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body, json!([a.body]));

    let again = app.post_json("/api/v1/tasks", body).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body, json!({"error": "task 'web' already exists"}));
    let missing = app.get("/api/v1/tasks/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, json!({"error": "task 'nope' not found"}));
}

#[tokio::test]
async fn a_malformed_json_body_is_400_plain_text() {
    let app = app().await;
    let a = app.post_json("/api/v1/tasks", "{\"name\": ").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Today axum's own rejection answers, as text, not the documented
    // `{"error": ...}` shape (docs/API.md).
    assert_eq!(a.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let text = a.body.as_str().unwrap_or_default();
    assert!(
        text.starts_with("Failed to parse the request body as JSON"),
        "{text}"
    );
    // Well-formed JSON that is not a task: 422, text as well.
    let a = app.post_json("/api/v1/tasks", "{\"name\": 5}").await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert!(app.get("/api/v1/tasks").await.body == json!([]));
}
