//! CloudWatch Logs: reading a CodeBuild build's log while it runs.
//!
//! The builder project logs to one group (the template's `BuilderLogGroup`)
//! without a stream-name prefix, so CodeBuild names each build's stream
//! after the build id's part after the colon (`<project>:<uuid>` ->
//! `<uuid>`; with a prefix it would be `<prefix>/<uuid>`). The stream holds
//! everything the build prints, CodeBuild's own phase lines included;
//! [`ExecutorWindow`] keeps only what `crtask exec` printed, the same masked
//! lines it writes to the run log the buildspec uploads to S3.

use crate::error::{describe, Error, Result};
use aws_sdk_cloudwatchlogs::Client;
use crtask_core::domain::model::RunStatus;

/// Pages read by one [`BuildLogs::next`] call at most; the returned token
/// goes on from there.
const MAX_PAGES: usize = 50;

/// The stream CodeBuild writes build `build_id`'s log to (no stream prefix
/// configured): the id's part after the colon, or the whole id without one.
/// `build_id` may be the id or the build's ARN.
pub fn stream_name(build_id: &str) -> &str {
    let build_id = crtask_core::trigger::build_status::build_id(build_id);
    build_id
        .split_once(':')
        .map(|(_, uuid)| uuid)
        .unwrap_or(build_id)
}

/// Reads builds' log streams in one log group. Cheap to clone.
#[derive(Clone)]
pub struct BuildLogs {
    client: Client,
    group: String,
    page_limit: Option<i32>,
}

impl BuildLogs {
    /// Build the client with [`crate::config::cloudwatchlogs`].
    pub fn new(client: Client, group: impl Into<String>) -> Self {
        BuildLogs {
            client,
            group: group.into(),
            page_limit: None,
        }
    }

    /// Asks for at most `limit` events a page (1 to 10,000; the service's
    /// default is as many as fit in 1 MB).
    pub fn with_page_limit(mut self, limit: i32) -> Self {
        self.page_limit = Some(limit.clamp(1, 10_000));
        self
    }

    /// The log group read.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The lines of build `build_id`'s log after `token` (from the start
    /// when `None`), oldest first, and the token to pass next time. Reads
    /// pages until CloudWatch Logs hands back the token it was given (the
    /// end of the stream for now). A stream that does not exist yet (the
    /// build has not started) gives no lines and keeps `token`. Each line is
    /// one log event's message without its line break.
    pub async fn next(
        &self,
        build_id: &str,
        token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let stream = stream_name(build_id);
        if stream.is_empty() {
            return Err(Error::Logs {
                op: "GetLogEvents",
                stream: build_id.to_string(),
                message: "the build id names no log stream".into(),
            });
        }
        let mut lines = Vec::new();
        let mut token = token;
        for _ in 0..MAX_PAGES {
            let mut req = self
                .client
                .get_log_events()
                .log_group_name(&self.group)
                .log_stream_name(stream)
                .start_from_head(true)
                .set_limit(self.page_limit);
            if let Some(t) = &token {
                req = req.next_token(t);
            }
            let out = match req.send().await {
                Ok(o) => o,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    return Ok((lines, token));
                }
                Err(e) => {
                    return Err(Error::Logs {
                        op: "GetLogEvents",
                        stream: format!("{}/{stream}", self.group),
                        message: describe(&e),
                    })
                }
            };
            lines.extend(out.events().iter().filter_map(|ev| ev.message()).map(line));
            let next = out.next_forward_token().map(str::to_string);
            if next.is_none() || next == token {
                return Ok((lines, token.or(next)));
            }
            token = next;
        }
        Ok((lines, token))
    }
}

/// A log event's message without its trailing line break.
fn line(message: &str) -> String {
    let m = message.strip_suffix('\n').unwrap_or(message);
    m.strip_suffix('\r').unwrap_or(m).to_string()
}

/// Picks `crtask exec`'s output out of a build's log lines.
///
/// The build's stream also carries CodeBuild's phase lines (`[Container]
/// ...`) and the buildspec's own commands (installing the executor, the
/// registry login, uploading the log). The window opens at the executor's
/// first line (`crtask: run <id> on ...`) and closes after its last one
/// (`crtask: run <id> <status> after ...`); inside it, CodeBuild's phase
/// lines are dropped too, should the executor stop without its last line.
/// What passes is what the executor wrote to stdout: its run log, secrets
/// masked.
#[derive(Debug, Clone)]
pub struct ExecutorWindow {
    prefix: String,
    state: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Before,
    Open,
    Closed,
}

impl ExecutorWindow {
    /// A window for run `run_id`'s executor.
    pub fn new(run_id: &str) -> Self {
        ExecutorWindow {
            prefix: format!("crtask: run {run_id} "),
            state: Window::Before,
        }
    }

    /// Whether `line` is the executor's to show (updates the window).
    pub fn accept(&mut self, line: &str) -> bool {
        match self.state {
            Window::Before => {
                let opens = line
                    .strip_prefix(&self.prefix)
                    .is_some_and(|rest| rest.starts_with("on "));
                if opens {
                    self.state = Window::Open;
                }
                opens
            }
            Window::Open => {
                if self.is_last(line) {
                    self.state = Window::Closed;
                    return true;
                }
                !line.starts_with("[Container] ")
            }
            Window::Closed => false,
        }
    }

    /// Whether the executor's last line went by.
    pub fn closed(&self) -> bool {
        self.state == Window::Closed
    }

    /// Whether the executor's first line went by.
    pub fn opened(&self) -> bool {
        self.state != Window::Before
    }

    /// `crtask: run <id> <final status> after ...`.
    fn is_last(&self, line: &str) -> bool {
        let Some(rest) = line.strip_prefix(&self.prefix) else {
            return false;
        };
        let Some((status, rest)) = rest.split_once(' ') else {
            return false;
        };
        rest.starts_with("after ") && status.parse::<RunStatus>().is_ok_and(|s| s.is_terminal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_the_build_ids_uuid() {
        assert_eq!(
            stream_name("crtask-builder:0f1e2d3c-aaaa-bbbb-cccc-123456789012"),
            "0f1e2d3c-aaaa-bbbb-cccc-123456789012"
        );
        assert_eq!(
            stream_name("arn:aws:codebuild:us-east-1:123456789012:build/crtask-builder:0f1e2d3c-aaaa-bbbb-cccc-123456789012"),
            "0f1e2d3c-aaaa-bbbb-cccc-123456789012"
        );
        assert_eq!(stream_name("no-colon"), "no-colon");
        assert_eq!(stream_name("p:"), "");
    }

    #[test]
    fn messages_lose_their_line_break_only() {
        assert_eq!(line("step 1\n"), "step 1");
        assert_eq!(line("crlf\r\n"), "crlf");
        assert_eq!(line("  indented  "), "  indented  ");
        assert_eq!(line(""), "");
    }

    #[test]
    fn window_keeps_the_executors_lines() {
        let log = [
            "[Container] 2024/05/01 10:00:00.000000 Running on CodeBuild On-demand",
            "[Container] 2024/05/01 10:00:01.000000 Entering phase INSTALL",
            "crtask 0.1.0",
            "Login Succeeded",
            "crtask: run ca1 Succeeded after 1s",
            "crtask: run ca12 on docker (linux/amd64)",
            "[Container] 2024/05/01 10:00:02.000000 Running command crtask exec",
            "crtask: run ca1 on docker (linux/amd64)",
            "Step 1/2 : FROM alpine",
            "[Container] is a step's output here",
            "crtask: run ca1 Running after a while",
            "crtask: run ca1 Succeeded after 12s",
            "[Container] 2024/05/01 10:00:14.000000 Phase complete: BUILD State: SUCCEEDED",
            "upload: run.log",
            "crtask: run ca1 on docker (linux/amd64)",
        ];
        let mut w = ExecutorWindow::new("ca1");
        assert!(!w.opened());
        let shown: Vec<&str> = log.iter().copied().filter(|l| w.accept(l)).collect();
        assert_eq!(
            shown,
            [
                "crtask: run ca1 on docker (linux/amd64)",
                "Step 1/2 : FROM alpine",
                "crtask: run ca1 Running after a while",
                "crtask: run ca1 Succeeded after 12s",
            ]
        );
        assert!(w.opened() && w.closed());
    }

    #[test]
    fn window_without_a_last_line_drops_codebuild_lines() {
        let mut w = ExecutorWindow::new("ca2");
        assert!(w.accept("crtask: run ca2 on buildah (linux/arm64)"));
        assert!(w.accept("error: cannot check out the repository"));
        assert!(
            !w.accept("[Container] 2024/05/01 10:00:03.000000 Command did not exit successfully")
        );
        assert!(w.accept("   "));
        assert!(w.opened() && !w.closed());
    }
}
