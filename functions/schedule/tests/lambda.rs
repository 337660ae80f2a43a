//! The `schedule` binary as a process against a Lambda Runtime API emulator,
//! with DynamoDB and Secrets Manager on `moto_server` and CodeBuild on a
//! recording stub: signed timer payloads as EventBridge Scheduler delivers
//! them (the schedule's input with the scheduled time filled in), replays,
//! forgeries, stale and malformed payloads.

fn task(name: &str, timers: &[(&str, &str, bool)]) -> Task {
    TaskBuilder::new(name)
        .commit_trigger(false)
        .base_image_trigger(false)
        .timers(timers)
        .created(Utc::now())
        .build()
}

use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use crtask_core::domain::model::{EventSource, RunFilter, RunType, Task, Trigger};
use crtask_core::ports::Store;
use crtask_core::signing::Secret;
use crtask_core::trigger::timer::handler::occurrence_key;
use crtask_core::trigger::timer::scheduler::{
    schedule_input, schedule_name, SCHEDULED_TIME_PLACEHOLDER,
};
use crtask_testkit::aws as harness;
use crtask_testkit::aws::lambda::{self, Function, RecordingStub};
use crtask_testkit::{RunBuilder, TaskBuilder};
use serde_json::{json, Value};
use std::path::Path;

const KEY: &str = "the-schedule-signing-secret-in-moto";

struct Fixture {
    store: crtask_aws::DynamoStore,
    codebuild: RecordingStub,
    function: Function,
}

async fn fixture_env() -> Fixture {
    fixture_with(&[]).await
}

/// The function with the stack's variables and `extra` ones.
async fn fixture_with(extra: &[(&str, &str)]) -> Fixture {
    let store = harness::store().await;
    let secret_arn = harness::secret("crtask/schedule/signing", KEY).await;
    let codebuild = RecordingStub::codebuild();
    let mut vars = vec![
        ("CRTASK_TABLE", store.table()),
        ("CRTASK_BUCKET", "crtask-ctx"),
        ("CRTASK_BUILDER_PROJECT", "crtask-builder"),
        ("CRTASK_SCHEDULE_SECRET_ARN", &secret_arn),
        ("CRTASK_SCHEDULE_GROUP", "crtask-timers"),
        ("CRTASK_POLL_INTERVAL", "300"),
        ("CRTASK_SETTLE_WINDOW", "0"),
    ];
    vars.extend_from_slice(extra);
    let function = Function::start(
        Path::new(env!("CARGO_BIN_EXE_schedule")),
        harness::endpoint(),
        Some(&codebuild.url()),
        &vars,
    );
    Fixture {
        store,
        codebuild,
        function,
    }
}

impl Fixture {
    async fn invoke(&self, event: &Value) -> Value {
        tokio::task::block_in_place(|| self.function.invoke(event)).response()
    }

    fn starts(&self) -> usize {
        self.codebuild.calls("StartBuild").len()
    }

    async fn timer_events(&self) -> Vec<crtask_core::domain::model::EventRecord> {
        self.store
            .list_events(Some(EventSource::Timer), 100)
            .await
            .unwrap()
    }
}

/// This minute, as Scheduler gives scheduled times.
fn this_minute() -> DateTime<Utc> {
    let now = Utc::now();
    now - Duration::seconds(i64::from(now.second()))
        - Duration::nanoseconds(i64::from(now.nanosecond()))
}

/// The payload Scheduler delivers for the schedule of (`task`, `timer`),
/// signed with `key`, due at `at`.
fn delivery(key: &str, task: &str, timer: &str, at: DateTime<Utc>) -> Value {
    let input =
        schedule_input(&Secret::new(key), task, timer, &schedule_name(task, timer)).to_string();
    let text = input.replace(
        SCHEDULED_TIME_PLACEHOLDER,
        &at.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genuine_payload_starts_one_run_and_a_replay_starts_nothing() {
    let f = fixture_env().await;
    f.store
        .create_task(&task("app", &[("t1", "* * * * *", true)]))
        .await
        .unwrap();
    let at = this_minute();
    let payload = delivery(KEY, "app", "t1", at);

    let answer = f.invoke(&payload).await;
    assert_eq!(answer["outcome"], "triggered", "{answer}");
    let runs = f
        .store
        .list_runs(&RunFilter {
            task: Some("app".into()),
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(answer["runs"], json!([run.run_id]));
    assert_eq!(run.run_type, RunType::AutoBuild);
    assert_eq!(
        run.trigger,
        Trigger::Timer {
            timer_name: "t1".into(),
            scheduled_time: at
        }
    );
    let key = occurrence_key("app", "t1", at);
    assert_eq!(run.dedupe_key.as_deref(), Some(key.as_str()));
    assert!(run.builder_ref.is_some(), "dispatched: {run:?}");
    assert_eq!(f.starts(), 1);
    let start = &f.codebuild.calls("StartBuild")[0];
    assert_eq!(start["projectName"], "crtask-builder");
    let event = f
        .store
        .find_delivery(EventSource::Timer, &key)
        .await
        .unwrap()
        .expect("the occurrence's event");
    assert_eq!(event.outcome.as_str(), "triggered");
    assert_eq!(event.runs, vec![run.run_id.clone()]);
    assert_eq!(
        event.detail["scheduledTime"],
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );

    // The same delivery again (a Scheduler or Lambda retry, or a replay).
    let answer = f.invoke(&payload).await;
    assert_eq!(answer["outcome"], "duplicate", "{answer}");
    assert_eq!(answer["runs"], json!([run.run_id]));
    assert_eq!(f.starts(), 1, "a replay must start nothing");
    let runs = f.store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    let events = f.timer_events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].outcome.as_str(), "duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_malformed_payloads_are_rejected_and_recorded() {
    let f = fixture_env().await;
    f.store
        .create_task(&task("app", &[("t1", "* * * * *", true)]))
        .await
        .unwrap();
    let now = this_minute();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "forged signature",
            delivery("not-the-secret", "app", "t1", now),
            "signature does not match for task 'app' timer 't1'",
        ),
        (
            "altered task",
            {
                let mut p = delivery(KEY, "app", "t1", now);
                p["task"] = "other".into();
                p
            },
            "signature does not match",
        ),
        (
            "stale",
            delivery(KEY, "app", "t1", now - Duration::minutes(30)),
            "in the past, more than the 15 min allowed",
        ),
        (
            "from the future",
            delivery(KEY, "app", "t1", now + Duration::minutes(30)),
            "in the future",
        ),
        (
            "placeholder left",
            serde_json::from_str(
                &schedule_input(&Secret::new(KEY), "app", "t1", "app.t1").to_string(),
            )
            .unwrap(),
            "still the placeholder",
        ),
        (
            "malformed json",
            Value::String(r#"{"task": "app", "timer": "#.into()),
            "not valid JSON",
        ),
        ("not an object", json!([1, 2, 3]), "must be a JSON object"),
        (
            "field missing",
            json!({"task": "app", "timer": "t1", "scheduledTime": "x"}),
            "missing field 'schedule'",
        ),
    ];
    for (name, payload, want) in &cases {
        let answer = f.invoke(payload).await;
        assert_eq!(answer["outcome"], "rejected", "{name}: {answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(want), "{name}: {reason}");
    }
    assert_eq!(f.starts(), 0, "nothing may start");
    assert!(f
        .store
        .list_runs(&RunFilter::default())
        .await
        .unwrap()
        .is_empty());
    let events = f.timer_events().await;
    assert_eq!(events.len(), cases.len());
    assert!(events
        .iter()
        .all(|e| e.outcome.as_str() == "rejected" && e.delivery_id.is_none()));
    // What a forgery claimed is kept for the record.
    let forged = events.last().unwrap();
    assert_eq!(forged.detail["claimed"]["task"], "app");

    // The genuine delivery still fires after all that.
    let answer = f.invoke(&delivery(KEY, "app", "t1", now)).await;
    assert_eq!(answer["outcome"], "triggered", "{answer}");
    assert_eq!(f.starts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genuine_payloads_for_gone_disabled_or_mismatched_timers_start_nothing() {
    let f = fixture_env().await;
    let now = this_minute();
    let other_minute = (now.minute() + 30) % 60;
    f.store
        .create_task(&task(
            "app",
            &[
                ("off", "* * * * *", false),
                ("hourly", &format!("{other_minute} * * * *"), true),
            ],
        ))
        .await
        .unwrap();
    let renamed = {
        let mut p = delivery(KEY, "app", "off", now);
        // Signed correctly, but for a schedule name crtask would not use.
        let input = schedule_input(&Secret::new(KEY), "app", "off", "app-off").to_string();
        p = serde_json::from_str(&input.replace(
            SCHEDULED_TIME_PLACEHOLDER,
            p["scheduledTime"].as_str().unwrap(),
        ))
        .unwrap();
        p
    };
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "task deleted",
            delivery(KEY, "gone", "t1", now),
            "rejected",
            "task 'gone' does not exist",
        ),
        (
            "timer removed",
            delivery(KEY, "app", "t9", now),
            "rejected",
            "task 'app' has no timer 't9'",
        ),
        (
            "timer disabled",
            delivery(KEY, "app", "off", now),
            "ignored",
            "timer 'off' of task 'app' is disabled",
        ),
        (
            "not an occurrence",
            delivery(KEY, "app", "hourly", now),
            "rejected",
            "is not an occurrence of timer 'hourly'",
        ),
        (
            "seconds in the time",
            delivery(KEY, "app", "off", now + Duration::seconds(7)),
            "rejected",
            "is not a whole minute",
        ),
        (
            "other schedule name",
            renamed,
            "rejected",
            "names schedule 'app-off', but the schedule of task 'app' timer 'off' is 'app.off'",
        ),
    ];
    for (name, payload, outcome, want) in &cases {
        let answer = f.invoke(payload).await;
        assert_eq!(answer["outcome"], *outcome, "{name}: {answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(want), "{name}: {reason}");
    }
    assert_eq!(f.starts(), 0);
    assert!(f
        .store
        .list_runs(&RunFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(f.timer_events().await.len(), cases.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_tick_is_answered() {
    let f = fixture_env().await;
    let answer = f
        .invoke(&json!({"kind": "poll-tick", "scheduledTime": Utc::now().to_rfc3339()}))
        .await;
    // Nothing is tracked yet: a round with no requests and no runs.
    assert_eq!(
        answer,
        json!({"outcome": "polled", "requests": 0, "runs": [], "resumed": []})
    );
    assert_eq!(f.starts(), 0);
    // A tick is not a timer payload: no timer event.
    assert!(f.timer_events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_tick_hands_over_runs_that_never_reached_codebuild() {
    use crtask_core::domain::model::{Run, RunStatus};
    let f = fixture_env().await;
    let run = |id: &str, age_min: i64, builder_ref: Option<&str>, status: RunStatus| -> Run {
        RunBuilder::new(id)
            .task(Some("app"))
            .status(status)
            .trigger(Trigger::Manual)
            .created(Utc::now() - Duration::minutes(age_min))
            .builder_ref(builder_ref)
            .images(&["app:{{.Run.ID}}"])
            .build()
    };
    // Lost: queued 10 minutes ago, never handed to CodeBuild.
    f.store
        .insert_run(&run("ca1", 10, None, RunStatus::Queued))
        .await
        .unwrap();
    // Just recorded: its dispatcher may still be in its settle window.
    f.store
        .insert_run(&run("ca2", 0, None, RunStatus::Queued))
        .await
        .unwrap();
    // Already dispatched, and finished.
    f.store
        .insert_run(&run(
            "ca3",
            10,
            Some("crtask-builder:b3"),
            RunStatus::Queued,
        ))
        .await
        .unwrap();
    f.store
        .insert_run(&run("ca4", 10, None, RunStatus::Failed))
        .await
        .unwrap();

    let tick = json!({"kind": "poll-tick", "scheduledTime": Utc::now().to_rfc3339()});
    let answer = f.invoke(&tick).await;
    assert_eq!(answer["resumed"], json!(["ca1"]), "{answer}");
    let calls = f.codebuild.calls("StartBuild");
    assert_eq!(calls.len(), 1);
    assert!(calls[0]["environmentVariablesOverride"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "CRTASK_RUN_ID" && v["value"] == "ca1"));
    let ca1 = f.store.get_run("ca1").await.unwrap().unwrap();
    assert!(ca1.builder_ref.is_some(), "{ca1:?}");
    // The next tick has nothing left to hand over.
    let answer = f.invoke(&tick).await;
    assert_eq!(answer["resumed"], json!([]), "{answer}");
    assert_eq!(f.starts(), 1);
}

#[cfg(target_os = "linux")]
#[test]
fn binary_is_linked_position_dependent() {
    lambda::assert_position_dependent(Path::new(env!("CARGO_BIN_EXE_schedule")));
}

/// Continuous patching's tick (the input of the schedule `crtask patch
/// config set` creates): the due occurrence of the stored configuration
/// queues one Patch run per matching tag of the ECR repository (listed with
/// `ListImages` on moto), each handed to CodeBuild with its patch request;
/// the same occurrence is handled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_tick_queues_one_patch_run_per_matching_tag_once() {
    use crtask_core::patch::continuous::{parse_config, PatchSchedule};
    let registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let repo = harness::unique("patched-app");
    let f = fixture_with(&[("CRTASK_REGISTRY_HOST", registry)]).await;
    let (store, codebuild) = (&f.store, &f.codebuild);
    let invoke =
        |event: &Value| tokio::task::block_in_place(|| f.function.invoke(event)).response();
    let tick = json!({"kind": "patch-tick", "scheduledTime": Utc::now().to_rfc3339()});

    // No configuration: answered, nothing queued.
    let answer = invoke(&tick);
    assert_eq!(answer["outcome"], "patched", "{answer}");
    assert_eq!(answer["runs"], json!([]), "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("no continuous patching configuration"),
        "{answer}"
    );

    harness::registry::ecr_repository_with_tags(&repo, &["1", "1.2", "2", "1-1"]).await;
    let config = parse_config(
        format!(
            r#"{{"version": "v1", "repositories": [
                {{"repository": "{repo}", "tags": ["1*"], "enabled": true}},
                {{"repository": "elsewhere", "tags": ["*"], "enabled": false}}]}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    // Configured a day and a minute ago: one occurrence is due.
    let created = Utc::now() - Duration::days(1) - Duration::minutes(1);
    let schedule = PatchSchedule::new(config, "1d", created).unwrap();
    store.put_patch_schedule(&schedule).await.unwrap();

    let answer = invoke(&tick);
    assert_eq!(answer["outcome"], "patched", "{answer}");
    let runs: Vec<String> = answer["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    // `1` and `1.2` match; `1-1` is a patch of `1`; `2` does not match.
    assert_eq!(runs.len(), 2, "{answer}");
    let mut images = Vec::new();
    for id in &runs {
        let run = store.get_run(id).await.unwrap().expect("run");
        assert_eq!(run.run_type, RunType::Patch);
        assert!(matches!(run.trigger, Trigger::Patch { .. }), "{run:?}");
        assert!(run.builder_ref.is_some(), "dispatched: {run:?}");
        images.push(run.patch.unwrap().request.image);
    }
    images.sort();
    assert_eq!(
        images,
        [
            format!("{registry}/{repo}:1"),
            format!("{registry}/{repo}:1.2")
        ]
    );
    let calls = codebuild.calls("StartBuild");
    assert_eq!(calls.len(), 2);
    for call in &calls {
        let env = call["environmentVariablesOverride"].as_array().unwrap();
        let get = |name: &str| {
            env.iter()
                .find(|v| v["name"] == name)
                .map(|v| v["value"].as_str().unwrap().to_string())
        };
        assert_eq!(get("CRTASK_ENGINE").as_deref(), Some("buildah"), "{call}");
        assert_eq!(get("CRTASK_RUN_TYPE").as_deref(), Some("Patch"), "{call}");
        let patch: Value =
            serde_json::from_str(&get("CRTASK_PATCH").expect("CRTASK_PATCH")).unwrap();
        assert!(
            patch["image"].as_str().unwrap().starts_with(registry),
            "{patch}"
        );
        assert_eq!(patch["config"], "continuous-patch", "{patch}");
    }

    // The same occurrence again (Scheduler retried): nothing more.
    let answer = invoke(&tick);
    assert_eq!(answer["runs"], json!([]), "{answer}");
    assert_eq!(codebuild.calls("StartBuild").len(), 2);
}
