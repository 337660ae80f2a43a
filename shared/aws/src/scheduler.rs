//! EventBridge Scheduler: one schedule per (task, timer), in the stack's
//! schedule group, invoking the schedule function with a signed payload.
//!
//! A schedule is named [`crtask_core::trigger::timer::scheduler::schedule_name`], fires at
//! [`crtask_core::trigger::timer::scheduler::scheduler_expression`] of the timer's cron in UTC
//! with no flexible window, is `ENABLED` or `DISABLED` as the timer is, and
//! carries [`crtask_core::trigger::timer::scheduler::schedule_input`] as its `Input` (signed
//! with the stack's signing secret; Scheduler fills in the scheduled time).
//! Retries stop after [`MAX_EVENT_AGE_SECS`], the past edge of the schedule
//! function's default skew window, since later deliveries are rejected.
//!
//! [`TimerSchedules::sync_task_timers`] makes the group match a task after
//! it is created, updated or deleted. Every call is idempotent (create falls
//! back to update, update to create, a missing schedule counts as deleted),
//! so running a sync again after a partial failure completes it.

use crate::error::{describe, Error, Result};
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};
use crtask_core::domain::model::{Task, TimerTrigger};
use crtask_core::signing::Secret;
use crtask_core::trigger::timer::scheduler::{schedule_input, schedule_name, scheduler_expression};

/// The EventBridge Scheduler client ([`crate::config::scheduler`] builds one).
pub use aws_sdk_scheduler::Client;

/// How long Scheduler keeps retrying a delivery (seconds): the schedule
/// function rejects scheduled times more than 15 minutes old.
pub const MAX_EVENT_AGE_SECS: i32 = 900;

/// How many times Scheduler retries a failed delivery.
pub const MAX_RETRY_ATTEMPTS: i32 = 5;

/// The schedule firing continuous patching's occurrences (no timer's
/// schedule name lacks a `.`, so it cannot collide with one).
pub const PATCH_SCHEDULE_NAME: &str = "crtask-continuous-patch";

/// The `Input` of the continuous-patching schedule. Unsigned, like the poll
/// tick: a tick only makes the function check the stored configuration,
/// whose occurrences are each handled once whoever asks.
pub const PATCH_TICK_INPUT: &str =
    r#"{"kind":"patch-tick","scheduledTime":"<aws.scheduler.scheduled-time>"}"#;

/// The stack's scheduling resources (its outputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSettings {
    /// `ScheduleGroupName`: the group holding the timers' schedules.
    pub group: String,
    /// `ScheduleTargetArn`: the schedule function.
    pub target_arn: String,
    /// `SchedulerRoleArn`: the role Scheduler assumes to invoke it.
    pub role_arn: String,
    /// `FailedEventsQueueArn`: where undeliverable payloads go (optional).
    pub dead_letter_arn: Option<String>,
}

/// Everything one timer's schedule is made of (no AWS call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleDefinition {
    /// The schedule's name in the group.
    pub name: String,
    /// `cron(...)`, evaluated in UTC.
    pub expression: String,
    /// The target's `Input`: the signed payload, as JSON text.
    pub input: String,
    /// Whether the timer is enabled.
    pub enabled: bool,
    /// A human description (task, timer, cron).
    pub description: String,
}

/// What [`TimerSchedules::sync_task_timers`] changed, by schedule name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
}

/// Whether every timer of `task` can become a schedule (its cron converts
/// to a Scheduler expression). Call it before storing the task, so a timer
/// that cannot be scheduled is refused before anything changes. Errors
/// name the timer.
pub fn check_task_timers(task: &Task) -> Result<()> {
    for t in &task.timers {
        scheduler_expression(&t.schedule).map_err(|e| {
            Error::Core(crtask_core::Error::invalid(format!(
                "timer '{}': {e}",
                t.name
            )))
        })?;
    }
    Ok(())
}

/// Creates, updates and deletes the schedules of tasks' timers.
pub struct TimerSchedules {
    client: Client,
    settings: ScheduleSettings,
    signing_key: Secret,
}

/// The fields CreateSchedule and UpdateSchedule share (UpdateSchedule
/// replaces the whole definition), set on either request builder.
macro_rules! with_definition {
    ($call:expr, $self:ident, $def:ident) => {
        $call
            .name(&$def.name)
            .group_name(&$self.settings.group)
            .description(&$def.description)
            .schedule_expression(&$def.expression)
            .schedule_expression_timezone("UTC")
            .flexible_time_window($self.window(&$def.name)?)
            .state(Self::state($def))
            .target($self.target($def)?)
    };
}

impl TimerSchedules {
    /// Schedules in `settings.group`, signed with `signing_key` (the
    /// current value of the stack's schedule signing secret).
    pub fn new(client: Client, settings: ScheduleSettings, signing_key: Secret) -> Self {
        TimerSchedules {
            client,
            settings,
            signing_key,
        }
    }

    /// The settings schedules are created with.
    pub fn settings(&self) -> &ScheduleSettings {
        &self.settings
    }

    /// The schedule of `timer` of task `task` (no AWS call). Errors when
    /// the cron cannot be expressed in Scheduler, naming the timer.
    pub fn definition(&self, task: &str, timer: &TimerTrigger) -> Result<ScheduleDefinition> {
        let expression = scheduler_expression(&timer.schedule).map_err(|e| {
            Error::Core(crtask_core::Error::invalid(format!(
                "timer '{}': {e}",
                timer.name
            )))
        })?;
        let name = schedule_name(task, &timer.name);
        let input = schedule_input(&self.signing_key, task, &timer.name, &name).to_string();
        Ok(ScheduleDefinition {
            description: format!(
                "crtask task '{task}' timer '{}' ({} UTC)",
                timer.name,
                timer.schedule.trim()
            ),
            name,
            expression,
            input,
            enabled: timer.enabled,
        })
    }

    fn target(&self, def: &ScheduleDefinition) -> Result<Target> {
        let mut t = Target::builder()
            .arn(&self.settings.target_arn)
            .role_arn(&self.settings.role_arn)
            .input(&def.input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECS)
                    .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
                    .build(),
            );
        if let Some(dlq) = &self.settings.dead_letter_arn {
            t = t.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
        }
        t.build()
            .map_err(|e| self.err("CreateSchedule", &def.name, e))
    }

    fn window(&self, name: &str) -> Result<FlexibleTimeWindow> {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| self.err("CreateSchedule", name, e))
    }

    fn state(def: &ScheduleDefinition) -> ScheduleState {
        if def.enabled {
            ScheduleState::Enabled
        } else {
            ScheduleState::Disabled
        }
    }

    fn err<E: std::error::Error + 'static>(&self, op: &'static str, name: &str, e: E) -> Error {
        Error::Scheduler {
            op,
            name: format!("{}/{name}", self.settings.group),
            message: describe(&e),
        }
    }

    /// Creates the schedule; `false` when one of that name exists already.
    async fn create(&self, def: &ScheduleDefinition) -> Result<bool> {
        let call = self.client.create_schedule();
        let r = with_definition!(call, self, def).send().await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.err("CreateSchedule", &def.name, e)),
        }
    }

    /// Replaces the schedule; `false` when there is none of that name.
    async fn update(&self, def: &ScheduleDefinition) -> Result<bool> {
        let call = self.client.update_schedule();
        let r = with_definition!(call, self, def).send().await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.err("UpdateSchedule", &def.name, e)),
        }
    }

    /// Creates or replaces the schedule of `timer` of `task`. Returns its
    /// name and whether it was created (`true`) or updated.
    pub async fn put(&self, task: &str, timer: &TimerTrigger) -> Result<(String, bool)> {
        let def = self.definition(task, timer)?;
        if self.create(&def).await? {
            return Ok((def.name, true));
        }
        if self.update(&def).await? {
            return Ok((def.name, false));
        }
        // Deleted between the two calls: create it again.
        if self.create(&def).await? {
            return Ok((def.name, true));
        }
        Err(Error::Scheduler {
            op: "CreateSchedule",
            name: format!("{}/{}", self.settings.group, def.name),
            message: "the schedule keeps being created and deleted concurrently: try again".into(),
        })
    }

    /// Creates or replaces continuous patching's schedule
    /// ([`PATCH_SCHEDULE_NAME`], `rate(N days)`); `true` when created.
    pub async fn put_patch_schedule(
        &self,
        schedule: &crtask_core::patch::continuous::PatchSchedule,
    ) -> Result<bool> {
        let def = ScheduleDefinition {
            name: PATCH_SCHEDULE_NAME.to_string(),
            expression: schedule.scheduler_expression(),
            input: PATCH_TICK_INPUT.to_string(),
            enabled: true,
            description: format!("crtask continuous patching (every {})", schedule.schedule),
        };
        if self.create(&def).await? {
            return Ok(true);
        }
        if self.update(&def).await? {
            return Ok(false);
        }
        self.create(&def).await
    }

    /// Deletes continuous patching's schedule; `false` when there was none.
    pub async fn delete_patch_schedule(&self) -> Result<bool> {
        self.delete_named(PATCH_SCHEDULE_NAME).await
    }

    /// Deletes the schedule of timer `timer` of `task`; `false` when there
    /// was none.
    pub async fn delete(&self, task: &str, timer: &str) -> Result<bool> {
        self.delete_named(&schedule_name(task, timer)).await
    }

    async fn delete_named(&self, name: &str) -> Result<bool> {
        let r = self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.settings.group)
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.err("DeleteSchedule", name, e)),
        }
    }

    /// The names of the schedules in the group that start with `prefix`
    /// (all with `""`), sorted. Not used by the sync, which knows its names.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut pages = self
            .client
            .list_schedules()
            .group_name(&self.settings.group)
            .set_name_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("ListSchedules", prefix, e))?;
            names.extend(
                page.schedules()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_string))
                    .filter(|n| n.starts_with(prefix)),
            );
        }
        names.sort();
        Ok(names)
    }

    /// Makes the group match a task's timers: `old` is the task before the
    /// change (`None` on create), `new` after it (`None` on delete). Every
    /// timer of `new` is created or updated (re-signed with the current
    /// key); every timer of `old` that `new` no longer has is deleted.
    /// All expressions are checked before the first call.
    pub async fn sync_task_timers(
        &self,
        old: Option<&Task>,
        new: Option<&Task>,
    ) -> Result<SyncReport> {
        if let Some(n) = new {
            check_task_timers(n)?;
        }
        let mut report = SyncReport::default();
        if let Some(n) = new {
            for t in &n.timers {
                let (name, created) = self.put(&n.name, t).await?;
                if created {
                    report.created.push(name);
                } else {
                    report.updated.push(name);
                }
            }
        }
        if let Some(o) = old {
            for t in &o.timers {
                let kept = new
                    .is_some_and(|n| n.name == o.name && n.timers.iter().any(|x| x.name == t.name));
                if !kept && self.delete(&o.name, &t.name).await? {
                    report.deleted.push(schedule_name(&o.name, &t.name));
                }
            }
        }
        Ok(report)
    }
}
