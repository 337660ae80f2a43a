//! `crtask exec`: the step executor the builder runs (the CodeBuild
//! buildspec on AWS). It takes no arguments: everything arrives in `CRTASK_*`
//! environment variables (see docs/AWS.md, "The buildspec and its contract
//! with `crtask exec`"). It runs the same executor as the local workers
//! ([`crtask_executor::execute::execute_in_context`]) on the engine named by
//! `CRTASK_ENGINE`, streams the log to stdout and `CRTASK_LOG_FILE` (secrets
//! masked), and writes the outcome to `CRTASK_RESULT_FILE`.
//!
//! Values from the environment are used only as data (argv elements, JSON,
//! paths); nothing here builds shell text.

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use crtask_core::build::secrets::{SecretRef, SecretResolver};
use crtask_core::domain::model::{
    BaseImageUse, BuildSpec, ContextSource, OutputImage, RunStatus, StepRecord,
};
use crtask_core::domain::time::serde_millis;
use crtask_core::patch::PatchRun;
use crtask_core::ports::{Clock, Engine, LogSink, SystemClock};
use crtask_core::signing::Secret;
use crtask_core::template::RunVars;
use crtask_executor::buildah::{Buildah, BuildahConfig};
use crtask_executor::docker::{Docker, DockerConfig};
use crtask_executor::execute::{execute_in_context, human, parse_aliases, ContextRun};
use crtask_executor::logs::RunLog;
use crtask_executor::secrets::LocalSecrets;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod roles;

/// The executor's report in `CRTASK_RESULT_FILE`: the run's outcome with the
/// Run JSON's field names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub run_id: Option<String>,
    pub status: RunStatus,
    pub error: Option<String>,
    #[serde(with = "serde_millis")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "serde_millis")]
    pub finish_time: DateTime<Utc>,
    pub steps: Vec<StepRecord>,
    pub output_images: Vec<OutputImage>,
    pub base_images: Vec<BaseImageUse>,
    /// A patch run's request with what the patch found and did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchRun>,
}

/// Secrets Manager for task-file secrets, configured on first use: a run
/// without such secrets never loads the AWS configuration (which may ask
/// the instance metadata service for a region).
#[derive(Default)]
struct LazySecretsManager(tokio::sync::OnceCell<crtask_aws::SecretsManagerSecrets>);

#[async_trait::async_trait]
impl SecretResolver for LazySecretsManager {
    async fn resolve(&self, r: &SecretRef) -> std::result::Result<Secret, String> {
        let sm = self
            .0
            .get_or_init(|| async {
                let conf = crtask_aws::config::load(None).await;
                crtask_aws::SecretsManagerSecrets::new(crtask_aws::config::Lazy::new(
                    &conf,
                    crtask_aws::config::secretsmanager,
                ))
            })
            .await;
        sm.resolve(r).await
    }
}

/// An environment variable; unset and empty are both `None`.
fn var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not valid UTF-8"),
    }
}

fn required(name: &str) -> Result<String> {
    var(name)?.ok_or_else(|| {
        anyhow!("{name} is not set: crtask exec reads its run from CRTASK_* variables (see docs/AWS.md)")
    })
}

/// A comma-separated list variable.
fn list(name: &str) -> Result<Vec<String>> {
    Ok(var(name)?
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default())
}

/// `[A-Za-z0-9_-]{1,64}`, as the buildspec checks it.
fn valid_run_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub async fn run() -> Result<i32> {
    let started = Utc::now();
    let result_file = PathBuf::from(required("CRTASK_RESULT_FILE")?);
    let run_id = var("CRTASK_RUN_ID").ok().flatten();
    match execute(started).await {
        Ok(report) => {
            write_report(&result_file, &report)?;
            Ok(if report.status == RunStatus::Succeeded {
                0
            } else {
                1
            })
        }
        Err(e) => {
            // The contract was broken: still leave a result for build-status.
            let report = Report {
                run_id,
                status: RunStatus::Error,
                error: Some(format!("{e:#}").lines().next().unwrap_or("").to_string()),
                start_time: started,
                finish_time: Utc::now(),
                steps: Vec::new(),
                output_images: Vec::new(),
                base_images: Vec::new(),
                patch: None,
            };
            let _ = write_report(&result_file, &report);
            Err(e)
        }
    }
}

/// Writes the report next to its final path, then renames it into place.
fn write_report(path: &Path, report: &Report) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("CRTASK_RESULT_FILE: cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec_pretty(report)?;
    std::fs::write(&tmp, body)
        .and_then(|_| std::fs::rename(&tmp, path))
        .with_context(|| format!("CRTASK_RESULT_FILE: cannot write {}", path.display()))
}

async fn execute(started: DateTime<Utc>) -> Result<Report> {
    let run_id = required("CRTASK_RUN_ID")?;
    if !valid_run_id(&run_id) {
        bail!("CRTASK_RUN_ID '{run_id}' is malformed: use 1 to 64 of A-Z a-z 0-9 _ -");
    }
    let engine_name = required("CRTASK_ENGINE")?;
    let work_dir = PathBuf::from(required("CRTASK_WORK_DIR")?);
    let log_file = PathBuf::from(required("CRTASK_LOG_FILE")?);
    let spec_text = required("CRTASK_SPEC")?;
    let mut spec: BuildSpec = serde_json::from_str(&spec_text)
        .map_err(|e| anyhow!("CRTASK_SPEC is not a valid build spec (JSON): {e}"))?;
    let registry = var("CRTASK_REGISTRY")?;
    let date = match var("CRTASK_RUN_DATE")? {
        None => started,
        Some(d) => DateTime::parse_from_rfc3339(&d)
            .map_err(|e| anyhow!("CRTASK_RUN_DATE '{d}' is not an RFC 3339 time: {e}"))?
            .with_timezone(&Utc),
    };
    let platform = match var("CRTASK_PLATFORM")?.or_else(|| spec.platform.clone()) {
        Some(p) => {
            crtask_core::domain::platform::validate(&p)
                .map_err(|e| anyhow!("CRTASK_PLATFORM: {e}"))?;
            p
        }
        None => crtask_core::domain::platform::host(),
    };
    // One build of a multi-platform run on AWS (docs/MULTIARCH.md).
    let role = var("CRTASK_BUILD_ROLE")?;
    match role.as_deref() {
        None => {}
        Some("platform") => roles::platform_build(&mut spec, &platform)?,
        Some("assemble") => {}
        Some(other) => bail!("CRTASK_BUILD_ROLE must be platform or assemble, not '{other}'"),
    }
    let context_limit = match var("CRTASK_CONTEXT_LIMIT")? {
        None => crtask_executor::context::DEFAULT_CONTEXT_LIMIT,
        Some(v) => v
            .parse()
            .map_err(|_| anyhow!("CRTASK_CONTEXT_LIMIT '{v}' is not a number of bytes"))?,
    };
    let image_aliases = parse_aliases(&list("CRTASK_IMAGE_ALIAS")?)
        .map_err(|e| anyhow!("CRTASK_IMAGE_ALIAS: {e}"))?;
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("CRTASK_WORK_DIR: cannot create {}", work_dir.display()))?;
    let engine = make_engine(&engine_name, &work_dir)?;

    // The log: stdout and the log file, secrets masked in both.
    if let Some(dir) = log_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("CRTASK_LOG_FILE: cannot create {}", dir.display()))?;
    }
    std::fs::File::create(&log_file)
        .with_context(|| format!("CRTASK_LOG_FILE: cannot create {}", log_file.display()))?;
    let secrets: Vec<String> = spec
        .build_args
        .iter()
        .filter(|a| a.secret)
        .map(|a| a.value.clone())
        .collect();
    let run_log = Arc::new(
        RunLog::open_echo(&log_file, secrets)
            .with_context(|| format!("CRTASK_LOG_FILE: cannot open {}", log_file.display()))?,
    );
    let log: Arc<dyn LogSink> = run_log.clone();
    log.line(&format!(
        "crtask: run {run_id} on {engine_name} ({platform})"
    ));

    if let Some(text) = var("CRTASK_PATCH")? {
        let patch: PatchRun = serde_json::from_str(&text)
            .map_err(|e| anyhow!("CRTASK_PATCH is not a valid patch request (JSON): {e}"))?;
        let timeout = Duration::from_secs(spec.timeout.max(1));
        return Ok(patch_run(
            PatchRunContext {
                engine,
                run_id,
                started,
                timeout,
                log,
            },
            patch,
        )
        .await
        .flush(&run_log));
    }

    let context_dir = work_dir.join("context");
    let ctx = prepare_context(
        &spec,
        &context_dir,
        context_limit,
        engine.as_ref(),
        log.as_ref(),
    )
    .await?;

    // `{{.Run.OS}}`/`{{.Run.Architecture}}` of a multi-platform run: its first.
    let (os, arch) = crtask_core::domain::platform::first(&platform)
        .split_once('/')
        .unwrap_or(("linux", "amd64"));
    let vars = RunVars {
        id: run_id.clone(),
        registry: registry.clone().unwrap_or_default(),
        date,
        os: os.to_string(),
        architecture: arch.split('/').next().unwrap_or(arch).to_string(),
        commit: var("CRTASK_COMMIT")?.unwrap_or_default(),
        branch: var("CRTASK_BRANCH")?.unwrap_or_default(),
        task_name: var("CRTASK_TASK")?.unwrap_or_default(),
        repository: var("CRTASK_REPOSITORY")?.unwrap_or_default(),
        triggered_by: var("CRTASK_TRIGGER")?.unwrap_or_else(|| "manual".into()),
        ..RunVars::default()
    };

    if role.as_deref() == Some("assemble") {
        if engine_name != "buildah" {
            bail!("the assemble build needs CRTASK_ENGINE=buildah, not '{engine_name}'");
        }
        let buildah = make_buildah(&work_dir)?;
        let report = roles::assemble(
            roles::Assemble {
                buildah: &buildah,
                run_id: &run_id,
                started,
                spec: &spec,
                vars: &vars,
                registry: registry.as_deref(),
                log: log.as_ref(),
            },
            &required("CRTASK_PLATFORM_IMAGES")?,
        )
        .await;
        return Ok(report.flush(&run_log));
    }

    // Task-file secrets: files on the builder, and Secrets Manager ARNs
    // read with the builder's role.
    let secrets = LocalSecrets::new(None).with_next(Arc::new(LazySecretsManager::default()));

    let clock = SystemClock;
    let cancel = CancellationToken::new();
    let timeout = Duration::from_secs(spec.timeout.max(1));
    let run = execute_in_context(ContextRun {
        engine: engine.clone(),
        clock: &clock,
        spec: &spec,
        vars: &vars,
        registry: registry.as_deref(),
        image_aliases: &image_aliases,
        secrets: &secrets,
        context_dir: &ctx,
        scratch: work_dir.join("scratch"),
        group: &run_id,
        log: log.clone(),
        cancel: cancel.clone(),
    });
    let ended = |status: RunStatus, msg: String| crtask_core::build::quick::BuildResult {
        status,
        error: Some(msg),
        output_images: Vec::new(),
        base_images: Vec::new(),
        steps: Vec::new(),
    };
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, run) => match r {
            Ok(r) => r,
            Err(_) => {
                cancel.cancel();
                ended(RunStatus::Timeout, format!("the run exceeded its timeout of {} s", spec.timeout))
            }
        },
        _ = stop_signal() => {
            cancel.cancel();
            ended(RunStatus::Canceled, "the build was stopped".into())
        }
    };
    engine.end_group(&run_id).await;
    let finish = clock.now();
    let mut steps = result.steps;
    for s in steps.iter_mut().filter(|s| !s.status.is_terminal()) {
        s.status = result.status;
        s.finish_time = Some(finish);
    }
    let took = human(finish - started);
    match &result.error {
        None => log.line(&format!(
            "crtask: run {run_id} {} after {took}",
            result.status
        )),
        Some(e) => log.line(&format!(
            "crtask: run {run_id} {} after {took}: {e}",
            result.status
        )),
    }
    run_log.flush();
    let _ = tokio::fs::remove_dir_all(work_dir.join("scratch")).await;
    Ok(Report {
        run_id: Some(run_id),
        status: result.status,
        error: result.error,
        start_time: started,
        finish_time: finish,
        steps,
        output_images: result.output_images,
        base_images: result.base_images,
        patch: None,
    })
}

/// What a patch run needs from [`execute`].
struct PatchRunContext {
    engine: Arc<dyn Engine>,
    run_id: String,
    started: DateTime<Utc>,
    timeout: Duration,
    log: Arc<dyn LogSink>,
}

impl Report {
    /// Flushes the run's log before the report is written.
    fn flush(self, log: &RunLog) -> Self {
        log.flush();
        self
    }
}

/// A patch run (`CRTASK_PATCH`): the same patcher as local patch runs
/// ([`crtask_executor::patch::execute`]), on this builder's buildah.
async fn patch_run(c: PatchRunContext, patch: PatchRun) -> Report {
    let clock = SystemClock;
    let cancel = CancellationToken::new();
    let kept = patch.clone();
    let run = crtask_executor::patch::execute(
        c.engine.clone(),
        &clock,
        patch,
        c.log.as_ref(),
        cancel.clone(),
    );
    let ended = |status: RunStatus, msg: String| crtask_core::patch::execute::PatchResult {
        status,
        error: Some(msg),
        output_images: Vec::new(),
        steps: Vec::new(),
        patch: kept.clone(),
    };
    let result = tokio::select! {
        r = tokio::time::timeout(c.timeout, run) => match r {
            Ok(r) => r,
            Err(_) => {
                cancel.cancel();
                ended(RunStatus::Timeout, format!("the run exceeded its timeout of {} s", c.timeout.as_secs()))
            }
        },
        _ = stop_signal() => {
            cancel.cancel();
            ended(RunStatus::Canceled, "the build was stopped".into())
        }
    };
    c.engine.end_group(&c.run_id).await;
    let finish = clock.now();
    let took = human(finish - c.started);
    match &result.error {
        None => c.log.line(&format!(
            "crtask: run {} {} after {took}",
            c.run_id, result.status
        )),
        Some(e) => c.log.line(&format!(
            "crtask: run {} {} after {took}: {e}",
            c.run_id, result.status
        )),
    }
    Report {
        run_id: Some(c.run_id),
        status: result.status,
        error: result.error,
        start_time: c.started,
        finish_time: finish,
        steps: result.steps,
        output_images: result.output_images,
        base_images: Vec::new(),
        patch: Some(result.patch),
    }
}

/// SIGTERM (CodeBuild stopping the build) or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn make_engine(name: &str, work_dir: &Path) -> Result<Arc<dyn Engine>> {
    match name {
        "docker" => Ok(Arc::new(Docker::new(DockerConfig {
            binary: var("CRTASK_DOCKER")?
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("docker")),
            insecure_registries: list("CRTASK_INSECURE_REGISTRY")?,
            git_auth: git_auth()?,
        }))),
        "buildah" => Ok(Arc::new(make_buildah(work_dir)?)),
        other => bail!("CRTASK_ENGINE must be docker or buildah, not '{other}'"),
    }
}

fn git_auth() -> Result<crtask_executor::gitctx::GitAuth> {
    crtask_executor::gitctx::GitAuth::parse(&list("CRTASK_GIT_TOKEN_FILE")?)
        .map_err(|e| anyhow!("CRTASK_GIT_TOKEN_FILE: {e}"))
}

fn make_buildah(work_dir: &Path) -> Result<Buildah> {
    let insecure = list("CRTASK_INSECURE_REGISTRY")?;
    let storage = var("CRTASK_STORAGE_ROOT")?
        .map(PathBuf::from)
        .unwrap_or_else(|| work_dir.join("storage"));
    let registries_conf = work_dir.join("registries.conf");
    crtask_executor::buildah::write_registries_conf(&registries_conf, &insecure)
        .with_context(|| format!("cannot write {}", registries_conf.display()))?;
    Ok(Buildah::new(BuildahConfig {
        binary: var("CRTASK_BUILDAH")?
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("buildah")),
        root: storage.join("root"),
        runroot: storage.join("runroot"),
        storage_driver: var("CRTASK_STORAGE_DRIVER")?.unwrap_or_else(|| "vfs".into()),
        isolation: var("CRTASK_ISOLATION")?.unwrap_or_else(|| "chroot".into()),
        build_runtime: crtask_executor::runtime::resolve(var("CRTASK_BUILD_RUNTIME")?.as_deref()),
        registries_conf,
        insecure_registries: insecure,
        git_auth: git_auth()?,
    }))
}

/// The context directory: the extracted `CRTASK_CONTEXT_ARCHIVE`, the
/// checked-out `CRTASK_CONTEXT_DIR`, a clone of `CRTASK_GIT_URL`, or empty.
async fn prepare_context(
    spec: &BuildSpec,
    dest: &Path,
    limit: u64,
    engine: &dyn Engine,
    log: &dyn LogSink,
) -> Result<PathBuf> {
    let archive = var("CRTASK_CONTEXT_ARCHIVE")?;
    let dir = var("CRTASK_CONTEXT_DIR")?;
    let subdir = var("CRTASK_CONTEXT_SUBDIR")?;
    let fresh = |d: &Path| -> Result<()> {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))
    };
    let within = |root: PathBuf| -> Result<PathBuf> {
        match &subdir {
            None => Ok(root),
            Some(s) => crtask_executor::fsutil::resolve_inside(&root, s)
                .filter(|p| p.is_dir())
                .ok_or_else(|| {
                    anyhow!("CRTASK_CONTEXT_SUBDIR: directory '{s}' not found in the context")
                }),
        }
    };
    match (archive, dir) {
        (Some(_), Some(_)) => {
            bail!("CRTASK_CONTEXT_ARCHIVE and CRTASK_CONTEXT_DIR are both set: set one")
        }
        (Some(a), None) => {
            fresh(dest)?;
            let file = std::fs::File::open(&a)
                .map_err(|e| anyhow!("CRTASK_CONTEXT_ARCHIVE: cannot open {a}: {e}"))?;
            let to = dest.to_path_buf();
            let stats = tokio::task::spawn_blocking(move || {
                crtask_executor::context::unpack_safe(std::io::BufReader::new(file), &to, limit)
            })
            .await?
            .map_err(|e| anyhow!("CRTASK_CONTEXT_ARCHIVE: {e}"))?;
            log.line(&format!(
                "crtask: context extracted: {} files, {} bytes",
                stats.files, stats.bytes
            ));
            Ok(dest.to_path_buf())
        }
        (None, Some(d)) => {
            let p = PathBuf::from(&d);
            if !p.is_dir() {
                bail!("CRTASK_CONTEXT_DIR '{d}' is not a directory");
            }
            log.line(&format!("crtask: context: {d}"));
            within(p)
        }
        (None, None) => {
            let kind = match var("CRTASK_CONTEXT_KIND")? {
                Some(k) => k,
                None => match &spec.context {
                    ContextSource::None => "none".into(),
                    ContextSource::Git { .. } => "git".into(),
                    ContextSource::Uploaded { .. } => "uploaded".into(),
                    ContextSource::LocalDir { .. } => "local".into(),
                },
            };
            match kind.as_str() {
                "none" => {
                    fresh(dest)?;
                    Ok(dest.to_path_buf())
                }
                "git" => {
                    let (spec_url, spec_ref) = match &spec.context {
                        ContextSource::Git { url, reference, .. } => {
                            (Some(url.clone()), reference.clone())
                        }
                        _ => (None, None),
                    };
                    let url = var("CRTASK_GIT_URL")?.or(spec_url).ok_or_else(|| {
                        anyhow!("CRTASK_GIT_URL is not set (CRTASK_CONTEXT_KIND is git)")
                    })?;
                    let reference = var("CRTASK_COMMIT")?
                        .or(var("CRTASK_GIT_REF")?)
                        .or(spec_ref);
                    fresh(dest)?;
                    engine
                        .checkout(&url, reference.as_deref(), dest, log)
                        .await
                        .map_err(|e| anyhow!("cannot check out {url}: {e}"))?;
                    within(dest.to_path_buf())
                }
                "uploaded" => bail!(
                    "CRTASK_CONTEXT_ARCHIVE is not set but the context is an upload (CRTASK_CONTEXT_KIND=uploaded)"
                ),
                other => bail!("CRTASK_CONTEXT_KIND '{other}' is not none, git or uploaded"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids() {
        assert!(valid_run_id("cb1"));
        assert!(valid_run_id("a-b_C9"));
        assert!(!valid_run_id(""));
        assert!(!valid_run_id("a;b"));
        assert!(!valid_run_id(&"a".repeat(65)));
    }
}
