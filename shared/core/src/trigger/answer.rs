//! The one answer every trigger handler gives: what was done with a
//! delivery (an HTTP request or a Lambda event), serialized here and only
//! here.
//!
//! The HTTP adapters (the local server's routes, the Function URL
//! functions) send [`Answer::status`] with [`Answer::body`]; the EventBridge
//! functions return the body as the invocation's result. The body's names
//! are the ones docs/API.md documents:
//!
//! ```json
//! {"outcome": "triggered", "reason": "started ca1 for task web", "runs": ["ca1"], "event": "ev12"}
//! {"outcome": "rejected", "reason": "...", "error": "...", "runs": []}
//! ```

use crate::domain::model::{EventRecord, Outcome, RunStatus};
use serde::Serialize;
use serde_json::Value;

/// What a handler did with one delivery, beyond the [`Outcome`]s it records
/// as events: a build-status event updates a run; a batch of registry
/// events is recorded one event per tag; a poll tick polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", untagged)]
pub enum Verdict {
    /// The outcome of one recorded event (or of a rejection).
    Event(Outcome),
    /// Other verdicts, written as they are.
    Other(OtherVerdict),
}

/// Verdicts that are not event outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OtherVerdict {
    /// A builder's state change moved a run.
    Updated,
    /// Several events were recorded, each with its own outcome (`events`).
    Recorded,
    /// A poll tick ran.
    Polled,
    /// A continuous-patching tick ran (`runs`: the patch runs it queued).
    Patched,
}

impl From<Outcome> for Verdict {
    fn from(o: Outcome) -> Self {
        Verdict::Event(o)
    }
}

impl From<OtherVerdict> for Verdict {
    fn from(o: OtherVerdict) -> Self {
        Verdict::Other(o)
    }
}

/// One recorded event, as an answer lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSummary {
    pub id: String,
    pub outcome: Outcome,
    pub reason: String,
}

impl From<&EventRecord> for EventSummary {
    fn from(e: &EventRecord) -> Self {
        EventSummary {
            id: e.id.clone(),
            outcome: e.outcome,
            reason: e.reason.clone(),
        }
    }
}

/// The answer to one delivery. Build it with [`Answer::new`] or
/// [`Answer::rejected`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// The HTTP status (202 accepted, 4xx refused, 5xx the store failed);
    /// not part of the body.
    #[serde(skip)]
    pub status: u16,
    pub outcome: Verdict,
    /// Why, for people: the same text the event record keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The reason again on refusals, under the name every error answer of
    /// the API uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The runs the delivery started, or that already stood for it.
    pub runs: Vec<String>,
    /// The event recorded for the delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The events recorded, when one delivery held several updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventSummary>>,
    /// A redelivery: the answer repeats what the first delivery did.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// The run a builder's state change is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// That run's status after the change.
    #[serde(rename = "status", skip_serializing_if = "Option::is_none")]
    pub run_status: Option<RunStatus>,
    /// Runs a finished run started (base-image cascades).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascaded: Option<Vec<String>>,
    /// Registry requests a poll tick made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Queued runs a tick handed to the builder because their dispatcher
    /// never did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Vec<String>>,
}

impl Answer {
    /// An accepted delivery (202).
    pub fn new(outcome: impl Into<Verdict>, reason: impl Into<String>) -> Self {
        Answer {
            status: 202,
            outcome: outcome.into(),
            reason: Some(reason.into()),
            error: None,
            runs: Vec::new(),
            event: None,
            events: None,
            duplicate: false,
            run: None,
            run_status: None,
            cascaded: None,
            requests: None,
            resumed: None,
        }
    }

    /// A refused delivery (4xx), or one the store could not record (5xx):
    /// `outcome: rejected` with the reason as `reason` and `error`.
    pub fn rejected(status: u16, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Answer {
            status,
            error: Some(reason.clone()),
            ..Answer::new(Outcome::Rejected, reason)
        }
    }

    pub fn with_runs(mut self, runs: Vec<String>) -> Self {
        self.runs = runs;
        self
    }

    pub fn with_event(mut self, id: impl Into<String>) -> Self {
        self.event = Some(id.into());
        self
    }

    pub fn with_events(mut self, events: Vec<EventSummary>) -> Self {
        self.events = Some(events);
        self
    }

    /// Marks a redelivery.
    pub fn duplicate(mut self) -> Self {
        self.duplicate = true;
        self
    }

    /// The body, as every adapter sends it.
    pub fn body(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| {
            // Only plain strings, numbers and lists: this cannot fail.
            serde_json::json!({"outcome": "rejected", "error": e.to_string(), "runs": []})
        })
    }

    /// True for a 5xx answer (the store or a service failed).
    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_use_the_documented_names() {
        let a = Answer::new(Outcome::Triggered, "started ca1 for task web")
            .with_runs(vec!["ca1".into()])
            .with_event("ev3");
        assert_eq!(a.status, 202);
        assert_eq!(
            a.body(),
            json!({"outcome": "triggered", "reason": "started ca1 for task web", "runs": ["ca1"], "event": "ev3"})
        );
        let r = Answer::rejected(401, "bad signature");
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body(),
            json!({"outcome": "rejected", "reason": "bad signature", "error": "bad signature", "runs": []})
        );
        let d = Answer::new(Outcome::Triggered, "x").duplicate();
        assert_eq!(d.body()["duplicate"], true);
        let mut u = Answer::new(OtherVerdict::Updated, "");
        u.reason = None;
        u.run = Some("ca1".into());
        u.run_status = Some(RunStatus::Succeeded);
        u.cascaded = Some(vec![]);
        assert_eq!(
            u.body(),
            json!({"outcome": "updated", "runs": [], "run": "ca1", "status": "Succeeded", "cascaded": []})
        );
        let e = Answer::new(OtherVerdict::Recorded, "").with_events(vec![EventSummary {
            id: "ev1".into(),
            outcome: Outcome::Duplicate,
            reason: "already".into(),
        }]);
        assert_eq!(e.body()["events"][0]["outcome"], "duplicate");
    }
}
