//! Exactly-once intake on the SQLite store, through core's git handler:
//! concurrent copies of one delivery (one event row, one run, one answer),
//! many distinct deliveries at once (group commit: each answered, each
//! durable across a reopen), one failing delivery in a batch leaving the
//! others recorded, and every change to the tasks (by this store or another
//! process on the file) seen by the next delivery's decision.

use crtask_core::domain::model::{EventSource, Outcome, RunFilter};
use crtask_core::ports::{DeliveryRecorded, DeliverySummary, DeliveryWrite, Store, Summarize};
use crtask_core::signing::Secret;
use crtask_core::trigger::answer::Answer;
use crtask_core::trigger::git::handler::{handle, GitHookDeps, DEFAULT_BODY_LIMIT};
use crtask_local::store::SqliteStore;
use crtask_testkit::{
    sign, task, FixedClock, GithubPush, RecordingBuilder, RunBuilder, TaskBuilder,
};
use std::sync::Arc;

const SECRET: &str = "intake-secret";
const REPO_URL: &str = "https://github.com/acme/app.git";

struct Hook {
    store: SqliteStore,
    builder: RecordingBuilder,
    clock: FixedClock,
    secrets: Vec<Secret>,
}

impl Hook {
    async fn deliver(&self, delivery: &str, commit: &str) -> Answer {
        let body = GithubPush::new(REPO_URL, "main", commit).body();
        let headers = sign::github_headers("push", delivery, SECRET, &body);
        let deps = GitHookDeps {
            store: &self.store,
            builder: &self.builder,
            clock: &self.clock,
            secrets: &self.secrets,
            body_limit: DEFAULT_BODY_LIMIT,
        };
        handle(&deps, &headers, &body).await
    }
}

async fn hook(store: SqliteStore) -> Arc<Hook> {
    store.create_task(&task("web")).await.unwrap();
    Arc::new(Hook {
        store,
        builder: RecordingBuilder::new(),
        clock: FixedClock::at("2026-11-27T08:00:00Z"),
        secrets: vec![Secret::new(SECRET)],
    })
}

fn commit(i: usize) -> String {
    format!("{:040x}", i + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_copies_of_a_delivery_give_one_row_and_one_answer() {
    let dir = tempfile::tempdir().unwrap();
    let h = hook(SqliteStore::open(&dir.path().join("crtask.db")).unwrap()).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.deliver("d-1", &commit(1)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    for a in &answers {
        assert_eq!(a.status, 202, "{}", a.body());
        assert_eq!(a.body()["outcome"], "triggered", "{}", a.body());
        assert_eq!(a.body()["runs"], serde_json::json!(["ca1"]), "{}", a.body());
        assert_eq!(a.body()["event"], "ev1", "{}", a.body());
    }
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.body()["duplicate"] == true)
            .count(),
        19
    );
    let events = h
        .store
        .list_events(Some(EventSource::Git), 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        h.store
            .list_runs(&RunFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(h.builder.dispatched(), ["ca1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distinct_deliveries_at_once_are_each_recorded_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crtask.db");
    let h = hook(SqliteStore::open(&path).unwrap()).await;
    // 100 deliveries of 10 commits: 10 runs, 90 duplicates by dedupe key.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.deliver(&format!("d-{i}"), &commit(i % 10)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|a| a.status == 202));
    let triggered = answers
        .iter()
        .filter(|a| a.body()["outcome"] == "triggered")
        .count();
    assert_eq!(triggered, 10);
    let mut event_ids: Vec<String> = answers
        .iter()
        .map(|a| a.body()["event"].as_str().unwrap().to_string())
        .collect();
    event_ids.sort();
    event_ids.dedup();
    assert_eq!(event_ids.len(), 100, "one event per delivery");
    let dispatched = h.builder.dispatched();
    drop(h);

    // Another connection (a restart) sees every acknowledged delivery.
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.list_events(None, 1000).await.unwrap().len(), 100);
    let runs = again.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 10);
    let mut ids: Vec<String> = runs.into_iter().map(|r| r.run_id).collect();
    ids.sort();
    let mut dispatched = dispatched;
    dispatched.sort();
    assert_eq!(ids, dispatched, "every recorded run was dispatched once");
    for i in 0..100 {
        assert!(again
            .find_delivery(EventSource::Git, &format!("d-{i}"))
            .await
            .unwrap()
            .is_some());
    }
}

fn summarize() -> Summarize {
    Arc::new(|runs, _| DeliverySummary {
        outcome: Outcome::Triggered,
        reason: "test".into(),
        runs: runs.iter().map(|r| r.run_id.clone()).collect(),
    })
}

fn write(delivery: &str, runs: usize) -> DeliveryWrite {
    DeliveryWrite {
        source: EventSource::Git,
        delivery_id: Some(delivery.into()),
        received_at: chrono::Utc::now(),
        detail: serde_json::json!({}),
        runs: (0..runs)
            .map(|_| RunBuilder::new("").task(Some("web")).build())
            .collect(),
    }
}

/// A delivery that cannot be recorded (its run id is taken, as by a run
/// inserted outside the counter) fails alone; the deliveries sharing its
/// commit are recorded, and it leaves no event and no counter behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_delivery_fails_alone_in_its_batch() {
    let s = SqliteStore::in_memory().unwrap();
    s.insert_run(&RunBuilder::new("ca1").task(Some("web")).build())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let s = s.clone();
        // The first writes a run (id ca1: taken); the others none.
        let w = write(&format!("b-{i}"), usize::from(i == 0));
        tasks.push(tokio::spawn(async move {
            s.record_delivery(w, summarize()).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert!(results[0].is_err(), "{:?}", results[0]);
    for r in &results[1..] {
        assert!(matches!(r, Ok(DeliveryRecorded::New { .. })), "{r:?}");
    }
    assert!(s
        .find_delivery(EventSource::Git, "b-0")
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.list_events(None, 100).await.unwrap().len(), 29);
    // The failed delivery's run-id claim was rolled back with it.
    assert_eq!(s.next_run_id().await.unwrap(), "ca1");
}

/// The intake writer does not checkpoint inside its commits (a checkpoint
/// there would hold every delivery of the batch); a thread of its own does,
/// so the database file takes the deliveries' pages while the server runs
/// (the WAL does not grow without bound). 40 deliveries stay far below
/// SQLite's automatic threshold (1,000 pages), so only that thread can have
/// copied them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_intake_checkpoints_off_the_commit_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crtask.db");
    let s = SqliteStore::open(&path).unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    for i in 0..40 {
        let w = write(&format!("c-{i}"), 0);
        assert!(matches!(
            s.record_delivery(w, summarize()).await,
            Ok(DeliveryRecorded::New { .. })
        ));
    }
    let mut grew = false;
    for _ in 0..100 {
        if size() > before {
            grew = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(grew, "no checkpoint copied the WAL into {}", path.display());
    assert_eq!(s.list_events(None, 100).await.unwrap().len(), 40);
}

/// The intake writer decides deliveries against tasks it keeps between
/// batches; a change to the tasks, through the store or straight into the
/// file by another process, is seen by the very next delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_delivery_sees_every_task_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crtask.db");
    let h = hook(SqliteStore::open(&path).unwrap()).await;
    let outcome = |a: &Answer| {
        (
            a.status,
            a.body()["outcome"].clone(),
            a.body()["runs"].clone(),
        )
    };
    let triggered = |runs: serde_json::Value| (202, serde_json::json!("triggered"), runs);
    let ignored = (202, serde_json::json!("ignored"), serde_json::json!([]));

    let a = h.deliver("t-1", &commit(1)).await;
    assert_eq!(
        outcome(&a),
        triggered(serde_json::json!(["ca1"])),
        "{}",
        a.body()
    );
    // The task now tracks another branch: main's pushes are ignored.
    h.store
        .update_task(&TaskBuilder::new("web").branch("release").build())
        .await
        .unwrap();
    let a = h.deliver("t-2", &commit(2)).await;
    assert_eq!(outcome(&a), ignored, "{}", a.body());
    h.store.delete_task("web").await.unwrap();
    let a = h.deliver("t-3", &commit(3)).await;
    assert_eq!(outcome(&a), ignored, "{}", a.body());
    assert!(
        a.body()["reason"]
            .as_str()
            .unwrap()
            .contains("no task tracks"),
        "{}",
        a.body()
    );
    // Another process adds a task tracking the repository.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute(
            "INSERT INTO tasks (name, body) VALUES ('api', ?1)",
            [serde_json::to_string(&task("api")).unwrap()],
        )
        .unwrap();
    let a = h.deliver("t-4", &commit(4)).await;
    assert_eq!(
        outcome(&a),
        triggered(serde_json::json!(["ca2"])),
        "{}",
        a.body()
    );
    assert_eq!(h.builder.dispatched(), ["ca1", "ca2"]);
}
