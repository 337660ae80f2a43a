//! The `git-webhook` binary as a process against a Lambda Runtime API
//! emulator, with DynamoDB and Secrets Manager on `moto_server` and
//! CodeBuild on a recording stub (moto's StartBuild ignores overrides, so
//! the request itself is asserted).

use crtask_core::domain::model::{RunFilter, RunStatus};
use crtask_core::ports::Store;
use crtask_testkit::aws as harness;
use crtask_testkit::aws::lambda::{self, Function, Outcome, RecordingStub};
use crtask_testkit::payload::function_url_answer;
use crtask_testkit::{function_url_event, sign, task, GithubPush};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const COMMIT: &str = "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f";
const REPO_URL: &str = "https://github.com/acme/app.git";

/// A GitHub push of one commit to main.
fn push_body() -> Vec<u8> {
    GithubPush::new(REPO_URL, "main", COMMIT).body()
}

/// A Function URL request (payload format 2.0) for `POST /webhooks/git`.
fn url_event(headers: &[(&str, String)], body: &[u8]) -> Value {
    function_url_event("POST", "/webhooks/git", headers, body)
}

struct Fixture {
    store: crtask_aws::DynamoStore,
    secret: String,
    codebuild: RecordingStub,
    function: Function,
}

async fn fixture() -> Fixture {
    fixture_with(&[]).await
}

/// The fixture with extra environment for the function (log settings).
async fn fixture_with(extra: &[(&str, &str)]) -> Fixture {
    let store = harness::store().await;
    store.create_task(&task("web")).await.unwrap();
    let secret = "whsec-0123456789abcdefghijklmnopqrstuvwxyzABCDEF".to_string();
    let arn = harness::secret("crtask/git-webhook", &secret).await;
    let codebuild = RecordingStub::codebuild();
    let function = Function::start(
        Path::new(env!("CARGO_BIN_EXE_git-webhook")),
        harness::endpoint(),
        Some(&codebuild.url()),
        &[
            ("CRTASK_TABLE", store.table()),
            ("CRTASK_BUCKET", "crtask-bucket"),
            ("CRTASK_BUILDER_PROJECT", "crtask-builder"),
            (
                "CRTASK_REGISTRY_HOST",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            ),
            ("CRTASK_GIT_WEBHOOK_SECRET_ARN", arn.as_str()),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect::<Vec<_>>(),
    );
    Fixture {
        store,
        secret,
        codebuild,
        function,
    }
}

fn http_answer(outcome: Outcome) -> (u16, Value) {
    function_url_answer(&outcome.response())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_push_creates_the_run_and_starts_the_build() {
    let f = fixture().await;
    let body = push_body();
    let event = url_event(
        &[
            ("Content-Type", "application/json".into()),
            ("X-GitHub-Event", "push".into()),
            (
                "X-GitHub-Delivery",
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            ),
            ("X-Hub-Signature-256", sign::github(&f.secret, &body)),
            ("User-Agent", "GitHub-Hookshot/7e5a3b1".into()),
        ],
        &body,
    );
    let outcome = tokio::task::block_in_place(|| f.function.invoke(&event));
    let (status, answer) = http_answer(outcome);
    assert_eq!(status, 202, "{answer}");
    let run_ids: Vec<String> = answer["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|r| {
            r.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| r["runId"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    assert_eq!(run_ids.len(), 1, "{answer}");

    // The run is in DynamoDB, dispatched to the stub's build.
    let runs = f.store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.run_id, run_ids[0]);
    assert_eq!(run.task.as_deref(), Some("web"));
    assert_eq!(run.status, RunStatus::Queued);
    assert!(
        run.builder_ref
            .as_deref()
            .is_some_and(|b| b.starts_with("crtask-builder:")),
        "{:?}",
        run.builder_ref
    );

    // StartBuild itself: source version and the run as environment.
    let calls = f.codebuild.calls("StartBuild");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let req = &calls[0];
    assert_eq!(req["projectName"], "crtask-builder");
    assert_eq!(req["sourceVersion"], COMMIT);
    assert_eq!(req["sourceTypeOverride"], "GITHUB");
    assert_eq!(req["sourceLocationOverride"], REPO_URL);
    assert_eq!(req["privilegedModeOverride"], true);
    assert_eq!(
        req["idempotencyToken"],
        format!("crtask-crtask-builder-{}", run.run_id)
    );
    let env: BTreeMap<String, (String, String)> = req["environmentVariablesOverride"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                (
                    v["value"].as_str().unwrap().to_string(),
                    v["type"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect();
    let val = |k: &str| env.get(k).map(|(v, _)| v.as_str());
    assert_eq!(val("CRTASK_RUN_ID"), Some(run.run_id.as_str()));
    assert_eq!(val("CRTASK_COMMIT"), Some(COMMIT));
    assert_eq!(val("CRTASK_BRANCH"), Some("main"));
    assert_eq!(val("CRTASK_TASK"), Some("web"));
    assert_eq!(val("CRTASK_TRIGGER"), Some("Commit"));
    assert_eq!(val("CRTASK_CONTEXT_KIND"), Some("git"));
    assert_eq!(val("CRTASK_GIT_URL"), Some(REPO_URL));
    assert_eq!(
        val("CRTASK_REGISTRY"),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );
    assert!(env.values().all(|(_, t)| t == "PLAINTEXT"), "{env:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_push_is_rejected_and_starts_nothing() {
    let f = fixture().await;
    let body = push_body();
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("X-GitHub-Event", "push".into()),
        (
            "X-GitHub-Delivery",
            "8a1c2e4f-cc78-11e3-81ab-4c9367dc0958".into(),
        ),
    ];
    let outcome = tokio::task::block_in_place(|| f.function.invoke(&url_event(&headers, &body)));
    let (status, answer) = http_answer(outcome);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["outcome"], "rejected");

    // Signed with another secret: rejected too.
    let mut headers = headers.to_vec();
    headers[2].1 = "9b2d3f5a-cc78-11e3-81ab-4c9367dc0958".into();
    headers.push(("X-Hub-Signature-256", sign::github("not-the-secret", &body)));
    let outcome = tokio::task::block_in_place(|| f.function.invoke(&url_event(&headers, &body)));
    let (status, answer) = http_answer(outcome);
    assert_eq!(status, 401, "{answer}");

    assert!(f.codebuild.calls("StartBuild").is_empty());
    assert!(f.codebuild.requests().is_empty());
    assert!(f
        .store
        .list_runs(&RunFilter::default())
        .await
        .unwrap()
        .is_empty());
}

/// Sends one unsigned push (answered 401) and returns the function's log
/// lines once the "handled" line is there (or after 10 s).
async fn log_of_one_rejected_push(f: &Fixture) -> Vec<String> {
    let body = push_body();
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("X-GitHub-Event", "push".into()),
        (
            "X-GitHub-Delivery",
            "1c2e4f8a-cc78-11e3-81ab-4c9367dc0958".into(),
        ),
    ];
    let outcome = tokio::task::block_in_place(|| f.function.invoke(&url_event(&headers, &body)));
    assert_eq!(http_answer(outcome).0, 401);
    for _ in 0..100 {
        if f.function
            .log_lines()
            .iter()
            .any(|l| l.contains("git webhook handled"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    f.function.log_lines()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_gives_one_json_object_per_line() {
    let f = fixture_with(&[
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
    ])
    .await;
    let lines = log_of_one_rejected_push(&f).await;
    assert!(!lines.is_empty(), "the function logged nothing");
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(v["level"].is_string(), "{line}");
        assert!(v["message"].is_string(), "{line}");
    }
    let handled: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "git webhook handled")
        .collect();
    assert_eq!(handled.len(), 1, "{lines:?}");
    assert_eq!(handled[0]["level"], "INFO");
    assert_eq!(
        handled[0]["status"], 401,
        "the event's fields sit at the top level"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_log_level_filters_and_text_format_has_no_colour_codes() {
    let f = fixture_with(&[("AWS_LAMBDA_LOG_LEVEL", "ERROR")]).await;
    let lines = log_of_one_rejected_push(&f).await;
    assert!(
        !lines.iter().any(|l| l.contains("git webhook handled")),
        "an INFO line passed the ERROR level: {lines:?}"
    );

    let f = fixture_with(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).await;
    let lines = log_of_one_rejected_push(&f).await;
    let handled = lines
        .iter()
        .find(|l| l.contains("git webhook handled"))
        .unwrap_or_else(|| panic!("no handled line in {lines:?}"));
    assert!(handled.contains("INFO"), "{handled}");
    assert!(
        !lines.iter().any(|l| l.contains('\x1b')),
        "colour codes in {lines:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn binary_is_linked_position_dependent() {
    lambda::assert_position_dependent(Path::new(env!("CARGO_BIN_EXE_git-webhook")));
}
