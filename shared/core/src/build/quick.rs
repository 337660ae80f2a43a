//! The executor of a single-Dockerfile run (quick builds and build tasks):
//! scan the Dockerfile, pull and pin its bases, build, push, record.
//! It drives an [`Engine`]; the platform supplies the context directory.

use crate::build::dockerfile::{self, BaseImages};
use crate::domain::imageref::ImageRef;
use crate::domain::model::{BaseImageUse, BuildSpec, OutputImage, RunStatus, StepRecord};
use crate::ports::{BuildRequest, Clock, Engine, LogSink, PullOutcome, PushOutcome};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// Renders image templates with the run's data and qualifies them: a name
/// without a registry host gets `default_registry`.
pub fn render_tags(
    images: &[String],
    data: &serde_json::Value,
    default_registry: Option<&str>,
) -> Result<Vec<ImageRef>> {
    let mut out: Vec<ImageRef> = Vec::new();
    for raw in images {
        let rendered = crtask_gotemplate::render(raw, data)
            .map_err(|e| Error::invalid(format!("image '{raw}': {e}")))?;
        let rendered = rendered.trim();
        if rendered.is_empty() {
            return Err(Error::invalid(format!("image '{raw}' renders to nothing")));
        }
        let r = match default_registry {
            Some(reg) => ImageRef::parse_with_default_registry(rendered, reg),
            None => {
                let r = ImageRef::parse(rendered)?;
                if !rendered.contains('/')
                    || !crate::domain::imageref::is_registry_host(rendered.split('/').next().unwrap_or(""))
                {
                    return Err(Error::invalid(format!(
                        "image '{rendered}' names no registry and no default registry is configured (the local server's --registry; on AWS, the stack's: `crtask aws configure`, or --aws-registry)"
                    )));
                }
                Ok(r)
            }
        }
        .map_err(|e| Error::invalid(format!("image '{raw}' (rendered '{rendered}'): {e}")))?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Keeps the tail of what was logged, for one-line error messages.
pub struct LogTail<'a> {
    log: &'a dyn LogSink,
    tail: Mutex<Vec<u8>>,
}

impl<'a> LogTail<'a> {
    pub fn new(log: &'a dyn LogSink) -> Self {
        LogTail {
            log,
            tail: Mutex::new(Vec::new()),
        }
    }

    /// The last line mentioning an error, or the last non-empty line.
    pub fn error_line(&self) -> Option<String> {
        let tail = self.tail.lock().ok()?;
        let text = String::from_utf8_lossy(&tail);
        text.lines()
            .rev()
            .find(|l| l.to_ascii_lowercase().contains("error"))
            .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
            .map(|l| l.trim().chars().take(400).collect())
    }
}

impl LogSink for LogTail<'_> {
    fn write(&self, bytes: &[u8]) {
        self.log.write(bytes);
        if let Ok(mut t) = self.tail.lock() {
            t.extend_from_slice(bytes);
            let len = t.len();
            if len > 8192 {
                t.drain(..len - 8192);
            }
        }
    }
}

/// The local name of a multi-platform build's image index when the build
/// has no tags (nothing is pushed then).
pub const INDEX_WITHOUT_TAGS: &str = "localhost/crtask-index:latest";

/// What the executor needs besides the spec.
pub struct BuildInputs<'a> {
    pub context_dir: &'a Path,
    /// The Dockerfile's path on the engine's machine.
    pub dockerfile_path: &'a Path,
    /// The Dockerfile's text (read by the platform).
    pub dockerfile_text: &'a str,
    /// Fully qualified tags, from [`render_tags`].
    pub tags: &'a [ImageRef],
}

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    pub status: RunStatus,
    pub error: Option<String>,
    pub output_images: Vec<OutputImage>,
    pub base_images: Vec<BaseImageUse>,
    pub steps: Vec<StepRecord>,
}

struct Steps<'a> {
    clock: &'a dyn Clock,
    steps: Vec<StepRecord>,
}

impl Steps<'_> {
    fn start(&mut self, id: &str) {
        // Steps run one after another: each waits for the one before.
        let step = StepRecord::next_in_sequence(id, self.steps.last(), self.clock.now());
        self.steps.push(step);
    }
    fn finish(&mut self, status: RunStatus, exit_code: Option<i32>) {
        if let Some(s) = self.steps.last_mut() {
            s.status = status;
            s.finish_time = Some(self.clock.now());
            s.exit_code = exit_code;
        }
    }
}

/// Runs one Dockerfile build end to end on `engine`.
pub async fn execute_build(
    engine: &dyn Engine,
    spec: &BuildSpec,
    inputs: &BuildInputs<'_>,
    log: &dyn LogSink,
    clock: &dyn Clock,
) -> BuildResult {
    let mut steps = Steps {
        clock,
        steps: Vec::new(),
    };
    let mut base_images = Vec::new();
    let mut output_images = Vec::new();
    // How the build ended early: the user's input (Failed) or the engine (Error).
    let ended =
        |status: RunStatus, steps: Steps, base_images, output_images, msg: String| BuildResult {
            status,
            error: Some(msg),
            output_images,
            base_images,
            steps: steps.steps,
        };
    let fail = |steps: Steps, base_images, output_images, msg: String| {
        ended(RunStatus::Failed, steps, base_images, output_images, msg)
    };

    let args: BTreeMap<String, String> = spec
        .build_args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();

    // 1. Which images does this Dockerfile build on?
    steps.start("build");
    let bases: BaseImages =
        match dockerfile::scan(inputs.dockerfile_text, &args, spec.target.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                log.line(&format!("crtask: {}: {e}", spec.file));
                steps.finish(RunStatus::Failed, None);
                return fail(
                    steps,
                    base_images,
                    output_images,
                    format!("{}: {e}", spec.file),
                );
            }
        };

    // 2. Fail before building when a push target cannot be reached.
    if spec.push {
        let mut seen = Vec::new();
        for t in inputs.tags {
            if seen.contains(&t.registry) {
                continue;
            }
            seen.push(t.registry.clone());
            if let Err(msg) = engine.probe_registry(&t.registry).await {
                log.line(&format!("crtask: {msg}"));
                steps.finish(RunStatus::Failed, None);
                return fail(steps, base_images, output_images, msg);
            }
        }
    }

    // A list of platforms builds one image index ([`crate::domain::platform`]).
    let platforms = match crate::domain::platform::of_spec(spec.platform.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            log.line(&format!("crtask: {e}"));
            steps.finish(RunStatus::Failed, None);
            return fail(steps, base_images, output_images, e.to_string());
        }
    };
    let multi = platforms.len() > 1;
    if multi {
        log.line(&format!(
            "crtask: building for {} into one image index",
            platforms.join(", ")
        ));
    }

    // 3. Pull every base (for each platform of a multi-platform build),
    //    always asking the registry, and record the digest used.
    let mut wanted: Vec<(ImageRef, bool)> = Vec::new();
    if let Some(r) = &bases.runtime {
        wanted.push((r.clone(), true));
    }
    for b in &bases.build_time {
        if !wanted.iter().any(|(w, _)| w == b) {
            wanted.push((b.clone(), false));
        }
    }
    let per_platform: Vec<Option<&str>> = if multi {
        platforms.iter().map(|p| Some(p.as_str())).collect()
    } else {
        vec![None]
    };
    for (image, runtime) in wanted {
        for platform in &per_platform {
            let name = image.full();
            let pulled = match platform {
                Some(p) => {
                    log.line(&format!("crtask: pulling base image {name} for {p}"));
                    engine.pull_platform(&name, p, log).await
                }
                None => {
                    log.line(&format!("crtask: pulling base image {name}"));
                    engine.pull(&name, log).await
                }
            };
            match pulled {
                Ok(PullOutcome::Pulled { digest }) => {
                    match platform {
                        Some(p) => log.line(&format!("crtask: {name} for {p} is {digest}")),
                        None => log.line(&format!("crtask: {name} is {digest}")),
                    }
                    base_images.push(BaseImageUse {
                        image: name,
                        digest,
                        runtime,
                        platform: platform.map(str::to_string),
                    });
                }
                Ok(PullOutcome::Failed { message }) => {
                    log.line(&format!("crtask: {message}"));
                    steps.finish(RunStatus::Failed, None);
                    return fail(steps, base_images, output_images, message);
                }
                Err(e) => {
                    steps.finish(RunStatus::Error, None);
                    return ended(
                        RunStatus::Error,
                        steps,
                        base_images,
                        output_images,
                        e.to_string(),
                    );
                }
            }
        }
    }

    // 4. Build.
    let cache = crate::build::cache::plan(
        true,
        &spec.cache,
        inputs.tags.first().map(|t| t.full()).as_deref(),
        spec.push,
    );
    log.line(&crate::build::cache::describe(&cache));
    let tally = crate::build::cache::CacheTally::new(log);
    let tail = LogTail::new(&tally);
    let req = BuildRequest {
        context_dir: inputs.context_dir,
        dockerfile: inputs.dockerfile_path,
        tags: inputs.tags.iter().map(|t| t.full()).collect(),
        build_args: args,
        target: spec.target.clone(),
        platform: if platforms.is_empty() {
            None
        } else {
            Some(platforms.join(","))
        },
        // The index is named by the first tag (a run-private name when the
        // build has none: the run's image store is its own).
        index: multi.then(|| {
            inputs
                .tags
                .first()
                .map(|t| t.full())
                .unwrap_or_else(|| INDEX_WITHOUT_TAGS.to_string())
        }),
        cache,
    };
    let built = engine.build(&req, &tail).await;
    let used = tally.result();
    if req.cache.repo.is_some() {
        log.line(&format!(
            "crtask: layer cache: {} step(s) reused, {} built",
            used.reused, used.built
        ));
        if let Some(s) = steps.steps.last_mut() {
            s.cache = Some(used);
        }
    }
    match built {
        Ok(exit) if exit.success() => steps.finish(RunStatus::Succeeded, Some(0)),
        Ok(exit) => {
            steps.finish(RunStatus::Failed, Some(exit.code));
            let why = tail
                .error_line()
                .unwrap_or_else(|| "see the run's log".to_string());
            return fail(
                steps,
                base_images,
                output_images,
                format!("build failed (exit code {}): {why}", exit.code),
            );
        }
        Err(e) => {
            steps.finish(RunStatus::Error, None);
            return ended(
                RunStatus::Error,
                steps,
                base_images,
                output_images,
                e.to_string(),
            );
        }
    }

    // 5. Push every tag and record what the registry accepted.
    if spec.push && !inputs.tags.is_empty() {
        steps.start("push");
        for t in inputs.tags {
            let name = t.full();
            log.line(&format!("crtask: pushing {name}"));
            match engine.push(&name, log).await {
                Ok(PushOutcome::Pushed { digest, platforms }) => {
                    log.line(&format!("crtask: pushed {name} {digest}"));
                    for p in &platforms {
                        log.line(&format!("crtask:   {} {}", p.platform, p.digest));
                    }
                    output_images.push(OutputImage {
                        registry: t.registry.clone(),
                        repository: t.repository.clone(),
                        tag: t.tag.clone().unwrap_or_default(),
                        digest,
                        platforms,
                    });
                }
                Ok(PushOutcome::Failed { message }) => {
                    log.line(&format!("crtask: {message}"));
                    steps.finish(RunStatus::Failed, None);
                    return fail(steps, base_images, output_images, message);
                }
                Err(e) => {
                    steps.finish(RunStatus::Error, None);
                    return ended(
                        RunStatus::Error,
                        steps,
                        base_images,
                        output_images,
                        e.to_string(),
                    );
                }
            }
        }
        steps.finish(RunStatus::Succeeded, Some(0));
    } else if inputs.tags.is_empty() {
        log.line("crtask: no image tags given (-t): the image was built but not pushed");
    }

    BuildResult {
        status: RunStatus::Succeeded,
        error: None,
        output_images,
        base_images,
        steps: steps.steps,
    }
}
