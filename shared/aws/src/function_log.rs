//! Logging for the Lambda functions, following Lambda's advanced logging
//! controls: `AWS_LAMBDA_LOG_FORMAT=JSON` (set by the template's
//! `LoggingConfig`) gives one JSON object per line with `timestamp`,
//! `level`, `message` and the event's fields at the top level, which
//! CloudWatch Logs Insights indexes; anything else gives plain text.
//! `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else `INFO`) sets the level.
//!
//! `lambda_runtime::tracing::init_default_subscriber` reads the same
//! variables, but its text format carries ANSI colour codes into CloudWatch
//! and its JSON nests the message under `fields`; this is the same idea with
//! both fixed, in a dozen lines.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// The log format the environment asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// Reads `AWS_LAMBDA_LOG_FORMAT` (case-insensitive `JSON`; anything else is text).
pub fn format_from(value: Option<&str>) -> Format {
    match value {
        Some(v) if v.trim().eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Text,
    }
}

/// The level filter: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `INFO`.
/// Lambda's level names (`TRACE` ... `FATAL`) map onto tracing's; `FATAL`
/// is `ERROR`, an unknown name is `INFO`.
pub fn filter_from(lambda_level: Option<&str>, rust_log: Option<&str>) -> EnvFilter {
    if let Some(level) = lambda_level.map(str::trim).filter(|l| !l.is_empty()) {
        let level = if level.eq_ignore_ascii_case("fatal") {
            LevelFilter::ERROR
        } else {
            level.parse().unwrap_or(LevelFilter::INFO)
        };
        return EnvFilter::default().add_directive(level.into());
    }
    match rust_log.filter(|l| !l.trim().is_empty()) {
        Some(directives) => EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .parse_lossy(directives),
        None => EnvFilter::default().add_directive(LevelFilter::INFO.into()),
    }
}

/// Installs the global subscriber for a function process (stdout, which
/// Lambda sends to the function's log group).
pub fn init() {
    let var = |k: &str| std::env::var(k).ok();
    let filter = filter_from(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stdout);
    match format_from(var("AWS_LAMBDA_LOG_FORMAT").as_deref()) {
        Format::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        Format::Text => fmt.without_time().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_in_any_case_selects_json() {
        assert_eq!(format_from(Some("JSON")), Format::Json);
        assert_eq!(format_from(Some(" json ")), Format::Json);
        assert_eq!(format_from(Some("Text")), Format::Text);
        assert_eq!(format_from(Some("yaml")), Format::Text);
        assert_eq!(format_from(None), Format::Text);
    }

    #[test]
    fn the_lambda_level_beats_rust_log_and_fatal_is_error() {
        assert_eq!(
            filter_from(Some("DEBUG"), Some("error")).max_level_hint(),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(
            filter_from(Some("FATAL"), None).max_level_hint(),
            Some(LevelFilter::ERROR)
        );
        assert_eq!(
            filter_from(Some("nonsense"), None).max_level_hint(),
            Some(LevelFilter::INFO)
        );
        assert_eq!(
            filter_from(None, Some("warn")).max_level_hint(),
            Some(LevelFilter::WARN)
        );
        assert_eq!(
            filter_from(None, None).max_level_hint(),
            Some(LevelFilter::INFO)
        );
    }
}
