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
//!
//! `RUST_LOG` takes `target=level` directives ([`Targets`]), not
//! `EnvFilter`'s span and field filters, which would bring the regex
//! engines into every function (docs/BENCHMARKS.md, "Smaller binaries").

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

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
/// is `ERROR`, an unknown name is `INFO`. `RUST_LOG` is a list of
/// `target=level` or `level` directives; one that does not parse is
/// `INFO` for everything.
pub fn filter_from(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let everything = |level: LevelFilter| Targets::new().with_default(level);
    if let Some(level) = lambda_level.map(str::trim).filter(|l| !l.is_empty()) {
        let level = if level.eq_ignore_ascii_case("fatal") {
            LevelFilter::ERROR
        } else {
            level.parse().unwrap_or(LevelFilter::INFO)
        };
        return everything(level);
    }
    match rust_log.map(str::trim).filter(|l| !l.is_empty()) {
        Some(directives) => directives
            .parse()
            .unwrap_or_else(|_| everything(LevelFilter::INFO)),
        None => everything(LevelFilter::INFO),
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
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::io::stdout);
    let registry = tracing_subscriber::registry();
    match format_from(var("AWS_LAMBDA_LOG_FORMAT").as_deref()) {
        Format::Json => registry
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .init(),
        Format::Text => registry.with(fmt.without_time().with_filter(filter)).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn only_json_in_any_case_selects_json() {
        assert_eq!(format_from(Some("JSON")), Format::Json);
        assert_eq!(format_from(Some(" json ")), Format::Json);
        assert_eq!(format_from(Some("Text")), Format::Text);
        assert_eq!(format_from(Some("yaml")), Format::Text);
        assert_eq!(format_from(None), Format::Text);
    }

    /// The most detailed level `filter` lets through for `target`.
    fn level(filter: &Targets, target: &str) -> Option<Level> {
        [
            Level::TRACE,
            Level::DEBUG,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
        ]
        .into_iter()
        .find(|l| filter.would_enable(target, l))
    }

    #[test]
    fn the_lambda_level_beats_rust_log_and_fatal_is_error() {
        let t = "build_status";
        assert_eq!(
            level(&filter_from(Some("DEBUG"), Some("error")), t),
            Some(Level::DEBUG)
        );
        assert_eq!(
            level(&filter_from(Some("FATAL"), None), t),
            Some(Level::ERROR)
        );
        assert_eq!(
            level(&filter_from(Some("nonsense"), None), t),
            Some(Level::INFO)
        );
        assert_eq!(
            level(&filter_from(None, Some("warn")), t),
            Some(Level::WARN)
        );
        assert_eq!(level(&filter_from(None, None), t), Some(Level::INFO));
        assert_eq!(level(&filter_from(Some("off"), None), t), None);
    }

    #[test]
    fn rust_log_takes_target_directives_and_bad_ones_mean_info() {
        let f = filter_from(None, Some("warn,crtask_aws=debug"));
        assert_eq!(level(&f, "crtask_aws::codebuild"), Some(Level::DEBUG));
        assert_eq!(level(&f, "aws_smithy_runtime"), Some(Level::WARN));
        let bad = filter_from(None, Some("crtask_aws=loud"));
        assert_eq!(level(&bad, "crtask_aws"), Some(Level::INFO));
        assert_eq!(level(&bad, "other"), Some(Level::INFO));
    }
}
