//! The git webhook handler ([`handle`]) end to end on the in-memory store:
//! a signed push records one run and dispatches it, a redelivery is a
//! duplicate, a push nobody tracks is ignored, and a bad signature records
//! nothing but the rejection. The answers are snapshots (tests/snapshots).

use crtask_core::domain::model::{EventSource, Outcome, RunFilter, RunStatus, Trigger};
use crtask_core::ports::{Clock, Store};
use crtask_core::signing::Secret;
use crtask_core::trigger::answer::Answer;
use crtask_core::trigger::git::handler::{handle, GitHookDeps, DEFAULT_BODY_LIMIT};
use crtask_testkit::{sign, task, FixedClock, GithubPush, MemoryStore, RecordingBuilder};
use serde_json::json;

const SECRET: &str = "It's a Secret to Everybody";
const REPO_URL: &str = "https://github.com/acme/app.git";
const COMMIT: &str = "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f";

struct Hook {
    store: MemoryStore,
    builder: RecordingBuilder,
    clock: FixedClock,
    secrets: Vec<Secret>,
}

impl Hook {
    /// Task `web` tracking `main` of [`REPO_URL`] (the kit's default task).
    async fn new() -> Self {
        let store = MemoryStore::new();
        store.create_task(&task("web")).await.unwrap();
        Hook {
            store,
            builder: RecordingBuilder::new(),
            clock: FixedClock::at("2026-11-27T08:00:00Z"),
            secrets: vec![Secret::new("retired-secret"), Secret::new(SECRET)],
        }
    }

    async fn deliver(&self, headers: &[(String, String)], body: &[u8]) -> Answer {
        let deps = GitHookDeps {
            store: &self.store,
            builder: &self.builder,
            clock: &self.clock,
            secrets: &self.secrets,
            body_limit: DEFAULT_BODY_LIMIT,
        };
        handle(&deps, headers, body).await
    }

    /// A push delivery `delivery` of `push`, signed with `secret`.
    async fn push(&self, delivery: &str, push: &GithubPush, secret: &str) -> Answer {
        let body = push.body();
        self.deliver(
            &sign::github_headers("push", delivery, secret, &body),
            &body,
        )
        .await
    }

    async fn runs(&self) -> Vec<crtask_core::domain::model::Run> {
        self.store.list_runs(&RunFilter::default()).await.unwrap()
    }

    /// (outcome, reason, runs) of every git event, oldest first.
    async fn events(&self) -> Vec<(Outcome, Option<String>, Vec<String>)> {
        let mut events = self
            .store
            .list_events(Some(EventSource::Git), 100)
            .await
            .unwrap();
        events.reverse();
        events
            .into_iter()
            .map(|e| (e.outcome, e.delivery_id, e.runs))
            .collect()
    }
}

fn main_push() -> GithubPush {
    GithubPush::new(REPO_URL, "main", COMMIT)
}

fn snapshot(a: &Answer) -> serde_json::Value {
    json!({"status": a.status, "body": a.body()})
}

#[tokio::test]
async fn a_signed_push_records_one_run_and_dispatches_it() {
    let h = Hook::new().await;
    let a = h.push("d-1", &main_push(), SECRET).await;
    insta::assert_json_snapshot!("git_build", snapshot(&a));

    let runs = h.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run.run_id, "ca1");
    assert_eq!(run.task.as_deref(), Some("web"));
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.create_time, h.clock.now());
    assert_eq!(
        run.dedupe_key.as_deref(),
        Some(&*format!("commit:web@{COMMIT}"))
    );
    assert_eq!(
        run.trigger,
        Trigger::Commit {
            commit: COMMIT.into(),
            branch: "main".into(),
            repository: REPO_URL.into(),
        }
    );
    assert_eq!(h.builder.dispatched(), ["ca1"]);
    assert_eq!(
        h.events().await,
        [(Outcome::Triggered, Some("d-1".into()), vec!["ca1".into()])]
    );
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_starts_nothing() {
    let h = Hook::new().await;
    let first = h.push("d-1", &main_push(), SECRET).await;
    assert_eq!(first.status, 202, "{}", first.body());
    h.clock.advance_secs(60);

    let again = h.push("d-1", &main_push(), SECRET).await;
    assert_eq!(again.status, 202, "{}", again.body());
    assert_eq!(again.body()["duplicate"], true, "{}", again.body());
    assert_eq!(again.body()["outcome"], "triggered", "{}", again.body());
    assert_eq!(again.body()["runs"], json!(["ca1"]));
    assert_eq!(again.body()["event"], "ev1");

    // Another delivery of the same commit: the run is already queued.
    let other = h.push("d-2", &main_push(), SECRET).await;
    assert_eq!(other.body()["outcome"], "duplicate", "{}", other.body());
    assert_eq!(other.body()["runs"], json!(["ca1"]));

    assert_eq!(h.runs().await.len(), 1);
    assert_eq!(h.builder.dispatched(), ["ca1"]);
    assert_eq!(
        h.events().await,
        [
            // The redelivery of d-1 wrote nothing: one row per delivery id.
            (Outcome::Triggered, Some("d-1".into()), vec!["ca1".into()]),
            (Outcome::Duplicate, Some("d-2".into()), vec!["ca1".into()]),
        ]
    );
}

/// 20 copies of one delivery at once: one event row, one run, one dispatch,
/// and the same answer (run and event) to every copy.
#[tokio::test]
async fn concurrent_copies_of_a_delivery_record_it_once() {
    let h = Hook::new().await;
    let push = main_push();
    let copies =
        futures_util::future::join_all((0..20).map(|_| h.push("d-1", &push, SECRET))).await;
    for a in &copies {
        assert_eq!(a.status, 202, "{}", a.body());
        assert_eq!(a.body()["outcome"], "triggered", "{}", a.body());
        assert_eq!(a.body()["runs"], json!(["ca1"]), "{}", a.body());
        assert_eq!(a.body()["event"], "ev1", "{}", a.body());
    }
    assert_eq!(
        copies
            .iter()
            .filter(|a| a.body()["duplicate"] == true)
            .count(),
        19
    );
    assert_eq!(h.runs().await.len(), 1);
    assert_eq!(h.builder.dispatched(), ["ca1"]);
    assert_eq!(
        h.events().await,
        [(Outcome::Triggered, Some("d-1".into()), vec!["ca1".into()])]
    );
}

#[tokio::test]
async fn a_push_to_an_untracked_branch_is_ignored() {
    let h = Hook::new().await;
    let a = h
        .push("d-1", &main_push().git_ref("refs/heads/dev"), SECRET)
        .await;
    insta::assert_json_snapshot!("git_ignore", snapshot(&a));
    assert!(h.runs().await.is_empty());
    assert!(h.builder.dispatched().is_empty());
    assert_eq!(
        h.events().await,
        [(Outcome::Ignored, Some("d-1".into()), vec![])]
    );
}

#[tokio::test]
async fn a_bad_signature_is_401_and_records_only_the_rejection() {
    let h = Hook::new().await;
    let a = h.push("d-1", &main_push(), "not-the-secret").await;
    insta::assert_json_snapshot!("git_reject", snapshot(&a));
    assert!(h.runs().await.is_empty());
    assert!(h.builder.dispatched().is_empty());
    // Rejections carry no delivery id: a forged delivery cannot make the
    // genuine one with its id look like a redelivery.
    assert_eq!(h.events().await, [(Outcome::Rejected, None, vec![])]);
    let genuine = h.push("d-1", &main_push(), SECRET).await;
    assert_eq!(genuine.body()["outcome"], "triggered", "{}", genuine.body());
}
