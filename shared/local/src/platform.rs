//! Start-up of the embedded platform: resolve settings, open the store,
//! recover runs a previous process left behind, start workers, serve HTTP.

use crate::config::{ServerSettings, DEFAULT_LISTEN};
use crate::server::{router, AppState};
use crate::store::SqliteStore;
use crate::worker::{RunEvents, WorkerConfig, WorkerPool};
use crate::{Error, Result};
use crtask_core::domain::model::RunStatus;
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
    pub listen: String,
    pub data_dir: PathBuf,
    /// Grace window of the timer scheduler (`--timer-grace`).
    pub timer_grace: chrono::Duration,
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && !h.contains('/')
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
}

impl Platform {
    /// Builds the platform from settings (defaults applied here).
    pub async fn assemble(s: ServerSettings) -> Result<Platform> {
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
        let registries_conf = data_dir.join("registries.conf");
        write_registries_conf(&registries_conf, &s.insecure_registry)?;
        let store = SqliteStore::open(&data_dir.join("crtask.db"))?;
        let store: Arc<dyn Store> = Arc::new(store);
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
        let engine: Arc<dyn Engine> = Arc::new(buildah);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let events = Arc::new(RunEvents::default());
        let workers = WorkerConfig {
            workers: s.workers.unwrap_or(2).max(1),
            registry: s.registry.clone(),
            data_dir: data_dir.clone(),
            context_limit: s.context_limit.unwrap_or(DEFAULT_CONTEXT_LIMIT),
            image_aliases: parse_aliases(&s.image_alias)?,
            settle_window: std::time::Duration::from_secs(s.settle_window.unwrap_or(3)),
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
            git_secret_files: Arc::new(s.git_webhook_secret_file.clone()),
            registry_token_files: Arc::new(s.registry_webhook_token_file.clone()),
            registry_secret_files: Arc::new(s.registry_webhook_secret_file.clone()),
            registry_host: s.registry_host.clone().or_else(|| s.registry.clone()),
            queue,
            webhook_body_limit: s
                .webhook_body_limit
                .unwrap_or(crtask_core::trigger::git::handler::DEFAULT_BODY_LIMIT),
        };
        recover(&state).await?;
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
            },
        );
        Ok(Platform {
            state,
            listen: s.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            data_dir,
            timer_grace: crate::scheduler::grace(s.timer_grace),
        })
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn serve(self) -> Result<()> {
        let addr: SocketAddr = self.listen.parse().map_err(|_| {
            Error::Config(format!("--listen '{}' is not an ADDR:PORT", self.listen))
        })?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
        let local = listener.local_addr()?;
        tracing::info!(
            "crtask listening on http://{local} (data in {})",
            self.data_dir.display()
        );
        let timers = crate::scheduler::Scheduler::for_state(&self.state, self.timer_grace).start();
        axum::serve(listener, router(self.state))
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        timers.abort();
        tracing::info!("crtask stopped");
        Ok(())
    }
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
