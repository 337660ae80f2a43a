//! CodeBuild "Build State Change" events -> run status (the `build-status`
//! function).
//!
//! The event names the build (`detail.build-id`), its state
//! (`detail.build-status`) and, among the build's environment variables, the
//! run it executes (`CRTASK_RUN_ID`, set by the CodeBuild builder). On the
//! final state the executor's report (`logs/<run>.result.json`, written by
//! `crtask exec` and uploaded by the buildspec's `post_build`) adds the
//! steps, output digests, base-image digests and error.
//!
//! Everything here is pure except [`record`], which reads and writes the
//! store only. What the finished run then sets off is [`finish`], shared
//! with the local worker.

pub mod finish;
pub mod parts;

use crate::domain::model::{BaseDependency, BaseImageUse, OutputImage, Run, RunStatus, StepRecord};
use crate::domain::text::inert;
use crate::domain::time::serde_millis;
use crate::notify::RunNotification;
use crate::ports::Store;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// The EventBridge `detail-type` handled here.
pub const DETAIL_TYPE: &str = "CodeBuild Build State Change";

/// The build's state as CodeBuild reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildState {
    InProgress,
    Succeeded,
    Failed,
    Stopped,
    TimedOut,
    Fault,
}

impl BuildState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "IN_PROGRESS" => BuildState::InProgress,
            "SUCCEEDED" => BuildState::Succeeded,
            "FAILED" => BuildState::Failed,
            "STOPPED" => BuildState::Stopped,
            "TIMED_OUT" => BuildState::TimedOut,
            "FAULT" => BuildState::Fault,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::InProgress => "IN_PROGRESS",
            BuildState::Succeeded => "SUCCEEDED",
            BuildState::Failed => "FAILED",
            BuildState::Stopped => "STOPPED",
            BuildState::TimedOut => "TIMED_OUT",
            BuildState::Fault => "FAULT",
        }
    }

    /// The run status this build state means on its own (without the
    /// executor's report).
    pub fn run_status(self) -> RunStatus {
        match self {
            BuildState::InProgress => RunStatus::Running,
            BuildState::Succeeded => RunStatus::Succeeded,
            BuildState::Failed => RunStatus::Failed,
            BuildState::Stopped => RunStatus::Canceled,
            BuildState::TimedOut => RunStatus::Timeout,
            BuildState::Fault => RunStatus::Error,
        }
    }

    /// True for the build's final states.
    pub fn is_final(self) -> bool {
        self != BuildState::InProgress
    }
}

/// The one form crtask keeps of a CodeBuild build's identity.
///
/// CodeBuild names a build two ways: `StartBuild` answers `build.id`
/// (`<project>:<uuid>`), while a "Build State Change" event carries the
/// build's ARN in `detail.build-id`
/// (`arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>`). Both are
/// reduced here to the id form, which `StopBuild`, `BatchGetBuilds` and the
/// log stream lookup all accept; anything else is returned unchanged.
pub fn build_id(reference: &str) -> &str {
    match reference.strip_prefix("arn:") {
        Some(rest) => rest
            .split_once(":build/")
            .map(|(_, id)| id)
            .filter(|id| !id.is_empty())
            .unwrap_or(reference),
        None => reference,
    }
}

/// True when `a` and `b` name the same build, whichever form each is in.
pub fn same_build(a: &str, b: &str) -> bool {
    build_id(a) == build_id(b)
}

/// What one state-change event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStateChange {
    pub state: BuildState,
    /// The build's id (`<project>:<uuid>`: the event's ARN reduced by
    /// [`build_id`], the form `StartBuild` answered and the run's
    /// `builder_ref` keeps).
    pub build_id: String,
    pub project: String,
    /// `CRTASK_RUN_ID` among the build's environment variables; `None` for a
    /// build crtask did not start.
    pub run_id: Option<String>,
    /// The event's time.
    pub time: Option<DateTime<Utc>>,
}

/// Parses an EventBridge event (the whole envelope, or only its `detail`).
pub fn parse(event: &Value) -> Result<BuildStateChange> {
    if let Some(t) = event.get("detail-type").and_then(Value::as_str) {
        if t != DETAIL_TYPE {
            return Err(Error::invalid(format!(
                "unexpected event type '{t}': expected '{DETAIL_TYPE}'"
            )));
        }
    }
    let detail = event.get("detail").unwrap_or(event);
    let text = |name: &str| {
        detail
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let status = text("build-status")
        .ok_or_else(|| Error::invalid("the event has no detail.build-status"))?;
    let state = BuildState::parse(&status)
        .ok_or_else(|| Error::invalid(format!("unknown build status '{status}'")))?;
    let build_id = text("build-id")
        .map(|b| build_id(&b).to_string())
        .ok_or_else(|| Error::invalid("the event has no detail.build-id"))?;
    let project = text("project-name").unwrap_or_default();
    let run_id = detail
        .pointer("/additional-information/environment/environment-variables")
        .and_then(Value::as_array)
        .and_then(|vars| {
            vars.iter().find(|v| {
                v.get("name").and_then(Value::as_str) == Some("CRTASK_RUN_ID")
                    && v.get("type").and_then(Value::as_str).unwrap_or("PLAINTEXT") == "PLAINTEXT"
            })
        })
        .and_then(|v| v.get("value").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let time = event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(BuildStateChange {
        state,
        build_id,
        project,
        run_id,
        time,
    })
}

/// The executor's report (`CRTASK_RESULT_FILE`, `crtask exec`): the run's
/// outcome with the Run JSON's field names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecResult {
    #[serde(default)]
    pub run_id: Option<String>,
    pub status: RunStatus,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(with = "serde_millis::option", default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(with = "serde_millis::option", default)]
    pub finish_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub output_images: Vec<OutputImage>,
    #[serde(default)]
    pub base_images: Vec<BaseImageUse>,
    /// A patch run's request with its result (OS, packages changed, tag
    /// pushed), as `crtask exec` carried it out.
    #[serde(default)]
    pub patch: Option<crate::patch::PatchRun>,
}

impl ExecResult {
    /// Parses a result file.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("the executor's result is not valid: {e}")))
    }
}

/// What applying an event did to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The run changed to this status.
    Updated(RunStatus),
    /// Nothing changed, and why.
    Ignored(String),
}

/// Applies `change` (and, on a final state, the executor's `result`) to
/// `run`. `now` stands in for a missing event time.
///
/// - `IN_PROGRESS`: `Running`, with the start time.
/// - final states: `SUCCEEDED` -> `Succeeded`, `FAILED` -> `Failed` (or the
///   executor's own `Timeout`/`Error`/`Canceled`), `STOPPED` -> `Canceled`;
///   steps, digests and error from the result. A build that failed although
///   the executor reported success (the upload after it failed) is `Failed`.
/// - a run already final, or dispatched to another build, is left alone
///   (EventBridge may deliver late or twice).
pub fn apply(
    run: &mut Run,
    change: &BuildStateChange,
    result: Option<&ExecResult>,
    now: DateTime<Utc>,
) -> Applied {
    if let Some(b) = &run.builder_ref {
        if !same_build(b, &change.build_id) {
            return Applied::Ignored(format!(
                "run {} belongs to build {b}, not {}",
                run.run_id, change.build_id
            ));
        }
    }
    if run.status.is_terminal() {
        return Applied::Ignored(format!(
            "run {} has already finished ({})",
            run.run_id, run.status
        ));
    }
    let at = change.time.unwrap_or(now);
    run.builder_ref = Some(build_id(&change.build_id).to_string());
    if !change.state.is_final() {
        if run.status == RunStatus::Running {
            return Applied::Ignored(format!("run {} is running already", run.run_id));
        }
        run.status = RunStatus::Running;
        run.start_time = run.start_time.or(Some(at));
        return Applied::Updated(RunStatus::Running);
    }
    let result = result.filter(|r| r.run_id.as_deref().is_none_or(|id| id == run.run_id));
    let status = final_status(change.state, result);
    run.status = status;
    run.start_time = run
        .start_time
        .or(result.and_then(|r| r.start_time))
        .or(Some(at));
    run.finish_time = Some(result.and_then(|r| r.finish_time).unwrap_or(at));
    if let Some(r) = result {
        run.steps = r.steps.clone();
        run.output_images = r.output_images.clone();
        run.base_images = r.base_images.clone();
        // Only a patch run takes a patch result, and only its findings:
        // the request (and the configuration that asked for it) stay as
        // they were queued.
        if let (Some(queued), Some(reported)) = (&run.patch, &r.patch) {
            let mut p = reported.clone();
            p.request = queued.request.clone();
            p.config = queued.config.clone();
            run.patch = Some(p);
        }
    }
    run.error = final_error(change.state, status, result);
    Applied::Updated(status)
}

/// The status a build's final `state` means with the executor's `result`
/// (its own `Timeout`/`Error`/`Canceled` win over CodeBuild's word).
pub fn final_status(state: BuildState, result: Option<&ExecResult>) -> RunStatus {
    match (state, result.map(|r| r.status)) {
        (BuildState::Succeeded, Some(s)) if s != RunStatus::Succeeded && s.is_terminal() => s,
        (BuildState::Failed, Some(s)) if s.is_terminal() && s != RunStatus::Succeeded => s,
        (BuildState::Stopped, Some(RunStatus::Timeout)) => RunStatus::Timeout,
        (state, _) => state.run_status(),
    }
}

/// The run's error after a build ended `state` (`status` from
/// [`final_status`]); `None` for a success.
pub fn final_error(
    state: BuildState,
    status: RunStatus,
    result: Option<&ExecResult>,
) -> Option<String> {
    match (status, result) {
        (RunStatus::Succeeded, _) => None,
        (_, Some(ExecResult { error: Some(e), .. })) => Some(inert(e).into_owned()),
        (_, Some(r)) if r.status == RunStatus::Succeeded => Some(format!(
            "the build ended {} after the executor succeeded: see the build log",
            state.as_str()
        )),
        (RunStatus::Canceled, _) => Some("the build was stopped".into()),
        _ => Some(format!(
            "the build ended {} without an executor result: see the build log",
            state.as_str()
        )),
    }
}

/// The dependency index entries a successful run establishes for its task:
/// each base image it used (normalised, tagged) with the digest used. A
/// multi-platform build pulled each base once per platform: one entry per
/// base, without a digest (no single manifest was used; the per-platform
/// digests stay in the run's record, where the registry trigger reads them).
pub fn dependencies_from_run(run: &Run) -> Vec<BaseDependency> {
    let mut out: Vec<BaseDependency> = Vec::new();
    for b in &run.base_images {
        let Ok(r) = crate::domain::imageref::ImageRef::parse(&b.image) else {
            continue;
        };
        let image = r.tagged();
        if let Some(seen) = out.iter_mut().find(|d| d.image == image) {
            seen.runtime |= b.runtime;
            if b.platform.is_some() {
                seen.digest = None;
            }
            continue;
        }
        out.push(BaseDependency {
            image,
            digest: b.platform.is_none().then(|| b.digest.clone()),
            runtime: b.runtime,
        });
    }
    out
}

/// Applies one event to its run in `store` (the status update). `result`
/// is the executor's report when it could be read. Returns the run id (when
/// the event names one) and what was done. Once the run is final, the
/// caller follows with [`finish::after_run`]. When the change starts or
/// ends the run, also the notification to publish
/// ([`crate::notify::phase_of`]; on AWS an EventBridge event).
pub async fn record(
    store: &dyn Store,
    change: &BuildStateChange,
    result: Option<&ExecResult>,
    now: DateTime<Utc>,
) -> Result<(Option<String>, Applied, Option<RunNotification>)> {
    let Some(run_id) = &change.run_id else {
        return Ok((
            None,
            Applied::Ignored(format!(
                "build {} carries no CRTASK_RUN_ID: not a crtask run",
                change.build_id
            )),
            None,
        ));
    };
    let Some(mut run) = store.get_run(run_id).await? else {
        return Ok((
            Some(run_id.clone()),
            Applied::Ignored(format!("run {run_id} is not in the store")),
            None,
        ));
    };
    let old = run.status;
    let applied = apply(&mut run, change, result, now);
    let mut notification = None;
    if let Applied::Updated(new) = applied {
        store.update_run(&run).await?;
        notification =
            crate::notify::phase_of(Some(old), new).map(|p| RunNotification::of(&run, p));
    }
    Ok((Some(run_id.clone()), applied, notification))
}
