//! Retention (`--retention-days`): old events, finished runs and their logs
//! are pruned on a fixed clock; each task's latest run, and runs still
//! queued or running, are kept; the SQLite file gives the space back; the
//! memory store prunes the same records as SQLite.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crtask_core::domain::model::{EventRecord, EventSource, Outcome, Run, RunStatus};
use crtask_core::ports::{Clock, Store};
use crtask_core::run::retention::Retention;
use crtask_executor::logs::LogDir;
use crtask_local::retention::{prune_once, start};
use crtask_local::store::SqliteStore;
use crtask_testkit::clock::FixedClock;
use crtask_testkit::{MemoryStore, RunBuilder};

const NOW: &str = "2026-06-01T12:00:00Z";

fn at(days_ago: i64) -> DateTime<Utc> {
    crtask_testkit::clock::at(NOW) - Duration::days(days_ago)
}

fn event(id: &str, days_ago: i64) -> EventRecord {
    EventRecord {
        id: id.into(),
        source: EventSource::Git,
        delivery_id: Some(format!("d-{id}")),
        received_at: at(days_ago),
        outcome: Outcome::Ignored,
        reason: "x".repeat(400),
        runs: Vec::new(),
        detail: serde_json::json!({"pad": "y".repeat(400)}),
    }
}

fn run(id: &str, task: Option<&str>, status: RunStatus, finished_days_ago: Option<i64>) -> Run {
    RunBuilder::new(id)
        .task(task)
        .status(status)
        .created(at(finished_days_ago.unwrap_or(0) + 1))
        .with(|r| r.finish_time = finished_days_ago.map(at))
        .build()
}

/// The same history in any store: returns the run ids expected to go.
async fn seed(s: &dyn Store) -> Vec<&'static str> {
    for (id, days) in [("ev1", 200), ("ev2", 91), ("ev3", 89), ("ev4", 0)] {
        s.record_event(&event(id, days)).await.unwrap();
    }
    let runs = [
        // task web: two old finished runs go; its latest (also old) stays.
        run("ca1", Some("web"), RunStatus::Succeeded, Some(300)),
        run("ca2", Some("web"), RunStatus::Failed, Some(120)),
        run("ca3", Some("web"), RunStatus::Succeeded, Some(100)),
        // task api: an old run goes, a recent one stays, a queued one stays.
        run("ca4", Some("api"), RunStatus::Canceled, Some(95)),
        run("ca5", Some("api"), RunStatus::Succeeded, Some(10)),
        run("ca6", Some("api"), RunStatus::Running, None),
        run("ca7", Some("api"), RunStatus::Queued, None),
        // quick builds (no task): by age alone.
        run("ca8", None, RunStatus::Timeout, Some(91)),
        run("ca9", None, RunStatus::Error, Some(89)),
    ];
    for r in &runs {
        s.insert_run(r).await.unwrap();
    }
    vec!["ca1", "ca2", "ca4", "ca8"]
}

async fn remaining(s: &dyn Store) -> (Vec<String>, Vec<String>) {
    let events = s.list_events(None, 100).await.unwrap();
    let mut ev: Vec<String> = events.into_iter().map(|e| e.id).collect();
    ev.sort();
    let runs = s.list_runs(&Default::default()).await.unwrap();
    let mut rs: Vec<String> = runs.into_iter().map(|r| r.run_id).collect();
    rs.sort();
    (ev, rs)
}

#[tokio::test]
async fn old_events_runs_and_logs_go_latest_and_unfinished_runs_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("crtask.db")).unwrap();
    let logs = LogDir::new(dir.path().join("logs")).unwrap();
    let gone = seed(&store).await;
    for id in ["ca1", "ca2", "ca3", "ca4", "ca5", "ca8", "ca9"] {
        std::fs::write(logs.path(id), "log\n").unwrap();
    }
    let clock = FixedClock::at(NOW);

    let pruned = prune_once(&store, &clock, &logs, Retention::days(90))
        .await
        .unwrap();
    assert_eq!(pruned.events, 2);
    assert_eq!(pruned.runs, gone);
    let (events, runs) = remaining(&store).await;
    assert_eq!(events, ["ev3", "ev4"]);
    assert_eq!(runs, ["ca3", "ca5", "ca6", "ca7", "ca9"]);
    for id in gone {
        assert!(!logs.path(id).exists(), "log of {id} kept");
    }
    for id in ["ca3", "ca5", "ca9"] {
        assert!(logs.path(id).exists(), "log of {id} deleted");
    }

    // A second prune at the same time finds nothing more.
    let again = prune_once(&store, &clock, &logs, Retention::days(90))
        .await
        .unwrap();
    assert_eq!((again.events, again.runs.len()), (0, 0));

    // A hundred days on, the rest of the finished history goes; each
    // task's latest run (web: ca3, api: the queued ca7) and the unfinished
    // runs stay.
    clock.advance(Duration::days(100));
    let later = prune_once(&store, &clock, &logs, Retention::days(90))
        .await
        .unwrap();
    assert_eq!(
        (later.events, later.runs),
        (2, vec!["ca5".into(), "ca9".into()])
    );
    let (events, runs) = remaining(&store).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(runs, ["ca3", "ca6", "ca7"]);
}

#[tokio::test]
async fn zero_days_keeps_everything() {
    let store = SqliteStore::in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let logs = LogDir::new(dir.path().to_path_buf()).unwrap();
    seed(&store).await;
    let clock = FixedClock::at("2099-01-01T00:00:00Z");
    let pruned = prune_once(&store, &clock, &logs, Retention::days(0))
        .await
        .unwrap();
    assert_eq!((pruned.events, pruned.runs.len()), (0, 0));
    assert_eq!(remaining(&store).await.1.len(), 9);
    assert!(start(
        Arc::new(store),
        Arc::new(clock),
        logs,
        Retention::days(0),
        std::time::Duration::from_secs(1)
    )
    .is_none());
}

#[tokio::test]
async fn the_memory_store_prunes_what_sqlite_prunes() {
    let sqlite = SqliteStore::in_memory().unwrap();
    let memory = MemoryStore::new();
    seed(&sqlite).await;
    seed(&memory).await;
    // On the millisecond boundary too: an event received exactly at the
    // cutoff is kept by both.
    sqlite.record_event(&event("ev9", 90)).await.unwrap();
    memory.record_event(&event("ev9", 90)).await.unwrap();
    for days in [0, 95, 200, 400] {
        let cutoff = at(90) + Duration::days(days);
        let a = sqlite.prune_before(cutoff).await.unwrap();
        let b = memory.prune_before(cutoff).await.unwrap();
        assert_eq!(a, b, "cutoff {cutoff}");
        assert_eq!(remaining(&sqlite).await, remaining(&memory).await);
    }
}

#[tokio::test]
async fn the_database_file_shrinks_after_a_prune() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crtask.db");
    let store = SqliteStore::open(&path).unwrap();
    for i in 0..3000 {
        store
            .record_event(&event(&format!("ev{i}"), 200))
            .await
            .unwrap();
    }
    let (full, _) = store.page_counts().unwrap();
    let pruned = store.prune_before(at(90)).await.unwrap();
    assert_eq!(pruned.events, 3000);
    let (pages, free) = store.page_counts().unwrap();
    assert!(pages * 4 < full, "{pages} pages left of {full}");
    assert_eq!(free, 0, "free pages not given back");
}

#[tokio::test]
async fn a_database_made_without_auto_vacuum_is_converted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, 0);
    }
    let store = SqliteStore::open(&path).unwrap();
    let mode: i64 = store
        .with_sync(|c| Ok(c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode, 2, "incremental auto-vacuum");
}

/// The pruner of `crtask serve` runs again every interval: a run that
/// ages past the cutoff on the (fast-forwarded) store clock goes at the
/// next wake-up. The interval is shortened so the test takes no real hour.
#[tokio::test]
async fn the_pruner_runs_periodically() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let logs = LogDir::new(dir.path().to_path_buf()).unwrap();
    std::fs::write(logs.path("ca1"), "log\n").unwrap();
    let clock = Arc::new(FixedClock::at(NOW));
    store
        .insert_run(&run("ca1", None, RunStatus::Succeeded, Some(80)))
        .await
        .unwrap();
    let handle = start(
        store.clone(),
        clock.clone() as Arc<dyn Clock>,
        logs.clone(),
        Retention::days(90),
        std::time::Duration::from_millis(20),
    )
    .unwrap();
    // Several rounds pass and the 80-day-old run stays.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(store.get_run("ca1").await.unwrap().is_some());
    clock.advance(Duration::days(11));
    let mut gone = false;
    for _ in 0..250 {
        if store.get_run("ca1").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    handle.abort();
    assert!(gone, "the run was not pruned after it aged past the cutoff");
    assert!(!logs.path("ca1").exists(), "its log was kept");
}
