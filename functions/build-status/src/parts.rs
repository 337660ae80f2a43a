//! The builds of a multi-platform run ([`crtask_core::build::fanout`]):
//! each build's state change is applied under the run's lease (two
//! platform builds ending at once must not both see the other running),
//! with that build's own executor result; then what the core decides is
//! carried out: start the assemble build, or stop the other builds.

use super::App;
use crtask_core::build::fanout;
use crtask_core::notify::{phase_of, RunNotification};
use crtask_core::run::lease;
use crtask_core::trigger::build_status::parts::{self, Step};
use crtask_core::trigger::build_status::{Applied, BuildStateChange};

/// Applies `change` to the multi-platform run `run_id`; returns what was
/// done and the notification to publish when the run started or ended.
pub(super) async fn record(
    app: &App,
    change: &BuildStateChange,
    run_id: &str,
) -> crtask_aws::Result<(Applied, Option<RunNotification>)> {
    let held = lease::acquire(
        app.store.as_ref(),
        app.clock.as_ref(),
        &format!("fanout:{run_id}"),
    )
    .await?;
    let r = apply(app, change, run_id).await;
    held.release().await;
    r
}

async fn apply(
    app: &App,
    change: &BuildStateChange,
    run_id: &str,
) -> crtask_aws::Result<(Applied, Option<RunNotification>)> {
    let Some(mut run) = app.store.get_run(run_id).await? else {
        return Ok((
            Applied::Ignored(format!("run {run_id} is not in the store")),
            None,
        ));
    };
    let part = parts::build_of(&run, &change.build_id).map(fanout::result_part);
    let result = match (&part, change.state.is_final()) {
        (Some(p), true) => App::parse_result(run_id, app.bucket.get_part_result(run_id, p).await?),
        _ => None,
    };
    let old = run.status;
    let applied = match parts::apply_part(&mut run, change, result.as_ref(), app.clock.now()) {
        Step::Ignored(reason) => return Ok((Applied::Ignored(reason), None)),
        Step::Updated(status) => Applied::Updated(status),
        Step::Assemble(platforms) => {
            // Started before the run is stored: a failure here leaves the
            // event unapplied, and its retry starts it (CodeBuild's
            // idempotency token keeps that to one build).
            let id = app.codebuild.start_assemble(&run, &platforms).await?;
            tracing::info!(run = run_id, build = %id, "every platform pushed: assembling the index");
            run.builds.push(fanout::assemble_build(&platforms, &id));
            Applied::Updated(run.status)
        }
        Step::Failed { status, stop } => {
            tracing::warn!(run = run_id, stopping = ?stop, error = ?run.error, "a platform build failed");
            app.codebuild.stop_builds(&stop).await;
            Applied::Updated(status)
        }
    };
    app.store.update_run(&run).await?;
    let n = phase_of(Some(old), run.status).map(|p| RunNotification::of(&run, p));
    Ok((applied, n))
}
