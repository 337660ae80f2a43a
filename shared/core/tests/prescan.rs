//! A task's Dockerfile is scanned when it is created (before its first run)
//! so base-image updates reach it: [`crtask_core::service::prescan`], on the
//! memory store.

use crtask_core::domain::model::BaseDependency;
use crtask_core::ports::Store;
use crtask_core::service::prescan;
use crtask_testkit::model::arg;
use crtask_testkit::{MemoryStore, TaskBuilder};

const DOCKERFILE: &str = "ARG BASE=registry.test/base:1\n\
FROM golang:1.22 AS build\n\
RUN go build\n\
FROM ${BASE}\n\
COPY --from=build /app /app\n";

#[tokio::test]
async fn bases_are_indexed_before_the_first_run_and_recorded_digests_kept() {
    let store = MemoryStore::default();
    let task = TaskBuilder::new("web").context("/srv/web").build();
    store.create_task(&task).await.unwrap();
    // A build already recorded the digest of the runtime base.
    let digest = format!("sha256:{}", "a".repeat(64));
    store
        .set_dependencies(
            "web",
            &[BaseDependency {
                image: "registry.test/base:1".into(),
                digest: Some(digest.clone()),
                runtime: true,
            }],
        )
        .await
        .unwrap();
    prescan(&store, &task, DOCKERFILE).await.unwrap();
    let mut deps = store.dependencies_of("web").await.unwrap();
    deps.sort_by(|a, b| a.image.cmp(&b.image));
    assert_eq!(
        deps,
        [
            BaseDependency {
                image: "docker.io/library/golang:1.22".into(),
                digest: None,
                runtime: false,
            },
            BaseDependency {
                image: "registry.test/base:1".into(),
                digest: Some(digest),
                runtime: true,
            },
        ]
    );

    // A build argument changes the runtime base: the index follows.
    let moved = TaskBuilder::new("web")
        .context("/srv/web")
        .build_args(vec![arg("BASE", "registry.test/base:2")])
        .build();
    prescan(&store, &moved, DOCKERFILE).await.unwrap();
    let deps = store.dependencies_of("web").await.unwrap();
    assert!(deps
        .iter()
        .any(|d| d.image == "registry.test/base:2" && d.runtime && d.digest.is_none()));
    assert!(!deps.iter().any(|d| d.image == "registry.test/base:1"));
}

#[tokio::test]
async fn task_files_are_not_scanned_and_broken_dockerfiles_change_nothing() {
    let store = MemoryStore::default();
    let task = TaskBuilder::new("multi").file("acr-task.yaml").build();
    store.create_task(&task).await.unwrap();
    prescan(&store, &task, DOCKERFILE).await.unwrap();
    assert!(store.dependencies_of("multi").await.unwrap().is_empty());

    let web = TaskBuilder::new("web").build();
    store.create_task(&web).await.unwrap();
    assert!(prescan(&store, &web, "RUN echo no FROM line\n")
        .await
        .is_err());
    assert!(store.dependencies_of("web").await.unwrap().is_empty());
}
