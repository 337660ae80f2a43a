//! The dashboard in a real headless browser (Chromium over WebDriver),
//! against a real `crtask serve` with an API token, buildah and a registry
//! that notifies the server: a multi-step build runs while the run's page
//! shows its log growing; then every page shows the run, the steps'
//! timeline with their `when` and overlaps, an event with its reason, the
//! tasks' timers and the dependency graph. Data requests without the token
//! are refused. Screenshots go to `CRTASK_SCREENSHOTS` when it is set
//! (docs/img is made that way, see docs/DASHBOARD.md).

use crtask_tests::webdriver::{self, Browser};
use crtask_tests::{free_port, post_webhook, show, write_files, Registry, Server};
use serde_json::Value;
use std::time::{Duration, Instant};

const TOKEN: &str = "dash-token-0123456789";
const HOOK_TOKEN: &str = "registry-hook-token";

const PIPELINE: &str = r#"version: v1.1.0
steps:
  - id: build
    build: -t $Registry/dash-app:$ID -t $Registry/dash-app:latest -f Dockerfile .
  - id: slow
    cmd: $Registry/dash-app:$ID sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo tick-$i; sleep 1; done'
    when: [build]
  - id: lint
    cmd: $Registry/dash-app:$ID sh -c 'echo lint-ok; echo "<img id=xss src=x> is text"; sleep 2'
    when: [build]
  - id: push
    push:
      - $Registry/dash-app:$ID
      - $Registry/dash-app:latest
    when: [slow, lint]
"#;

fn screenshot(b: &Browser, name: &str) {
    let Ok(dir) = std::env::var("CRTASK_SCREENSHOTS") else {
        return;
    };
    let png = b
        .screenshot()
        .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = std::path::Path::new(&dir).join(format!("dashboard-{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn api_get(srv: &Server, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::blocking::Client::new().get(format!("{}{path}", srv.api));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    (status, r.text().unwrap())
}

fn api_json(srv: &Server, path: &str) -> Value {
    let (status, body) = api_get(srv, path, Some(TOKEN));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The log of `run` shows tick `n` (the step prints one a second).
fn ticks(log: &str) -> usize {
    (1..=12)
        .rev()
        .find(|i| log.contains(&format!("tick-{i}\n")) || log.ends_with(&format!("tick-{i}")))
        .unwrap_or(0)
}

#[test]
fn the_dashboard_shows_runs_live_logs_timelines_events_timers_and_the_graph() {
    if let Some(why) = webdriver::missing() {
        eprintln!("skipped: {why}");
        crtask_tests::acr_samples::note_skip(
            "the_dashboard_shows_runs_live_logs_timelines_events_timers_and_the_graph",
        );
        return;
    }
    // A registry that tells the server about pushes; a server with a token.
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/webhooks/registry");
    let reg = Registry::start_with(Some((&hook, HOOK_TOKEN))).unwrap();
    reg.seed("base:1", "v1").unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let api_token = secrets.path().join("api-token");
    std::fs::write(&api_token, format!("{TOKEN}\n")).unwrap();
    let hook_token = secrets.path().join("hook-token");
    std::fs::write(&hook_token, format!("{HOOK_TOKEN}\n")).unwrap();
    let srv = Server::start_on(
        &reg,
        port,
        &[
            "--api-token-file",
            api_token.to_str().unwrap(),
            "--registry-webhook-token-file",
            hook_token.to_str().unwrap(),
            "--poll-interval",
            "0",
            "--settle-window",
            "1",
        ],
    )
    .unwrap();
    srv.await_registry_push(&format!("{}/base:1", reg.host), 60);

    // Data is refused without the token; the page itself is public.
    for path in [
        "/api/v1/runs",
        "/api/v1/tasks",
        "/api/v1/events",
        "/api/v1/graph",
        "/api/v1/timers",
    ] {
        let (status, body) = api_get(&srv, path, None);
        assert_eq!(status, 401, "{path}: {body}");
        let (status, _) = api_get(&srv, path, Some("wrong"));
        assert_eq!(status, 401, "{path}");
    }
    let page = reqwest::blocking::get(format!("{}/", srv.api)).unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().unwrap();
    assert!(!html.contains("dash-app"), "the page holds no data");
    // Not on the public listener.
    let public = reqwest::blocking::get(format!("{}/", srv.url)).unwrap();
    assert_eq!(public.status(), 404);

    // A multi-step task with a timer, and a task built on its output.
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            ("acr-task.yaml", PIPELINE),
            (
                "Dockerfile",
                &format!("FROM {}/base:1\nRUN echo ok > /result\n", reg.host),
            ),
        ],
    );
    let ctx_path = ctx.path().to_str().unwrap();
    let out = srv.cli(&[
        "task",
        "create",
        "--name",
        "pipeline",
        "-c",
        ctx_path,
        "-f",
        "acr-task.yaml",
        "--schedule",
        "nightly:0 2 * * *",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let web = tempfile::tempdir().unwrap();
    write_files(
        web.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/dash-app:latest\nRUN echo web > /web\n", reg.host),
        )],
    );
    let out = srv.cli(&[
        "task",
        "create",
        "--name",
        "web",
        "-c",
        web.path().to_str().unwrap(),
        "-t",
        "web:{{.Run.ID}}",
    ]);
    assert!(out.status.success(), "{}", show(&out));

    // The browser asks for the token first.
    let b = Browser::start().unwrap_or_else(|e| panic!("browser: {e:#}"));
    b.goto(&format!("{}/#/runs", srv.api)).unwrap();
    b.wait_text("#login", 20, |t| t.contains("API token"))
        .unwrap();
    b.submit("#token", "wrong").unwrap();
    b.wait_text("#login-error", 20, |t| t.contains("refused"))
        .unwrap();
    b.submit("#token", TOKEN).unwrap();
    b.wait_text("#runs", 20, |t| t.contains("No runs match"))
        .unwrap();

    // Start the build and open its page while it runs.
    let out = srv.cli(&["task", "run", "--name", "pipeline", "--no-wait"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("Queued a run with ID: "))
        .unwrap_or_else(|| panic!("no run id: {text}"))
        .trim()
        .to_string();
    b.wait_text(&format!("#runs tr[data-run=\"{id}\"]"), 30, |t| {
        t.contains("pipeline")
    })
    .unwrap();
    b.goto(&format!("{}/#/run/{id}", srv.api)).unwrap();
    // Mark the log element: the same element must be the one that grows.
    let first = b.wait_text("#log", 300, |t| ticks(t) >= 2).unwrap();
    b.exec(
        "document.getElementById('log').dataset.mark = 'kept'; return null;",
        vec![],
    )
    .unwrap();
    let first_ticks = ticks(&first);
    let later = b
        .wait_text("#log", 60, |t| ticks(t) >= first_ticks + 2)
        .unwrap();
    // It grew while the run was still going: the run had not ended after
    // the later text was read.
    let run = api_json(&srv, &format!("/api/v1/runs/{id}"));
    assert!(
        ["Running", "Started"].contains(&run["status"].as_str().unwrap()),
        "the log grew live ({} -> {} ticks) while the run was in progress: {run}",
        first_ticks,
        ticks(&later)
    );
    let state = b.text("#log-state").unwrap().unwrap_or_default();
    assert!(state.contains("live"), "{state}");
    let mark = b
        .exec(
            "return document.getElementById('log').dataset.mark || null;",
            vec![],
        )
        .unwrap();
    assert_eq!(mark, "kept", "the page updated in place, not by reloading");
    // While it runs, the steps come from the log.
    b.wait_text("#timeline", 30, |t| {
        t.contains("slow") && t.contains("in progress")
    })
    .unwrap();
    screenshot(&b, "run-live");

    // The run ends; the page shows the recorded steps and images.
    let run = srv
        .wait_status(&id, 300, |s| !["Queued", "Started", "Running"].contains(&s))
        .unwrap();
    assert_eq!(run["status"], "Succeeded", "{run}\n{}", srv.log());
    b.wait_text("#log-state", 30, |t| t.contains("complete"))
        .unwrap();
    let log = b.text("#log").unwrap().unwrap_or_default();
    let api_log = api_get(&srv, &format!("/api/v1/runs/{id}/log"), Some(TOKEN)).1;
    assert_eq!(ticks(&log), 12, "{log}");
    assert!(api_log.contains("==> step push: Succeeded"), "{api_log}");
    assert!(log.contains("==> step push: Succeeded"), "{log}");
    // Markup in a log line is shown as text, never made into elements.
    assert!(log.contains("<img id=xss src=x> is text"), "{log}");
    let injected = b
        .exec("return document.getElementById('xss') !== null;", vec![])
        .unwrap();
    assert_eq!(injected, false, "a log line became markup");
    let row = |step: &str| {
        b.wait_text(
            &format!("#timeline .tl-row[data-step=\"{step}\"]"),
            20,
            |_| true,
        )
        .unwrap()
    };
    let slow = row("slow");
    assert!(
        slow.contains("Succeeded") && slow.contains("after build"),
        "{slow}"
    );
    assert!(
        slow.contains("overlapped lint"),
        "slow and lint ran at once: {slow}"
    );
    let push = row("push");
    assert!(push.contains("after slow, lint"), "{push}");
    assert!(!push.contains("overlapped"), "push waited for both: {push}");
    assert!(row("build").contains("starts at once"));
    let outputs = b.text("#outputs").unwrap().unwrap_or_default();
    let digest = run["outputImages"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(digest.starts_with("sha256:"), "{run}");
    assert!(
        outputs.contains(&digest) && outputs.contains("dash-app"),
        "{outputs}"
    );
    let bases = b.text("#bases").unwrap().unwrap_or_default();
    let base_digest = run["baseImages"][0]["digest"].as_str().unwrap();
    assert!(
        bases.contains(base_digest) && bases.contains("base:1"),
        "{bases}"
    );
    screenshot(&b, "run");

    // The runs list: filters by task, trigger and status.
    b.goto(&format!(
        "{}/#/runs?task=pipeline&trigger=Manual&status=Succeeded",
        srv.api
    ))
    .unwrap();
    b.wait_text(&format!("#runs tr[data-run=\"{id}\"]"), 20, |t| {
        t.contains("Succeeded")
    })
    .unwrap();
    b.goto(&format!("{}/#/runs?trigger=Timer", srv.api))
        .unwrap();
    b.wait_text("#runs", 20, |t| t.contains("No runs match"))
        .unwrap();
    b.goto(&format!("{}/#/runs", srv.api)).unwrap();
    b.wait_text(&format!("#runs tr[data-run=\"{id}\"]"), 20, |t| {
        t.contains("Succeeded")
    })
    .unwrap();
    screenshot(&b, "runs");

    // Events: a delivery with a wrong token, refused with its reason, and
    // the registry's own notifications of the run's pushes.
    let (status, _) = post_webhook(
        &format!("{}/webhooks/registry", srv.url),
        &[
            ("Authorization", "Bearer wrong".into()),
            (
                "Content-Type",
                "application/vnd.docker.distribution.events.v1+json".into(),
            ),
        ],
        br#"{"events":[]}"#,
    )
    .unwrap();
    assert_eq!(status, 401);
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let events = api_json(&srv, "/api/v1/events?top=200");
        if events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "rejected")
        {
            break events;
        }
        assert!(Instant::now() < deadline, "no rejected event: {events}");
        std::thread::sleep(Duration::from_millis(200));
    };
    b.goto(&format!("{}/#/events", srv.api)).unwrap();
    let rejected = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == "rejected")
        .unwrap();
    let reason = rejected["reason"].as_str().unwrap();
    assert!(!reason.is_empty());
    let row = b
        .wait_text(
            &format!(
                "#events tr[data-event=\"{}\"]",
                rejected["id"].as_str().unwrap()
            ),
            20,
            |_| true,
        )
        .unwrap();
    assert!(
        row.contains("rejected") && row.contains(reason),
        "{row} / {reason}"
    );
    screenshot(&b, "events");

    // Tasks: triggers and the timer's next fire time.
    let timers = api_json(&srv, "/api/v1/timers");
    let next = timers[0]["nextFire"]
        .as_str()
        .unwrap_or_else(|| panic!("{timers}"));
    assert!(next.contains("T02:00:00"), "{timers}");
    b.goto(&format!("{}/#/tasks", srv.api)).unwrap();
    let timer_row = b
        .wait_text("#timers tr[data-timer=\"pipeline/nightly\"]", 20, |_| true)
        .unwrap();
    let shown = next.replace('T', " ").replace(".000Z", "Z");
    assert!(
        timer_row.contains("0 2 * * *") && timer_row.contains(&shown),
        "{timer_row} / {shown}"
    );
    let tasks = b.text("#tasks").unwrap().unwrap_or_default();
    assert!(
        tasks.contains("pipeline") && tasks.contains("base image (Runtime)"),
        "{tasks}"
    );
    screenshot(&b, "tasks");

    // The dependency graph: base:1 -> pipeline -> dash-app:latest -> web.
    let latest = format!("{}/dash-app:latest", reg.host);
    let graph = api_json(&srv, "/api/v1/graph");
    let node = |id: String| {
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("no {id}: {graph}"))
    };
    assert_eq!(
        node(format!("image:{latest}"))["rebuilds"],
        serde_json::json!(["web"])
    );
    let base_rebuilds = node(format!("image:{}/base:1", reg.host))["rebuilds"].clone();
    b.goto(&format!("{}/#/graph", srv.api)).unwrap();
    let item = b
        .wait_text(
            &format!("#rebuilds li[data-image=\"{latest}\"]"),
            20,
            |_| true,
        )
        .unwrap();
    assert!(item.contains("rebuilds web"), "{item}");
    let item = b
        .wait_text(
            &format!("#rebuilds li[data-image=\"{}/base:1\"]", reg.host),
            20,
            |_| true,
        )
        .unwrap();
    let names: Vec<&str> = base_rebuilds
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        assert!(item.contains("rebuilds nothing"), "{item}");
    } else {
        assert!(
            item.contains(&format!("rebuilds {}", names.join(", "))),
            "{item}"
        );
    }
    let boxes = b
        .exec(
            "return document.querySelectorAll('#graph g.node').length;",
            vec![],
        )
        .unwrap();
    assert!(
        boxes.as_u64().unwrap() >= 4,
        "image and task boxes: {boxes}"
    );
    // Clicking an image highlights what it rebuilds.
    let hot = b
        .exec(
            "const g = document.querySelector('#graph g[data-node=\"image:' + arguments[0] + '\"]');
             g.dispatchEvent(new MouseEvent('click', {bubbles: true}));
             return Array.from(document.querySelectorAll('#graph g.hot')).map(e => e.dataset.node);",
            vec![Value::String(latest.clone())],
        )
        .unwrap();
    assert!(
        hot.as_array().unwrap().iter().any(|n| n == "task:web"),
        "{hot}"
    );
    screenshot(&b, "graph");

    // Forgetting the token hides the data again.
    b.exec(
        "document.getElementById('signout').click(); return null;",
        vec![],
    )
    .unwrap();
    b.wait_text("#login", 20, |t| t.contains("API token"))
        .unwrap();
}
