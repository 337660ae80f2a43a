//! `crtask_testkit::MemoryStore` answers as the SQLite store does: one
//! script of store calls runs against both and every answer is compared.
//! (The one documented difference, a second `insert_run` of one run id, is
//! left out: SQLite fails with a database error, the memory store with a
//! conflict as DynamoDB does.)

use chrono::Duration;
use crtask_core::domain::model::{
    BaseDependency, EventRecord, EventSource, Outcome, RunFilter, RunStatus,
};
use crtask_core::ports::{DeliverySummary, DeliveryWrite, Store, Summarize};
use crtask_local::store::SqliteStore;
use crtask_testkit::clock::{millis, DEFAULT_TIME_MS};
use crtask_testkit::{MemoryStore, RunBuilder, TaskBuilder};
use std::sync::Arc;

fn event(id: &str, source: EventSource, delivery: Option<&str>, outcome: Outcome) -> EventRecord {
    EventRecord {
        id: id.into(),
        source,
        delivery_id: delivery.map(str::to_string),
        // Sub-millisecond digits: both stores keep milliseconds.
        received_at: millis(DEFAULT_TIME_MS) + Duration::microseconds(1_234_567),
        outcome,
        reason: format!("{outcome:?}"),
        runs: Vec::new(),
        detail: serde_json::json!({"n": id}),
    }
}

fn dep(image: &str, digest: Option<&str>) -> BaseDependency {
    BaseDependency {
        image: image.into(),
        digest: digest.map(str::to_string),
        runtime: true,
    }
}

/// Every call's answer, as text.
async fn script(s: &dyn Store) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    macro_rules! say {
        ($e:expr) => {
            out.push(format!("{}: {:?}", stringify!($e), $e))
        };
    }
    // Tasks: conflicts, missing updates, name order, deletion.
    let web = TaskBuilder::new("web")
        .created(millis(DEFAULT_TIME_MS) + Duration::microseconds(5))
        .build();
    say!(s.create_task(&TaskBuilder::new("zeta").build()).await);
    say!(s.create_task(&web).await);
    say!(s.create_task(&web).await);
    say!(s.update_task(&TaskBuilder::new("nope").build()).await);
    say!(
        s.update_task(&TaskBuilder::new("web").branch("dev").build())
            .await
    );
    say!(s.list_tasks().await);
    say!(s.get_task("web").await);
    say!(s.get_task("nope").await);

    // Run ids, one at a time and in batches.
    say!(s.next_run_id().await);
    say!(s.next_run_ids(3).await);
    say!(s.next_run_id().await);

    // Runs, dedupe keys, statuses.
    let run = |id: &str, task: &str, status: RunStatus, key: Option<&str>| {
        RunBuilder::new(id)
            .task(Some(task))
            .status(status)
            .dedupe(key)
            .created(millis(DEFAULT_TIME_MS) + Duration::microseconds(999))
            .build()
    };
    use RunStatus::*;
    for (id, task, status) in [
        ("ca1", "web", Succeeded),
        ("ca10", "web", Queued),
        ("ca9", "zeta", Running),
        ("x-1", "zeta", Succeeded),
    ] {
        say!(s.insert_run(&run(id, task, status, None)).await);
    }
    // ca3 is blocked by ca2 until ca2 fails.
    for (id, status) in [
        ("ca2", Queued),
        ("ca3", Queued),
        ("ca2", Failed),
        ("ca3", Queued),
    ] {
        let r = run(id, "web", status, Some("k1"));
        match status {
            Failed => say!(s.update_run(&r).await),
            _ => say!(s.insert_run_deduped(&r).await),
        }
    }
    say!(
        s.insert_runs_deduped(&[
            run("ca4", "web", Queued, Some("k2")),
            run("ca5", "web", Queued, Some("k1")),
            run("ca6", "zeta", Succeeded, Some("k2")),
            run("ca7", "zeta", Canceled, Some("k3")),
        ])
        .await
    );
    say!(
        s.update_run(&run("ca99", "web", RunStatus::Queued, None))
            .await
    );
    say!(s.get_run("ca3").await);
    say!(s.get_run("ca99").await);
    for filter in [
        RunFilter::default(),
        RunFilter {
            task: Some("web".into()),
            ..Default::default()
        },
        RunFilter {
            status: Some(RunStatus::Queued),
            top: Some(2),
            ..Default::default()
        },
        RunFilter {
            task: Some("zeta".into()),
            status: Some(RunStatus::Succeeded),
            top: None,
        },
    ] {
        let ids: Vec<String> = s
            .list_runs(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        say!((&filter, ids));
    }
    say!(
        s.runs_in_status(&[RunStatus::Running, RunStatus::Queued])
            .await
    );
    let mut last = s
        .last_succeeded_runs(&["web".into(), "zeta".into(), "none".into()])
        .await
        .unwrap();
    last.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    say!(last);

    // Events: replaced by id in place, deliveries by their first event.
    say!(s.next_event_id().await);
    say!(s.next_event_id().await);
    for e in [
        event("ev1", EventSource::Git, Some("d-1"), Outcome::Triggered),
        event("ev2", EventSource::Registry, None, Outcome::Ignored),
        event("ev3", EventSource::Git, Some("d-1"), Outcome::Duplicate),
        event("ev1", EventSource::Git, Some("d-1"), Outcome::Rejected),
        event("ev4", EventSource::Timer, Some("d-1"), Outcome::Triggered),
    ] {
        say!(s.record_event(&e).await);
    }
    say!(s.find_delivery(EventSource::Git, "d-1").await);
    say!(s.find_delivery(EventSource::Registry, "d-1").await);
    say!(s.list_events(None, 10).await);
    say!(s.list_events(Some(EventSource::Git), 1).await);

    // Deliveries: one transaction each; a delivery id is recorded once per
    // source; runs dedupe against stored runs and earlier runs of the delivery.
    say!(s.next_run_ids(10).await);
    say!(s.next_event_id().await);
    say!(s.next_event_id().await);
    say!(s.next_event_id().await);
    let summarize: Summarize = Arc::new(|runs, blocked| DeliverySummary {
        outcome: if blocked.iter().any(Option::is_none) {
            Outcome::Triggered
        } else {
            Outcome::Duplicate
        },
        reason: format!(
            "{:?}",
            blocked
                .iter()
                .map(|b| b.as_ref().map(|r| r.run_id.clone()))
                .collect::<Vec<_>>()
        ),
        runs: runs.iter().map(|r| r.run_id.clone()).collect(),
    });
    let write =
        |delivery: Option<&str>, source: EventSource, keys: &[Option<&str>]| DeliveryWrite {
            source,
            delivery_id: delivery.map(str::to_string),
            received_at: millis(DEFAULT_TIME_MS) + Duration::microseconds(2_500),
            detail: serde_json::json!({"delivery": delivery}),
            runs: keys.iter().map(|k| run("", "zeta", Queued, *k)).collect(),
        };
    for (delivery, source, keys) in [
        (
            Some("g-1"),
            EventSource::Git,
            &[Some("k9"), Some("k2"), Some("k9"), None][..],
        ),
        (Some("g-1"), EventSource::Git, &[Some("k10")][..]),
        (Some("g-1"), EventSource::Registry, &[][..]),
        (None, EventSource::Git, &[Some("k9"), Some("k3")][..]),
        (Some("d-1"), EventSource::Git, &[Some("k11")][..]),
    ] {
        say!(
            s.record_delivery(write(delivery, source, keys), summarize.clone())
                .await
        );
    }
    say!(s.find_delivery(EventSource::Git, "g-1").await);
    say!(s.list_events(None, 3).await);

    // The dependency index and timers; deleting a task drops both.
    say!(
        s.set_dependencies("web", &[dep("b:1", Some("sha256:a")), dep("a:1", None)])
            .await
    );
    say!(s.set_dependencies("zeta", &[dep("b:1", None)]).await);
    say!(
        s.set_dependencies("web", &[dep("c:1", None), dep("b:1", None)])
            .await
    );
    say!(s.dependencies_of("web").await);
    say!(s.dependents_of("b:1").await);
    say!(s.tracked_images().await);
    let t = millis(DEFAULT_TIME_MS) + Duration::microseconds(1_500);
    say!(s.set_timer_last_fired("web", "nightly", t).await);
    say!(s.timer_last_fired("web", "nightly").await);
    say!(s.timer_last_fired("web", "other").await);
    say!(s.delete_task("web").await);
    say!(s.delete_task("web").await);
    say!(s.dependencies_of("web").await);
    say!(s.tracked_images().await);
    say!(s.timer_last_fired("web", "nightly").await);
    say!(s.get_run("ca1").await.map(|r| r.is_some()));
    say!(s.ping().await);
    out
}

#[tokio::test]
async fn the_memory_store_answers_as_the_sqlite_store() {
    let sqlite = script(&SqliteStore::in_memory().unwrap()).await;
    let memory = script(&MemoryStore::new()).await;
    assert_eq!(sqlite.len(), memory.len());
    for (s, m) in sqlite.iter().zip(&memory) {
        assert_eq!(m, s);
    }
}
