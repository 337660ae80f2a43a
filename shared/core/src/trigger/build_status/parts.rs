//! State changes of the builds of a multi-platform run on CodeBuild (one
//! build per platform, then one assemble build: [`crate::build::fanout`]).
//!
//! Each event names one of the run's builds (in [`Run::builds`]); its
//! executor result is that build's own (`logs/<run>.<part>.result.json`,
//! [`fanout::result_part`]). Pure: the `build-status` function reads the
//! run under a lease, applies the event here, carries out the [`Step`]
//! (starts the assemble build, stops the others) and stores the run.

use super::{final_error, final_status, same_build, BuildStateChange, ExecResult};
use crate::build::fanout::{self, Next, PlatformBuild, Role};
use crate::domain::model::{PlatformImage, Run, RunStatus};
use chrono::{DateTime, Utc};

/// What applying one build's event to its run asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing changed, and why (a redelivered event, a build of no run).
    Ignored(String),
    /// Store the run (its status is now this one).
    Updated(RunStatus),
    /// Every platform image is pushed: start the assemble build with these,
    /// add [`fanout::assemble_build`] to the run, then store it.
    Assemble(Vec<PlatformImage>),
    /// A platform build did not succeed: the run is final (this status);
    /// stop the builds in `stop`, then store it.
    Failed {
        status: RunStatus,
        stop: Vec<String>,
    },
}

/// The run's build `build_id` names (either form), if it is one.
pub fn build_of<'a>(run: &'a Run, build_id: &str) -> Option<&'a PlatformBuild> {
    run.builds.iter().find(|b| {
        b.builder_ref
            .as_deref()
            .is_some_and(|r| same_build(r, build_id))
    })
}

/// Applies `change` (one of `run`'s builds; `result`: that build's executor
/// report on a final state) to `run`. Safe to repeat: an end applied
/// already is [`Step::Ignored`], so a redelivered event starts no second
/// assemble build.
pub fn apply_part(
    run: &mut Run,
    change: &BuildStateChange,
    result: Option<&ExecResult>,
    now: DateTime<Utc>,
) -> Step {
    let Some(build) = build_of(run, &change.build_id).cloned() else {
        return Step::Ignored(format!(
            "build {} is not one of run {}'s builds",
            change.build_id, run.run_id
        ));
    };
    if run.status.is_terminal() {
        return Step::Ignored(format!(
            "run {} has already finished ({})",
            run.run_id, run.status
        ));
    }
    let at = change.time.unwrap_or(now);
    if !change.state.is_final() {
        if run.status == RunStatus::Running {
            return Step::Ignored(format!("run {} is running already", run.run_id));
        }
        run.status = RunStatus::Running;
        run.start_time = run.start_time.or(Some(at));
        return Step::Updated(RunStatus::Running);
    }
    // An end may arrive before any start (EventBridge does not keep order).
    if run.status == RunStatus::Queued {
        run.status = RunStatus::Running;
    }
    let result = result.filter(|r| r.run_id.as_deref().is_none_or(|id| id == run.run_id));
    let status = final_status(change.state, result);
    // A platform build pushed one image, under its staging tag.
    let digest = result
        .filter(|_| status == RunStatus::Succeeded)
        .and_then(|r| r.output_images.first())
        .map(|o| o.digest.clone())
        .filter(|d| d.starts_with("sha256:"));
    let builder_ref = build.builder_ref.clone().unwrap_or_default();
    let next = fanout::on_build_end(&mut run.builds, &builder_ref, status, digest.as_deref());
    if matches!(next, Next::Ignore) {
        return Step::Ignored(format!(
            "the end of build {} is applied already",
            change.build_id
        ));
    }
    if let (Role::Platform, Some(r)) = (build.role, result) {
        // Each platform's bases, as a local multi-platform build records them.
        for b in &r.base_images {
            let mut b = b.clone();
            b.platform = Some(build.platform.clone());
            if !run.base_images.contains(&b) {
                run.base_images.push(b);
            }
        }
        for s in &r.steps {
            let mut s = s.clone();
            s.id = format!("{}@{}", s.id, build.platform);
            run.steps.push(s);
        }
    }
    run.start_time = run.start_time.or(Some(at));
    match next {
        Next::Ignore => Step::Ignored(String::new()),
        Next::Wait => Step::Updated(run.status),
        Next::Assemble(p) => Step::Assemble(p),
        Next::Fail { message, stop } => {
            run.status = status;
            run.finish_time = Some(result.and_then(|r| r.finish_time).unwrap_or(at));
            run.error = Some(match final_error(change.state, status, result) {
                Some(why) => format!("{message}: {why}"),
                None => message,
            });
            Step::Failed { status, stop }
        }
        Next::Finish(status) => {
            run.status = status;
            run.finish_time = Some(result.and_then(|r| r.finish_time).unwrap_or(at));
            if let Some(r) = result {
                run.output_images = r.output_images.clone();
                for s in &r.steps {
                    run.steps.push(s.clone());
                }
            }
            run.error = final_error(change.state, status, result)
                .map(|e| format!("assembling the image index: {e}"));
            Step::Updated(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::OutputImage;
    use crate::trigger::build_status::BuildState;

    fn run_with_builds() -> Run {
        let mut r: Run = serde_json::from_value(serde_json::json!({
            "runId": "ca1", "task": null, "runType": "QuickBuild", "status": "Queued",
            "trigger": {"type": "Manual"}, "platform": "linux/amd64,linux/arm64",
            "createTime": "2026-01-01T00:00:00Z", "error": null,
            "spec": {"context": {"kind": "none"}, "file": "Dockerfile",
                     "images": ["app:1"], "push": true, "timeout": 600}
        }))
        .unwrap();
        r.builds = fanout::plan(&["linux/amd64".into(), "linux/arm64".into()]).unwrap();
        r.builds[0].builder_ref = Some("p:amd".into());
        r.builds[1].builder_ref = Some("p:arm".into());
        r
    }

    fn change(build: &str, state: BuildState) -> BuildStateChange {
        BuildStateChange {
            state,
            build_id: format!("arn:aws:codebuild:us-east-1:1:build/{build}"),
            project: "p".into(),
            run_id: Some("ca1".into()),
            time: None,
        }
    }

    fn pushed(digest: &str) -> ExecResult {
        ExecResult {
            run_id: Some("ca1".into()),
            status: RunStatus::Succeeded,
            error: None,
            start_time: None,
            finish_time: None,
            steps: Vec::new(),
            output_images: vec![OutputImage {
                registry: "r".into(),
                repository: "app".into(),
                tag: "crtask-ca1".into(),
                digest: digest.into(),
                platforms: Vec::new(),
            }],
            base_images: Vec::new(),
            patch: None,
        }
    }

    #[test]
    fn two_platform_ends_assemble_once_and_the_index_finishes_the_run() {
        let mut r = run_with_builds();
        let now = Utc::now();
        assert_eq!(
            apply_part(&mut r, &change("p:arm", BuildState::InProgress), None, now),
            Step::Updated(RunStatus::Running)
        );
        let ok = change("p:arm", BuildState::Succeeded);
        let arm = pushed("sha256:b");
        assert_eq!(
            apply_part(&mut r, &ok, Some(&arm), now),
            Step::Updated(RunStatus::Running)
        );
        assert!(matches!(
            apply_part(&mut r, &ok, Some(&arm), now),
            Step::Ignored(_)
        ));
        let step = apply_part(
            &mut r,
            &change("p:amd", BuildState::Succeeded),
            Some(&pushed("sha256:a")),
            now,
        );
        let Step::Assemble(p) = step else {
            panic!("{step:?}")
        };
        assert_eq!(p.len(), 2);
        r.builds.push(fanout::assemble_build(&p, "p:index"));
        let mut index = pushed("sha256:i");
        index.output_images[0].platforms = p;
        assert_eq!(
            apply_part(
                &mut r,
                &change("p:index", BuildState::Succeeded),
                Some(&index),
                now
            ),
            Step::Updated(RunStatus::Succeeded)
        );
        assert_eq!(r.output_images[0].digest, "sha256:i");
        assert_eq!(r.output_images[0].platforms.len(), 2);
        assert_eq!(r.error, None);
        assert!(r.finish_time.is_some());
    }

    #[test]
    fn a_failed_platform_fails_the_run_and_names_what_to_stop() {
        let mut r = run_with_builds();
        let mut failed = pushed("sha256:b");
        failed.status = RunStatus::Failed;
        failed.error = Some("step build exited 1".into());
        let step = apply_part(
            &mut r,
            &change("p:arm", BuildState::Failed),
            Some(&failed),
            Utc::now(),
        );
        assert_eq!(
            step,
            Step::Failed {
                status: RunStatus::Failed,
                stop: vec!["p:amd".into()]
            }
        );
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(
            r.error.as_deref(),
            Some("the linux/arm64 build ended Failed: step build exited 1")
        );
        assert!(matches!(
            apply_part(
                &mut r,
                &change("p:amd", BuildState::Succeeded),
                Some(&pushed("sha256:a")),
                Utc::now()
            ),
            Step::Ignored(_)
        ));
        assert!(matches!(
            apply_part(
                &mut r,
                &change("other", BuildState::Succeeded),
                None,
                Utc::now()
            ),
            Step::Ignored(_)
        ));
    }
}
