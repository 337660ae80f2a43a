//! The `build-status` function: CodeBuild "Build State Change" events from
//! EventBridge -> run status, steps, output digests and base-image digests
//! in the store ([`crtask_core::trigger::build_status`] decides; this wires AWS).
//!
//! A run that succeeded also feeds the images it pushed back in
//! ([`crtask_core::trigger::registry::handler::cascade`]), so tasks built on them rebuild next.
//! This must happen here, after the run is stored as `Succeeded`: the
//! registry's own push event arrives while the build is still running, when
//! a dependent task would rightly wait for it.

use crtask_aws::config::{self, FunctionEnv};
use crtask_aws::{RunEventBus, S3Contexts};
use crtask_core::domain::model::Outcome;
use crtask_core::ports::{Builder, Clock, Store, SystemClock};
use crtask_core::run::queue;
use crtask_core::trigger::answer::{Answer, OtherVerdict};
use crtask_core::trigger::build_status::{self, finish, Applied, ExecResult};
use crtask_core::trigger::registry::handler::UpdateDeps;

/// How long build-status waits before dispatching the runs a finished run
/// triggers (see [`queue::hand_over`]).
pub const CASCADE_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);
use serde_json::Value;
use std::sync::Arc;

mod parts;

/// The clients, built once per process.
pub struct App {
    store: Arc<dyn Store>,
    builder: Arc<dyn Builder>,
    /// The same builder, for a multi-platform run's assemble build and stops.
    codebuild: Arc<crtask_aws::CodeBuildBuilder>,
    bucket: S3Contexts,
    clock: Arc<dyn Clock>,
    registry: Option<String>,
    /// Where run starts and ends are announced (the default event bus).
    bus: RunEventBus,
}

impl App {
    /// Builds the AWS clients for `env` from `sdk`.
    pub fn new(env: &FunctionEnv, sdk: &aws_config::SdkConfig) -> Self {
        let (store, _) = env.ports(sdk);
        let codebuild = Arc::new(env.codebuild_builder(sdk, store.clone()));
        App {
            store,
            builder: codebuild.clone(),
            codebuild,
            bucket: S3Contexts::new(config::Lazy::new(sdk, config::s3), env.bucket.clone()),
            clock: Arc::new(SystemClock),
            registry: env.registry_host.clone(),
            bus: RunEventBus::new(config::Lazy::new(sdk, config::eventbridge)),
        }
    }

    /// Handles one EventBridge event. An event that is not about a crtask
    /// run is answered (and ignored); a store or S3 failure is an error, so
    /// the asynchronous invocation is retried.
    pub async fn handle(&self, event: &Value) -> crtask_aws::Result<Value> {
        let change = match build_status::parse(event) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "event ignored");
                return Ok(Answer::new(Outcome::Ignored, e.to_string()).body());
            }
        };
        let fans_out = match &change.run_id {
            Some(id) => self
                .store
                .get_run(id)
                .await?
                .is_some_and(|r| !r.builds.is_empty()),
            None => false,
        };
        let (run, applied, notification) = match (&change.run_id, fans_out) {
            (Some(id), true) => {
                let (applied, n) = parts::record(self, &change, id).await?;
                (Some(id.clone()), applied, n)
            }
            _ => {
                let result = match (&change.run_id, change.state.is_final()) {
                    (Some(run), true) => self.result(run).await?,
                    _ => None,
                };
                build_status::record(
                    self.store.as_ref(),
                    &change,
                    result.as_ref(),
                    self.clock.now(),
                )
                .await?
            }
        };
        if let Some(n) = &notification {
            self.announce(n).await;
        }
        let cascaded = match &run {
            Some(id) if change.state.is_final() => self.cascade(id).await?,
            _ => Vec::new(),
        };
        let answer = match applied {
            Applied::Updated(status) => {
                tracing::info!(run = ?run, build = %change.build_id, %status, "run updated");
                let mut a = Answer::new(OtherVerdict::Updated, format!("run is {status}"));
                a.run_status = Some(status);
                a.cascaded = Some(cascaded);
                a
            }
            Applied::Ignored(reason) => {
                tracing::info!(run = ?run, build = %change.build_id, %reason, "event ignored");
                Answer::new(Outcome::Ignored, reason)
            }
        };
        Ok(Answer { run, ..answer }.body())
    }

    /// What the finished `run` sets off ([`finish::after_run`]: its
    /// dependency index, the rebuilds of what its pushes feed, or the
    /// release of what waited for it), and dispatches those runs
    /// after [`CASCADE_SETTLE`], unless a run of the same task decided at the
    /// same moment elsewhere supersedes them ([`queue::hand_over`]). Safe to repeat on a redelivered
    /// event: the runs' dedupe keys hold. Returns the run ids dispatched.
    async fn cascade(&self, run: &str) -> crtask_aws::Result<Vec<String>> {
        let Some(run) = self.store.get_run(run).await? else {
            return Ok(Vec::new());
        };
        if !run.status.is_terminal() {
            return Ok(Vec::new());
        }
        let deps = UpdateDeps {
            store: self.store.as_ref(),
            clock: self.clock.as_ref(),
            registry: self.registry.as_deref(),
        };
        let next_runs = finish::after_run(&deps, &run).await?;
        if next_runs.is_empty() {
            return Ok(Vec::new());
        }
        // The other side of a diamond may be deciding in another invocation
        // right now: let both runs be visible, then the older one wins.
        tokio::time::sleep(CASCADE_SETTLE).await;
        let mut ids = Vec::new();
        for (id, handed) in queue::hand_over(
            self.store.as_ref(),
            self.builder.as_ref(),
            self.clock.as_ref(),
            &next_runs,
        )
        .await?
        {
            match handed {
                queue::Handover::Dispatched => ids.push(id),
                queue::Handover::Merged(into) => {
                    tracing::info!(run = %id, %into, "cascade run merged into an older queued run");
                }
                queue::Handover::Skipped => {}
            }
        }
        if !ids.is_empty() {
            tracing::info!(run = %run.run_id, cascaded = ?ids, "rebuilds of what this run pushed");
        }
        Ok(ids)
    }

    /// Puts the run's `crtask Run State Change` event on the default bus.
    /// The run's state is stored already and stays so: a bus that refuses
    /// (after the SDK's own retries) is logged, not retried by failing the
    /// invocation, which would find the change applied and announce nothing.
    async fn announce(&self, n: &crtask_core::notify::RunNotification) {
        match self.bus.publish(n).await {
            Ok(()) => {
                tracing::info!(run = %n.run_id, event = n.event.as_str(), "run state change published")
            }
            Err(e) => {
                tracing::error!(run = %n.run_id, event = n.event.as_str(), error = %e, "run state change not published")
            }
        }
    }

    /// The executor's result for `run`, when it is there and readable.
    async fn result(&self, run: &str) -> crtask_aws::Result<Option<ExecResult>> {
        let bytes = self.bucket.get_result(run).await?;
        Ok(Self::parse_result(run, bytes))
    }

    /// A parsed executor result; `None` (logged) when missing or unreadable.
    fn parse_result(run: &str, bytes: Option<Vec<u8>>) -> Option<ExecResult> {
        let Some(bytes) = bytes else {
            tracing::warn!(run, "no executor result in the bucket");
            return None;
        };
        match ExecResult::from_json(&bytes) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(run, error = %e, "executor result ignored");
                None
            }
        }
    }
}
