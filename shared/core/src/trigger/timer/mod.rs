//! Timers: a task's cron schedules start runs. Cron expressions themselves
//! are domain types ([`crate::domain::cron`]). Two clocks, one handler:
//!
//! - locally the server keeps the clock: on each wake-up [`decide::plan`]
//!   says what a timer fires or missed, and [`handler::tick`] records and
//!   starts the runs;
//! - on AWS, EventBridge Scheduler keeps it: [`scheduler`] names each
//!   timer's schedule, writes its expression and signs the payload it
//!   delivers; [`handler::fire_scheduled`] verifies a delivery and starts
//!   its run.
//!
//! Either way exactly one run is started per (task, timer, scheduled time).

pub mod decide;
pub mod handler;
pub mod scheduler;
