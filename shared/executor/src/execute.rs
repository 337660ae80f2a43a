//! The step executor of one run whose context is prepared: read its
//! Dockerfile or acr-task.yaml from the context and run the core executor
//! for it on an engine. The local workers of `crtask serve` and `crtask
//! exec` (the builder on AWS) both go through [`execute_in_context`].

use crate::{Error, Result};
use crtask_core::build::quick::{self, BuildInputs};
use crtask_core::build::secrets::{self as tsecrets, SecretResolver};
use crtask_core::build::taskfile;
use crtask_core::domain::model::{BuildSpec, RunStatus};
use crtask_core::ports::{Clock, Engine, LogSink};
use crtask_core::template::RunVars;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `NAME=IMAGE` image aliases for `cmd` steps.
pub fn parse_aliases(specs: &[String]) -> Result<BTreeMap<String, String>> {
    specs
        .iter()
        .map(|s| match s.split_once('=') {
            Some((n, i))
                if !n.trim().is_empty()
                    && !i.trim().is_empty()
                    && !n.contains(char::is_whitespace) =>
            {
                Ok((n.trim().to_string(), i.trim().to_string()))
            }
            _ => Err(Error::Config(format!(
                "image alias '{s}' must be NAME=IMAGE"
            ))),
        })
        .collect()
}

/// A run whose context is prepared: what [`execute_in_context`] needs. The
/// local workers and `crtask exec` (the builder on AWS) both go through it.
pub struct ContextRun<'a> {
    pub engine: Arc<dyn Engine>,
    pub clock: &'a dyn Clock,
    pub spec: &'a BuildSpec,
    /// `{{.Run.X}}` values.
    pub vars: &'a RunVars,
    /// Registry for unqualified tags.
    pub registry: Option<&'a str>,
    /// Image aliases for `cmd` steps, over ACR's defaults.
    pub image_aliases: &'a BTreeMap<String, String>,
    /// Reads the task file's `secrets:` ([`crate::secrets::LocalSecrets`]).
    pub secrets: &'a dyn SecretResolver,
    /// The context directory (`/workspace` of a task file's steps).
    pub context_dir: &'a Path,
    /// Scratch space of a task file's steps; removed at the end.
    pub scratch: PathBuf,
    /// Groups the run's detached containers (the run id).
    pub group: &'a str,
    pub log: Arc<dyn LogSink>,
    pub cancel: CancellationToken,
}

/// Reads the run's Dockerfile or acr-task.yaml from the context and runs the
/// core executor for it ([`quick::execute_build`] or
/// [`crtask_core::build::multistep::execute_task_file`]).
pub async fn execute_in_context(r: ContextRun<'_>) -> quick::BuildResult {
    let failed = |msg: String| quick::BuildResult {
        status: RunStatus::Failed,
        error: Some(msg),
        output_images: Vec::new(),
        base_images: Vec::new(),
        steps: Vec::new(),
    };
    let file = r.spec.file.as_str();
    let is_task_file = taskfile::is_task_file(file);
    let path = match crate::fsutil::resolve_inside(r.context_dir, file) {
        Some(p) if p.is_file() => p,
        _ => {
            let what = if is_task_file {
                "task file"
            } else {
                "Dockerfile"
            };
            let msg = format!("{what} '{file}' not found in the context");
            r.log.line(&format!("crtask: {msg}"));
            return failed(msg);
        }
    };
    let text = match tokio::fs::read(&path).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return failed(format!("cannot read '{file}': {e}")),
    };
    if is_task_file {
        return multi_step(r, &text).await;
    }
    let log: &dyn LogSink = r.log.as_ref();
    let data = r.vars.to_data(&r.spec.values);
    let tags = match quick::render_tags(&r.spec.images, &data, r.registry) {
        Ok(t) => t,
        Err(e) => {
            log.line(&format!("crtask: {e}"));
            return failed(e.to_string());
        }
    };
    let inputs = BuildInputs {
        context_dir: r.context_dir,
        dockerfile_path: &path,
        dockerfile_text: &text,
        tags: &tags,
    };
    // Cancellation drops the build, which kills its process group.
    tokio::select! {
        res = quick::execute_build(r.engine.as_ref(), r.spec, &inputs, log, r.clock) => res,
        _ = r.cancel.cancelled() => quick::BuildResult {
            status: RunStatus::Canceled,
            error: Some("stopped".into()),
            output_images: Vec::new(),
            base_images: Vec::new(),
            steps: Vec::new(),
        },
    }
}

/// A run whose file is an acr-task.yaml: load it (every error, with its
/// line, before any step runs), then execute the step graph.
async fn multi_step(r: ContextRun<'_>, text: &str) -> quick::BuildResult {
    let mut aliases = taskfile::default_image_aliases();
    aliases.extend(r.image_aliases.clone());
    let opts = taskfile::ParseOptions {
        image_aliases: aliases,
    };
    let failed = |error: String| quick::BuildResult {
        status: RunStatus::Failed,
        error: Some(error),
        output_images: Vec::new(),
        base_images: Vec::new(),
        steps: Vec::new(),
    };
    let invalid = |errs: taskfile::TaskFileErrors, secrets: &BTreeMap<_, _>| {
        let shown = |e: &taskfile::TaskFileError| {
            tsecrets::redact(&e.to_string(), secrets, crate::logs::MASK)
        };
        for e in &errs.0 {
            r.log
                .line(&format!("crtask: {}: {}", r.spec.file, shown(e)));
        }
        let first = errs.0.first().map(shown).unwrap_or_default();
        let more = if errs.0.len() > 1 {
            format!(" (and {} more)", errs.0.len() - 1)
        } else {
            String::new()
        };
        failed(format!("{}: {first}{more}", r.spec.file))
    };
    // Secrets first: the file's `secrets:` are resolved before any step
    // runs and masked in the log from then on; then the whole file is read
    // with `.Secrets` filled in.
    let mut values = BTreeMap::new();
    let mut data = taskfile::template_data(r.vars, &r.spec.values);
    let declared = match taskfile::secrets_of(text, &data) {
        Ok(d) => d,
        Err(errs) => return invalid(errs, &values),
    };
    if !declared.is_empty() {
        values = match tsecrets::resolve_all(&declared, r.secrets).await {
            Ok(v) => v,
            Err(msg) => {
                r.log.line(&format!("crtask: {msg}"));
                return failed(msg);
            }
        };
        for v in values.values() {
            r.log.add_secret(v.expose());
        }
        if let Some(obj) = data.as_object_mut() {
            obj.insert("Secrets".into(), tsecrets::template_value(&values));
        }
        r.log.line(&format!(
            "crtask: resolved {} secret(s): {}",
            values.len(),
            values.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let tf = match taskfile::load_with_data(text, &data, &opts) {
        Ok(tf) => tf,
        Err(errs) => return invalid(errs, &values),
    };
    let result = crtask_core::build::multistep::execute_task_file(
        &tf,
        crtask_core::build::multistep::TaskFileRun {
            engine: r.engine.clone(),
            workspace: r.context_dir.to_path_buf(),
            scratch: r.scratch.clone(),
            group: r.group.to_string(),
            log: r.log,
            cancel: r.cancel,
            push: r.spec.push,
        },
    )
    .await;
    let _ = tokio::fs::remove_dir_all(&r.scratch).await;
    quick::BuildResult {
        status: result.status,
        // The run's record never holds a secret value.
        error: result
            .error
            .map(|e| tsecrets::redact(&e, &values, crate::logs::MASK)),
        steps: result.steps,
        output_images: result.output_images,
        base_images: result.base_images,
    }
}

/// `1.234s`, `2m03s`.
pub fn human(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 60_000 {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    } else {
        let s = ms / 1000;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
