//! The poll tick against a private ECR-style registry: a CNCF distribution
//! registry that requires, as HTTP Basic, exactly the credential moto's
//! `GetAuthorizationToken` returns for the account (`htpasswd` built from
//! that token). ECR host names cannot be served here, so the tests map
//! `123456789012.dkr.ecr.us-east-1.amazonaws.com` to the local registry
//! with the tests-only endpoint override (`CRTASK_TEST_REGISTRY_ENDPOINTS`);
//! the host the poller matches as ECR, and asks a token for, is the real
//! name.

use chrono::Utc;
use crtask_core::domain::model::{BaseDependency, EventSource, Outcome, RunFilter, Trigger};
use crtask_core::ports::Store;
use crtask_registry::{PollConfig, Poller};
use crtask_testkit::aws as harness;
use crtask_testkit::aws::lambda::{Function, RecordingStub};
use crtask_testkit::aws::registry::{ecr_token, AuthRegistry};
use crtask_testkit::{FixedClock, TaskBuilder};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const ACCOUNT: &str = "123456789012";
const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const OLD: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The registry helper is blocking (its own HTTP client).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A task built on `ECR/base:1`, last built from [`OLD`].
async fn task_on_ecr_base(store: &dyn Store) -> String {
    let image = format!("{ECR}/base:1");
    let task = TaskBuilder::new("app")
        .images(&["app:1"])
        .created(Utc::now())
        .build();
    store.create_task(&task).await.unwrap();
    store
        .set_dependencies(
            "app",
            &[BaseDependency {
                image: image.clone(),
                digest: Some(OLD.into()),
                runtime: true,
            }],
        )
        .await
        .unwrap();
    image
}

fn start_function(
    store: &crtask_aws::DynamoStore,
    codebuild: &RecordingStub,
    registry: &AuthRegistry,
) -> Function {
    let endpoints = format!("{ECR}={}", registry.url());
    Function::start(
        Path::new(env!("CARGO_BIN_EXE_schedule")),
        harness::endpoint(),
        Some(&codebuild.url()),
        &[
            ("CRTASK_TABLE", store.table()),
            ("CRTASK_BUCKET", "crtask-ctx"),
            ("CRTASK_BUILDER_PROJECT", "crtask-builder"),
            ("CRTASK_SCHEDULE_SECRET_ARN", "arn:unused"),
            ("CRTASK_SCHEDULE_GROUP", "crtask-timers"),
            ("CRTASK_POLL_INTERVAL", "60"),
            ("CRTASK_SETTLE_WINDOW", "0"),
            ("CRTASK_TEST_REGISTRY_ENDPOINTS", &endpoints),
        ],
    )
}

/// The acceptance: the tick asks ECR (moto) for the token, the registry
/// lets it in, and the moved digest starts a run of the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_tick_sends_the_ecr_token_and_detects_a_moved_digest() {
    let (user, password) = ecr_token(ACCOUNT).await;
    assert_eq!(user, "AWS");
    let registry = blocking(|| AuthRegistry::start(&user, &password));
    let digest = blocking(|| registry.push("base", "1", "v2"));
    let store = harness::store().await;
    let image = task_on_ecr_base(&store).await;
    let codebuild = RecordingStub::codebuild();
    let function = start_function(&store, &codebuild, &registry);

    let tick = json!({"kind": "poll-tick", "scheduledTime": Utc::now().to_rfc3339()});
    let answer = tokio::task::block_in_place(|| function.invoke(&tick)).response();
    assert_eq!(answer["outcome"], "polled", "{answer}");
    assert_eq!(answer["runs"].as_array().map(Vec::len), Some(1), "{answer}");
    assert!(
        function
            .aws_calls()
            .iter()
            .any(|op| op == "GetAuthorizationToken"),
        "{:?}",
        function.aws_calls()
    );
    // Anonymous first (401), then with the token (200).
    assert_eq!(
        registry.manifest_heads("base", 401),
        1,
        "{}",
        registry.log()
    );
    assert_eq!(
        registry.manifest_heads("base", 200),
        1,
        "{}",
        registry.log()
    );
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    match &runs[0].trigger {
        Trigger::ImageUpdate {
            image: i,
            old_digest,
            new_digest,
            ..
        } => {
            assert_eq!(i, &image);
            assert_eq!(old_digest.as_deref(), Some(OLD));
            assert_eq!(new_digest, &digest);
        }
        other => panic!("not an image update: {other:?}"),
    }
    assert_eq!(codebuild.calls("StartBuild").len(), 1);
    // The token never reaches the log.
    assert!(
        !function.log_lines().iter().any(|l| l.contains(&password)),
        "the token was logged"
    );
}

/// Wrong credentials (the registry wants another password than the token):
/// one `rejected` event naming the host and why, not an `ignored` one per
/// round; once the registry answers again, a later refusal is recorded anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_ecr_token_is_recorded_once_with_a_clear_reason() {
    let registry = blocking(|| AuthRegistry::start("AWS", "not-the-token"));
    blocking(|| registry.push("base", "1", "v2"));
    let store = harness::store().await;
    let image = task_on_ecr_base(&store).await;
    let sdk = harness::sdk_config().await;
    let creds = Arc::new(crtask_aws::registry_credentials::AwsRegistryCredentials::new(&sdk));
    let cfg = PollConfig {
        interval: std::time::Duration::from_secs(60),
        endpoints: BTreeMap::from([(ECR.to_string(), registry.url())]),
        ..PollConfig::default()
    };
    let mut poller = Poller::new(cfg).with_credentials(creds.clone());
    let clock = FixedClock::at("2026-01-01T00:00:00Z");
    for _ in 0..3 {
        let round = poller.round(&store, &clock).await;
        assert!(round.new_runs.is_empty());
        assert!(round.requests >= 1);
        clock.advance(chrono::Duration::seconds(120));
    }
    let events = store
        .list_events(Some(EventSource::Poll), 50)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.detail["image"], image);
    assert!(
        e.reason
            .contains(&format!("refused the credential crtask has for {ECR}")),
        "{}",
        e.reason
    );
    assert!(store
        .list_runs(&RunFilter::default())
        .await
        .unwrap()
        .is_empty());
    // moto's tokens carry an expiry in the past: never cached, asked per
    // round (a real 12-hour token is kept: see the core's token_usable).
    assert_eq!(creds.token_calls(), 3);
}

/// A registry covered by the stack's EventBridge rule is never polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stacks_own_registry_is_not_polled() {
    let registry = blocking(|| AuthRegistry::start("AWS", "x"));
    let store = harness::store().await;
    task_on_ecr_base(&store).await;
    let cfg = PollConfig {
        interval: std::time::Duration::from_secs(60),
        endpoints: BTreeMap::from([(ECR.to_string(), registry.url())]),
        covered_by_events: vec![ECR.to_string()],
        ..PollConfig::default()
    };
    let mut poller = Poller::new(cfg);
    let clock = FixedClock::at("2026-01-01T00:00:00Z");
    let round = poller.round(&store, &clock).await;
    assert_eq!(round.requests, 0);
    assert!(store.list_events(None, 10).await.unwrap().is_empty());
}
