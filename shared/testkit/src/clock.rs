//! [`FixedClock`]: a [`Clock`] that stands still until the test moves it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crtask_core::ports::Clock;
use std::sync::Mutex;

/// A clock at a fixed time; [`FixedClock::set`] and [`FixedClock::advance`]
/// move it (through a shared reference, so a test can keep an `Arc` of the
/// clock it handed to the code under test).
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(t))
    }

    /// A clock at an RFC 3339 time (`2026-11-27T10:00:00Z`); panics on a bad one.
    pub fn at(rfc3339: &str) -> Self {
        Self::new(at(rfc3339))
    }

    /// A clock at Unix time `ms` milliseconds.
    pub fn at_millis(ms: i64) -> Self {
        Self::new(millis(ms))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.lock() = t;
    }

    /// Moves the clock by `d` (backwards when negative).
    pub fn advance(&self, d: Duration) {
        *self.lock() += d;
    }

    /// Moves the clock by `secs` seconds.
    pub fn advance_secs(&self, secs: i64) {
        self.advance(Duration::seconds(secs));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for FixedClock {
    /// At [`DEFAULT_TIME_MS`].
    fn default() -> Self {
        Self::at_millis(DEFAULT_TIME_MS)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// The time the kit's records are created at unless told otherwise
/// (2023-11-14T22:13:20Z).
pub const DEFAULT_TIME_MS: i64 = 1_700_000_000_000;

/// An RFC 3339 time; panics on a bad one.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("'{rfc3339}' is not an RFC 3339 time: {e}"))
        .with_timezone(&Utc)
}

/// Unix time `ms` milliseconds.
pub fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(|| panic!("{ms} ms is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_when_told() {
        let c = FixedClock::at("2026-01-01T00:00:00Z");
        assert_eq!(c.now(), at("2026-01-01T00:00:00Z"));
        c.advance_secs(90);
        assert_eq!(c.now(), at("2026-01-01T00:01:30Z"));
        c.set(at("2025-12-31T23:00:00Z"));
        assert_eq!(c.now(), at("2025-12-31T23:00:00Z"));
        assert_eq!(FixedClock::default().now(), millis(DEFAULT_TIME_MS));
    }
}
