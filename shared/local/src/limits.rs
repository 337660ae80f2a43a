//! Limits of `crtask serve` against stalled, oversized and hostile traffic:
//! what can be set (flags, environment, the `[limits]` table of the config
//! file) and the values in force once defaults are applied.

use serde::Deserialize;
use std::time::Duration;

/// Defaults, documented in docs/SERVER.md.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_BODY_BUDGET: u64 = 64 << 20;
pub const DEFAULT_CONTEXT_MAX_ENTRIES: u64 = crtask_executor::context::DEFAULT_MAX_ENTRIES;
pub const DEFAULT_CONTEXT_MAX_NAME: usize = crtask_executor::context::DEFAULT_MAX_NAME;
pub const DEFAULT_UPLOAD_MAX_AGE: Duration = Duration::from_secs(3600);
/// File descriptors kept back from the connection cap for the database,
/// logs, builds and the registry client.
pub const RESERVED_FDS: u64 = 128;

/// Limits as set by flags, environment or the config file; unset ones take
/// the defaults in [`LimitSettings::resolve`].
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitSettings {
    /// Seconds a client has to send a request's headers.
    pub header_timeout: Option<u64>,
    /// Seconds a client has to send a request's whole body.
    pub body_timeout: Option<u64>,
    /// Seconds an open connection may sit with no request in progress.
    pub idle_timeout: Option<u64>,
    /// Open connections at most.
    pub max_connections: Option<usize>,
    /// Bytes of webhook bodies held in memory at once, all requests together.
    pub body_budget: Option<u64>,
    /// Entries (files, links, directories) in one uploaded context.
    pub context_max_entries: Option<u64>,
    /// Bytes of one entry's path in an uploaded context.
    pub context_max_name: Option<usize>,
    /// Bytes one uploaded context may take on disk, unpacked.
    pub context_disk_limit: Option<u64>,
    /// Seconds an uploaded context no run has taken is kept.
    pub upload_max_age: Option<u64>,
}

impl LimitSettings {
    /// `self` where set, else `lower`.
    pub fn over(self, lower: LimitSettings) -> LimitSettings {
        LimitSettings {
            header_timeout: self.header_timeout.or(lower.header_timeout),
            body_timeout: self.body_timeout.or(lower.body_timeout),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            max_connections: self.max_connections.or(lower.max_connections),
            body_budget: self.body_budget.or(lower.body_budget),
            context_max_entries: self.context_max_entries.or(lower.context_max_entries),
            context_max_name: self.context_max_name.or(lower.context_max_name),
            context_disk_limit: self.context_disk_limit.or(lower.context_disk_limit),
            upload_max_age: self.upload_max_age.or(lower.upload_max_age),
        }
    }

    /// The limits in force; `Err` names a setting that cannot work.
    pub fn resolve(&self) -> crate::Result<Limits> {
        let secs = |v: Option<u64>, d: Duration, name: &str| match v {
            Some(0) => Err(crate::Error::Config(format!("--{name} must be at least 1"))),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(d),
        };
        let positive = |v: u64, name: &str| {
            if v == 0 {
                Err(crate::Error::Config(format!("--{name} must be at least 1")))
            } else {
                Ok(v)
            }
        };
        Ok(Limits {
            header_timeout: secs(
                self.header_timeout,
                DEFAULT_HEADER_TIMEOUT,
                "header-timeout",
            )?,
            body_timeout: secs(self.body_timeout, DEFAULT_BODY_TIMEOUT, "body-timeout")?,
            idle_timeout: secs(self.idle_timeout, DEFAULT_IDLE_TIMEOUT, "idle-timeout")?,
            max_connections: positive(
                self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS) as u64,
                "max-connections",
            )? as usize,
            body_budget: positive(
                self.body_budget.unwrap_or(DEFAULT_BODY_BUDGET),
                "body-budget",
            )?,
            context: ContextLimits {
                max_entries: positive(
                    self.context_max_entries
                        .unwrap_or(DEFAULT_CONTEXT_MAX_ENTRIES),
                    "context-max-entries",
                )?,
                max_name: positive(
                    self.context_max_name.unwrap_or(DEFAULT_CONTEXT_MAX_NAME) as u64,
                    "context-max-name",
                )? as usize,
                disk: self
                    .context_disk_limit
                    .map(|d| positive(d, "context-disk-limit"))
                    .transpose()?,
            },
            upload_max_age: secs(
                self.upload_max_age,
                DEFAULT_UPLOAD_MAX_AGE,
                "upload-max-age",
            )?,
        })
    }
}

/// Limits on an uploaded context beyond its size (`--context-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    pub max_entries: u64,
    pub max_name: usize,
    /// Bytes on disk; `None`: twice `--context-limit`.
    pub disk: Option<u64>,
}

impl ContextLimits {
    /// The unpack limits for a context of at most `bytes` of content.
    pub fn unpack(&self, bytes: u64) -> crtask_executor::context::UnpackLimits {
        let base = crtask_executor::context::UnpackLimits::for_size(bytes);
        crtask_executor::context::UnpackLimits {
            entries: self.max_entries,
            name: self.max_name,
            disk: self.disk.unwrap_or(base.disk),
            ..base
        }
    }
}

/// The limits in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub body_budget: u64,
    pub context: ContextLimits,
    pub upload_max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_budget: DEFAULT_BODY_BUDGET,
            context: ContextLimits {
                max_entries: DEFAULT_CONTEXT_MAX_ENTRIES,
                max_name: DEFAULT_CONTEXT_MAX_NAME,
                disk: None,
            },
            upload_max_age: DEFAULT_UPLOAD_MAX_AGE,
        }
    }
}

/// Raises this process's soft open-file limit to its hard limit (as Go's
/// runtime does) and gives the connection cap that leaves
/// [`RESERVED_FDS`] descriptors for everything else: `wanted`, or less
/// when the limit is lower (with a warning).
pub fn fit_connection_cap(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: lim.maximum,
        maximum: lim.maximum,
    };
    let soft = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => lim.maximum,
        Err(_) => lim.current,
    };
    let Some(soft) = soft else {
        return wanted; // unlimited
    };
    let room = soft.saturating_sub(RESERVED_FDS).max(1);
    if (wanted as u64) > room {
        tracing::warn!(
            "--max-connections {wanted} lowered to {room}: the open-file limit is {soft} \
             and {RESERVED_FDS} descriptors are kept for the database, logs and builds"
        );
        room as usize
    } else {
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_zero_is_refused() {
        let l = LimitSettings::default().resolve().ok();
        assert_eq!(l, Some(Limits::default()));
        assert_eq!(
            l.map(|l| (l.header_timeout, l.max_connections)),
            Some((DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS))
        );
        let flags = LimitSettings {
            idle_timeout: Some(5),
            ..Default::default()
        };
        let file = LimitSettings {
            idle_timeout: Some(9),
            body_budget: Some(1000),
            ..Default::default()
        };
        let l = flags.over(file).resolve().ok();
        assert_eq!(
            l.map(|l| (l.idle_timeout, l.body_budget)),
            Some((Duration::from_secs(5), 1000))
        );
        for bad in [
            LimitSettings {
                header_timeout: Some(0),
                ..Default::default()
            },
            LimitSettings {
                max_connections: Some(0),
                ..Default::default()
            },
            LimitSettings {
                context_max_entries: Some(0),
                ..Default::default()
            },
        ] {
            match bad.resolve() {
                Err(crate::Error::Config(m)) => assert!(m.contains("at least 1"), "{m}"),
                other => panic!("expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_connection_cap_fits_the_open_file_limit() {
        assert_eq!(fit_connection_cap(10), 10);
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        if let Some(soft) = soft {
            assert_eq!(
                fit_connection_cap(usize::MAX) as u64,
                soft.saturating_sub(RESERVED_FDS).max(1)
            );
        }
    }
}
