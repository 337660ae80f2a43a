//! Start-up of the embedded platform: resolve settings, open the store,
//! recover runs a previous process left behind, start workers, serve HTTP.

use crate::api_auth::{check_exposure, ApiAuth};
use crate::config::{ServerSettings, DEFAULT_API_LISTEN, DEFAULT_LISTEN};
use crate::notify::NotifyConfig;
use crate::server::{api_router, public_router, AppState};
use crate::store::SqliteStore;
use crate::worker::{RunEvents, WorkerConfig, WorkerPool};
use crate::{Error, Result};
use crtask_core::domain::model::RunStatus;
use crtask_core::notify::RetryPolicy;
use crtask_core::ports::{Builder, Clock, Engine, Store, SystemClock};
use crtask_executor::buildah::{write_registries_conf, Buildah, BuildahConfig};
use crtask_executor::context::DEFAULT_CONTEXT_LIMIT;
use crtask_executor::execute::parse_aliases;
use crtask_executor::logs::LogDir;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The platform, assembled and recovered, ready to serve.
pub struct Platform {
    pub state: AppState,
    /// The public listener's address (`--listen`): webhooks and `/healthz`.
    pub listen: SocketAddr,
    /// The management API's address (`--api-listen`).
    pub api_listen: SocketAddr,
    /// Who may call the management API.
    pub api_auth: ApiAuth,
    pub data_dir: PathBuf,
    /// Grace window of the timer scheduler (`--timer-grace`).
    pub timer_grace: chrono::Duration,
    /// How long events and finished runs are kept (`--retention-days`).
    pub retention: crtask_core::run::retention::Retention,
    /// Lists registry tags for continuous patching (the engine's).
    pub patch_tags: Option<Arc<dyn crtask_core::patch::execute::TagLister>>,
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && !h.contains('/')
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
}

/// Parses a listen address; `flag` names it in the error.
fn socket_addr(value: &str, flag: &str) -> Result<SocketAddr> {
    value
        .parse()
        .map_err(|_| Error::Config(format!("{flag} '{value}' is not an ADDR:PORT")))
}

impl Platform {
    /// Builds the platform from settings (defaults applied here). Refuses
    /// an unauthenticated API on a non-loopback address before anything
    /// starts.
    pub async fn assemble(s: ServerSettings) -> Result<Platform> {
        let listen = socket_addr(s.listen.as_deref().unwrap_or(DEFAULT_LISTEN), "--listen")?;
        let api_listen = socket_addr(
            s.api_listen.as_deref().unwrap_or(DEFAULT_API_LISTEN),
            "--api-listen",
        )?;
        if listen == api_listen && listen.port() != 0 {
            return Err(Error::Config(format!(
                "--api-listen {api_listen} is the --listen address: the management API \
                 needs its own address, apart from the public webhooks"
            )));
        }
        let api_auth = ApiAuth::from_files(s.api_token_file.clone())?;
        check_exposure(api_listen, &api_auth)?;
        let mut limits = s.limits.resolve()?;
        limits.max_connections = crate::limits::fit_connection_cap(limits.max_connections);
        let data_dir = s
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".crtask"));
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            Error::Config(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let data_dir = data_dir.canonicalize()?;
        for f in &s.git_webhook_secret_file {
            let text = std::fs::read_to_string(f).map_err(|e| {
                Error::Config(format!(
                    "cannot read git webhook secret file {}: {e}",
                    f.display()
                ))
            })?;
            if text.trim().is_empty() {
                return Err(Error::Config(format!(
                    "git webhook secret file {} is empty",
                    f.display()
                )));
            }
        }
        for h in s.registry.iter().chain(s.insecure_registry.iter()) {
            if !valid_host(h) {
                return Err(Error::Config(format!(
                    "registry '{h}' is not a host[:port] (no scheme, no path)"
                )));
            }
        }
        if let Some(d) = &s.secret_dir {
            if !d.is_dir() {
                return Err(Error::Config(format!(
                    "secret directory {} is not a directory",
                    d.display()
                )));
            }
        }
        let notify = notify_config(&s, &data_dir)?;
        let registries_conf = data_dir.join("registries.conf");
        write_registries_conf(&registries_conf, &s.insecure_registry)?;
        let outbox =
            SqliteStore::open(&data_dir.join("crtask.db"))?.with_notify_urls(s.notify.clone());
        let store: Arc<dyn Store> = Arc::new(outbox.clone());
        let logs = LogDir::new(data_dir.join("logs"))?;
        let storage_root = s
            .storage_root
            .clone()
            .unwrap_or_else(|| data_dir.join("storage"));
        let buildah = Buildah::new(BuildahConfig {
            binary: s
                .buildah
                .clone()
                .unwrap_or_else(|| PathBuf::from("buildah")),
            root: storage_root.join("root"),
            runroot: storage_root.join("runroot"),
            storage_driver: s.storage_driver.clone().unwrap_or_else(|| "vfs".into()),
            isolation: s.isolation.clone().unwrap_or_else(|| "chroot".into()),
            build_runtime: crtask_executor::runtime::resolve(s.build_runtime.as_deref()),
            registries_conf,
            insecure_registries: s.insecure_registry.clone(),
            git_auth: crtask_executor::gitctx::GitAuth::parse(&s.git_token_file)?,
        });
        // No run is in progress yet: image stores of runs a dead server
        // left behind go (see `crtask_executor::isolation`).
        match buildah.delete_stale_run_stores().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(stores = n, "removed the image stores of interrupted runs"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot remove the image stores of interrupted runs")
            }
        }
        if !buildah.has_direct_output() {
            tracing::warn!(
                "no static busybox found (/bin/busybox): cmd steps go through buildah's own output relay, which can lose output on a busy machine; install busybox-static"
            );
        }
        if !buildah.has_build_runtime() {
            tracing::warn!(
                "no OCI runtime for builds (runc): RUN output goes through buildah's chroot relay, which can lose output on a busy machine; install runc"
            );
        }
        let engine: Arc<dyn Engine> = Arc::new(buildah);
        let patch_tags = engine
            .patcher()
            .map(|p| p as Arc<dyn crtask_core::patch::execute::TagLister>);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let events = Arc::new(RunEvents::default());
        let workers = WorkerConfig {
            workers: s.workers.unwrap_or(2).max(1),
            registry: s.registry.clone(),
            data_dir: data_dir.clone(),
            context_limit: s.context_limit.unwrap_or(DEFAULT_CONTEXT_LIMIT),
            image_aliases: parse_aliases(&s.image_alias)?,
            settle_window: std::time::Duration::from_secs(s.settle_window.unwrap_or(3)),
            secret_dir: s.secret_dir.clone(),
        };
        let pool = WorkerPool::start(
            store.clone(),
            engine,
            clock.clone(),
            logs.clone(),
            workers.clone(),
            events.clone(),
        )?;
        let queue = pool.sender();
        let builder: Arc<dyn Builder> = Arc::new(pool);
        let state = AppState {
            store,
            builder,
            clock,
            logs,
            workers,
            events,
            git_secrets: Arc::new(crate::secret_files::SecretFiles::new(
                "git webhook secret",
                &s.git_webhook_secret_file,
            )),
            registry_token_files: Arc::new(s.registry_webhook_token_file.clone()),
            registry_secret_files: Arc::new(s.registry_webhook_secret_file.clone()),
            registry_host: s.registry_host.clone().or_else(|| s.registry.clone()),
            queue,
            webhook_body_limit: s
                .webhook_body_limit
                .unwrap_or(crtask_core::trigger::git::handler::DEFAULT_BODY_LIMIT),
            body_budget: crate::webhook_gate::BodyBudget::new(
                limits.body_budget,
                crate::webhook_gate::BUDGET_WAIT,
            ),
            limits,
            notifications: Some(outbox.clone()),
        };
        recover(&state).await?;
        crate::notify::start(outbox, notify)?;
        crate::sweeper::start(
            state.store.clone(),
            state.workers.uploads_dir(),
            state.limits.upload_max_age,
        );
        crate::poller::start(
            state.store.clone(),
            state.clock.clone(),
            state.queue.clone(),
            crate::poller::PollConfig {
                interval: std::time::Duration::from_secs(
                    s.poll_interval.unwrap_or(
                        crtask_core::trigger::registry::poll::DEFAULT_INTERVAL.as_secs(),
                    ),
                ),
                per_registry: crate::poller::PollConfig::parse_per_registry(&s.poll_interval_for)?,
                insecure: s.insecure_registry.clone(),
                registry: s.registry.clone(),
                settle_window: state.workers.settle_window,
                tick: std::time::Duration::ZERO,
                ..Default::default()
            },
            Arc::new(crate::registry_credentials::FileCredentials::in_data_dir(
                &data_dir,
            )),
        );
        Ok(Platform {
            state,
            listen,
            api_listen,
            api_auth,
            data_dir,
            timer_grace: crate::scheduler::grace(s.timer_grace),
            retention: crtask_core::run::retention::Retention::from_setting(s.retention_days),
            patch_tags,
        })
    }

    /// The public listener's router.
    pub fn public_router(&self) -> axum::Router {
        public_router(self.state.clone())
    }

    /// The management API's router.
    pub fn api_router(&self) -> axum::Router {
        api_router(self.state.clone(), self.api_auth.clone())
    }

    /// Serves both listeners until SIGINT or SIGTERM.
    pub async fn serve(self) -> Result<()> {
        let public = crate::listener::bind(self.listen, "--listen").await?;
        let api = crate::listener::bind(self.api_listen, "--api-listen").await?;
        tracing::info!(
            "crtask listening on http://{} (webhooks), management API on http://{} ({}; data in {})",
            public.local_addr()?,
            api.local_addr()?,
            if self.api_auth.required() {
                "bearer token required"
            } else {
                "loopback, no token"
            },
            self.data_dir.display()
        );
        let timers = crate::scheduler::Scheduler::for_state(&self.state, self.timer_grace).start();
        let patches = match (&self.patch_tags, &self.state.workers.registry) {
            (Some(tags), Some(registry)) => Some(
                crate::patch_schedule::PatchScheduler {
                    store: self.state.store.clone(),
                    builder: self.state.builder.clone(),
                    clock: self.state.clock.clone(),
                    tags: tags.clone(),
                    registry: registry.clone(),
                    data_dir: self.state.workers.data_dir.clone(),
                    events: self.state.events.clone(),
                }
                .start(),
            ),
            _ => None,
        };
        let pruner = crate::retention::start(
            self.state.store.clone(),
            self.state.clock.clone(),
            self.state.logs.clone(),
            self.retention,
            crate::retention::PRUNE_INTERVAL,
        );
        let limits = self.state.limits.clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut rx = stopped.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let signal = tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let served = tokio::try_join!(
            crate::listener::serve(public, self.public_router(), &limits, until_stopped()),
            crate::listener::serve(api, self.api_router(), &limits, until_stopped()),
        );
        signal.abort();
        timers.abort();
        if let Some(p) = patches {
            p.abort();
        }
        if let Some(p) = pruner {
            p.abort();
        }
        served?;
        tracing::info!("crtask stopped");
        Ok(())
    }
}

/// The notification settings: the server's URLs checked (a bad one stops
/// the server), the signing secret's file, the retry policy.
fn notify_config(s: &ServerSettings, data_dir: &std::path::Path) -> Result<NotifyConfig> {
    crtask_core::notify::validate_urls(&s.notify)
        .map_err(|e| Error::Config(format!("--notify: {e}")))?;
    let defaults = RetryPolicy::default();
    let timeout = s.notify_timeout.map_or(
        crate::notify::DEFAULT_TIMEOUT,
        std::time::Duration::from_secs,
    );
    if timeout.is_zero() || s.notify_attempts == Some(0) {
        return Err(Error::Config(
            "--notify-timeout and --notify-attempts must be at least 1".into(),
        ));
    }
    Ok(NotifyConfig {
        secret_file: crate::notify::secret_file(data_dir, s.notify_secret_file.as_deref())?,
        policy: RetryPolicy {
            max_attempts: s.notify_attempts.unwrap_or(defaults.max_attempts),
            first_delay: s
                .notify_backoff
                .map_or(defaults.first_delay, std::time::Duration::from_secs),
            max_delay: defaults.max_delay,
        },
        timeout,
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Runs a previous process left `Started`/`Running` end as `Error`; `Queued`
/// runs are handed to the workers again.
pub async fn recover(state: &AppState) -> Result<()> {
    let now = state.clock.now();
    for mut run in state
        .store
        .runs_in_status(&[RunStatus::Started, RunStatus::Running])
        .await?
    {
        run.status = RunStatus::Error;
        run.finish_time = Some(now);
        run.error = Some("the server stopped while this run was in progress; run it again".into());
        for s in run.steps.iter_mut().filter(|s| !s.status.is_terminal()) {
            s.status = RunStatus::Error;
            s.finish_time = Some(now);
        }
        state.store.update_run(&run).await?;
        tracing::warn!(run = %run.run_id, "run interrupted by a restart marked Error");
    }
    let queued = state.store.runs_in_status(&[RunStatus::Queued]).await?;
    // Uploaded contexts no queued run will use (a build never submitted, or
    // its run already over) are removed.
    let keep: Vec<String> = queued
        .iter()
        .filter_map(|r| match &r.spec.context {
            crtask_core::domain::model::ContextSource::Uploaded { id } => Some(id.clone()),
            _ => None,
        })
        .collect();
    if let Ok(entries) = std::fs::read_dir(state.workers.uploads_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                let _ =
                    std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
            }
        }
    }
    for run in queued {
        state.builder.dispatch(&run.run_id).await?;
        tracing::info!(run = %run.run_id, "queued run resumed");
    }
    Ok(())
}
