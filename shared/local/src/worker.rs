//! The local builder: a run queue with a bounded pool of workers. Each worker
//! prepares the run's context, runs the step executor
//! ([`crtask_executor::execute`]) on the buildah engine, and records the
//! outcome.

use async_trait::async_trait;
use chrono::Utc;
use crtask_core::domain::model::{ContextSource, Run, RunStatus, Trigger};
use crtask_core::domain::text;
use crtask_core::ports::{Builder, Clock, Engine, LogSink, Store};
use crtask_core::template::RunVars;
use crtask_core::trigger::build_status::finish;
use crtask_core::trigger::registry;
use crtask_core::{Error as CoreError, Result};
use crtask_executor::execute::{execute_in_context, human, ContextRun};
use crtask_executor::logs::{LogDir, RunLog};
use crtask_executor::secrets::LocalSecrets;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// How long a stopped run may take to wind down (its steps' own grace is 10 s).
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Settings of the worker pool.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub workers: usize,
    /// Registry for `{{.Run.Registry}}` and unqualified tags.
    pub registry: Option<String>,
    /// Root of the server's data (`contexts/`, `work/`).
    pub data_dir: PathBuf,
    /// Largest context accepted, bytes.
    pub context_limit: u64,
    /// Image aliases for `cmd` steps (`bash` -> an image), over ACR's defaults.
    pub image_aliases: std::collections::BTreeMap<String, String>,
    /// How long a base-image run waits for more updates to fold into it.
    pub settle_window: Duration,
    /// Where `crtask://NAME` task-file secrets are (`--secret-dir`).
    pub secret_dir: Option<PathBuf>,
}

impl WorkerConfig {
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("contexts")
    }
    pub fn work_dir(&self) -> PathBuf {
        self.data_dir.join("work")
    }
}

/// Watches runs finish, for log followers.
#[derive(Default)]
pub struct RunEvents {
    notify: Notify,
}

impl RunEvents {
    pub fn changed(&self) {
        self.notify.notify_waiters();
    }
    /// Waits for any run change, at most `d`.
    pub async fn wait(&self, d: Duration) {
        let _ = tokio::time::timeout(d, self.notify.notified()).await;
    }
}

struct Inner {
    store: Arc<dyn Store>,
    engine: Arc<dyn Engine>,
    clock: Arc<dyn Clock>,
    logs: LogDir,
    cfg: WorkerConfig,
    running: Mutex<HashMap<String, CancellationToken>>,
    events: Arc<RunEvents>,
    tx: mpsc::UnboundedSender<String>,
}

/// Hands runs to the workers after `delay` (the settle window in which more
/// updates may fold into them).
pub fn dispatch_later(tx: mpsc::UnboundedSender<String>, runs: Vec<String>, delay: Duration) {
    if runs.is_empty() {
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        for r in runs {
            let _ = tx.send(r);
        }
    });
}

impl WorkerPool {
    /// The queue's sender, for delayed dispatch.
    pub fn sender(&self) -> mpsc::UnboundedSender<String> {
        self.tx.clone()
    }
}

/// The local [`Builder`].
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
    tx: mpsc::UnboundedSender<String>,
}

impl WorkerPool {
    /// Starts `cfg.workers` workers on the current runtime.
    pub fn start(
        store: Arc<dyn Store>,
        engine: Arc<dyn Engine>,
        clock: Arc<dyn Clock>,
        logs: LogDir,
        cfg: WorkerConfig,
        events: Arc<RunEvents>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(cfg.uploads_dir())?;
        std::fs::create_dir_all(cfg.work_dir())?;
        let (tx, rx) = mpsc::unbounded_channel::<String>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let workers = cfg.workers.max(1);
        let inner = Arc::new(Inner {
            store,
            engine,
            clock,
            logs,
            cfg,
            running: Mutex::new(HashMap::new()),
            events,
            tx: tx.clone(),
        });
        for _ in 0..workers {
            let rx = rx.clone();
            let inner = inner.clone();
            tokio::spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(run_id) = next else { break };
                    if let Err(e) = inner.execute(&run_id).await {
                        tracing::error!(run = %run_id, error = %e, "run could not be recorded");
                    }
                    inner.events.changed();
                }
            });
        }
        Ok(WorkerPool { inner, tx })
    }
}

#[async_trait]
impl Builder for WorkerPool {
    async fn dispatch(&self, run_id: &str) -> Result<()> {
        self.tx
            .send(run_id.to_string())
            .map_err(|_| CoreError::Builder("the worker pool has stopped".into()))
    }

    async fn cancel(&self, run_id: &str) -> Result<bool> {
        let token = self
            .inner
            .running
            .lock()
            .ok()
            .and_then(|m| m.get(run_id).cloned());
        if let Some(t) = token {
            t.cancel();
            return Ok(true);
        }
        // Not running here: a queued run is marked so the worker skips it.
        let Some(mut run) = self.inner.store.get_run(run_id).await? else {
            return Err(CoreError::not_found("run", run_id));
        };
        if run.status == RunStatus::Queued {
            run.status = RunStatus::Canceled;
            run.finish_time = Some(self.inner.clock.now());
            run.error = Some("canceled before it started".into());
            self.inner.store.update_run(&run).await?;
            self.inner.events.changed();
            return Ok(true);
        }
        Ok(false)
    }
}

/// `{{.Run.X}}` values of a run.
pub fn run_vars(run: &Run, registry: Option<&str>) -> RunVars {
    let platform = crtask_core::domain::platform::first(&run.platform).to_string();
    let (os, arch) = platform.split_once('/').unwrap_or(("linux", "amd64"));
    let mut v = RunVars {
        id: run.run_id.clone(),
        registry: registry.unwrap_or_default().to_string(),
        date: run.create_time,
        os: os.to_string(),
        architecture: arch.split('/').next().unwrap_or(arch).to_string(),
        task_name: run.task.clone().unwrap_or_default(),
        triggered_by: run.trigger.kind().to_string(),
        ..RunVars::default()
    };
    match &run.trigger {
        Trigger::Commit {
            commit,
            branch,
            repository,
        } => {
            v.commit = commit.clone();
            v.branch = branch.clone();
            v.repository = repository.clone();
        }
        Trigger::PullRequest {
            commit,
            branch,
            repository,
            ..
        } => {
            v.commit = commit.clone();
            v.branch = branch.clone();
            v.repository = repository.clone().unwrap_or_default();
        }
        _ => {}
    }
    v
}

impl Inner {
    async fn execute(&self, run_id: &str) -> Result<()> {
        let Some(mut run) = self.store.get_run(run_id).await? else {
            return Err(CoreError::not_found("run", run_id));
        };
        if run.status != RunStatus::Queued {
            return Ok(());
        }
        let token = CancellationToken::new();
        if let Ok(mut m) = self.running.lock() {
            m.insert(run_id.to_string(), token.clone());
        }
        run.status = RunStatus::Running;
        run.start_time = Some(self.clock.now());
        self.store.update_run(&run).await?;
        self.events.changed();

        let secrets: Vec<String> = run
            .spec
            .build_args
            .iter()
            .filter(|a| a.secret)
            .map(|a| a.value.clone())
            .collect();
        let log = Arc::new(
            self.logs
                .open(run_id, secrets)
                .map_err(|e| CoreError::Builder(format!("cannot open the run log: {e}")))?,
        );
        let work = self.cfg.work_dir().join(run_id);
        // The run's own engine: it sees only what it pulls and builds.
        let engine = self
            .engine
            .for_run(run_id)
            .unwrap_or_else(|| self.engine.clone());
        let timeout = Duration::from_secs(run.spec.timeout.max(1));
        let run_timeout = run.spec.timeout;

        // On timeout or cancel the run's token fires and the build gets a
        // grace period to stop: a multi-step run stops its steps and reports
        // them; a quick build returns at once.
        let mut finished = None;
        let ended = {
            let build = self.build(&mut run, &work, &engine, log.clone(), token.clone());
            tokio::pin!(build);
            let ended = tokio::select! {
                r = &mut build => {
                    finished = Some(r);
                    None
                }
                _ = tokio::time::sleep(timeout) => Some((
                    RunStatus::Timeout,
                    format!("the run exceeded its timeout of {} s", run_timeout),
                )),
                _ = token.cancelled() => Some((RunStatus::Canceled, "canceled by the user".to_string())),
            };
            if ended.is_some() {
                token.cancel();
                let _ = tokio::time::timeout(STOP_GRACE, &mut build).await;
            }
            ended
        };
        let outcome = match ended {
            Some((status, why)) => Outcome::Ended(status, Some(why)),
            None => finished.unwrap_or(Outcome::Done),
        };
        // The run's containers (detached and kept ones too) and images end with it.
        engine.end_group(run_id).await;
        if let Outcome::Ended(status, error) = outcome {
            run.status = status;
            run.error = error;
            for s in run.steps.iter_mut().filter(|s| !s.status.is_terminal()) {
                s.status = status;
                s.finish_time = Some(self.clock.now());
            }
        }
        run.finish_time = Some(self.clock.now());
        // The error may quote a payload (a branch, a commit message): stored
        // and logged inert.
        run.error = run.error.take().map(text::inert_owned);
        let took = run.duration(Utc::now());
        match &run.error {
            None => log.line(&format!(
                "crtask: run {run_id} {} after {}",
                run.status,
                human(took)
            )),
            Some(e) => log.line(&format!(
                "crtask: run {run_id} {} after {}: {e}",
                run.status,
                human(took)
            )),
        }
        log.flush();
        if let Ok(mut m) = self.running.lock() {
            m.remove(run_id);
        }
        let _ = tokio::fs::remove_dir_all(&work).await;
        // Secret volumes live in the scratch directory: never leave it behind.
        let _ = tokio::fs::remove_dir_all(work.with_extension("scratch")).await;
        self.store.update_run(&run).await?;
        if let Err(e) = self.after_run(&run).await {
            tracing::error!(run = %run_id, error = %e, "dependency tracking after the run failed");
        }
        Ok(())
    }

    /// What the finished run sets off ([`finish::after_run`], the same on
    /// AWS): its dependency index, the rebuilds of what it pushed, or the
    /// release of the tasks that waited for its push; those runs are
    /// dispatched after the settle window.
    async fn after_run(&self, run: &Run) -> Result<()> {
        let deps = registry::handler::UpdateDeps {
            store: self.store.as_ref(),
            clock: self.clock.as_ref(),
            registry: self.cfg.registry.as_deref(),
        };
        let runs = finish::after_run(&deps, run).await?;
        dispatch_later(
            self.tx.clone(),
            runs.into_iter().map(|r| r.run_id).collect(),
            self.cfg.settle_window,
        );
        Ok(())
    }

    /// Prepares the context and runs the executor; fills `run` as it goes.
    async fn build(
        &self,
        run: &mut Run,
        work: &Path,
        engine: &Arc<dyn Engine>,
        log: Arc<RunLog>,
        cancel: CancellationToken,
    ) -> Outcome {
        let _ = tokio::fs::remove_dir_all(work).await;
        if let Some(patch) = run.patch.clone() {
            let r = crtask_executor::patch::execute(
                engine.clone(),
                self.clock.as_ref(),
                patch,
                log.as_ref(),
                cancel,
            )
            .await;
            run.status = r.status;
            run.error = r.error;
            run.output_images = r.output_images;
            run.steps = r.steps;
            run.patch = Some(r.patch);
            return Outcome::Done;
        }
        let ctx = match self.prepare_context(run, work, log.as_ref()).await {
            Ok(dir) => dir,
            Err(e) => return Outcome::Ended(RunStatus::Failed, Some(e.to_string())),
        };
        let vars = run_vars(run, self.cfg.registry.as_deref());
        let secrets = LocalSecrets::new(self.cfg.secret_dir.clone());
        let result = execute_in_context(ContextRun {
            engine: engine.clone(),
            clock: self.clock.as_ref(),
            spec: &run.spec,
            vars: &vars,
            registry: self.cfg.registry.as_deref(),
            image_aliases: &self.cfg.image_aliases,
            secrets: &secrets,
            context_dir: &ctx,
            scratch: work.with_extension("scratch"),
            group: &run.run_id,
            log,
            cancel,
        })
        .await;
        run.status = result.status;
        run.error = result.error;
        run.output_images = result.output_images;
        run.base_images = result.base_images;
        run.steps = result.steps;
        Outcome::Done
    }

    async fn prepare_context(&self, run: &Run, work: &Path, log: &dyn LogSink) -> Result<PathBuf> {
        let limit = self.cfg.context_limit;
        match &run.spec.context {
            ContextSource::None => {
                tokio::fs::create_dir_all(work).await.map_err(|e| {
                    CoreError::Builder(format!("cannot create the work directory: {e}"))
                })?;
                Ok(work.to_path_buf())
            }
            ContextSource::Uploaded { id } => {
                let src = self.cfg.uploads_dir().join(id);
                if !src.is_dir() {
                    return Err(CoreError::invalid(format!(
                        "the uploaded context {id} is no longer on the server; submit the build again"
                    )));
                }
                log.line("crtask: using the uploaded context");
                let parent = work.parent().unwrap_or(work);
                tokio::fs::create_dir_all(parent).await.map_err(|e| {
                    CoreError::Builder(format!("cannot create the work directory: {e}"))
                })?;
                tokio::fs::rename(&src, work).await.map_err(|e| {
                    CoreError::Builder(format!("cannot move the uploaded context: {e}"))
                })?;
                Ok(work.to_path_buf())
            }
            ContextSource::LocalDir { path } => {
                log.line(&format!("crtask: reading the context from {path}"));
                let (src, dst, file) = (
                    PathBuf::from(path),
                    work.to_path_buf(),
                    run.spec.file.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&dst)?;
                    crtask_executor::context::copy_context(&src, Some(&file), &dst, limit)
                        .map(|_| ())
                })
                .await
                .map_err(|e| CoreError::Builder(e.to_string()))?
                .map_err(CoreError::from)?;
                Ok(work.to_path_buf())
            }
            ContextSource::Git {
                url,
                reference,
                subdir,
            } => {
                let reference = match (&run.trigger, reference) {
                    (Trigger::Commit { commit, .. } | Trigger::PullRequest { commit, .. }, _) => {
                        Some(commit.clone())
                    }
                    (_, r) => r.clone(),
                };
                match run.spec.git_access_token.as_deref() {
                    Some(token) => {
                        log.add_secret(token);
                        self.engine
                            .checkout_with_token(url, reference.as_deref(), work, log, token)
                            .await?
                    }
                    None => {
                        self.engine
                            .checkout(url, reference.as_deref(), work, log)
                            .await?
                    }
                };
                match subdir {
                    None => Ok(work.to_path_buf()),
                    Some(d) => crtask_executor::fsutil::resolve_inside(work, d)
                        .filter(|p| p.is_dir())
                        .ok_or_else(|| {
                            CoreError::invalid(format!("directory '{d}' not found in {url}"))
                        }),
                }
            }
        }
    }
}

enum Outcome {
    /// The executor ran; `run` holds its result.
    Done,
    /// The run ended early with this status and message.
    Ended(RunStatus, Option<String>),
}
