//! Multi-step runs: an acr-task.yaml file executed on an [`Engine`].
//!
//! [`EngineStepRunner`] turns each validated step into engine calls (`build`
//! -> pull bases + build, `cmd` -> run a container with the context at
//! `/workspace` and the run's home volume at `/acb/home` ([`container`]),
//! `push` -> push with ACR's retries); [`execute_task_file`]
//! runs the step graph and collects what a run records.

use crate::build::taskfile::{
    self, BuildContext, ExecOptions, PushBackoff, Step, StepEvent, StepKind, StepRunner, TaskFile,
};
use crate::build::{container, dockerfile};
use crate::domain::imageref::ImageRef;
use crate::domain::model::{BaseImageUse, OutputImage, RunStatus, StepRecord};
use crate::ports::{BuildRequest, ContainerRequest, Engine, LogSink, PullOutcome, PushOutcome};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Exit code reported for a step stopped by cancellation or timeout.
pub const CANCELED_EXIT: i32 = 130;

/// Prefixes every line written through it with `[step] `, so the output
/// of parallel steps stays readable in one log.
pub struct PrefixLog<'a> {
    inner: &'a dyn LogSink,
    prefix: String,
    pending: Mutex<Vec<u8>>,
}

impl<'a> PrefixLog<'a> {
    pub fn new(inner: &'a dyn LogSink, step: &str) -> Self {
        PrefixLog {
            inner,
            prefix: format!("[{step}] "),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Writes out an unfinished last line.
    pub fn flush(&self) {
        if let Ok(mut p) = self.pending.lock() {
            if !p.is_empty() {
                let mut line = self.prefix.as_bytes().to_vec();
                line.append(&mut p);
                line.push(b'\n');
                self.inner.write(&line);
            }
        }
    }
}

impl LogSink for PrefixLog<'_> {
    fn add_secret(&self, value: &str) {
        self.inner.add_secret(value);
    }

    fn write(&self, bytes: &[u8]) {
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        p.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = p.iter().position(|b| *b == b'\n') {
            let rest = p.split_off(pos + 1);
            out.extend_from_slice(self.prefix.as_bytes());
            out.extend_from_slice(&p);
            *p = rest;
        }
        drop(p);
        if !out.is_empty() {
            self.inner.write(&out);
        }
    }
}

impl Drop for PrefixLog<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// What the steps of a run produced.
#[derive(Default)]
struct Produced {
    outputs: Vec<OutputImage>,
    bases: Vec<BaseImageUse>,
    /// Tags built by earlier steps of this run (usable without a pull).
    built: HashSet<String>,
    /// How each build step (by id) used the layer cache.
    cache: std::collections::HashMap<String, crate::domain::model::CacheUse>,
}

/// Runs steps on an engine.
pub struct EngineStepRunner {
    engine: Arc<dyn Engine>,
    /// The run's context, shared by every step at `/workspace`.
    workspace: PathBuf,
    /// Scratch space for git build contexts and secret volumes.
    scratch: PathBuf,
    group: String,
    log: Arc<dyn LogSink>,
    secret_volumes: BTreeMap<String, BTreeMap<String, String>>,
    produced: Mutex<Produced>,
    /// False for runs that must not push (pull requests without opt-in).
    push_enabled: bool,
}

impl EngineStepRunner {
    pub fn new(
        engine: Arc<dyn Engine>,
        workspace: PathBuf,
        scratch: PathBuf,
        group: String,
        log: Arc<dyn LogSink>,
        tf: &TaskFile,
    ) -> Self {
        EngineStepRunner {
            engine,
            workspace,
            scratch,
            group,
            log,
            secret_volumes: tf
                .volumes
                .iter()
                .map(|v| (v.name.clone(), v.secret.clone()))
                .collect(),
            produced: Mutex::new(Produced::default()),
            push_enabled: true,
        }
    }

    /// Turns push steps into no-ops (logged), for runs that must not push.
    pub fn without_pushes(mut self) -> Self {
        self.push_enabled = false;
        self
    }

    async fn build(&self, step: &Step, b: &taskfile::BuildStep, log: &dyn LogSink) -> Result<i32> {
        let context_dir = match &b.context {
            BuildContext::Local(p) => resolve_inside(&self.workspace, p).ok_or_else(|| {
                Error::invalid(format!("build context '{p}' is outside the workspace"))
            })?,
            BuildContext::Git(url) => {
                let (url, frag) = url.split_once('#').unwrap_or((url.as_str(), ""));
                let (reference, subdir) = frag.split_once(':').unwrap_or((frag, ""));
                let dest = self.scratch.join(format!("git-{}", step.index));
                let reference = (!reference.is_empty()).then_some(reference);
                self.engine.checkout(url, reference, &dest, log).await?;
                if subdir.is_empty() {
                    dest
                } else {
                    resolve_inside(&dest, subdir)
                        .ok_or_else(|| Error::invalid(format!("'{subdir}' is outside {url}")))?
                }
            }
            BuildContext::Url(u) => {
                return Err(Error::invalid(format!(
                    "step {}: remote tarball contexts ({u}) are not supported; use a git URL or a workspace path",
                    step.id
                )))
            }
        };
        let file = b.file.clone().unwrap_or_else(|| "Dockerfile".into());
        let dockerfile = resolve_inside(&context_dir, &file)
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                Error::invalid(format!("step {}: Dockerfile '{file}' not found", step.id))
            })?;
        let text = std::fs::read_to_string(&dockerfile)
            .map_err(|e| Error::invalid(format!("step {}: cannot read '{file}': {e}", step.id)))?;
        let mut args = BTreeMap::new();
        for a in &b.build_args {
            match a.split_once('=') {
                Some((k, v)) => args.insert(k.to_string(), v.to_string()),
                // `K` alone takes the step's (or the task file's) env value;
                // the server's own environment is never read.
                None => match step.env.iter().find(|(k, _)| k == a) {
                    Some((_, v)) => args.insert(a.clone(), v.clone()),
                    None => None,
                },
            };
        }
        let bases = match dockerfile::scan(&text, &args, b.target.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                log.line(&format!("crtask: {file}: {e}"));
                return Ok(1);
            }
        };
        // `--platform A,B` builds one image index ([`crate::domain::platform`]).
        let platforms = match crate::domain::platform::of_spec(b.platform.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                log.line(&format!("crtask: step {}: {e}", step.id));
                return Ok(1);
            }
        };
        let multi = platforms.len() > 1;
        let per_platform: Vec<Option<&str>> = if multi {
            platforms.iter().map(|p| Some(p.as_str())).collect()
        } else {
            vec![None]
        };
        let mut wanted: Vec<(ImageRef, bool)> =
            bases.runtime.iter().map(|r| (r.clone(), true)).collect();
        wanted.extend(bases.build_time.iter().map(|r| (r.clone(), false)));
        for (image, runtime) in wanted {
            let name = image.full();
            let built_here = self
                .produced
                .lock()
                .map(|p| p.built.contains(&name))
                .unwrap_or(false);
            if built_here {
                continue;
            }
            for platform in &per_platform {
                let pulled = match platform {
                    Some(p) => self.engine.pull_platform(&name, p, log).await?,
                    None => self.engine.pull(&name, log).await?,
                };
                match pulled {
                    PullOutcome::Pulled { digest } => {
                        if let Ok(mut p) = self.produced.lock() {
                            let platform = platform.map(str::to_string);
                            if !p
                                .bases
                                .iter()
                                .any(|x| x.image == name && x.platform == platform)
                            {
                                p.bases.push(BaseImageUse {
                                    image: name.clone(),
                                    digest,
                                    runtime,
                                    platform,
                                });
                            }
                        }
                    }
                    // A platform the base lacks fails the step: a local
                    // image of another platform would build the wrong thing.
                    PullOutcome::Failed { message } if platform.is_some() => {
                        log.line(&format!("crtask: {message}"));
                        return Ok(1);
                    }
                    PullOutcome::Failed { message } => {
                        if self.engine.has_image(&name).await {
                            log.line(&format!("crtask: using local image {name}"));
                        } else {
                            log.line(&format!("crtask: {message}"));
                            return Ok(1);
                        }
                    }
                }
            }
        }
        // ACR's step `cache:` (default enabled), `--no-cache` and `--pull`.
        let opts = crate::domain::model::CacheOptions {
            repo: None,
            no_cache: b.no_cache,
            pull: b.pull,
        };
        // The cache is named after the first tag that names its registry:
        // a bare `-t app` (ACR's samples tag local images so) would put it
        // on docker.io, so such a build has no cache, as on ACR.
        let named = b
            .tags
            .iter()
            .map(String::as_str)
            .find(|t| crate::domain::imageref::names_registry(t));
        let cache = crate::build::cache::plan(step.cache != Some(false), &opts, named, true);
        if step.cache != Some(false) && named.is_none() && !b.tags.is_empty() {
            log.line("crtask: layer cache disabled: no tag names a registry (tag REGISTRY/NAME, e.g. $Registry/NAME, to cache)");
        } else {
            log.line(&crate::build::cache::describe(&cache));
        }
        let tally = crate::build::cache::CacheTally::new(log);
        let req = BuildRequest {
            context_dir: &context_dir,
            dockerfile: &dockerfile,
            tags: b.tags.clone(),
            build_args: args,
            target: b.target.clone(),
            platform: (!platforms.is_empty()).then(|| platforms.join(",")),
            index: multi.then(|| {
                b.tags
                    .first()
                    .cloned()
                    .unwrap_or_else(|| crate::build::quick::INDEX_WITHOUT_TAGS.to_string())
            }),
            cache,
        };
        let exit = self.engine.build(&req, &tally).await?;
        if req.cache.repo.is_some() {
            let used = tally.result();
            log.line(&format!(
                "crtask: layer cache: {} step(s) reused, {} built",
                used.reused, used.built
            ));
            if let Ok(mut p) = self.produced.lock() {
                p.cache.insert(step.id.clone(), used);
            }
        }
        if exit.success() {
            if let Ok(mut p) = self.produced.lock() {
                for t in &b.tags {
                    if let Ok(r) = ImageRef::parse(t) {
                        p.built.insert(r.full());
                    }
                    p.built.insert(t.clone());
                }
            }
        }
        Ok(exit.code)
    }

    async fn cmd(&self, step: &Step, c: &taskfile::CmdStep, log: &dyn LogSink) -> Result<i32> {
        // The run's home volume, shared by its steps (ACR's `/acb/home`).
        let home = self.scratch.join("home");
        std::fs::create_dir_all(&home)
            .map_err(|e| Error::Builder(format!("cannot create the home volume: {e}")))?;
        let mut mounts = vec![
            (self.workspace.clone(), taskfile::WORKSPACE.to_string()),
            (home, container::HOME_DIR.to_string()),
        ];
        for vm in &step.volume_mounts {
            let files = self.secret_volumes.get(&vm.name).ok_or_else(|| {
                Error::invalid(format!(
                    "step {}: volume '{}' is not declared",
                    step.id, vm.name
                ))
            })?;
            let dir = self
                .scratch
                .join(format!("vol-{}-{}", step.index, clean_name(&vm.name)));
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Builder(format!("cannot create a volume directory: {e}")))?;
            for (name, b64) in files {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| {
                        Error::invalid(format!("volume '{}': '{name}' is not base64", vm.name))
                    })?;
                let target = resolve_inside(&dir, name).ok_or_else(|| {
                    Error::invalid(format!("volume '{}': bad file name '{name}'", vm.name))
                })?;
                std::fs::write(&target, bytes)
                    .map_err(|e| Error::Builder(format!("cannot write a volume file: {e}")))?;
            }
            mounts.push((dir, vm.mount_path.clone()));
        }
        let workdir = container::workdir(step);
        if let Some(w) = &workdir {
            container::ensure_workdir(w, &mounts).map_err(|e| {
                Error::Builder(format!("cannot create the working directory {w}: {e}"))
            })?;
        }
        let env = container::env(step);
        let entrypoint = step.entry_point.as_ref().map(|e| vec![e.clone()]);
        let name = clean_name(&step.id);
        let req = ContainerRequest {
            image: &c.image,
            entrypoint,
            args: &c.args,
            env: &env,
            workdir: workdir.as_deref(),
            user: step.user.as_deref(),
            mounts,
            pull_always: step.pull,
            detach: step.detach,
            keep: step.keep,
            group: &self.group,
            name: &name,
        };
        Ok(self.engine.run_container(&req, log).await?.code)
    }

    async fn push(
        &self,
        refs: &[String],
        cancel: &CancellationToken,
        log: &dyn LogSink,
    ) -> Result<i32> {
        for r in refs {
            log.line(&format!("crtask: pushing {r}"));
            let outcome = taskfile::push_with_retries(PushBackoff::default(), cancel, |attempt| {
                let r = r.clone();
                async move {
                    if attempt > 1 {
                        log.line(&format!("crtask: push attempt {attempt} of {r}"));
                    }
                    match self.engine.push(&r, log).await? {
                        PushOutcome::Pushed { digest, platforms } => Ok((digest, platforms)),
                        PushOutcome::Failed { message } => Err(Error::Builder(message)),
                    }
                }
            })
            .await;
            match outcome {
                Ok((digest, platforms)) => {
                    log.line(&format!("crtask: pushed {r} {digest}"));
                    for p in &platforms {
                        log.line(&format!("crtask:   {} {}", p.platform, p.digest));
                    }
                    let parsed = ImageRef::parse(r)?;
                    if let Ok(mut p) = self.produced.lock() {
                        p.outputs.push(OutputImage {
                            registry: parsed.registry.clone(),
                            repository: parsed.repository.clone(),
                            tag: parsed.tag.clone().unwrap_or_default(),
                            digest,
                            platforms,
                        });
                    }
                }
                Err(e) => {
                    log.line(&format!("crtask: {e}"));
                    return Ok(1);
                }
            }
        }
        Ok(0)
    }
}

#[async_trait]
impl StepRunner for EngineStepRunner {
    async fn run(&self, step: &Step, _attempt: u32, cancel: CancellationToken) -> Result<i32> {
        let log = PrefixLog::new(self.log.as_ref(), &step.id);
        let work = async {
            match &step.kind {
                StepKind::Build(b) => self.build(step, b, &log).await,
                StepKind::Cmd(c) => self.cmd(step, c, &log).await,
                StepKind::Push(refs) if !self.push_enabled => {
                    log.line(&format!(
                        "crtask: not pushing {} (pushes are off for this run, e.g. a pull request)",
                        refs.join(", ")
                    ));
                    Ok(0)
                }
                StepKind::Push(refs) => self.push(refs, &cancel, &log).await,
            }
        };
        tokio::select! {
            r = work => r,
            _ = cancel.cancelled() => Ok(CANCELED_EXIT),
        }
    }
}

/// Joins `rel` under `root` lexically, refusing absolute paths and `..` that climb out.
fn resolve_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            std::path::Component::Normal(p) => {
                out.push(p);
                depth += 1;
            }
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// A container-name-safe form of a step id.
fn clean_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// How a multi-step run ended.
pub struct MultiResult {
    pub status: RunStatus,
    pub error: Option<String>,
    pub steps: Vec<StepRecord>,
    pub output_images: Vec<OutputImage>,
    pub base_images: Vec<BaseImageUse>,
}

/// Where and how a task file runs.
pub struct TaskFileRun {
    pub engine: Arc<dyn Engine>,
    /// The run's context, `/workspace` for every step.
    pub workspace: PathBuf,
    /// Scratch space (git build contexts, secret volumes); the caller removes it.
    pub scratch: PathBuf,
    /// The run id: groups the run's detached containers.
    pub group: String,
    pub log: Arc<dyn LogSink>,
    /// Stops the run (a user's cancel, the run's timeout).
    pub cancel: CancellationToken,
    /// False for runs that must not push (pull requests without opt-in).
    pub push: bool,
}

/// Runs a validated task file: every ready step at once, fail fast, step
/// boundaries in the log.
pub async fn execute_task_file(tf: &TaskFile, r: TaskFileRun) -> MultiResult {
    let TaskFileRun {
        engine,
        workspace,
        scratch,
        group,
        log,
        cancel,
        push,
    } = r;
    let group = group.as_str();
    for w in &tf.warnings {
        log.line(&format!("crtask: warning: {w}"));
    }
    let mut runner = EngineStepRunner::new(
        engine.clone(),
        workspace,
        scratch,
        group.to_string(),
        log.clone(),
        tf,
    );
    if !push {
        runner = runner.without_pushes();
    }
    let runner = Arc::new(runner);
    let log2 = log.clone();
    let events = move |e: StepEvent| match e {
        StepEvent::Started { id, .. } => log2.line(&format!("==> step {id}: started")),
        StepEvent::Retrying {
            id,
            next_attempt,
            exit_code,
            ..
        } => log2.line(&format!(
            "==> step {id}: exited with {exit_code}; retrying (attempt {next_attempt})"
        )),
        StepEvent::Repeating { id, repetition, of } => {
            log2.line(&format!("==> step {id}: repetition {repetition} of {of}"))
        }
        StepEvent::Finished { record, message } => log2.line(&format!(
            "==> step {}: {}{}",
            record.id,
            record.status,
            message.map(|m| format!(" ({m})")).unwrap_or_default()
        )),
        StepEvent::Skipped { id, .. } => log2.line(&format!("==> step {id}: skipped")),
    };
    let opts = ExecOptions {
        cancel,
        cancel_grace: Duration::from_secs(10),
    };
    let outcome = taskfile::execute_with(tf, runner.clone(), &events, opts).await;
    engine.end_group(group).await;
    let (produced, cache) = runner
        .produced
        .lock()
        .map(|mut p| {
            (
                (std::mem::take(&mut p.outputs), std::mem::take(&mut p.bases)),
                std::mem::take(&mut p.cache),
            )
        })
        .unwrap_or_default();
    let mut steps = outcome.steps;
    for s in &mut steps {
        s.cache = cache.get(&s.id).copied();
    }
    MultiResult {
        status: outcome.status,
        error: outcome.error,
        steps,
        output_images: produced.0,
        base_images: produced.1,
    }
}
