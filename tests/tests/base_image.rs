//! Base-image update triggers end to end: the real distribution registry's
//! notifications, cascades, Runtime vs All, and polling.

use crtask_tests::{post_webhook, show, write_files, Registry, Server};
use std::time::{Duration, Instant};

const TOKEN: &str = "registry-notify-token";

fn runs_of(srv: &Server, task: &str) -> Vec<serde_json::Value> {
    let v = srv
        .cli_json(&["task", "list-runs", "--name", task, "--top", "50"])
        .unwrap();
    v.as_array().unwrap().clone()
}

fn wait_runs(srv: &Server, task: &str, n: usize, secs: u64) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let runs = runs_of(srv, task);
        let done = runs
            .iter()
            .filter(|r| !matches!(r["status"].as_str(), Some("Queued" | "Running")))
            .count();
        if runs.len() >= n && done == runs.len() {
            return runs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "task {task}: {} runs after {secs} s: {runs:?}\n{}",
            runs.len(),
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A registry whose notifications go to a crtask server started after it,
/// once the server has recorded the notification of the seeded `base:1`.
fn notifying_stack() -> (Registry, Server, tempfile::TempDir) {
    let port = crtask_tests::free_port();
    let url = format!("http://127.0.0.1:{port}/webhooks/registry");
    let reg = Registry::start_with(Some((&url, TOKEN))).unwrap();
    reg.seed("base:1", "v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    std::fs::write(&tok, format!("{TOKEN}\n")).unwrap();
    let srv = Server::start_on(
        &reg,
        port,
        &[
            "--registry-webhook-token-file",
            tok.to_str().unwrap(),
            "--poll-interval",
            "0",
            "--settle-window",
            "1",
        ],
    )
    .unwrap();
    srv.await_registry_push(&format!("{}/base:1", reg.host), 60);
    (reg, srv, dir)
}

fn task_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_files(d.path(), files);
    d
}

#[test]
fn a_new_base_digest_rebuilds_dependents_once_and_the_same_content_nothing() {
    let (reg, srv, _d) = notifying_stack();
    let app = task_dir(&[(
        "Dockerfile",
        &format!("FROM {}/base:1\nRUN cat /etc/base-release\n", reg.host),
    )]);
    srv.cli_json(&[
        "task",
        "create",
        "--name",
        "app",
        "-c",
        app.path().to_str().unwrap(),
        "-t",
        "app:{{.Run.ID}}",
    ])
    .unwrap();
    // Tracked from creation (pre-scan), before any run.
    let deps = srv
        .cli_json(&["image", "dependents", &format!("{}/base:1", reg.host)])
        .unwrap();
    assert_eq!(deps["dependents"][0]["task"], "app", "{deps}");
    let out = srv.cli(&["task", "run", "--name", "app"]);
    assert!(out.status.success(), "{}", show(&out));
    let old = reg.digest("base", "1").unwrap();

    let new = reg.seed("base:1", "v2").unwrap();
    assert_ne!(old, new);
    let runs = wait_runs(&srv, "app", 2, 60);
    assert_eq!(runs.len(), 2, "exactly one ImageUpdate run: {runs:?}");
    let r = &runs[0];
    assert_eq!(r["status"], "Succeeded", "{r}");
    assert_eq!(r["trigger"]["type"], "ImageUpdate");
    assert_eq!(r["trigger"]["image"], format!("{}/base:1", reg.host));
    assert_eq!(r["trigger"]["oldDigest"], old.as_str());
    assert_eq!(r["trigger"]["newDigest"], new.as_str());
    assert_eq!(
        r["baseImages"][0]["digest"],
        new.as_str(),
        "built on the new digest"
    );

    // The same content again: nothing.
    reg.seed("base:1", "v2").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(runs_of(&srv, "app").len(), 2);
    let events = srv
        .cli_json(&["events", "list", "--source", "registry"])
        .unwrap();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "triggered"),
        "{events}"
    );

    // A bad token is 401 and changes nothing.
    let (s, _) = post_webhook(
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
    assert_eq!(s, 401);
}

#[test]
fn chains_and_diamonds_rebuild_each_task_once_in_order() {
    let (reg, srv, _d) = notifying_stack();
    let h = &reg.host;
    // base -> b, base -> c, (b, c) -> d ; d -> e (chain)
    let b = task_dir(&[("Dockerfile", &format!("FROM {h}/base:1\nRUN echo b > /b\n"))]);
    let c = task_dir(&[("Dockerfile", &format!("FROM {h}/base:1\nRUN echo c > /c\n"))]);
    let d = task_dir(&[(
        "Dockerfile",
        &format!("FROM {h}/b:latest AS fromb\nFROM {h}/c:latest\nCOPY --from=fromb /b /b\n"),
    )]);
    let e = task_dir(&[("Dockerfile", &format!("FROM {h}/d:latest\nRUN ls /b /c\n"))]);
    for (name, dir, extra) in [
        ("b", &b, None),
        ("c", &c, None),
        ("d", &d, Some("All")),
        ("e", &e, None),
    ] {
        let mut args = vec![
            "task",
            "create",
            "--name",
            name,
            "-c",
            dir.path().to_str().unwrap(),
        ];
        let tag = format!("{name}:latest");
        args.extend(["-t", &tag]);
        if let Some(t) = extra {
            args.extend(["--base-image-trigger-type", t]);
        }
        srv.cli_json(&args).unwrap();
        let out = srv.cli(&["task", "run", "--name", name]);
        assert!(out.status.success(), "{name}: {}", show(&out));
    }
    reg.seed("base:1", "v2").unwrap();
    let runs_e = wait_runs(&srv, "e", 2, 120);
    for t in ["b", "c", "d", "e"] {
        let runs = wait_runs(&srv, t, 2, 60);
        assert_eq!(
            runs.len(),
            2,
            "task {t} rebuilt exactly once: {runs:?}\n{}",
            srv.log()
        );
        assert_eq!(runs[0]["status"], "Succeeded", "{t}: {}", runs[0]);
    }
    let created = |t: &str| {
        runs_of(&srv, t)[0]["createTime"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let finished = |t: &str| {
        runs_of(&srv, t)[0]["finishTime"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        created("d") >= finished("b") && created("d") >= finished("c"),
        "d after both b and c"
    );
    assert!(created("e") >= finished("d"), "e after d");
    assert_eq!(runs_e[0]["trigger"]["image"], format!("{h}/d:latest"));
}

#[test]
fn runtime_tasks_ignore_build_time_bases_and_all_tasks_do_not() {
    let (reg, srv, _d) = notifying_stack();
    reg.seed("tool:1", "t1").unwrap();
    let h = &reg.host;
    let df = format!(
        "FROM {h}/tool:1 AS build\nRUN echo built > /x\nFROM {h}/base:1\nCOPY --from=build /x /x\n"
    );
    let dir = task_dir(&[("Dockerfile", &df)]);
    for (name, ty) in [("rt", "Runtime"), ("all", "All")] {
        srv.cli_json(&[
            "task",
            "create",
            "--name",
            name,
            "-c",
            dir.path().to_str().unwrap(),
            "-t",
            &format!("{name}:1"),
            "--base-image-trigger-type",
            ty,
        ])
        .unwrap();
        let out = srv.cli(&["task", "run", "--name", name]);
        assert!(out.status.success(), "{}", show(&out));
    }
    reg.seed("tool:1", "t2").unwrap();
    let all = wait_runs(&srv, "all", 2, 60);
    assert_eq!(all[0]["trigger"]["image"], format!("{h}/tool:1"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        runs_of(&srv, "rt").len(),
        1,
        "a Runtime task ignores its build-time base"
    );
    let events = srv
        .cli_json(&["events", "list", "--source", "registry"])
        .unwrap();
    assert!(events.to_string().contains("build-time"), "{events}");
}

#[test]
fn polling_detects_updates_with_one_request_per_reference_per_interval() {
    let reg = Registry::start().unwrap(); // no notifications
    reg.seed("base:1", "v1").unwrap();
    let srv = Server::start(&reg, &["--poll-interval", "2", "--settle-window", "0"]).unwrap();
    let h = &reg.host;
    for name in ["p1", "p2"] {
        let dir = task_dir(&[("Dockerfile", &format!("FROM {h}/base:1\nRUN true\n"))]);
        srv.cli_json(&[
            "task",
            "create",
            "--name",
            name,
            "-c",
            dir.path().to_str().unwrap(),
            "-t",
            &format!("{name}:1"),
        ])
        .unwrap();
        let out = srv.cli(&["task", "run", "--name", name]);
        assert!(out.status.success(), "{}", show(&out));
        std::mem::forget(dir);
    }
    // Two tasks, one distinct reference: one HEAD per interval.
    let before = reg.manifest_heads("base", "1");
    std::thread::sleep(Duration::from_millis(6500));
    let heads = reg.manifest_heads("base", "1") - before;
    assert!(
        (2..=4).contains(&heads),
        "{heads} HEADs in ~3 intervals for one reference"
    );

    reg.seed("base:1", "v2").unwrap();
    for t in ["p1", "p2"] {
        let runs = wait_runs(&srv, t, 2, 30);
        assert_eq!(
            runs[0]["trigger"]["type"], "ImageUpdate",
            "{t}: {}",
            runs[0]
        );
        assert_eq!(runs[0]["trigger"]["cause"], "poll");
    }
    let events = srv
        .cli_json(&["events", "list", "--source", "poll", "--top", "200"])
        .unwrap();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "unchanged"),
        "{events}"
    );
}
