//! The mechanics of OS patching on buildah ([`PatchEngine`]): `buildah
//! from` a working container, read its files through `buildah mount`, run
//! the package manager with `buildah run`, and `buildah commit` its changes
//! as one layer over the image's own. The decisions (what to run, what
//! changed, which tag) are core's ([`crtask_core::patch`]).

use crate::buildah::Buildah;
use crate::process::{first_error_line, run_streaming, Tee};
use async_trait::async_trait;
use crtask_core::domain::imageref::ImageRef;
use crtask_core::domain::model::RunStatus;
use crtask_core::patch::commands::Command;
use crtask_core::patch::execute::{execute_patch, Opened, PatchEngine, PatchResult, TagLister};
use crtask_core::patch::PatchRun;
use crtask_core::ports::{Clock, Engine, Exit, LogSink};
use crtask_core::{Error as CoreError, Result};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs a patch run on `engine` (the run's own engine), stopping when
/// `cancel` fires.
pub async fn execute(
    engine: Arc<dyn Engine>,
    clock: &dyn Clock,
    patch: PatchRun,
    log: &dyn LogSink,
    cancel: CancellationToken,
) -> PatchResult {
    let ended = |status: RunStatus, msg: &str, patch: PatchRun| PatchResult {
        status,
        error: Some(msg.to_string()),
        output_images: Vec::new(),
        steps: Vec::new(),
        patch,
    };
    let Some(patcher) = engine.patcher() else {
        let msg = "this engine cannot patch images: run crtask with the buildah engine";
        log.line(&format!("crtask: {msg}"));
        return ended(RunStatus::Failed, msg, patch);
    };
    let kept = patch.clone();
    tokio::select! {
        r = execute_patch(engine.as_ref(), patcher.as_ref(), patch, log, clock) => r,
        _ = cancel.cancelled() => ended(RunStatus::Canceled, "stopped", kept),
    }
}

/// [`PatchEngine`] on a buildah image store.
pub struct BuildahPatcher {
    buildah: Buildah,
    http: reqwest::Client,
    /// Working container -> where `buildah mount` put its root.
    mounts: Mutex<HashMap<String, PathBuf>>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl BuildahPatcher {
    pub fn new(buildah: Buildah) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        BuildahPatcher {
            buildah,
            http,
            mounts: Mutex::new(HashMap::new()),
        }
    }

    async fn root(&self, container: &str) -> Result<PathBuf> {
        if let Some(p) = self
            .mounts
            .lock()
            .ok()
            .and_then(|m| m.get(container).cloned())
        {
            return Ok(p);
        }
        let mut cmd = self.buildah.command();
        cmd.args(["mount", container]);
        let quiet = Tee::new(&NoLog);
        let (code, out) = run_streaming(&mut cmd, &quiet, true).await?;
        let path = PathBuf::from(out.trim());
        if code != 0 || !path.is_dir() {
            return Err(CoreError::Builder(format!(
                "cannot mount the working container: {}",
                first_error_line(&quiet.text())
            )));
        }
        if let Ok(mut m) = self.mounts.lock() {
            m.insert(container.to_string(), path.clone());
        }
        Ok(path)
    }
}

/// A sink for buildah's chatter that is not worth a run log line.
struct NoLog;
impl LogSink for NoLog {
    fn write(&self, _: &[u8]) {}
}

/// Resolves `path` inside `root` as the container would see it: symlinks
/// (absolute ones too) are followed within `root`, `..` never leaves it.
/// `None` when a component is missing or there are too many links.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let split = |p: &str| -> VecDeque<String> {
        p.split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(String::from)
            .collect()
    };
    let mut todo = split(path);
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&done);
        here.push(&c);
        let meta = std::fs::symlink_metadata(&here).ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return None;
            }
            let target = std::fs::read_link(&here).ok()?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                done.clear();
            }
            let mut next = split(&target);
            next.extend(todo.drain(..));
            todo = next;
        } else {
            done.push(c);
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Some(out)
}

#[async_trait]
impl PatchEngine for BuildahPatcher {
    async fn open(
        &self,
        image: &str,
        log: &dyn LogSink,
    ) -> Result<std::result::Result<Opened, String>> {
        let name = format!(
            "crtask-patch-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tee = Tee::new(log);
        let mut cmd = self.buildah.command();
        cmd.args(["from", "--quiet", "--pull=always", "--name", &name, image]);
        let (code, _) = run_streaming(&mut cmd, &tee, true).await?;
        if code != 0 {
            return Ok(Err(format!(
                "cannot pull {image}: {}",
                first_error_line(&tee.text())
            )));
        }
        let mut cmd = self.buildah.command();
        cmd.args([
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.FromImageDigest}}",
            &name,
        ]);
        let (code, out) = run_streaming(&mut cmd, &tee, true).await?;
        let digest = out.trim().to_string();
        if code != 0 || !digest.starts_with("sha256:") {
            self.close(&name).await;
            return Ok(Err(format!("cannot read the digest of {image}")));
        }
        Ok(Ok(Opened {
            container: name,
            digest,
        }))
    }

    async fn read_file(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let root = self.root(container).await?;
        let Some(p) = resolve_in_root(&root, path) else {
            return Ok(None);
        };
        if !p.is_file() {
            return Ok(None);
        }
        tokio::fs::read(&p)
            .await
            .map(Some)
            .map_err(|e| CoreError::Builder(format!("cannot read {path} in the image: {e}")))
    }

    async fn exists(&self, container: &str, path: &str) -> Result<bool> {
        let root = self.root(container).await?;
        Ok(resolve_in_root(&root, path).is_some())
    }

    async fn exec(
        &self,
        container: &str,
        cmd: &Command,
        capture: bool,
        log: &dyn LogSink,
    ) -> Result<(Exit, String)> {
        let cfg = self.buildah.config();
        let mut c = self.buildah.command();
        // The package manager's output is parsed (installed versions): it
        // runs under the build runtime, like a build's RUN, whose relay
        // cannot lose the end of it (crate::runtime).
        c.arg("run")
            .args(crate::runtime::isolation_args(
                &cfg.isolation,
                cfg.build_runtime.as_deref(),
                &crate::runtime::state_root(&cfg.runroot),
            ))
            // Package managers need root, whatever user the image runs as
            // (its config keeps that user).
            .arg("--user")
            .arg("0:0");
        for (k, v) in &cmd.env {
            c.arg("--env").arg(format!("{k}={v}"));
        }
        c.arg(container).arg("--").args(&cmd.argv);
        let (code, out) = run_streaming(&mut c, log, capture).await?;
        Ok((Exit { code }, out))
    }

    async fn commit(
        &self,
        container: &str,
        image: &str,
        created_by: &str,
        log: &dyn LogSink,
    ) -> Result<Exit> {
        let mut cmd = self.buildah.command();
        cmd.args(["config", "--created-by", created_by, container]);
        let (code, _) = run_streaming(&mut cmd, log, false).await?;
        if code != 0 {
            return Ok(Exit { code });
        }
        let mut cmd = self.buildah.command();
        // No builder label: the image's labels stay exactly its own.
        cmd.args([
            "commit",
            "--quiet",
            "--identity-label=false",
            container,
            image,
        ]);
        let (code, _) = run_streaming(&mut cmd, log, true).await?;
        Ok(Exit { code })
    }

    async fn close(&self, container: &str) {
        if let Ok(mut m) = self.mounts.lock() {
            m.remove(container);
        }
        let mut cmd = self.buildah.command();
        cmd.args(["rm", container])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = tokio::time::timeout(Duration::from_secs(60), cmd.status()).await;
    }
}

#[async_trait]
impl TagLister for BuildahPatcher {
    async fn list_tags(
        &self,
        image: &ImageRef,
    ) -> Result<std::result::Result<Vec<String>, String>> {
        let insecure = self
            .buildah
            .config()
            .insecure_registries
            .contains(&image.registry);
        let scheme = if insecure { "http" } else { "https" };
        let base = format!("{scheme}://{}", image.registry);
        let mut url = format!("{base}/v2/{}/tags/list?n=1000", image.repository);
        let mut tags = Vec::new();
        // Asked anonymously first; a 401 is asked again with the login
        // buildah pushes with (crate::registry_auth), if there is one.
        let mut basic: Option<String> = None;
        // A registry pages long lists with `Link: <...>; rel="next"`.
        for _ in 0..100 {
            let mut req = self.http.get(&url);
            if let Some(b) = &basic {
                req = req.header("Authorization", format!("Basic {b}"));
            }
            let resp = match req.send().await {
                Ok(r) if r.status().as_u16() == 401 && basic.is_none() => {
                    match crate::registry_auth::basic_for(&image.registry) {
                        Some(b) => {
                            basic = Some(b);
                            continue;
                        }
                        None => {
                            return Ok(Err(format!(
                                "cannot list the tags of {}: the registry wants credentials and no login for {} was found (buildah login / docker login)",
                                image.repository, image.registry
                            )))
                        }
                    }
                }
                Ok(r) => r,
                Err(e) => {
                    return Ok(Err(format!(
                        "cannot list the tags of {}: {e}",
                        image.repository
                    )))
                }
            };
            match resp.status().as_u16() {
                404 => return Ok(Ok(tags)),
                200 => {}
                s => {
                    return Ok(Err(format!(
                        "cannot list the tags of {}: the registry answered {s}",
                        image.repository
                    )))
                }
            }
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| {
                    l.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                });
            let body: serde_json::Value = match resp.json().await {
                Ok(b) => b,
                Err(e) => {
                    return Ok(Err(format!(
                        "the registry's tag list of {} is not JSON: {e}",
                        image.repository
                    )))
                }
            };
            tags.extend(
                body["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string)),
            );
            match next {
                Some(n) if n.starts_with('/') => url = format!("{base}{n}"),
                _ => return Ok(Ok(tags)),
            }
        }
        Ok(Ok(tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "ID=debian\n").unwrap();
        symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        symlink("/usr/lib/os-release", root.join("etc/abs")).unwrap();
        symlink("/../../../../etc/passwd", root.join("etc/escape")).unwrap();
        symlink("loop", root.join("etc/loop")).unwrap();
        let want = root.join("usr/lib/os-release");
        assert_eq!(resolve_in_root(root, "/etc/os-release"), Some(want.clone()));
        assert_eq!(resolve_in_root(root, "/etc/abs"), Some(want.clone()));
        assert_eq!(resolve_in_root(root, "/../../etc/os-release"), Some(want));
        // An absolute link to the host's files stays in the root (and is missing there).
        assert_eq!(resolve_in_root(root, "/etc/escape"), None);
        assert_eq!(resolve_in_root(root, "/etc/loop"), None);
        assert_eq!(resolve_in_root(root, "/etc/missing"), None);
    }
}
