//! Turning a request, a task or an event into a queued run.

use crate::domain::model::{BuildSpec, ContextSource, Run, RunStatus, RunType, Task, Trigger};
use crate::domain::platform;
use crate::ports::{Builder, Clock, Store};
use crate::Result;

/// What a new run is.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub task: Option<String>,
    pub run_type: RunType,
    pub trigger: Trigger,
    pub spec: BuildSpec,
    /// Runs sharing a key are one build (see [`Run::dedupe_key`]).
    pub dedupe_key: Option<String>,
}

/// The build a task describes, with `--set` overrides on top of its values.
pub fn spec_from_task(task: &Task, overrides: &crate::domain::model::Values) -> Result<BuildSpec> {
    let mut values = task.values.clone();
    values.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(BuildSpec {
        context: ContextSource::parse_task_context(&task.context)?,
        file: task.file.clone(),
        images: task.images.clone(),
        build_args: task.build_args.clone(),
        target: task.target.clone(),
        platform: task.platform.clone(),
        push: task.push,
        timeout: task.timeout,
        values,
        cache: Default::default(),
        git_access_token: task.git_access_token.clone(),
        identity: task.identity.clone(),
    })
}

/// The result of recording a run.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// A new run, durably `Queued`.
    New(Run),
    /// An equivalent run exists already (same dedupe key); nothing was recorded.
    Existing(Run),
}

/// Records a `Queued` run durably (deduplicated by its key, if any). The
/// run is not dispatched yet: see [`dispatch`].
pub async fn record(store: &dyn Store, clock: &dyn Clock, new: NewRun) -> Result<Recorded> {
    let run_id = store.next_run_id().await?;
    let run = new_run_record(run_id, new, clock.now());
    if run.dedupe_key.is_some() {
        if let Some(existing) = store.insert_run_deduped(&run).await? {
            return Ok(Recorded::Existing(existing));
        }
    } else {
        store.insert_run(&run).await?;
    }
    Ok(Recorded::New(run))
}

/// The `Queued` run record of `new`, created at `now`.
pub fn new_run_record(run_id: String, new: NewRun, now: chrono::DateTime<chrono::Utc>) -> Run {
    Run {
        run_id,
        task: new.task,
        run_type: new.run_type,
        status: RunStatus::Queued,
        trigger: new.trigger,
        platform: new.spec.platform.clone().unwrap_or_else(platform::host),
        create_time: now,
        start_time: None,
        finish_time: None,
        output_images: Vec::new(),
        base_images: Vec::new(),
        steps: Vec::new(),
        error: None,
        dedupe_key: new.dedupe_key,
        builder_ref: None,
        spec: new.spec,
        patch: None,
        builds: Vec::new(),
    }
}

/// Records many runs that carry dedupe keys at once (one durable commit
/// where the store allows): the fan-out of one base-image update.
pub async fn record_many(
    store: &dyn Store,
    clock: &dyn Clock,
    news: Vec<NewRun>,
) -> Result<Vec<Recorded>> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let ids = store.next_run_ids(news.len()).await?;
    let now = clock.now();
    let runs: Vec<Run> = news
        .into_iter()
        .zip(ids)
        .map(|(new, run_id)| new_run_record(run_id, new, now))
        .collect();
    let blocked = store.insert_runs_deduped(&runs).await?;
    Ok(runs
        .into_iter()
        .zip(blocked)
        .map(|(run, existing)| match existing {
            Some(e) => Recorded::Existing(e),
            None => Recorded::New(run),
        })
        .collect())
}

/// Hands a recorded run to the builder. If that fails the run stays queued
/// in the store with the reason (a restart, or the next dispatch, resumes it).
pub async fn dispatch(store: &dyn Store, builder: &dyn Builder, run: &mut Run) -> Result<()> {
    if let Err(e) = builder.dispatch(&run.run_id).await {
        run.error = Some(format!("waiting for the builder: {e}"));
        store.update_run(run).await?;
    }
    Ok(())
}

/// How much older than a run another queued run of its task may be and
/// still stand for it ([`hand_over`]): runs decided this
/// close together saw the same pushes, and a build dispatched this recently
/// has not reached its base images yet.
pub const SUPERSEDE_WINDOW: chrono::Duration = chrono::Duration::seconds(10);

/// What [`hand_over`] did with one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// Handed to the builder (or left queued with the builder's reason).
    Dispatched,
    /// Recorded as canceled, merged into this older queued run.
    Merged(String),
    /// No longer waiting (started, finished, or dispatched meanwhile).
    Skipped,
}

/// Hands recorded runs to the builder after their settle window, with one
/// listing of the queued runs however many there are.
///
/// A run that is no longer `Queued` without a build is skipped. An
/// image-update run is not dispatched when an older image-update run of the
/// same task, recorded at most [`SUPERSEDE_WINDOW`] before it, is still
/// queued: that run builds the same thing (base tags are resolved when a
/// build starts), so this one is recorded `Canceled`, merged into it. That
/// closes the window in which two processes decide for the same task at once
/// (on AWS, two build-status invocations for both sides of a diamond
/// finishing together), each not seeing the other's run yet: called after a
/// short wait, both see both runs, and the oldest wins on every side.
pub async fn hand_over(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    runs: &[Run],
) -> Result<Vec<(String, Handover)>> {
    let queued = store.runs_in_status(&[RunStatus::Queued]).await?;
    let mut out = Vec::with_capacity(runs.len());
    for wanted in runs {
        let Some(current) = queued.iter().find(|r| r.run_id == wanted.run_id) else {
            out.push((wanted.run_id.clone(), Handover::Skipped));
            continue;
        };
        if current.builder_ref.is_some() {
            out.push((wanted.run_id.clone(), Handover::Skipped));
            continue;
        }
        let mut run = current.clone();
        let older = match (&run.task, &run.trigger) {
            (Some(task), Trigger::ImageUpdate { .. }) => {
                let mine = crate::domain::runid::sort_key(&run.run_id);
                queued
                    .iter()
                    .filter(|r| {
                        r.task.as_deref() == Some(task.as_str())
                            && matches!(r.trigger, Trigger::ImageUpdate { .. })
                            && crate::domain::runid::sort_key(&r.run_id) < mine
                            && run.create_time - r.create_time <= SUPERSEDE_WINDOW
                    })
                    .min_by_key(|r| crate::domain::runid::sort_key(&r.run_id))
            }
            _ => None,
        };
        let handed = match older {
            Some(first) => {
                run.status = RunStatus::Canceled;
                run.finish_time = Some(clock.now());
                run.error = Some(format!(
                    "merged into run {}, queued earlier for task {}: it builds the same bases",
                    first.run_id,
                    run.task.as_deref().unwrap_or_default()
                ));
                store.update_run(&run).await?;
                Handover::Merged(first.run_id.clone())
            }
            None => {
                dispatch(store, builder, &mut run).await?;
                Handover::Dispatched
            }
        };
        out.push((run.run_id, handed));
    }
    Ok(out)
}

/// Hands to the builder every run that was recorded but never reached it:
/// `Queued`, without a builder reference, and created more than `older_than`
/// before `clock.now()` (its dispatcher died between recording and
/// dispatching, or the builder refused it and the run waits with the reason).
/// Platforms without a resident worker pool (AWS) call this periodically;
/// `older_than` must exceed the longest wait a dispatcher takes on purpose
/// (the settle window). Returns the ids handed over; a run the builder still
/// refuses keeps waiting with the new reason.
pub async fn resume_stalled(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    older_than: std::time::Duration,
) -> Result<Vec<String>> {
    let older_than = chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    let cutoff = clock
        .now()
        .checked_sub_signed(older_than)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let mut resumed = Vec::new();
    for mut run in store.runs_in_status(&[RunStatus::Queued]).await? {
        if run.builder_ref.is_some() || run.create_time > cutoff {
            continue;
        }
        dispatch(store, builder, &mut run).await?;
        resumed.push(run.run_id);
    }
    Ok(resumed)
}

/// Records and dispatches a run that has no dedupe key.
pub async fn queue_run(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    new: NewRun,
) -> Result<Run> {
    match record(store, clock, new).await? {
        Recorded::New(mut run) => {
            dispatch(store, builder, &mut run).await?;
            Ok(run)
        }
        Recorded::Existing(run) => Ok(run),
    }
}
