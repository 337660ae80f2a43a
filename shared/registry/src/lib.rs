//! `crtask-registry`: the OCI registry client and the base-image digest
//! poller, shared by the local platform (a loop every 250 ms) and the AWS
//! schedule function (its periodic tick).
//!
//! [`Poller::round`] is one pass: one `HEAD` per distinct tracked reference
//! of every registry whose (jittered) interval is due, honouring per-registry
//! backoff; a moved digest goes down the same path as a registry notification
//! ([`crtask_core::trigger::registry::handler`]). The decisions (planning, URLs, header parsing,
//! backoff arithmetic) live in [`crtask_core::trigger::registry::poll`]; this crate does the I/O.

pub mod client;
pub mod config;
pub mod error;
pub mod poller;

pub use client::{Head, Probe, RegistryClient};
pub use config::PollConfig;
pub use error::{Error, Result};
pub use poller::{PollRound, Poller};
