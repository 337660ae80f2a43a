//! When a run's status change is notified, and what the notification says.
//!
//! One body for every channel: the JSON POSTed to `--notify` URLs is the
//! `detail` of the `crtask Run State Change` EventBridge event on AWS.

use crate::domain::model::{OutputImage, Run, RunStatus, RunType, Trigger};
use crate::domain::time::serde_millis;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The EventBridge `source` of crtask's run events.
pub const EVENT_SOURCE: &str = "crtask";

/// The EventBridge `detail-type` of crtask's run events.
pub const DETAIL_TYPE: &str = "crtask Run State Change";

/// The version of the body's shape; bumped only for incompatible changes.
pub const PAYLOAD_VERSION: u32 = 1;

/// Which moment of a run a notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// The run left the queue: a builder picked it up.
    #[serde(rename = "run.started")]
    Started,
    /// The run reached its final status.
    #[serde(rename = "run.finished")]
    Finished,
}

impl Phase {
    /// `run.started` or `run.finished`: the `event` field and the
    /// `X-Crtask-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Started => "run.started",
            Phase::Finished => "run.finished",
        }
    }

    /// Parses [`Phase::as_str`].
    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "run.started" => Some(Phase::Started),
            "run.finished" => Some(Phase::Finished),
            _ => None,
        }
    }
}

/// Whether a run going from `old` (`None`: not recorded before) to `new`
/// is notified, and as what. A run is notified once when it starts
/// (queued -> started or running) and once when it ends (any status ->
/// a final one). Other changes (a report repeated, step progress) are not.
/// A run canceled while queued gets only its end.
pub fn phase_of(old: Option<RunStatus>, new: RunStatus) -> Option<Phase> {
    let was_final = old.is_some_and(RunStatus::is_terminal);
    if new.is_terminal() {
        return (!was_final).then_some(Phase::Finished);
    }
    let running = |s: RunStatus| matches!(s, RunStatus::Started | RunStatus::Running);
    match old {
        _ if !running(new) => None,
        None | Some(RunStatus::Queued) => Some(Phase::Started),
        Some(_) => None,
    }
}

/// The notification of a run (JSON, camelCase). Secret values never
/// appear: it names the run, its trigger and its output, not its spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunNotification {
    pub version: u32,
    /// [`Phase`]: `run.started` or `run.finished`.
    pub event: Phase,
    /// The task, or `null` for a quick build or run.
    pub task: Option<String>,
    pub run_id: String,
    pub run_type: RunType,
    pub status: RunStatus,
    /// What started the run (`{"type": "Commit", "commit": ..., ...}`).
    pub trigger: Trigger,
    pub platform: String,
    #[serde(with = "serde_millis")]
    pub create_time: DateTime<Utc>,
    #[serde(with = "serde_millis::option", default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(with = "serde_millis::option", default)]
    pub finish_time: Option<DateTime<Utc>>,
    /// What the run pushed, with digests (empty until it finishes).
    pub output_images: Vec<OutputImage>,
    /// Why it did not succeed (inert text: control characters escaped).
    pub error: Option<String>,
}

impl RunNotification {
    /// The notification of `run` at `phase`.
    pub fn of(run: &Run, phase: Phase) -> RunNotification {
        RunNotification {
            version: PAYLOAD_VERSION,
            event: phase,
            task: run.task.clone(),
            run_id: run.run_id.clone(),
            run_type: run.run_type,
            status: run.status,
            trigger: run.trigger.clone(),
            platform: run.platform.clone(),
            create_time: run.create_time,
            start_time: run.start_time,
            finish_time: run.finish_time,
            output_images: run.output_images.clone(),
            error: run
                .error
                .as_deref()
                .map(|e| crate::domain::text::inert(e).into_owned()),
        }
    }

    /// The body as sent (compact JSON): the bytes that are signed.
    pub fn to_body(&self) -> String {
        // Serializing these plain fields cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunStatus::*;

    #[test]
    fn starts_and_ends_are_notified_once() {
        let cases = [
            (Some(Queued), Running, Some(Phase::Started)),
            (Some(Queued), Started, Some(Phase::Started)),
            (None, Running, Some(Phase::Started)),
            (Some(Started), Running, None),
            (Some(Running), Running, None),
            (Some(Running), Succeeded, Some(Phase::Finished)),
            (Some(Running), Failed, Some(Phase::Finished)),
            (Some(Queued), Canceled, Some(Phase::Finished)),
            (Some(Running), Error, Some(Phase::Finished)),
            (Some(Succeeded), Succeeded, None),
            (Some(Failed), Succeeded, None),
            (Some(Queued), Queued, None),
            (None, Queued, None),
        ];
        for (old, new, want) in cases {
            assert_eq!(phase_of(old, new), want, "{old:?} -> {new:?}");
        }
    }

    #[test]
    fn body_shape() {
        let mut run = crate::testing::run("ca7");
        run.status = Failed;
        run.error = Some("step 'b' failed\n\u{1b}[2J".into());
        run.output_images = vec![OutputImage {
            registry: "127.0.0.1:5000".into(),
            repository: "app".into(),
            tag: "ca7".into(),
            digest: "sha256:aa".into(),
            platforms: Vec::new(),
        }];
        let n = RunNotification::of(&run, Phase::Finished);
        let v: serde_json::Value = serde_json::from_str(&n.to_body()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["event"], "run.finished");
        assert_eq!(v["task"], "app");
        assert_eq!(v["runId"], "ca7");
        assert_eq!(v["runType"], "AutoRun");
        assert_eq!(v["status"], "Failed");
        assert_eq!(v["trigger"], serde_json::json!({"type": "Manual"}));
        assert_eq!(v["outputImages"][0]["digest"], "sha256:aa");
        assert_eq!(v["error"], "step 'b' failed\\n\\u{1b}[2J");
        assert!(
            v.get("spec").is_none(),
            "the spec (build args) is never sent"
        );
        let back: RunNotification = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
        assert_eq!(Phase::parse("run.started"), Some(Phase::Started));
        assert_eq!(Phase::parse("run.x"), None);
    }
}
