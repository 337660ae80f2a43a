//! The `registry-event` binary as a process against a Lambda Runtime API
//! emulator, with DynamoDB and Secrets Manager on `moto_server` and
//! CodeBuild on a recording stub (moto's StartBuild ignores overrides, so
//! the request itself is asserted). Events are the real shapes kept in
//! crtask-core's fixtures (tests/fixtures/registry).

use crtask_core::domain::model::{
    BaseDependency, EventSource, Outcome as EventOutcome, RunFilter, RunStatus, Trigger,
};
use crtask_core::ports::Store;
use crtask_testkit::aws as harness;
use crtask_testkit::aws::lambda::{self, Function, RecordingStub};
use crtask_testkit::payload::function_url_answer;
use crtask_testkit::{function_url_event, sign, task};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const TOKEN: &str = "regtok-0123456789abcdefghijklmnopqrstuvwxyz";

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/core/tests/fixtures/registry")
        .join(name);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The tagged reference an ECR fixture moves, and its digest.
fn ecr_image(event: &Value) -> (String, String) {
    let d = &event["detail"];
    (
        format!(
            "{}.dkr.ecr.{}.amazonaws.com/{}:{}",
            event["account"].as_str().unwrap(),
            event["region"].as_str().unwrap(),
            d["repository-name"].as_str().unwrap(),
            d["image-tag"].as_str().unwrap()
        ),
        d["image-digest"].as_str().unwrap().to_string(),
    )
}

/// A Function URL request (payload format 2.0).
fn url_event(method: &str, headers: &[(&str, String)], body: &[u8]) -> Value {
    function_url_event(method, "/", headers, body)
}

struct Fixture {
    store: crtask_aws::DynamoStore,
    codebuild: RecordingStub,
    function: Function,
}

/// A table with task `app` built on `base` (last built on [`OLD`]), the
/// webhook secret in Secrets Manager, and the function (settle window 1 s).
async fn fixture_with(base: &str) -> Fixture {
    let store = harness::store().await;
    store.create_task(&task("app")).await.unwrap();
    store
        .set_dependencies(
            "app",
            &[BaseDependency {
                image: base.into(),
                digest: Some(OLD.into()),
                runtime: true,
            }],
        )
        .await
        .unwrap();
    let arn = harness::secret("crtask/registry-webhook", TOKEN).await;
    let codebuild = RecordingStub::codebuild();
    let function = Function::start(
        Path::new(env!("CARGO_BIN_EXE_registry-event")),
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
            ("CRTASK_REGISTRY_WEBHOOK_SECRET_ARN", &arn),
            ("CRTASK_SETTLE_WINDOW", "1"),
        ],
    );
    Fixture {
        store,
        codebuild,
        function,
    }
}

impl Fixture {
    fn invoke(&self, event: &Value) -> Value {
        tokio::task::block_in_place(|| self.function.invoke(event)).response()
    }

    /// A Function URL invocation: status and JSON body.
    fn invoke_url(&self, event: &Value) -> (u16, Value) {
        function_url_answer(&self.invoke(event))
    }

    async fn runs(&self) -> Vec<crtask_core::domain::model::Run> {
        self.store.list_runs(&RunFilter::default()).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_push_rebuilds_the_dependent_once_and_starts_its_build() {
    let event = fixture("ecr-push-success-tagged.json");
    let (image, digest) = ecr_image(&event);
    let f = fixture_with(&image).await;

    let answer = f.invoke(&event);
    assert_eq!(answer["outcome"], "recorded", "{answer}");
    assert_eq!(answer["events"][0]["outcome"], "triggered", "{answer}");
    let runs = f.runs().await;
    assert_eq!(runs.len(), 1, "{answer}");
    let run = &runs[0];
    assert_eq!(run.task.as_deref(), Some("app"));
    match &run.trigger {
        Trigger::ImageUpdate {
            image: i,
            old_digest,
            new_digest,
            ..
        } => {
            assert_eq!(i, &image);
            assert_eq!(old_digest.as_deref(), Some(OLD));
            assert_eq!(new_digest, &digest);
        }
        other => panic!("trigger {other:?}"),
    }
    // Dispatched after the settle window: one StartBuild for this run.
    let calls = f.codebuild.calls("StartBuild");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let env = calls[0]["environmentVariablesOverride"].as_array().unwrap();
    assert!(
        env.iter()
            .any(|v| v["name"] == "CRTASK_RUN_ID" && v["value"] == run.run_id.as_str()),
        "{env:?}"
    );
    let stored = f.store.get_run(&run.run_id).await.unwrap().unwrap();
    assert!(stored.builder_ref.is_some(), "{stored:?}");

    // EventBridge delivers at least once: the same event again starts
    // nothing and records nothing; it gets the first delivery's answer
    // (its event id was recorded with the run, in one transaction).
    let again = f.invoke(&event);
    assert_eq!(again["events"], answer["events"], "{again}");
    assert_eq!(f.runs().await.len(), 1);
    assert_eq!(f.codebuild.calls("StartBuild").len(), 1);

    let events = f.store.list_events(None, 10).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].source, EventSource::Registry);
    assert_eq!(events[0].outcome, EventOutcome::Triggered);
    assert_eq!(events[0].runs, vec![run.run_id.clone()]);
    // The event and its run were one TransactWriteItems.
    assert!(
        f.function
            .aws_calls()
            .iter()
            .any(|op| op == "TransactWriteItems"),
        "{:?}",
        f.function.aws_calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_events_that_move_no_tag_start_nothing() {
    let pushed = fixture("ecr-push-success-tagged.json");
    let (image, _) = ecr_image(&pushed);
    let f = fixture_with(&image).await;
    for name in [
        "ecr-push-failed.json",
        "ecr-push-success-untagged.json",
        "ecr-delete.json",
    ] {
        let answer = f.invoke(&fixture(name));
        assert_eq!(answer["outcome"], "ignored", "{name}: {answer}");
        assert!(
            answer["reason"].as_str().unwrap().len() > 5,
            "{name}: {answer}"
        );
    }
    // Not an ECR event at all: answered, nothing recorded.
    let answer =
        f.invoke(&json!({"detail-type": "Something Else", "source": "aws.s3", "detail": {}}));
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    assert!(f.runs().await.is_empty());
    assert!(f.codebuild.calls("StartBuild").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_digest_as_the_last_build_is_unchanged() {
    let mut event = fixture("ecr-push-success-tagged.json");
    let (image, _) = ecr_image(&event);
    event["detail"]["image-digest"] = OLD.into();
    let f = fixture_with(&image).await;
    let answer = f.invoke(&event);
    assert_eq!(answer["events"][0]["outcome"], "unchanged", "{answer}");
    assert!(f.runs().await.is_empty());
    assert!(f.codebuild.calls("StartBuild").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_notification_through_the_function_url() {
    let body = serde_json::to_vec(&fixture("dist-push-manifest-docker-v2-tagged.json")).unwrap();
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    let target = &envelope["events"][0];
    let image = format!(
        "{}/{}:{}",
        target["request"]["host"].as_str().unwrap(),
        target["target"]["repository"].as_str().unwrap(),
        target["target"]["tag"].as_str().unwrap()
    );
    let f = fixture_with(&image).await;
    let json_type = (
        "Content-Type",
        "application/vnd.docker.distribution.events.v1+json".to_string(),
    );

    // A wrong token: 401, recorded as rejected, nothing started.
    let (status, answer) = f.invoke_url(&url_event(
        "POST",
        &[
            json_type.clone(),
            ("Authorization", "Bearer not-the-token".into()),
        ],
        &body,
    ));
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["outcome"], "rejected");
    // No credentials at all: 401 too.
    let (status, _) = f.invoke_url(&url_event("POST", std::slice::from_ref(&json_type), &body));
    assert_eq!(status, 401);
    // Authenticated but not an envelope: 400 with the parse error.
    let (status, answer) = f.invoke_url(&url_event(
        "POST",
        &[
            json_type.clone(),
            ("Authorization", format!("Bearer {TOKEN}")),
        ],
        b"{\"events\": 5}",
    ));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("events"),
        "{answer}"
    );
    // Not a POST.
    let (status, _) = f.invoke_url(&url_event("GET", &[], b""));
    assert_eq!(status, 405);
    assert!(f.runs().await.is_empty());
    assert!(f.codebuild.calls("StartBuild").is_empty());

    // The genuine notification, signed with the secret instead of a token.
    let sig = sign::registry(TOKEN, &body);
    let (status, answer) = f.invoke_url(&url_event(
        "POST",
        &[json_type, ("X-Crtask-Signature", sig)],
        &body,
    ));
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["outcome"], "triggered", "{answer}");
    let runs = f.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(f.codebuild.calls("StartBuild").len(), 1);
    let stored = f.store.get_run(&runs[0].run_id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Queued);
    assert!(stored.builder_ref.is_some());

    let events = f
        .store
        .list_events(Some(EventSource::Registry), 20)
        .await
        .unwrap();
    let rejected = events
        .iter()
        .filter(|e| e.outcome == EventOutcome::Rejected)
        .count();
    assert_eq!(rejected, 3, "{events:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn binary_is_linked_position_dependent() {
    lambda::assert_position_dependent(Path::new(env!("CARGO_BIN_EXE_registry-event")));
}
