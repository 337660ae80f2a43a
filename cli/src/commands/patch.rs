//! `crtask patch IMAGE`: update an image's OS packages in one new layer,
//! without a rebuild, and push it under a patch tag. `crtask patch config
//! set|show|delete`: continuous patching on a schedule.

use super::{wait, Ctx};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use crtask_core::domain::api::{PatchApiRequest, PatchConfigRequest};
use std::path::PathBuf;

/// The largest report read (Trivy reports of big images run to a few MB).
const REPORT_LIMIT: u64 = 32 * 1024 * 1024;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PatchArgs {
    #[command(subcommand)]
    command: Option<PatchCommand>,
    /// The tagged image, e.g. app:1.0 (no registry: the server's).
    #[arg(required = true)]
    image: Option<String>,
    /// A Trivy JSON report (`trivy image -f json`): update only the OS
    /// packages it lists with a fixed version.
    #[arg(long)]
    report: Option<PathBuf>,
    /// `incremental` (TAG-1, TAG-2, ...) or `floating` (TAG-patched).
    #[arg(long, default_value = "incremental")]
    tag_convention: String,
    /// Report what would change; commit and push nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not stream the log.
    #[arg(long)]
    no_logs: bool,
    /// Return once the patch is queued.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Subcommand)]
pub enum PatchCommand {
    /// Continuous patching: the configuration and its schedule.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Set (or replace) the configuration: ACR's JSON file and a schedule.
    Set(SetArgs),
    /// Show the configuration and the next scheduled patch.
    Show,
    /// Stop continuous patching.
    Delete,
}

#[derive(Args)]
pub struct SetArgs {
    /// The configuration file (`version`, `tag-convention`, `repositories`).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Days between patches: 1d to 30d.
    #[arg(long)]
    schedule: String,
}

pub async fn run(ctx: &Ctx, a: PatchArgs) -> Result<i32> {
    let image = match (a.command, a.image) {
        (Some(PatchCommand::Config(c)), _) => return config(ctx, c).await,
        (None, Some(image)) => image,
        (None, None) => anyhow::bail!("give the image to patch"),
    };
    let report = match &a.report {
        Some(p) => {
            let len = std::fs::metadata(p)
                .with_context(|| format!("cannot read the report {}", p.display()))?
                .len();
            anyhow::ensure!(
                len <= REPORT_LIMIT,
                "the report {} is larger than {} MiB",
                p.display(),
                REPORT_LIMIT >> 20
            );
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read the report {}", p.display()))?;
            // Read here, so a wrong file is reported before anything is
            // queued, and only what matters is sent.
            let packages = crtask_core::patch::report::parse(&bytes)
                .with_context(|| format!("report {}", p.display()))?;
            Some(crtask_core::patch::report::minimal(&packages))
        }
        None => None,
    };
    let tag_convention: crtask_core::patch::TagConvention = a.tag_convention.parse()?;
    let req = PatchApiRequest {
        image,
        tag_convention: Some(tag_convention.as_str().to_string()),
        dry_run: a.dry_run,
        report,
    };
    let client = ctx.client().await?;
    let run = client.patch(&req).await?;
    wait::queued(ctx, &client, run, "patch", a.no_wait, a.no_logs).await
}

async fn config(ctx: &Ctx, c: ConfigCommand) -> Result<i32> {
    let client = ctx.client().await?;
    let v = match c {
        ConfigCommand::Set(a) => {
            let bytes = std::fs::read(&a.file)
                .with_context(|| format!("cannot read {}", a.file.display()))?;
            // Checked here too, so the error names the file.
            crtask_core::patch::continuous::parse_config(&bytes)
                .with_context(|| a.file.display().to_string())?;
            crtask_core::patch::continuous::parse_schedule(&a.schedule)?;
            let req = PatchConfigRequest {
                config: serde_json::from_slice(&bytes)?,
                schedule: a.schedule,
            };
            client.set_patch_config(&req).await?
        }
        ConfigCommand::Show => client.patch_config().await?,
        ConfigCommand::Delete => {
            client.delete_patch_config().await?;
            ctx.out.emit(&serde_json::json!({"deleted": true}), || {
                println!("Continuous patching is off")
            })?;
            return Ok(0);
        }
    };
    ctx.out.emit(&v, || {
        println!(
            "Schedule: every {}; next run {}",
            v["schedule"].as_str().unwrap_or("?"),
            v["nextRun"].as_str().unwrap_or("?")
        );
        println!(
            "Tag convention: {}",
            v["config"]["tag-convention"]
                .as_str()
                .unwrap_or("incremental")
        );
        for r in v["config"]["repositories"].as_array().into_iter().flatten() {
            let tags: Vec<&str> = r["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str())
                .collect();
            println!(
                "  {} [{}]{}",
                crtask_core::domain::text::inert(r["repository"].as_str().unwrap_or("?")),
                crtask_core::domain::text::inert(&tags.join(", ")),
                if r["enabled"] == true {
                    ""
                } else {
                    " (disabled)"
                }
            );
        }
    })?;
    Ok(0)
}
