//! What `infra/aws/build.sh` (`sam build`) produces, checked as `sam deploy`
//! would ship it: four arm64 `bootstrap` binaries (position-dependent, each
//! under the size budget) and the executor layer's x86_64 `crtask`; then
//! each bootstrap started under `qemu-aarch64` against the Lambda Runtime
//! API emulator (DynamoDB and Secrets Manager on moto_server, CodeBuild on
//! the recording stub, as in functions/*/tests/lambda.rs) answers one real
//! event. Skipped (with the reason) when nothing was built, except when CRTASK_REQUIRE_SAM_BUILD=1.

use crtask_core::ports::Store;
use crtask_testkit::aws as harness;
use crtask_testkit::aws::lambda::{Function, Outcome, RecordingStub};
use crtask_testkit::payload::function_url_answer;
use crtask_testkit::{function_url_event, sign, task, GithubPush, RunBuilder};
use crtask_tests::sam_build::{
    arm64_launcher, elf, sam_build, Elf, EM_AARCH64, EM_X86_64, ET_EXEC, EXECUTOR, FUNCTIONS,
};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Issue 18: each function binary under 8 MiB.
const SIZE_BUDGET: u64 = 8 * 1024 * 1024;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Checks that `path` is an executable ELF file for `machine`; its size.
fn executable(what: &str, path: &Path, machine: u16) -> (Elf, u64) {
    let header = elf(path).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(header.machine, machine, "{what}: wrong machine type");
    let meta = std::fs::metadata(path).unwrap();
    assert!(
        meta.permissions().mode() & 0o111 != 0,
        "{what}: not executable"
    );
    (header, meta.len())
}

#[test]
fn sam_build_has_four_arm64_bootstraps_and_the_x86_64_executor() {
    let Some(dir) = sam_build("sam_build_has_four_arm64_bootstraps_and_the_x86_64_executor") else {
        return;
    };
    let mut over = Vec::new();
    for (id, name) in FUNCTIONS {
        let (header, size) = executable(id, &dir.join(id).join("bootstrap"), EM_AARCH64);
        assert_eq!(
            header.kind, ET_EXEC,
            "{id}: not position-dependent (functions/link.rs)"
        );
        println!("{name:<15} arm64 bootstrap {:>9}", mib(size));
        if size >= SIZE_BUDGET {
            over.push(format!("{name} {}", mib(size)));
        }
    }
    // The executor runs on x86_64 CodeBuild.
    let (_, size) = executable("ExecutorLayer", &dir.join(EXECUTOR), EM_X86_64);
    println!("{:<15} x86_64 crtask    {:>9}", "executor layer", mib(size));
    assert!(
        over.is_empty(),
        "over the {} budget: {over:?}",
        mib(SIZE_BUDGET)
    );
}

/// The bootstrap of `function` (logical id), or `None` when not built.
fn bootstrap(test: &str, function: &str) -> Option<PathBuf> {
    let path = sam_build(test)?.join(function).join("bootstrap");
    assert!(path.is_file(), "{} is missing", path.display());
    Some(path)
}

/// `bootstrap` under qemu-aarch64, with the environment the template's
/// `Globals` give every function (`table`, `bucket`) plus `extra`.
fn start(
    bootstrap: &Path,
    codebuild: &RecordingStub,
    table: &str,
    bucket: &str,
    extra: &[(&str, &str)],
) -> Function {
    let launcher = arm64_launcher().unwrap_or_else(|e| panic!("{e}"));
    let launcher: Vec<&OsStr> = launcher.iter().map(|a| a.as_os_str()).collect();
    let mut env = vec![
        ("CRTASK_TABLE", table),
        ("CRTASK_BUCKET", bucket),
        ("CRTASK_BUILDER_PROJECT", "crtask-builder"),
        (
            "CRTASK_REGISTRY_HOST",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        ),
    ];
    env.extend_from_slice(extra);
    Function::start_under(
        &launcher,
        bootstrap,
        harness::endpoint(),
        Some(&codebuild.url()),
        &env,
    )
}

/// One invocation; emulation is slower than the host, so the wait is longer
/// than [`Function::invoke`]'s.
fn invoke(function: &Function, event: &Value) -> Outcome {
    tokio::task::block_in_place(|| function.api.invoke(event, Duration::from_secs(120)))
}

fn fixture(dir: &str, name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/core/tests/fixtures")
        .join(dir)
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm64_git_webhook_answers_a_signed_push_and_refuses_a_forged_one() {
    let test = "arm64_git_webhook_answers_a_signed_push_and_refuses_a_forged_one";
    let Some(bin) = bootstrap(test, "GitWebhookFunction") else {
        return;
    };
    let store = harness::store().await;
    store.create_task(&task("web")).await.unwrap();
    let secret = "whsec-0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
    let arn = harness::secret("crtask/git-webhook", secret).await;
    let codebuild = RecordingStub::codebuild();
    let function = start(
        &bin,
        &codebuild,
        store.table(),
        "crtask-bucket",
        &[("CRTASK_GIT_WEBHOOK_SECRET_ARN", &arn)],
    );
    let body = GithubPush::new(
        "https://github.com/acme/app.git",
        "main",
        "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f",
    )
    .body();
    let headers = |signature: String| {
        vec![
            ("Content-Type", "application/json".to_string()),
            ("X-GitHub-Event", "push".into()),
            (
                "X-GitHub-Delivery",
                "9a1c3e5f-0000-4000-8000-000000000018".into(),
            ),
            ("X-Hub-Signature-256", signature),
        ]
    };

    let forged = function_url_event(
        "POST",
        "/webhooks/git",
        &headers(sign::github("wrong", &body)),
        &body,
    );
    let (status, answer) = function_url_answer(&invoke(&function, &forged).response());
    assert_eq!(status, 401, "{answer}");
    assert!(codebuild.calls("StartBuild").is_empty());

    let signed = function_url_event(
        "POST",
        "/webhooks/git",
        &headers(sign::github(secret, &body)),
        &body,
    );
    let (status, answer) = function_url_answer(&invoke(&function, &signed).response());
    assert_eq!(status, 202, "{answer}");
    assert_eq!(codebuild.calls("StartBuild").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm64_build_status_moves_a_queued_run_to_running() {
    let test = "arm64_build_status_moves_a_queued_run_to_running";
    let Some(bin) = bootstrap(test, "BuildStatusFunction") else {
        return;
    };
    let build = "crtask-builder:0f1e2d3c-4b5a-4697-8899-aabbccddee18";
    let store = harness::store().await;
    store
        .insert_run(&RunBuilder::new("ca18").builder_ref(Some(build)).build())
        .await
        .unwrap();
    let (_, bucket) = harness::bucket().await;
    let codebuild = RecordingStub::codebuild();
    let function = start(&bin, &codebuild, store.table(), &bucket, &[]);
    let mut event = fixture("codebuild", "in-progress.json");
    let arn = format!("arn:aws:codebuild:us-east-1:123456789012:build/{build}");
    event["detail"]["build-id"] = arn.clone().into();
    event["resources"] = json!([arn]);
    for v in event["detail"]["additional-information"]["environment"]["environment-variables"]
        .as_array_mut()
        .unwrap()
    {
        if v["name"] == "CRTASK_RUN_ID" {
            v["value"] = "ca18".into();
        }
    }
    let answer = invoke(&function, &event).response();
    assert_eq!(answer["outcome"], "updated", "{answer}");
    let run = store.get_run("ca18").await.unwrap().unwrap();
    assert_eq!(run.status, crtask_core::domain::model::RunStatus::Running);

    // Garbage is an error report, not a crash: the next event is answered.
    let outcome = invoke(&function, &json!({"detail-type": 7}));
    assert!(
        matches!(outcome, Outcome::Error(_) | Outcome::Response(_)),
        "{outcome:?}"
    );
    let answer = invoke(&function, &fixture("codebuild", "not-crtask.json")).response();
    assert_eq!(answer["outcome"], "ignored", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm64_registry_event_records_an_ecr_push() {
    let test = "arm64_registry_event_records_an_ecr_push";
    let Some(bin) = bootstrap(test, "RegistryEventFunction") else {
        return;
    };
    let store = harness::store().await;
    let arn = harness::secret("crtask/registry", "regsec-0123456789abcdefghijklmnop").await;
    let codebuild = RecordingStub::codebuild();
    let function = start(
        &bin,
        &codebuild,
        store.table(),
        "crtask-bucket",
        &[
            ("CRTASK_REGISTRY_WEBHOOK_SECRET_ARN", &arn),
            ("CRTASK_SETTLE_WINDOW", "1"),
        ],
    );
    let answer = invoke(
        &function,
        &fixture("registry", "ecr-push-success-tagged.json"),
    )
    .response();
    // Nothing depends on the image: recorded, nothing started.
    assert_eq!(answer["outcome"], "recorded", "{answer}");
    assert!(codebuild.calls("StartBuild").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm64_schedule_answers_a_poll_tick_and_rejects_a_forged_timer() {
    let test = "arm64_schedule_answers_a_poll_tick_and_rejects_a_forged_timer";
    let Some(bin) = bootstrap(test, "ScheduleFunction") else {
        return;
    };
    let store = harness::store().await;
    let secret_arn =
        harness::secret("crtask/schedule", "schedsec-0123456789abcdefghijklmnop").await;
    let codebuild = RecordingStub::codebuild();
    let function = start(
        &bin,
        &codebuild,
        store.table(),
        "crtask-ctx",
        &[
            ("CRTASK_SCHEDULE_SECRET_ARN", &secret_arn),
            ("CRTASK_SCHEDULE_GROUP", "crtask-timers"),
            ("CRTASK_POLL_INTERVAL", "300"),
            ("CRTASK_SETTLE_WINDOW", "0"),
        ],
    );
    let answer = invoke(
        &function,
        &json!({"kind": "poll-tick", "scheduledTime": "2026-12-06T08:00:00Z"}),
    )
    .response();
    assert_eq!(answer["outcome"], "polled", "{answer}");
    let answer = invoke(
        &function,
        &json!({"task": "web", "timer": "t1", "schedule": "web.t1",
            "scheduledTime": "2026-12-06T08:00:00Z", "signature": "0".repeat(64)}),
    )
    .response();
    assert_eq!(answer["outcome"], "rejected", "{answer}");
    assert!(codebuild.calls("StartBuild").is_empty());
}
