//! The one error type of `crtask-aws`.

use thiserror::Error;

/// Every failure the AWS adapters report. Converts into [`crtask_core::Error`]
/// at the port boundary: DynamoDB, S3 and CloudWatch Logs failures become
/// `Store`, CodeBuild failures become `Builder`.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] crtask_core::Error),
    /// A DynamoDB call failed (names the operation).
    #[error("dynamodb {op}: {message}")]
    Dynamo { op: &'static str, message: String },
    /// An S3 call failed (names the operation and key).
    #[error("s3 {op} {key}: {message}")]
    S3 {
        op: &'static str,
        key: String,
        message: String,
    },
    /// A CodeBuild call failed; `retryable` is true for throttling and
    /// account concurrency limits.
    #[error("codebuild {op}: {message}")]
    CodeBuild {
        op: &'static str,
        message: String,
        retryable: bool,
    },
    /// An EventBridge Scheduler call failed (names the operation and the schedule).
    #[error("scheduler {op} {name}: {message}")]
    Scheduler {
        op: &'static str,
        name: String,
        message: String,
    },
    /// A CloudWatch Logs call failed (names the operation and the
    /// `group/stream` read).
    #[error("cloudwatch logs {op} {stream}: {message}")]
    Logs {
        op: &'static str,
        stream: String,
        message: String,
    },
    /// A CloudFormation call failed (names the operation and the stack).
    #[error("cloudformation {op} {name}: {message}")]
    Stack {
        op: &'static str,
        name: String,
        message: String,
    },
    /// An EventBridge PutEvents call failed, or the bus refused the entry.
    #[error("eventbridge {op}: {message}")]
    Events { op: &'static str, message: String },
    /// A secret that cannot be read (names the secret, never its value).
    #[error("secret '{id}': {message}")]
    Secrets { id: String, message: String },
    /// A missing or invalid setting (names the environment variable).
    #[error("{0}")]
    Config(String),
    /// A stored record that cannot be decoded.
    #[error("corrupt record {key}: {message}")]
    Corrupt { key: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds a [`Error::Dynamo`] from any SDK error, keeping the service's
    /// error code and message.
    pub(crate) fn dynamo<E>(op: &'static str, e: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Error::Dynamo {
            op,
            message: describe(&e),
        }
    }

    pub(crate) fn events<E>(op: &'static str, e: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Error::Events {
            op,
            message: describe(&e),
        }
    }

    pub(crate) fn s3<E>(op: &'static str, key: &str, e: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Error::S3 {
            op,
            key: key.to_string(),
            message: describe(&e),
        }
    }

    pub(crate) fn corrupt(key: impl Into<String>, message: impl ToString) -> Self {
        Error::Corrupt {
            key: key.into(),
            message: message.to_string(),
        }
    }
}

/// The error and its sources on one line (SDK errors put the useful part,
/// the service's code and message, in the source chain).
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

impl From<Error> for crtask_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(c) => c,
            Error::Config(m) => crtask_core::Error::Invalid(m),
            e @ (Error::Dynamo { .. }
            | Error::S3 { .. }
            | Error::Corrupt { .. }
            | Error::Scheduler { .. }
            | Error::Logs { .. }
            | Error::Stack { .. }
            | Error::Events { .. }) => crtask_core::Error::Store(e.to_string()),
            e @ (Error::CodeBuild { .. } | Error::Secrets { .. }) => {
                crtask_core::Error::Builder(e.to_string())
            }
        }
    }
}
