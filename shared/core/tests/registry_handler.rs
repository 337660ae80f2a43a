//! The registry notification handler on the in-memory store: a signed
//! distribution notification (captured from a real `docker-registry`, see
//! tests/fixtures/registry) moves a base image a task was built on, and the
//! decision, its answer and the run it records are a snapshot.

use crtask_core::domain::model::{BaseDependency, EventSource, Outcome};
use crtask_core::ports::Store;
use crtask_core::trigger::registry::handler::{handle, RegistryAuth, UpdateDeps};
use crtask_testkit::{sign, FixedClock, MemoryStore, TaskBuilder};
use serde_json::json;
use std::path::PathBuf;

const SECRET: &str = "registry-hmac-secret";
/// The digest `app` was last built on (before the fixture's push).
const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/registry")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[tokio::test]
async fn a_signed_base_image_push_rebuilds_its_dependent() {
    let store = MemoryStore::new();
    let app = TaskBuilder::new("app")
        .context("/dev/null")
        .images(&["app:latest"])
        .build();
    store.create_task(&app).await.unwrap();
    store
        .set_dependencies(
            "app",
            &[BaseDependency {
                image: "127.0.0.1:5931/base:1".into(),
                digest: Some(OLD.into()),
                runtime: true,
            }],
        )
        .await
        .unwrap();
    let clock = FixedClock::at("2026-11-27T10:00:00Z");
    let deps = UpdateDeps {
        store: &store,
        clock: &clock,
        registry: Some("127.0.0.1:5931"),
    };
    let secrets = [crtask_core::signing::Secret::new(SECRET)];
    let auth = RegistryAuth {
        tokens: &[],
        hmac_secrets: &secrets,
        registry_host: None,
    };
    let body = fixture("dist-push-manifest-oci-tagged.json");
    let headers = [
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            sign::REGISTRY_HEADER.to_string(),
            sign::registry(SECRET, &body),
        ),
    ];

    let (answer, runs) = handle(&deps, &auth, &headers, &body).await;
    let run = runs.first().map(crtask_core::service::run_json);
    insta::assert_json_snapshot!(
        "registry_update",
        json!({"status": answer.status, "body": answer.body(), "run": run})
    );
    assert_eq!(runs.len(), 1);
    let events = store
        .list_events(Some(EventSource::Registry), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].outcome, Outcome::Triggered);

    // A forged notification: 401, and only the rejection is recorded.
    let forged = [(
        sign::REGISTRY_HEADER.to_string(),
        sign::registry("not-the-secret", &body),
    )];
    let (answer, runs) = handle(&deps, &auth, &forged, &body).await;
    assert_eq!(answer.status, 401, "{}", answer.body());
    assert!(runs.is_empty());
    assert_eq!(store.list_runs(&Default::default()).await.unwrap().len(), 1);
}
