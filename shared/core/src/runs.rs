//! Turning a request or a task into a queued run.

use crate::model::{BuildSpec, ContextSource, Run, RunStatus, RunType, Task, Trigger};
use crate::ports::{Builder, Clock, Store};
use crate::quickbuild::host_platform;
use crate::Result;
use std::collections::BTreeMap;

/// What a new run is.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub task: Option<String>,
    pub run_type: RunType,
    pub trigger: Trigger,
    pub spec: BuildSpec,
}

/// The build a task describes, with `--set` overrides on top of its values.
pub fn spec_from_task(task: &Task, overrides: &BTreeMap<String, String>) -> Result<BuildSpec> {
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
    })
}

/// Records a `Queued` run durably, then hands it to the builder. If the
/// hand-off fails the run stays queued in the store (a restart resumes it).
pub async fn queue_run(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    new: NewRun,
) -> Result<Run> {
    let run_id = store.next_run_id().await?;
    let run = Run {
        run_id,
        task: new.task,
        run_type: new.run_type,
        status: RunStatus::Queued,
        trigger: new.trigger,
        platform: new.spec.platform.clone().unwrap_or_else(host_platform),
        create_time: clock.now(),
        start_time: None,
        finish_time: None,
        output_images: Vec::new(),
        base_images: Vec::new(),
        steps: Vec::new(),
        error: None,
        spec: new.spec,
    };
    store.insert_run(&run).await?;
    let mut run = run;
    if let Err(e) = builder.dispatch(&run.run_id).await {
        // The run is durable; it stays queued with the reason and is resumed later.
        run.error = Some(format!("waiting for the builder: {e}"));
        store.update_run(&run).await?;
    }
    Ok(run)
}
