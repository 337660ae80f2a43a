//! `--assign-identity` on AWS: the `git-webhook` binary (Runtime API
//! emulator, DynamoDB on `moto_server`) started with the template's
//! `CRTASK_TASK_ROLE_PATH`. CodeBuild is a recording stub because moto's
//! StartBuild ignores overrides: the request itself is asserted. A task
//! whose role is under the path builds with it (`serviceRoleOverride`); a
//! task whose role is outside it (a record written around the CLI's check)
//! starts no build and its run fails with the reason.

use crtask_core::domain::model::{RunFilter, RunStatus};
use crtask_core::ports::Store;
use crtask_testkit::aws as harness;
use crtask_testkit::aws::lambda::{Function, RecordingStub};
use crtask_testkit::model::REPO_URL;
use crtask_testkit::payload::function_url_answer;
use crtask_testkit::{function_url_event, sign, task, GithubPush};
use std::path::Path;

const COMMIT: &str = "6b2f4d0a1c8e5f3a9b7d2c4e6f8a0b1c3d5e7f90";
const ALLOWED: &str = "arn:aws:iam::123456789012:role/crtask-tasks/web-builder";
const OUTSIDE: &str = "arn:aws:iam::123456789012:role/admin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_run_with_the_task_role_only_under_the_allowed_path() {
    let store = harness::store().await;
    let mut web = task("web");
    web.identity = Some(ALLOWED.into());
    store.create_task(&web).await.unwrap();
    let mut rogue = task("rogue");
    rogue.identity = Some(OUTSIDE.into());
    store.create_task(&rogue).await.unwrap();
    store.create_task(&task("plain")).await.unwrap();
    let secret = "whsec-role-0123456789abcdefghijklmnopqrstuvwxyzAB".to_string();
    let arn = harness::secret("crtask/git-webhook-role", &secret).await;
    let codebuild = RecordingStub::codebuild();
    let function = Function::start(
        Path::new(env!("CARGO_BIN_EXE_git-webhook")),
        harness::endpoint(),
        Some(&codebuild.url()),
        &[
            ("CRTASK_TABLE", store.table()),
            ("CRTASK_BUCKET", "crtask-bucket"),
            ("CRTASK_BUILDER_PROJECT", "crtask-builder"),
            ("CRTASK_GIT_WEBHOOK_SECRET_ARN", arn.as_str()),
            ("CRTASK_TASK_ROLE_PATH", "/crtask-tasks/"),
        ],
    );
    let body = GithubPush::new(REPO_URL, "main", COMMIT).body();
    let event = function_url_event(
        "POST",
        "/webhooks/git",
        &[
            ("Content-Type", "application/json".into()),
            ("X-GitHub-Event", "push".into()),
            (
                "X-GitHub-Delivery",
                "8e1c5a52-0d7e-4f43-9d0e-role00000001".into(),
            ),
            ("X-Hub-Signature-256", sign::github(&secret, &body)),
        ],
        &body,
    );
    let outcome = tokio::task::block_in_place(|| function.invoke(&event));
    let (status, answer) = function_url_answer(&outcome.response());
    assert_eq!(status, 202, "{answer}");

    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    let by_task = |name: &str| {
        runs.iter()
            .find(|r| r.task.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no run of {name}"))
    };
    // Two builds started: web's with its role, plain's with the project's.
    let calls = codebuild.calls("StartBuild");
    assert_eq!(calls.len(), 2, "{calls:?}");
    let env_of = |c: &serde_json::Value, k: &str| {
        c["environmentVariablesOverride"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == k)
            .and_then(|v| v["value"].as_str())
            .map(str::to_string)
    };
    let web_call = calls
        .iter()
        .find(|c| env_of(c, "CRTASK_TASK").as_deref() == Some("web"))
        .expect("web's build");
    assert_eq!(web_call["serviceRoleOverride"], ALLOWED, "{web_call}");
    let plain_call = calls
        .iter()
        .find(|c| env_of(c, "CRTASK_TASK").as_deref() == Some("plain"))
        .expect("plain's build");
    assert!(
        plain_call.get("serviceRoleOverride").is_none(),
        "{plain_call}"
    );
    assert!(by_task("web").builder_ref.is_some());
    // The rogue role reached no StartBuild; the run failed with the reason.
    assert!(
        calls
            .iter()
            .all(|c| env_of(c, "CRTASK_TASK").as_deref() != Some("rogue")),
        "{calls:?}"
    );
    let rogue_run = store
        .get_run(&by_task("rogue").run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rogue_run.status, RunStatus::Failed);
    assert!(rogue_run.builder_ref.is_none());
    let error = rogue_run.error.unwrap_or_default();
    assert!(error.contains("outside the path"), "{error}");
    assert!(error.contains("/crtask-tasks/"), "{error}");
}
