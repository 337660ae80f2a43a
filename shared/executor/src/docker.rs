//! The docker CLI engine: what `crtask exec` uses inside CodeBuild, where a
//! privileged Docker daemon is available and `docker login` has been done.
//!
//! `docker pull` + `docker image inspect` for base digests, `docker build`,
//! `docker push` (digest from its output), `docker run` for `cmd` steps.
//! The argument vectors are built by pure functions ([`pull_argv`],
//! [`build_argv`], ...) so they can be checked without a daemon. Every
//! value travels as one argv element, never through a shell.

use crate::gitctx::GitAuth;
use crate::probe::probe_distribution;
use crate::process::{first_error_line, own_group, run_streaming, Tee};
use async_trait::async_trait;
use crtask_core::ports::{
    BuildRequest, ContainerRequest, Engine, Exit, LogSink, PullOutcome, PushOutcome,
};
use crtask_core::Result;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;

/// How to invoke docker.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The docker CLI [default: `docker`].
    pub binary: PathBuf,
    /// Registries reached over plain HTTP (only [`Engine::probe_registry`]
    /// uses this; the daemon has its own `insecure-registries`).
    pub insecure_registries: Vec<String>,
    /// Tokens for private git repositories.
    pub git_auth: GitAuth,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            binary: PathBuf::from("docker"),
            insecure_registries: Vec::new(),
            git_auth: GitAuth::default(),
        }
    }
}

/// Containers a run started, to clean up when it ends: (name, keep). A
/// foreground container normally removes itself (`--rm`), but not when the
/// run is cancelled: killing the docker CLI leaves it running in the daemon.
#[derive(Default)]
struct Group {
    containers: Vec<(String, bool)>,
}

/// The docker CLI engine.
#[derive(Clone)]
pub struct Docker {
    cfg: DockerConfig,
    http: reqwest::Client,
    groups: Arc<Mutex<HashMap<String, Group>>>,
}

/// `docker pull IMAGE` (always asks the registry).
pub fn pull_argv(image: &str) -> Vec<OsString> {
    vec!["pull".into(), image.into()]
}

/// `docker image inspect` printing the image's repo digests as JSON.
pub fn inspect_digests_argv(image: &str) -> Vec<OsString> {
    vec![
        "image".into(),
        "inspect".into(),
        "--format".into(),
        "{{json .RepoDigests}}".into(),
        image.into(),
    ]
}

/// `docker build` for a [`BuildRequest`].
pub fn build_argv(req: &BuildRequest<'_>) -> Vec<OsString> {
    // Base images were pulled (and their digests recorded) just before,
    // unless the build asks for `--pull`. The registry layer cache is
    // buildah's (`--cache-from/--cache-to` need buildx with docker); here
    // the daemon's own layer cache serves, and `--no-cache` bypasses it.
    let mut a: Vec<OsString> = vec![
        "build".into(),
        if req.cache.pull {
            "--pull=true"
        } else {
            "--pull=false"
        }
        .into(),
    ];
    if req.cache.no_cache {
        a.push("--no-cache".into());
    }
    a.push("-f".into());
    a.push(req.dockerfile.into());
    for t in &req.tags {
        a.push("-t".into());
        a.push(t.into());
    }
    for (k, v) in &req.build_args {
        a.push("--build-arg".into());
        a.push(format!("{k}={v}").into());
    }
    if let Some(t) = &req.target {
        a.push("--target".into());
        a.push(t.into());
    }
    if let Some(p) = &req.platform {
        a.push("--platform".into());
        a.push(p.into());
    }
    a.push(req.context_dir.into());
    a
}

/// `docker push IMAGE`.
pub fn push_argv(image: &str) -> Vec<OsString> {
    vec!["push".into(), image.into()]
}

/// A valid docker container name for a step of a run.
pub fn container_name(group: &str, name: &str, nonce: u32) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("crtask-{}-{}-{nonce}", clean(group), clean(name))
}

/// `docker run` for a `cmd` step, named `ctr`. The container is removed when
/// it ends (`--rm`) unless it is kept or detached ([`Engine::end_group`]
/// removes detached ones).
pub fn run_argv(req: &ContainerRequest<'_>, ctr: &str) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["run".into(), "--name".into(), ctr.into()];
    if req.detach {
        a.push("--detach".into());
    } else if !req.keep {
        a.push("--rm".into());
    }
    a.push(
        if req.pull_always {
            "--pull=always"
        } else {
            "--pull=missing"
        }
        .into(),
    );
    // `--entrypoint` takes one word; the rest of an entrypoint goes before
    // the arguments. Setting it also clears the image's CMD, as the port asks.
    let mut tail: Vec<OsString> = Vec::new();
    if let Some(ep) = &req.entrypoint {
        let mut words = ep.iter();
        a.push("--entrypoint".into());
        a.push(words.next().map(String::as_str).unwrap_or("").into());
        tail.extend(words.map(OsString::from));
    }
    if let Some(w) = req.workdir {
        a.push("--workdir".into());
        a.push(w.into());
    }
    if let Some(u) = req.user {
        a.push("--user".into());
        a.push(u.into());
    }
    for (k, v) in req.env {
        a.push("--env".into());
        a.push(format!("{k}={v}").into());
    }
    for (host, inside) in &req.mounts {
        let mut m = OsString::from("type=bind,source=");
        m.push(host);
        m.push(",target=");
        m.push(inside);
        a.push("--mount".into());
        a.push(m);
    }
    a.push(req.image.into());
    a.extend(tail);
    a.extend(req.args.iter().map(OsString::from));
    a
}

/// The digest `docker push` reports (`<tag>: digest: sha256:<hex> size: <n>`).
pub fn parse_push_digest(output: &str) -> Option<String> {
    output.lines().rev().find_map(|l| {
        let rest = &l[l.find("digest: ")? + "digest: ".len()..];
        let d = rest.split_whitespace().next()?;
        valid_digest(d).then(|| d.to_string())
    })
}

/// The manifest digest of `image` among the repo digests `docker image
/// inspect` printed (`["repo@sha256:..."]`): the one of the image's own
/// repository, else the first; a reference by digest is its own answer.
pub fn parse_repo_digest(image: &str, inspect_json: &str) -> Option<String> {
    if let Some((_, d)) = image.split_once('@') {
        return valid_digest(d).then(|| d.to_string());
    }
    let list: Vec<String> = serde_json::from_str(inspect_json.trim()).ok()?;
    let repo = strip_tag(image);
    let digest_of = |entry: &String| -> Option<(String, String)> {
        let (name, d) = entry.split_once('@')?;
        valid_digest(d).then(|| (name.to_string(), d.to_string()))
    };
    let all: Vec<(String, String)> = list.iter().filter_map(digest_of).collect();
    let same_repo = |name: &str| {
        name == repo
            || format!("docker.io/{name}") == repo
            || format!("docker.io/library/{name}") == repo
            || format!("library/{name}") == repo
    };
    all.iter()
        .find(|(name, _)| same_repo(name))
        .or_else(|| all.first())
        .map(|(_, d)| d.clone())
}

/// `host/repo:tag` -> `host/repo` (a `:port` in the host stays).
fn strip_tag(image: &str) -> &str {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => &image[..last_slash + i],
        None => image,
    }
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Docker {
    pub fn new(cfg: DockerConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Docker {
            cfg,
            http,
            groups: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A docker command with `argv`, in its own process group.
    fn command(&self, argv: Vec<OsString>) -> Command {
        let mut c = Command::new(&self.cfg.binary);
        c.args(argv).stdin(Stdio::null());
        own_group(&mut c);
        c
    }

    async fn quiet(&self, argv: Vec<OsString>) -> bool {
        let mut c = self.command(argv);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        matches!(c.status().await, Ok(s) if s.success())
    }
}

#[async_trait]
impl Engine for Docker {
    async fn pull(&self, image: &str, log: &dyn LogSink) -> Result<PullOutcome> {
        let tee = Tee::new(log);
        let (code, _) = run_streaming(&mut self.command(pull_argv(image)), &tee, false).await?;
        if code != 0 {
            return Ok(PullOutcome::Failed {
                message: format!("cannot pull {image}: {}", first_error_line(&tee.text())),
            });
        }
        let mut cmd = self.command(inspect_digests_argv(image));
        let (code, out) = run_streaming(&mut cmd, &tee, true).await?;
        match parse_repo_digest(image, &out) {
            Some(digest) if code == 0 => Ok(PullOutcome::Pulled { digest }),
            _ => Ok(PullOutcome::Failed {
                message: format!("cannot read the digest of {image} after pulling it"),
            }),
        }
    }

    async fn build(&self, req: &BuildRequest<'_>, log: &dyn LogSink) -> Result<Exit> {
        if req.index.is_some() {
            return Err(crtask_core::Error::Builder(
                "the docker engine does not build multi-platform images: use buildah".into(),
            ));
        }
        let mut cmd = self.command(build_argv(req));
        // BuildKit's plain progress shows RUN output in the log (set in the
        // environment, not as `--progress`, which is BuildKit-only).
        cmd.env("BUILDKIT_PROGRESS", "plain");
        let (code, _) = run_streaming(&mut cmd, log, false).await?;
        Ok(Exit { code })
    }

    async fn push(&self, image: &str, log: &dyn LogSink) -> Result<PushOutcome> {
        let tee = Tee::new(log);
        let (code, _) = run_streaming(&mut self.command(push_argv(image)), &tee, false).await?;
        let text = tee.text();
        if code != 0 {
            return Ok(PushOutcome::Failed {
                message: format!("cannot push {image}: {}", first_error_line(&text)),
            });
        }
        match parse_push_digest(&text) {
            Some(digest) => Ok(PushOutcome::Pushed {
                digest,
                platforms: Vec::new(),
            }),
            None => Ok(PushOutcome::Failed {
                message: format!("pushed {image} but docker reported no digest"),
            }),
        }
    }

    async fn run_container(&self, req: &ContainerRequest<'_>, log: &dyn LogSink) -> Result<Exit> {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let ctr = container_name(req.group, req.name, nonce);
        let mut cmd = self.command(run_argv(req, &ctr));
        if let Ok(mut g) = self.groups.lock() {
            g.entry(req.group.to_string())
                .or_default()
                .containers
                .push((ctr.clone(), req.keep));
        }
        if req.detach {
            // `docker run --detach` prints the container id and returns.
            let tee = Tee::new(log);
            let (code, _) = run_streaming(&mut cmd, &tee, true).await?;
            if code != 0 {
                log.line(&format!(
                    "crtask: cannot start {}: {}",
                    req.image,
                    first_error_line(&tee.text())
                ));
                return Ok(Exit { code });
            }
            log.line(&format!("crtask: started {} detached", req.image));
            return Ok(Exit { code: 0 });
        }
        let (code, _) = run_streaming(&mut cmd, log, false).await?;
        Ok(Exit { code })
    }

    async fn has_image(&self, image: &str) -> bool {
        self.quiet(vec!["image".into(), "inspect".into(), image.into()])
            .await
    }

    async fn checkout(
        &self,
        url: &str,
        reference: Option<&str>,
        dest: &std::path::Path,
        log: &dyn LogSink,
    ) -> Result<String> {
        crate::gitctx::clone(url, reference, dest, log, &self.cfg.git_auth).await
    }

    async fn checkout_with_token(
        &self,
        url: &str,
        reference: Option<&str>,
        dest: &std::path::Path,
        log: &dyn LogSink,
        token: &str,
    ) -> Result<String> {
        let auth = self.cfg.git_auth.with_task_token(url, token);
        crate::gitctx::clone(url, reference, dest, log, &auth).await
    }

    async fn end_group(&self, group: &str) {
        let taken = self.groups.lock().ok().and_then(|mut g| g.remove(group));
        // Every container of the run goes with it, kept ones included.
        for (name, _keep) in taken.map(|g| g.containers).unwrap_or_default() {
            let argv: Vec<OsString> = vec!["rm".into(), "--force".into(), name.into()];
            let _ = tokio::time::timeout(Duration::from_secs(30), self.quiet(argv)).await;
        }
    }

    async fn probe_registry(&self, registry: &str) -> std::result::Result<(), String> {
        let insecure = self.cfg.insecure_registries.iter().any(|h| h == registry);
        probe_distribution(&self.http, registry, insecure).await
    }
}

// These tests check the argv the engine hands to the docker CLI and the
// parsing of its output. They cannot run docker itself: this machine has no
// Docker daemon (the engine is exercised for real only inside CodeBuild).
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn strings(a: Vec<OsString>) -> Vec<String> {
        a.into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn build_argv_passes_every_value_as_one_argument() {
        let mut args = BTreeMap::new();
        args.insert("MSG".to_string(), "a b; $(rm -rf /)".to_string());
        let req = BuildRequest {
            context_dir: Path::new("/tmp/ctx dir"),
            dockerfile: Path::new("/tmp/ctx dir/Dockerfile"),
            tags: vec!["r.example/app:1".into(), "r.example/app:latest".into()],
            build_args: args,
            target: Some("final".into()),
            platform: Some("linux/amd64".into()),
            index: None,
            cache: Default::default(),
        };
        assert_eq!(
            strings(build_argv(&req)),
            [
                "build",
                "--pull=false",
                "-f",
                "/tmp/ctx dir/Dockerfile",
                "-t",
                "r.example/app:1",
                "-t",
                "r.example/app:latest",
                "--build-arg",
                "MSG=a b; $(rm -rf /)",
                "--target",
                "final",
                "--platform",
                "linux/amd64",
                "/tmp/ctx dir",
            ]
        );
    }

    #[test]
    fn pull_push_and_inspect_argv() {
        assert_eq!(
            strings(pull_argv("r:5000/base:1")),
            ["pull", "r:5000/base:1"]
        );
        assert_eq!(strings(push_argv("r:5000/app:1")), ["push", "r:5000/app:1"]);
        assert_eq!(
            strings(inspect_digests_argv("r:5000/base:1")),
            [
                "image",
                "inspect",
                "--format",
                "{{json .RepoDigests}}",
                "r:5000/base:1"
            ]
        );
    }

    fn container<'a>(
        args: &'a [String],
        env: &'a [(String, String)],
        entrypoint: Option<Vec<String>>,
    ) -> ContainerRequest<'a> {
        ContainerRequest {
            image: "r:5000/tool:1",
            entrypoint,
            args,
            env,
            workdir: Some("/workspace"),
            user: Some("1000:1000"),
            mounts: vec![(PathBuf::from("/tmp/work/ca1"), "/workspace".into())],
            pull_always: false,
            detach: false,
            keep: false,
            group: "ca1",
            name: "step 1",
        }
    }

    #[test]
    fn run_argv_mounts_the_workspace_and_removes_the_container() {
        let args = vec!["echo".to_string(), "$HOME; id".to_string()];
        let env = vec![("A".to_string(), "x=y z".to_string())];
        let req = container(&args, &env, None);
        assert_eq!(
            strings(run_argv(&req, "crtask-ca1-step_1-7")),
            [
                "run",
                "--name",
                "crtask-ca1-step_1-7",
                "--rm",
                "--pull=missing",
                "--workdir",
                "/workspace",
                "--user",
                "1000:1000",
                "--env",
                "A=x=y z",
                "--mount",
                "type=bind,source=/tmp/work/ca1,target=/workspace",
                "r:5000/tool:1",
                "echo",
                "$HOME; id",
            ]
        );
    }

    #[test]
    fn run_argv_entrypoint_detach_keep_and_pull() {
        let args = vec!["-c".to_string(), "true".to_string()];
        let mut req = container(&args, &[], Some(vec!["/bin/sh".into(), "-e".into()]));
        req.detach = true;
        req.pull_always = true;
        req.workdir = None;
        req.user = None;
        req.mounts.clear();
        assert_eq!(
            strings(run_argv(&req, "c")),
            [
                "run",
                "--name",
                "c",
                "--detach",
                "--pull=always",
                "--entrypoint",
                "/bin/sh",
                "r:5000/tool:1",
                "-e",
                "-c",
                "true"
            ]
        );
        req.detach = false;
        req.keep = true;
        req.entrypoint = Some(Vec::new());
        let a = strings(run_argv(&req, "c"));
        assert!(!a.contains(&"--rm".to_string()), "{a:?}");
        assert_eq!(a[4..6], ["--entrypoint", ""]);
    }

    #[test]
    fn container_names_are_valid_for_docker() {
        assert_eq!(
            container_name("ca1", "build/app:1", 5),
            "crtask-ca1-build_app_1-5"
        );
    }

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn push_digest_is_read_from_the_output() {
        let out = format!(
            "The push refers to repository [r:5000/app]\n5f70bf18a086: Pushed\n1: digest: {D1} size: 527\n"
        );
        assert_eq!(parse_push_digest(&out).as_deref(), Some(D1));
        assert_eq!(parse_push_digest("1: digest: sha256:zz size: 1"), None);
        assert_eq!(parse_push_digest("Pushed\n"), None);
    }

    #[test]
    fn repo_digest_of_the_pulled_repository() {
        let json = format!("[\"other/base@{D2}\",\"r:5000/base@{D1}\"]\n");
        assert_eq!(
            parse_repo_digest("r:5000/base:1", &json).as_deref(),
            Some(D1)
        );
        // Docker Hub names are shown short.
        let json = format!("[\"busybox@{D2}\"]");
        assert_eq!(
            parse_repo_digest("docker.io/library/busybox:1.36", &json).as_deref(),
            Some(D2)
        );
        assert_eq!(parse_repo_digest("x:1", "[]"), None);
        assert_eq!(parse_repo_digest("x:1", "not json"), None);
        assert_eq!(
            parse_repo_digest(&format!("r:5000/base@{D1}"), "").as_deref(),
            Some(D1)
        );
        assert_eq!(strip_tag("r:5000/base"), "r:5000/base");
    }
}
