//! The one error type of `crtask-executor`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] crtask_core::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A context archive or directory that cannot be used (names the path).
    #[error("context: {0}")]
    Context(String),
    /// Over a configured size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A setting of the executor (git tokens, image aliases) is unusable.
    #[error("config: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for crtask_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(c) => c,
            Error::TooLarge(m) => crtask_core::Error::TooLarge(m),
            Error::Context(m) => crtask_core::Error::Invalid(format!("context: {m}")),
            other => crtask_core::Error::Builder(other.to_string()),
        }
    }
}
