//! Images that `cmd` steps run, pulled once into a store shared by runs.
//!
//! Every run has its own image store ([`crate::isolation`]); pulling each
//! `cmd` image into it again cost every run a full download and unpack
//! (with `vfs`, a copy of every layer), about 0.5 s per image per run on a
//! quiet machine, the largest part of a short step. Instead, the images of
//! `cmd` steps are pulled into one store beside the run stores
//! (`<storage>/pulls`), which every run store reads as an additional,
//! read-only image store (`--storage-opt vfs.imagestore=...`).
//!
//! What a run sees does not change:
//! - the shared store holds only what was pulled from a registry, never an
//!   image a run built or tagged, so no run can use another run's build;
//! - a run still asks the registry when its first step needs an image: one
//!   manifest `HEAD`; when the digest is the one the shared copy was pulled
//!   at, that copy is used, otherwise (or when the `HEAD` cannot be answered)
//!   buildah pulls (`--policy always`) and an image that moved is fetched,
//!   without downloading unchanged layers again. Steps that
//!   start together share one pull, and later steps of the same run use the
//!   image that run pulled (its image ID), as later `docker run`s on one ACR
//!   agent do;
//! - a pull that fails fails the step with the registry's reason, exactly as
//!   a pull into the run's own store did.
//!
//! Images that moved leave their old copies untagged; they are deleted
//! (`buildah rmi --prune`) when no run is in progress, since a run may still
//! start containers from the copy it pulled.
//!
//! Build steps keep pulling their base images into the run's own store:
//! the digest they record must be the one the build used, and a tag moved in
//! the shared store by a concurrent run would break that.

use crate::process::{first_error_line, own_group, run_streaming, Tee};
use crtask_core::ports::LogSink;
use crtask_registry::client::{Probe, RegistryClient};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// The storage drivers whose stores can be read as additional image stores
/// by the run stores (checked with buildah 1.28 for `vfs`).
pub fn supported(driver: &str) -> bool {
    driver == "vfs"
}

/// `(root, runroot)` of the shared store, a sibling of the runs directory.
pub fn store_paths(root: &Path) -> (PathBuf, PathBuf) {
    let dir = root.with_file_name("pulls");
    (dir.join("root"), dir.join("runroot"))
}

/// The last pull of one image: when it finished and what it gave.
#[derive(Clone)]
struct Pulled {
    finished: Instant,
    /// The image ID in the shared store, or why the pull failed.
    result: Result<String, String>,
    /// The manifest digest the registry gave for the reference just before
    /// that pull (`None` when it could not be asked): while the registry
    /// still answers with it, the image ID stands without a pull.
    digest: Option<String>,
}

/// The shared store and the pulls into it.
pub struct SharedPulls {
    /// The buildah binary, driver and registries configuration of the
    /// engine; `root`/`runroot` are the shared store's.
    binary: PathBuf,
    driver: String,
    registries_conf: PathBuf,
    pub root: PathBuf,
    pub runroot: PathBuf,
    /// One lock per image reference: concurrent pulls of one image wait for
    /// each other and reuse a pull that overlapped their request.
    pulls: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Pulled>>>>>,
    /// Runs in progress ([`ActiveRun`]).
    active: AtomicUsize,
    /// Image ID -> its OCI config (`Entrypoint`, `Cmd`, `Env`): an image ID
    /// names its content, so one `buildah inspect` per image serves every
    /// step started from it.
    configs: Mutex<HashMap<String, serde_json::Value>>,
    /// Asks registries for a reference's current digest (one `HEAD`, with
    /// the credentials of buildah's login files).
    registry: RegistryClient,
}

impl SharedPulls {
    pub fn new(
        binary: &Path,
        driver: &str,
        registries_conf: &Path,
        root: &Path,
        insecure: &[String],
    ) -> Self {
        let (root, runroot) = store_paths(root);
        SharedPulls {
            registry: RegistryClient::new(insecure.to_vec())
                .with_credentials(Arc::new(crate::registry_auth::LoginFiles)),
            binary: binary.to_path_buf(),
            driver: driver.to_string(),
            registries_conf: registries_conf.to_path_buf(),
            root,
            runroot,
            pulls: Mutex::default(),
            active: AtomicUsize::new(0),
            configs: Mutex::default(),
        }
    }

    /// The `--storage-opt` that makes a run store read this one.
    pub fn storage_opt(&self) -> String {
        format!("{}.imagestore={}", self.driver, self.root.display())
    }

    /// A buildah command on the shared store.
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--storage-driver")
            .arg(&self.driver)
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf)
            .stdin(Stdio::null());
        own_group(&mut c);
        c
    }

    /// Pulls `image` into the shared store (`--policy always`) and returns
    /// its image ID, or the reason it could not be pulled. A pull of the
    /// same reference that finished after this call was made is reused: it
    /// was in progress when this one was asked for.
    pub async fn pull(
        &self,
        image: &str,
        log: &dyn LogSink,
    ) -> crtask_core::Result<Result<String, String>> {
        let asked = Instant::now();
        let slot = self
            .pulls
            .lock()
            .map(|mut m| m.entry(image.to_string()).or_default().clone())
            .unwrap_or_default();
        let mut last = slot.lock().await;
        if let Some(p) = last.as_ref().filter(|p| p.finished >= asked) {
            return Ok(p.result.clone());
        }
        // The registry decides: one `HEAD` says whether the copy here is
        // still what the reference names (a buildah process per check would
        // cost more than the step it serves).
        let digest = match self
            .registry
            .head_manifest(image, chrono::Utc::now())
            .await
            .probe
        {
            Probe::Digest { digest, .. } => Some(digest),
            _ => None,
        };
        if let Some(p) = last.as_mut() {
            if p.result.is_ok() && digest.is_some() && p.digest == digest {
                p.finished = Instant::now();
                return Ok(p.result.clone());
            }
        }
        let tee = Tee::new(log);
        let mut cmd = self.command();
        cmd.args(["pull", "--quiet", "--policy", "always", image]);
        let (code, out) = run_streaming(&mut cmd, &tee, true).await?;
        let id = out.trim().lines().last().unwrap_or_default().to_string();
        let result = if code == 0 && !id.is_empty() {
            Ok(id)
        } else {
            Err(first_error_line(&tee.text()))
        };
        *last = Some(Pulled {
            finished: Instant::now(),
            result: result.clone(),
            digest,
        });
        Ok(result)
    }

    /// The OCI config of the shared image `id`, if already read.
    pub fn config_of(&self, id: &str) -> Option<serde_json::Value> {
        self.configs.lock().ok().and_then(|c| c.get(id).cloned())
    }

    /// Remembers the OCI config of the shared image `id` (read from a
    /// container started from it).
    pub fn remember_config(&self, id: &str, config: &serde_json::Value) {
        if config.is_object() {
            if let Ok(mut c) = self.configs.lock() {
                c.insert(id.to_string(), config.clone());
            }
        }
    }

    /// Forgets what is known of `image` (its copy was not found where the
    /// last pull left it): the next request pulls.
    pub fn forget(&self, image: &str) {
        if let Ok(mut m) = self.pulls.lock() {
            m.remove(image);
        }
    }

    /// Deletes the untagged copies left by images that moved, in the
    /// background: only while no run is in progress.
    fn prune(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.clone();
        handle.spawn(async move {
            if me.active.load(Ordering::SeqCst) != 0 || !me.root.exists() {
                return;
            }
            let mut cmd = me.command();
            cmd.args(["rmi", "--prune"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = tokio::time::timeout(Duration::from_secs(300), cmd.status()).await;
        });
    }

    /// Marks a run in progress until the returned value is dropped.
    pub fn start_run(self: &Arc<Self>) -> ActiveRun {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActiveRun(self.clone())
    }

    /// At server start (no run in progress): drop what moved since.
    pub fn prune_at_start(self: &Arc<Self>) {
        self.prune();
    }
}

/// A run in progress (held by the run's engine and its clones): while one
/// exists, untagged images of the shared store stay, since the run may
/// start a container from the copy it pulled.
pub struct ActiveRun(Arc<SharedPulls>);

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.prune();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_store_sits_beside_the_runs() {
        let (root, runroot) = store_paths(Path::new("/data/storage/root"));
        assert_eq!(root, Path::new("/data/storage/pulls/root"));
        assert_eq!(runroot, Path::new("/data/storage/pulls/runroot"));
        assert_ne!(
            root.parent(),
            crate::isolation::runs_dir(Path::new("/data/storage/root"))
                .join("x")
                .parent()
        );
    }

    #[test]
    fn only_vfs_reads_it() {
        assert!(supported("vfs"));
        assert!(!supported("overlay"));
        let s = SharedPulls::new(
            Path::new("buildah"),
            "vfs",
            Path::new("r.conf"),
            Path::new("/d/root"),
            &[],
        );
        assert_eq!(s.storage_opt(), "vfs.imagestore=/d/pulls/root");
    }
}
