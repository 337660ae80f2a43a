//! Timer schedules on `moto_server`'s EventBridge Scheduler: create, update,
//! disable, delete, and the signed input.
//!
//! moto stores schedules as given: it does not validate names, expressions
//! or targets, and creating a schedule in a group that does not exist fails
//! with an internal error instead of `ResourceNotFoundException`. So these
//! tests check what crtask sends (the expression conversion itself is
//! table-tested in crtask-core), and create the group first.

use chrono::{DateTime, Utc};
use crtask_aws::scheduler::{ScheduleSettings, SyncReport, TimerSchedules};
use crtask_core::domain::model::Task;
use crtask_core::signing::Secret;
use crtask_core::trigger::timer::scheduler::{
    schedule_name, verify_schedule, Skew, SCHEDULED_TIME_PLACEHOLDER,
};
use crtask_testkit::aws as harness;
use crtask_testkit::TaskBuilder;
use serde_json::Value;

fn task(name: &str, timers: &[(&str, &str, bool)]) -> Task {
    TaskBuilder::new(name)
        .context("/dev/null")
        .commit_trigger(false)
        .base_image_trigger(false)
        .timers(timers)
        .build()
}

const KEY: &str = "schedule-signing-key-for-tests";
const TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:crtask-schedule";
const ROLE: &str = "arn:aws:iam::123456789012:role/crtask-scheduler";
const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:crtask-failed";

async fn setup() -> (aws_sdk_scheduler::Client, TimerSchedules) {
    let conf = harness::sdk_config().await;
    let client = crtask_aws::config::scheduler(&conf);
    let group = harness::unique("crtask-timers");
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create schedule group");
    let schedules = TimerSchedules::new(
        client.clone(),
        ScheduleSettings {
            group,
            target_arn: TARGET.into(),
            role_arn: ROLE.into(),
            dead_letter_arn: Some(DLQ.into()),
        },
        Secret::new(KEY),
    );
    (client, schedules)
}

async fn get(
    client: &aws_sdk_scheduler::Client,
    s: &TimerSchedules,
    name: &str,
) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
    match client
        .get_schedule()
        .group_name(&s.settings().group)
        .name(name)
        .send()
        .await
    {
        Ok(o) => Some(o),
        Err(e)
            if e.as_service_error()
                .is_some_and(|x| x.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetSchedule {name}: {e:?}"),
    }
}

/// The input as delivered: the placeholder replaced by `at`.
fn delivered(input: &str, at: DateTime<Utc>) -> Vec<u8> {
    input
        .replace(
            SCHEDULED_TIME_PLACEHOLDER,
            &at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_creates_updates_disables_and_deletes_schedules() {
    let (client, s) = setup().await;
    let v1 = task(
        "app",
        &[
            ("nightly", "0 2 * * *", true),
            ("t1", "*/30 * * * MON-FRI", false),
        ],
    );
    let report = s.sync_task_timers(None, Some(&v1)).await.unwrap();
    assert_eq!(
        report,
        SyncReport {
            created: vec!["app.nightly".into(), "app.t1".into()],
            ..SyncReport::default()
        }
    );

    let nightly = get(&client, &s, "app.nightly")
        .await
        .expect("nightly schedule");
    assert_eq!(nightly.schedule_expression(), Some("cron(0 2 * * ? *)"));
    assert_eq!(nightly.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(nightly.state().map(|x| x.as_str()), Some("ENABLED"));
    assert_eq!(
        nightly.flexible_time_window().map(|w| w.mode().as_str()),
        Some("OFF")
    );
    let target = nightly.target().expect("target");
    assert_eq!(target.arn(), TARGET);
    assert_eq!(target.role_arn(), ROLE);
    assert_eq!(target.dead_letter_config().and_then(|d| d.arn()), Some(DLQ));
    let retry = target.retry_policy().expect("retry policy");
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(900));
    assert_eq!(retry.maximum_retry_attempts(), Some(5));

    // The input: the placeholder Scheduler fills in, and a valid signature.
    let input = target.input().expect("input");
    let v: Value = serde_json::from_str(input).unwrap();
    assert_eq!(v["task"], "app");
    assert_eq!(v["timer"], "nightly");
    assert_eq!(v["schedule"], "app.nightly");
    assert_eq!(v["scheduledTime"], SCHEDULED_TIME_PLACEHOLDER);
    let now = Utc::now();
    let p = verify_schedule(
        &[Secret::new(KEY)],
        &delivered(input, now),
        now,
        Skew::default(),
    )
    .expect("the stored input verifies with the signing key");
    assert_eq!((p.task.as_str(), p.timer.as_str()), ("app", "nightly"));
    let wrong = verify_schedule(
        &[Secret::new("another key")],
        &delivered(input, now),
        now,
        Skew::default(),
    );
    assert!(wrong.is_err(), "{wrong:?}");

    let t1 = get(&client, &s, "app.t1").await.expect("t1 schedule");
    assert_eq!(t1.schedule_expression(), Some("cron(0,30 * ? * MON-FRI *)"));
    assert_eq!(t1.state().map(|x| x.as_str()), Some("DISABLED"));

    // Update: nightly moves, t1 is removed, weekly is added.
    let v2 = task(
        "app",
        &[
            ("nightly", "0 3 * * *", false),
            ("weekly", "0 4 * * SUN", true),
        ],
    );
    let report = s.sync_task_timers(Some(&v1), Some(&v2)).await.unwrap();
    assert_eq!(
        report,
        SyncReport {
            created: vec!["app.weekly".into()],
            updated: vec!["app.nightly".into()],
            deleted: vec!["app.t1".into()],
        }
    );
    let nightly = get(&client, &s, "app.nightly").await.unwrap();
    assert_eq!(nightly.schedule_expression(), Some("cron(0 3 * * ? *)"));
    assert_eq!(nightly.state().map(|x| x.as_str()), Some("DISABLED"));
    assert!(get(&client, &s, "app.t1").await.is_none());
    assert_eq!(s.list("app.").await.unwrap(), ["app.nightly", "app.weekly"]);

    // Re-enable: the same schedule, ENABLED again.
    let v3 = task(
        "app",
        &[
            ("nightly", "0 3 * * *", true),
            ("weekly", "0 4 * * SUN", true),
        ],
    );
    s.sync_task_timers(Some(&v2), Some(&v3)).await.unwrap();
    let nightly = get(&client, &s, "app.nightly").await.unwrap();
    assert_eq!(nightly.state().map(|x| x.as_str()), Some("ENABLED"));

    // Delete the task: every schedule goes; deleting again is a no-op.
    let report = s.sync_task_timers(Some(&v3), None).await.unwrap();
    assert_eq!(report.deleted, ["app.nightly", "app.weekly"]);
    assert!(s.list("").await.unwrap().is_empty());
    let report = s.sync_task_timers(Some(&v3), None).await.unwrap();
    assert_eq!(report, SyncReport::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_is_idempotent_and_checks_crons_before_any_call() {
    let (client, s) = setup().await;
    let v1 = task("web", &[("t1", "@daily", true)]);
    s.sync_task_timers(None, Some(&v1)).await.unwrap();
    // Again, as after a partial failure: the existing schedule is updated.
    let report = s.sync_task_timers(None, Some(&v1)).await.unwrap();
    assert_eq!(report.updated, ["web.t1"]);
    assert!(report.created.is_empty());

    // A cron Scheduler cannot express: nothing is sent, even for the other timers.
    let bad = task(
        "web",
        &[("t1", "0 5 * * *", true), ("both", "0 0 1 * MON", true)],
    );
    let e = s
        .sync_task_timers(Some(&v1), Some(&bad))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("timer 'both': cron '0 0 1 * MON'"), "{e}");
    let t1 = get(&client, &s, "web.t1").await.unwrap();
    assert_eq!(t1.schedule_expression(), Some("cron(0 0 * * ? *)"));

    // Long names are hashed into Scheduler's limits, the same each time.
    let long = "a-task-whose-name-is-long-enough-to-need-a-hash-xy";
    let lt = task(long, &[("nightly-refresh", "0 1 * * *", true)]);
    let report = s.sync_task_timers(None, Some(&lt)).await.unwrap();
    let name = schedule_name(long, "nightly-refresh");
    assert_eq!(report.created, vec![name.clone()]);
    assert!(name.len() <= 64, "{name}");
    let got = get(&client, &s, &name).await.expect("hashed schedule");
    let v: Value = serde_json::from_str(got.target().unwrap().input().unwrap()).unwrap();
    assert_eq!(v["task"], long);
    assert_eq!(v["schedule"], name.as_str());

    // Deleting a timer whose schedule is already gone is not an error.
    assert!(!s.delete("web", "never-existed").await.unwrap());
}
