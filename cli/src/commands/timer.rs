//! `crtask task timer add|update|remove|list`: a task's cron timers.
//!
//! Each command reads the task, changes its timers and puts it back; the
//! server validates the result (names, crons) and makes new, changed and
//! re-enabled timers count from now.

use super::Ctx;
use crate::output;
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use crtask_core::domain::cron::{self, Cron};
use crtask_core::domain::model::{Task, TimerTrigger};
use serde::Serialize;

#[derive(Subcommand)]
pub enum TimerCommand {
    /// Add a timer (`--schedule [NAME:]CRON`; unnamed ones become t1, t2, ...).
    Add(TimerArgs),
    /// Change a timer's schedule, or enable or disable it.
    Update(TimerArgs),
    /// Remove a timer.
    Remove(TimerArgs),
    /// List a task's timers with their next occurrence (UTC).
    List(ListArgs),
}

#[derive(Args)]
pub struct TimerArgs {
    /// The task.
    #[arg(long, short = 'n')]
    name: String,
    /// The timer [add: from `--schedule NAME:CRON`, else the next free tN].
    #[arg(long)]
    timer_name: Option<String>,
    /// Five-field cron, UTC: minute hour day-of-month month day-of-week.
    #[arg(long)]
    schedule: Option<String>,
    /// Whether the timer fires (a disabled timer is kept).
    #[arg(long, value_name = "BOOL")]
    enabled: Option<bool>,
}

#[derive(Args)]
pub struct ListArgs {
    /// The task.
    #[arg(long, short = 'n')]
    name: String,
}

/// A timer as `list -o json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TimerRow {
    pub name: String,
    pub schedule: String,
    pub enabled: bool,
    /// The next occurrence after now; `None` when disabled.
    pub next: Option<String>,
}

/// The next occurrence of each timer after `now`.
pub fn rows(task: &Task, now: DateTime<Utc>) -> Vec<TimerRow> {
    task.timers
        .iter()
        .map(|t| TimerRow {
            name: t.name.clone(),
            schedule: t.schedule.clone(),
            enabled: t.enabled,
            next: t
                .enabled
                .then(|| Cron::parse(&t.schedule).ok()?.next_after(now))
                .flatten()
                .map(crtask_core::domain::time::rfc3339),
        })
        .collect()
}

fn unknown(task: &Task, timer: &str) -> anyhow::Error {
    let names: Vec<&str> = task.timers.iter().map(|t| t.name.as_str()).collect();
    if names.is_empty() {
        anyhow::anyhow!("task '{}' has no timers", task.name)
    } else {
        anyhow::anyhow!(
            "task '{}' has no timer '{timer}' (its timers: {})",
            task.name,
            names.join(", ")
        )
    }
}

/// The first of t1, t2, ... the task does not use.
fn free_name(task: &Task) -> String {
    (1..)
        .map(|n| format!("t{n}"))
        .find(|n| !task.timers.iter().any(|t| &t.name == n))
        .unwrap_or_default()
}

/// Applies `add` to the task; returns the timer's name.
pub fn add(task: &mut Task, a: &TimerArgs) -> Result<String> {
    let Some(spec) = &a.schedule else {
        bail!("--schedule is required: a five-field cron such as '0 3 * * *'");
    };
    let (name, schedule) = match &a.timer_name {
        Some(n) => (n.clone(), spec.trim().to_string()),
        None => match cron::split_named(spec) {
            (Some(n), c) => (n.to_string(), c.to_string()),
            (None, c) => (free_name(task), c.to_string()),
        },
    };
    if task.timers.iter().any(|t| t.name == name) {
        bail!(
            "task '{}' already has a timer '{name}': use `crtask task timer update`",
            task.name
        );
    }
    task.timers.push(TimerTrigger {
        name: name.clone(),
        schedule,
        enabled: a.enabled.unwrap_or(true),
    });
    Ok(name)
}

/// Applies `update` to the task; returns the timer's name.
pub fn update(task: &mut Task, a: &TimerArgs) -> Result<String> {
    let Some(name) = &a.timer_name else {
        bail!("--timer-name is required: which timer to change");
    };
    if a.schedule.is_none() && a.enabled.is_none() {
        bail!("nothing to change: give --schedule and/or --enabled");
    }
    let err = unknown(task, name);
    let Some(t) = task.timers.iter_mut().find(|t| &t.name == name) else {
        return Err(err);
    };
    if let Some(s) = &a.schedule {
        t.schedule = s.trim().to_string();
    }
    if let Some(e) = a.enabled {
        t.enabled = e;
    }
    Ok(name.clone())
}

/// Applies `remove` to the task; returns the timer's name.
pub fn remove(task: &mut Task, a: &TimerArgs) -> Result<String> {
    let Some(name) = &a.timer_name else {
        bail!("--timer-name is required: which timer to remove");
    };
    if a.schedule.is_some() || a.enabled.is_some() {
        bail!("`timer remove` takes only --name and --timer-name");
    }
    let before = task.timers.len();
    task.timers.retain(|t| &t.name != name);
    if task.timers.len() == before {
        return Err(unknown(task, name));
    }
    Ok(name.clone())
}

fn print(ctx: &Ctx, task: &Task) -> Result<()> {
    let rows = rows(task, Utc::now());
    ctx.out.emit(&rows, || table(task, rows.clone()))
}

fn table(task: &Task, rows: Vec<TimerRow>) {
    if rows.is_empty() {
        println!("Task '{}' has no timers", task.name);
        return;
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            vec![
                r.name,
                r.schedule,
                r.enabled.to_string(),
                r.next.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    output::table(&["NAME", "SCHEDULE", "ENABLED", "NEXT"], &table);
}

/// A change to a task's timers; returns the timer's name.
type Apply = fn(&mut Task, &TimerArgs) -> Result<String>;

pub async fn run(ctx: &Ctx, cmd: TimerCommand) -> Result<i32> {
    let client = ctx.client().await?;
    let (a, verb, apply): (TimerArgs, &str, Apply) = match cmd {
        TimerCommand::List(l) => {
            print(ctx, &client.task(&l.name).await?)?;
            return Ok(0);
        }
        TimerCommand::Add(a) => (a, "added to", add),
        TimerCommand::Update(a) => (a, "updated in", update),
        TimerCommand::Remove(a) => (a, "removed from", remove),
    };
    let mut task = client.task(&a.name).await?;
    let timer = apply(&mut task, &a)?;
    let task = client.update_task(&task).await?;
    if ctx.out.human() {
        println!("Timer '{timer}' {verb} task '{}'", task.name);
    }
    print(ctx, &task)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(timers: &[(&str, &str, bool)]) -> Task {
        let mut t: Task = serde_json::from_value(serde_json::json!({
            "name": "app", "context": "/dev/null", "createTime": "2026-01-01T00:00:00.000Z"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        t.timers = timers
            .iter()
            .map(|(n, s, e)| TimerTrigger {
                name: n.to_string(),
                schedule: s.to_string(),
                enabled: *e,
            })
            .collect();
        t
    }

    fn args(timer: Option<&str>, schedule: Option<&str>, enabled: Option<bool>) -> TimerArgs {
        TimerArgs {
            name: "app".into(),
            timer_name: timer.map(str::to_string),
            schedule: schedule.map(str::to_string),
            enabled,
        }
    }

    #[test]
    fn add_names_and_rejects_duplicates() {
        let mut t = task(&[("t1", "* * * * *", true)]);
        assert_eq!(
            add(&mut t, &args(None, Some("0 * * * *"), None))
                .ok()
                .as_deref(),
            Some("t2")
        );
        assert_eq!(
            add(&mut t, &args(None, Some("nightly:0 3 * * *"), Some(false)))
                .ok()
                .as_deref(),
            Some("nightly")
        );
        assert_eq!(t.timers[2].schedule, "0 3 * * *");
        assert!(!t.timers[2].enabled);
        let e = add(&mut t, &args(Some("t1"), Some("* * * * *"), None)).unwrap_err();
        assert!(e.to_string().contains("already has a timer 't1'"), "{e}");
        assert!(add(&mut t, &args(Some("x"), None, None)).is_err());
    }

    #[test]
    fn update_and_remove_name_unknown_timers() {
        let mut t = task(&[("t1", "* * * * *", true), ("t2", "0 * * * *", true)]);
        update(&mut t, &args(Some("t2"), None, Some(false))).unwrap_or_default();
        assert!(!t.timers[1].enabled);
        let e = update(&mut t, &args(Some("t9"), Some("* * * * *"), None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "task 'app' has no timer 't9' (its timers: t1, t2)"
        );
        assert!(update(&mut t, &args(Some("t1"), None, None)).is_err());
        remove(&mut t, &args(Some("t1"), None, None)).unwrap_or_default();
        assert_eq!(t.timers.len(), 1);
        assert!(remove(&mut t, &args(Some("t1"), None, None)).is_err());
    }

    #[test]
    fn next_occurrences() {
        let t = task(&[("a", "0 3 * * *", true), ("b", "0 3 * * *", false)]);
        let now = DateTime::parse_from_rfc3339("2026-01-01T04:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let r = rows(&t, now);
        assert_eq!(r[0].next.as_deref(), Some("2026-01-02T03:00:00.000Z"));
        assert_eq!(r[1].next, None);
    }
}
