//! The two kinds of build of a multi-platform run on AWS
//! (`CRTASK_BUILD_ROLE`, set by the CodeBuild builder; docs/MULTIARCH.md):
//!
//! - `platform`: the run's Dockerfile for one platform (`CRTASK_PLATFORM`),
//!   natively, pushed to the run's staging tag (`CRTASK_STAGING_TAG`)
//!   instead of its own tags; the result's one output image is the
//!   platform's digest.
//! - `assemble`: no build; the image index made from the platform images
//!   (`CRTASK_PLATFORM_IMAGES`, each read from the registry by digest) is
//!   pushed under the run's tags; the result carries the index digest and
//!   each platform's.

use super::Report;
use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Utc};
use crtask_core::build::quick::render_tags;
use crtask_core::build::taskfile;
use crtask_core::domain::imageref::ImageRef;
use crtask_core::domain::model::{BuildSpec, OutputImage, RunStatus, StepRecord};
use crtask_core::ports::{Engine, LogSink, PushOutcome};
use crtask_core::template::RunVars;
use crtask_executor::assemble::parse_parts;
use crtask_executor::buildah::Buildah;

/// Turns `spec` into one platform build: `platform` only, pushed to the
/// staging tag.
pub(super) fn platform_build(spec: &mut BuildSpec, platform: &str) -> Result<()> {
    let staging = super::required("CRTASK_STAGING_TAG")?;
    ImageRef::parse(&staging).map_err(|e| anyhow!("CRTASK_STAGING_TAG '{staging}': {e}"))?;
    if platform.contains(',') {
        bail!("CRTASK_PLATFORM of a platform build names one platform, not '{platform}'");
    }
    if taskfile::is_task_file(&spec.file) {
        bail!(
            "a multi-platform run on AWS builds a Dockerfile; '{}' is a task file (give its build steps --platform instead, on the local platform)",
            spec.file
        );
    }
    spec.platform = Some(platform.to_string());
    spec.images = vec![staging];
    spec.push = true;
    Ok(())
}

/// What the assemble build needs from `crtask exec`.
pub(super) struct Assemble<'a> {
    pub buildah: &'a Buildah,
    pub run_id: &'a str,
    pub started: DateTime<Utc>,
    pub spec: &'a BuildSpec,
    pub vars: &'a RunVars,
    pub registry: Option<&'a str>,
    pub log: &'a dyn LogSink,
}

/// Makes and pushes the index; the report of the assemble build.
pub(super) async fn assemble(a: Assemble<'_>, parts_json: &str) -> Report {
    let mut step = StepRecord {
        id: "assemble".into(),
        status: RunStatus::Running,
        start_time: Some(Utc::now()),
        finish_time: None,
        exit_code: None,
        when: Vec::new(),
        cache: None,
    };
    let outcome = push_index(&a, parts_json).await;
    let finish = Utc::now();
    let (status, error, output_images) = match outcome {
        Ok(images) => (RunStatus::Succeeded, None, images),
        Err(e) => {
            let e = format!("{e:#}");
            a.log.line(&format!("crtask: {e}"));
            (RunStatus::Failed, Some(e), Vec::new())
        }
    };
    step.status = status;
    step.finish_time = Some(finish);
    a.log.line(&format!("crtask: run {} {status}", a.run_id));
    Report {
        run_id: Some(a.run_id.to_string()),
        status,
        error,
        start_time: a.started,
        finish_time: finish,
        steps: vec![step],
        output_images,
        base_images: Vec::new(),
        patch: None,
    }
}

async fn push_index(a: &Assemble<'_>, parts_json: &str) -> Result<Vec<OutputImage>> {
    let parts = parse_parts(parts_json).map_err(|e| anyhow!("CRTASK_PLATFORM_IMAGES: {e}"))?;
    let data = a.vars.to_data(&a.spec.values);
    let tags = render_tags(&a.spec.images, &data, a.registry)?;
    if !a.spec.push {
        a.log.line("crtask: the run does not push (--no-push): no image index is pushed; the platform images stay under their staging tags");
        return Ok(Vec::new());
    }
    let names: Vec<String> = tags.iter().map(ImageRef::tagged).collect();
    let index = format!("crtask-index-{}", a.run_id);
    a.buildah
        .assemble_index(&index, &parts, &names, a.log)
        .await?
        .map_err(|e| anyhow!(e))?;
    let mut out = Vec::new();
    for (t, name) in tags.iter().zip(&names) {
        a.log
            .line(&format!("crtask: pushing the image index {name}"));
        match a.buildah.push(name, a.log).await? {
            PushOutcome::Pushed { digest, platforms } => {
                a.log.line(&format!("crtask: pushed {name} {digest}"));
                for p in &platforms {
                    a.log
                        .line(&format!("crtask:   {} {}", p.platform, p.digest));
                }
                out.push(OutputImage {
                    registry: t.registry.clone(),
                    repository: t.repository.clone(),
                    tag: t.tag.clone().unwrap_or_default(),
                    digest,
                    platforms,
                });
            }
            PushOutcome::Failed { message } => bail!(message),
        }
    }
    // The staging tags stay: the distribution API deletes a manifest only by
    // digest, which would delete the platform image the index refers to.
    a.log.line("crtask: the platform images' staging tags are kept (the registry API cannot remove a tag alone)");
    Ok(out)
}
