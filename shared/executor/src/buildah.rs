//! The buildah engine: `bud` to build, `pull`/`push` with digest capture.
//!
//! Every buildah process runs in its own process group with a parent-death
//! signal ([`crate::process`]), so cancelling a run (or the server dying)
//! takes its whole process tree down with it. Arguments are always passed as
//! argv, never through a shell.

use crate::gitctx::GitAuth;
use crate::probe::probe_distribution;
use crate::process::{first_error_line, own_group, run_streaming, GroupGuard, Tee};
use crate::pull_cache::SharedPulls;
use async_trait::async_trait;
use crtask_core::build::cache::CachePlan;
use crtask_core::ports::{
    BuildRequest, ContainerRequest, Engine, Exit, LogSink, PullOutcome, PushOutcome,
};
use crtask_core::{Error as CoreError, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;

/// How to invoke buildah.
#[derive(Debug, Clone)]
pub struct BuildahConfig {
    pub binary: PathBuf,
    /// Storage root (`--root`) and run root (`--runroot`).
    pub root: PathBuf,
    pub runroot: PathBuf,
    /// `vfs` works everywhere, including without overlay support.
    pub storage_driver: String,
    /// `chroot` works without user namespaces; `oci` where runc is usable.
    pub isolation: String,
    /// The OCI runtime `RUN` instructions of builds run under, whatever
    /// `isolation` is ([`crate::runtime`]: buildah's chroot relay can lose
    /// their output); `None`: `isolation` as it is.
    pub build_runtime: Option<PathBuf>,
    /// containers-registries.conf(5) written by the platform (insecure registries).
    pub registries_conf: PathBuf,
    /// Registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Tokens for private git repositories.
    pub git_auth: GitAuth,
}

/// Writes the containers-registries.conf(5) buildah uses: Docker Hub for
/// short names, and the plain-HTTP registries.
pub fn write_registries_conf(path: &Path, insecure: &[String]) -> std::io::Result<()> {
    let mut text = String::from(
        "# written by crtask serve\nunqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n",
    );
    for r in insecure {
        text.push_str(&format!(
            "\n[[registry]]\nlocation = {}\ninsecure = true\n",
            toml_string(r)
        ));
    }
    std::fs::write(path, text)
}

fn toml_string(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => vec![],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// The layer-cache options of `buildah bud` ([`crtask_core::build::cache`]):
/// a registry cache, since a run's own store dies with the run.
fn cache_args(cmd: &mut Command, plan: &CachePlan) {
    // Base images were pulled (and their digests recorded) just before,
    // unless the build asks for `--pull`.
    cmd.arg(if plan.pull {
        "--pull=always"
    } else {
        "--pull=false"
    });
    match &plan.repo {
        None => {
            cmd.arg("--layers=false");
        }
        Some(repo) => {
            cmd.arg("--layers=true");
            if !plan.no_cache {
                cmd.arg("--cache-from").arg(repo);
            } else {
                cmd.arg("--no-cache");
            }
            if plan.write {
                cmd.arg("--cache-to").arg(repo);
            }
        }
    }
}

/// Containers of a run still to clean up: detached ones (with the guard
/// that kills their process group) and kept ones.
#[derive(Default)]
struct Group {
    detached: Vec<(String, GroupGuard, tokio::task::JoinHandle<()>)>,
    remove: Vec<String>,
    /// Runtime and state of detached containers started under a runtime.
    runc: Vec<(PathBuf, PathBuf)>,
}

/// The buildah engine.
#[derive(Clone)]
pub struct Buildah {
    cfg: BuildahConfig,
    http: reqwest::Client,
    groups: Arc<Mutex<HashMap<String, Group>>>,
    /// The static shell that gives `cmd` steps their own output FIFOs
    /// ([`crate::stdio`]); `None`: buildah's relay (may lose output).
    stdio_helper: Option<PathBuf>,
    /// Set on the engine of one run ([`Engine::for_run`]): its own store.
    run_scope: Option<String>,
    /// Container removals still running in the background.
    removals: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// Tags of multi-platform builds -> the local image index holding them
    /// ([`BuildRequest::index`]): pushing such a tag pushes the index.
    indexes: Arc<Mutex<HashMap<String, String>>>,
    /// The store `cmd` images are pulled into, read by every run store
    /// ([`crate::pull_cache`]); `None` for drivers that cannot share it.
    shared: Option<Arc<SharedPulls>>,
    /// Set on the engine of one run: what the run has in its own store and
    /// what it pulled into the shared one.
    run: Option<Arc<RunImages>>,
}

/// The images of one run ([`Buildah::scoped`]).
struct RunImages {
    /// References in the run's own store: images it built or pulled there.
    own: Mutex<HashSet<String>>,
    /// `cmd` images the run pulled into the shared store -> image ID.
    pulled: Mutex<HashMap<String, String>>,
    /// Keeps the shared store's untagged images while the run is on.
    _active: Option<crate::pull_cache::ActiveRun>,
}

impl RunImages {
    fn owns(&self, image: &str) -> bool {
        self.own.lock().map(|o| o.contains(image)).unwrap_or(false)
    }
    fn add_own(&self, image: &str) {
        if let Ok(mut o) = self.own.lock() {
            o.insert(image.to_string());
        }
    }
}

impl Buildah {
    pub fn new(cfg: BuildahConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Buildah {
            http,
            groups: Arc::new(Mutex::new(HashMap::new())),
            stdio_helper: crate::stdio::find_helper(),
            run_scope: None,
            removals: Arc::default(),
            indexes: Arc::default(),
            shared: crate::pull_cache::supported(&cfg.storage_driver).then(|| {
                Arc::new(SharedPulls::new(
                    &cfg.binary,
                    &cfg.storage_driver,
                    &cfg.registries_conf,
                    &cfg.root,
                    &cfg.insecure_registries,
                ))
            }),
            run: None,
            cfg,
        }
    }

    /// False when no static busybox was found: `cmd` steps then go through
    /// buildah's own output relay, which can lose output on a busy machine.
    pub fn has_direct_output(&self) -> bool {
        self.stdio_helper.is_some()
    }

    /// False when `RUN` instructions of builds go through buildah's chroot
    /// relay, which can lose their output on a busy machine.
    pub fn has_build_runtime(&self) -> bool {
        self.cfg.build_runtime.is_some() || self.cfg.isolation != "chroot"
    }

    /// Removes the stores of runs a dead server left behind
    /// ([`crate::isolation`]): their containers first, then the files.
    pub async fn delete_stale_run_stores(&self) -> std::io::Result<usize> {
        let dir = crate::isolation::runs_dir(&self.cfg.root);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(0);
        };
        for e in entries.flatten() {
            let run = e.file_name().to_string_lossy().into_owned();
            self.scoped(&run).remove_all_containers().await;
        }
        if let Some(shared) = &self.shared {
            shared.prune_at_start();
        }
        crate::isolation::delete_stale_stores(&self.cfg.root)
    }

    /// The engine of one run, on the run's own image store.
    fn scoped(&self, run: &str) -> Buildah {
        let (root, runroot) = crate::isolation::run_store(&self.cfg.root, run);
        Buildah {
            cfg: BuildahConfig {
                root,
                runroot,
                ..self.cfg.clone()
            },
            http: self.http.clone(),
            groups: Arc::new(Mutex::new(HashMap::new())),
            stdio_helper: self.stdio_helper.clone(),
            run_scope: Some(run.to_string()),
            removals: Arc::default(),
            indexes: Arc::default(),
            shared: self.shared.clone(),
            run: Some(Arc::new(RunImages {
                own: Mutex::default(),
                pulled: Mutex::default(),
                _active: self.shared.as_ref().map(|s| s.start_run()),
            })),
        }
    }

    async fn remove_all_containers(&self) {
        // Containers of `RUN`s a cancelled build left running (runc puts
        // them out of reach of the process-group kill).
        if let Some(rt) = &self.cfg.build_runtime {
            crate::runtime::delete_all_leftovers(rt, &self.cfg.runroot).await;
        }
        let mut cmd = self.command();
        cmd.args(["rm", "--all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = tokio::time::timeout(Duration::from_secs(120), cmd.status()).await;
    }

    /// The image a run's `cmd` step starts from, through the shared store
    /// ([`crate::pull_cache`]): `Some(Ok(image ID))`, `Some(Err(why the
    /// pull failed))`, or `None` to start from `image` in the run's own
    /// store (not a run's engine, no shared store, or an image the run
    /// built or pulled into its own store).
    async fn shared_image(
        &self,
        image: &str,
        pull_always: bool,
        log: &dyn LogSink,
    ) -> Result<Option<std::result::Result<String, String>>> {
        let (Some(shared), Some(run)) = (&self.shared, &self.run) else {
            return Ok(None);
        };
        if run.owns(image) || self.in_own_store(image, run).await {
            return Ok(None);
        }
        if !pull_always {
            let known = run.pulled.lock().ok().and_then(|p| p.get(image).cloned());
            if let Some(id) = known {
                return Ok(Some(Ok(id)));
            }
        }
        let pulled = shared.pull(image, log).await?;
        if let (Ok(id), Ok(mut p)) = (&pulled, run.pulled.lock()) {
            p.insert(image.to_string(), id.clone());
        }
        Ok(Some(pulled))
    }

    /// Notes an image the run has in its own store.
    fn note_own(&self, image: &str) {
        if let Some(run) = &self.run {
            run.add_own(image);
        }
    }

    /// True when the run's own store has `image` under another spelling
    /// than the one it was built or pulled with (only asked once the run has
    /// images of its own).
    async fn in_own_store(&self, image: &str, run: &RunImages) -> bool {
        if run.own.lock().map(|o| o.is_empty()).unwrap_or(true) {
            return false;
        }
        let found = self.has_image(image).await;
        if found {
            run.add_own(image);
        }
        found
    }

    pub fn config(&self) -> &BuildahConfig {
        &self.cfg
    }

    /// A buildah command with the global options set. A run's engine also
    /// reads the shared store of pulled `cmd` images ([`crate::pull_cache`]).
    pub fn command(&self) -> Command {
        let mut c = self.own_store_command();
        if let (Some(shared), Some(_)) = (&self.shared, &self.run) {
            c.arg("--storage-opt").arg(shared.storage_opt());
        }
        c
    }

    /// A buildah command that sees only this engine's own store.
    fn own_store_command(&self) -> Command {
        let mut c = Command::new(&self.cfg.binary);
        c.arg("--storage-driver")
            .arg(&self.cfg.storage_driver)
            .arg("--root")
            .arg(&self.cfg.root)
            .arg("--runroot")
            .arg(&self.cfg.runroot)
            .env("CONTAINERS_REGISTRIES_CONF", &self.cfg.registries_conf)
            .env("BUILDAH_ISOLATION", &self.cfg.isolation)
            .stdin(Stdio::null());
        own_group(&mut c);
        c
    }

    pub(crate) fn is_insecure(&self, host: &str) -> bool {
        self.cfg.insecure_registries.iter().any(|h| h == host)
    }

    /// Makes a push of `tag` push the local image index `index`
    /// ([`crate::assemble`]).
    pub(crate) fn register_index(&self, tag: &str, index: &str) {
        if let Ok(mut m) = self.indexes.lock() {
            m.insert(tag.to_string(), index.to_string());
        }
    }

    /// Runs a command, streaming stdout and stderr into `log`.
    async fn stream(&self, mut cmd: Command, log: &dyn LogSink) -> Result<Exit> {
        let (code, _) = run_streaming(&mut cmd, log, false).await?;
        Ok(Exit { code })
    }

    /// Runs a command, streaming stderr into `log` and returning stdout.
    async fn capture(&self, mut cmd: Command, log: &dyn LogSink) -> Result<(i32, String)> {
        run_streaming(&mut cmd, log, true).await
    }

    /// Runs a buildah push (`args`: `push ...` or `manifest push ...`) of
    /// `src` to `image`; the pushed digest, or why the push failed.
    async fn push_digest(
        &self,
        args: &[&str],
        src: &str,
        image: &str,
        log: &dyn LogSink,
    ) -> Result<std::result::Result<String, String>> {
        let dir = tempfile::tempdir()
            .map_err(|e| CoreError::Builder(format!("cannot create a temporary directory: {e}")))?;
        let digest_file = dir.path().join("digest");
        let tee = Tee::new(log);
        let mut cmd = self.command();
        cmd.args(args)
            .arg("--digestfile")
            .arg(&digest_file)
            .arg(src)
            .arg(format!("docker://{image}"));
        let (code, _) = self.capture(cmd, &tee).await?;
        if code != 0 {
            return Ok(Err(format!(
                "cannot push {image}: {}",
                first_error_line(&tee.text())
            )));
        }
        let digest = std::fs::read_to_string(&digest_file)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if !digest.starts_with("sha256:") {
            return Ok(Err(format!(
                "pushed {image} but buildah reported no digest"
            )));
        }
        Ok(Ok(digest))
    }

    /// Pushes the local image index `index` with every image in it to
    /// `image`, then reads the index back for the platforms' digests.
    async fn push_index(&self, index: &str, image: &str, log: &dyn LogSink) -> Result<PushOutcome> {
        let host = image.split('/').next().unwrap_or_default();
        let insecure = self.is_insecure(host);
        // buildah 1.28's `manifest push` ignores registries.conf's
        // `insecure`: say it here.
        let mut args = vec!["manifest", "push", "--all", "--quiet"];
        if insecure {
            args.push("--tls-verify=false");
        }
        let digest = match self.push_digest(&args, index, image, log).await? {
            Ok(d) => d,
            Err(message) => return Ok(PushOutcome::Failed { message }),
        };
        match crate::multiarch::read_index(&self.http, image, &digest, insecure).await {
            Ok(platforms) => Ok(PushOutcome::Pushed { digest, platforms }),
            Err(message) => Ok(PushOutcome::Failed { message }),
        }
    }

    /// Answers whether the registry speaks the distribution API at all.
    pub async fn probe(&self, registry: &str) -> std::result::Result<(), String> {
        probe_distribution(&self.http, registry, self.is_insecure(registry)).await
    }
}

#[async_trait]
impl Engine for Buildah {
    async fn pull(&self, image: &str, log: &dyn LogSink) -> Result<PullOutcome> {
        let tee = Tee::new(log);
        let mut cmd = self.command();
        cmd.args(["pull", "--quiet", "--policy", "always", image]);
        let (code, _id) = self.capture(cmd, &tee).await?;
        if code != 0 {
            return Ok(PullOutcome::Failed {
                message: format!("cannot pull {image}: {}", first_error_line(&tee.text())),
            });
        }
        let mut cmd = self.command();
        cmd.args([
            "inspect",
            "--type",
            "image",
            "--format",
            "{{.FromImageDigest}}",
            image,
        ]);
        let (code, out) = self.capture(cmd, &tee).await?;
        let digest = out.trim().to_string();
        if code != 0 || !digest.starts_with("sha256:") {
            return Ok(PullOutcome::Failed {
                message: format!("cannot read the digest of {image} after pulling it"),
            });
        }
        self.note_own(image);
        Ok(PullOutcome::Pulled { digest })
    }

    async fn pull_platform(
        &self,
        image: &str,
        platform: &str,
        log: &dyn LogSink,
    ) -> Result<PullOutcome> {
        let tee = Tee::new(log);
        let mut cmd = self.command();
        cmd.args([
            "pull",
            "--quiet",
            "--policy",
            "always",
            "--platform",
            platform,
            image,
        ]);
        let (code, _id) = self.capture(cmd, &tee).await?;
        if code != 0 {
            return Ok(PullOutcome::Failed {
                message: crate::multiarch::pull_failure(
                    image,
                    platform,
                    &first_error_line(&tee.text()),
                ),
            });
        }
        // buildah takes a single-platform image whatever its platform
        // (with a warning): check what came.
        let mut cmd = self.command();
        cmd.args([
            "inspect",
            "--type",
            "image",
            "--format",
            "{{.FromImageDigest}}|{{.OCIv1.OS}}|{{.OCIv1.Architecture}}|{{.OCIv1.Variant}}",
            image,
        ]);
        let (_, out) = self.capture(cmd, &tee).await?;
        Ok(
            match crate::multiarch::check_pulled(image, platform, &out) {
                Ok(digest) => {
                    self.note_own(image);
                    PullOutcome::Pulled { digest }
                }
                Err(message) => PullOutcome::Failed { message },
            },
        )
    }

    async fn build(&self, req: &BuildRequest<'_>, log: &dyn LogSink) -> Result<Exit> {
        let mut cmd = self.command();
        cmd.arg("bud")
            .args(crate::runtime::isolation_args(
                &self.cfg.isolation,
                self.cfg.build_runtime.as_deref(),
                &crate::runtime::state_root(&self.cfg.runroot),
            ))
            .arg("-f")
            .arg(req.dockerfile);
        cache_args(&mut cmd, &req.cache);
        match &req.index {
            // Each platform's image goes into the index; the tags name it.
            Some(index) => {
                cmd.arg("--manifest").arg(index);
            }
            None => {
                for t in &req.tags {
                    cmd.arg("-t").arg(t);
                }
            }
        }
        for (k, v) in &req.build_args {
            cmd.arg("--build-arg").arg(format!("{k}={v}"));
        }
        if let Some(t) = &req.target {
            cmd.arg("--target").arg(t);
        }
        if let Some(p) = &req.platform {
            cmd.arg("--platform").arg(p);
        }
        cmd.arg(req.context_dir);
        // Writers of one cache repository take turns (crate::cache_lock).
        let _cache_turn = match (&req.cache.repo, req.cache.write) {
            (Some(repo), true) => Some(
                crate::cache_lock::hold(repo, || {
                    log.line(&format!(
                        "crtask: waiting for another build writing the layer cache {repo}"
                    ))
                })
                .await,
            ),
            _ => None,
        };
        let exit = self.stream(cmd, log).await?;
        // Tags are written as the build goes: count them whatever the end.
        for t in &req.tags {
            self.note_own(t);
        }
        if let Some(index) = &req.index {
            self.note_own(index);
        }
        if let (Some(index), true) = (&req.index, exit.success()) {
            if let Ok(mut m) = self.indexes.lock() {
                for t in &req.tags {
                    m.insert(t.clone(), index.clone());
                }
            }
        }
        Ok(exit)
    }

    async fn push(&self, image: &str, log: &dyn LogSink) -> Result<PushOutcome> {
        let index = self.indexes.lock().ok().and_then(|m| m.get(image).cloned());
        if let Some(index) = index {
            return self.push_index(&index, image, log).await;
        }
        let args = ["push", "--retry", "2", "--retry-delay", "1s"];
        Ok(match self.push_digest(&args, image, image, log).await? {
            Ok(digest) => PushOutcome::Pushed {
                digest,
                platforms: Vec::new(),
            },
            Err(message) => PushOutcome::Failed { message },
        })
    }

    async fn probe_registry(&self, registry: &str) -> std::result::Result<(), String> {
        self.probe(registry).await
    }

    async fn run_container(&self, req: &ContainerRequest<'_>, log: &dyn LogSink) -> Result<Exit> {
        let ctr = format!(
            "crtask-{}-{}-{}",
            req.group,
            req.name,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let tee = Tee::new(log);
        let (reference, pull) = match self.shared_image(req.image, req.pull_always, log).await? {
            Some(Ok(id)) => (id, "never"),
            Some(Err(why)) => {
                log.line(&format!("crtask: cannot start {}: {why}", req.image));
                return Ok(Exit { code: 125 });
            }
            None => (
                req.image.to_string(),
                if req.pull_always { "always" } else { "missing" },
            ),
        };
        let mut cmd = self.command();
        cmd.arg("from")
            .arg("--quiet")
            .arg(format!("--pull={pull}"))
            .arg("--name")
            .arg(&ctr)
            .arg(&reference);
        let (mut code, _) = self.capture(cmd, &tee).await?;
        if code != 0 && pull == "never" {
            // The shared copy is gone (its store cleared by hand): pull again.
            if let Some(shared) = &self.shared {
                shared.forget(req.image);
                if let Some(Ok(id)) = self.shared_image(req.image, true, log).await? {
                    let mut cmd = self.command();
                    cmd.args(["from", "--quiet", "--pull=never", "--name", &ctr, &id]);
                    code = self.capture(cmd, &tee).await?.0;
                }
            }
        }
        if code != 0 {
            log.line(&format!(
                "crtask: cannot start {}: {}",
                req.image,
                first_error_line(&tee.text())
            ));
            return Ok(Exit { code: 125 });
        }
        // Under an OCI runtime the step's container keeps its state apart,
        // so that it can be killed alone (a timeout, a cancel).
        let runc = self.cfg.build_runtime.as_ref().map(|rt| {
            (
                rt.clone(),
                crate::runtime::step_state(&self.cfg.runroot, &ctr),
            )
        });
        // From here on the container exists: remove it whatever happens.
        let cleanup = ContainerCleanup {
            engine: self.clone(),
            name: Some(ctr.clone()),
            keep: req.keep,
            runc: runc.clone(),
        };
        // A container's config is its image's: a shared image's is read once.
        let known = match (&self.shared, pull) {
            (Some(shared), "never") => shared.config_of(&reference),
            _ => None,
        };
        let config = match known {
            Some(c) => c,
            None => {
                let mut cmd = self.command();
                cmd.args(["inspect", &ctr]);
                let (_, out) = self.capture(cmd, &tee).await?;
                let inspected: serde_json::Value =
                    serde_json::from_str(out.trim()).unwrap_or_default();
                let config = inspected["OCIv1"]["config"].clone();
                if let (Some(shared), "never") = (&self.shared, pull) {
                    shared.remember_config(&reference, &config);
                }
                config
            }
        };
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut argv = match &req.entrypoint {
            Some(ep) => ep.clone(),
            None => strings(&config["Entrypoint"]),
        };
        if !req.args.is_empty() {
            argv.extend(req.args.iter().cloned());
        } else if req.entrypoint.is_none() {
            argv.extend(strings(&config["Cmd"]));
        }
        if argv.is_empty() {
            log.line(&format!(
                "crtask: {} has no command to run; give one after the image",
                req.image
            ));
            return Ok(Exit { code: 125 });
        }
        // The container's own output FIFOs (see `crate::stdio`): not for
        // detached containers, whose output is not kept.
        let direct = match (&self.stdio_helper, req.detach) {
            (Some(helper), false) => match crate::stdio::DirectOutput::new() {
                Ok(d) => Some((d, helper.clone())),
                Err(e) => {
                    log.line(&format!("crtask: cannot create the output FIFOs: {e}"));
                    return Ok(Exit { code: 125 });
                }
            },
            _ => None,
        };
        if direct.is_some() {
            let set = |name: &str| {
                req.env.iter().any(|(k, _)| k == name)
                    || strings(&config["Env"])
                        .iter()
                        .any(|e| e.split_once('=').is_some_and(|(k, _)| k == name))
            };
            let drop: Vec<&str> = ["SHLVL", "PWD"].into_iter().filter(|v| !set(v)).collect();
            argv = crate::stdio::DirectOutput::wrap(&argv, &drop);
        }
        let mut cmd = self.command();
        cmd.arg("run");
        match &runc {
            Some((rt, state)) => {
                cmd.args(crate::runtime::isolation_args(
                    &self.cfg.isolation,
                    Some(rt),
                    state,
                ));
                for cap in crate::runtime::STEP_CAPS {
                    cmd.arg("--cap-add").arg(cap);
                }
                &mut cmd
            }
            None => cmd.arg("--isolation").arg(&self.cfg.isolation),
        };
        if let Some(w) = req.workdir {
            cmd.arg("--workingdir").arg(w);
        }
        if let Some(u) = req.user {
            cmd.arg("--user").arg(u);
        }
        for (k, v) in req.env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        for (host, inside) in &req.mounts {
            cmd.arg("--volume")
                .arg(format!("{}:{inside}", host.display()));
        }
        if let Some((d, helper)) = &direct {
            for v in d.volumes(helper) {
                cmd.arg("--volume").arg(v);
            }
        }
        cmd.arg(&ctr).arg("--").args(&argv);
        if req.detach {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let child = cmd
                .spawn()
                .map_err(|e| CoreError::Builder(format!("cannot start buildah: {e}")))?;
            let guard = GroupGuard::new(&child);
            let waiter = tokio::spawn(async move {
                let mut child = child;
                let _ = child.wait().await;
            });
            let mut cleanup = cleanup;
            let name = cleanup.name.take();
            if let Ok(mut g) = self.groups.lock() {
                let group = g.entry(req.group.to_string()).or_default();
                if let Some(n) = name {
                    group.detached.push((n.clone(), guard, waiter));
                    group.runc.extend(cleanup.runc.take());
                    if !req.keep {
                        group.remove.push(n);
                    }
                }
            }
            log.line(&format!("crtask: started {} detached", req.image));
            return Ok(Exit { code: 0 });
        }
        let exit = match &direct {
            Some((d, _)) => {
                let readers = d.readers().map_err(|e| {
                    CoreError::Builder(format!("cannot open the output FIFOs: {e}"))
                })?;
                let own = crate::stdio::WithoutExitReports(log);
                readers.pump_until(log, self.stream(cmd, &own)).await?
            }
            None => self.stream(cmd, log).await?,
        };
        drop(cleanup);
        Ok(exit)
    }

    async fn has_image(&self, image: &str) -> bool {
        // Only the run's own store: the shared one holds other runs' pulls.
        let mut cmd = self.own_store_command();
        cmd.args([
            "inspect",
            "--type",
            "image",
            "--format",
            "{{.FromImageID}}",
            image,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        matches!(cmd.status().await, Ok(s) if s.success())
    }

    async fn checkout(
        &self,
        url: &str,
        reference: Option<&str>,
        dest: &Path,
        log: &dyn LogSink,
    ) -> Result<String> {
        crate::gitctx::clone(url, reference, dest, log, &self.cfg.git_auth).await
    }

    async fn checkout_with_token(
        &self,
        url: &str,
        reference: Option<&str>,
        dest: &Path,
        log: &dyn LogSink,
        token: &str,
    ) -> Result<String> {
        let auth = self.cfg.git_auth.with_task_token(url, token);
        crate::gitctx::clone(url, reference, dest, log, &auth).await
    }

    fn for_run(&self, run: &str) -> Option<Arc<dyn Engine>> {
        Some(Arc::new(self.scoped(run)))
    }

    fn patcher(&self) -> Option<Arc<dyn crtask_core::patch::execute::PatchEngine>> {
        Some(Arc::new(crate::patch::BuildahPatcher::new(self.clone())))
    }

    async fn end_group(&self, group: &str) {
        let taken = self.groups.lock().ok().and_then(|mut g| g.remove(group));
        if let Some(g) = taken {
            for (_, guard, waiter) in g.detached {
                drop(guard);
                let _ = tokio::time::timeout(Duration::from_secs(5), waiter).await;
            }
            // The process-group kill does not reach a runtime's container.
            for (rt, state) in g.runc {
                crate::runtime::delete_leftovers(&rt, &state).await;
            }
            if self.run_scope.is_none() {
                for name in g.remove {
                    let mut cmd = self.command();
                    cmd.args(["rm", &name])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    let _ = cmd.status().await;
                }
            }
        }
        // A run's own store goes with the run, kept containers included,
        // once no removal can write into it any more.
        if self.run_scope.as_deref() == Some(group) {
            let pending = self
                .removals
                .lock()
                .map(|mut r| std::mem::take(&mut *r))
                .unwrap_or_default();
            for h in pending {
                let _ = tokio::time::timeout(Duration::from_secs(60), h).await;
            }
            // Containers are plain directories of the store unless mounted
            // (`buildah run` mounts in its own namespace): deleting the store
            // removes them, without one more buildah process per run.
            let store = self.cfg.root.parent().map(Path::to_path_buf);
            if store.is_none_or(|d| crate::isolation::has_mounts_below(&d)) {
                self.remove_all_containers().await;
            } else if let Some(rt) = &self.cfg.build_runtime {
                crate::runtime::delete_all_leftovers(rt, &self.cfg.runroot).await;
            }
            crate::isolation::delete_store(&self.cfg.root).await;
        }
    }
}

/// Removes a container when dropped (unless kept), in the background.
struct ContainerCleanup {
    engine: Buildah,
    name: Option<String>,
    keep: bool,
    /// The runtime and state of the container's process (see
    /// [`crate::runtime`]): killed first if it is still there (a step that
    /// timed out or was cancelled), kept containers' included.
    runc: Option<(PathBuf, PathBuf)>,
}

impl Drop for ContainerCleanup {
    fn drop(&mut self) {
        let runc = self.runc.take();
        let name = self.name.take().filter(|_| !self.keep);
        if runc.is_none() && name.is_none() {
            return;
        }
        let rm = name.map(|name| {
            let mut cmd = self.engine.command();
            cmd.args(["rm", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cmd
        });
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let h = handle.spawn(async move {
                if let Some((rt, state)) = runc {
                    crate::runtime::delete_leftovers(&rt, &state).await;
                }
                if let Some(mut cmd) = rm {
                    let _ = cmd.status().await;
                }
            });
            if let Ok(mut r) = self.engine.removals.lock() {
                r.retain(|h| !h.is_finished());
                r.push(h);
            }
        }
    }
}
