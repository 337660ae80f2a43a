//! The notification flags of `crtask serve` (each also an environment
//! variable and a key of the config file). See docs/NOTIFICATIONS.md.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Default)]
pub struct NotifyArgs {
    /// URL told (signed JSON POST) when any run starts and ends, besides
    /// the task's own --notify URLs; http or https (repeatable).
    #[arg(long, env = "CRTASK_NOTIFY", value_delimiter = ',', value_name = "URL")]
    pub notify: Vec<String>,
    /// File holding the secret notifications are signed with
    /// (X-Crtask-Signature; re-read at each delivery) [default:
    /// DATA_DIR/notify.secret, generated at first start].
    #[arg(long, env = "CRTASK_NOTIFY_SECRET_FILE", value_name = "FILE")]
    pub notify_secret_file: Option<PathBuf>,
    /// Attempts per notification before it is marked failed [default: 8].
    #[arg(long, env = "CRTASK_NOTIFY_ATTEMPTS", value_name = "N")]
    pub notify_attempts: Option<u32>,
    /// Seconds before a notification's second attempt, doubled for each
    /// further one, at most 600 [default: 5].
    #[arg(long, env = "CRTASK_NOTIFY_BACKOFF", value_name = "SECS")]
    pub notify_backoff: Option<u64>,
    /// Seconds one delivery attempt may take [default: 10].
    #[arg(long, env = "CRTASK_NOTIFY_TIMEOUT", value_name = "SECS")]
    pub notify_timeout: Option<u64>,
}
