//! The one error type of `crtask-core`.

use thiserror::Error;

/// Every failure a core decision or a port can report.
///
/// Messages are lower-case and say what to do where that is known.
#[derive(Debug, Error)]
pub enum Error {
    /// Input from a user or an event that cannot be accepted.
    #[error("{0}")]
    Invalid(String),
    /// A named thing (task, run, context) does not exist.
    #[error("{kind} '{name}' not found")]
    NotFound { kind: &'static str, name: String },
    /// A named thing exists already.
    #[error("{kind} '{name}' already exists")]
    Conflict { kind: &'static str, name: String },
    /// A request or upload is over a configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The store could not be read or written.
    #[error("store: {0}")]
    Store(String),
    /// The builder or engine failed for a reason outside the user's input.
    #[error("builder: {0}")]
    Builder(String),
    /// A template could not be parsed or executed (`template: line:col: ...`).
    #[error(transparent)]
    Template(#[from] crtask_gotemplate::Error),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
        }
    }
}

/// Result alias used across the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
