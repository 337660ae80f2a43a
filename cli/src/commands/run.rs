//! `crtask run`: a quick multi-step run of an acr-task.yaml file.

use super::{wait, Ctx};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use crtask_core::build::taskfile;
use crtask_core::domain::api::QuickBuildRequest;
use crtask_core::domain::model::{is_git_url, ContextSource};
use std::path::PathBuf;

#[derive(Args)]
pub struct RunArgs {
    /// The task file (acr-task.yaml), relative to the context.
    #[arg(short = 'f', long = "file")]
    file: String,
    /// Template value K=V (repeatable; later wins, beats --values).
    #[arg(long = "set")]
    sets: Vec<String>,
    /// YAML file of template values.
    #[arg(long)]
    values: Option<PathBuf>,
    /// Do not stream the log.
    #[arg(long)]
    no_logs: bool,
    /// Return once the run is queued.
    #[arg(long)]
    no_wait: bool,
    /// Run timeout in seconds [default: 3600].
    #[arg(long)]
    timeout: Option<u64>,
    /// Largest context to upload, bytes.
    #[arg(long, env = "CRTASK_CONTEXT_LIMIT", default_value_t = crtask_executor::context::DEFAULT_CONTEXT_LIMIT)]
    context_limit: u64,
    /// A local directory, a git URL (#ref[:subdir]) or /dev/null.
    context: String,
}

pub async fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    if !taskfile::is_task_file(&a.file) {
        bail!(
            "'{}' is not a task file (.yaml or .yml); use `crtask build` for a Dockerfile",
            a.file
        );
    }
    let values = super::values(a.values.as_deref(), &a.sets)?;
    let client = ctx.client().await?;
    let mut file = a.file.clone();
    // With no context (/dev/null) the task file is read from here and
    // uploaded alone, as `az acr run -f FILE /dev/null` does.
    let scratch = tempfile::tempdir()?;
    let (dir, remote) = if a.context == "/dev/null" {
        let local = crate::absolute(&PathBuf::from(&a.file));
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("task file '{}' has no file name", a.file))?;
        std::fs::copy(&local, scratch.path().join(&name))
            .map_err(|e| anyhow!("cannot read task file '{}': {e}", a.file))?;
        file = name;
        (Some(scratch.path().to_path_buf()), None)
    } else if is_git_url(&a.context) {
        (None, Some(ContextSource::parse_task_context(&a.context)?))
    } else {
        let dir = crate::absolute(&PathBuf::from(&a.context));
        if !dir.is_dir() {
            bail!("context directory '{}' does not exist", a.context);
        }
        (Some(dir), None)
    };
    let mut req = QuickBuildRequest {
        context: ContextSource::None,
        file: file.clone(),
        images: Vec::new(),
        build_args: Vec::new(),
        target: None,
        platform: None,
        push: true,
        timeout: a.timeout,
        values,
        cache: Default::default(),
    };
    req.context = match (dir, remote) {
        (_, Some(remote)) => remote,
        (Some(dir), None) => {
            let path = crtask_executor::fsutil::resolve_inside(&dir, &file)
                .filter(|p| p.is_file())
                .ok_or_else(|| {
                    anyhow!(
                        "task file '{}' not found in context {}",
                        file,
                        dir.display()
                    )
                })?;
            // Every error of the file, with its line, before anything is uploaded.
            let text = std::fs::read_to_string(&path)?;
            // Placeholders: the real values are the server's, at run time.
            let vars = crtask_core::template::RunVars {
                id: "ca1".into(),
                registry: "registry.invalid".into(),
                os: "linux".into(),
                architecture: "amd64".into(),
                ..Default::default()
            };
            // Secrets are read by the server: a placeholder stands in.
            let checked =
                taskfile::data_with_placeholder_secrets(&text, &vars, &req.values, "secret")
                    .and_then(|data| {
                        taskfile::load_with_data(&text, &data, &taskfile::ParseOptions::default())
                    });
            if let Err(errs) = checked {
                for e in errs.0.iter().skip(1) {
                    eprintln!("{file}: {e}");
                }
                bail!(
                    "{file}: {}",
                    errs.0.first().map(|e| e.to_string()).unwrap_or_default()
                );
            }
            // Nothing is uploaded for a request that would be refused.
            client.check_quick_build(&req, true).await?;
            let id = super::build::upload(&client, &dir, &file, a.context_limit).await?;
            ContextSource::Uploaded { id }
        }
        (None, None) => bail!("no context"),
    };
    let run = client.quick_build(&req).await?;
    wait::queued(ctx, &client, run, "run", a.no_wait, a.no_logs).await
}
