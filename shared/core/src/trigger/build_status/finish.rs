//! What follows a run's final status, on every platform: the local worker
//! calls [`after_run`] when a build ends, the AWS `build-status` function
//! when CodeBuild's final state change is recorded.

use crate::domain::model::{Run, RunStatus};
use crate::trigger::build_status::dependencies_from_run;
use crate::trigger::registry;
use crate::trigger::registry::handler::UpdateDeps;
use crate::Result;

/// Everything a finished run sets off, once its final status is stored:
///
/// 1. a task's successful run records the bases it was built on (the
///    dependency index base-image triggers read), unless a newer successful
///    run of the task has recorded its own already (a late or repeated
///    report never rolls the index back);
/// 2. what it pushed rebuilds the tasks built on it, and a run that did not
///    succeed releases the tasks that waited for its push
///    ([`registry::handler::after_run`]).
///
/// Safe to repeat for the same run (a redelivered event, a retried
/// invocation): dedupe keys hold. Returns the runs recorded (`Queued`), for
/// the caller to dispatch after its settle window.
pub async fn after_run(deps: &UpdateDeps<'_>, run: &Run) -> Result<Vec<Run>> {
    if !run.status.is_terminal() {
        return Ok(Vec::new());
    }
    if let (Some(task), RunStatus::Succeeded) = (&run.task, run.status) {
        let bases = dependencies_from_run(run);
        let newest = deps
            .store
            .last_succeeded_runs(std::slice::from_ref(task))
            .await?;
        let superseded = newest
            .iter()
            .any(|r| r.run_id != run.run_id && r.create_time > run.create_time);
        if !bases.is_empty() && !superseded {
            deps.store.set_dependencies(task, &bases).await?;
        }
    }
    registry::handler::after_run(deps, run).await
}
