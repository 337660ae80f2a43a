//! Step 2 of a timer on a platform that keeps its own clock (the local
//! server): what the scheduler does with a timer when it wakes ([`plan`]).
//! Cron schedules themselves are domain types ([`crate::domain::cron`]);
//! on AWS, EventBridge Scheduler keeps the clock instead
//! ([`super::scheduler`]).
//!
//! A plan starts no runs. Exactly one run per (task, timer, scheduled time)
//! is the caller's job ([`super::handler::tick`]): it keys each run on that
//! triple (a unique key in the store), so a plan repeated after a crash
//! cannot start a second run.

use chrono::{DateTime, Duration, Utc};

use crate::domain::cron::Cron;

/// The most missed occurrences one [`plan`] lists; older ones are left out and
/// [`TimerPlan::missed_truncated`] says so.
pub const MISSED_CAP: usize = 100;

/// What to do with one timer when the scheduler wakes, from [`plan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimerPlan {
    /// Scheduled times to fire now, oldest first (at most one: the latest
    /// occurrence, when it is within the grace window).
    pub fire: Vec<DateTime<Utc>>,
    /// Scheduled times to record as missed and not fire, oldest first: every
    /// other occurrence since the timer was last handled, at most
    /// [`MISSED_CAP`] (the most recent ones).
    pub missed: Vec<DateTime<Utc>>,
    /// More occurrences were missed than `missed` lists (the oldest were left out).
    pub missed_truncated: bool,
    /// The next scheduled time after now (and after anything already
    /// handled): when to wake for this timer. `None` when the schedule has no
    /// further occurrence in range.
    pub next: Option<DateTime<Utc>>,
}

impl TimerPlan {
    /// The latest scheduled time this plan covers, fired or missed: store it
    /// as the timer's `last_fired` once the plan is carried out. `None` when
    /// the plan holds nothing.
    pub fn handled_up_to(&self) -> Option<DateTime<Utc>> {
        self.fire.last().copied().max(self.missed.last().copied())
    }
}

/// Plan one timer at `now`.
///
/// The occurrences considered are those in `(max(last_fired, created), now]`:
/// a timer never fires for a time at or before its creation, nor twice for a
/// time already handled. Of those, the most recent fires if it is at most
/// `grace` before `now`; all others are missed. So a scheduler that wakes on
/// time fires each occurrence once, and after downtime a timer gets at most
/// ONE catch-up run (the latest occurrence, when still within grace), never a
/// burst. A negative `grace` counts as zero. The plan is per timer: two
/// timers with the same cron are planned, and fire, independently.
pub fn plan(
    cron: &Cron,
    created: DateTime<Utc>,
    last_fired: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> TimerPlan {
    let start = last_fired.map_or(created, |l| l.max(created));
    let mut out = TimerPlan {
        next: cron.next_after(now.max(start)),
        ..TimerPlan::default()
    };
    if now <= start {
        return out;
    }
    let grace = grace.max(Duration::zero());
    let Some(latest) = cron.prev_at_or_before(now).filter(|t| *t > start) else {
        return out;
    };
    let mut missed = Vec::new();
    if now.signed_duration_since(latest) <= grace {
        out.fire.push(latest);
    } else {
        missed.push(latest);
    }
    let mut cursor = latest;
    while let Some(prev) = cursor
        .checked_sub_signed(Duration::minutes(1))
        .and_then(|t| cron.prev_at_or_before(t))
        .filter(|t| *t > start)
    {
        if missed.len() >= MISSED_CAP {
            out.missed_truncated = true;
            break;
        }
        missed.push(prev);
        cursor = prev;
    }
    missed.reverse();
    out.missed = missed;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cron, mins, t};

    fn times(list: &[&str]) -> Vec<DateTime<Utc>> {
        list.iter().map(|s| t(s)).collect()
    }

    #[test]
    fn no_downtime_fires_once_per_minute() {
        let c = cron("* * * * *");
        let created = t("2026-01-01T00:00:30Z");
        let mut last = None;
        let mut fired = Vec::new();
        // The scheduler wakes a few seconds after each minute for an hour.
        for i in 1..=60 {
            let now = t("2026-01-01T00:00:00Z") + mins(i) + Duration::seconds(2);
            let p = plan(&c, created, last, now, mins(5));
            assert!(p.missed.is_empty(), "minute {i}: {p:?}");
            assert_eq!(p.fire, vec![now - Duration::seconds(2)], "minute {i}");
            assert_eq!(p.next, Some(now - Duration::seconds(2) + mins(1)));
            last = p.handled_up_to();
            fired.extend(p.fire);
            // Waking again in the same minute fires nothing more.
            let again = plan(&c, created, last, now + Duration::seconds(20), mins(5));
            assert_eq!(
                again,
                TimerPlan {
                    next: p.next,
                    ..TimerPlan::default()
                }
            );
        }
        assert_eq!(fired.len(), 60);
    }

    #[test]
    fn plan_table() {
        struct Case {
            name: &'static str,
            cron: &'static str,
            created: &'static str,
            last: Option<&'static str>,
            now: &'static str,
            grace: i64,
            fire: &'static [&'static str],
            missed: &'static [&'static str],
            next: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "downtime of 10 minutes, grace 5: one catch-up, rest missed",
                cron: "* * * * *",
                created: "2026-01-01T00:00:00Z",
                last: Some("2026-01-01T12:00:00Z"),
                now: "2026-01-01T12:10:30Z",
                grace: 5,
                fire: &["2026-01-01T12:10:00Z"],
                missed: &[
                    "2026-01-01T12:01:00Z",
                    "2026-01-01T12:02:00Z",
                    "2026-01-01T12:03:00Z",
                    "2026-01-01T12:04:00Z",
                    "2026-01-01T12:05:00Z",
                    "2026-01-01T12:06:00Z",
                    "2026-01-01T12:07:00Z",
                    "2026-01-01T12:08:00Z",
                    "2026-01-01T12:09:00Z",
                ],
                next: Some("2026-01-01T12:11:00Z"),
            },
            Case {
                name: "restart within grace after a scheduled time: exactly one catch-up",
                cron: "*/15 * * * *",
                created: "2026-01-01T00:00:00Z",
                last: Some("2026-01-01T12:00:00Z"),
                now: "2026-01-01T12:18:00Z",
                grace: 5,
                fire: &["2026-01-01T12:15:00Z"],
                missed: &[],
                next: Some("2026-01-01T12:30:00Z"),
            },
            Case {
                name: "downtime longer than grace: nothing fires, all missed",
                cron: "*/15 * * * *",
                created: "2026-01-01T00:00:00Z",
                last: Some("2026-01-01T12:00:00Z"),
                now: "2026-01-01T12:59:00Z",
                grace: 5,
                fire: &[],
                missed: &[
                    "2026-01-01T12:15:00Z",
                    "2026-01-01T12:30:00Z",
                    "2026-01-01T12:45:00Z",
                ],
                next: Some("2026-01-01T13:00:00Z"),
            },
            Case {
                name: "exactly at the edge of grace still fires",
                cron: "0 * * * *",
                created: "2026-01-01T00:00:00Z",
                last: Some("2026-01-01T11:00:00Z"),
                now: "2026-01-01T12:05:00Z",
                grace: 5,
                fire: &["2026-01-01T12:00:00Z"],
                missed: &[],
                next: Some("2026-01-01T13:00:00Z"),
            },
            Case {
                name: "timer created after the occurrence: not fired",
                cron: "0 * * * *",
                created: "2026-01-01T12:00:30Z",
                last: None,
                now: "2026-01-01T12:01:00Z",
                grace: 5,
                fire: &[],
                missed: &[],
                next: Some("2026-01-01T13:00:00Z"),
            },
            Case {
                name: "timer created exactly at the occurrence: not fired",
                cron: "0 * * * *",
                created: "2026-01-01T12:00:00Z",
                last: None,
                now: "2026-01-01T12:00:10Z",
                grace: 5,
                fire: &[],
                missed: &[],
                next: Some("2026-01-01T13:00:00Z"),
            },
            Case {
                name: "never fired, first occurrence after creation fires",
                cron: "0 * * * *",
                created: "2026-01-01T11:30:00Z",
                last: None,
                now: "2026-01-01T12:00:01Z",
                grace: 5,
                fire: &["2026-01-01T12:00:00Z"],
                missed: &[],
                next: Some("2026-01-01T13:00:00Z"),
            },
            Case {
                name: "nothing due yet",
                cron: "0 3 * * *",
                created: "2026-01-01T00:00:00Z",
                last: Some("2026-01-01T03:00:00Z"),
                now: "2026-01-01T15:00:00Z",
                grace: 5,
                fire: &[],
                missed: &[],
                next: Some("2026-01-02T03:00:00Z"),
            },
            Case {
                name: "last fired in the future (clock went back): nothing, next after it",
                cron: "0 * * * *",
                created: "2026-01-01T00:00:00Z",
                last: Some("2026-01-01T14:00:00Z"),
                now: "2026-01-01T12:30:00Z",
                grace: 5,
                fire: &[],
                missed: &[],
                next: Some("2026-01-01T15:00:00Z"),
            },
            Case {
                name: "zero grace: only an on-the-minute wake fires",
                cron: "* * * * *",
                created: "2026-01-01T00:00:00Z",
                last: Some("2026-01-01T12:00:00Z"),
                now: "2026-01-01T12:01:01Z",
                grace: 0,
                fire: &[],
                missed: &["2026-01-01T12:01:00Z"],
                next: Some("2026-01-01T12:02:00Z"),
            },
            Case {
                name: "negative grace counts as zero",
                cron: "* * * * *",
                created: "2026-01-01T00:00:00Z",
                last: Some("2026-01-01T12:00:00Z"),
                now: "2026-01-01T12:01:00Z",
                grace: -5,
                fire: &["2026-01-01T12:01:00Z"],
                missed: &[],
                next: Some("2026-01-01T12:02:00Z"),
            },
        ];
        for c in cases {
            let p = plan(
                &cron(c.cron),
                t(c.created),
                c.last.map(t),
                t(c.now),
                mins(c.grace),
            );
            assert_eq!(p.fire, times(c.fire), "{}", c.name);
            assert_eq!(p.missed, times(c.missed), "{}", c.name);
            assert!(!p.missed_truncated, "{}", c.name);
            assert_eq!(p.next, c.next.map(t), "{}", c.name);
        }
    }

    #[test]
    fn long_downtime_caps_missed_and_keeps_the_latest() {
        let c = cron("* * * * *");
        let last = t("2026-01-01T00:00:00Z");
        let now = t("2026-03-01T00:00:30Z"); // two months of minutes
        let p = plan(&c, last, Some(last), now, mins(5));
        assert_eq!(p.fire, times(&["2026-03-01T00:00:00Z"]));
        assert_eq!(p.missed.len(), MISSED_CAP);
        assert!(p.missed_truncated);
        assert_eq!(p.missed.first().copied(), Some(t("2026-02-28T22:20:00Z")));
        assert_eq!(p.missed.last().copied(), Some(t("2026-02-28T23:59:00Z")));
        assert!(p.missed.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(p.handled_up_to(), Some(t("2026-03-01T00:00:00Z")));
        // One more than MISSED_CAP missed is truncated; exactly MISSED_CAP is not.
        let cap = i64::try_from(MISSED_CAP).unwrap_or(i64::MAX);
        let late = Duration::seconds(1);
        let p = plan(&c, last, Some(last), last + mins(cap + 1) + late, mins(0));
        assert_eq!(
            (p.fire.len(), p.missed.len(), p.missed_truncated),
            (0, MISSED_CAP, true)
        );
        assert_eq!(p.missed.first().copied(), Some(last + mins(2)));
        let p = plan(&c, last, Some(last), last + mins(cap) + late, mins(0));
        assert_eq!(
            (p.fire.len(), p.missed.len(), p.missed_truncated),
            (0, MISSED_CAP, false)
        );
        assert_eq!(p.missed.first().copied(), Some(last + mins(1)));
    }

    #[test]
    fn two_timers_with_the_same_cron_plan_independently() {
        let c = cron("0 * * * *");
        let now = t("2026-01-01T12:00:20Z");
        let a = plan(
            &c,
            t("2026-01-01T00:00:00Z"),
            Some(t("2026-01-01T11:00:00Z")),
            now,
            mins(5),
        );
        let b = plan(
            &c,
            t("2026-01-01T00:00:00Z"),
            Some(t("2026-01-01T11:00:00Z")),
            now,
            mins(5),
        );
        assert_eq!(a.fire, times(&["2026-01-01T12:00:00Z"]));
        assert_eq!(a, b);
        // One timer already handled this minute; the other still fires.
        let a2 = plan(
            &c,
            t("2026-01-01T00:00:00Z"),
            a.handled_up_to(),
            now,
            mins(5),
        );
        let b2 = plan(
            &c,
            t("2026-01-01T00:00:00Z"),
            Some(t("2026-01-01T11:00:00Z")),
            now,
            mins(5),
        );
        assert!(a2.fire.is_empty());
        assert_eq!(b2.fire, times(&["2026-01-01T12:00:00Z"]));
    }
}
