//! Helpers for this crate's unit tests (integration tests use
//! `crtask-testkit`, which cannot serve unit tests: it links its own build
//! of this crate).

use crate::domain::cron::Cron;
use crate::domain::model::{BaseImageTriggerType, Task, TimerTrigger, DEFAULT_TASK_TIMEOUT};
use chrono::{DateTime, Duration, Utc};

/// An RFC 3339 time.
pub(crate) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
}

/// A valid cron.
pub(crate) fn cron(s: &str) -> Cron {
    Cron::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub(crate) fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

/// Task `app` (no context, commit and runtime base-image triggers on) with
/// timers `(name, cron, enabled)`.
pub(crate) fn task_with_timers(timers: &[(&str, &str, bool)]) -> Task {
    Task {
        name: "app".into(),
        context: "/dev/null".into(),
        file: "Dockerfile".into(),
        images: Vec::new(),
        branch: None,
        commit_trigger_enabled: true,
        pull_request_trigger_enabled: false,
        tag_trigger_enabled: false,
        pull_request_push_enabled: false,
        base_image_trigger_enabled: true,
        base_image_trigger_type: BaseImageTriggerType::Runtime,
        timers: timers
            .iter()
            .map(|(n, s, e)| TimerTrigger {
                name: n.to_string(),
                schedule: s.to_string(),
                enabled: *e,
            })
            .collect(),
        build_args: Vec::new(),
        values: Default::default(),
        path_filters: Vec::new(),
        target: None,
        platform: None,
        push: true,
        timeout: DEFAULT_TASK_TIMEOUT,
        git_access_token: None,
        identity: None,
        create_time: DateTime::UNIX_EPOCH,
        notify: Vec::new(),
    }
}

/// A `Queued` manual run `run_id` of task `app` (no context).
pub(crate) fn run(run_id: &str) -> crate::domain::model::Run {
    serde_json::from_value(serde_json::json!({
        "runId": run_id,
        "task": "app",
        "runType": "AutoRun",
        "status": "Queued",
        "trigger": {"type": "Manual"},
        "platform": "linux/amd64",
        "createTime": "2026-12-01T10:00:00.000Z",
        "error": null,
        "spec": {"context": {"kind": "none"}, "file": "Dockerfile", "images": [],
                 "push": true, "timeout": 3600},
    }))
    .unwrap_or_else(|e| panic!("test run: {e}"))
}
