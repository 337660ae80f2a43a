//! Helpers for this crate's unit tests (integration tests use
//! `crtask-testkit`, which cannot serve unit tests: it links its own build
//! of this crate).

use crate::domain::cron::Cron;
use chrono::{DateTime, Duration, Utc};

/// An RFC 3339 time.
pub(crate) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
}

/// A valid cron.
pub(crate) fn cron(s: &str) -> Cron {
    Cron::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub(crate) fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}
