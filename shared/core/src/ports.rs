//! The ports: how core talks to the world. Each platform implements them
//! (`crtask-local`: SQLite, worker pool, buildah; `crtask-aws`: DynamoDB, CodeBuild).

use crate::domain::model::{
    BaseDependency, EventRecord, EventSource, Run, RunFilter, RunStatus, Task,
};
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A delivery to record together with the runs it starts
/// ([`Store::record_delivery`]).
#[derive(Debug, Clone)]
pub struct DeliveryWrite {
    pub source: EventSource,
    /// The sender's delivery id: unique per source. `None` records the
    /// event without claiming an id.
    pub delivery_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub detail: serde_json::Value,
    /// The runs to record (`Queued`); each `run_id` is left empty: the store
    /// assigns ids in the same transaction.
    pub runs: Vec<Run>,
}

/// What the event record of a delivery says, decided by core once the store
/// knows which runs were new ([`Summarize`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySummary {
    pub outcome: crate::domain::model::Outcome,
    pub reason: String,
    pub runs: Vec<String>,
}

/// Core's decision on the event record, called by the store inside its
/// transaction with the runs (ids assigned) and, per run, the existing run
/// with its dedupe key that kept it from being recorded.
pub type Summarize = Arc<dyn Fn(&[Run], &[Option<Run>]) -> DeliverySummary + Send + Sync>;

/// What core decided about a delivery against the tasks ([`Decide`]): the
/// runs to record (as [`DeliveryWrite::runs`]) and how the event record
/// will say it.
pub struct Decided {
    pub runs: Vec<Run>,
    pub summarize: Summarize,
}

/// Core's decision on a delivery, called by the store with every task
/// ([`Store::record_decided_delivery`]).
pub type Decide = Box<dyn FnOnce(&[Task]) -> Decided + Send>;

/// The result of [`Store::record_delivery`].
#[derive(Debug, Clone)]
pub enum DeliveryRecorded {
    /// First sight of the delivery: its event, and the runs recorded now
    /// (those not blocked by an existing run's dedupe key), to dispatch.
    New {
        event: EventRecord,
        new_runs: Vec<Run>,
    },
    /// The delivery id was recorded before: that first event. Nothing written.
    Seen(EventRecord),
}

/// Durable state: tasks and runs.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates a task; [`crate::Error::Conflict`] if the name is taken.
    async fn create_task(&self, task: &Task) -> Result<()>;
    /// Replaces a task; [`crate::Error::NotFound`] if it does not exist.
    async fn update_task(&self, task: &Task) -> Result<()>;
    async fn get_task(&self, name: &str) -> Result<Option<Task>>;
    async fn list_tasks(&self) -> Result<Vec<Task>>;
    /// Deletes a task; `false` if there was none. Its runs are kept.
    async fn delete_task(&self, name: &str) -> Result<bool>;

    /// Allocates the next run id (unique per installation, never reused).
    async fn next_run_id(&self) -> Result<String>;
    /// Inserts a new run (status normally `Queued`).
    async fn insert_run(&self, run: &Run) -> Result<()>;
    /// Inserts `run` unless a run with the same `dedupe_key` is queued,
    /// running or succeeded; then that run is returned and nothing is
    /// inserted. Atomic: two concurrent calls never both insert.
    async fn insert_run_deduped(&self, run: &Run) -> Result<Option<Run>>;
    /// Allocates `n` run ids at once (a store may do it in one write).
    async fn next_run_ids(&self, n: usize) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.next_run_id().await?);
        }
        Ok(ids)
    }
    /// [`Store::insert_run_deduped`] for many runs; a store may record them
    /// all in one durable commit. Per run: the existing run that blocked it.
    async fn insert_runs_deduped(&self, runs: &[Run]) -> Result<Vec<Option<Run>>> {
        let mut out = Vec::with_capacity(runs.len());
        for r in runs {
            out.push(self.insert_run_deduped(r).await?);
        }
        Ok(out)
    }
    /// Replaces a run's record.
    async fn update_run(&self, run: &Run) -> Result<()>;
    async fn get_run(&self, run_id: &str) -> Result<Option<Run>>;
    /// Runs matching the filter, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>>;
    /// Every run currently in one of `statuses`, oldest first.
    async fn runs_in_status(&self, statuses: &[RunStatus]) -> Result<Vec<Run>>;
    /// The newest `Succeeded` run of each of `tasks` that has one. The
    /// default asks once per task; stores that can answer in one query should.
    async fn last_succeeded_runs(&self, tasks: &[String]) -> Result<Vec<Run>> {
        let mut out = Vec::new();
        for task in tasks {
            let runs = self
                .list_runs(&RunFilter {
                    task: Some(task.clone()),
                    status: Some(RunStatus::Succeeded),
                    top: Some(1),
                })
                .await?;
            out.extend(runs);
        }
        Ok(out)
    }
    /// Records an inbound event (insert or replace by id), durably.
    async fn record_event(&self, event: &EventRecord) -> Result<()>;
    /// The first recorded event of `source` with this delivery id.
    async fn find_delivery(
        &self,
        source: EventSource,
        delivery_id: &str,
    ) -> Result<Option<EventRecord>>;
    /// Records a webhook delivery exactly once, in ONE transaction: claims
    /// `(source, delivery_id)` (a delivery id already recorded answers
    /// [`DeliveryRecorded::Seen`] with its first event and writes nothing,
    /// so concurrent copies get one row and the same answer), assigns run
    /// ids, inserts each run unless its dedupe key is blocked (as
    /// [`Store::insert_runs_deduped`]), asks `summarize` what the event says,
    /// and writes the event. Either all of it is durable or none of it.
    async fn record_delivery(
        &self,
        write: DeliveryWrite,
        summarize: Summarize,
    ) -> Result<DeliveryRecorded>;
    /// [`Store::record_delivery`] for a delivery decided against the tasks:
    /// `write.runs` is ignored; the store reads every task, calls `decide`
    /// (unless the delivery id was recorded before) and records the runs it
    /// returns. The default reads the tasks first, then records. A store with
    /// a single writer may read them inside the delivery's transaction (one
    /// read for a batch of deliveries), so the decision and the write see the
    /// same tasks.
    async fn record_decided_delivery(
        &self,
        write: DeliveryWrite,
        decide: Decide,
    ) -> Result<DeliveryRecorded> {
        let tasks = self.list_tasks().await?;
        let Decided { runs, summarize } = decide(&tasks);
        self.record_delivery(DeliveryWrite { runs, ..write }, summarize)
            .await
    }
    /// Recorded events, newest first.
    async fn list_events(
        &self,
        source: Option<EventSource>,
        top: usize,
    ) -> Result<Vec<EventRecord>>;
    /// A fresh, unique event id (`ev1`, `ev2`, ...).
    async fn next_event_id(&self) -> Result<String>;
    /// Deletes the events received before `cutoff` and the finished runs
    /// that finished before it, except each task's latest run (the rule of
    /// [`crate::run::retention`]); returns what went. Stores that expire
    /// records by themselves (DynamoDB's TTL) keep this default, which
    /// deletes nothing.
    async fn prune_before(&self, _cutoff: DateTime<Utc>) -> Result<crate::run::retention::Pruned> {
        Ok(crate::run::retention::Pruned::default())
    }
    /// Replaces the base images `task` depends on (the dependency index).
    async fn set_dependencies(&self, task: &str, deps: &[BaseDependency]) -> Result<()>;
    /// The base images `task` depends on.
    async fn dependencies_of(&self, task: &str) -> Result<Vec<BaseDependency>>;
    /// Every task that depends on `image` (a normalised tagged reference),
    /// answered from the index without scanning tasks.
    async fn dependents_of(&self, image: &str) -> Result<Vec<(String, BaseDependency)>>;
    /// Every distinct image some task depends on.
    async fn tracked_images(&self) -> Result<Vec<String>>;
    /// The latest scheduled time already handled for a task's timer.
    async fn timer_last_fired(&self, task: &str, timer: &str) -> Result<Option<DateTime<Utc>>>;
    /// Records that a timer's occurrences up to `t` are handled.
    async fn set_timer_last_fired(&self, task: &str, timer: &str, t: DateTime<Utc>) -> Result<()>;
    /// True when the store answers (for `/healthz`).
    async fn ping(&self) -> Result<()>;

    /// Takes the lease `name` for `holder` until `until` when it is free,
    /// expired at `now`, or held by `holder` already; true when taken.
    /// Atomic for every process that shares the store (one SQLite
    /// statement locally, a conditional write on DynamoDB): the lock behind
    /// decisions that read and then write ([`crate::run::lease`]).
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives the lease back when `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
}

/// Hands runs to something that executes them.
#[async_trait]
pub trait Builder: Send + Sync {
    /// Queues the stored run `run_id` for execution. Returns at once.
    async fn dispatch(&self, run_id: &str) -> Result<()>;
    /// Stops the run if it is queued or running here; `false` if it was not.
    async fn cancel(&self, run_id: &str) -> Result<bool>;
}

/// Where an engine writes a step's output. Implementations must redact secrets.
pub trait LogSink: Send + Sync {
    fn write(&self, bytes: &[u8]);
    /// Masks `value` in everything written from now on (a secret resolved
    /// once the run started). Sinks that store or show nothing ignore it.
    fn add_secret(&self, _value: &str) {}
    /// Writes one of crtask's own lines followed by `\n`. Control
    /// characters in `text` are escaped ([`crate::domain::text::inert`]): a
    /// branch name or error message holding a newline cannot forge a line.
    fn line(&self, text: &str) {
        let mut v = crate::domain::text::inert(text).as_bytes().to_vec();
        v.push(b'\n');
        self.write(&v);
    }
}

/// How a command the engine ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
}

impl Exit {
    pub fn success(self) -> bool {
        self.code == 0
    }
}

/// An image build as the engine runs it.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// Context directory on the engine's machine.
    pub context_dir: &'a Path,
    /// Dockerfile path (absolute, or relative to `context_dir`).
    pub dockerfile: &'a Path,
    /// Fully qualified tags.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// One platform, or a comma-separated list with [`BuildRequest::index`].
    pub platform: Option<String>,
    /// A multi-platform build: the name of the local image index (manifest
    /// list) the engine adds each platform's image to, instead of tagging
    /// `tags`; pushing that name pushes the index with every image in it.
    pub index: Option<String>,
    /// The layer cache to read and write ([`crate::build::cache`]).
    pub cache: crate::build::cache::CachePlan,
}

/// A container to run for a `cmd` step.
#[derive(Debug, Clone)]
pub struct ContainerRequest<'a> {
    pub image: &'a str,
    /// Replaces the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Arguments; empty means the image's own command.
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    /// Working directory inside the container (`None`: the image's).
    pub workdir: Option<&'a str>,
    pub user: Option<&'a str>,
    /// Host directory -> container path bind mounts.
    pub mounts: Vec<(std::path::PathBuf, String)>,
    /// Pull even when the image is present locally.
    pub pull_always: bool,
    pub detach: bool,
    /// Keep the container after it ends.
    pub keep: bool,
    /// The run the container belongs to (for [`Engine::end_group`]).
    pub group: &'a str,
    /// A name for the container (the step id, cleaned).
    pub name: &'a str,
}

/// Builds, pulls and pushes images. Infrastructure failures are `Err`; a
/// user's build failing is `Ok(Exit { code != 0 })`.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Pulls `image` (always asks the registry) and returns the manifest digest used.
    async fn pull(&self, image: &str, log: &dyn LogSink) -> Result<PullOutcome>;
    /// Pulls `image` for one `platform` (`os/arch[/variant]`; of an index,
    /// that platform's manifest) and returns that manifest's digest; fails
    /// when the image has nothing for the platform.
    async fn pull_platform(
        &self,
        image: &str,
        platform: &str,
        _log: &dyn LogSink,
    ) -> Result<PullOutcome> {
        Ok(PullOutcome::Failed {
            message: format!("this engine cannot pull {image} for {platform}: multi-platform builds need buildah"),
        })
    }
    async fn build(&self, req: &BuildRequest<'_>, log: &dyn LogSink) -> Result<Exit>;
    /// Pushes a local image to its registry; returns the pushed manifest
    /// digest. A local image index ([`BuildRequest::index`]) is pushed with
    /// every image in it, and the outcome lists each platform's digest.
    async fn push(&self, image: &str, log: &dyn LogSink) -> Result<PushOutcome>;
    /// Runs an image as a container (a `cmd` step) and waits for it, unless
    /// `detach`: then it returns once the container started, and the
    /// container lives until [`Engine::end_group`] for its group.
    async fn run_container(&self, req: &ContainerRequest<'_>, log: &dyn LogSink) -> Result<Exit>;
    /// True when the engine has `image` locally (built or pulled earlier).
    async fn has_image(&self, image: &str) -> bool;
    /// Clones a git repository into `dest` and checks out `reference`
    /// (default branch when `None`); returns the commit.
    async fn checkout(
        &self,
        url: &str,
        reference: Option<&str>,
        dest: &Path,
        log: &dyn LogSink,
    ) -> Result<String>;
    /// [`Engine::checkout`] of a task's context with the task's own
    /// access token (`--git-access-token`) for the context's host. Engines
    /// that cannot send one refuse rather than clone without it.
    async fn checkout_with_token(
        &self,
        url: &str,
        reference: Option<&str>,
        dest: &Path,
        log: &dyn LogSink,
        token: &str,
    ) -> Result<String> {
        let _ = (url, reference, dest, log, token);
        Err(crate::Error::invalid(
            "this build engine cannot use a task's git access token",
        ))
    }
    /// The engine one run uses, isolated from every other run (its own
    /// image store: it sees only what it pulls and builds); `None` when the
    /// engine is already private to the run (a fresh CodeBuild agent).
    fn for_run(&self, _run: &str) -> Option<std::sync::Arc<dyn Engine>> {
        None
    }
    /// Stops every detached container of `group` and removes its
    /// containers, kept ones included; on an engine from
    /// [`Engine::for_run`], also what the run pulled and built.
    async fn end_group(&self, group: &str);
    /// Checks that a registry answers the distribution API (`GET /v2/`);
    /// `Err` carries a one-line reason ("registry x is unreachable: ...").
    async fn probe_registry(&self, registry: &str) -> std::result::Result<(), String>;
    /// The mechanics of OS patching on this engine's image store; `None`
    /// when the engine cannot patch (patch runs then fail saying so).
    fn patcher(&self) -> Option<std::sync::Arc<dyn crate::patch::execute::PatchEngine>> {
        None
    }
}

/// Result of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    Pulled { digest: String },
    Failed { message: String },
}

/// Result of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed {
        digest: String,
        /// Of a pushed image index: each platform's manifest in it.
        platforms: Vec<crate::domain::model::PlatformImage>,
    },
    Failed {
        message: String,
    },
}

/// The time source; a fixed clock in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
