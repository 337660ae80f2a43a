//! Poller settings.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Error, Result};

/// Poller settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    /// Default interval between two polls of one registry; zero turns
    /// polling off for registries without an entry in `per_registry`.
    pub interval: Duration,
    /// Per-registry intervals (normalised registry name, `docker.io` for
    /// Docker Hub); zero turns polling off for that registry.
    pub per_registry: BTreeMap<String, Duration>,
    /// Registries spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Registry for rendering task image templates when finding which task
    /// produces an image (see [`crtask_core::trigger::registry::handler::UpdateDeps`]).
    pub registry: Option<String>,
    /// How long the caller waits before dispatching the runs a round
    /// recorded, so that several base images moving together start one run.
    /// [`crate::Poller::round`] does not use it; it only carries it.
    pub settle_window: Duration,
    /// How often the caller runs [`crate::Poller::round`] when it runs it on
    /// a fixed tick (the AWS schedule function: every minute); zero when it
    /// runs it continuously. A registry due within half a tick is polled in
    /// this round, so a 60 s interval on a 60 s tick polls every tick, not
    /// every other one because of jitter.
    pub tick: Duration,
    /// Registries whose pushes arrive as events (the AWS stack's own ECR,
    /// covered by its EventBridge rule): never polled.
    pub covered_by_events: Vec<String>,
    /// FOR TESTS ONLY: registry host -> base URL the requests go to instead
    /// (see [`crate::RegistryClient::with_endpoints`]).
    pub endpoints: BTreeMap<String, String>,
}

impl Default for PollConfig {
    /// [`crtask_core::trigger::registry::poll::DEFAULT_INTERVAL`] everywhere, HTTPS only, no
    /// settle window.
    fn default() -> Self {
        PollConfig {
            interval: crtask_core::trigger::registry::poll::DEFAULT_INTERVAL,
            per_registry: BTreeMap::new(),
            insecure: Vec::new(),
            registry: None,
            settle_window: Duration::ZERO,
            tick: Duration::ZERO,
            covered_by_events: Vec::new(),
            endpoints: BTreeMap::new(),
        }
    }
}

impl PollConfig {
    /// Parses `HOST=SECS` entries (host lower-cased).
    pub fn parse_per_registry(specs: &[String]) -> Result<BTreeMap<String, Duration>> {
        specs
            .iter()
            .map(|s| match s.split_once('=') {
                Some((h, n)) if !h.trim().is_empty() => n
                    .trim()
                    .parse::<u64>()
                    .map(|n| (h.trim().to_ascii_lowercase(), Duration::from_secs(n)))
                    .map_err(|_| {
                        Error::Config(format!("poll interval '{s}' must be HOST=SECONDS"))
                    }),
                _ => Err(Error::Config(format!(
                    "poll interval '{s}' must be HOST=SECONDS"
                ))),
            })
            .collect()
    }

    /// Parses `HOST=URL` entries of [`PollConfig::endpoints`] (tests only).
    pub fn parse_endpoints(specs: &str) -> Result<BTreeMap<String, String>> {
        specs
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s.split_once('=') {
                Some((h, u))
                    if !h.trim().is_empty()
                        && (u.trim().starts_with("http://")
                            || u.trim().starts_with("https://")) =>
                {
                    Ok((h.trim().to_ascii_lowercase(), u.trim().to_string()))
                }
                _ => Err(Error::Config(format!(
                    "registry endpoint '{}' must be HOST=http(s)://ADDRESS",
                    crtask_core::domain::text::inert(s)
                ))),
            })
            .collect()
    }

    /// The interval for `registry` (its own entry, else the default; zero
    /// for a registry covered by events).
    pub fn interval_for(&self, registry: &str) -> Duration {
        if self
            .covered_by_events
            .iter()
            .any(|r| r.eq_ignore_ascii_case(registry))
        {
            return Duration::ZERO;
        }
        self.per_registry
            .get(registry)
            .copied()
            .unwrap_or(self.interval)
    }

    /// Whether no registry is polled at all.
    pub fn is_off(&self) -> bool {
        self.interval.is_zero() && self.per_registry.values().all(|d| d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_registry_parses_and_names_bad_entries() {
        let ok = PollConfig::parse_per_registry(&[
            "Docker.io=300".to_string(),
            " ghcr.io = 0 ".to_string(),
        ])
        .unwrap();
        assert_eq!(ok.get("docker.io"), Some(&Duration::from_secs(300)));
        assert_eq!(ok.get("ghcr.io"), Some(&Duration::ZERO));
        for bad in [
            "docker.io",
            "=5",
            " =5",
            "docker.io=-1",
            "docker.io=soon",
            "x=1.5",
        ] {
            let e = PollConfig::parse_per_registry(&[bad.to_string()])
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("config: poll interval '{bad}' must be HOST=SECONDS")
            );
        }
        let cfg = PollConfig {
            interval: Duration::from_secs(60),
            per_registry: ok,
            ..PollConfig::default()
        };
        assert_eq!(cfg.interval_for("docker.io"), Duration::from_secs(300));
        assert_eq!(cfg.interval_for("quay.io"), Duration::from_secs(60));
        assert!(!cfg.is_off());
        let off = PollConfig {
            interval: Duration::ZERO,
            per_registry: PollConfig::parse_per_registry(&["ghcr.io=0".to_string()]).unwrap(),
            ..PollConfig::default()
        };
        assert!(off.is_off());
    }
}
