//! Every task's timers with their next fire time, as the local scheduler
//! plans them ([`crate::trigger::timer::decide::plan`]).

use crate::domain::cron::Cron;
use crate::domain::model::Task;
use crate::ports::Store;
use crate::trigger::timer::decide::plan;
use crate::Result;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// One timer of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimerView {
    pub task: String,
    pub timer: String,
    pub schedule: String,
    pub enabled: bool,
    /// The latest scheduled time handled (fired or missed).
    #[serde(with = "crate::domain::time::serde_millis::option")]
    pub last_fired: Option<DateTime<Utc>>,
    /// When it fires next; `None` when disabled, when the schedule is not
    /// valid, or when it has no further occurrence.
    #[serde(with = "crate::domain::time::serde_millis::option")]
    pub next_fire: Option<DateTime<Utc>>,
}

/// A task's timers at `now`, given when each was last handled.
pub fn views(
    task: &Task,
    last_fired: impl Fn(&str) -> Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<TimerView> {
    task.timers
        .iter()
        .map(|t| {
            let last = last_fired(&t.name);
            let next = if t.enabled {
                Cron::parse(&t.schedule)
                    .ok()
                    .and_then(|c| plan(&c, task.create_time, last, now, Duration::zero()).next)
            } else {
                None
            };
            TimerView {
                task: task.name.clone(),
                timer: t.name.clone(),
                schedule: t.schedule.clone(),
                enabled: t.enabled,
                last_fired: last,
                next_fire: next,
            }
        })
        .collect()
}

/// Every task's timers, task by task.
pub async fn load(store: &dyn Store, now: DateTime<Utc>) -> Result<Vec<TimerView>> {
    let mut out = Vec::new();
    for task in store.list_tasks().await? {
        let mut last = std::collections::BTreeMap::new();
        for t in &task.timers {
            last.insert(
                t.name.clone(),
                store.timer_last_fired(&task.name, &t.name).await?,
            );
        }
        out.extend(views(&task, |n| last.get(n).copied().flatten(), now));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{t, task_with_timers};

    #[test]
    fn next_fire_counts_from_now_and_skips_disabled_and_bad_timers() {
        let mut task = task_with_timers(&[
            ("nightly", "0 2 * * *", true),
            ("off", "0 2 * * *", false),
            ("bad", "not a cron", true),
        ]);
        task.create_time = t("2026-03-01T00:00:00Z");
        let now = t("2026-03-05T10:00:00Z");
        let v = views(&task, |_| Some(t("2026-03-05T02:00:00Z")), now);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].next_fire, Some(t("2026-03-06T02:00:00Z")));
        assert_eq!(v[0].last_fired, Some(t("2026-03-05T02:00:00Z")));
        assert_eq!(v[1].next_fire, None);
        assert!(!v[1].enabled);
        assert_eq!(v[2].next_fire, None);
        let json = serde_json::to_value(&v[0]).unwrap();
        assert_eq!(json["nextFire"], "2026-03-06T02:00:00.000Z");
        assert_eq!(json["task"], "app");
    }
}
