//! EventBridge Scheduler, which keeps the clock of timers on AWS: the
//! schedule of a timer ([`schedule_name`], [`scheduler_expression`] of its
//! cron) and the signed payload it delivers to the schedule function
//! ([`schedule_input`], checked by [`verify_schedule`], step 1 of a
//! delivery; [`super::handler::fire_scheduled`] acts on it).
//!
//! Verifying a payload starts no run. Exactly one run per (task, timer,
//! scheduled time) is the caller's job: it keys each run on that triple (a
//! unique key in the store), so a payload delivered twice cannot start a
//! second run.
//!
//! # Signed payloads
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
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::domain::cron::Cron;
use crate::signing::{self, Secret};
use crate::{Error, Result};

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

/// Hex HMAC-SHA256 over task, timer and schedule identity with `secret`
/// ([`signing::sign_hex`] of the signing input).
///
/// An empty secret is refused by [`verify_schedule`]; configure a real one.
pub fn sign_schedule(secret: &Secret, task: &str, timer: &str, schedule: &str) -> String {
    signing::sign_hex(secret, &signing_input(task, timer, schedule))
}

/// The `Input` JSON for an EventBridge Scheduler schedule, with the
/// scheduled-time placeholder and the signature (see the [module docs](self)).
pub fn schedule_input(secret: &Secret, task: &str, timer: &str, schedule: &str) -> Value {
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
    secrets: &[Secret],
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
    let secrets = signing::usable(secrets);
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

    let Ok(sig) = signing::parse_signature(signature, None) else {
        return Err(Error::invalid(
            "schedule payload signature is not 64 hex digits (an hmac-sha256)",
        ));
    };
    let genuine = signing::verify_digest(&sig, &signing_input(task, timer, schedule), &secrets);
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

/// The longest schedule name EventBridge Scheduler accepts.
pub const SCHEDULE_NAME_MAX: usize = 64;

/// The longest schedule expression EventBridge Scheduler accepts.
pub const SCHEDULE_EXPRESSION_MAX: usize = 256;

/// Characters EventBridge Scheduler allows in a schedule name.
fn schedule_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The name of the EventBridge Scheduler schedule of (`task`, `timer`):
/// deterministic, at most [`SCHEDULE_NAME_MAX`] characters of
/// `[0-9a-zA-Z-_.]`, and different for every pair.
///
/// Usually `TASK.TIMER` (task and timer names cannot contain `.`, so the
/// pair is unambiguous). When that is too long or holds other characters,
/// `TASK-PREFIX.TIMER-PREFIX.HASH`: up to 24 and 12 characters of the names
/// (other characters replaced by `_`) and 24 hex digits of a SHA-256 over
/// both names. Plain names hold one `.` and hashed names two, so the two
/// forms never collide.
pub fn schedule_name(task: &str, timer: &str) -> String {
    let plain = format!("{task}.{timer}");
    let clean = |s: &str| !s.is_empty() && s.chars().all(|c| schedule_name_char(c) && c != '.');
    if plain.len() <= SCHEDULE_NAME_MAX && clean(task) && clean(timer) {
        return plain;
    }
    let prefix = |s: &str, n: usize| -> String {
        s.chars()
            .take(n)
            .map(|c| {
                if schedule_name_char(c) && c != '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let digest = hex::encode(<Sha256 as sha2::Digest>::digest(signing_input(
        task, timer, "",
    )));
    format!(
        "{}.{}.{}",
        prefix(task, 24),
        prefix(timer, 12),
        &digest[..24]
    )
}

/// One field's matching values as a Scheduler cron field: `*` when all
/// match, `START/STEP` for a progression that runs to the end of the field
/// (when `step` is allowed), else a list of values and ranges.
fn scheduler_field(mask: u64, lo: u32, hi: u32, step: bool, names: Option<&[&str]>) -> String {
    let values: Vec<u32> = (lo..=hi).filter(|v| mask & (1u64 << v) != 0).collect();
    if values.len() == (hi - lo + 1) as usize {
        return "*".into();
    }
    let name = |v: u32| -> String {
        names
            .and_then(|n| n.get((v - lo) as usize))
            .map_or_else(|| v.to_string(), |n| (*n).to_string())
    };
    if step && values.len() >= 3 {
        let k = values[1] - values[0];
        let last = values[values.len() - 1];
        if k > 1 && values.windows(2).all(|w| w[1] - w[0] == k) && last + k > hi {
            return format!("{}/{k}", values[0]);
        }
    }
    let mut items = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            items.push(format!("{}-{}", name(values[i]), name(values[j])));
        } else {
            items.extend((i..=j).map(|x| name(values[x])));
        }
        i = j + 1;
    }
    items.join(",")
}

/// The EventBridge Scheduler expression for a five-field UTC cron:
/// `cron(MIN HOUR DOM MONTH DOW *)`, to be used with
/// `ScheduleExpressionTimezone` `UTC`.
///
/// Scheduler's cron (Quartz-like) has a year field, counts weekdays 1-7
/// from Sunday (written here as `SUN`-`SAT`), has no steps in day-of-week,
/// and needs `?` in day-of-month or day-of-week: only one of them may
/// restrict the days. Fields are rewritten from the values they match, so
/// the schedule fires at exactly the same minutes. Errors name the cron:
/// a schedule that restricts both day fields (`0 0 1 * MON`, which fires
/// on the 1st OR on Mondays, or `0 0 */2 * MON`, odd days that are
/// Mondays) cannot be expressed, nor one longer than
/// [`SCHEDULE_EXPRESSION_MAX`].
pub fn scheduler_expression(cron: &str) -> Result<String> {
    let parsed = Cron::parse(cron)?;
    let f = parsed.fields();
    let text = parsed.as_str();
    const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let all_dom = (1..=31).all(|d| f.days & (1u64 << d) != 0);
    let all_dow = (0..=6).all(|d| f.weekdays & (1u64 << d) != 0);
    let dom = scheduler_field(f.days, 1, 31, true, None);
    let dow = scheduler_field(f.weekdays, 0, 6, false, Some(&WEEKDAYS));
    let (dom, dow) = if f.dom_star || f.dow_star {
        // Vixie: a day must match both fields.
        if all_dow {
            (dom, "?".to_string())
        } else if all_dom {
            ("?".to_string(), dow)
        } else {
            return Err(Error::invalid(format!(
                "cron '{text}' restricts both day-of-month and day-of-week (days matching both), \
                 which EventBridge Scheduler cannot express: it allows only one of them"
            )));
        }
    } else if all_dom || all_dow {
        // Vixie: a day matching either field; one matches every day.
        ("*".to_string(), "?".to_string())
    } else {
        return Err(Error::invalid(format!(
            "cron '{text}' fires on its day-of-month OR its day-of-week, which EventBridge \
             Scheduler cannot express in one schedule: use two timers, one per day field"
        )));
    };
    let expr = format!(
        "cron({} {} {dom} {} {dow} *)",
        scheduler_field(f.minutes, 0, 59, true, None),
        scheduler_field(f.hours, 0, 23, true, None),
        scheduler_field(f.months, 1, 12, true, None),
    );
    if expr.len() > SCHEDULE_EXPRESSION_MAX {
        return Err(Error::invalid(format!(
            "cron '{text}' becomes an EventBridge Scheduler expression of {} characters, more \
             than the {SCHEDULE_EXPRESSION_MAX} allowed: simplify its minute or hour lists",
            expr.len()
        )));
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cron, mins, t};

    const SECRET: &str = "s3cret-one";
    const OLD: &str = "s3cret-old";
    const EMPTY: &str = "";

    fn key(k: &str) -> Secret {
        Secret::new(k)
    }

    fn keys(ks: &[&str]) -> Vec<Secret> {
        ks.iter().map(|k| key(k)).collect()
    }

    fn delivered(input: &Value, scheduled: &str) -> Vec<u8> {
        let mut v = input.clone();
        v["scheduledTime"] = Value::String(scheduled.to_string());
        serde_json::to_vec(&v).unwrap_or_default()
    }

    fn verify_err(secrets: &[&str], body: &[u8], now: DateTime<Utc>) -> String {
        match verify_schedule(&keys(secrets), body, now, Skew::default()) {
            Ok(p) => panic!("accepted {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn input_shape_and_signature() {
        let input = schedule_input(&key(SECRET), "app", "t1", "crtask-app-t1");
        assert_eq!(input["task"], "app");
        assert_eq!(input["timer"], "t1");
        assert_eq!(input["schedule"], "crtask-app-t1");
        assert_eq!(input["scheduledTime"], "<aws.scheduler.scheduled-time>");
        let sig = sign_schedule(&key(SECRET), "app", "t1", "crtask-app-t1");
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
            assert_ne!(sign_schedule(&key(SECRET), task, timer, schedule), sig);
        }
        assert_ne!(sign_schedule(&key(OLD), "app", "t1", "crtask-app-t1"), sig);
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
                &schedule_input(&key(signed_with), "app", "t1", "crtask-app-t1"),
                "2026-01-01T12:00:00Z",
            );
            let got = verify_schedule(&keys(&secrets), &body, now, Skew::default());
            assert_eq!(got.ok(), Some(want.clone()));
        }
        // Extra fields (e.g. the execution id) are ignored.
        let mut input = schedule_input(&key(SECRET), "app", "t1", "crtask-app-t1");
        input["executionId"] = Value::String("<aws.scheduler.execution-id>".into());
        let body = delivered(&input, "2026-01-01T12:00:00.000Z");
        assert_eq!(
            verify_schedule(&keys(&[SECRET]), &body, now, Skew::default()).ok(),
            Some(want)
        );
    }

    #[test]
    fn rejections_have_distinct_messages() {
        let now = t("2026-01-01T12:00:20Z");
        let input = schedule_input(&key(SECRET), "app", "t1", "crtask-app-t1");
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
        type Case<'a> = (&'a str, &'a [&'a str], Vec<u8>, String);
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
            verify_schedule(&keys(&[SECRET]), &big, now, Skew::default()),
            Err(Error::TooLarge(_))
        ));
    }

    #[test]
    fn window_edges_are_inclusive_and_configurable() {
        let input = schedule_input(&key(SECRET), "app", "t1", "s");
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
                verify_schedule(&keys(&[SECRET]), &body, now, skew).is_ok(),
                ok,
                "{now}"
            );
        }
        let tight = Skew {
            future: mins(0),
            past: mins(1),
        };
        assert!(verify_schedule(&keys(&[SECRET]), &body, at + mins(1), tight).is_ok());
        assert!(verify_schedule(&keys(&[SECRET]), &body, at + mins(2), tight).is_err());
        assert!(
            verify_schedule(&keys(&[SECRET]), &body, at - Duration::seconds(1), tight).is_err()
        );
    }

    #[test]
    fn garbage_never_panics() {
        let now = t("2026-01-01T12:00:20Z");
        let good = delivered(
            &schedule_input(&key(SECRET), "app", "t1", "s"),
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
            if let Ok(p) = verify_schedule(&keys(&[SECRET]), body, now, Skew::default()) {
                // A flipped byte can only survive in the unsigned time or an ignored spot.
                assert_eq!(
                    (p.task.as_str(), p.timer.as_str(), p.schedule.as_str()),
                    ("app", "t1", "s")
                );
            }
        }
    }

    #[test]
    fn scheduler_expression_table() {
        let ok = [
            ("* * * * *", "cron(* * * * ? *)"),
            ("0 2 * * *", "cron(0 2 * * ? *)"),
            ("*/15 * * * *", "cron(0/15 * * * ? *)"),
            ("5/15 * * * *", "cron(5/15 * * * ? *)"),
            ("10-50/10 * * * *", "cron(10/10 * * * ? *)"),
            ("10-40/10 * * * *", "cron(10,20,30,40 * * * ? *)"),
            ("0,30 9-17 * * *", "cron(0,30 9-17 * * ? *)"),
            ("0 8,9,12 * * *", "cron(0 8,9,12 * * ? *)"),
            ("0 8,9,10,12 * * *", "cron(0 8-10,12 * * ? *)"),
            ("*/30 * * * MON-FRI", "cron(0,30 * ? * MON-FRI *)"),
            ("0 4 * * SUN", "cron(0 4 ? * SUN *)"),
            ("0 4 * * 7", "cron(0 4 ? * SUN *)"),
            ("0 4 * * FRI-SUN", "cron(0 4 ? * SUN,FRI,SAT *)"),
            ("0 4 * * 1,3,5", "cron(0 4 ? * MON,WED,FRI *)"),
            ("0 0 1 * *", "cron(0 0 1 * ? *)"),
            ("0 0 */2 * *", "cron(0 0 1/2 * ? *)"),
            ("0 0 1,15 */3 *", "cron(0 0 1,15 1/3 ? *)"),
            ("0 0 29 2 *", "cron(0 0 29 2 ? *)"),
            ("0 12 * jan-mar *", "cron(0 12 * 1-3 ? *)"),
            // Both literal, one covering every day: every day (Vixie OR).
            ("0 0 1-31 * MON", "cron(0 0 * * ? *)"),
            ("0 0 1 * 0-6", "cron(0 0 * * ? *)"),
            ("@hourly", "cron(0 * * * ? *)"),
            ("@daily", "cron(0 0 * * ? *)"),
            ("@weekly", "cron(0 0 ? * SUN *)"),
            ("@monthly", "cron(0 0 1 * ? *)"),
            ("@yearly", "cron(0 0 1 1 ? *)"),
        ];
        for (cron, want) in ok {
            assert_eq!(
                scheduler_expression(cron).unwrap_or_else(|e| panic!("{cron}: {e}")),
                want,
                "{cron}"
            );
        }
        let bad = [
            ("0 0 1 * MON", "day-of-month OR its day-of-week"),
            (
                "0 0 */2 * MON",
                "restricts both day-of-month and day-of-week",
            ),
            ("0 0 * * * *", "expected 5 fields"),
            ("61 * * * *", "minute field '61'"),
        ];
        for (cron, want) in bad {
            let e = scheduler_expression(cron).expect_err(cron).to_string();
            assert!(e.contains(want), "{cron}: {e}");
        }
        // The longest lists a five-field cron can produce (pairs of values
        // with gaps: no ranges, no progressions) still fit Scheduler's limit.
        let list = |lo: u32, hi: u32, keep: fn(u32) -> bool| {
            (lo..=hi)
                .filter(|v| keep(*v))
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let worst = format!(
            "{} {} {} {} *",
            list(0, 59, |v| v % 3 != 2),
            list(0, 23, |v| v % 3 != 2),
            list(1, 31, |v| v % 3 != 0),
            list(1, 12, |v| v % 3 != 0)
        );
        let expr = scheduler_expression(&worst).unwrap_or_else(|e| panic!("{worst}: {e}"));
        assert!(
            expr.len() > 200 && expr.len() <= SCHEDULE_EXPRESSION_MAX,
            "{expr}"
        );
    }

    /// Every expression fires at the same minutes as its cron: checked by
    /// evaluating the Scheduler fields independently over two years.
    #[test]
    fn scheduler_expression_fires_alike() {
        fn field_matches(field: &str, v: u32, lo: u32, names: &[&str]) -> bool {
            let num = |s: &str| -> u32 {
                names
                    .iter()
                    .position(|n| *n == s)
                    .map_or_else(|| s.parse().unwrap(), |i| lo + i as u32)
            };
            field == "*"
                || field.split(',').any(|item| {
                    if let Some((start, step)) = item.split_once('/') {
                        let (s, k) = (num(start), num(step));
                        v >= s && (v - s).is_multiple_of(k)
                    } else if let Some((a, b)) = item.split_once('-') {
                        (num(a)..=num(b)).contains(&v)
                    } else {
                        num(item) == v
                    }
                })
        }
        use chrono::{Datelike, Timelike};
        const WD: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        for cron_text in [
            "*/7 */5 * * *",
            "0 0 */3 * *",
            "30 6 * 2-4 FRI-SUN",
            "0 0 31 * *",
            "15 1 * * 1-5",
            "0 0 1-31 * MON",
        ] {
            let c = cron(cron_text);
            let expr = scheduler_expression(cron_text).unwrap();
            let inner = expr.trim_start_matches("cron(").trim_end_matches(')');
            let f: Vec<&str> = inner.split(' ').collect();
            let mut at = t("2027-01-01T00:00:00Z");
            let end = t("2028-12-31T23:59:00Z");
            let step = if cron_text.starts_with("*/7") { 1 } else { 30 };
            while at < end {
                let aws = field_matches(f[0], at.minute(), 0, &[])
                    && field_matches(f[1], at.hour(), 0, &[])
                    && (f[2] == "?" || field_matches(f[2], at.day(), 1, &[]))
                    && field_matches(f[3], at.month(), 1, &[])
                    && (f[4] == "?"
                        || field_matches(f[4], at.weekday().num_days_from_sunday(), 0, &WD));
                assert_eq!(aws, c.matches(at), "{cron_text} -> {expr} at {at}");
                at += mins(step);
                if step == 1 && at > t("2027-01-08T00:00:00Z") {
                    break;
                }
            }
        }
    }

    #[test]
    fn schedule_names_are_valid_unique_and_stable() {
        let valid = |n: &str| {
            n.len() <= SCHEDULE_NAME_MAX && !n.is_empty() && n.chars().all(schedule_name_char)
        };
        assert_eq!(schedule_name("app", "nightly"), "app.nightly");
        let long_task = "a".repeat(50);
        let long = schedule_name(&long_task, "weekly-refresh-of-patches");
        assert!(valid(&long), "{long}");
        assert_eq!(long, schedule_name(&long_task, "weekly-refresh-of-patches"));
        assert_eq!(long.matches('.').count(), 2, "{long}");
        assert!(
            long.starts_with(&format!("{}.weekly-refre.", "a".repeat(24))),
            "{long}"
        );
        // Same prefixes, different names: different hashes.
        let other = schedule_name(&long_task, "weekly-refresh-of-patches2");
        assert_ne!(long, other);
        // Odd characters (never in validated names) are hashed, not passed on.
        let odd = schedule_name("app", "ni ght/ly");
        assert!(valid(&odd), "{odd}");
        assert!(odd.starts_with("app.ni_ght_ly."), "{odd}");
        // "a-b"."c" and "a"."b-c" stay apart; dotted names cannot pose as plain ones.
        assert_ne!(schedule_name("a-b", "c"), schedule_name("a", "b-c"));
        assert_ne!(schedule_name("a.b", "c"), schedule_name("a", "b.c"));
        assert_eq!(schedule_name("a.b", "c").matches('.').count(), 2);
        // Exactly 64 characters stays plain; 65 is hashed.
        let t62 = "t".repeat(62);
        assert_eq!(schedule_name(&t62, "x"), format!("{t62}.x"));
        assert_eq!(schedule_name(&t62, "xy").matches('.').count(), 2);
    }
}
