//! The `build-status` binary as a process against a Lambda Runtime API
//! emulator, with DynamoDB and S3 on `moto_server`: CodeBuild state changes
//! (the documented event shape, tests/fixtures/codebuild in crtask-core)
//! move runs to Running, Succeeded (with digests and the dependency index)
//! and Failed.

use crtask_core::domain::model::{Run, RunStatus, Trigger};
use crtask_core::ports::Store;
use crtask_testkit::aws as harness;
use crtask_testkit::aws::lambda::{self, Function, RecordingStub};
use crtask_testkit::RunBuilder;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/core/tests/fixtures/codebuild")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The fixture event for `run_id`'s build `build` (StartBuild's `build.id`):
/// the event names it by its ARN, as CodeBuild's events do.
fn event(name: &str, run_id: &str, build: &str) -> Value {
    let mut e: Value = serde_json::from_slice(&fixture(name)).unwrap();
    let arn = format!("arn:aws:codebuild:us-east-1:123456789012:build/{build}");
    e["detail"]["build-id"] = arn.clone().into();
    e["resources"] = serde_json::json!([arn]);
    for v in e["detail"]["additional-information"]["environment"]["environment-variables"]
        .as_array_mut()
        .unwrap()
    {
        if v["name"] == "CRTASK_RUN_ID" {
            v["value"] = run_id.into();
        }
    }
    e
}

/// A queued build of task `web`, dispatched as `build`.
fn run(id: &str, build: &str) -> Run {
    RunBuilder::new(id).builder_ref(Some(build)).build()
}

struct Fixture {
    store: crtask_aws::DynamoStore,
    s3: aws_sdk_s3::Client,
    bucket: String,
    codebuild: RecordingStub,
    function: Function,
}

async fn fixture_env() -> Fixture {
    let store = harness::store().await;
    let (s3, bucket) = harness::bucket().await;
    let codebuild = RecordingStub::codebuild();
    let function = Function::start(
        Path::new(env!("CARGO_BIN_EXE_build-status")),
        harness::endpoint(),
        Some(&codebuild.url()),
        &[
            ("CRTASK_TABLE", store.table()),
            ("CRTASK_BUCKET", &bucket),
            ("CRTASK_BUILDER_PROJECT", "crtask-builder"),
        ],
    );
    Fixture {
        store,
        s3,
        bucket,
        codebuild,
        function,
    }
}

impl Fixture {
    /// Stores the executor's result of `run_id` as the buildspec uploads it.
    async fn put_result(&self, run_id: &str, name: &str) {
        let mut r: Value = serde_json::from_slice(&fixture(name)).unwrap();
        r["runId"] = run_id.into();
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(format!("logs/{run_id}.result.json"))
            .body(serde_json::to_vec(&r).unwrap().into())
            .send()
            .await
            .unwrap();
    }

    async fn invoke(&self, event: &Value) -> Value {
        tokio::task::block_in_place(|| self.function.invoke(event)).response()
    }
}

/// A build as `StartBuild` answers it (`build.id`); [`event`] names it by ARN.
const BUILD: &str = "crtask-builder:0f1e2d3c-4b5a-4697-8899-aabbccddeeff";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_progress_then_succeeded_records_digests_and_dependencies() {
    let f = fixture_env().await;
    f.store.insert_run(&run("ca101", BUILD)).await.unwrap();

    let answer = f.invoke(&event("in-progress.json", "ca101", BUILD)).await;
    assert_eq!(answer["outcome"], "updated", "{answer}");
    let r = f.store.get_run("ca101").await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Running);
    assert!(r.start_time.is_some());

    f.put_result("ca101", "result-succeeded.json").await;
    let answer = f.invoke(&event("succeeded.json", "ca101", BUILD)).await;
    assert_eq!(answer["status"], "Succeeded", "{answer}");
    let r = f.store.get_run("ca101").await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.error, None);
    assert!(r.finish_time.is_some());
    assert_eq!(r.output_images.len(), 1);
    assert_eq!(
        r.output_images[0].digest,
        format!("sha256:{}", "a".repeat(64))
    );
    assert_eq!(r.output_images[0].tag, "ca12");
    assert_eq!(r.base_images.len(), 2);
    assert_eq!(r.steps.len(), 1);

    // The dependency index: the task now depends on the bases it used.
    let deps = f.store.dependencies_of("web").await.unwrap();
    let mut images: Vec<_> = deps.iter().map(|d| d.image.as_str()).collect();
    images.sort();
    assert_eq!(
        images,
        [
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/base:1",
            "docker.io/library/golang:1.22"
        ]
    );
    let dependents = f
        .store
        .dependents_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/base:1")
        .await
        .unwrap();
    assert_eq!(dependents.len(), 1);
    assert_eq!(dependents[0].0, "web");
    assert_eq!(
        dependents[0].1.digest,
        Some(format!("sha256:{}", "b".repeat(64)))
    );

    // EventBridge may deliver twice: nothing changes.
    let answer = f.invoke(&event("succeeded.json", "ca101", BUILD)).await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_build_fails_the_run() {
    let f = fixture_env().await;
    f.store.insert_run(&run("ca201", BUILD)).await.unwrap();
    f.put_result("ca201", "result-failed.json").await;
    let answer = f.invoke(&event("failed.json", "ca201", BUILD)).await;
    assert_eq!(answer["status"], "Failed", "{answer}");
    let r = f.store.get_run("ca201").await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.error.as_deref(), Some("step build exited with code 1"));
    assert!(r.output_images.is_empty());
    assert_eq!(r.steps[0].exit_code, Some(1));
    assert!(f.store.dependencies_of("web").await.unwrap().is_empty());

    // Without a result (the build failed before the executor ran).
    f.store.insert_run(&run("ca202", BUILD)).await.unwrap();
    let answer = f.invoke(&event("failed.json", "ca202", BUILD)).await;
    assert_eq!(answer["status"], "Failed", "{answer}");
    let r = f.store.get_run("ca202").await.unwrap().unwrap();
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("without an executor result"),
        "{:?}",
        r.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_crtask_did_not_start_are_ignored() {
    let f = fixture_env().await;
    let answer = f
        .invoke(&serde_json::from_slice(&fixture("not-crtask.json")).unwrap())
        .await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    let answer = f.invoke(&event("succeeded.json", "ca404", BUILD)).await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
}

/// Task `app`, built on what task `web` pushes, last built on `old`.
async fn downstream_task(store: &crtask_aws::DynamoStore, base: &str, old: &str) {
    use crtask_core::domain::model::BaseDependency;
    let app = crtask_testkit::task("app");
    store.create_task(&app).await.unwrap();
    store
        .set_dependencies(
            "app",
            &[BaseDependency {
                image: base.into(),
                digest: Some(old.into()),
                runtime: true,
            }],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn succeeded_run_rebuilds_the_tasks_built_on_its_push() {
    let f = fixture_env().await;
    // The result fixture pushes <ecr>/web:ca12.
    let pushed = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:ca12";
    let old = format!("sha256:{}", "0".repeat(64));
    downstream_task(&f.store, pushed, &old).await;
    f.store.insert_run(&run("ca301", BUILD)).await.unwrap();
    f.put_result("ca301", "result-succeeded.json").await;

    let answer = f.invoke(&event("succeeded.json", "ca301", BUILD)).await;
    assert_eq!(answer["status"], "Succeeded", "{answer}");
    let cascaded: Vec<String> = answer["cascaded"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(cascaded.len(), 1, "{answer}");
    let next = f.store.get_run(&cascaded[0]).await.unwrap().unwrap();
    assert_eq!(next.task.as_deref(), Some("app"));
    match &next.trigger {
        Trigger::ImageUpdate {
            image,
            old_digest,
            new_digest,
            cause,
        } => {
            assert_eq!(image, pushed);
            assert_eq!(old_digest.as_deref(), Some(old.as_str()));
            assert_eq!(new_digest, &format!("sha256:{}", "a".repeat(64)));
            assert!(
                cause.as_deref().unwrap_or_default().contains("ca301"),
                "{cause:?}"
            );
        }
        other => panic!("trigger {other:?}"),
    }
    // Dispatched: one StartBuild, for the downstream run.
    let calls = f.codebuild.calls("StartBuild");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(next.builder_ref.is_some(), "{next:?}");

    // A redelivered event starts nothing more.
    let again = f.invoke(&event("succeeded.json", "ca301", BUILD)).await;
    assert_eq!(again["outcome"], "ignored", "{again}");
    assert_eq!(f.codebuild.calls("StartBuild").len(), 1);
    let runs = f
        .store
        .list_runs(&crtask_core::domain::model::RunFilter {
            task: Some("app".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_run_rebuilds_nothing() {
    let f = fixture_env().await;
    let old = format!("sha256:{}", "0".repeat(64));
    downstream_task(
        &f.store,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:ca12",
        &old,
    )
    .await;
    f.store.insert_run(&run("ca302", BUILD)).await.unwrap();
    f.put_result("ca302", "result-failed.json").await;
    let answer = f.invoke(&event("failed.json", "ca302", BUILD)).await;
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert!(f.codebuild.calls("StartBuild").is_empty());
    assert_eq!(
        f.store.list_runs(&Default::default()).await.unwrap().len(),
        1
    );
}

#[cfg(target_os = "linux")]
#[test]
fn binary_is_linked_position_dependent() {
    lambda::assert_position_dependent(Path::new(env!("CARGO_BIN_EXE_build-status")));
}

/// A log group receiving, through an EventBridge rule on the default bus,
/// the `crtask Run State Change` events of `run_id` (moto delivers rule
/// targets, so this is what a user's rule would see).
async fn run_events_sink(run_id: &str) -> String {
    let conf = harness::sdk_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let events = aws_sdk_eventbridge::Client::new(&conf);
    let group = harness::unique("/crtask/run-events");
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let rule = harness::unique("crtask-runs");
    let pattern = serde_json::json!({
        "source": ["crtask"],
        "detail-type": ["crtask Run State Change"],
        "detail": {"runId": [run_id]},
    });
    events
        .put_rule()
        .name(&rule)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("log")
                .arn(format!(
                    "arn:aws:logs:us-east-1:123456789012:log-group:{group}"
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    group
}

/// The events the sink's log group holds, oldest first. Read with a plain
/// FilterLogEvents request: moto writes the target's timestamps as
/// fractional milliseconds, which the SDK's parser refuses.
async fn sunk(group: &str) -> Vec<Value> {
    let answer: Value = reqwest::Client::new()
        .post(harness::endpoint())
        .header("X-Amz-Target", "Logs_20140328.FilterLogEvents")
        // moto picks the service from the credential scope (it checks no signature).
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(serde_json::json!({"logGroupName": group}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {answer}"))
        .iter()
        .filter_map(|e| serde_json::from_str(e["message"].as_str()?).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_starts_and_ends_go_to_the_default_event_bus() {
    let f = fixture_env().await;
    let group = run_events_sink("ca301").await;
    f.store.insert_run(&run("ca301", BUILD)).await.unwrap();

    f.invoke(&event("in-progress.json", "ca301", BUILD)).await;
    f.put_result("ca301", "result-succeeded.json").await;
    f.invoke(&event("succeeded.json", "ca301", BUILD)).await;
    // Redelivered: the run does not change, so nothing more is published.
    f.invoke(&event("succeeded.json", "ca301", BUILD)).await;

    let got = sunk(&group).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    for e in &got {
        assert_eq!(e["source"], "crtask");
        assert_eq!(e["detail-type"], "crtask Run State Change");
        assert_eq!(e["detail"]["runId"], "ca301");
        assert_eq!(e["detail"]["task"], "web");
        assert_eq!(e["detail"]["version"], 1);
    }
    let (start, end) = (&got[0]["detail"], &got[1]["detail"]);
    assert_eq!(start["event"], "run.started");
    assert_eq!(start["status"], "Running");
    assert_eq!(end["event"], "run.finished");
    assert_eq!(end["status"], "Succeeded");
    assert_eq!(
        end["outputImages"][0]["digest"],
        format!("sha256:{}", "a".repeat(64))
    );
    assert!(end.get("spec").is_none());
    assert!(
        f.function
            .aws_calls()
            .iter()
            .any(|c| c.contains("PutEvents")),
        "{:?}",
        f.function.aws_calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_published_with_its_error() {
    let f = fixture_env().await;
    let group = run_events_sink("ca302").await;
    f.store.insert_run(&run("ca302", BUILD)).await.unwrap();
    f.put_result("ca302", "result-failed.json").await;
    f.invoke(&event("failed.json", "ca302", BUILD)).await;
    let got = sunk(&group).await;
    // Queued straight to Failed: only the end.
    assert_eq!(got.len(), 1, "{got:#?}");
    let d = &got[0]["detail"];
    assert_eq!(d["event"], "run.finished");
    assert_eq!(d["status"], "Failed");
    assert_eq!(d["error"], "step build exited with code 1");
}
