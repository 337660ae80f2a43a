//! The one error type of `crtask-local`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] crtask_core::Error),
    /// Running a build: engines, git contexts, contexts, run logs.
    #[error(transparent)]
    Executor(#[from] crtask_executor::Error),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server's configuration is unusable.
    #[error("config: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for crtask_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(c) => c,
            Error::Executor(e) => e.into(),
            Error::Sqlite(e) => crtask_core::Error::Store(e.to_string()),
            other => crtask_core::Error::Builder(other.to_string()),
        }
    }
}
