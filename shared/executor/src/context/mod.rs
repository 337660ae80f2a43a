//! Build contexts: packing a local directory into a tar.gz (honouring its
//! `.dockerignore`) and unpacking an uploaded one without letting it write
//! or point outside its destination.
//!
//! By phase: `pack` (a directory to a tar.gz), `extract` (a tar.gz to a
//! directory) with its `safety` checks, `copy` (both at once, for a local
//! directory), and the `limits` they share.

mod copy;
mod extract;
mod limits;
mod pack;
mod safety;
#[cfg(test)]
mod testutil;

pub use copy::copy_context;
pub use extract::{unpack_limited, unpack_safe};
pub use limits::{
    PackStats, UnpackLimits, DEFAULT_CONTEXT_LIMIT, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_NAME,
};
pub use pack::pack_dir;
