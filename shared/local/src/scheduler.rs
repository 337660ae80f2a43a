//! The in-process timer scheduler of `crtask serve`.
//!
//! A tokio task that calls [`crtask_core::trigger::timer::handler::tick`] once at start-up
//! (the catch-up after downtime) and then shortly after each minute boundary
//! (UTC). Everything it decides is in core; here are only the wake-ups and the
//! logging. Errors are logged and the next minute tries again.

use crate::worker::RunEvents;
use crtask_core::domain::model::Outcome;
use crtask_core::ports::{Builder, Clock, Store};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Default grace window, seconds (`--timer-grace`).
pub const DEFAULT_TIMER_GRACE_SECS: u64 = 300;

/// The least grace window used: the scheduler wakes once a minute, so an
/// occurrence is normally handled a few seconds after its time, and a grace
/// window under a minute would risk treating a punctual firing as missed.
pub const MIN_TIMER_GRACE_SECS: u64 = 60;

/// How long after each minute boundary the scheduler wakes, so that the
/// boundary has surely passed on this clock.
const WAKE_DELAY_MS: i64 = 1500;

/// The grace window for `--timer-grace SECS` (default
/// [`DEFAULT_TIMER_GRACE_SECS`]), raised to [`MIN_TIMER_GRACE_SECS`] and
/// capped at ten years.
pub fn grace(secs: Option<u64>) -> chrono::Duration {
    let secs = secs
        .unwrap_or(DEFAULT_TIMER_GRACE_SECS)
        .max(MIN_TIMER_GRACE_SECS);
    let cap = chrono::Duration::days(3650);
    i64::try_from(secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .map_or(cap, |d| d.min(cap))
}

/// What the scheduler needs.
#[derive(Clone)]
pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub builder: Arc<dyn Builder>,
    pub clock: Arc<dyn Clock>,
    pub events: Arc<RunEvents>,
    pub grace: chrono::Duration,
}

impl Scheduler {
    /// The scheduler for the server's state.
    pub fn for_state(state: &crate::server::AppState, grace: chrono::Duration) -> Scheduler {
        Scheduler {
            store: state.store.clone(),
            builder: state.builder.clone(),
            clock: state.clock.clone(),
            events: state.events.clone(),
            grace,
        }
    }

    /// Starts the scheduler; it runs until the handle is aborted (or the
    /// runtime ends).
    pub fn start(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            tracing::info!(
                "timer scheduler started (grace window {} s)",
                self.grace.num_seconds()
            );
            loop {
                self.tick_once().await;
                tokio::time::sleep(until_next_minute(self.clock.now())).await;
            }
        })
    }

    /// One tick: fire what is due, record what was missed, log it.
    pub async fn tick_once(&self) {
        match crtask_core::trigger::timer::handler::tick(
            self.store.as_ref(),
            self.builder.as_ref(),
            self.clock.as_ref(),
            self.grace,
        )
        .await
        {
            Ok(events) => {
                for e in &events {
                    match e.outcome {
                        Outcome::Triggered => tracing::info!(event = %e.id, "timer: {}", e.reason),
                        _ => {
                            tracing::warn!(event = %e.id, outcome = e.outcome.as_str(), "timer: {}", e.reason)
                        }
                    }
                }
                if !events.is_empty() {
                    self.events.changed();
                }
            }
            Err(e) => tracing::error!("timer scheduler: {e} (trying again next minute)"),
        }
    }
}

/// How long to sleep from `now` until just after the next minute boundary.
pub fn until_next_minute(now: chrono::DateTime<chrono::Utc>) -> std::time::Duration {
    use chrono::Timelike;
    let into_minute = chrono::Duration::seconds(i64::from(now.second()))
        + chrono::Duration::nanoseconds(i64::from(now.nanosecond().min(999_999_999)));
    let wait =
        chrono::Duration::minutes(1) - into_minute + chrono::Duration::milliseconds(WAKE_DELAY_MS);
    wait.to_std()
        .unwrap_or(std::time::Duration::from_secs(1))
        .max(std::time::Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use chrono::Duration;
    use crtask_core::domain::model::{EventSource, RunFilter, Task};
    use crtask_testkit::clock::at;
    use crtask_testkit::{FixedClock, RecordingBuilder, TaskBuilder};

    /// Task `app` (no images, no push, 600 s) created at `created`, with
    /// enabled timers `(name, cron)`.
    fn task(created: &str, timers: &[(&str, &str)]) -> Task {
        let timers: Vec<(&str, &str, bool)> = timers.iter().map(|(n, s)| (*n, *s, true)).collect();
        TaskBuilder::new("app")
            .context("/dev/null")
            .images(&[])
            .push(false)
            .timeout(600)
            .timers(&timers)
            .created(at(created))
            .build()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<SqliteStore>,
        clock: Arc<FixedClock>,
        builder: Arc<RecordingBuilder>,
    }

    impl Fixture {
        fn new(now: &str) -> Fixture {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
            let store = SqliteStore::open(&dir.path().join("db"))
                .unwrap_or_else(|e| panic!("open store: {e}"));
            Fixture {
                _dir: dir,
                store: Arc::new(store),
                clock: Arc::new(FixedClock::at(now)),
                builder: Arc::new(RecordingBuilder::new()),
            }
        }

        async fn tick(
            &self,
            now: &str,
            grace_secs: i64,
        ) -> Vec<crtask_core::domain::model::EventRecord> {
            self.clock.set(at(now));
            crtask_core::trigger::timer::handler::tick(
                self.store.as_ref(),
                self.builder.as_ref(),
                self.clock.as_ref(),
                Duration::seconds(grace_secs),
            )
            .await
            .unwrap_or_else(|e| panic!("tick: {e}"))
        }

        async fn timer_runs(&self) -> Vec<(String, String)> {
            let runs = self
                .store
                .list_runs(&RunFilter::default())
                .await
                .unwrap_or_default();
            let mut out: Vec<(String, String)> = runs
                .iter()
                .filter_map(|r| match &r.trigger {
                    crtask_core::domain::model::Trigger::Timer {
                        timer_name,
                        scheduled_time,
                    } => Some((
                        timer_name.clone(),
                        crtask_core::domain::time::rfc3339(*scheduled_time),
                    )),
                    _ => None,
                })
                .collect();
            out.sort();
            out
        }

        fn dispatched(&self) -> usize {
            self.builder.dispatched().len()
        }
    }

    #[tokio::test]
    async fn fires_each_timer_once_per_occurrence() {
        let f = Fixture::new("2026-01-01T12:00:30Z");
        let t = task(
            "2026-01-01T12:00:30Z",
            &[("a", "* * * * *"), ("b", "* * * * *")],
        );
        f.store.create_task(&t).await.unwrap_or_default();
        crtask_core::trigger::timer::handler::reset_timers(
            f.store.as_ref(),
            f.clock.as_ref(),
            None,
            &t,
        )
        .await
        .unwrap_or_default();
        // Nothing is due in the minute the timers were added.
        assert!(f.tick("2026-01-01T12:00:40Z", 300).await.is_empty());
        let ev = f.tick("2026-01-01T12:01:02Z", 300).await;
        assert_eq!(ev.len(), 2);
        assert!(ev.iter().all(|e| e.outcome == Outcome::Triggered
            && e.source == EventSource::Timer
            && e.detail["scheduledTime"] == "2026-01-01T12:01:00Z"
            && e.runs.len() == 1));
        // Ticking again in the same minute (or after a restart) fires nothing more.
        assert!(f.tick("2026-01-01T12:01:30Z", 300).await.is_empty());
        assert_eq!(
            f.timer_runs().await,
            [
                ("a".to_string(), "2026-01-01T12:01:00.000Z".to_string()),
                ("b".to_string(), "2026-01-01T12:01:00.000Z".to_string())
            ]
        );
        assert_eq!(f.dispatched(), 2);
        let run = f
            .store
            .get_run(&ev[0].runs[0])
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("run missing"));
        assert_eq!(run.run_type, crtask_core::domain::model::RunType::AutoBuild);
        assert_eq!(
            run.dedupe_key.as_deref(),
            Some("timer:app:a:2026-01-01T12:01:00Z")
        );
    }

    #[tokio::test]
    async fn downtime_fires_the_latest_within_grace_and_records_the_rest() {
        let f = Fixture::new("2026-01-01T12:00:00Z");
        let t = task("2026-01-01T11:00:00Z", &[("t1", "*/10 * * * *")]);
        f.store.create_task(&t).await.unwrap_or_default();
        f.store
            .set_timer_last_fired("app", "t1", at("2026-01-01T11:20:00Z"))
            .await
            .unwrap_or_default();
        // Down from 11:20 to 12:03: 11:30, 11:40, 11:50 missed, 12:00 caught up.
        let ev = f.tick("2026-01-01T12:03:00Z", 300).await;
        let outcomes: Vec<_> = ev
            .iter()
            .map(|e| {
                (
                    e.outcome,
                    e.detail["scheduledTime"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                (Outcome::Ignored, "2026-01-01T11:30:00Z".to_string()),
                (Outcome::Ignored, "2026-01-01T11:40:00Z".to_string()),
                (Outcome::Ignored, "2026-01-01T11:50:00Z".to_string()),
                (Outcome::Triggered, "2026-01-01T12:00:00Z".to_string()),
            ]
        );
        assert_eq!(
            ev[0].reason,
            "missed: the server was down at 2026-01-01T11:30:00Z, beyond the grace window of 300 s"
        );
        assert!(
            ev[3].reason.contains("caught up 180 s late"),
            "{}",
            ev[3].reason
        );
        assert_eq!(f.timer_runs().await.len(), 1);
        // Beyond grace nothing fires; all are missed.
        let ev = f.tick("2026-01-01T12:36:00Z", 300).await;
        assert_eq!(ev.len(), 3);
        assert!(ev.iter().all(|e| e.outcome == Outcome::Ignored));
        assert_eq!(f.timer_runs().await.len(), 1);
    }

    #[tokio::test]
    async fn a_crash_before_last_fired_is_stored_fires_nothing_twice() {
        let f = Fixture::new("2026-01-01T12:00:00Z");
        let t = task("2026-01-01T11:00:00Z", &[("t1", "0 * * * *")]);
        f.store.create_task(&t).await.unwrap_or_default();
        f.store
            .set_timer_last_fired("app", "t1", at("2026-01-01T11:00:00Z"))
            .await
            .unwrap_or_default();
        assert_eq!(f.tick("2026-01-01T12:00:02Z", 300).await.len(), 1);
        // As if last_fired had not been stored: the event's key stops it.
        f.store
            .set_timer_last_fired("app", "t1", at("2026-01-01T11:00:00Z"))
            .await
            .unwrap_or_default();
        assert!(f.tick("2026-01-01T12:00:05Z", 300).await.is_empty());
        assert_eq!(f.timer_runs().await.len(), 1);
        assert_eq!(f.dispatched(), 1);
    }

    #[tokio::test]
    async fn disabled_and_re_enabled_timers() {
        let f = Fixture::new("2026-01-01T12:00:00Z");
        let mut t = task("2026-01-01T12:00:00Z", &[("t1", "* * * * *")]);
        f.store.create_task(&t).await.unwrap_or_default();
        let old = t.clone();
        t.timers[0].enabled = false;
        crtask_core::trigger::timer::handler::reset_timers(
            f.store.as_ref(),
            f.clock.as_ref(),
            Some(&old),
            &t,
        )
        .await
        .unwrap_or_default();
        f.store.update_task(&t).await.unwrap_or_default();
        assert!(f.tick("2026-01-01T12:05:01Z", 300).await.is_empty());
        // Re-enabled at 12:05:30: 12:01-12:05 are neither fired nor reported.
        let old = t.clone();
        t.timers[0].enabled = true;
        f.clock.set(at("2026-01-01T12:05:30Z"));
        let reset = crtask_core::trigger::timer::handler::reset_timers(
            f.store.as_ref(),
            f.clock.as_ref(),
            Some(&old),
            &t,
        )
        .await
        .unwrap_or_default();
        assert_eq!(reset, ["t1"]);
        f.store.update_task(&t).await.unwrap_or_default();
        assert!(f.tick("2026-01-01T12:05:40Z", 300).await.is_empty());
        let ev = f.tick("2026-01-01T12:06:01Z", 300).await;
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].detail["scheduledTime"], "2026-01-01T12:06:00Z");
    }

    #[test]
    fn wakes_just_after_the_boundary() {
        let d = until_next_minute(at("2026-01-01T12:00:59.900Z"));
        assert_eq!(d, std::time::Duration::from_millis(1600));
        let d = until_next_minute(at("2026-01-01T12:00:00Z"));
        assert_eq!(d, std::time::Duration::from_millis(61_500));
        assert_eq!(grace(None).num_seconds(), 300);
        assert_eq!(grace(Some(0)).num_seconds(), 60);
        assert_eq!(grace(Some(u64::MAX)).num_days(), 3650);
    }
}
