//! The local server's two routers, assembled as `crtask serve` assembles
//! them ([`Platform::assemble`] on a temporary data directory, then
//! [`Platform::public_router`] and [`Platform::api_router`]), called in
//! process with `tower::ServiceExt::oneshot`: no socket, no build (nothing
//! here reaches a worker). `listeners.rs` does the same over TCP.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use crtask_local::config::ServerSettings;
use crtask_local::platform::Platform;
use crtask_testkit::{sign, GithubPush, TaskBuilder};
use serde_json::{json, Value};
use tower::ServiceExt;

const SECRET: &str = "router-test-secret";
const BODY_LIMIT: usize = 4096;

struct App {
    /// The public listener's router (webhooks, healthz).
    public: Router,
    /// The management API's router.
    api: Router,
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
    app_with(|_| {}).await
}

/// An app whose settings `tweak` may change (the data dir is set).
async fn app_with(tweak: impl FnOnce(&mut ServerSettings)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("git-webhook-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let mut settings = ServerSettings {
        data_dir: Some(dir.path().join("data")),
        git_webhook_secret_file: vec![secret],
        webhook_body_limit: Some(BODY_LIMIT),
        poll_interval: Some(0),
        workers: Some(1),
        ..Default::default()
    };
    tweak(&mut settings);
    let platform = Platform::assemble(settings).await.unwrap();
    App {
        public: platform.public_router(),
        api: platform.api_router(),
        _dir: dir,
    }
}

/// The answer of `router` to `req`.
async fn answer(router: &Router, req: Request<Body>) -> Answer {
    let resp = router.clone().oneshot(req).await.unwrap();
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

impl App {
    /// A call to the management API's router.
    async fn call(&self, req: Request<Body>) -> Answer {
        answer(&self.api, req).await
    }

    /// A call to the public router.
    async fn call_public(&self, req: Request<Body>) -> Answer {
        answer(&self.public, req).await
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
        self.call_public(req.body(Body::from(body)).unwrap()).await
    }
}

/// A GitHub push of `main` in `acme/<repo>`.
fn push_body(repo: &str) -> Vec<u8> {
    GithubPush::new(
        &format!("https://github.com/acme/{repo}.git"),
        "main",
        "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f",
    )
    .body()
}

fn is_json(a: &Answer) -> bool {
    a.content_type.as_deref() == Some("application/json")
}

#[tokio::test]
async fn healthz_answers_ok_on_both_routers() {
    let app = app().await;
    let a = app.get("/healthz").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "ok\n");
    let a = app
        .call_public(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "ok\n");
}

/// Every route of the management API, as (method, path).
const API_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/contexts"),
    ("POST", "/api/v1/builds"),
    ("GET", "/api/v1/runs"),
    ("GET", "/api/v1/runs/ca1"),
    ("POST", "/api/v1/runs/ca1/cancel"),
    ("GET", "/api/v1/runs/ca1/log"),
    ("GET", "/api/v1/tasks"),
    ("POST", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/web"),
    ("PUT", "/api/v1/tasks/web"),
    ("DELETE", "/api/v1/tasks/web"),
    ("POST", "/api/v1/tasks/web/runs"),
    ("GET", "/api/v1/tasks/web/dependencies"),
    ("GET", "/api/v1/images/dependents?image=base:1"),
    ("GET", "/api/v1/events"),
];

fn request(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn the_public_router_never_serves_the_api() {
    let app = app().await;
    let task = serde_json::to_vec(&TaskBuilder::new("web").build()).unwrap();
    for (method, path) in API_ROUTES {
        let a = app.call_public(request(method, path, task.clone())).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            a.body
        );
        assert!(is_json(&a), "{method} {path}: {:?}", a.content_type);
        let error = a.body["error"].as_str().unwrap_or_default();
        assert!(error.contains("--api-listen"), "{method} {path}: {error}");
    }
    let a = app
        .call_public(Request::get("/api/v1/tasks").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        a.body,
        json!({"error": "the management API is not served on this listener: it answers \
                         on the server's --api-listen address (default 127.0.0.1:7879)"})
    );
    // Spellings that are not the API's path either.
    for path in [
        "/api",
        "//api/v1/tasks",
        "/API/v1/tasks",
        "/webhooks/../api/v1/tasks",
    ] {
        let a = app.call_public(request("POST", path, task.clone())).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            a.body.as_object().map(|o| o.len()),
            Some(1),
            "{path}: {}",
            a.body
        );
    }
    // Nothing was created or started.
    assert_eq!(app.get("/api/v1/tasks").await.body, json!([]));
    assert_eq!(app.get("/api/v1/runs").await.body, json!([]));
}

#[tokio::test]
async fn the_api_router_serves_no_webhooks() {
    let app = app().await;
    let body = push_body("app");
    let mut req = Request::builder().method(Method::POST).uri("/webhooks/git");
    for (k, v) in sign::github_headers("push", "d-1", SECRET, &body) {
        req = req.header(k, v);
    }
    let a = app.call(req.body(Body::from(body)).unwrap()).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        a.body,
        json!({"error": "no such route: POST /webhooks/git"})
    );
    assert_eq!(app.get("/api/v1/events").await.body, json!([]));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_404_and_405() {
    let app = app().await;
    let a = app.get("/api/v1/nothing-here").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(is_json(&a), "{:?}", a.content_type);
    assert_eq!(
        a.body,
        json!({"error": "no such route: GET /api/v1/nothing-here"})
    );
    // A known path with a method it does not serve: 405, `Allow` kept.
    let resp = app
        .api
        .clone()
        .oneshot(Request::delete("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()[header::ALLOW], "GET,HEAD");
    let a = app
        .call(Request::delete("/healthz").body(Body::empty()).unwrap())
        .await;
    assert!(is_json(&a), "{:?}", a.content_type);
    assert_eq!(
        a.body,
        json!({"error": "method DELETE is not allowed on /healthz"})
    );
    let a = app.call(request("PATCH", "/api/v1/tasks/web", "{}")).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        a.body,
        json!({"error": "method PATCH is not allowed on /api/v1/tasks/web"})
    );
    // The public listener: the same shapes.
    let a = app
        .call_public(Request::get("/webhooks/git").body(Body::empty()).unwrap())
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        a.body,
        json!({"error": "method GET is not allowed on /webhooks/git"})
    );
    let a = app
        .call_public(Request::get("/favicon.ico").body(Body::empty()).unwrap())
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(is_json(&a), "{:?}", a.content_type);
    assert_eq!(
        a.body,
        json!({"error": "no such route: this listener serves POST /webhooks/git, \
                         POST /webhooks/registry and GET /healthz"})
    );
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_is_401_json() {
    let app = app().await;
    let body = push_body("app");
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

/// The answer is `{"error": "<message>"}` and nothing else, with `status`,
/// the message starting with `starts`.
fn assert_error(a: &Answer, status: StatusCode, starts: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert!(is_json(a), "{status}: {:?}", a.content_type);
    assert_eq!(a.body.as_object().map(|o| o.len()), Some(1), "{}", a.body);
    let error = a.body["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(starts), "{status}: {error}");
}

#[tokio::test]
async fn framework_rejections_are_json() {
    let app = app().await;
    // Malformed JSON: 400.
    let a = app.post_json("/api/v1/tasks", "{\"name\": ").await;
    assert_error(
        &a,
        StatusCode::BAD_REQUEST,
        "Failed to parse the request body as JSON",
    );
    // Well-formed JSON that is not a task: 422.
    let a = app.post_json("/api/v1/tasks", "{\"name\": 5}").await;
    assert_error(
        &a,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Failed to deserialize the JSON body",
    );
    // Not JSON at all, or no content type: 415.
    let task = serde_json::to_vec(&TaskBuilder::new("web").build()).unwrap();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = Request::post("/api/v1/tasks");
        if let Some(ct) = ct {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let a = app.call(req.body(Body::from(task.clone())).unwrap()).await;
        assert_error(
            &a,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected request with",
        );
    }
    // Over axum's JSON body limit (2 MiB): 413.
    let big = format!("{{\"name\": \"{}\"}}", "a".repeat(3 << 20));
    let a = app.post_json("/api/v1/tasks", big).await;
    assert_error(
        &a,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Failed to buffer the request body",
    );
    // A query parameter of the wrong type: 400.
    let a = app.get("/api/v1/runs?top=many").await;
    assert_error(
        &a,
        StatusCode::BAD_REQUEST,
        "Failed to deserialize query string",
    );
    let a = app.get("/api/v1/images/dependents").await;
    assert_error(
        &a,
        StatusCode::BAD_REQUEST,
        "Failed to deserialize query string",
    );
    // A body on a task run that is not the run request: 422, JSON.
    let a = app
        .call(request("POST", "/api/v1/tasks/web/runs", "{\"values\": 3}"))
        .await;
    assert_error(
        &a,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Failed to deserialize",
    );
    // Nothing was created.
    assert_eq!(app.get("/api/v1/tasks").await.body, json!([]));
    assert_eq!(app.get("/api/v1/runs").await.body, json!([]));
}

#[tokio::test]
async fn handler_errors_stay_as_they_were() {
    let app = app().await;
    let a = app.get("/api/v1/runs/ca404").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body, json!({"error": "run 'ca404' not found"}));
    let a = app.get("/api/v1/runs?status=Sleeping").await;
    assert_error(&a, StatusCode::BAD_REQUEST, "");
}

/// An app whose API needs `TOKEN`, and the token file.
async fn app_with_token() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-token");
    std::fs::write(&file, format!("{API_TOKEN}\n")).unwrap();
    let app = app_with(|s| s.api_token_file = vec![file]).await;
    (app, dir)
}

const API_TOKEN: &str = "api-test-token-0123456789";

fn with_auth(mut req: Request<Body>, auth: &str) -> Request<Body> {
    req.headers_mut()
        .insert(header::AUTHORIZATION, auth.parse().unwrap());
    req
}

#[tokio::test]
async fn with_a_token_file_every_api_route_needs_the_token() {
    let (app, _dir) = app_with_token().await;
    let task = serde_json::to_vec(&TaskBuilder::new("web").build()).unwrap();
    for (method, path) in API_ROUTES {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic YTpi"),
            Some(API_TOKEN),
        ] {
            let mut req = request(method, path, task.clone());
            if let Some(a) = auth {
                req = with_auth(req, a);
            }
            let a = app.call(req).await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {auth:?}"
            );
            assert!(is_json(&a));
            assert_eq!(a.body.as_object().map(|o| o.len()), Some(1), "{}", a.body);
        }
    }
    let a = app.get("/api/v1/tasks").await;
    assert_eq!(
        a.body,
        json!({"error": "this API needs a token: send Authorization: Bearer <token>"})
    );
    let resp = app
        .api
        .clone()
        .oneshot(with_auth(
            Request::get("/api/v1/tasks").body(Body::empty()).unwrap(),
            "Bearer wrong",
        ))
        .await
        .unwrap();
    assert_eq!(
        resp.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"crtask\""
    );
    // Nothing refused was done.
    let list = with_auth(
        Request::get("/api/v1/tasks").body(Body::empty()).unwrap(),
        &format!("Bearer {API_TOKEN}"),
    );
    let a = app.call(list).await;
    assert_eq!((a.status, a.body), (StatusCode::OK, json!([])));
    // The right token works; healthz needs none.
    let create = with_auth(
        request("POST", "/api/v1/tasks", task),
        &format!("Bearer {API_TOKEN}"),
    );
    let a = app.call(create).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    // The webhooks (public router) do not take the API token: their own proof.
    // (Another repository: nothing is built.)
    let body = push_body("other");
    let a = app
        .webhook(&sign::github_headers("push", "d-2", SECRET, &body), body)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
}

#[tokio::test]
async fn an_open_api_off_loopback_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    for addr in ["0.0.0.0:7879", "[::]:7879", "192.0.2.1:7879"] {
        let settings = ServerSettings {
            data_dir: Some(dir.path().join("data")),
            api_listen: Some(addr.into()),
            poll_interval: Some(0),
            ..Default::default()
        };
        let e = Platform::assemble(settings)
            .await
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("needs --api-token-file"), "{addr}: {e}");
        // Refused before anything was set up.
        assert!(!dir.path().join("data").exists());
    }
    let settings = ServerSettings {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:7000".into()),
        api_listen: Some("127.0.0.1:7000".into()),
        ..Default::default()
    };
    let e = Platform::assemble(settings)
        .await
        .err()
        .map(|e| e.to_string());
    assert!(e.unwrap_or_default().contains("its own address"));
}

#[tokio::test]
async fn an_open_api_refuses_foreign_host_names() {
    let app = app().await;
    let req = |host: &str| {
        Request::post("/api/v1/tasks")
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::to_vec(&TaskBuilder::new("web").build()).unwrap(),
            ))
            .unwrap()
    };
    // A page on a rebound name reaching 127.0.0.1 sends its own name.
    let a = app.call(req("rebind.example:7879")).await;
    assert_error(&a, StatusCode::FORBIDDEN, "without --api-token-file");
    assert_eq!(app.get("/api/v1/tasks").await.body, json!([]));
    let a = app.call(req("localhost:7879")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
}
