//! A multi-platform run on AWS, with the real producers and consumers and
//! only CodeBuild's machines stood in for:
//!
//! `crtask --platform aws build --platform linux/amd64,linux/arm64` (moto:
//! DynamoDB, S3) -> one `StartBuild` per platform, recorded on the wire by
//! a CodeBuild stub (moto's CodeBuild drops the environment overrides this
//! test checks) -> `crtask exec` run here with each request's environment,
//! as the buildspec runs it, pushing to a distribution registry -> the
//! buildspec's uploads -> "Build State Change" events shaped as CodeBuild
//! sends them (build ARN, the request's environment) -> the `build-status`
//! function (process) -> the assemble `StartBuild` -> `crtask exec` again
//! -> the final event: the run records the index and both platforms.
//!
//! This machine is x86-64: the arm64 build runs under qemu user emulation
//! (binfmt, from infra/local/setup.sh) in place of CodeBuild's native
//! ARM_CONTAINER. CodeBuild runs `crtask exec` with the docker engine; here
//! it is buildah (the only engine installed).
//!
//! Needs `cargo build -p crtask -p build-status` (both binaries beside the
//! tests), `moto_server`, `docker-registry`, buildah and qemu.

use crtask_core::domain::model::{Run, RunStatus};
use crtask_core::ports::Store;
use crtask_testkit::aws::lambda::{Function, RecordingStub};
use crtask_testkit::aws::{self as harness};
use crtask_tests::{crtask_bin, repo_root, seed_multiarch, show, write_files, Registry};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// The stack: moto's table and bucket, the CodeBuild stub, the function.
struct Stack {
    store: crtask_aws::DynamoStore,
    s3: aws_sdk_s3::Client,
    bucket: String,
    codebuild: RecordingStub,
    build_status: Function,
    registry: Registry,
}

const PROJECT: &str = "crtask-builder";

impl Stack {
    async fn start() -> Stack {
        let store = harness::store().await;
        let (s3, bucket) = harness::bucket().await;
        // The test registry's helpers use blocking HTTP clients.
        let registry = tokio::task::block_in_place(|| Registry::start().unwrap());
        let codebuild = RecordingStub::codebuild();
        let binary = crtask_bin().with_file_name("build-status");
        assert!(
            binary.is_file(),
            "{} is missing: cargo build -p build-status",
            binary.display()
        );
        let build_status = Function::start(
            &binary,
            harness::endpoint(),
            Some(&codebuild.url()),
            &[
                ("CRTASK_TABLE", store.table()),
                ("CRTASK_BUCKET", bucket.as_str()),
                ("CRTASK_BUILDER_PROJECT", PROJECT),
                ("CRTASK_REGISTRY_HOST", registry.host.as_str()),
            ],
        );
        Stack {
            store,
            s3,
            bucket,
            codebuild,
            build_status,
            registry,
        }
    }

    /// `crtask --platform aws build` of `dir` for both platforms; the run id.
    fn submit(&self, dir: &Path) -> String {
        let out = harness::crtask_on_aws(
            self.store.table(),
            &self.bucket,
            &[
                "build",
                "-t",
                "app:{{.Run.ID}}",
                "--platform",
                "linux/amd64,linux/arm64",
                "--no-wait",
                "-o",
                "json",
                dir.to_str().unwrap(),
            ],
        )
        .env("CRTASK_AWS_PROJECT", PROJECT)
        .env("CRTASK_AWS_REGISTRY", &self.registry.host)
        .env("AWS_ENDPOINT_URL_CODEBUILD", self.codebuild.url())
        .output()
        .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["runId"].as_str().unwrap().to_string()
    }

    async fn run(&self, id: &str) -> Run {
        self.store.get_run(id).await.unwrap().unwrap()
    }

    /// The `StartBuild` requests of run `id` so far, as sent.
    fn starts(&self, id: &str) -> Vec<Value> {
        self.codebuild
            .calls("StartBuild")
            .into_iter()
            .filter(|b| env_of(b, "CRTASK_RUN_ID") == Some(id))
            .collect()
    }

    /// The request of run `id` with `CRTASK_RESULT_PART` `part`.
    fn start_of(&self, id: &str, part: &str) -> Value {
        let all = self.starts(id);
        let mut found = all
            .iter()
            .filter(|b| env_of(b, "CRTASK_RESULT_PART") == Some(part));
        let one = found
            .next()
            .unwrap_or_else(|| panic!("no {part} build: {all:?}"));
        assert!(found.next().is_none(), "two {part} builds started: {all:?}");
        one.clone()
    }

    /// What CodeBuild would do with `start`: run the buildspec's
    /// `crtask exec` with its environment here, and upload the result where
    /// `post_build` does. True when `crtask exec` succeeded.
    async fn execute(&self, start: &Value) -> bool {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        let mut c = Command::new(crtask_bin());
        c.arg("exec")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", w)
            // The buildspec's variables (CRTASK_ENGINE: buildah here, see the top).
            .env("CRTASK_ENGINE", "buildah")
            .env("CRTASK_WORK_DIR", w.join("crtask"))
            .env("CRTASK_RESULT_FILE", w.join("crtask/result.json"))
            .env("CRTASK_LOG_FILE", w.join("crtask/run.log"))
            .env("CRTASK_INSECURE_REGISTRY", &self.registry.host);
        for v in start["environmentVariablesOverride"].as_array().unwrap() {
            c.env(v["name"].as_str().unwrap(), v["value"].as_str().unwrap());
        }
        if env_of(start, "CRTASK_CONTEXT_KIND") == Some("uploaded") {
            // pre_build: `aws s3 cp $CRTASK_CONTEXT_OBJECT`.
            let object = env_of(start, "CRTASK_CONTEXT_OBJECT").unwrap();
            let key = object
                .strip_prefix(&format!("s3://{}/", self.bucket))
                .unwrap();
            let body = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
            let archive = w.join("context.tar.gz");
            std::fs::write(&archive, body).unwrap();
            c.env("CRTASK_CONTEXT_ARCHIVE", &archive);
        }
        let out = tokio::task::block_in_place(|| c.output().unwrap());
        eprintln!(
            "crtask exec ({:?}): {}",
            env_of(start, "CRTASK_RESULT_PART"),
            show(&out)
        );
        // post_build: the result beside the run's, under its part.
        let result =
            std::fs::read(w.join("crtask/result.json")).expect("crtask exec wrote a result");
        let key = format!(
            "logs/{}.{}.result.json",
            env_of(start, "CRTASK_RUN_ID").unwrap(),
            env_of(start, "CRTASK_RESULT_PART").unwrap()
        );
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(result.into())
            .send()
            .await
            .unwrap();
        out.status.success()
    }

    /// Sends CodeBuild's state change `fixture` for the build `build_ref`
    /// started by `start` to build-status; its answer.
    fn event(&self, fixture: &str, start: &Value, build_ref: &str) -> Value {
        let e = state_change(fixture, start, build_ref);
        tokio::task::block_in_place(|| self.build_status.invoke(&e)).response()
    }
}

fn env_of<'a>(start: &'a Value, name: &str) -> Option<&'a str> {
    start["environmentVariablesOverride"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
        .and_then(|v| v["value"].as_str())
}

/// A "Build State Change" event as CodeBuild sends it for the build that
/// `start` started (id `build_ref`): the build's ARN, its environment
/// (type, image and the request's variables after the project's).
fn state_change(fixture: &str, start: &Value, build_ref: &str) -> Value {
    let path = repo_root()
        .join("shared/core/tests/fixtures/codebuild")
        .join(fixture);
    let mut e: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let arn = format!("arn:aws:codebuild:us-east-1:123456789012:build/{build_ref}");
    e["region"] = "us-east-1".into();
    e["resources"] = json!([arn]);
    e["detail"]["build-id"] = arn.into();
    e["detail"]["project-name"] = PROJECT.into();
    let env = &mut e["detail"]["additional-information"]["environment"];
    if let Some(t) = start["environmentTypeOverride"].as_str() {
        env["type"] = t.into();
    }
    if let Some(i) = start["imageOverride"].as_str() {
        env["image"] = i.into();
    }
    let vars: Vec<Value> = start["environmentVariablesOverride"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| json!({"name": v["name"], "type": "PLAINTEXT", "value": v["value"]}))
        .collect();
    env["environment-variables"] = Value::Array(vars);
    e
}

/// The build id the run recorded for `platform` (or `assemble`).
fn build_ref(run: &Run, platform: &str) -> String {
    run.builds
        .iter()
        .find(|b| b.platform == platform)
        .and_then(|b| b.builder_ref.clone())
        .unwrap_or_else(|| panic!("no {platform} build in {:?}", run.builds))
}

/// The index the registry serves for `repo:tag`, as `(arch, digest)`.
fn index_of(reg: &Registry, repo: &str, tag: &str) -> Vec<(String, String)> {
    crtask_tests::index_arches(&reg.index(repo, tag))
}

fn context(reg: &Registry, check: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {}/base:multi\nRUN {check}uname -m > /built-on\nCOPY hello.txt /\n",
                    reg.host
                ),
            ),
            ("hello.txt", "hello\n"),
        ],
    );
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_platform_run_builds_each_platform_then_assembles_one_index() {
    let s = Stack::start().await;
    tokio::task::block_in_place(|| seed_multiarch(&s.registry, "base:multi", "amd64,arm64"));
    let ctx = context(&s.registry, "");
    let id = tokio::task::block_in_place(|| s.submit(ctx.path()));

    // 1. Dispatch: one StartBuild per platform, each on its native machine.
    let starts = s.starts(&id);
    assert_eq!(starts.len(), 2, "{starts:?}");
    let amd = s.start_of(&id, "linux-amd64");
    let arm = s.start_of(&id, "linux-arm64");
    assert_eq!(amd["environmentTypeOverride"], "LINUX_CONTAINER");
    assert_eq!(arm["environmentTypeOverride"], "ARM_CONTAINER");
    assert_eq!(
        arm["imageOverride"],
        "aws/codebuild/amazonlinux2-aarch64-standard:3.0"
    );
    assert_eq!(
        amd["imageOverride"],
        "aws/codebuild/amazonlinux2-x86_64-standard:5.0"
    );
    // The project's compute type holds for both (no override).
    assert!(arm.get("computeTypeOverride").is_none(), "{arm}");
    assert_ne!(amd["idempotencyToken"], arm["idempotencyToken"]);
    assert_eq!(env_of(&arm, "CRTASK_PLATFORM"), Some("linux/arm64"));
    assert_eq!(
        env_of(&arm, "CRTASK_STAGING_TAG").map(str::to_string),
        Some(format!("{}/app:crtask-{id}-linux-arm64", s.registry.host))
    );
    let run = s.run(&id).await;
    assert_eq!(run.builds.len(), 2, "{run:?}");
    assert_eq!(run.builder_ref, run.builds[0].builder_ref);
    let (amd_ref, arm_ref) = (
        build_ref(&run, "linux/amd64"),
        build_ref(&run, "linux/arm64"),
    );

    // 2. Both builds start; each runs `crtask exec` for its platform only.
    let a = s.event("in-progress.json", &arm, &arm_ref);
    assert_eq!(a["outcome"], "updated", "{a}");
    assert_eq!(s.run(&id).await.status, RunStatus::Running);
    assert!(s.execute(&arm).await, "the arm64 build failed");
    assert!(s.execute(&amd).await, "the amd64 build failed");

    // 3. The arm64 build ends first: the run waits for amd64.
    let a = s.event("succeeded.json", &arm, &arm_ref);
    assert_eq!(a["status"], "Running", "{a}");
    assert_eq!(s.starts(&id).len(), 2);
    // 4. The amd64 build ends: the assemble build starts, once.
    let a = s.event("succeeded.json", &amd, &amd_ref);
    assert_eq!(a["status"], "Running", "{a}");
    let index = s.start_of(&id, "index");
    assert_eq!(env_of(&index, "CRTASK_BUILD_ROLE"), Some("assemble"));
    assert_eq!(env_of(&index, "CRTASK_ENGINE"), Some("buildah"));
    assert_eq!(index["sourceTypeOverride"], "NO_SOURCE");
    // A redelivered event starts no second assemble build.
    let a = s.event("succeeded.json", &amd, &amd_ref);
    assert_eq!(a["outcome"], "ignored", "{a}");
    let a = s.event("succeeded.json", &arm, &arm_ref);
    assert_eq!(a["outcome"], "ignored", "{a}");
    assert_eq!(s.starts(&id).len(), 3);
    let run = s.run(&id).await;
    let platform_digests: Vec<String> =
        run.builds.iter().filter_map(|b| b.digest.clone()).collect();
    assert_eq!(platform_digests.len(), 2, "{:?}", run.builds);

    // 5. The assemble build pushes the index; its end finishes the run.
    assert!(s.execute(&index).await, "the assemble build failed");
    let index_ref = build_ref(&run, "linux/amd64,linux/arm64");
    let a = s.event("succeeded.json", &index, &index_ref);
    assert_eq!(a["status"], "Succeeded", "{a}");
    let done = s.run(&id).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    assert_eq!(done.error, None);
    let out = &done.output_images[0];
    assert_eq!(
        (out.repository.as_str(), out.tag.as_str()),
        ("app", id.as_str())
    );
    assert_eq!(
        Some(out.digest.clone()),
        tokio::task::block_in_place(|| s.registry.digest("app", &id))
    );
    let served = tokio::task::block_in_place(|| index_of(&s.registry, "app", &id));
    let mut arches: Vec<&str> = served.iter().map(|(a, _)| a.as_str()).collect();
    arches.sort();
    assert_eq!(arches, ["amd64", "arm64"], "{served:?}");
    // Three digests: the index and each platform's, as the index lists them
    // and as the platform builds pushed them.
    let recorded: Vec<(String, String)> = out
        .platforms
        .iter()
        .map(|p| (p.platform.clone(), p.digest.clone()))
        .collect();
    let expected: Vec<(String, String)> = served
        .iter()
        .map(|(a, d)| (format!("linux/{a}"), d.clone()))
        .collect();
    assert_eq!(recorded, expected);
    let mut all: Vec<&str> = recorded.iter().map(|(_, d)| d.as_str()).collect();
    all.push(&out.digest);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 3, "{done:?}");
    for d in &platform_digests {
        assert!(all.contains(&d.as_str()), "{d} not in {all:?}");
    }
    // Each platform's base digest, per platform.
    let bases: Vec<Option<&str>> = done
        .base_images
        .iter()
        .map(|b| b.platform.as_deref())
        .collect();
    assert_eq!(bases.len(), 2, "{:?}", done.base_images);
    assert!(bases.contains(&Some("linux/arm64")), "{bases:?}");
    // The arm64 image was built for arm64 (under emulation here).
    let built_on = tokio::task::block_in_place(|| {
        crtask_tests::read_from_image(
            &format!("{}/app:crtask-{id}-linux-arm64", s.registry.host),
            &s.registry.host,
            "built-on",
        )
    })
    .unwrap();
    assert_eq!(built_on.as_deref().map(str::trim), Some("aarch64"));
    // Nothing was stopped.
    assert!(s.codebuild.calls("StopBuild").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_platform_fails_the_run_and_stops_the_other_build() {
    let s = Stack::start().await;
    tokio::task::block_in_place(|| seed_multiarch(&s.registry, "base:multi", "amd64,arm64"));
    // Fails on arm64 only, for real.
    let ctx = context(&s.registry, "[ \"$(uname -m)\" = x86_64 ] && ");
    let id = tokio::task::block_in_place(|| s.submit(ctx.path()));
    let arm = s.start_of(&id, "linux-arm64");
    let run = s.run(&id).await;
    let (amd_ref, arm_ref) = (
        build_ref(&run, "linux/amd64"),
        build_ref(&run, "linux/arm64"),
    );
    assert!(!s.execute(&arm).await, "the arm64 build should fail");
    let a = s.event("failed.json", &arm, &arm_ref);
    assert_eq!(a["status"], "Failed", "{a}");
    let done = s.run(&id).await;
    assert_eq!(done.status, RunStatus::Failed);
    let error = done.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("the linux/arm64 build ended Failed"),
        "{error}"
    );
    assert!(done.finish_time.is_some());
    // The amd64 build is stopped; its late end changes nothing.
    let stops: Vec<String> = s
        .codebuild
        .calls("StopBuild")
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(stops, std::slice::from_ref(&amd_ref));
    let amd = s.start_of(&id, "linux-amd64");
    let a = s.event("stopped.json", &amd, &amd_ref);
    assert_eq!(a["outcome"], "ignored", "{a}");
    assert_eq!(s.starts(&id).len(), 2, "no assemble build");
    assert!(tokio::task::block_in_place(|| s.registry.digest("app", &id)).is_none());
}
