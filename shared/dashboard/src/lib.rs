//! `crtask-dashboard`: the web UI of `crtask serve` (at `/` of the
//! management listener) and of `crtask dashboard` (on loopback, against the
//! AWS platform).
//!
//! - [`assets`]: the page, its script and its style sheet, embedded in the
//!   binary and served with a strict Content-Security-Policy. They hold no
//!   data and are public; the data comes from the token-protected API.
//! - [`overview`]: the read-only routes the UI needs beyond the CLI's API
//!   (`/api/v1/graph`, `/api/v1/timers`), over the core's decisions.
//! - [`readonly`]: the whole read-only API the UI calls, over any
//!   [`crtask_core::ports::Store`], with its own token check: what
//!   `crtask dashboard` serves for the AWS platform.

pub mod assets;
pub mod error;
pub mod overview;
pub mod readonly;

pub use error::{Error, Result};
