//! The crate's error type.

/// What can go wrong in `crtask-registry`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unusable poller settings (names the bad input).
    #[error("config: {0}")]
    Config(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
