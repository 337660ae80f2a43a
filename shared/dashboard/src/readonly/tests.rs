use super::*;
use axum::body::Body;
use crtask_testkit::{run, task, FixedClock, MemoryStore};
use tower::ServiceExt;

struct FixedLog;

#[async_trait::async_trait]
impl Logs for FixedLog {
    async fn read(&self, run: &Run, offset: u64) -> Result<Vec<u8>> {
        let text = format!("log of {}\n", run.run_id).into_bytes();
        Ok(text.get(offset as usize..).unwrap_or_default().to_vec())
    }
}

async fn app() -> Router {
    let store = Arc::new(MemoryStore::new());
    store.create_task(&task("web")).await.unwrap();
    let mut r = run("ca1");
    r.task = Some("web".into());
    store.insert_run(&r).await.unwrap();
    router(
        store,
        Arc::new(FixedClock::at("2026-03-01T00:00:00Z")),
        Arc::new(FixedLog),
        Access::new(Secret::new("t0ken")),
    )
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    auth: Option<&str>,
    host: &str,
) -> (u16, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const DATA: [&str; 9] = [
    "/api/v1/runs",
    "/api/v1/runs/ca1",
    "/api/v1/runs/ca1/log",
    "/api/v1/tasks",
    "/api/v1/tasks/web",
    "/api/v1/tasks/web/dependencies",
    "/api/v1/events",
    "/api/v1/graph",
    "/api/v1/timers",
];

#[tokio::test]
async fn data_needs_the_token_assets_do_not() {
    let app = app().await;
    for path in DATA {
        let (status, body) = call(&app, "GET", path, None, "127.0.0.1:1").await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("needs a token"), "{body}");
        let (status, body) = call(&app, "GET", path, Some("Bearer nope"), "127.0.0.1:1").await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, body) = call(&app, "GET", path, Some("Bearer t0ken"), "127.0.0.1:1").await;
        assert_eq!(status, 200, "{path}: {body}");
        // A page reaching loopback through its own DNS name is refused.
        let (status, _) = call(&app, "GET", path, Some("Bearer t0ken"), "evil.example:80").await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, body) = call(&app, "GET", "/", None, "localhost:1").await;
    assert_eq!(status, 200);
    assert!(body.contains("crtask"), "{body}");
}

#[tokio::test]
async fn answers_have_the_api_shapes_and_nothing_changes() {
    let app = app().await;
    let auth = Some("Bearer t0ken");
    let (_, body) = call(&app, "GET", "/api/v1/runs", auth, "localhost").await;
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs[0]["runId"], "ca1");
    assert!(runs[0].get("spec").is_none(), "run_json drops the spec");
    let (_, body) = call(
        &app,
        "GET",
        "/api/v1/runs/ca1/log?offset=4",
        auth,
        "localhost",
    )
    .await;
    assert_eq!(body, "of ca1\n");
    let (status, body) = call(&app, "GET", "/api/v1/runs/nope", auth, "localhost").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(&app, "GET", "/api/v1/runs?status=bogus", auth, "localhost").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown run status"), "{body}");
    for (method, path) in [
        ("POST", "/api/v1/tasks"),
        ("DELETE", "/api/v1/tasks/web"),
        ("POST", "/api/v1/runs/ca1/cancel"),
    ] {
        let (status, _) = call(&app, method, path, auth, "localhost").await;
        assert!(status == 405 || status == 404, "{method} {path}: {status}");
    }
    let (_, body) = call(&app, "GET", "/api/v1/tasks/web", auth, "localhost").await;
    assert!(body.contains("\"web\""), "the task is still there: {body}");
}
