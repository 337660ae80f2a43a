//! Multi-platform runs on CodeBuild ([`crtask_core::build::fanout`]): one
//! build per platform on its native machine (amd64 on `LINUX_CONTAINER`,
//! arm64 on `ARM_CONTAINER`), started in parallel, each pushing its image
//! to the run's staging tag; then one assemble build (buildah, on the
//! project's own machine) that makes the image index and pushes it under
//! the run's tags. The builds are recorded in the run ([`Run::builds`]);
//! `build-status` applies their ends.

use super::{send_start_build, start_build_request, with_backoff, CodeBuildBuilder};
use super::{CoreError, StartBuildRequest};
use crtask_core::build::fanout::{self, machine_for, staging_tag, Machine, PlatformBuild, Role};
use crtask_core::domain::model::{PlatformImage, Run, RunStatus};
use crtask_core::trigger::build_status::build_id;

/// CodeBuild's x86-64 environment type and the image the project uses.
pub const X86_ENVIRONMENT: (&str, &str) = (
    "LINUX_CONTAINER",
    "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
);
/// CodeBuild's arm64 environment type and its standard image.
pub const ARM_ENVIRONMENT: (&str, &str) = (
    "ARM_CONTAINER",
    "aws/codebuild/amazonlinux2-aarch64-standard:3.0",
);

/// Sets (or replaces) one environment override.
fn set_env(req: &mut StartBuildRequest, name: &str, value: String) {
    match req
        .environment_variables_override
        .iter_mut()
        .find(|(k, _)| k == name)
    {
        Some(e) => e.1 = value,
        None => req
            .environment_variables_override
            .push((name.to_string(), value)),
    }
}

/// The repository the platform images go to: the run's first tag's,
/// with the stack's registry when the name has none. Only the repository
/// matters: the tag as written may be a template (`web:{{.Run.ID}}`).
fn staging_repository(
    run: &Run,
    registry: Option<&str>,
) -> crtask_core::Result<crtask_core::domain::imageref::ImageRef> {
    let first = run.spec.images.first().ok_or_else(|| {
        CoreError::invalid(format!(
            "run {}: a multi-platform run needs an image tag to push its platforms to",
            run.run_id
        ))
    })?;
    let slash = first.rfind('/').map_or(0, |i| i + 1);
    let name = match first[slash..].find(':') {
        Some(colon) => &first[..slash + colon],
        None => first.as_str(),
    };
    crtask_core::domain::imageref::ImageRef::parse_with_default_registry(
        name,
        registry.unwrap_or_default(),
    )
    .map_err(|e| CoreError::invalid(format!("run {}: image '{first}': {e}", run.run_id)))
}

/// The `StartBuild` request of one platform build of a multi-platform run
/// ([`crtask_core::build::fanout`]): the run's request, on the platform's
/// native machine, building `build.platform` only and pushing it to its
/// staging tag (`CRTASK_STAGING_TAG`) for the assemble build; its result
/// and log go beside the run's under `CRTASK_RESULT_PART`.
pub fn platform_start_request(
    run: &Run,
    build: &PlatformBuild,
    project: &str,
    registry: Option<&str>,
    contexts_bucket: Option<&str>,
) -> crtask_core::Result<StartBuildRequest> {
    let machine = machine_for(&build.platform)?;
    let mut req = start_build_request(run, project, registry, contexts_bucket)?;
    let repo = staging_repository(run, registry)?;
    set_env(&mut req, "CRTASK_PLATFORM", build.platform.clone());
    set_env(&mut req, "CRTASK_BUILD_ROLE", "platform".into());
    set_env(
        &mut req,
        "CRTASK_STAGING_TAG",
        staging_tag(&repo, &run.run_id, &build.platform),
    );
    set_env(&mut req, "CRTASK_RESULT_PART", fanout::result_part(build));
    let (kind, image) = match machine {
        Machine::X86_64 => X86_ENVIRONMENT,
        Machine::Arm64 => ARM_ENVIRONMENT,
    };
    req.environment_type_override = Some(kind.to_string());
    req.image_override = Some(image.to_string());
    req.idempotency_token = format!(
        "{}-{}",
        req.idempotency_token,
        build.platform.replace('/', "-")
    );
    Ok(req)
}

/// The `StartBuild` request of a multi-platform run's assemble build: no
/// source, buildah (`CRTASK_ENGINE`), the platform images by digest in the
/// staging repository (`CRTASK_PLATFORM_IMAGES`, JSON), the run's tags in
/// `CRTASK_SPEC` as for any build.
pub fn assemble_start_request(
    run: &Run,
    platforms: &[PlatformImage],
    project: &str,
    registry: Option<&str>,
    contexts_bucket: Option<&str>,
) -> crtask_core::Result<StartBuildRequest> {
    let mut req = start_build_request(run, project, registry, contexts_bucket)?;
    let repo = staging_repository(run, registry)?;
    req.source_type_override = Some("NO_SOURCE".into());
    req.source_location_override = None;
    req.source_version = None;
    req.environment_variables_override.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "CRTASK_GIT_URL"
                | "CRTASK_GIT_REF"
                | "CRTASK_CONTEXT_SUBDIR"
                | "CRTASK_CONTEXT_OBJECT"
                | "CRTASK_GIT_TOKEN_SECRET"
        )
    });
    let images: Vec<serde_json::Value> = platforms
        .iter()
        .map(|p| {
            serde_json::json!({
                "platform": p.platform,
                "image": format!("{}/{}@{}", repo.registry, repo.repository, p.digest),
            })
        })
        .collect();
    set_env(&mut req, "CRTASK_CONTEXT_KIND", "none".into());
    set_env(&mut req, "CRTASK_BUILD_ROLE", "assemble".into());
    set_env(&mut req, "CRTASK_ENGINE", "buildah".into());
    set_env(&mut req, "CRTASK_RESULT_PART", "index".into());
    set_env(
        &mut req,
        "CRTASK_PLATFORM_IMAGES",
        serde_json::Value::Array(images).to_string(),
    );
    req.idempotency_token = format!("{}-index", req.idempotency_token);
    Ok(req)
}

impl CodeBuildBuilder {
    /// Starts the platform builds of `run` not started yet, in parallel,
    /// and records them in the run; the run's `builder_ref` (its first
    /// build) is set once all are started. A platform CodeBuild cannot
    /// build natively fails the run. A retried dispatch starts only what is
    /// missing (and CodeBuild's idempotency tokens hold within five minutes).
    pub(super) async fn dispatch_platforms(
        &self,
        run: Run,
        platforms: &[String],
    ) -> crtask_core::Result<()> {
        let planned = if run.builds.is_empty() {
            fanout::plan(platforms)
        } else {
            Ok(run.builds.clone())
        };
        let requests = planned.and_then(|builds| {
            let reqs = builds
                .iter()
                .enumerate()
                .filter(|(_, b)| b.role == Role::Platform && b.builder_ref.is_none())
                .map(|(i, b)| {
                    platform_start_request(
                        &run,
                        b,
                        &self.project,
                        self.registry.as_deref(),
                        self.contexts_bucket.as_deref(),
                    )
                    .map(|q| (i, q))
                })
                .collect::<crtask_core::Result<Vec<_>>>()?;
            Ok((builds, reqs))
        });
        let (mut builds, reqs) = match requests {
            Ok(x) => x,
            Err(e @ CoreError::Invalid(_)) => return self.refuse(run, e).await,
            Err(e) => return Err(e),
        };
        let started = futures_util::future::join_all(reqs.iter().map(|(_, q)| {
            with_backoff(&self.backoff, &*self.sleeper, move || {
                send_start_build(&self.client, q)
            })
        }))
        .await;
        let mut failed = None;
        for ((i, _), r) in reqs.iter().zip(started) {
            match r {
                Ok(id) => {
                    tracing::info!(run = %run.run_id, platform = %builds[*i].platform, build = %id, "codebuild platform build started");
                    builds[*i].builder_ref = Some(build_id(&id).to_string());
                    builds[*i].status = RunStatus::Running;
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        let mut run = self.store.get_run(&run.run_id).await?.unwrap_or(run);
        let all_started = builds.iter().all(|b| b.builder_ref.is_some());
        if all_started {
            run.builder_ref = builds[0].builder_ref.clone();
            if run
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("waiting for the builder"))
            {
                run.error = None;
            }
        }
        run.builds = builds;
        self.store.update_run(&run).await?;
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Fails `run` with `why` (it will not start by waiting).
    pub(super) async fn refuse(&self, mut run: Run, why: CoreError) -> crtask_core::Result<()> {
        tracing::warn!(run = %run.run_id, error = %why, "run refused");
        run.status = RunStatus::Failed;
        run.error = Some(why.to_string());
        run.finish_time = Some(self.clock.now());
        self.store.update_run(&run).await
    }

    /// Starts the assemble build of `run` with the pushed `platforms`;
    /// returns its build id (the id form). Idempotent within CodeBuild's
    /// five-minute window.
    pub async fn start_assemble(
        &self,
        run: &Run,
        platforms: &[PlatformImage],
    ) -> crtask_core::Result<String> {
        let req = assemble_start_request(
            run,
            platforms,
            &self.project,
            self.registry.as_deref(),
            self.contexts_bucket.as_deref(),
        )?;
        let id = with_backoff(&self.backoff, &*self.sleeper, || {
            send_start_build(&self.client, &req)
        })
        .await?;
        tracing::info!(run = %run.run_id, build = %id, "codebuild assemble build started");
        Ok(build_id(&id).to_string())
    }

    /// Stops `builds` (`StopBuild`), each on its own; one that cannot be
    /// stopped (ended meanwhile) is logged.
    pub async fn stop_builds(&self, builds: &[String]) {
        for b in builds {
            let r = with_backoff(&self.backoff, &*self.sleeper, || async {
                self.client
                    .stop_build()
                    .id(build_id(b))
                    .send()
                    .await
                    .map_err(|e| super::codebuild_error("StopBuild", e))
            })
            .await;
            match r {
                Ok(_) => tracing::info!(build = %b, "codebuild build stopped"),
                Err(e) => tracing::warn!(build = %b, error = %e, "codebuild build not stopped"),
            }
        }
    }
}
