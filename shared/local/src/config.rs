//! Settings of the local server, merged from flags, environment and a TOML file.

use serde::Deserialize;
use std::path::PathBuf;

/// Default listen address of the public listener (webhooks, `/healthz`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// Default listen address of the management API (`/api/v1/`): loopback.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:7879";

/// Everything `crtask serve` can be told. Every field is optional so that
/// flags, environment and the config file can be layered (flags win).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSettings {
    pub listen: Option<String>,
    /// Address of the management API (`/api/v1/`).
    pub api_listen: Option<String>,
    /// Files holding bearer tokens for the management API (any one is valid).
    #[serde(default)]
    pub api_token_file: Vec<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub registry: Option<String>,
    #[serde(default)]
    pub insecure_registry: Vec<String>,
    #[serde(default)]
    pub git_webhook_secret_file: Vec<PathBuf>,
    /// `[HOST=]FILE`: a token for private git repositories over HTTPS.
    #[serde(default)]
    pub git_token_file: Vec<String>,
    /// `NAME=IMAGE` aliases for the first word of `cmd` steps (`bash=...`).
    #[serde(default)]
    pub image_alias: Vec<String>,
    #[serde(default)]
    pub registry_webhook_token_file: Vec<PathBuf>,
    /// Files holding HMAC secrets for `X-Crtask-Signature` on registry notifications.
    #[serde(default)]
    pub registry_webhook_secret_file: Vec<PathBuf>,
    /// The registry host as FROM lines name it, when notifications see another.
    pub registry_host: Option<String>,
    /// Seconds a base-image run waits for more updates to fold into it.
    pub settle_window: Option<u64>,
    /// Seconds between digest polls of tracked base images (0: no polling).
    pub poll_interval: Option<u64>,
    /// `HOST=SECS` poll intervals for particular registries.
    #[serde(default)]
    pub poll_interval_for: Vec<String>,
    pub workers: Option<usize>,
    pub context_limit: Option<u64>,
    pub webhook_body_limit: Option<usize>,
    /// Seconds after its scheduled time a timer occurrence missed while the
    /// server was down still fires (once) at start-up.
    pub timer_grace: Option<u64>,
    /// Days events and finished runs (with their logs) are kept; 0 keeps
    /// them forever.
    pub retention_days: Option<u64>,
    pub buildah: Option<PathBuf>,
    pub storage_driver: Option<String>,
    pub isolation: Option<String>,
    /// OCI runtime of the `RUN`s of builds (`none`: `isolation`).
    pub build_runtime: Option<String>,
    pub storage_root: Option<PathBuf>,
    /// Directory of the secrets the server holds: a task file's
    /// `keyvault: crtask://NAME` reads the file `NAME` in it.
    pub secret_dir: Option<PathBuf>,
    /// URLs told when any run starts and ends (signed JSON, see NOTIFICATIONS.md).
    #[serde(default)]
    pub notify: Vec<String>,
    /// The file holding the notifications' signing secret (default:
    /// `notify.secret` in the data directory, generated).
    pub notify_secret_file: Option<PathBuf>,
    /// Attempts per notification (default 8).
    pub notify_attempts: Option<u32>,
    /// Seconds before a notification's second attempt; doubled for each
    /// further one (default 5).
    pub notify_backoff: Option<u64>,
    /// Seconds one delivery attempt may take (default 10).
    pub notify_timeout: Option<u64>,
    /// Connection, body and upload limits (the `[limits]` table).
    #[serde(default)]
    pub limits: crate::limits::LimitSettings,
}

impl ServerSettings {
    /// Reads a TOML config file.
    pub fn from_file(path: &std::path::Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            crate::Error::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        toml_from_str(&text)
            .map_err(|e| crate::Error::Config(format!("config file {}: {e}", path.display())))
    }

    /// `self` where set, else `lower`.
    pub fn over(self, lower: ServerSettings) -> ServerSettings {
        fn v<T>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
            if a.is_empty() {
                b
            } else {
                a
            }
        }
        ServerSettings {
            listen: self.listen.or(lower.listen),
            api_listen: self.api_listen.or(lower.api_listen),
            api_token_file: v(self.api_token_file, lower.api_token_file),
            data_dir: self.data_dir.or(lower.data_dir),
            registry: self.registry.or(lower.registry),
            insecure_registry: v(self.insecure_registry, lower.insecure_registry),
            git_webhook_secret_file: v(self.git_webhook_secret_file, lower.git_webhook_secret_file),
            image_alias: v(self.image_alias, lower.image_alias),
            git_token_file: v(self.git_token_file, lower.git_token_file),
            registry_webhook_token_file: v(
                self.registry_webhook_token_file,
                lower.registry_webhook_token_file,
            ),
            registry_webhook_secret_file: v(
                self.registry_webhook_secret_file,
                lower.registry_webhook_secret_file,
            ),
            registry_host: self.registry_host.or(lower.registry_host),
            settle_window: self.settle_window.or(lower.settle_window),
            poll_interval: self.poll_interval.or(lower.poll_interval),
            poll_interval_for: v(self.poll_interval_for, lower.poll_interval_for),
            workers: self.workers.or(lower.workers),
            context_limit: self.context_limit.or(lower.context_limit),
            webhook_body_limit: self.webhook_body_limit.or(lower.webhook_body_limit),
            timer_grace: self.timer_grace.or(lower.timer_grace),
            retention_days: self.retention_days.or(lower.retention_days),
            buildah: self.buildah.or(lower.buildah),
            storage_driver: self.storage_driver.or(lower.storage_driver),
            isolation: self.isolation.or(lower.isolation),
            build_runtime: self.build_runtime.or(lower.build_runtime),
            storage_root: self.storage_root.or(lower.storage_root),
            secret_dir: self.secret_dir.or(lower.secret_dir),
            notify: v(self.notify, lower.notify),
            notify_secret_file: self.notify_secret_file.or(lower.notify_secret_file),
            notify_attempts: self.notify_attempts.or(lower.notify_attempts),
            notify_backoff: self.notify_backoff.or(lower.notify_backoff),
            notify_timeout: self.notify_timeout.or(lower.notify_timeout),
            limits: self.limits.over(lower.limits),
        }
    }
}

fn toml_from_str(text: &str) -> Result<ServerSettings, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_and_unknown_keys_are_errors() {
        let file: ServerSettings = toml_from_str(
            "listen = \"0.0.0.0:1\"\nworkers = 4\ninsecure-registry = [\"r:5000\"]\n",
        )
        .unwrap();
        let flags = ServerSettings {
            workers: Some(1),
            ..Default::default()
        };
        let s = flags.over(file);
        assert_eq!(s.workers, Some(1));
        assert_eq!(s.listen.as_deref(), Some("0.0.0.0:1"));
        assert_eq!(s.insecure_registry, vec!["r:5000".to_string()]);
        let e = toml_from_str("wokers = 2").unwrap_err();
        assert!(e.contains("wokers"), "{e}");
    }
}
