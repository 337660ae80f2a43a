//! `crtask-executor`: what runs a build anywhere. The step executor of one
//! run ([`execute`]), the engines ([`buildah`], [`docker`]) on the shared
//! process supervision ([`process`]), git contexts ([`gitctx`]), context
//! packing and safe extraction ([`context`]), per-run logs with secret
//! masking ([`logs`]) and task-file secrets on this machine ([`secrets`]). The local workers of `crtask serve` and `crtask exec`
//! (the builder on AWS) both use it; it holds no store and no cloud SDK.

pub mod assemble;
pub mod buildah;
pub mod cache_lock;
pub mod context;
pub mod docker;
pub mod error;
pub mod execute;
pub mod fsutil;
pub mod gitctx;
pub mod isolation;
pub mod logs;
pub mod multiarch;
pub mod patch;
pub mod probe;
pub mod process;
pub mod pull_cache;
pub mod registry_auth;
pub mod runtime;
pub mod secrets;
pub mod stdio;

pub use error::{Error, Result};
