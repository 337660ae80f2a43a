//! CodeBuild "Build State Change" events (shaped as the CodeBuild user guide
//! documents them, in tests/fixtures/codebuild/) and executor results ->
//! run status updates.

use chrono::{DateTime, Utc};
use crtask_core::domain::model::{ContextSource, Run, RunStatus};
use crtask_core::trigger::build_status::{
    apply, build_id, dependencies_from_run, parse, same_build, Applied, BuildState, ExecResult,
};
use crtask_testkit::RunBuilder;
use std::path::PathBuf;

/// The build as `StartBuild` names it (`build.id`), kept as the run's
/// `builder_ref`.
const BUILD: &str = "crtask-builder:7f3c9a52-1d2e-4b8f-9c61-0a4e5b6c7d8e";
/// The same build as the fixtures' state-change events name it (its ARN).
const BUILD_ARN: &str =
    "arn:aws:codebuild:eu-west-1:123456789012:build/crtask-builder:7f3c9a52-1d2e-4b8f-9c61-0a4e5b6c7d8e";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/codebuild")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn event(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn result(name: &str) -> ExecResult {
    ExecResult::from_json(&fixture(name)).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Run `ca12` of task `web`, dispatched as [`BUILD`].
fn run(status: RunStatus) -> Run {
    RunBuilder::new("ca12")
        .status(status)
        .builder_ref(Some(BUILD))
        .context(ContextSource::None)
        .build()
}

#[test]
fn parses_every_fixture() {
    // (file, state, run id)
    let cases = [
        ("in-progress.json", BuildState::InProgress, Some("ca12")),
        ("succeeded.json", BuildState::Succeeded, Some("ca12")),
        ("failed.json", BuildState::Failed, Some("ca12")),
        ("stopped.json", BuildState::Stopped, Some("ca12")),
        ("not-crtask.json", BuildState::Succeeded, None),
    ];
    for (file, state, run_id) in cases {
        let c = parse(&event(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(c.state, state, "{file}");
        assert_eq!(c.run_id.as_deref(), run_id, "{file}");
        assert_eq!(c.build_id, BUILD, "{file}");
        assert_eq!(event(file)["detail"]["build-id"], BUILD_ARN, "{file}");
        assert_eq!(c.project, "crtask-builder", "{file}");
        assert!(c.time.is_some(), "{file}");
    }
    // The detail alone parses too.
    let e = event("succeeded.json");
    assert_eq!(parse(&e["detail"]).unwrap().run_id.as_deref(), Some("ca12"));
}

#[test]
fn rejects_other_events() {
    let mut e = event("succeeded.json");
    e["detail-type"] = "CodeBuild Build Phase Change".into();
    assert!(parse(&e)
        .unwrap_err()
        .to_string()
        .contains("unexpected event type"));
    let mut e = event("succeeded.json");
    e["detail"]["build-status"] = "SLEEPING".into();
    assert!(parse(&e)
        .unwrap_err()
        .to_string()
        .contains("unknown build status"));
    let mut e = event("succeeded.json");
    e["detail"].as_object_mut().unwrap().remove("build-id");
    assert!(parse(&e).is_err());
}

#[test]
fn in_progress_starts_the_run() {
    let c = parse(&event("in-progress.json")).unwrap();
    let mut r = run(RunStatus::Queued);
    r.builder_ref = None;
    let now = at("2030-01-01T00:00:00Z");
    assert_eq!(
        apply(&mut r, &c, None, now),
        Applied::Updated(RunStatus::Running)
    );
    assert_eq!(r.start_time, Some(at("2026-11-27T08:12:29Z")));
    assert_eq!(r.builder_ref.as_deref(), Some(BUILD));
    assert_eq!(r.finish_time, None);
    // Twice: nothing more.
    assert!(matches!(apply(&mut r, &c, None, now), Applied::Ignored(_)));
}

#[test]
fn succeeded_fills_digests_steps_and_dependencies() {
    let c = parse(&event("succeeded.json")).unwrap();
    let res = result("result-succeeded.json");
    let mut r = run(RunStatus::Running);
    r.error = Some("waiting for the builder".into());
    let now = at("2030-01-01T00:00:00Z");
    assert_eq!(
        apply(&mut r, &c, Some(&res), now),
        Applied::Updated(RunStatus::Succeeded)
    );
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.error, None);
    assert_eq!(r.start_time, Some(at("2026-11-27T08:13:06.120Z")));
    assert_eq!(r.finish_time, Some(at("2026-11-27T08:14:19.870Z")));
    assert_eq!(r.output_images.len(), 1);
    assert_eq!(
        r.output_images[0].digest,
        format!("sha256:{}", "a".repeat(64))
    );
    assert_eq!(r.steps.len(), 1);
    let deps = dependencies_from_run(&r);
    assert_eq!(deps.len(), 2);
    assert_eq!(
        deps[0].image,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/base:1"
    );
    assert!(deps[0].runtime);
    assert_eq!(deps[1].digest, Some(format!("sha256:{}", "c".repeat(64))));
    // A late duplicate changes nothing.
    let before = r.clone();
    assert!(matches!(
        apply(&mut r, &c, Some(&res), now),
        Applied::Ignored(_)
    ));
    assert_eq!(r, before);
}

#[test]
fn final_states_map_to_run_statuses() {
    let ok = result("result-succeeded.json");
    let failed = result("result-failed.json");
    let mut timeout = failed.clone();
    timeout.status = RunStatus::Timeout;
    timeout.error = Some("the run exceeded its timeout of 60 s".into());
    // (event, result, status, error contains)
    let cases: [(&str, Option<&ExecResult>, RunStatus, Option<&str>); 7] = [
        ("succeeded.json", None, RunStatus::Succeeded, None),
        (
            "failed.json",
            Some(&failed),
            RunStatus::Failed,
            Some("exited with code 1"),
        ),
        (
            "failed.json",
            None,
            RunStatus::Failed,
            Some("without an executor result"),
        ),
        (
            "failed.json",
            Some(&ok),
            RunStatus::Failed,
            Some("after the executor succeeded"),
        ),
        (
            "failed.json",
            Some(&timeout),
            RunStatus::Timeout,
            Some("timeout"),
        ),
        ("stopped.json", None, RunStatus::Canceled, Some("stopped")),
        (
            "succeeded.json",
            Some(&failed),
            RunStatus::Failed,
            Some("exited with code 1"),
        ),
    ];
    for (file, res, status, err) in cases {
        let c = parse(&event(file)).unwrap();
        let mut r = run(RunStatus::Running);
        assert_eq!(
            apply(&mut r, &c, res, Utc::now()),
            Applied::Updated(status),
            "{file}"
        );
        assert_eq!(r.status, status, "{file}");
        assert!(r.finish_time.is_some(), "{file}");
        match err {
            None => assert_eq!(r.error, None, "{file}"),
            Some(e) => assert!(
                r.error.as_deref().unwrap_or("").contains(e),
                "{file}: {:?}",
                r.error
            ),
        }
    }
}

#[test]
fn stale_or_foreign_events_are_ignored() {
    let c = parse(&event("succeeded.json")).unwrap();
    // Dispatched to another build.
    let mut r = run(RunStatus::Running);
    r.builder_ref =
        Some("arn:aws:codebuild:eu-west-1:123456789012:build/crtask-builder:other".into());
    assert!(matches!(
        apply(&mut r, &c, None, Utc::now()),
        Applied::Ignored(_)
    ));
    r.builder_ref = Some("crtask-builder:other".into());
    assert!(matches!(
        apply(&mut r, &c, None, Utc::now()),
        Applied::Ignored(_)
    ));
    assert_eq!(r.status, RunStatus::Running);
    // Canceled by the user before CodeBuild reported.
    let mut r = run(RunStatus::Canceled);
    assert!(matches!(
        apply(&mut r, &c, None, Utc::now()),
        Applied::Ignored(_)
    ));
    // A result for another run is not used.
    let mut res = result("result-succeeded.json");
    res.run_id = Some("ca99".into());
    let mut r = run(RunStatus::Running);
    apply(&mut r, &c, Some(&res), Utc::now());
    assert_eq!(r.status, RunStatus::Succeeded);
    assert!(r.output_images.is_empty());
}

#[test]
fn build_ids_and_arns_name_the_same_build() {
    assert_eq!(build_id(BUILD_ARN), BUILD);
    assert_eq!(build_id(BUILD), BUILD);
    assert!(same_build(BUILD, BUILD_ARN));
    assert!(same_build(BUILD_ARN, BUILD));
    assert!(!same_build(BUILD, "crtask-builder:other"));
    // Another partition keeps the same shape.
    assert_eq!(
        build_id("arn:aws-cn:codebuild:cn-north-1:123456789012:build/p:u"),
        "p:u"
    );
    // Not a build ARN: unchanged.
    assert_eq!(
        build_id("arn:aws:codebuild:eu-west-1:1:project/p"),
        "arn:aws:codebuild:eu-west-1:1:project/p"
    );
    assert_eq!(
        build_id("arn:aws:codebuild:r:1:build/"),
        "arn:aws:codebuild:r:1:build/"
    );
}

/// The run keeps what `StartBuild` answered (`build.id`), the event carries
/// the ARN: the event still finishes the run (before, every real event was
/// ignored and no run on AWS ever finished).
#[test]
fn an_event_naming_the_build_by_arn_finishes_the_run_started_by_id() {
    let c = parse(&event("succeeded.json")).unwrap();
    let res = result("result-succeeded.json");
    let mut r = run(RunStatus::Running);
    assert_eq!(r.builder_ref.as_deref(), Some(BUILD));
    assert_eq!(
        apply(&mut r, &c, Some(&res), Utc::now()),
        Applied::Updated(RunStatus::Succeeded)
    );
    assert_eq!(r.builder_ref.as_deref(), Some(BUILD));
    // A run stored with the ARN (as an older build-status recorded it) too.
    let mut r = run(RunStatus::Running);
    r.builder_ref = Some(BUILD_ARN.into());
    assert_eq!(
        apply(&mut r, &c, Some(&res), Utc::now()),
        Applied::Updated(RunStatus::Succeeded)
    );
}

/// A patch run takes the findings `crtask exec` reported (OS, packages,
/// tag pushed) but keeps the request it was queued with; a build run
/// ignores a patch section.
#[test]
fn a_patch_result_fills_the_patch_run_and_keeps_its_request() {
    use crtask_core::patch::{PatchOutcome, PatchRequest, PatchRun, TagConvention};
    let c = parse(&event("succeeded.json")).unwrap();
    let queued = PatchRun::new(PatchRequest {
        image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1".into(),
        tag_convention: TagConvention::Incremental,
        dry_run: false,
        only: Vec::new(),
    });
    let mut reported = queued.clone();
    reported.request.image = "elsewhere.example/other:9".into();
    reported.outcome = Some(PatchOutcome::Patched);
    reported.package_manager = Some("apt".into());
    reported.patched_image = Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1-1".into());
    let mut res = result("result-succeeded.json");
    res.patch = Some(reported);

    let mut r = run(RunStatus::Running);
    r.patch = Some(queued.clone());
    let now = at("2030-01-01T00:00:00Z");
    assert_eq!(
        apply(&mut r, &c, Some(&res), now),
        Applied::Updated(RunStatus::Succeeded)
    );
    let p = r.patch.expect("patch kept");
    assert_eq!(p.request, queued.request, "the queued request stays");
    assert_eq!(p.outcome, Some(PatchOutcome::Patched));
    assert_eq!(p.package_manager.as_deref(), Some("apt"));
    assert_eq!(
        p.patched_image.as_deref(),
        Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1-1")
    );

    let mut build = run(RunStatus::Running);
    apply(&mut build, &c, Some(&res), now);
    assert_eq!(build.patch, None, "a build run gets no patch section");
}
