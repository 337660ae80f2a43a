//! Retention: how long events, finished runs and their logs are kept.
//!
//! Nothing else deletes them, so without this a busy webhook grows the
//! store forever. The rule, the same for every store: an event older than
//! the cutoff goes; a run goes when it is finished (a terminal status) and
//! finished before the cutoff, unless it is its task's latest run (kept so
//! `list-runs` always shows how each task last went). Queued and running
//! runs are never pruned. The store applies the rule
//! ([`crate::ports::Store::prune_before`]); the platform deletes the pruned
//! runs' logs and calls [`prune`] periodically.

use chrono::{DateTime, Duration, Utc};

use crate::ports::{Clock, Store};
use crate::Result;

/// Days kept when nothing is configured (`--retention-days`).
pub const DEFAULT_RETENTION_DAYS: u64 = 90;

/// Longest retention accepted: past this, nothing is ever pruned in practice.
const MAX_RETENTION_DAYS: u64 = 36_500;

/// How long records are kept: `None` keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    max_age: Option<Duration>,
}

impl Retention {
    /// `days` of history (0: keep everything; capped at 100 years).
    pub fn days(days: u64) -> Retention {
        let max_age = (days > 0).then(|| Duration::days(days.min(MAX_RETENTION_DAYS) as i64));
        Retention { max_age }
    }

    /// The configured value or [`DEFAULT_RETENTION_DAYS`].
    pub fn from_setting(days: Option<u64>) -> Retention {
        Retention::days(days.unwrap_or(DEFAULT_RETENTION_DAYS))
    }

    /// Whether anything is ever pruned.
    pub fn enabled(&self) -> bool {
        self.max_age.is_some()
    }

    /// Records from before this instant are pruned; `None` when disabled.
    pub fn cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.max_age.and_then(|age| now.checked_sub_signed(age))
    }
}

/// What one prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Number of events deleted.
    pub events: u64,
    /// Ids of the runs deleted (the platform deletes their logs).
    pub runs: Vec<String>,
}

/// Prunes what `retention` no longer keeps, as of the clock's now. Does
/// nothing when retention is disabled.
pub async fn prune(store: &dyn Store, clock: &dyn Clock, retention: Retention) -> Result<Pruned> {
    match retention.cutoff(clock.now()) {
        Some(cutoff) => store.prune_before(cutoff).await,
        None => Ok(Pruned::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cutoff_is_now_minus_the_days_and_zero_disables() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        assert_eq!(
            Retention::days(90).cutoff(now),
            Some(Utc.with_ymd_and_hms(2026, 3, 3, 12, 0, 0).unwrap())
        );
        assert_eq!(Retention::from_setting(None), Retention::days(90));
        assert!(!Retention::days(0).enabled());
        assert_eq!(Retention::days(0).cutoff(now), None);
        // Absurd values are capped, not overflowed.
        assert!(Retention::days(u64::MAX).cutoff(now).is_some());
    }
}
