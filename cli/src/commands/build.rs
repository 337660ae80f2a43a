//! `crtask build`: a quick build.

use super::{wait, Ctx};
use anyhow::{bail, Result};
use clap::Args;
use crtask_core::domain::api::QuickBuildRequest;
use crtask_core::domain::model::{is_git_url, ContextSource};
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

#[derive(Args)]
pub struct BuildArgs {
    /// Image to tag and push, e.g. app:{{.Run.ID}} (repeatable).
    #[arg(short = 't', long = "image")]
    images: Vec<String>,
    /// Dockerfile, relative to the context.
    #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
    file: String,
    /// Build argument K=V, or K to take the value from the environment
    /// (repeatable; `--arg` is the same flag).
    #[arg(long = "build-arg", visible_alias = "arg")]
    build_args: Vec<String>,
    /// Build argument whose value is never shown in logs or listings
    /// (repeatable; `--secret-arg` is the same flag).
    #[arg(long = "secret-build-arg", visible_alias = "secret-arg")]
    secret_build_args: Vec<String>,
    /// Build stage to stop at.
    #[arg(long)]
    target: Option<String>,
    /// Platform as os/arch[/variant].
    #[arg(long)]
    platform: Option<String>,
    /// Build only; push nothing.
    #[arg(long)]
    no_push: bool,
    /// Build every step again instead of reusing cached layers.
    #[arg(long)]
    no_cache: bool,
    /// Ask the registry for the base images again inside the build.
    #[arg(long)]
    pull: bool,
    /// Layer cache repository (REGISTRY/REPOSITORY) [default: IMAGE/cache].
    #[arg(long)]
    cache_repo: Option<String>,
    /// Do not stream the log.
    #[arg(long)]
    no_logs: bool,
    /// Return once the build is queued.
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

pub async fn run(ctx: &Ctx, a: BuildArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let mut build_args = super::build_args(&a.build_args, false)?;
    build_args.extend(super::build_args(&a.secret_build_args, true)?);
    if a.images.is_empty() && !a.no_push {
        eprintln!("warning: no image given with -t: the image will be built but not pushed");
    }
    if let Some(p) = &a.platform {
        crtask_core::domain::platform::validate(p)?;
    }
    let mut req = QuickBuildRequest {
        context: ContextSource::None,
        file: a.file.clone(),
        images: a.images,
        build_args,
        target: a.target,
        platform: a.platform,
        push: !a.no_push,
        timeout: a.timeout,
        values: Default::default(),
        cache: crtask_core::domain::model::CacheOptions {
            repo: a.cache_repo,
            no_cache: a.no_cache,
            pull: a.pull,
        },
    };
    req.context = if a.context == "/dev/null" {
        ContextSource::None
    } else if is_git_url(&a.context) {
        ContextSource::parse_task_context(&a.context)?
    } else {
        let dir = crate::absolute(&PathBuf::from(&a.context));
        if !dir.is_dir() {
            bail!("context directory '{}' does not exist", a.context);
        }
        match crtask_executor::fsutil::resolve_inside(&dir, &a.file) {
            Some(p) if p.is_file() => {}
            Some(_) => bail!(
                "Dockerfile '{}' not found in context {}",
                a.file,
                dir.display()
            ),
            None => bail!(
                "Dockerfile '{}' must be inside the context {}",
                a.file,
                dir.display()
            ),
        }
        // Nothing is uploaded for a request that would be refused.
        client.check_quick_build(&req, true).await?;
        let id = upload(&client, &dir, &a.file, a.context_limit).await?;
        ContextSource::Uploaded { id }
    };
    let run = client.quick_build(&req).await?;
    wait::queued(ctx, &client, run, "build", a.no_wait, a.no_logs).await
}

/// Packs the directory (honouring .dockerignore) and uploads it with a progress bar.
pub async fn upload(
    client: &crate::backend::Backend,
    dir: &std::path::Path,
    file: &str,
    limit: u64,
) -> Result<String> {
    let (dir2, file2) = (dir.to_path_buf(), file.to_string());
    let (tmp, stats) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut tmp = tempfile::tempfile()?;
        let stats =
            crtask_executor::context::pack_dir(&dir2, Some(&file2), limit, &mut tmp, &mut |_| {})?;
        tmp.seek(SeekFrom::Start(0))?;
        Ok((tmp, stats))
    })
    .await??;
    eprintln!(
        "Packed {} files ({}) from {}; uploading {}",
        stats.files,
        size(stats.bytes),
        dir.display(),
        size(stats.compressed)
    );
    let bar = indicatif::ProgressBar::new(stats.compressed);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if stats.compressed < 4 * 1024 * 1024 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    let b2 = bar.clone();
    let res = client
        .upload(tmp, stats.compressed, move |n| b2.set_position(n))
        .await;
    bar.finish_and_clear();
    Ok(res?.id)
}

fn size(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
