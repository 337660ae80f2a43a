//! Turning a patch request into a queued `Patch` run.

use crate::domain::api::PatchApiRequest;
use crate::domain::imageref::ImageRef;
use crate::domain::model::{BuildSpec, ContextSource, Run, RunType, Trigger, DEFAULT_TASK_TIMEOUT};
use crate::patch::model::{PatchRequest, PatchRun};
use crate::patch::tags::TagConvention;
use crate::ports::{Builder, Clock, Store};
use crate::run::queue::{dispatch, new_run_record, NewRun};
use crate::{Error, Result};

/// Checks a patch request: a tagged image (qualified with `registry` when
/// it names none), a known tag convention, a Trivy report if given.
pub fn request(req: &PatchApiRequest, registry: Option<&str>) -> Result<PatchRequest> {
    let raw = req.image.trim();
    if raw.is_empty() {
        return Err(Error::invalid("give the image to patch"));
    }
    let image = match registry {
        Some(r) => ImageRef::parse_with_default_registry(raw, r)?,
        None => ImageRef::parse(raw)?,
    };
    if image.digest.is_some() {
        return Err(Error::invalid(format!(
            "{} is pinned by digest: patch a tag (the patched image gets a tag of its own)",
            image.full()
        )));
    }
    let tag_convention = match &req.tag_convention {
        Some(s) => s.parse::<TagConvention>()?,
        None => TagConvention::default(),
    };
    let only = match &req.report {
        Some(v) => {
            let bytes = serde_json::to_vec(v).map_err(|e| Error::invalid(e.to_string()))?;
            let only = crate::patch::report::parse(&bytes)?;
            if only.is_empty() {
                return Err(Error::invalid(
                    "the report lists no OS package with a fixed version: nothing to patch",
                ));
            }
            only
        }
        None => Vec::new(),
    };
    Ok(PatchRequest {
        image: image.tagged(),
        tag_convention,
        dry_run: req.dry_run,
        only,
    })
}

/// The run of a patch: type `Patch`, nothing to build, the patch request on it.
pub fn new_patch_run(
    run_id: String,
    patch: PatchRun,
    trigger: Trigger,
    dedupe_key: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Run {
    let spec = BuildSpec {
        context: ContextSource::None,
        file: String::new(),
        images: Vec::new(),
        build_args: Vec::new(),
        target: None,
        platform: None,
        push: !patch.request.dry_run,
        timeout: DEFAULT_TASK_TIMEOUT,
        values: Default::default(),
        cache: Default::default(),
        git_access_token: None,
        identity: None,
    };
    let mut run = new_run_record(
        run_id,
        NewRun {
            task: None,
            run_type: RunType::Patch,
            trigger,
            spec,
            dedupe_key,
        },
        now,
    );
    run.patch = Some(patch);
    run
}

/// Records a manual patch run and hands it to the builder.
pub async fn queue_patch(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    registry: Option<&str>,
    req: &PatchApiRequest,
) -> Result<Run> {
    let patch = PatchRun::new(request(req, registry)?);
    let id = store.next_run_id().await?;
    let mut run = new_patch_run(id, patch, Trigger::Manual, None, clock.now());
    store.insert_run(&run).await?;
    dispatch(store, builder, &mut run).await?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(image: &str) -> PatchApiRequest {
        PatchApiRequest {
            image: image.into(),
            tag_convention: None,
            dry_run: false,
            report: None,
        }
    }

    #[test]
    fn requests_are_checked() {
        let r = request(&req("app:1"), Some("127.0.0.1:5000")).unwrap();
        assert_eq!(r.image, "127.0.0.1:5000/app:1");
        assert_eq!(r.tag_convention, TagConvention::Incremental);
        let r = request(&req("app"), Some("127.0.0.1:5000")).unwrap();
        assert_eq!(r.image, "127.0.0.1:5000/app:latest");
        let err = |r: PatchApiRequest| request(&r, Some("127.0.0.1:5000")).unwrap_err().to_string();
        assert!(err(req("")).contains("give the image"));
        assert!(err(req(&format!("app@sha256:{}", "a".repeat(64)))).contains("pinned by digest"));
        assert!(err(req("App Name")).contains("App Name"));
        let mut r = req("app:1");
        r.tag_convention = Some("weekly".into());
        assert!(err(r).contains("unknown tag convention"));
        let mut r = req("app:1");
        r.report = Some(serde_json::json!({"SchemaVersion": 2, "Results": []}));
        assert!(err(r).contains("lists no OS package"));
        let mut r = req("app:1");
        r.report = Some(
            serde_json::json!({"SchemaVersion": 2, "Results": [{"Class": "os-pkgs",
            "Vulnerabilities": [{"PkgName": "libssl3", "FixedVersion": "3.0.13"}]}]}),
        );
        let ok = request(&r, None).unwrap();
        assert_eq!(ok.image, "docker.io/library/app:1");
        assert_eq!(ok.only.len(), 1);
        assert_eq!(ok.only[0].name, "libssl3");
    }
}
