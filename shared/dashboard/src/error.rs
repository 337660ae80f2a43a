//! The dashboard's errors, answered as `{"error": ...}` like the API's.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use crtask_core::domain::api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] crtask_core::Error),
    /// A run's log could not be read.
    #[error("cannot read the run's log: {0}")]
    Log(String),
    /// `crtask dashboard` could not start.
    #[error("{0}")]
    Serve(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn status(&self) -> StatusCode {
        use crtask_core::Error as C;
        match self {
            Error::Core(C::Invalid(_) | C::Template(_)) => StatusCode::BAD_REQUEST,
            Error::Core(C::NotFound { .. }) => StatusCode::NOT_FOUND,
            Error::Core(C::Conflict { .. }) => StatusCode::CONFLICT,
            Error::Core(C::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Core(_) | Error::Log(_) | Error::Serve(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}
