//! The operations behind the CLI's API, on any platform: the local server's
//! HTTP handlers and the CLI's direct AWS backend both call these, so a task
//! is validated, a run is queued and a run is shown the same way everywhere.

use crate::domain::api::QuickBuildRequest;
use crate::domain::imageref::ImageRef;
use crate::domain::model::{
    BaseDependency, BuildSpec, ContextSource, Run, RunType, Task, Trigger, DEFAULT_TASK_TIMEOUT,
    TASK_TIMEOUT_RANGE,
};
use crate::ports::{Builder, Clock, Store};
use crate::run::queue::{queue_run, spec_from_task, NewRun};
use crate::{Error, Result};
use chrono::{DateTime, Utc};

/// A run as the API shows it: secrets masked, without the build spec and
/// the dedupe key (clients see ACR's shape).
pub fn run_json(run: &Run) -> serde_json::Value {
    let mut v = serde_json::to_value(run.redacted()).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("spec");
        o.remove("dedupeKey");
    }
    v
}

/// Renders the image templates with placeholder values so a typo is
/// reported now rather than when the run starts.
pub fn check_images(spec: &BuildSpec, registry: Option<&str>, now: DateTime<Utc>) -> Result<()> {
    let vars = crate::template::RunVars {
        id: "ca1".into(),
        registry: registry.unwrap_or_default().to_string(),
        date: now,
        os: "linux".into(),
        architecture: "amd64".into(),
        ..Default::default()
    };
    let data = vars.to_data(&spec.values);
    crate::build::quick::render_tags(&spec.images, &data, registry)?;
    Ok(())
}

/// Validates and stores a new task (its creation time is now) and makes its
/// timers count from now. Returns the stored task (secrets not masked).
pub async fn create_task(store: &dyn Store, clock: &dyn Clock, mut task: Task) -> Result<Task> {
    task.create_time = clock.now();
    task.validate()?;
    store.create_task(&task).await?;
    // Timers count from now (see crate::trigger::timer::handler).
    crate::trigger::timer::handler::reset_timers(store, clock, None, &task).await?;
    Ok(task)
}

/// Replaces task `name` with `task`, keeping its creation time and the
/// secret build argument values the client only saw masked. New, changed
/// and re-enabled timers count from now. Returns the stored task.
pub async fn update_task(
    store: &dyn Store,
    clock: &dyn Clock,
    name: &str,
    mut task: Task,
) -> Result<Task> {
    if task.name != name {
        return Err(Error::invalid("a task cannot be renamed"));
    }
    let old = store
        .get_task(name)
        .await?
        .ok_or_else(|| Error::not_found("task", name))?;
    task.create_time = old.create_time;
    task.restore_secrets(&old);
    task.validate()?;
    // Before the task is stored, so the scheduler never sees them with
    // older state.
    crate::trigger::timer::handler::reset_timers(store, clock, Some(&old), &task).await?;
    store.update_task(&task).await?;
    Ok(task)
}

/// Queues a manual run of task `name` with `--set` overrides.
pub async fn run_task(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    registry: Option<&str>,
    name: &str,
    values: &crate::domain::model::Values,
) -> Result<Run> {
    let task = store
        .get_task(name)
        .await?
        .ok_or_else(|| Error::not_found("task", name))?;
    let spec = spec_from_task(&task, values)?;
    check_images(&spec, registry, clock.now())?;
    let run_type = if crate::build::taskfile::is_task_file(&spec.file) {
        RunType::AutoRun
    } else {
        RunType::AutoBuild
    };
    queue_run(
        store,
        builder,
        clock,
        NewRun {
            task: Some(task.name.clone()),
            run_type,
            trigger: Trigger::Manual,
            spec,
            dedupe_key: None,
        },
    )
    .await
}

/// Checks a quick build or quick run request and makes its spec: the
/// context kind, platform, timeout and image names (qualified with
/// `registry`). Clients call it before uploading a context, with the
/// context still [`ContextSource::None`], so that nothing is uploaded for a
/// request that would be refused.
pub fn quick_build_spec(
    registry: Option<&str>,
    now: DateTime<Utc>,
    req: QuickBuildRequest,
) -> Result<BuildSpec> {
    if let ContextSource::LocalDir { .. } = &req.context {
        return Err(Error::invalid(
            "a quick build's context must be uploaded, a git URL or none",
        ));
    }
    if let Some(p) = &req.platform {
        crate::domain::platform::validate(p)?;
    }
    if let Some(r) = &req.cache.repo {
        crate::build::cache::validate_repo(r)?;
    }
    let timeout = req.timeout.unwrap_or(DEFAULT_TASK_TIMEOUT);
    if timeout == 0 || timeout > *TASK_TIMEOUT_RANGE.end() {
        return Err(Error::invalid(format!(
            "timeout {timeout} is out of range: allowed 1-{} seconds",
            TASK_TIMEOUT_RANGE.end()
        )));
    }
    let spec = BuildSpec {
        context: req.context,
        file: req.file,
        images: req.images,
        build_args: req.build_args,
        target: req.target,
        platform: req.platform,
        push: req.push,
        timeout,
        values: req.values,
        cache: req.cache,
        git_access_token: None,
        identity: None,
    };
    check_images(&spec, registry, now)?;
    Ok(spec)
}

/// Queues a quick build or quick run ([`quick_build_spec`]). The platform
/// checks first that an uploaded context exists.
pub async fn quick_build(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    registry: Option<&str>,
    req: QuickBuildRequest,
) -> Result<Run> {
    let spec = quick_build_spec(registry, clock.now(), req)?;
    let run_type = if crate::build::taskfile::is_task_file(&spec.file) {
        RunType::QuickRun
    } else {
        RunType::QuickBuild
    };
    queue_run(
        store,
        builder,
        clock,
        NewRun {
            task: None,
            run_type,
            trigger: Trigger::Manual,
            spec,
            dedupe_key: None,
        },
    )
    .await
}

/// Which tasks rebuild when `image` changes, as the API answers it.
pub async fn dependents(store: &dyn Store, image: &str) -> Result<serde_json::Value> {
    let image = ImageRef::parse(image)?.tagged();
    let mut out = Vec::new();
    for (task, dep) in store.dependents_of(&image).await? {
        let t = store.get_task(&task).await?;
        out.push(serde_json::json!({
            "task": task,
            "image": dep.image,
            "digest": dep.digest,
            "runtime": dep.runtime,
            "triggerEnabled": t.as_ref().map(|t| t.base_image_trigger_enabled),
            "triggerType": t.as_ref().map(|t| t.base_image_trigger_type),
        }));
    }
    Ok(serde_json::json!({"image": image, "dependents": out}))
}

/// The base images a task's Dockerfile (`dockerfile`, its text) names, as
/// dependency index entries: runtime bases first, each image once. Digests
/// in `recorded` (what a build already recorded) are kept; a newly named
/// image has none until its first build.
pub fn prescanned_dependencies(
    task: &Task,
    dockerfile: &str,
    recorded: &[BaseDependency],
) -> Result<Vec<BaseDependency>> {
    let args = task
        .build_args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    let bases = crate::build::dockerfile::scan(dockerfile, &args, task.target.as_deref())?;
    let mut deps: Vec<BaseDependency> = Vec::new();
    let wanted = bases
        .runtime
        .iter()
        .map(|r| (r, true))
        .chain(bases.build_time.iter().map(|r| (r, false)));
    for (r, runtime) in wanted {
        let image = r.tagged();
        if deps.iter().any(|d| d.image == image) {
            continue;
        }
        let digest = recorded
            .iter()
            .find(|o| o.image == image)
            .and_then(|o| o.digest.clone());
        deps.push(BaseDependency {
            image,
            digest,
            runtime,
        });
    }
    Ok(deps)
}

/// Records the base images a task's Dockerfile names before its first run,
/// so base-image updates reach it ([`prescanned_dependencies`]). Task files
/// (acr-task.yaml) are not scanned: their images are known once they run.
pub async fn prescan(store: &dyn Store, task: &Task, dockerfile: &str) -> Result<()> {
    if crate::build::taskfile::is_task_file(&task.file) {
        return Ok(());
    }
    let recorded = store.dependencies_of(&task.name).await?;
    let deps = prescanned_dependencies(task, dockerfile, &recorded)?;
    store.set_dependencies(&task.name, &deps).await
}
