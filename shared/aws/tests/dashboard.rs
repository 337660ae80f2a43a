//! `crtask --platform aws dashboard` against `moto_server`: the real binary
//! serves the dashboard on loopback, reading runs from DynamoDB and logs
//! from S3 with the caller's credentials, behind the one-time token it
//! prints; nothing it serves changes anything.
//!
//! Needs `cargo build -p crtask` first (or `CRTASK_BIN`).

use crtask_aws::S3Contexts;
use crtask_core::ports::Store;
use crtask_testkit::aws as harness;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Stops the dashboard process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dashboard(table: &str, bucket: &str, group: &str, listen: &str) -> Command {
    let mut c = harness::crtask_on_aws(table, bucket, &["dashboard", "--listen", listen]);
    c.env("CRTASK_AWS_LOG_GROUP", group);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_dashboard_reads_runs_and_logs_behind_its_token() {
    let store = harness::store().await;
    let (s3_client, bucket) = harness::bucket().await;
    let s3 = S3Contexts::new(s3_client, bucket.clone());
    let mut run = crtask_testkit::run("ca7");
    run.task = Some("web".into());
    store.insert_run(&run).await.unwrap();
    store
        .create_task(&crtask_testkit::task("web"))
        .await
        .unwrap();
    // A run in progress whose build writes to CloudWatch Logs.
    let conf = harness::sdk_config().await;
    let cwl = crtask_aws::config::cloudwatchlogs(&conf);
    let group = format!("/aws/codebuild/{}", harness::unique("crtask-builder"));
    cwl.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let stream = harness::unique("build");
    cwl.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let mut live = crtask_testkit::run("ca8");
    live.status = crtask_core::domain::model::RunStatus::Running;
    live.builder_ref = Some(format!("crtask-builder:{stream}"));
    store.insert_run(&live).await.unwrap();
    crtask_testkit::aws::logs::put_build_log(
        &cwl,
        &group,
        &stream,
        &[
            "[Container] 2024/05/01 10:00:00.000000 Running on CodeBuild On-demand",
            "Login Succeeded",
            "crtask: run ca8 on docker (linux/amd64)",
            "step one",
        ],
    )
    .await;
    s3.put_log(
        "ca7",
        b"==> step build: started\nhello from the build\n".to_vec(),
    )
    .await
    .unwrap();

    // Off loopback it does not start.
    let out = dashboard(store.table(), &bucket, &group, "0.0.0.0:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = dashboard(store.table(), &bucket, &group, "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    // The first line is the address; the rest is read and dropped.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
        for _ in lines {}
    });
    let line = rx.await.unwrap();
    // "Dashboard (AWS platform, read-only): http://127.0.0.1:PORT/#token=HEX"
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address: {line}"));
    let (base, token) = url.split_once("/#token=").unwrap();
    assert_eq!(token.len(), 64, "{line}");
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };

    // The page is public; data needs the token.
    let page = get("/", None).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("content-security-policy"));
    for path in [
        "/api/v1/runs",
        "/api/v1/runs/ca7/log",
        "/api/v1/tasks",
        "/api/v1/graph",
    ] {
        assert_eq!(get(path, None).await.unwrap().status(), 401, "{path}");
        assert_eq!(
            get(path, Some("nope")).await.unwrap().status(),
            401,
            "{path}"
        );
        assert_eq!(
            get(path, Some(token)).await.unwrap().status(),
            200,
            "{path}"
        );
    }
    let runs: serde_json::Value = get("/api/v1/runs", Some(token))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ca7 = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["runId"] == "ca7")
        .unwrap_or_else(|| panic!("{runs}"));
    assert_eq!(ca7["task"], "web", "{runs}");
    let log = get("/api/v1/runs/ca7/log?offset=24", Some(token))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(log, "hello from the build\n");
    // The run in progress: the executor's lines only, then what came since.
    let text = |path: String| {
        let r = get(&path, Some(token));
        async move { r.await.unwrap().text().await.unwrap() }
    };
    let first = text("/api/v1/runs/ca8/log".into()).await;
    assert_eq!(first, "crtask: run ca8 on docker (linux/amd64)\nstep one\n");
    crtask_testkit::aws::logs::put_build_log(&cwl, &group, &stream, &["step two"]).await;
    let next = text(format!("/api/v1/runs/ca8/log?offset={}", first.len())).await;
    assert_eq!(next, "step two\n");
    let missing = get("/api/v1/runs/nope", Some(token)).await.unwrap();
    assert_eq!(missing.status(), 404);

    // Read-only: a delete is not served, and the task is still there.
    let del = http
        .delete(format!("{base}/api/v1/tasks/web"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(
        del.status() == 405 || del.status() == 404,
        "{}",
        del.status()
    );
    assert!(store.get_task("web").await.unwrap().is_some());
}
