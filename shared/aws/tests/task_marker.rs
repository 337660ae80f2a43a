//! The per-task marker on DynamoDB (moto): two upstream pushes decided at
//! once by two deciders (no lease here, and index reads that may lag) start
//! ONE base-image run of the shared downstream task, through both ways runs
//! are recorded (`record_delivery`, one transaction per event; and
//! `insert_run_deduped`, build-status's cascades); once that run leaves
//! `Queued`, the next update records a run again.

use chrono::Utc;
use crtask_core::domain::model::{EventSource, Outcome, Run, RunFilter, RunStatus, Trigger};
use crtask_core::ports::{DeliveryRecorded, DeliverySummary, DeliveryWrite, Store, Summarize};
use crtask_testkit::aws as harness;
use crtask_testkit::RunBuilder;
use std::sync::Arc;

/// A base-image run of `bottom` for `side`'s new digest `d`.
fn image_run(side: &str, d: char) -> Run {
    let image = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{side}:latest");
    let digest = format!("sha256:{}", d.to_string().repeat(64));
    RunBuilder::new("")
        .task(Some("bottom"))
        .status(RunStatus::Queued)
        .trigger(Trigger::ImageUpdate {
            image: image.clone(),
            old_digest: None,
            new_digest: digest.clone(),
            cause: Some("test".into()),
        })
        .dedupe(Some(&format!("image:bottom@{image}@{digest}")))
        .images(&["bottom:latest"])
        .build()
}

fn summarize() -> Summarize {
    Arc::new(|runs, blocked| DeliverySummary {
        outcome: if blocked.iter().any(Option::is_none) {
            Outcome::Triggered
        } else {
            Outcome::Debounced
        },
        reason: String::new(),
        runs: runs.iter().map(|r| r.run_id.clone()).collect(),
    })
}

async fn deliver(store: &crtask_aws::DynamoStore, id: &str, run: Run) -> Vec<Run> {
    let write = DeliveryWrite {
        source: EventSource::Registry,
        delivery_id: Some(id.into()),
        received_at: Utc::now(),
        detail: serde_json::json!({}),
        runs: vec![run],
    };
    match store.record_delivery(write, summarize()).await.unwrap() {
        DeliveryRecorded::New { new_runs, .. } => new_runs,
        DeliveryRecorded::Seen(_) => panic!("{id} is new"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_deciders_at_once_start_one_run_of_the_shared_task() {
    let store = harness::store().await;
    let sides = [("left", 'a'), ("right", 'b'), ("middle", 'c'), ("top", 'd')];
    let mut handles = Vec::new();
    for (i, (side, d)) in sides.into_iter().enumerate() {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            deliver(&s, &format!("e{i}"), image_run(side, d)).await
        }));
    }
    let mut started = Vec::new();
    for h in handles {
        started.extend(h.await.unwrap());
    }
    assert_eq!(started.len(), 1, "{started:?}");
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");

    // The cascade path (insert_run_deduped) is held back by it too.
    let mut r = image_run("cascade", 'e');
    r.run_id = store.next_run_id().await.unwrap();
    let existing = store.insert_run_deduped(&r).await.unwrap();
    assert_eq!(existing.map(|e| e.run_id), Some(started[0].run_id.clone()));

    // Once the run is under way, the next update starts a run again.
    let mut first = store.get_run(&started[0].run_id).await.unwrap().unwrap();
    first.status = RunStatus::Running;
    store.update_run(&first).await.unwrap();
    let next = deliver(&store, "e9", image_run("left", 'f')).await;
    assert_eq!(next.len(), 1);
    let mut r = image_run("cascade", 'g');
    r.run_id = store.next_run_id().await.unwrap();
    assert_eq!(
        store
            .insert_run_deduped(&r)
            .await
            .unwrap()
            .map(|e| e.run_id),
        Some(next[0].run_id.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cascades_insert_one_run_per_task() {
    let store = harness::store().await;
    let mut handles = Vec::new();
    for (side, d) in [("left", 'a'), ("right", 'b'), ("middle", 'c')] {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            let mut r = image_run(side, d);
            r.run_id = s.next_run_id().await.unwrap();
            s.insert_run_deduped(&r).await.unwrap().is_none()
        }));
    }
    let mut inserted = 0;
    for h in handles {
        inserted += usize::from(h.await.unwrap());
    }
    assert_eq!(inserted, 1);
    assert_eq!(
        store.list_runs(&RunFilter::default()).await.unwrap().len(),
        1
    );
    // Runs of other kinds are not held back by the marker.
    let manual = RunBuilder::new("ca900")
        .task(Some("bottom"))
        .status(RunStatus::Queued)
        .trigger(Trigger::Manual)
        .dedupe(Some("manual:bottom"))
        .build();
    assert_eq!(store.insert_run_deduped(&manual).await.unwrap(), None);
}
