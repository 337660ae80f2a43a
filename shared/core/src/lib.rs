//! `crtask-core`: the domain and every decision of crtask.
//!
//! Nothing here talks to the world except through the traits in [`ports`]:
//! no SQLite, no AWS SDK, no process spawning. The local platform
//! (`crtask-local`) and the AWS platform (`crtask-aws`) implement those
//! ports.
//!
//! The folders follow one event through the system:
//!
//! ```text
//! trigger/request, signing       the raw request and the proof it is genuine
//!        |
//!        v
//! trigger/{git,registry,timer}   verify -> event (parse) -> decide -> handler
//!        |                        (a delivery becomes runs and an event record)
//!        v
//! run/                           record the run, dispatch it to the Builder
//!        |
//!        v
//! build/                         what a builder executes: quick builds,
//!        |                        multi-step task files, Dockerfile scan
//!        v
//! trigger/build_status           the builder's report finishes the run,
//! trigger/registry/handler       and what it pushed may trigger the next
//!                                 (after_run: cascades)
//! ```
//!
//! [`domain`] holds the records and value types every stage shares;
//! [`signing`] the secrets, MACs and constant-time checks every trigger
//! verifies with; [`service`] the operations behind the CLI's API (create a
//! task, queue a run, show runs), the same on every platform.

pub mod build;
pub mod domain;
pub mod error;
pub mod notify;
pub mod overview;
pub mod patch;
pub mod ports;
pub mod run;
pub mod service;
pub mod signing;
pub mod template;
#[cfg(test)]
mod testing;
pub mod trigger;

pub use error::{Error, Result};
