//! The one error type of `crtask-gotemplate`.

use std::fmt;

use thiserror::Error;

use crate::lex::Pos;

/// Why a template could not be parsed or rendered.
///
/// Both variants print as `template: LINE:COL: MESSAGE`, the position being
/// the place in the template source (1-based; columns count characters).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The source is not a template: bad syntax, an unknown function, an
    /// undefined variable, nesting too deep.
    #[error("template: {line}:{col}: {message}")]
    Parse {
        line: usize,
        col: usize,
        message: String,
    },
    /// Rendering failed: a function rejected its arguments, a value cannot
    /// be ranged over, a limit was reached.
    #[error("template: {line}:{col}: {message}")]
    Exec {
        line: usize,
        col: usize,
        message: String,
    },
}

impl Error {
    /// An [`Error::Parse`] at `pos`.
    pub(crate) fn parse(pos: Pos, message: impl fmt::Display) -> Self {
        Error::Parse {
            line: pos.line,
            col: pos.col,
            message: message.to_string(),
        }
    }

    /// An [`Error::Exec`] at `pos`.
    pub(crate) fn exec(pos: Pos, message: impl fmt::Display) -> Self {
        Error::Exec {
            line: pos.line,
            col: pos.col,
            message: message.to_string(),
        }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
