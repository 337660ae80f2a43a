//! Timers: the pure decisions ([`decide`]: what a waking scheduler fires,
//! the signed EventBridge Scheduler payloads) and the [`handler`] that
//! fires them. Cron schedules themselves are domain types
//! ([`crate::domain::cron`]).

pub mod decide;
pub mod handler;
