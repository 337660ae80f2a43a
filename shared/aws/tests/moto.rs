//! The AWS platform against `moto_server`: the Store contract on DynamoDB,
//! S3 contexts and logs, and CodeBuild dispatch.

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use crtask_aws::codebuild::{start_build_request, Backoff};
use crtask_aws::{CodeBuildBuilder, S3Contexts};
use crtask_core::domain::model::{
    BaseDependency, BuildSpec, ContextSource, EventRecord, EventSource, Outcome, Run, RunFilter,
    RunStatus, RunType, Trigger,
};
use crtask_core::ports::{Builder, Store};
use crtask_core::Error as CoreError;
use crtask_testkit::aws::{self as harness, codebuild};
use crtask_testkit::model::{arg, secret_arg};
use crtask_testkit::{task, FixedClock, RunBuilder};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A run of `task` building `app:{{.Run.ID}}` with a plain and a secret
/// build argument.
fn run(id: &str, task: Option<&str>, status: RunStatus, dedupe: Option<&str>) -> Run {
    RunBuilder::new(id)
        .task(task)
        .status(status)
        .dedupe(dedupe)
        .images(&["app:{{.Run.ID}}"])
        .build_args(vec![arg("MODE", "prod"), secret_arg("TOKEN", "s3cret")])
        .build()
}

fn event(id: &str, source: EventSource, delivery: Option<&str>, reason: &str) -> EventRecord {
    EventRecord {
        id: id.into(),
        source,
        delivery_id: delivery.map(str::to_string),
        received_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
        outcome: Outcome::Triggered,
        reason: reason.into(),
        runs: vec!["ca1".into()],
        detail: serde_json::json!({"provider": "github"}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_crud() {
    let store = harness::store().await;
    store.ping().await.unwrap();
    let t = task("web");
    store.create_task(&t).await.unwrap();
    let e = store.create_task(&t).await.unwrap_err();
    assert!(matches!(e, CoreError::Conflict { kind: "task", .. }), "{e}");
    assert_eq!(store.get_task("web").await.unwrap(), Some(t.clone()));
    assert_eq!(store.get_task("nope").await.unwrap(), None);

    let mut t2 = t.clone();
    t2.images.push("extra:1".into());
    store.update_task(&t2).await.unwrap();
    assert_eq!(store.get_task("web").await.unwrap(), Some(t2.clone()));
    let e = store.update_task(&task("ghost")).await.unwrap_err();
    assert!(matches!(e, CoreError::NotFound { kind: "task", .. }), "{e}");

    store.create_task(&task("api")).await.unwrap();
    let names: Vec<_> = store
        .list_tasks()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["api", "web"]);

    // Deleting a task removes its dependencies and timer state, not its runs.
    store
        .set_dependencies(
            "web",
            &[BaseDependency {
                image: "docker.io/library/alpine:3".into(),
                digest: None,
                runtime: true,
            }],
        )
        .await
        .unwrap();
    store
        .set_timer_last_fired("web", "nightly", Utc::now())
        .await
        .unwrap();
    store
        .insert_run(&run("ca1", Some("web"), RunStatus::Queued, None))
        .await
        .unwrap();
    assert!(store.delete_task("web").await.unwrap());
    assert!(!store.delete_task("web").await.unwrap());
    assert_eq!(store.get_task("web").await.unwrap(), None);
    assert!(store.dependencies_of("web").await.unwrap().is_empty());
    assert!(store
        .dependents_of("docker.io/library/alpine:3")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.timer_last_fired("web", "nightly").await.unwrap(),
        None
    );
    assert!(store.get_run("ca1").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_ids_are_monotonic_and_unique_under_concurrency() {
    let store = harness::store().await;
    assert_eq!(store.next_run_id().await.unwrap(), "ca1");
    assert_eq!(store.next_run_id().await.unwrap(), "ca2");
    let mut handles = Vec::new();
    for _ in 0..10 {
        let s = store.clone();
        handles.push(tokio::spawn(async move { s.next_run_id().await.unwrap() }));
    }
    let mut ids = BTreeSet::new();
    for h in handles {
        assert!(ids.insert(h.await.unwrap()));
    }
    let expected: BTreeSet<String> = (3..=12).map(|n| format!("ca{n}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(store.next_event_id().await.unwrap(), "ev1");
    assert_eq!(store.next_event_id().await.unwrap(), "ev2");

    let other = harness::store().await.with_run_prefix("cb").unwrap();
    assert_eq!(other.next_run_id().await.unwrap(), "cb1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_insert_get_update() {
    let store = harness::store().await;
    let r = run("ca1", Some("web"), RunStatus::Queued, None);
    store.insert_run(&r).await.unwrap();
    let e = store.insert_run(&r).await.unwrap_err();
    assert!(matches!(e, CoreError::Conflict { kind: "run", .. }), "{e}");
    assert_eq!(store.get_run("ca1").await.unwrap(), Some(r.clone()));
    assert_eq!(store.get_run("ca9").await.unwrap(), None);

    let mut r2 = r.clone();
    r2.status = RunStatus::Running;
    r2.builder_ref = Some("proj:build-1".into());
    store.update_run(&r2).await.unwrap();
    assert_eq!(store.get_run("ca1").await.unwrap(), Some(r2));
    let e = store
        .update_run(&run("ca7", None, RunStatus::Queued, None))
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::NotFound { kind: "run", .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_run_deduped_returns_the_existing_run() {
    let store = harness::store().await;
    let key = "web@0123";
    let first = run("ca1", Some("web"), RunStatus::Queued, Some(key));
    assert_eq!(store.insert_run_deduped(&first).await.unwrap(), None);
    // Same key while queued: the first run comes back, nothing is inserted.
    let second = run("ca2", Some("web"), RunStatus::Queued, Some(key));
    assert_eq!(
        store.insert_run_deduped(&second).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_run("ca2").await.unwrap(), None);

    // A failed run no longer blocks its key.
    let mut failed = first.clone();
    failed.status = RunStatus::Failed;
    store.update_run(&failed).await.unwrap();
    assert_eq!(store.insert_run_deduped(&second).await.unwrap(), None);
    assert!(store.get_run("ca2").await.unwrap().is_some());

    // A succeeded run does.
    let mut ok = second.clone();
    ok.status = RunStatus::Succeeded;
    store.update_run(&ok).await.unwrap();
    let third = run("ca3", Some("web"), RunStatus::Queued, Some(key));
    assert_eq!(store.insert_run_deduped(&third).await.unwrap(), Some(ok));

    // No key: a plain insert.
    let plain = run("ca4", Some("web"), RunStatus::Queued, None);
    assert_eq!(store.insert_run_deduped(&plain).await.unwrap(), None);
    assert!(store.get_run("ca4").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deduped_inserts_insert_exactly_one() {
    let store = harness::store().await;
    let mut handles = Vec::new();
    for n in 1..=8 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            let r = run(
                &format!("ca{n}"),
                Some("web"),
                RunStatus::Queued,
                Some("web@race"),
            );
            s.insert_run_deduped(&r).await.unwrap()
        }));
    }
    let mut inserted = 0;
    let mut existing = BTreeSet::new();
    for h in handles {
        match h.await.unwrap() {
            None => inserted += 1,
            Some(r) => {
                existing.insert(r.run_id);
            }
        }
    }
    assert_eq!(inserted, 1, "exactly one insert");
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert!(existing.iter().all(|id| *id == runs[0].run_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_runs_filters_and_order() {
    let store = harness::store().await;
    let plan = [
        ("ca1", Some("web"), RunStatus::Succeeded),
        ("ca2", Some("api"), RunStatus::Failed),
        ("ca3", Some("web"), RunStatus::Failed),
        ("ca4", None, RunStatus::Queued),
        ("ca5", Some("web"), RunStatus::Queued),
        ("ca10", Some("web"), RunStatus::Running),
    ];
    for (id, t, st) in plan {
        store.insert_run(&run(id, t, st, None)).await.unwrap();
    }
    let ids = |runs: Vec<Run>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    let list = |task: Option<&str>, status: Option<RunStatus>, top: Option<usize>| RunFilter {
        task: task.map(str::to_string),
        status,
        top,
    };
    assert_eq!(
        ids(store.list_runs(&list(None, None, None)).await.unwrap()),
        ["ca10", "ca5", "ca4", "ca3", "ca2", "ca1"]
    );
    assert_eq!(
        ids(store.list_runs(&list(None, None, Some(2))).await.unwrap()),
        ["ca10", "ca5"]
    );
    assert_eq!(
        ids(store
            .list_runs(&list(Some("web"), None, None))
            .await
            .unwrap()),
        ["ca10", "ca5", "ca3", "ca1"]
    );
    assert_eq!(
        ids(store
            .list_runs(&list(None, Some(RunStatus::Failed), None))
            .await
            .unwrap()),
        ["ca3", "ca2"]
    );
    assert_eq!(
        ids(store
            .list_runs(&list(Some("web"), Some(RunStatus::Failed), Some(5)))
            .await
            .unwrap()),
        ["ca3"]
    );
    assert!(store
        .list_runs(&list(None, None, Some(0)))
        .await
        .unwrap()
        .is_empty());

    // A status change moves the run between status partitions.
    let mut r = store.get_run("ca5").await.unwrap().unwrap();
    r.status = RunStatus::Running;
    store.update_run(&r).await.unwrap();
    assert_eq!(
        ids(store
            .runs_in_status(&[RunStatus::Queued, RunStatus::Running])
            .await
            .unwrap()),
        ["ca4", "ca5", "ca10"]
    );
    assert_eq!(
        ids(store
            .list_runs(&list(None, Some(RunStatus::Queued), None))
            .await
            .unwrap()),
        ["ca4"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_and_delivery_dedupe() {
    let store = harness::store().await;
    let e1 = event("ev1", EventSource::Git, Some("guid-1"), "first");
    let e2 = event("ev2", EventSource::Registry, None, "registry push");
    let e3 = event("ev3", EventSource::Git, Some("guid-1"), "redelivery");
    for e in [&e1, &e2, &e3] {
        store.record_event(e).await.unwrap();
    }
    // The first event of a delivery is the one found.
    assert_eq!(
        store
            .find_delivery(EventSource::Git, "guid-1")
            .await
            .unwrap(),
        Some(e1.clone())
    );
    assert_eq!(
        store
            .find_delivery(EventSource::Registry, "guid-1")
            .await
            .unwrap(),
        None
    );
    // Insert or replace by id.
    let mut e1b = e1.clone();
    e1b.outcome = Outcome::Ignored;
    e1b.reason = "changed".into();
    store.record_event(&e1b).await.unwrap();
    assert_eq!(
        store
            .find_delivery(EventSource::Git, "guid-1")
            .await
            .unwrap(),
        Some(e1b.clone())
    );

    let ids = |v: Vec<EventRecord>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_events(None, 10).await.unwrap()),
        ["ev3", "ev2", "ev1"]
    );
    assert_eq!(
        ids(store.list_events(Some(EventSource::Git), 10).await.unwrap()),
        ["ev3", "ev1"]
    );
    assert_eq!(ids(store.list_events(None, 1).await.unwrap()), ["ev3"]);

    // Delivery items carry the TTL attribute; once past it they count as gone
    // (TTL removes them later) and a new event of that delivery takes over.
    let later = store.clone().with_clock(Arc::new(FixedClock::new(
        Utc::now() + ChronoDuration::days(8),
    )));
    assert_eq!(
        later
            .find_delivery(EventSource::Git, "guid-1")
            .await
            .unwrap(),
        None
    );
    let e4 = event("ev4", EventSource::Git, Some("guid-1"), "much later");
    later.record_event(&e4).await.unwrap();
    assert_eq!(
        later
            .find_delivery(EventSource::Git, "guid-1")
            .await
            .unwrap(),
        Some(e4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dependency_index_via_gsi() {
    let store = harness::store().await;
    let alpine = "docker.io/library/alpine:3";
    let golang = "docker.io/library/golang:1.22";
    let dep = |image: &str, digest: Option<&str>, runtime: bool| BaseDependency {
        image: image.into(),
        digest: digest.map(str::to_string),
        runtime,
    };
    store
        .set_dependencies(
            "web",
            &[
                dep(golang, None, false),
                dep(alpine, Some("sha256:aa"), true),
            ],
        )
        .await
        .unwrap();
    store
        .set_dependencies("api", &[dep(alpine, None, true)])
        .await
        .unwrap();
    assert_eq!(
        store.dependencies_of("web").await.unwrap(),
        [
            dep(alpine, Some("sha256:aa"), true),
            dep(golang, None, false)
        ]
    );
    assert_eq!(
        store.dependents_of(alpine).await.unwrap(),
        [
            ("api".to_string(), dep(alpine, None, true)),
            ("web".to_string(), dep(alpine, Some("sha256:aa"), true)),
        ]
    );
    assert_eq!(store.tracked_images().await.unwrap(), [alpine, golang]);

    // Replacing drops what is no longer listed.
    store
        .set_dependencies("web", &[dep(alpine, Some("sha256:bb"), true)])
        .await
        .unwrap();
    assert!(store.dependents_of(golang).await.unwrap().is_empty());
    assert_eq!(store.tracked_images().await.unwrap(), [alpine]);
    assert_eq!(
        store.dependents_of(alpine).await.unwrap()[1],
        ("web".to_string(), dep(alpine, Some("sha256:bb"), true))
    );
    store.set_dependencies("web", &[]).await.unwrap();
    assert!(store.dependencies_of("web").await.unwrap().is_empty());
    // Another task still depends on alpine: still tracked.
    assert_eq!(store.tracked_images().await.unwrap(), [alpine]);

    // Deleting the last task that depends on an image forgets the image.
    let task = crtask_testkit::TaskBuilder::new("api").build();
    store.create_task(&task).await.unwrap();
    assert!(store.delete_task("api").await.unwrap());
    assert!(store.tracked_images().await.unwrap().is_empty());
    // A task added again tracks it again.
    store
        .set_dependencies("web", &[dep(golang, None, false)])
        .await
        .unwrap();
    assert_eq!(store.tracked_images().await.unwrap(), [golang]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timer_state() {
    let store = harness::store().await;
    assert_eq!(store.timer_last_fired("web", "t1").await.unwrap(), None);
    let t = Utc.timestamp_millis_opt(1_700_000_123_456).unwrap();
    store.set_timer_last_fired("web", "t1", t).await.unwrap();
    assert_eq!(store.timer_last_fired("web", "t1").await.unwrap(), Some(t));
    let t2 = t + ChronoDuration::minutes(5);
    store.set_timer_last_fired("web", "t1", t2).await.unwrap();
    assert_eq!(store.timer_last_fired("web", "t1").await.unwrap(), Some(t2));
    assert_eq!(store.timer_last_fired("web", "t2").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_contexts_and_logs() {
    let (client, bucket) = harness::bucket().await;
    let s3 = S3Contexts::new(client, bucket);
    assert_eq!(s3.get_context("c1").await.unwrap(), None);
    s3.put_context("c1", b"\x1f\x8bfake tarball".to_vec())
        .await
        .unwrap();
    assert_eq!(
        s3.get_context("c1").await.unwrap().as_deref(),
        Some(&b"\x1f\x8bfake tarball"[..])
    );
    assert_eq!(s3.get_log("ca1", 0).await.unwrap(), None);
    s3.put_log("ca1", b"step 1\nstep 2\n".to_vec())
        .await
        .unwrap();
    assert_eq!(
        s3.get_log("ca1", 0).await.unwrap().as_deref(),
        Some(&b"step 1\nstep 2\n"[..])
    );
    assert_eq!(
        s3.get_log("ca1", 7).await.unwrap().as_deref(),
        Some(&b"step 2\n"[..])
    );
    assert_eq!(s3.get_log("ca1", 100).await.unwrap(), Some(Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codebuild_dispatch_starts_a_build_with_the_run_as_env() {
    let conf = harness::sdk_config().await;
    let cb = crtask_aws::config::codebuild(&conf);
    let project = codebuild::project(&cb, "crtask-builder").await;
    let store = Arc::new(harness::store().await);
    let r = run("ca1", Some("web"), RunStatus::Queued, Some("web@0123"));
    store.insert_run(&r).await.unwrap();

    // The request itself (moto ignores overrides).
    let req = start_build_request(
        &r,
        &project,
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
        None,
    )
    .unwrap();
    assert_eq!(req.project_name, project);
    assert_eq!(
        req.source_version.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(req.source_type_override.as_deref(), Some("GITHUB"));
    assert_eq!(
        req.source_location_override.as_deref(),
        Some("https://github.com/acme/app.git")
    );
    assert_eq!(req.env("CRTASK_RUN_ID"), Some("ca1"));
    assert_eq!(
        req.env("CRTASK_RUN_DATE"),
        Some(crtask_core::domain::time::rfc3339(r.create_time).as_str()),
        "{{{{.Run.Date}}}} on the builder is the run's creation time"
    );
    assert_eq!(req.env("CRTASK_TASK"), Some("web"));
    assert_eq!(
        req.env("CRTASK_COMMIT"),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(req.env("CRTASK_BRANCH"), Some("main"));
    assert_eq!(
        req.env("CRTASK_REGISTRY"),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );
    assert!(req.privileged_mode_override);
    assert_eq!(req.timeout_in_minutes_override, 60);
    assert_eq!(req.idempotency_token, format!("crtask-{project}-ca1"));
    // Secret build arguments never travel as plaintext overrides.
    let all_env = serde_json::to_string(&req.environment_variables_override).unwrap();
    assert!(!all_env.contains("s3cret"), "{all_env}");
    assert!(all_env.contains("MODE"), "{all_env}");

    // The same request through the SDK to the emulator.
    let builder = CodeBuildBuilder::new(cb.clone(), store.clone(), &project)
        .with_registry("123456789012.dkr.ecr.us-east-1.amazonaws.com");
    assert_eq!(builder.request_for(&r).unwrap(), req);
    builder.dispatch("ca1").await.unwrap();
    let stored = store.get_run("ca1").await.unwrap().unwrap();
    let build_id = stored.builder_ref.clone().expect("build id recorded");
    assert_eq!(stored.status, RunStatus::Queued);
    let ids = cb
        .list_builds_for_project()
        .project_name(&project)
        .send()
        .await
        .unwrap()
        .ids
        .unwrap_or_default();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0], build_id);
    let builds = cb
        .batch_get_builds()
        .ids(&build_id)
        .send()
        .await
        .unwrap()
        .builds
        .unwrap_or_default();
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0].project_name(), Some(project.as_str()));
    // A second dispatch of the same run starts nothing.
    builder.dispatch("ca1").await.unwrap();
    let again = cb
        .list_builds_for_project()
        .project_name(&project)
        .send()
        .await
        .unwrap()
        .ids
        .unwrap_or_default();
    assert_eq!(again.len(), 1);

    // Cancel stops the build and records the run as canceled.
    assert!(builder.cancel("ca1").await.unwrap());
    let canceled = store.get_run("ca1").await.unwrap().unwrap();
    assert_eq!(canceled.status, RunStatus::Canceled);
    assert!(canceled.finish_time.is_some());
    assert!(!builder.cancel("ca1").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploaded_context_request_names_the_object_for_the_buildspec() {
    let mut r = run("ca5", None, RunStatus::Queued, None);
    r.run_type = RunType::QuickBuild;
    r.trigger = Trigger::Manual;
    r.spec.context = ContextSource::Uploaded { id: "ctx42".into() };
    r.spec.timeout = 301;
    let req = start_build_request(&r, "proj", None, Some("ctx-bucket")).unwrap();
    // CodeBuild would unpack an S3 source as a zip; the buildspec copies the
    // tar.gz itself.
    assert_eq!(req.source_type_override.as_deref(), Some("NO_SOURCE"));
    assert_eq!(req.source_location_override, None);
    assert_eq!(req.source_version, None);
    assert_eq!(
        req.env("CRTASK_CONTEXT_OBJECT"),
        Some("s3://ctx-bucket/contexts/ctx42.tar.gz")
    );
    assert_eq!(req.env("CRTASK_TASK"), None);
    assert_eq!(req.env("CRTASK_COMMIT"), None);
    assert_eq!(req.timeout_in_minutes_override, 6);
    // No bucket configured, or a local directory: refused with a reason.
    assert!(start_build_request(&r, "proj", None, None).is_err());
    r.spec.context = ContextSource::LocalDir {
        path: "/srv/app".into(),
    };
    let e = start_build_request(&r, "proj", None, Some("b")).unwrap_err();
    assert!(e.to_string().contains("cannot be built on AWS"), "{e}");
}

/// A task's git token reaches the builder as the name of its secret only:
/// not in CRTASK_SPEC, not as a value; CodeBuild does not check the source
/// out itself (crtask exec clones with the token). A plain token is refused.
#[test]
fn git_token_reaches_the_builder_as_a_secret_name_only() {
    let mut r = run("ca6", Some("web"), RunStatus::Queued, None);
    r.spec.context = ContextSource::Git {
        url: "https://github.com/acme/private.git".into(),
        reference: Some("main".into()),
        subdir: None,
    };
    let plain = start_build_request(&r, "proj", None, None).unwrap();
    assert_eq!(plain.source_type_override.as_deref(), Some("GITHUB"));
    assert_eq!(plain.env("CRTASK_GIT_TOKEN_SECRET"), None);

    r.spec.git_access_token = Some(crtask_aws::git_tokens::reference("crtask/git/web"));
    let req = start_build_request(&r, "proj", None, None).unwrap();
    assert_eq!(req.env("CRTASK_GIT_TOKEN_SECRET"), Some("crtask/git/web"));
    assert_eq!(req.source_type_override.as_deref(), Some("NO_SOURCE"));
    assert_eq!(
        req.env("CRTASK_GIT_URL"),
        Some("https://github.com/acme/private.git")
    );
    let spec = req.env("CRTASK_SPEC").unwrap();
    assert!(!spec.contains("crtask/git/web"), "{spec}");
    assert!(!spec.contains("gitAccessToken"), "{spec}");

    r.spec.git_access_token = Some("ghp_plain_token_value".into());
    let e = start_build_request(&r, "proj", None, None).unwrap_err();
    assert!(
        e.to_string().contains("not stored in Secrets Manager"),
        "{e}"
    );
    assert!(!e.to_string().contains("ghp_plain"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_dispatch_leaves_the_run_queued_with_the_reason() {
    let conf = harness::sdk_config().await;
    let cb = crtask_aws::config::codebuild(&conf);
    let store = Arc::new(harness::store().await);
    let mut r = run("ca1", Some("web"), RunStatus::Queued, None);
    store.insert_run(&r).await.unwrap();
    let builder =
        CodeBuildBuilder::new(cb, store.clone(), "no-such-project").with_backoff(Backoff {
            attempts: 2,
            base: std::time::Duration::from_millis(1),
            max: std::time::Duration::from_millis(2),
        });
    crtask_core::run::queue::dispatch(&*store, &builder, &mut r)
        .await
        .unwrap();
    let stored = store.get_run("ca1").await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Queued);
    assert_eq!(stored.builder_ref, None);
    let reason = stored.error.unwrap_or_default();
    assert!(reason.starts_with("waiting for the builder: "), "{reason}");
    assert!(reason.contains("StartBuild"), "{reason}");
    // Cancel of a never-started queued run just marks it.
    assert!(builder.cancel("ca1").await.unwrap());
    assert_eq!(
        store.get_run("ca1").await.unwrap().unwrap().status,
        RunStatus::Canceled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_manager_values_during_rotation_and_cache() {
    use crtask_aws::SecretsManagerSecrets;
    use crtask_core::signing::Secret;
    let conf = harness::sdk_config().await;
    let sm = crtask_aws::config::secretsmanager(&conf);
    let name = harness::unique("crtask/github-webhook");
    sm.create_secret()
        .name(&name)
        .secret_string("old-secret\n")
        .send()
        .await
        .unwrap();
    let cached = SecretsManagerSecrets::new(sm.clone());
    let fresh = SecretsManagerSecrets::new(sm.clone()).with_cache_ttl(std::time::Duration::ZERO);
    assert_eq!(
        cached.valid_values(&name).await.unwrap(),
        [Secret::new("old-secret")]
    );
    // Rotate: the new value becomes current, the old one stays valid.
    sm.put_secret_value()
        .secret_id(&name)
        .secret_string("new-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(
        fresh.valid_values(&name).await.unwrap(),
        [Secret::new("new-secret"), Secret::new("old-secret")]
    );
    assert_eq!(
        fresh.current(&name).await.unwrap(),
        Secret::new("new-secret")
    );
    // The cached reader still answers from its cache until invalidated.
    assert_eq!(
        cached.valid_values(&name).await.unwrap(),
        [Secret::new("old-secret")]
    );
    cached.invalidate(&name);
    assert_eq!(cached.valid_values(&name).await.unwrap().len(), 2);
    let e = fresh.valid_values("no-such-secret").await.unwrap_err();
    assert!(e.to_string().contains("secret 'no-such-secret'"), "{e}");
}

#[test]
fn other_git_hosts_and_pull_requests() {
    let mut r = run("ca8", Some("web"), RunStatus::Queued, None);
    r.spec.context = ContextSource::Git {
        url: "git://git.example.org/app.git".into(),
        reference: Some("release".into()),
        subdir: Some("svc".into()),
    };
    r.trigger = Trigger::PullRequest {
        number: 42,
        commit: "feedface".into(),
        branch: "fix; rm -rf /".into(),
        repository: None,
    };
    let req = start_build_request(&r, "proj", None, None).unwrap();
    // CodeBuild cannot fetch from this host: the executor clones it.
    assert_eq!(req.source_type_override.as_deref(), Some("NO_SOURCE"));
    assert_eq!(req.source_location_override, None);
    assert_eq!(req.source_version, None);
    assert_eq!(
        req.env("CRTASK_GIT_URL"),
        Some("git://git.example.org/app.git")
    );
    assert_eq!(req.env("CRTASK_GIT_REF"), Some("release"));
    assert_eq!(req.env("CRTASK_CONTEXT_SUBDIR"), Some("svc"));
    assert_eq!(req.env("CRTASK_PULL_REQUEST"), Some("42"));
    assert_eq!(req.env("CRTASK_COMMIT"), Some("feedface"));
    // Values travel as data, byte for byte, never as shell text.
    assert_eq!(req.env("CRTASK_BRANCH"), Some("fix; rm -rf /"));
    assert_eq!(req.env("CRTASK_REGISTRY"), None);
    let spec: BuildSpec = serde_json::from_str(req.env("CRTASK_SPEC").unwrap()).unwrap();
    assert_eq!(spec.build_args.len(), 1, "secret build args are dropped");
    assert_eq!(spec.build_args[0].name, "MODE");
}

/// The decision lease on DynamoDB: a conditional put, refused to another
/// holder until it is released or expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_is_refused_to_others_until_released_or_expired() {
    let store = harness::store().await;
    let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    let until = t0 + ChronoDuration::seconds(30);
    assert!(store.try_lease("decide", "a", t0, until).await.unwrap());
    assert!(!store.try_lease("decide", "b", t0, until).await.unwrap());
    assert!(store.try_lease("decide", "a", t0, until).await.unwrap());
    store.release_lease("decide", "b").await.unwrap();
    assert!(!store.try_lease("decide", "b", t0, until).await.unwrap());
    store.release_lease("decide", "a").await.unwrap();
    assert!(store.try_lease("decide", "b", t0, until).await.unwrap());
    assert!(!store
        .try_lease("decide", "a", until - ChronoDuration::seconds(1), until)
        .await
        .unwrap());
    assert!(store
        .try_lease("decide", "a", until, until + ChronoDuration::seconds(30))
        .await
        .unwrap());
}

/// Two deciders at once (both sides of a diamond pushed together, decided
/// by two function instances): the store's lease serializes them, so the
/// bottom task gets one run, not one per side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_deciders_at_once_record_one_run_of_the_bottom_task() {
    use crtask_core::domain::model::BaseDependency;
    use crtask_core::trigger::registry::event::TagUpdate;
    use crtask_core::trigger::registry::handler::{process_update, UpdateDeps};
    const REG: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let store = harness::store().await;
    let mut bottom = task("bottom");
    bottom.images = vec!["bottom:latest".into()];
    store.create_task(&bottom).await.unwrap();
    let old = format!("sha256:{}", "0".repeat(64));
    let bases: Vec<BaseDependency> = ["left", "right"]
        .iter()
        .map(|side| BaseDependency {
            image: format!("{REG}/{side}:latest"),
            digest: Some(old.clone()),
            runtime: true,
        })
        .collect();
    store.set_dependencies("bottom", &bases).await.unwrap();
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap());
    let decide = |side: &'static str, d: char| {
        let (store, clock) = (store.clone(), &clock);
        async move {
            let deps = UpdateDeps {
                store: &store,
                clock,
                registry: Some(REG),
            };
            let update = TagUpdate {
                image: format!("{REG}/{side}:latest"),
                digest: format!("sha256:{}", d.to_string().repeat(64)),
                media_type: None,
                event_id: None,
                first_sighting: false,
                platforms: None,
            };
            process_update(&deps, &update, "test").await.unwrap()
        }
    };
    let (l, r) = tokio::join!(decide("left", 'l'), decide("right", 'r'));
    let started = l.new_runs.len() + r.new_runs.len();
    assert_eq!(started, 1, "{l:?}\n{r:?}");
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
}

/// `record_delivery` is one `TransactWriteItems`: 20 concurrent copies of a
/// delivery give one event and the same answer; a blocked dedupe key keeps
/// its run out; another source's id is another delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn record_delivery_claims_a_delivery_id_once() {
    use crtask_core::ports::{DeliveryRecorded, DeliverySummary, DeliveryWrite, Summarize};
    let store = harness::store().await;
    let summarize: Summarize = Arc::new(|runs, blocked| DeliverySummary {
        outcome: if blocked.iter().any(Option::is_none) {
            Outcome::Triggered
        } else {
            Outcome::Duplicate
        },
        reason: format!("{} blocked", blocked.iter().filter(|b| b.is_some()).count()),
        runs: runs.iter().map(|r| r.run_id.clone()).collect(),
    });
    let write = |delivery: &str, source: EventSource, keys: &[&str]| DeliveryWrite {
        source,
        delivery_id: Some(delivery.into()),
        received_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
        detail: serde_json::json!({"delivery": delivery}),
        runs: keys
            .iter()
            .map(|k| run("", Some("web"), RunStatus::Queued, Some(k)))
            .collect(),
    };
    let mut handles = Vec::new();
    for _ in 0..20 {
        let (s, w, f) = (
            store.clone(),
            write("g-1", EventSource::Git, &["commit:web@a"]),
            summarize.clone(),
        );
        handles.push(tokio::spawn(async move {
            s.record_delivery(w, f).await.unwrap()
        }));
    }
    let mut new = Vec::new();
    let mut seen = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            DeliveryRecorded::New { event, new_runs } => new.push((event, new_runs)),
            DeliveryRecorded::Seen(e) => seen.push(e),
        }
    }
    assert_eq!(new.len(), 1, "one copy records the delivery");
    let (event, new_runs) = &new[0];
    assert_eq!(new_runs.len(), 1);
    assert_eq!(event.runs, [new_runs[0].run_id.clone()]);
    assert!(seen.iter().all(|e| e == event), "{seen:?} vs {event:?}");
    let events = store
        .list_events(Some(EventSource::Git), 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1);

    // A new delivery of the same commit: the key is blocked, no run; two
    // runs of one delivery with one key: the second is blocked by the first.
    let DeliveryRecorded::New { event, new_runs } = store
        .record_delivery(
            write(
                "g-2",
                EventSource::Git,
                &["commit:web@a", "commit:web@b", "commit:web@b"],
            ),
            summarize.clone(),
        )
        .await
        .unwrap()
    else {
        panic!("g-2 is new");
    };
    assert_eq!(event.reason, "2 blocked");
    assert_eq!(new_runs.len(), 1);
    assert_eq!(new_runs[0].dedupe_key.as_deref(), Some("commit:web@b"));
    assert_eq!(
        store.list_runs(&RunFilter::default()).await.unwrap().len(),
        2
    );
    // The same id from another source is another delivery.
    let other = store
        .record_delivery(write("g-1", EventSource::Registry, &[]), summarize.clone())
        .await
        .unwrap();
    assert!(matches!(other, DeliveryRecorded::New { .. }), "{other:?}");
    let found = store.find_delivery(EventSource::Git, "g-1").await.unwrap();
    assert_eq!(found.as_ref(), Some(&new[0].0));
}

/// A multi-platform run on AWS: one StartBuild per platform, each on its
/// native machine (arm64 on ARM_CONTAINER) with its own idempotency token,
/// building one platform and pushing it to the run's staging tag. The
/// requests are checked as computed (moto ignores environment overrides)
/// and then sent to the emulator, which starts two builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_multi_platform_run_starts_one_native_build_per_platform() {
    use crtask_aws::codebuild::{platform_start_request, send_start_build};
    use crtask_core::build::fanout;
    let conf = harness::sdk_config().await;
    let cb = crtask_aws::config::codebuild(&conf);
    let project = codebuild::project(&cb, "crtask-multi").await;
    let mut r = run("ca1", Some("web"), RunStatus::Queued, None);
    r.spec.platform = Some("linux/amd64,linux/arm64".into());
    r.spec.images = vec!["web:{{.Run.ID}}".into()];
    r.platform = "linux/amd64,linux/arm64".into();
    let registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let builds = fanout::plan(&["linux/amd64".into(), "linux/arm64".into()]).unwrap();
    let reqs: Vec<_> = builds
        .iter()
        .map(|b| platform_start_request(&r, b, &project, Some(registry), None).unwrap())
        .collect();
    let kinds: Vec<_> = reqs
        .iter()
        .map(|q| {
            (
                q.environment_type_override.as_deref().unwrap(),
                q.env("CRTASK_PLATFORM").unwrap(),
                q.env("CRTASK_BUILD_ROLE").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("LINUX_CONTAINER", "linux/amd64", "platform"),
            ("ARM_CONTAINER", "linux/arm64", "platform")
        ]
    );
    assert!(reqs[1]
        .image_override
        .as_deref()
        .unwrap()
        .contains("aarch64"));
    assert_eq!(
        reqs[1].env("CRTASK_STAGING_TAG"),
        Some(format!("{registry}/web:crtask-ca1-linux-arm64").as_str())
    );
    assert_ne!(reqs[0].idempotency_token, reqs[1].idempotency_token);
    // Each CRTASK_* variable appears once.
    let names: BTreeSet<&str> = reqs[1]
        .environment_variables_override
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(names.len(), reqs[1].environment_variables_override.len());

    let mut ids = BTreeSet::new();
    for q in &reqs {
        ids.insert(send_start_build(&cb, q).await.unwrap());
    }
    assert_eq!(ids.len(), 2, "two builds started: {ids:?}");

    // A platform CodeBuild cannot build natively is refused before any build.
    let e = fanout::plan(&["linux/amd64".into(), "linux/s390x".into()]).unwrap_err();
    assert!(e.to_string().contains("cannot be built on AWS"), "{e}");
}
