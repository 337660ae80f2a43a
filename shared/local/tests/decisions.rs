//! Base-image decisions ([`crtask_core::trigger::registry::handler`]) on the real SQLite store,
//! in the orders events arrive on a live system: a registry's notification
//! of a task's own push while that task is still running, cascades decided
//! when a run succeeds, a diamond whose sides finish one after the other,
//! and redeliveries.

use chrono::{DateTime, Utc};
use crtask_core::domain::model::{
    BaseDependency, EventSource, Outcome, OutputImage, Run, RunStatus, Trigger,
};
use crtask_core::ports::{Clock, Store};
use crtask_core::trigger::registry;
use crtask_core::trigger::registry::event::TagUpdate;
use crtask_core::trigger::registry::handler::UpdateDeps;
use crtask_local::store::SqliteStore;
use crtask_testkit::clock::at;
use crtask_testkit::{FixedClock, RecordingBuilder, TaskBuilder};

const REG: &str = "registry.test:5000";

const NOW: &str = "2026-11-27T10:00:00Z";

fn clock() -> FixedClock {
    FixedClock::at(NOW)
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// Task `name` pushing `{REG}/{name}:latest`, built on `bases` (image, digest).
async fn task(store: &SqliteStore, name: &str, bases: &[(&str, char)]) {
    let t = TaskBuilder::new(name)
        .context("/dev/null")
        .images(&[&format!("{name}:latest")])
        .created(at("2026-01-01T00:00:00Z"))
        .build();
    store.create_task(&t).await.unwrap();
    let deps: Vec<BaseDependency> = bases
        .iter()
        .map(|(image, d)| BaseDependency {
            image: format!("{REG}/{image}"),
            digest: Some(digest(*d)),
            runtime: true,
        })
        .collect();
    store.set_dependencies(name, &deps).await.unwrap();
}

fn update(image: &str, d: char) -> TagUpdate {
    TagUpdate {
        image: format!("{REG}/{image}"),
        digest: digest(d),
        media_type: None,
        event_id: None,
        first_sighting: false,
        platforms: None,
    }
}

async fn decide(store: &SqliteStore, u: &TagUpdate) -> registry::handler::UpdateResult {
    let clock = clock();
    let deps = UpdateDeps {
        store,
        clock: &clock,
        registry: Some(REG),
    };
    registry::handler::process_update(&deps, u, "test")
        .await
        .unwrap()
}

async fn after_run(store: &SqliteStore, run: &Run) -> Vec<Run> {
    let clock = clock();
    let deps = UpdateDeps {
        store,
        clock: &clock,
        registry: Some(REG),
    };
    registry::handler::after_run(&deps, run).await.unwrap()
}

async fn cascade(store: &SqliteStore, run: &Run) -> Vec<Run> {
    let clock = clock();
    let deps = UpdateDeps {
        store,
        clock: &clock,
        registry: Some(REG),
    };
    registry::handler::cascade(&deps, run).await.unwrap()
}

/// Marks `run` finished with `status`, pushing `{task}:latest` at `d`.
async fn finish(store: &SqliteStore, run: &Run, status: RunStatus, d: char) -> Run {
    let mut r = store.get_run(&run.run_id).await.unwrap().unwrap();
    r.status = status;
    if status == RunStatus::Succeeded {
        r.output_images = vec![OutputImage {
            registry: REG.into(),
            repository: r.task.clone().unwrap(),
            tag: "latest".into(),
            digest: digest(d),
            platforms: Vec::new(),
        }];
    }
    store.update_run(&r).await.unwrap();
    r
}

async fn set_status(store: &SqliteStore, run: &Run, status: RunStatus) {
    let mut r = store.get_run(&run.run_id).await.unwrap().unwrap();
    r.status = status;
    store.update_run(&r).await.unwrap();
}

/// `left` and `right` built on `base:1` (at `a`), `bottom` on both of them.
async fn diamond(store: &SqliteStore) {
    task(store, "left", &[("base:1", 'a')]).await;
    task(store, "right", &[("base:1", 'a')]).await;
    task(
        store,
        "bottom",
        &[("left:latest", 'l'), ("right:latest", 'r')],
    )
    .await;
}

/// The run of `task` among `runs`.
fn run_of(runs: &[Run], task: &str) -> Run {
    runs.iter()
        .find(|r| r.task.as_deref() == Some(task))
        .unwrap_or_else(|| panic!("no run of {task} in {runs:?}"))
        .clone()
}

fn tasks_of(runs: &[Run]) -> Vec<String> {
    let mut t: Vec<String> = runs.iter().filter_map(|r| r.task.clone()).collect();
    t.sort();
    t
}

#[tokio::test]
async fn a_tasks_own_push_never_retriggers_it_even_while_it_runs() {
    let store = SqliteStore::in_memory().unwrap();
    // `app` is built on the tag it pushes (incremental images).
    task(&store, "app", &[("app:latest", 'a')]).await;
    let first = decide(&store, &update("app:latest", 'b')).await;
    assert!(first.new_runs.is_empty(), "{first:?}");
    assert!(first.reason.contains("its own output"), "{}", first.reason);

    // The same, arriving while a run of `app` is under way (the registry
    // notifies during the push, before the run ends) and after it.
    task(&store, "base-user", &[("base:1", 'a')]).await;
    let r = decide(&store, &update("base:1", 'b')).await;
    assert_eq!(tasks_of(&r.new_runs), ["base-user"]);
    set_status(&store, &r.new_runs[0], RunStatus::Running).await;
    let during = decide(&store, &update("base-user:latest", 'c')).await;
    assert!(during.new_runs.is_empty(), "{during:?}");
    let done = finish(&store, &r.new_runs[0], RunStatus::Succeeded, 'c').await;
    assert!(cascade(&store, &done).await.is_empty());
}

#[tokio::test]
async fn chains_rebuild_in_order_and_diamonds_once_after_both_sides() {
    let store = SqliteStore::in_memory().unwrap();
    //      base
    //     /    \
    //   left  right
    //     \    /
    //     bottom        and   left -> next (a chain)
    diamond(&store).await;
    task(&store, "next", &[("left:latest", 'l')]).await;

    let r = decide(&store, &update("base:1", 'b')).await;
    assert_eq!(r.outcome, Outcome::Triggered);
    assert_eq!(tasks_of(&r.new_runs), ["left", "right"]);
    let left = &run_of(&r.new_runs, "left");
    let right = &run_of(&r.new_runs, "right");
    set_status(&store, left, RunStatus::Running).await;
    set_status(&store, right, RunStatus::Running).await;

    // The registry notifies left's push while left still runs: bottom and
    // next wait for left itself, bottom also for right.
    let early = decide(&store, &update("left:latest", 'L')).await;
    assert!(early.new_runs.is_empty(), "{early:?}");
    assert_eq!(early.outcome, Outcome::Debounced, "{}", early.reason);

    // left succeeds: next rebuilds now; bottom waits for right.
    let left_done = finish(&store, left, RunStatus::Succeeded, 'L').await;
    let after_left = cascade(&store, &left_done).await;
    assert_eq!(tasks_of(&after_left), ["next"]);
    match &after_left[0].trigger {
        Trigger::ImageUpdate {
            image,
            old_digest,
            new_digest,
            cause,
        } => {
            assert_eq!(image, &format!("{REG}/left:latest"));
            assert_eq!(old_digest.as_deref(), Some(digest('l').as_str()));
            assert_eq!(new_digest, &digest('L'));
            assert!(
                cause.as_deref().unwrap().contains(&left.run_id),
                "{cause:?}"
            );
        }
        t => panic!("trigger {t:?}"),
    }

    // right succeeds: bottom rebuilds, once.
    let right_done = finish(&store, right, RunStatus::Succeeded, 'R').await;
    let after_right = cascade(&store, &right_done).await;
    assert_eq!(tasks_of(&after_right), ["bottom"]);

    // Late notifications of both pushes start nothing more.
    for (image, d) in [("left:latest", 'L'), ("right:latest", 'R')] {
        let late = decide(&store, &update(image, d)).await;
        assert!(late.new_runs.is_empty(), "{image}: {late:?}");
    }
    let bottoms = store
        .list_runs(&crtask_core::domain::model::RunFilter {
            task: Some("bottom".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(bottoms.len(), 1);
}

#[tokio::test]
async fn a_failed_side_does_not_hold_the_diamond_forever() {
    let store = SqliteStore::in_memory().unwrap();
    diamond(&store).await;
    let r = decide(&store, &update("base:1", 'b')).await;
    let left = run_of(&r.new_runs, "left");
    let right = run_of(&r.new_runs, "right");
    let left_done = finish(&store, &left, RunStatus::Succeeded, 'L').await;
    assert!(
        cascade(&store, &left_done).await.is_empty(),
        "right is still under way"
    );
    // right fails: it pushes nothing, and left's push still stands. The
    // failure itself decides again what waited for right.
    let right_failed = finish(&store, &right, RunStatus::Failed, 'x').await;
    let released = after_run(&store, &right_failed).await;
    assert_eq!(tasks_of(&released), ["bottom"]);
    match &released[0].trigger {
        Trigger::ImageUpdate {
            image,
            new_digest,
            cause,
            ..
        } => {
            assert_eq!(image, &format!("{REG}/left:latest"));
            assert_eq!(new_digest, &digest('L'));
            let cause = cause.as_deref().unwrap();
            assert!(
                cause.contains(&left.run_id) && cause.contains(&right.run_id),
                "{cause}"
            );
        }
        t => panic!("trigger {t:?}"),
    }
    // Ending again (a redelivered status event) starts nothing more.
    assert!(after_run(&store, &right_failed).await.is_empty());
    // A failure that nobody waited for releases nothing.
    let solo = decide(&store, &update("base:1", 'c')).await;
    let left2 = run_of(&solo.new_runs, "left");
    let left2_failed = finish(&store, &left2, RunStatus::Failed, 'x').await;
    let none = after_run(&store, &left2_failed).await;
    assert!(
        none.iter().all(|r| r.task.as_deref() != Some("bottom")),
        "{none:?}"
    );
}

#[tokio::test]
async fn redeliveries_and_repeated_updates_start_one_run() {
    let store = SqliteStore::in_memory().unwrap();
    task(&store, "app", &[("base:1", 'a')]).await;
    let first = decide(&store, &update("base:1", 'b')).await;
    assert_eq!(first.new_runs.len(), 1);
    let run = first.new_runs[0].run_id.clone();
    // The same update again while the run is queued, then while it runs.
    let queued = decide(&store, &update("base:1", 'b')).await;
    assert_eq!(
        (queued.outcome, queued.runs.clone()),
        (Outcome::Duplicate, vec![run.clone()])
    );
    set_status(&store, &first.new_runs[0], RunStatus::Running).await;
    let running = decide(&store, &update("base:1", 'b')).await;
    assert_eq!(running.outcome, Outcome::Duplicate, "{}", running.reason);
    // Unchanged digest: nothing.
    let same = decide(&store, &update("base:1", 'a')).await;
    assert_eq!(same.outcome, Outcome::Unchanged);
    assert!(
        store
            .list_events(Some(EventSource::Registry), 10)
            .await
            .unwrap()
            .is_empty(),
        "process_update alone records no event"
    );
}

/// What one decider's hand-over did with its own run.
async fn hand_over(
    store: &SqliteStore,
    builder: &RecordingBuilder,
    run: &Run,
) -> crtask_core::run::queue::Handover {
    let mut out =
        crtask_core::run::queue::hand_over(store, builder, &clock(), std::slice::from_ref(run))
            .await
            .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, run.run_id);
    out.remove(0).1
}

#[tokio::test]
async fn two_deciders_at_once_hand_over_one_run() {
    use crtask_core::run::queue::{self, Handover, NewRun};
    let store = SqliteStore::in_memory().unwrap();
    diamond(&store).await;
    let t = store.get_task("bottom").await.unwrap().unwrap();
    let spec = queue::spec_from_task(&t, &Default::default()).unwrap();
    // What two build-status invocations record when both sides finish at
    // once and neither sees the other's run yet: one run per side's push.
    let record = |image: &str, d: char, at: DateTime<Utc>| {
        let new = NewRun {
            task: Some("bottom".into()),
            run_type: crtask_core::domain::model::RunType::AutoBuild,
            trigger: Trigger::ImageUpdate {
                image: format!("{REG}/{image}"),
                old_digest: None,
                new_digest: digest(d),
                cause: None,
            },
            spec: spec.clone(),
            dedupe_key: Some(format!("image:bottom@{image}@{d}")),
        };
        let store = &store;
        async move {
            match queue::record(store, &FixedClock::new(at), new)
                .await
                .unwrap()
            {
                queue::Recorded::New(r) => r,
                queue::Recorded::Existing(r) => panic!("not new: {r:?}"),
            }
        }
    };
    let now = clock().now();
    let a = record("left:latest", 'L', now).await;
    let b = record("right:latest", 'R', now).await;
    let builder = RecordingBuilder::new();
    // Each decider hands over its own run, in either order.
    let hb = hand_over(&store, &builder, &b).await;
    let ha = hand_over(&store, &builder, &a).await;
    assert_eq!(ha, Handover::Dispatched);
    assert_eq!(hb, Handover::Merged(a.run_id.clone()));
    assert_eq!(builder.dispatched(), vec![a.run_id.clone()]);
    let merged = store.get_run(&b.run_id).await.unwrap().unwrap();
    assert_eq!(merged.status, RunStatus::Canceled);
    assert!(merged.error.unwrap().contains(&a.run_id));

    // A queued run recorded well before (a build that may be under way
    // already) does not stand for a new one.
    let late = record("left:latest", 'M', now + chrono::Duration::seconds(60)).await;
    let h = hand_over(&store, &builder, &late).await;
    assert_eq!(h, Handover::Dispatched);
    assert_eq!(
        builder.dispatched(),
        vec![a.run_id.clone(), late.run_id.clone()]
    );
    // Handing the merged run over again does nothing: it is no longer waiting.
    assert_eq!(hand_over(&store, &builder, &b).await, Handover::Skipped);
    assert_eq!(builder.dispatched().len(), 2);
}
