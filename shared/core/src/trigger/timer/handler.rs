//! The timer handler of a platform that keeps its own clock (the local
//! server): each [`tick`] fires the occurrences that are due, records the
//! ones that were missed, and remembers how far each timer got.
//!
//! # When a timer starts counting
//!
//! A timer never fires for a time at or before the moment it was added,
//! re-enabled, or given a new schedule. The platform says when that moment
//! was by storing it as the timer's `last_fired` ([`reset_timers`], called
//! on task create and update); a timer without stored state counts from the
//! task's creation. Past occurrences of a timer that was disabled are
//! therefore neither fired nor reported when it comes back.
//!
//! # One run per (task, timer, scheduled time)
//!
//! Each occurrence is keyed `timer:{task}:{timer}:{scheduled time}`, and the
//! key guards it three times over:
//!
//! 1. the timer's `last_fired` moves past it once it is handled, so the next
//!    plan no longer contains it;
//! 2. its event carries the key as delivery id, and an occurrence with an
//!    event already recorded is skipped (a crash after the event but before
//!    `last_fired` was stored);
//! 3. its run carries the key as dedupe key (a crash after the run but before
//!    its event).
//!
//! Order per timer: record the runs, record the events, store `last_fired`,
//! and only then hand the runs to the builder, so that a run can only start
//! once everything that prevents its twin is durable.
//!
//! Within one process, [`tick`] and [`reset_timers`] are serialized, so a
//! tick in flight cannot move a timer's state back behind a reset.

use crate::domain::cron::Cron;
use crate::domain::model::{EventRecord, EventSource, Outcome, Run, RunType, Task, Trigger};
use crate::ports::{Builder, Clock, Store};
use crate::run::queue::{self, NewRun, Recorded};
use crate::signing::Secret;
use crate::trigger::answer::Answer;
use crate::trigger::timer::decide::{plan, MISSED_CAP};
use crate::trigger::timer::scheduler::{
    schedule_name, verify_schedule, SchedulePayload, Skew, MAX_PAYLOAD_BYTES,
};
use crate::Result;
use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use serde_json::{json, Value};

/// Serializes [`tick`] and [`reset_timers`] within one process.
static TIMER_STATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The key of one occurrence: the run's dedupe key and the event's delivery id.
pub fn occurrence_key(task: &str, timer: &str, scheduled: DateTime<Utc>) -> String {
    format!("timer:{task}:{timer}:{}", scheduled_text(scheduled))
}

/// A scheduled time as events and keys show it (`2026-01-01T12:00:00Z`).
fn scheduled_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The timers of `new` whose past occurrences must never fire: all of them
/// for a new task (`old` is `None`), otherwise the timers that are new by
/// name, whose schedule changed, or that were disabled and are enabled now.
pub fn timers_to_reset(old: Option<&Task>, new: &Task) -> Vec<String> {
    new.timers
        .iter()
        .filter(|t| match old {
            None => true,
            Some(old) => match old.timers.iter().find(|o| o.name == t.name) {
                None => true,
                Some(o) => o.schedule.trim() != t.schedule.trim() || (t.enabled && !o.enabled),
            },
        })
        .map(|t| t.name.clone())
        .collect()
}

/// Stores `last_fired = now` for every timer [`timers_to_reset`] names, so
/// they count from now. Call it on task create (after storing the task) and
/// on update (before storing the new version, after validating it).
pub async fn reset_timers(
    store: &dyn Store,
    clock: &dyn Clock,
    old: Option<&Task>,
    new: &Task,
) -> Result<Vec<String>> {
    let names = timers_to_reset(old, new);
    if names.is_empty() {
        return Ok(names);
    }
    let _guard = TIMER_STATE.lock().await;
    let now = clock.now();
    for name in &names {
        store.set_timer_last_fired(&new.name, name, now).await?;
    }
    Ok(names)
}

/// Handles every enabled timer of every task at `clock.now()`: fires the
/// latest due occurrence when it is at most `grace` old, records the other
/// occurrences since the timer was last handled as missed, and stores how far
/// each timer got. Returns the events recorded (one per fired or missed
/// occurrence, plus one per timer whose missed list was capped).
///
/// Timers whose cron no longer parses (stored by an older version) are
/// skipped; tasks are validated when they are saved.
pub async fn tick(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    grace: Duration,
) -> Result<Vec<EventRecord>> {
    let _guard = TIMER_STATE.lock().await;
    let now = clock.now();
    let grace = grace.max(Duration::zero());
    let mut events = Vec::new();
    for task in store.list_tasks().await? {
        for timer in task.timers.iter().filter(|t| t.enabled) {
            let Ok(cron) = Cron::parse(&timer.schedule) else {
                continue;
            };
            let last = store.timer_last_fired(&task.name, &timer.name).await?;
            let p = plan(&cron, task.create_time, last, now, grace);
            let Some(handled) = p.handled_up_to() else {
                continue;
            };
            let t = TimerCtx {
                store,
                task: &task,
                timer: &timer.name,
                schedule: cron.as_str(),
                now,
            };
            if p.missed_truncated {
                let first = p.missed.first().copied().unwrap_or(handled);
                let reason = format!(
                    "missed: more than {MISSED_CAP} occurrences before {} were missed while the \
                     server was down; only the latest {MISSED_CAP} are recorded",
                    scheduled_text(first)
                );
                let detail = t.detail(None);
                events.push(
                    t.event(None, Outcome::Ignored, reason, Vec::new(), detail)
                        .await?,
                );
            }
            for at in &p.missed {
                let key = occurrence_key(&task.name, &timer.name, *at);
                if store
                    .find_delivery(EventSource::Timer, &key)
                    .await?
                    .is_some()
                {
                    continue;
                }
                let reason = missed_reason(*at, p.fire.last().copied(), now, grace);
                let detail = t.detail(Some(*at));
                events.push(
                    t.event(Some(key), Outcome::Ignored, reason, Vec::new(), detail)
                        .await?,
                );
            }
            let mut created: Vec<Run> = Vec::new();
            for at in &p.fire {
                let key = occurrence_key(&task.name, &timer.name, *at);
                if store
                    .find_delivery(EventSource::Timer, &key)
                    .await?
                    .is_some()
                {
                    continue;
                }
                let (outcome, reason, run_ids) =
                    match fire(store, clock, &task, &timer.name, *at, &key).await? {
                        Fired::New(run) => {
                            let late = now.signed_duration_since(*at);
                            let mut reason = format!(
                                "started {} for task {}: timer '{}' ({}) scheduled at {}",
                                run.run_id,
                                task.name,
                                timer.name,
                                cron.as_str(),
                                scheduled_text(*at)
                            );
                            if late > Duration::minutes(1) {
                                reason.push_str(&format!(
                                    " (caught up {} s late, within the grace window of {} s)",
                                    late.num_seconds(),
                                    grace.num_seconds()
                                ));
                            }
                            let ids = vec![run.run_id.clone()];
                            created.push(run);
                            (Outcome::Triggered, reason, ids)
                        }
                        Fired::Existing(run) => (
                            Outcome::Duplicate,
                            format!(
                                "timer '{}' at {} already fired (run {})",
                                timer.name,
                                scheduled_text(*at),
                                run.run_id
                            ),
                            vec![run.run_id],
                        ),
                        Fired::Failed(e) => (
                            Outcome::Rejected,
                            format!("timer '{}' at {}: {e}", timer.name, scheduled_text(*at)),
                            Vec::new(),
                        ),
                    };
                let detail = t.detail(Some(*at));
                events.push(t.event(Some(key), outcome, reason, run_ids, detail).await?);
            }
            store
                .set_timer_last_fired(&task.name, &timer.name, handled)
                .await?;
            // Everything that prevents a second run is durable: start the builds.
            for run in &mut created {
                queue::dispatch(store, builder, run).await?;
            }
        }
    }
    Ok(events)
}

/// Why an occurrence was recorded as missed rather than fired.
fn missed_reason(
    at: DateTime<Utc>,
    fired: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> String {
    match fired {
        Some(latest) if now.signed_duration_since(at) <= grace => format!(
            "missed: the server was down at {}; only the latest occurrence ({}) is caught up",
            scheduled_text(at),
            scheduled_text(latest)
        ),
        _ => format!(
            "missed: the server was down at {}, beyond the grace window of {} s",
            scheduled_text(at),
            grace.num_seconds()
        ),
    }
}

enum Fired {
    New(Run),
    Existing(Run),
    /// The task cannot be turned into a run (not a store failure).
    Failed(crate::Error),
}

/// Records the run of one occurrence (not dispatched).
async fn fire(
    store: &dyn Store,
    clock: &dyn Clock,
    task: &Task,
    timer: &str,
    at: DateTime<Utc>,
    key: &str,
) -> Result<Fired> {
    let spec = match queue::spec_from_task(task, &Default::default()) {
        Ok(s) => s,
        Err(e) => return Ok(Fired::Failed(e)),
    };
    let run_type = if crate::build::taskfile::is_task_file(&spec.file) {
        RunType::AutoRun
    } else {
        RunType::AutoBuild
    };
    let new = NewRun {
        task: Some(task.name.clone()),
        run_type,
        trigger: Trigger::Timer {
            timer_name: timer.to_string(),
            scheduled_time: at,
        },
        spec,
        dedupe_key: Some(key.to_string()),
    };
    Ok(match queue::record(store, clock, new).await? {
        Recorded::New(run) => Fired::New(run),
        Recorded::Existing(run) => Fired::Existing(run),
    })
}

/// What every event of one timer shares.
struct TimerCtx<'a> {
    store: &'a dyn Store,
    task: &'a Task,
    timer: &'a str,
    schedule: &'a str,
    now: DateTime<Utc>,
}

impl TimerCtx<'_> {
    fn detail(&self, at: Option<DateTime<Utc>>) -> Value {
        let mut d = json!({
            "task": self.task.name,
            "timer": self.timer,
            "schedule": self.schedule,
        });
        if let (Some(at), Some(o)) = (at, d.as_object_mut()) {
            o.insert("scheduledTime".into(), json!(scheduled_text(at)));
        }
        d
    }

    async fn event(
        &self,
        delivery_id: Option<String>,
        outcome: Outcome,
        reason: String,
        runs: Vec<String>,
        detail: Value,
    ) -> Result<EventRecord> {
        let event = EventRecord {
            id: self.store.next_event_id().await?,
            source: EventSource::Timer,
            delivery_id,
            received_at: self.now,
            outcome,
            reason,
            runs,
            detail,
        };
        self.store.record_event(&event).await?;
        Ok(event)
    }
}

// ------------------------------------------- EventBridge Scheduler deliveries

/// What [`fire_scheduled`] needs: the ports, the valid signing secrets (every
/// version during a rotation) and the accepted clock skew.
pub struct ScheduledDeps<'a> {
    pub store: &'a dyn Store,
    pub builder: &'a dyn Builder,
    pub clock: &'a dyn Clock,
    /// Every currently valid value of the schedule signing secret.
    pub secrets: &'a [Secret],
    /// How far a scheduled time may lie from now.
    pub skew: Skew,
}

/// What [`fire_scheduled`] did with one delivery.
#[derive(Debug, Clone)]
pub struct ScheduledFire {
    /// The event recorded for the delivery (always exactly one).
    pub event: EventRecord,
    /// The run started, when the outcome is `Triggered`.
    pub run: Option<Run>,
}

impl ScheduledFire {
    /// The function's answer: `{"outcome", "reason", "event", "runs"}`.
    pub fn answer(&self) -> Answer {
        Answer::new(self.event.outcome, self.event.reason.clone())
            .with_runs(self.event.runs.clone())
            .with_event(self.event.id.clone())
    }
}

/// The longest claimed value copied into a rejected delivery's event.
const CLAIM_MAX: usize = 100;

/// What an unverified payload claims (for the event of a rejected delivery):
/// its string fields `task`, `timer`, `schedule` and `scheduledTime`, each cut
/// to [`CLAIM_MAX`] characters. Never trusted.
fn claimed(body: &[u8]) -> Value {
    let mut out = serde_json::Map::new();
    if body.len() <= MAX_PAYLOAD_BYTES {
        if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
            for field in ["task", "timer", "schedule", "scheduledTime"] {
                if let Some(Value::String(s)) = obj.get(field) {
                    out.insert(
                        field.into(),
                        json!(s.chars().take(CLAIM_MAX).collect::<String>()),
                    );
                }
            }
        }
    }
    json!({ "claimed": out })
}

/// Handles one payload EventBridge Scheduler delivered for a timer (see
/// [`crate::trigger::timer::scheduler`] for its shape) and records exactly one event.
///
/// In order:
/// 1. **Rejected**, nothing started: payloads that [`verify_schedule`]
///    refuses (too large, not JSON, fields missing, forged or altered
///    signature, placeholder or malformed time, outside the skew window),
///    a `schedule` other than [`schedule_name`] of its task and timer, a
///    scheduled time that is not a whole minute, a task or timer that no
///    longer exists, or a time that is not an occurrence of the timer's
///    current cron.
/// 2. **Ignored**: the timer is disabled.
/// 3. **Duplicate**, nothing started: the occurrence (keyed by
///    [`occurrence_key`]) already has an event, or already has a run.
/// 4. **Triggered**: the run is recorded (dedupe key = occurrence key), then
///    its event (delivery id = occurrence key), and only then dispatched.
///
/// A store failure is an error (the delivery may be retried: the key keeps
/// it to one run); every decision about the payload is an `Ok` answer.
pub async fn fire_scheduled(deps: &ScheduledDeps<'_>, body: &[u8]) -> Result<ScheduledFire> {
    let now = deps.clock.now();
    let reject = |reason: String, detail: Value| Decision {
        outcome: Outcome::Rejected,
        reason,
        delivery: None,
        runs: Vec::new(),
        detail,
        run: None,
    };
    let decision = match verify_schedule(deps.secrets, body, now, deps.skew) {
        Err(e) => reject(e.to_string(), claimed(body)),
        Ok(p) => decide(deps, &p).await?,
    };
    let event = EventRecord {
        id: deps.store.next_event_id().await?,
        source: EventSource::Timer,
        delivery_id: decision.delivery,
        received_at: now,
        outcome: decision.outcome,
        reason: decision.reason,
        runs: decision.runs,
        detail: decision.detail,
    };
    deps.store.record_event(&event).await?;
    let mut run = decision.run;
    // Everything that prevents a second run is durable: start the build.
    if let Some(r) = run.as_mut() {
        queue::dispatch(deps.store, deps.builder, r).await?;
    }
    Ok(ScheduledFire { event, run })
}

/// The event to record for a verified payload, and the new run (recorded,
/// not dispatched) when there is one.
struct Decision {
    outcome: Outcome,
    reason: String,
    delivery: Option<String>,
    runs: Vec<String>,
    detail: Value,
    run: Option<Run>,
}

async fn decide(deps: &ScheduledDeps<'_>, p: &SchedulePayload) -> Result<Decision> {
    let at = scheduled_text(p.scheduled_time);
    let mut detail = json!({"task": p.task, "timer": p.timer, "scheduledTime": at});
    let rejected = |reason: String, detail: &Value| Decision {
        outcome: Outcome::Rejected,
        reason,
        delivery: None,
        runs: Vec::new(),
        detail: detail.clone(),
        run: None,
    };
    let expected = schedule_name(&p.task, &p.timer);
    if p.schedule != expected {
        return Ok(rejected(
            format!(
                "schedule payload names schedule '{}', but the schedule of task '{}' timer '{}' is '{expected}'",
                p.schedule, p.task, p.timer
            ),
            &detail,
        ));
    }
    if p.scheduled_time.second() != 0 || p.scheduled_time.nanosecond() != 0 {
        return Ok(rejected(
            format!(
                "schedule payload scheduledTime '{}' is not a whole minute: timers fire on minutes",
                p.scheduled_time.to_rfc3339()
            ),
            &detail,
        ));
    }
    let Some(task) = deps.store.get_task(&p.task).await? else {
        return Ok(rejected(
            format!(
                "task '{}' does not exist (deleted?): timer '{}' at {at} not fired",
                p.task, p.timer
            ),
            &detail,
        ));
    };
    let Some(timer) = task.timers.iter().find(|t| t.name == p.timer) else {
        return Ok(rejected(
            format!(
                "task '{}' has no timer '{}' (removed?): {at} not fired",
                p.task, p.timer
            ),
            &detail,
        ));
    };
    if let Some(o) = detail.as_object_mut() {
        o.insert("schedule".into(), json!(timer.schedule.trim()));
    }
    if !timer.enabled {
        return Ok(Decision {
            outcome: Outcome::Ignored,
            reason: format!(
                "timer '{}' of task '{}' is disabled: {at} not fired",
                p.timer, p.task
            ),
            ..rejected(String::new(), &detail)
        });
    }
    let cron = match Cron::parse(&timer.schedule) {
        Ok(c) => c,
        Err(e) => {
            return Ok(rejected(
                format!("timer '{}' of task '{}': {e}", p.timer, p.task),
                &detail,
            ))
        }
    };
    if !cron.matches(p.scheduled_time) {
        return Ok(rejected(
            format!(
                "{at} is not an occurrence of timer '{}' ({}) of task '{}': not fired",
                p.timer,
                cron.as_str(),
                p.task
            ),
            &detail,
        ));
    }
    let key = occurrence_key(&p.task, &p.timer, p.scheduled_time);
    if let Some(first) = deps.store.find_delivery(EventSource::Timer, &key).await? {
        return Ok(Decision {
            outcome: Outcome::Duplicate,
            reason: format!(
                "timer '{}' at {at} already fired (event {}{})",
                p.timer,
                first.id,
                first
                    .runs
                    .first()
                    .map(|r| format!(", run {r}"))
                    .unwrap_or_default()
            ),
            delivery: Some(key),
            runs: first.runs,
            detail,
            run: None,
        });
    }
    Ok(
        match fire(
            deps.store,
            deps.clock,
            &task,
            &p.timer,
            p.scheduled_time,
            &key,
        )
        .await?
        {
            Fired::New(run) => Decision {
                outcome: Outcome::Triggered,
                reason: format!(
                    "started {} for task {}: timer '{}' ({}) scheduled at {at}",
                    run.run_id,
                    task.name,
                    p.timer,
                    cron.as_str()
                ),
                delivery: Some(key),
                runs: vec![run.run_id.clone()],
                detail,
                run: Some(run),
            },
            Fired::Existing(run) => Decision {
                outcome: Outcome::Duplicate,
                reason: format!(
                    "timer '{}' at {at} already fired (run {})",
                    p.timer, run.run_id
                ),
                delivery: Some(key),
                runs: vec![run.run_id],
                detail,
                run: None,
            },
            Fired::Failed(e) => Decision {
                outcome: Outcome::Rejected,
                reason: format!("timer '{}' at {at}: {e}", p.timer),
                delivery: Some(key),
                runs: Vec::new(),
                detail,
                run: None,
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(timers: &[(&str, &str, bool)]) -> Task {
        crate::testing::task_with_timers(timers)
    }

    #[test]
    fn keys_use_whole_seconds_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T12:00:00+02:00")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            occurrence_key("app", "t1", at),
            "timer:app:t1:2026-01-01T10:00:00Z"
        );
    }

    #[test]
    fn which_timers_reset() {
        let old = task(&[
            ("same", "* * * * *", true),
            ("changed", "* * * * *", true),
            ("reenabled", "* * * * *", false),
            ("disabled", "* * * * *", true),
            ("still-off", "* * * * *", false),
        ]);
        let new = task(&[
            ("same", " * * * * * ", true),
            ("changed", "0 * * * *", true),
            ("reenabled", "* * * * *", true),
            ("disabled", "* * * * *", false),
            ("still-off", "* * * * *", false),
            ("added", "* * * * *", true),
        ]);
        assert_eq!(
            timers_to_reset(Some(&old), &new),
            ["changed", "reenabled", "added"]
        );
        assert_eq!(timers_to_reset(None, &old).len(), 5);
    }
}
