//! One git push across the functions, with the shapes the services really
//! produce and nothing in between invented by a stub:
//!
//! signed push -> `git-webhook` (process) -> `StartBuild` answered by
//! moto's CodeBuild -> the build's own ARN (moto's `BatchGetBuilds`) in a
//! "Build State Change" event -> `build-status` (process) finishes the run
//! -> the cascade's `StartBuild`, answered by moto too.
//!
//! Before, the run kept `StartBuild`'s `build.id` while CodeBuild's events
//! name the build by ARN, so build-status ignored every real event and no
//! run on AWS ever finished. The executor's result object is the one file
//! here written by the test: `crtask exec` writes it inside the build,
//! which moto does not run.
//!
//! Needs the `git-webhook` binary beside `build-status` (a workspace build
//! makes both: `cargo nextest run --workspace`, `infra/test.sh`).

#[path = "../../../shared/aws/tests/harness/codebuild.rs"]
mod codebuild;
#[path = "../../../shared/aws/tests/harness/mod.rs"]
mod harness;
#[path = "../../../shared/aws/tests/harness/lambda.rs"]
mod lambda;

use crtask_core::domain::model::{BaseDependency, RunFilter, RunStatus, Trigger};
use crtask_core::ports::Store;
use hmac::{Hmac, KeyInit, Mac};
use lambda::{Function, Outcome};
use serde_json::{json, Value};
use sha2::Sha256;
use std::path::{Path, PathBuf};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const COMMIT: &str = "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f";
const SECRET: &str = "whsec-0123456789abcdefghijklmnopqrstuvwxyzABCDEF";

fn codebuild_fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/core/tests/fixtures/codebuild")
        .join(name);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The `git-webhook` binary the workspace build put beside this package's.
fn git_webhook_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_build-status")).with_file_name("git-webhook");
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (`cargo build -p git-webhook`; `cargo nextest run --workspace` does)",
        path.display()
    );
    path
}

fn signed_push() -> Value {
    let commit = json!({"id": COMMIT, "message": "change", "added": [], "removed": [], "modified": ["app.go"]});
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000001",
        "after": COMMIT,
        "created": false, "deleted": false, "forced": false,
        "commits": [commit],
        "head_commit": commit,
        "repository": {"full_name": "acme/app", "clone_url": "https://github.com/acme/app.git", "html_url": "https://github.com/acme/app", "default_branch": "main"},
        "pusher": {"name": "tester"}
    }))
    .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhooks/git",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": "0b6e1d2c-cc78-11e3-81ab-4c9367dc0958",
            "x-hub-signature-256": signature,
            "user-agent": "GitHub-Hookshot/7e5a3b1"
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {"method": "POST", "path": "/webhooks/git", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.10", "userAgent": "GitHub-Hookshot/7e5a3b1"},
            "requestId": "d1b3f7a2-0c4e-4f6a-9b8d-2e1f3a5c7b9e",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_766_400_000u64
        },
        "body": String::from_utf8(body).unwrap(),
        "isBase64Encoded": false
    })
}

/// A state-change event for `build` (as moto describes it) running `run_id`.
fn state_change(fixture: &str, build: &aws_sdk_codebuild::types::Build, run_id: &str) -> Value {
    let mut e = codebuild_fixture(fixture);
    let arn = build.arn().expect("moto names the build's ARN");
    e["region"] = "us-east-1".into();
    e["resources"] = json!([arn]);
    e["detail"]["build-id"] = arn.into();
    e["detail"]["project-name"] = build.project_name().unwrap_or_default().into();
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

fn answer(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Response(v) => v,
        other => panic!("the function did not answer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_ends_succeeded_and_cascades_with_real_build_shapes() {
    let conf = harness::sdk_config().await;
    let codebuild = aws_sdk_codebuild::Client::new(&conf);
    let project = codebuild::project(&codebuild, "crtask-builder").await;
    let store = harness::store().await;
    let (s3, bucket) = harness::bucket().await;
    let arn = harness::secret("crtask/git-webhook", SECRET).await;

    // `web` builds on commits and pushes web:latest; `app` is built on it.
    let mut web = harness::task("web");
    web.images = vec!["web:latest".into()];
    store.create_task(&web).await.unwrap();
    let mut app = harness::task("app");
    app.context = "https://github.com/acme/other.git#main".into();
    store.create_task(&app).await.unwrap();
    let pushed = format!("{REGISTRY}/web:latest");
    let old = format!("sha256:{}", "0".repeat(64));
    store
        .set_dependencies(
            "app",
            &[BaseDependency {
                image: pushed.clone(),
                digest: Some(old.clone()),
                runtime: true,
            }],
        )
        .await
        .unwrap();

    let env = [
        ("CRTASK_TABLE", store.table()),
        ("CRTASK_BUCKET", bucket.as_str()),
        ("CRTASK_BUILDER_PROJECT", project.as_str()),
        ("CRTASK_REGISTRY_HOST", REGISTRY),
        ("CRTASK_GIT_WEBHOOK_SECRET_ARN", arn.as_str()),
    ];
    // CodeBuild on moto for both functions: no recording stub.
    let git_webhook = Function::start(&git_webhook_binary(), harness::endpoint(), None, &env);
    let build_status = Function::start(
        Path::new(env!("CARGO_BIN_EXE_build-status")),
        harness::endpoint(),
        None,
        &env,
    );

    // 1. The push: 202, one run, dispatched to a build moto started.
    let push = signed_push();
    let a = answer(tokio::task::block_in_place(|| git_webhook.invoke(&push)));
    assert_eq!(a["statusCode"], 202, "{a}");
    let runs = store
        .list_runs(&RunFilter {
            task: Some("web".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_id = runs[0].run_id.clone();
    let build_ref = runs[0]
        .builder_ref
        .clone()
        .unwrap_or_else(|| panic!("the run was not dispatched: {:?}", runs[0]));
    let builds = codebuild
        .batch_get_builds()
        .ids(&build_ref)
        .send()
        .await
        .unwrap();
    let build = builds
        .builds()
        .first()
        .unwrap_or_else(|| panic!("moto knows no build {build_ref}"))
        .clone();
    let build_arn = build.arn().unwrap().to_string();
    // The two names of one build really differ: this is what went wrong.
    assert_ne!(build_arn, build_ref);
    assert!(
        build_arn.ends_with(&format!(":build/{build_ref}")),
        "{build_arn}"
    );

    // 2. CodeBuild says the build is in progress, by ARN.
    let a = answer(tokio::task::block_in_place(|| {
        build_status.invoke(&state_change("in-progress.json", &build, &run_id))
    }));
    assert_eq!(a["outcome"], "updated", "{a}");
    assert_eq!(
        store.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Running
    );

    // 3. The executor's result, where the buildspec uploads it, then the
    //    final state change.
    let new_digest = format!("sha256:{}", "a".repeat(64));
    let mut result = codebuild_fixture("result-succeeded.json");
    result["runId"] = run_id.clone().into();
    result["outputImages"] = json!([{
        "registry": REGISTRY, "repository": "web", "tag": "latest", "digest": new_digest
    }]);
    s3.put_object()
        .bucket(&bucket)
        .key(format!("logs/{run_id}.result.json"))
        .body(serde_json::to_vec(&result).unwrap().into())
        .send()
        .await
        .unwrap();
    let a = answer(tokio::task::block_in_place(|| {
        build_status.invoke(&state_change("succeeded.json", &build, &run_id))
    }));
    assert_eq!(a["status"], "Succeeded", "{a}");
    let done = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    assert_eq!(done.error, None);
    assert_eq!(done.output_images[0].digest, new_digest);
    assert_eq!(done.builder_ref.as_deref(), Some(build_ref.as_str()));

    // 4. The cascade: `app` rebuilds for the new web:latest, on a build
    //    moto started.
    let cascaded: Vec<&str> = a["cascaded"]
        .as_array()
        .unwrap_or_else(|| panic!("{a}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(cascaded.len(), 1, "{a}");
    let next = store.get_run(cascaded[0]).await.unwrap().unwrap();
    assert_eq!(next.task.as_deref(), Some("app"));
    match &next.trigger {
        Trigger::ImageUpdate {
            image,
            new_digest: d,
            ..
        } => {
            assert_eq!(image, &pushed);
            assert_eq!(d, &new_digest);
        }
        other => panic!("trigger {other:?}"),
    }
    let next_build = next
        .builder_ref
        .clone()
        .expect("the cascade was dispatched");
    let listed = codebuild
        .list_builds_for_project()
        .project_name(&project)
        .send()
        .await
        .unwrap();
    let mut ids = listed.ids().to_vec();
    ids.sort();
    let mut expected = vec![build_ref.clone(), next_build];
    expected.sort();
    assert_eq!(ids, expected);

    // 5. EventBridge delivers the final event again: nothing changes.
    let again = answer(tokio::task::block_in_place(|| {
        build_status.invoke(&state_change("succeeded.json", &build, &run_id))
    }));
    assert_eq!(again["outcome"], "ignored", "{again}");
    assert_eq!(
        codebuild
            .list_builds_for_project()
            .project_name(&project)
            .send()
            .await
            .unwrap()
            .ids()
            .len(),
        2
    );
}
