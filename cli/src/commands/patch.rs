//! `crtask patch IMAGE`: update an image's OS packages in one new layer,
//! without a rebuild, and push it under a patch tag.

use super::{wait, Ctx};
use anyhow::{Context, Result};
use clap::Args;
use crtask_core::domain::api::PatchApiRequest;
use std::path::PathBuf;

/// The largest report read (Trivy reports of big images run to a few MB).
const REPORT_LIMIT: u64 = 32 * 1024 * 1024;

#[derive(Args)]
pub struct PatchArgs {
    /// The tagged image, e.g. app:1.0 (no registry: the server's).
    image: String,
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

pub async fn run(ctx: &Ctx, a: PatchArgs) -> Result<i32> {
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
            // Checked here too, so a wrong file is reported before anything is queued.
            crtask_core::patch::report::parse(&bytes)
                .with_context(|| format!("report {}", p.display()))?;
            Some(serde_json::from_slice(&bytes)?)
        }
        None => None,
    };
    let tag_convention: crtask_core::patch::TagConvention = a.tag_convention.parse()?;
    let req = PatchApiRequest {
        image: a.image,
        tag_convention: Some(tag_convention.as_str().to_string()),
        dry_run: a.dry_run,
        report,
    };
    let client = ctx.client().await?;
    let run = client.patch(&req).await?;
    wait::queued(ctx, &client, run, "patch", a.no_wait, a.no_logs).await
}
