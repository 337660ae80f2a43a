//! `crtask serve`: the local server.

use anyhow::Result;
use clap::Args;
use crtask_local::config::ServerSettings;
use crtask_local::platform::Platform;
use std::path::PathBuf;

#[derive(Args)]
pub struct ServeArgs {
    /// Public address: webhooks and /healthz only [default: 127.0.0.1:7878].
    #[arg(long, env = "CRTASK_LISTEN")]
    listen: Option<String>,
    /// Address of the management API (/api/v1/, what the CLI calls); off
    /// loopback it needs --api-token-file [default: 127.0.0.1:7879].
    #[arg(long, env = "CRTASK_API_LISTEN")]
    api_listen: Option<String>,
    /// File holding a bearer token the management API requires, on
    /// loopback too (repeatable: any one is valid, for rotation; re-read at
    /// each call).
    #[arg(long, env = "CRTASK_API_TOKEN_FILE", value_delimiter = ',')]
    api_token_file: Vec<PathBuf>,
    /// SQLite database, run logs, contexts, image storage [default: ./.crtask].
    #[arg(long, env = "CRTASK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Registry for quick-build tags without a host and for {{.Run.Registry}}.
    #[arg(long, env = "CRTASK_REGISTRY")]
    registry: Option<String>,
    /// A registry reached over plain HTTP (repeatable).
    #[arg(long, env = "CRTASK_INSECURE_REGISTRY", value_delimiter = ',')]
    insecure_registry: Vec<String>,
    /// File holding a git webhook secret (repeatable; all are valid at once).
    #[arg(long, env = "CRTASK_GIT_WEBHOOK_SECRET_FILE", value_delimiter = ',')]
    git_webhook_secret_file: Vec<PathBuf>,
    /// File holding a registry webhook token (repeatable).
    #[arg(
        long,
        env = "CRTASK_REGISTRY_WEBHOOK_TOKEN_FILE",
        value_delimiter = ','
    )]
    registry_webhook_token_file: Vec<PathBuf>,
    /// Token for private git repositories over HTTPS, as [HOST=]FILE; the
    /// token is sent only to HOST when given (repeatable).
    #[arg(long, env = "CRTASK_GIT_TOKEN_FILE", value_delimiter = ',')]
    git_token_file: Vec<String>,
    /// Image alias NAME=IMAGE for the first word of `cmd` steps, over ACR's
    /// defaults (bash, az, acr, curl, cssc) (repeatable).
    #[arg(long, env = "CRTASK_IMAGE_ALIAS", value_delimiter = ',')]
    image_alias: Vec<String>,
    /// File holding an HMAC secret for X-Crtask-Signature on registry
    /// notifications (repeatable).
    #[arg(
        long,
        env = "CRTASK_REGISTRY_WEBHOOK_SECRET_FILE",
        value_delimiter = ','
    )]
    registry_webhook_secret_file: Vec<PathBuf>,
    /// The registry host as FROM lines name it, when notifications report
    /// another [default: --registry].
    #[arg(long, env = "CRTASK_REGISTRY_HOST")]
    registry_host: Option<String>,
    /// Seconds a base-image run waits for more updates (tags, architectures,
    /// cascades) to fold into it [default: 3].
    #[arg(long, env = "CRTASK_SETTLE_WINDOW")]
    settle_window: Option<u64>,
    /// Seconds between digest polls of tracked base images; 0 turns polling
    /// off [default: 60].
    #[arg(long, env = "CRTASK_POLL_INTERVAL")]
    poll_interval: Option<u64>,
    /// Poll interval for one registry, as HOST=SECS (repeatable).
    #[arg(long, env = "CRTASK_POLL_INTERVAL_FOR", value_delimiter = ',')]
    poll_interval_for: Vec<String>,
    /// Concurrent runs [default: 2].
    #[arg(long, env = "CRTASK_WORKERS")]
    workers: Option<usize>,
    /// Largest build context accepted, bytes [default: 512 MiB].
    #[arg(long, env = "CRTASK_CONTEXT_LIMIT")]
    context_limit: Option<u64>,
    /// Largest webhook body accepted, bytes [default: 25 MiB].
    #[arg(long, env = "CRTASK_WEBHOOK_BODY_LIMIT")]
    webhook_body_limit: Option<usize>,
    /// Seconds after its scheduled time a timer occurrence missed while the
    /// server was down still fires once at start-up; older ones are recorded
    /// as missed (at least 60) [default: 300].
    #[arg(long, env = "CRTASK_TIMER_GRACE", value_name = "SECS")]
    timer_grace: Option<u64>,
    /// Days events and finished runs (and their logs) are kept; each task's
    /// latest run is always kept; 0 keeps everything [default: 90].
    #[arg(long, env = "CRTASK_RETENTION_DAYS", value_name = "DAYS")]
    retention_days: Option<u64>,
    /// The buildah binary [default: buildah].
    #[arg(long, env = "CRTASK_BUILDAH")]
    buildah: Option<PathBuf>,
    /// buildah storage driver [default: vfs].
    #[arg(long, env = "CRTASK_STORAGE_DRIVER")]
    storage_driver: Option<String>,
    /// buildah isolation [default: chroot].
    #[arg(long, env = "CRTASK_ISOLATION")]
    isolation: Option<String>,
    /// OCI runtime the RUN instructions of builds and cmd steps run under,
    /// so that none of their output is lost; `none`: --isolation [default:
    /// runc when installed].
    #[arg(long, env = "CRTASK_BUILD_RUNTIME", value_name = "RUNTIME")]
    build_runtime: Option<String>,
    /// buildah storage location [default: DATA_DIR/storage].
    #[arg(long, env = "CRTASK_STORAGE_ROOT")]
    storage_root: Option<PathBuf>,
    /// Directory of the secrets the server holds: a task file's
    /// `keyvault: crtask://NAME` reads DIR/NAME when the run starts.
    #[arg(long, env = "CRTASK_SECRET_DIR", value_name = "DIR")]
    secret_dir: Option<PathBuf>,
    /// TOML file with any of these settings (kebab-case keys); flags and
    /// environment win over it.
    #[arg(long, env = "CRTASK_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    limits: Box<super::serve_limits::LimitArgs>,
    #[command(flatten)]
    notify: Box<super::serve_notify::NotifyArgs>,
}

pub async fn run(a: ServeArgs) -> Result<i32> {
    crtask_local::memory::return_large_buffers_to_the_system();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CRTASK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let file = match &a.config {
        Some(p) => ServerSettings::from_file(p)?,
        None => ServerSettings::default(),
    };
    let flags = ServerSettings {
        listen: a.listen,
        api_listen: a.api_listen,
        api_token_file: a.api_token_file,
        data_dir: a.data_dir,
        registry: a.registry,
        insecure_registry: a.insecure_registry,
        git_webhook_secret_file: a.git_webhook_secret_file,
        image_alias: a.image_alias,
        git_token_file: a.git_token_file,
        registry_webhook_token_file: a.registry_webhook_token_file,
        registry_webhook_secret_file: a.registry_webhook_secret_file,
        registry_host: a.registry_host,
        settle_window: a.settle_window,
        poll_interval: a.poll_interval,
        poll_interval_for: a.poll_interval_for,
        workers: a.workers,
        context_limit: a.context_limit,
        webhook_body_limit: a.webhook_body_limit,
        timer_grace: a.timer_grace,
        retention_days: a.retention_days,
        buildah: a.buildah,
        storage_driver: a.storage_driver,
        isolation: a.isolation,
        build_runtime: a.build_runtime,
        storage_root: a.storage_root,
        secret_dir: a.secret_dir,
        limits: (*a.limits).into(),
        notify: a.notify.notify,
        notify_secret_file: a.notify.notify_secret_file,
        notify_attempts: a.notify.notify_attempts,
        notify_backoff: a.notify.notify_backoff,
        notify_timeout: a.notify.notify_timeout,
    };
    let platform = Platform::assemble(flags.over(file)).await?;
    platform.serve().await?;
    Ok(0)
}
