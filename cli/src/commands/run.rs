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
    /// The task file (acr-task.yaml), relative to the context (with the
    /// context /dev/null: a local file).
    #[arg(
        short = 'f',
        long = "file",
        required_unless_present = "cmd",
        conflicts_with = "cmd"
    )]
    file: Option<String>,
    /// Run this command instead of a task file: an image and its arguments,
    /// as a task file's `cmd` step (`crtask run --cmd "alpine echo hi" /dev/null`,
    /// as `az acr run --cmd`). Takes the context /dev/null.
    #[arg(long, value_name = "IMAGE [ARGS]")]
    cmd: Option<String>,
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

/// The task file `--cmd` runs: one `cmd` step (v1.1.0, so `$Registry`
/// and the other aliases expand as in `az acr run --cmd`). The command is
/// written as a JSON string, which is a valid YAML double-quoted scalar:
/// quotes, newlines and `#` stay inside the step.
pub fn cmd_task_file(cmd: &str) -> Result<String> {
    if cmd.trim().is_empty() {
        bail!("--cmd is empty: give an image and its arguments, e.g. --cmd \"alpine echo hi\"");
    }
    Ok(format!(
        "version: v1.1.0\nsteps:\n  - cmd: {}\n",
        serde_json::to_string(cmd)?
    ))
}

/// The name the `--cmd` task file is uploaded under.
const CMD_FILE: &str = "acb_cmd.yaml";

pub async fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    let given = a.file.clone().unwrap_or_else(|| CMD_FILE.to_string());
    if a.cmd.is_none() && !taskfile::is_task_file(&given) {
        bail!("'{given}' is not a task file (.yaml or .yml); use `crtask build` for a Dockerfile");
    }
    if a.cmd.is_some() && a.context != "/dev/null" {
        bail!("--cmd runs without a context: give /dev/null as the context (or write a task file with a cmd step and use -f)");
    }
    let values = super::values(a.values.as_deref(), &a.sets)?;
    let client = ctx.client().await?;
    let mut file = given.clone();
    // With no context (/dev/null) the task file is read from here and
    // uploaded alone, as `az acr run -f FILE /dev/null` does.
    let scratch = tempfile::tempdir()?;
    let (dir, remote) = if let Some(cmd) = &a.cmd {
        std::fs::write(scratch.path().join(CMD_FILE), cmd_task_file(cmd)?)?;
        (Some(scratch.path().to_path_buf()), None)
    } else if a.context == "/dev/null" {
        let local = crate::absolute(&PathBuf::from(&given));
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("task file '{given}' has no file name"))?;
        std::fs::copy(&local, scratch.path().join(&name))
            .map_err(|e| anyhow!("cannot read task file '{given}': {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crtask_core::build::taskfile;

    #[test]
    fn cmd_becomes_one_cmd_step_whatever_it_holds() {
        for cmd in [
            "alpine echo hi",
            "$Registry/tool:1 --flag \"quoted # not a comment\"",
            "bash -c 'a: b'\necho two",
        ] {
            let text = cmd_task_file(cmd).unwrap();
            let vars = crtask_core::template::RunVars {
                id: "ca1".into(),
                registry: "reg.example:5000".into(),
                ..Default::default()
            };
            let data =
                taskfile::data_with_placeholder_secrets(&text, &vars, &Default::default(), "s")
                    .unwrap_or_else(|e| panic!("{cmd}: {e:?}"));
            let tf = taskfile::load_with_data(&text, &data, &taskfile::ParseOptions::default())
                .unwrap_or_else(|e| panic!("{cmd}: {e:?}"));
            assert_eq!(tf.steps.len(), 1, "{text}");
            let taskfile::StepKind::Cmd(c) = &tf.steps[0].kind else {
                panic!("not a cmd step: {text}");
            };
            let expected = cmd.replace("$Registry", "reg.example:5000");
            assert_eq!(c.raw, expected, "{text}");
        }
        let tf_text = cmd_task_file("$Registry/tool:1 run").unwrap();
        assert!(tf_text.starts_with("version: v1.1.0\n"), "{tf_text}");
        assert!(cmd_task_file("  ").is_err());
    }
}
