//! `crtask-local`: the embedded platform. It implements the core ports on one
//! machine: a SQLite store, a worker pool that runs builds with buildah, per-run
//! log files, and the HTTP server behind `crtask serve` (a public listener for
//! webhooks, and the management API on its own listener).

pub mod api_auth;
pub mod config;
pub mod error;
pub mod json_errors;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod notify;
pub mod patch_schedule;
pub mod platform;
pub mod poller;
pub mod registry_credentials;
pub mod retention;
pub mod scheduler;
pub mod secret_files;
pub mod server;
pub mod store;
pub mod sweeper;
pub mod webhook_gate;
pub mod worker;

pub use error::{Error, Result};
