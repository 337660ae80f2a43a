//! Pure decisions for timer triggers: what the local scheduler does with a
//! timer when it wakes ([`plan`]), and the signed payloads EventBridge
//! Scheduler delivers to the schedule function ([`schedule_input`],
//! [`verify_schedule`]).
//!
//! Neither half starts runs. Exactly one run per (task, timer, scheduled time)
//! is the caller's job: it keys each run on that triple (a unique key in the
//! store), so a plan repeated after a crash, or a payload delivered twice,
//! cannot start a second run.
//!
//! # Schedule payloads
//!
//! EventBridge Scheduler delivers a schedule's `Input` as is, after filling in
//! `<aws.scheduler.scheduled-time>`. Anyone allowed to invoke the schedule
//! function could send any payload, so the input carries an HMAC-SHA256 over
//! the task, the timer and the schedule identity (its name or ARN, whichever
//! the caller chooses, used the same way when signing and verifying):
//!
//! ```json
//! {
//!   "task": "nightly-app",
//!   "timer": "t1",
//!   "schedule": "crtask-nightly-app-t1",
//!   "scheduledTime": "<aws.scheduler.scheduled-time>",
//!   "signature": "<64 hex digits>"
//! }
//! ```
//!
//! The scheduled time cannot be signed (AWS fills it in at delivery), so a
//! captured payload could be replayed with another time. Two checks defeat
//! that: [`verify_schedule`] rejects a scheduled time outside a window around
//! now ([`Skew`], default 5 minutes ahead and 15 behind), and the
//! (task, timer, scheduled time) key admits one run per time. The schedule's
//! retry policy should give up within the past window (e.g.
//! `MaximumEventAgeInSeconds` 900), since later deliveries are rejected.
//! Unknown fields are ignored, so the input may carry more (such as
//! `<aws.scheduler.execution-id>`) without breaking verification.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::cron::Cron;
use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

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

/// The placeholder EventBridge Scheduler replaces with the scheduled time.
pub const SCHEDULED_TIME_PLACEHOLDER: &str = "<aws.scheduler.scheduled-time>";

/// The largest schedule payload [`verify_schedule`] reads.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// A verified schedule payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulePayload {
    /// Task name, as signed.
    pub task: String,
    /// Timer name, as signed.
    pub timer: String,
    /// Schedule identity (name or ARN), as signed.
    pub schedule: String,
    /// The time the schedule was due, as filled in by EventBridge Scheduler.
    pub scheduled_time: DateTime<Utc>,
}

/// How far a payload's scheduled time may lie from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skew {
    /// How far ahead of now a scheduled time may be (clock differences).
    pub future: Duration,
    /// How far behind now a scheduled time may be (delivery delay, retries).
    pub past: Duration,
}

impl Default for Skew {
    /// 5 minutes ahead, 15 minutes behind.
    fn default() -> Self {
        Skew {
            future: Duration::minutes(5),
            past: Duration::minutes(15),
        }
    }
}

/// The bytes the signature covers: a version tag, then each of task, timer
/// and schedule as `<byte length>:<bytes>\n`, so no two triples share an input.
fn signing_input(task: &str, timer: &str, schedule: &str) -> Vec<u8> {
    let mut out = b"crtask-schedule-v1\n".to_vec();
    for field in [task, timer, schedule] {
        out.extend_from_slice(field.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
    }
    out
}

fn mac_for(secret: &[u8], task: &str, timer: &str, schedule: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(&signing_input(task, timer, schedule));
    Some(mac)
}

/// Hex HMAC-SHA256 over task, timer and schedule identity with `secret`.
///
/// An empty secret is refused by [`verify_schedule`]; configure a real one.
pub fn sign_schedule(secret: &[u8], task: &str, timer: &str, schedule: &str) -> String {
    // HMAC accepts keys of any length, so this never takes the empty branch.
    mac_for(secret, task, timer, schedule)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// The `Input` JSON for an EventBridge Scheduler schedule, with the
/// scheduled-time placeholder and the signature (see the [module docs](self)).
pub fn schedule_input(secret: &[u8], task: &str, timer: &str, schedule: &str) -> Value {
    json!({
        "task": task,
        "timer": timer,
        "schedule": schedule,
        "scheduledTime": SCHEDULED_TIME_PLACEHOLDER,
        "signature": sign_schedule(secret, task, timer, schedule),
    })
}

fn string_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(Error::invalid(format!(
            "schedule payload is missing field '{name}'"
        ))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Error::invalid(format!(
            "schedule payload field '{name}' must be a string"
        ))),
    }
}

/// "15 min", "20 min 20 s" or "45 s".
fn human(d: Duration) -> String {
    let s = d.num_seconds();
    match (s / 60, s % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

/// Check a delivered schedule payload: genuine under one of `secrets` (several
/// during rotation; empty ones are ignored) and due within `skew` of `now`.
///
/// Checks in order, each failure with its own message: size
/// ([`Error::TooLarge`] over [`MAX_PAYLOAD_BYTES`]), a secret is configured,
/// JSON object, fields present and strings, signature is 64 hex digits,
/// signature matches (constant-time), scheduled time is RFC 3339 and within
/// the window. The caller must still dedupe on (task, timer, scheduled time).
pub fn verify_schedule(
    secrets: &[&[u8]],
    body: &[u8],
    now: DateTime<Utc>,
    skew: Skew,
) -> Result<SchedulePayload> {
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::TooLarge(format!(
            "schedule payload is {} bytes, more than the {MAX_PAYLOAD_BYTES} allowed",
            body.len()
        )));
    }
    let secrets: Vec<&[u8]> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return Err(Error::invalid(
            "no schedule secret is configured: schedule payloads cannot be verified",
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("schedule payload is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(Error::invalid("schedule payload must be a JSON object"));
    };
    let task = string_field(&obj, "task")?;
    let timer = string_field(&obj, "timer")?;
    let schedule = string_field(&obj, "schedule")?;
    let scheduled_raw = string_field(&obj, "scheduledTime")?;
    let signature = string_field(&obj, "signature")?;

    let sig = match hex::decode(signature) {
        Ok(sig) if sig.len() == 32 => sig,
        _ => {
            return Err(Error::invalid(
                "schedule payload signature is not 64 hex digits (an hmac-sha256)",
            ))
        }
    };
    let genuine = secrets.iter().any(|secret| {
        mac_for(secret, task, timer, schedule).is_some_and(|mac| mac.verify_slice(&sig).is_ok())
    });
    if !genuine {
        return Err(Error::invalid(format!(
            "schedule payload signature does not match for task '{task}' timer '{timer}': \
             forged, altered, or signed with a secret no longer configured"
        )));
    }

    if scheduled_raw == SCHEDULED_TIME_PLACEHOLDER {
        return Err(Error::invalid(format!(
            "schedule payload scheduledTime is still the placeholder '{SCHEDULED_TIME_PLACEHOLDER}': \
             it did not come from EventBridge Scheduler"
        )));
    }
    let scheduled_time = DateTime::parse_from_rfc3339(scheduled_raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Error::invalid(format!(
                "schedule payload scheduledTime '{scheduled_raw}' is not an RFC 3339 time: {e}"
            ))
        })?;
    let ahead = scheduled_time.signed_duration_since(now);
    if ahead > skew.future {
        return Err(Error::invalid(format!(
            "schedule payload scheduledTime '{scheduled_raw}' is {} in the future, more than the {} allowed: rejected",
            human(ahead),
            human(skew.future)
        )));
    }
    let behind = now.signed_duration_since(scheduled_time);
    if behind > skew.past {
        return Err(Error::invalid(format!(
            "schedule payload scheduledTime '{scheduled_raw}' is {} in the past, more than the {} allowed: rejected as stale or replayed",
            human(behind),
            human(skew.past)
        )));
    }
    Ok(SchedulePayload {
        task: task.to_string(),
        timer: timer.to_string(),
        schedule: schedule.to_string(),
        scheduled_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
    }

    fn cron(s: &str) -> Cron {
        Cron::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn mins(n: i64) -> Duration {
        Duration::minutes(n)
    }

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

    const SECRET: &[u8] = b"s3cret-one";
    const OLD: &[u8] = b"s3cret-old";
    const EMPTY: &[u8] = b"";

    fn delivered(input: &Value, scheduled: &str) -> Vec<u8> {
        let mut v = input.clone();
        v["scheduledTime"] = Value::String(scheduled.to_string());
        serde_json::to_vec(&v).unwrap_or_default()
    }

    fn verify_err(secrets: &[&[u8]], body: &[u8], now: DateTime<Utc>) -> String {
        match verify_schedule(secrets, body, now, Skew::default()) {
            Ok(p) => panic!("accepted {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn input_shape_and_signature() {
        let input = schedule_input(SECRET, "app", "t1", "crtask-app-t1");
        assert_eq!(input["task"], "app");
        assert_eq!(input["timer"], "t1");
        assert_eq!(input["schedule"], "crtask-app-t1");
        assert_eq!(input["scheduledTime"], "<aws.scheduler.scheduled-time>");
        let sig = sign_schedule(SECRET, "app", "t1", "crtask-app-t1");
        assert_eq!(input["signature"], sig.as_str());
        assert_eq!(sig.len(), 64);
        assert!(sig
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // Each part matters, and the encoding keeps field boundaries.
        for (task, timer, schedule) in [
            ("app", "t2", "crtask-app-t1"),
            ("ap", "t1", "crtask-app-t1"),
            ("app", "t1", "crtask-app-t2"),
            ("appt", "1", "crtask-app-t1"),
        ] {
            assert_ne!(sign_schedule(SECRET, task, timer, schedule), sig);
        }
        assert_ne!(sign_schedule(OLD, "app", "t1", "crtask-app-t1"), sig);
    }

    #[test]
    fn genuine_payload_passes_with_any_configured_secret() {
        let now = t("2026-01-01T12:00:20Z");
        let want = SchedulePayload {
            task: "app".into(),
            timer: "t1".into(),
            schedule: "crtask-app-t1".into(),
            scheduled_time: t("2026-01-01T12:00:00Z"),
        };
        for (signed_with, secrets) in [
            (SECRET, vec![SECRET]),
            (SECRET, vec![OLD, SECRET]),
            (OLD, vec![SECRET, OLD]),
            (SECRET, vec![EMPTY, SECRET]),
        ] {
            let body = delivered(
                &schedule_input(signed_with, "app", "t1", "crtask-app-t1"),
                "2026-01-01T12:00:00Z",
            );
            let got = verify_schedule(&secrets, &body, now, Skew::default());
            assert_eq!(got.ok(), Some(want.clone()));
        }
        // Extra fields (e.g. the execution id) are ignored.
        let mut input = schedule_input(SECRET, "app", "t1", "crtask-app-t1");
        input["executionId"] = Value::String("<aws.scheduler.execution-id>".into());
        let body = delivered(&input, "2026-01-01T12:00:00.000Z");
        assert_eq!(
            verify_schedule(&[SECRET], &body, now, Skew::default()).ok(),
            Some(want)
        );
    }

    #[test]
    fn rejections_have_distinct_messages() {
        let now = t("2026-01-01T12:00:20Z");
        let input = schedule_input(SECRET, "app", "t1", "crtask-app-t1");
        let good = delivered(&input, "2026-01-01T12:00:00Z");
        let with = |field: &str, value: Value| {
            let mut v: Value = serde_json::from_slice(&good).unwrap_or_default();
            v[field] = value;
            serde_json::to_vec(&v).unwrap_or_default()
        };
        let without = |field: &str| {
            let mut v: Value = serde_json::from_slice(&good).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.remove(field);
            }
            serde_json::to_vec(&v).unwrap_or_default()
        };
        let forged = "schedule payload signature does not match for task 'evil' timer 't1': forged, altered, or signed with a secret no longer configured";
        type Case<'a> = (&'a str, &'a [&'a [u8]], Vec<u8>, String);
        let cases: Vec<Case> = vec![
            ("changed task", &[SECRET], with("task", "evil".into()), forged.into()),
            (
                "changed timer",
                &[SECRET],
                with("timer", "t2".into()),
                "schedule payload signature does not match for task 'app' timer 't2': forged, altered, or signed with a secret no longer configured".into(),
            ),
            (
                "changed schedule",
                &[SECRET],
                with("schedule", "other".into()),
                "schedule payload signature does not match for task 'app' timer 't1': forged, altered, or signed with a secret no longer configured".into(),
            ),
            (
                "retired secret",
                &[OLD],
                good.clone(),
                "schedule payload signature does not match for task 'app' timer 't1': forged, altered, or signed with a secret no longer configured".into(),
            ),
            (
                "no secret",
                &[],
                good.clone(),
                "no schedule secret is configured: schedule payloads cannot be verified".into(),
            ),
            (
                "only empty secrets",
                &[EMPTY],
                good.clone(),
                "no schedule secret is configured: schedule payloads cannot be verified".into(),
            ),
            (
                "signature not hex",
                &[SECRET],
                with("signature", "zz".into()),
                "schedule payload signature is not 64 hex digits (an hmac-sha256)".into(),
            ),
            (
                "signature too short",
                &[SECRET],
                with("signature", "abcd".into()),
                "schedule payload signature is not 64 hex digits (an hmac-sha256)".into(),
            ),
            (
                "missing task",
                &[SECRET],
                without("task"),
                "schedule payload is missing field 'task'".into(),
            ),
            (
                "null signature",
                &[SECRET],
                with("signature", Value::Null),
                "schedule payload is missing field 'signature'".into(),
            ),
            (
                "missing scheduledTime",
                &[SECRET],
                without("scheduledTime"),
                "schedule payload is missing field 'scheduledTime'".into(),
            ),
            (
                "timer not a string",
                &[SECRET],
                with("timer", json!(1)),
                "schedule payload field 'timer' must be a string".into(),
            ),
            (
                "not an object",
                &[SECRET],
                b"[1,2]".to_vec(),
                "schedule payload must be a JSON object".into(),
            ),
            (
                "placeholder not filled",
                &[SECRET],
                serde_json::to_vec(&input).unwrap_or_default(),
                "schedule payload scheduledTime is still the placeholder '<aws.scheduler.scheduled-time>': it did not come from EventBridge Scheduler".into(),
            ),
            (
                "stale",
                &[SECRET],
                delivered(&input, "2026-01-01T11:40:00Z"),
                "schedule payload scheduledTime '2026-01-01T11:40:00Z' is 20 min 20 s in the past, more than the 15 min allowed: rejected as stale or replayed".into(),
            ),
            (
                "stale by whole minutes",
                &[SECRET],
                delivered(&input, "2026-01-01T11:40:20Z"),
                "schedule payload scheduledTime '2026-01-01T11:40:20Z' is 20 min in the past, more than the 15 min allowed: rejected as stale or replayed".into(),
            ),
            (
                "future",
                &[SECRET],
                delivered(&input, "2026-01-01T12:10:20Z"),
                "schedule payload scheduledTime '2026-01-01T12:10:20Z' is 10 min in the future, more than the 5 min allowed: rejected".into(),
            ),
        ];
        for (name, secrets, body, want) in cases {
            assert_eq!(verify_err(secrets, &body, now), want, "{name}");
        }
        let e = verify_err(&[SECRET], b"{not json", now);
        assert!(e.starts_with("schedule payload is not valid JSON: "), "{e}");
        let e = verify_err(&[SECRET], &delivered(&input, "yesterday"), now);
        assert!(
            e.starts_with("schedule payload scheduledTime 'yesterday' is not an RFC 3339 time"),
            "{e}"
        );
        let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(
            verify_schedule(&[SECRET], &big, now, Skew::default()),
            Err(Error::TooLarge(_))
        ));
    }

    #[test]
    fn window_edges_are_inclusive_and_configurable() {
        let input = schedule_input(SECRET, "app", "t1", "s");
        let at = t("2026-01-01T12:00:00Z");
        let body = delivered(&input, "2026-01-01T12:00:00Z");
        let skew = Skew::default();
        for (now, ok) in [
            (at + mins(15), true),
            (at + mins(15) + Duration::milliseconds(1), false),
            (at - mins(5), true),
            (at - mins(5) - Duration::milliseconds(1), false),
        ] {
            assert_eq!(
                verify_schedule(&[SECRET], &body, now, skew).is_ok(),
                ok,
                "{now}"
            );
        }
        let tight = Skew {
            future: mins(0),
            past: mins(1),
        };
        assert!(verify_schedule(&[SECRET], &body, at + mins(1), tight).is_ok());
        assert!(verify_schedule(&[SECRET], &body, at + mins(2), tight).is_err());
        assert!(verify_schedule(&[SECRET], &body, at - Duration::seconds(1), tight).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let now = t("2026-01-01T12:00:20Z");
        let good = delivered(
            &schedule_input(SECRET, "app", "t1", "s"),
            "2026-01-01T12:00:00Z",
        );
        let mut fixed: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"null".to_vec(),
            b"\"str\"".to_vec(),
            b"1e999".to_vec(),
            b"{}".to_vec(),
            vec![0xff, 0xfe, 0x00],
            "[".repeat(10_000).into_bytes(),
            br#"{"task":"a","timer":"b","schedule":"c","scheduledTime":"+262144-01-01T00:00:00Z","signature":"00"}"#.to_vec(),
        ];
        // Mutate one byte of a genuine payload at every position, plus random bytes.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x21;
            fixed.push(b);
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..500 {
            let len = (x % 200) as usize;
            let mut b = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push((x & 0xff) as u8);
            }
            fixed.push(b);
        }
        for body in &fixed {
            if let Ok(p) = verify_schedule(&[SECRET], body, now, Skew::default()) {
                // A flipped byte can only survive in the unsigned time or an ignored spot.
                assert_eq!(
                    (p.task.as_str(), p.timer.as_str(), p.schedule.as_str()),
                    ("app", "t1", "s")
                );
            }
        }
    }
}
