//! `crtask-core`: the domain and every decision of crtask.
//!
//! Nothing here talks to the world except through the traits in [`ports`]:
//! no SQLite, no AWS SDK, no process spawning. The local platform
//! (`crtask-local`) and the AWS platform implement those ports.

pub mod api;
pub mod buildstatus;
pub mod cron;
pub mod dockerfile;
pub mod dockerignore;
pub mod error;
pub mod gitevent;
pub mod githook;
pub mod gitmatch;
pub mod imageref;
pub mod model;
pub mod multistep;
pub mod poll;
pub mod ports;
pub mod quickbuild;
pub mod regevent;
pub mod reghook;
pub mod runid;
pub mod runs;
pub mod service;
pub mod taskfile;
pub mod template;
pub mod time;
pub mod timerhook;
pub mod timers;
pub mod verify;

pub use error::{Error, Result};
