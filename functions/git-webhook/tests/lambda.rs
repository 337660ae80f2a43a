//! The `git-webhook` binary as a process against a Lambda Runtime API
//! emulator, with DynamoDB and Secrets Manager on `moto_server` and
//! CodeBuild on a recording stub (moto's StartBuild ignores overrides, so
//! the request itself is asserted).

#[path = "../../../shared/aws/tests/harness/mod.rs"]
mod harness;
#[path = "../../../shared/aws/tests/harness/lambda.rs"]
mod lambda;

use harness::task;

use crtask_core::domain::model::{RunFilter, RunStatus};
use crtask_core::ports::Store;
use hmac::{Hmac, KeyInit, Mac};
use lambda::{Function, Outcome, RecordingStub};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::Path;

const COMMIT: &str = "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f";
const REPO_URL: &str = "https://github.com/acme/app.git";

/// A GitHub push of one commit to main.
fn push_body() -> Vec<u8> {
    let commit = json!({"id": COMMIT, "message": "change", "added": [], "removed": [], "modified": ["app.go"]});
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000001",
        "after": COMMIT,
        "created": false, "deleted": false, "forced": false,
        "commits": [commit],
        "head_commit": commit,
        "repository": {"full_name": "acme/app", "clone_url": REPO_URL, "html_url": "https://github.com/acme/app", "default_branch": "main"},
        "pusher": {"name": "tester"}
    }))
    .unwrap()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Function URL request (payload format 2.0) for `POST /webhooks/git`.
fn url_event(headers: &[(&str, String)], body: &[u8]) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhooks/git",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {
                "method": "POST",
                "path": "/webhooks/git",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "GitHub-Hookshot/7e5a3b1"
            },
            "requestId": "d1b3f7a2-0c4e-4f6a-9b8d-2e1f3a5c7b9d",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_766_400_000u64
        },
        "body": String::from_utf8(body.to_vec()).unwrap(),
        "isBase64Encoded": false
    })
}

struct Fixture {
    store: crtask_aws::DynamoStore,
    secret: String,
    codebuild: RecordingStub,
    function: Function,
}

async fn fixture() -> Fixture {
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
            ("CRTASK_GIT_WEBHOOK_SECRET_ARN", &arn),
        ],
    );
    Fixture {
        store,
        secret,
        codebuild,
        function,
    }
}

fn http_answer(outcome: Outcome) -> (u16, Value) {
    let Outcome::Response(r) = outcome else {
        panic!("the function did not answer: {outcome:?}");
    };
    let status = r["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = r["body"].as_str().unwrap_or("null");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
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
            ("X-Hub-Signature-256", sign(&f.secret, &body)),
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
    headers.push(("X-Hub-Signature-256", sign("not-the-secret", &body)));
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

#[cfg(target_os = "linux")]
#[test]
fn binary_is_linked_position_dependent() {
    lambda::assert_position_dependent(Path::new(env!("CARGO_BIN_EXE_git-webhook")));
}
