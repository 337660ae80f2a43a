//! The records and value types every stage shares: tasks and runs
//! ([`model`]), run ids, image references, platforms, cron schedules,
//! branch and path patterns, time formats, the HTTP API's bodies, and
//! untrusted text made inert for logs and terminals ([`text`]).
//! Nothing here depends on a trigger, a run stage or a build.

pub mod api;
pub mod cron;
pub mod host;
pub mod identity;
pub mod imageref;
pub mod model;
pub mod pattern;
pub mod platform;
pub mod runid;
pub mod text;
pub mod time;
